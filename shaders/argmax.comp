#version 450
// argmax: out[r] (u32) = the first index of the maximum of row r of x
// (rows, n) f32, one workgroup per row (the dispatch's workgroups are the
// rows). NaN never wins unless every element is NaN (then 0); −0
// and +0 are equal, so the first of them wins.
#include "common.glsl"

layout(push_constant) uniform Params {
	uint n;
	uint x_off;
	uint out_off;
} p;

layout(binding = 0) readonly buffer XBuf { float x[]; };
layout(binding = 1) writeonly buffer OutBuf { uint result[]; };

shared float best_v[WG];
shared uint best_i[WG];

// isnan by bits: compilers may assume no NaN in fast paths of isnan/x != x.
bool is_nan(float v) {
	return (floatBitsToUint(v) & 0x7fffffffu) > 0x7f800000u;
}

// beats reports whether (v, i) comes before (w, j): larger, or equal with
// a smaller index, with NaN below everything.
bool beats(float v, uint i, float w, uint j) {
	const bool vn = is_nan(v), wn = is_nan(w);
	if (vn || wn) {
		return vn == wn ? i < j : wn;
	}
	return v > w || (v == w && i < j);
}

void main() {
	const uint t = gl_LocalInvocationID.x;
	const uint row = group_index();
	const uint xb = p.x_off + row * p.n;
	float bv = 0.0;
	uint bi = 0xffffffffu; // none yet
	for (uint i = t; i < p.n; i += WG) {
		const float v = x[xb + i];
		if (bi == 0xffffffffu || beats(v, i, bv, bi)) {
			bv = v;
			bi = i;
		}
	}
	best_v[t] = bv;
	best_i[t] = bi;
	barrier();
	for (uint s = WG / 2; s > 0; s >>= 1) {
		if (t < s) {
			const float w = best_v[t + s];
			const uint j = best_i[t + s];
			if (j != 0xffffffffu && (best_i[t] == 0xffffffffu || beats(w, j, best_v[t], best_i[t]))) {
				best_v[t] = w;
				best_i[t] = j;
			}
		}
		barrier();
	}
	if (t == 0) {
		result[p.out_off + row] = best_i[0];
	}
}
