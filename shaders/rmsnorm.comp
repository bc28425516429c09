#version 450
// rmsnorm: y[r,:] = x[r,:] / sqrt(mean(x[r,:]²) + eps) * w[:] for rows of
// length n, or y[r,:] += that (accumulate = 1); one workgroup per row.
// Specialization constant 1 set to 1 makes it LayerNorm without bias:
// y = (x − mean) / sqrt(var + eps) * w, var = mean((x − mean)²), in two
// passes over the row (no E[x²] − mean² cancellation), both of x shifted
// by its first element: the f32 sum of a row far from 0 (all near 100)
// loses the mean's low bits, the sum of the shifted row does not
// (TestLayerNorm's rows near 100, on lavapipe: NMSE 5.5e-11 unshifted,
// 6e-15 shifted).
//
// Rows are grouped by token: row r is head r mod heads of token r / heads,
// at x_off + token·x_stride + head·n (and likewise in y), so one dispatch
// normalises the q and k heads inside q|k|v rows in place (y = x); heads
// from w2_from on take their weights from w2 (the key heads' norm). A plain
// norm of contiguous rows has heads = 1, strides n and w2 = w.
//
// x (rows, n) f32, w (n,) f32, w2 (n,) f32, y (rows, n) f32 (strided as
// above). In place (y = x) every element is read by the invocation that
// writes it, after the reductions.
#include "common.glsl"
#include "reduce.glsl"

layout(constant_id = 1) const uint LAYER_NORM = 0;

layout(push_constant) uniform Params {
	uint n;          // row length
	uint rows;       // rows in this dispatch
	float eps;       // added to the mean square (the variance)
	uint x_off;      // element offsets into each binding
	uint w_off;
	uint y_off;
	uint heads;      // rows per token
	uint x_stride;   // elements from one token's rows of x to the next
	uint y_stride;   // and of y
	uint w2_from;    // first head of a token that uses w2
	uint w2_off;
	uint accumulate; // 1: y += the norm
} p;

layout(binding = 0) readonly buffer XBuf { float x[]; };
layout(binding = 1) readonly buffer WBuf { float w[]; };
layout(binding = 2) readonly buffer W2Buf { float w2[]; };
layout(binding = 3) buffer YBuf { float y[]; };

void main() {
	const uint row = group_index();
	if (row >= p.rows) {
		return;
	}
	const uint tok = row / p.heads, head = row % p.heads;
	const uint xb = p.x_off + tok * p.x_stride + head * p.n;
	float shift = 0.0, mean = 0.0; // x − shift − mean is x's deviation (x itself for RMSNorm)
	if (LAYER_NORM != 0) {
		shift = x[xb];
		float s = 0.0;
		for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) {
			s += x[xb + i] - shift;
		}
		mean = workgroup_sum(s) / float(p.n);
	}
	float ss = 0.0;
	for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) {
		const float v = (x[xb + i] - shift) - mean;
		ss += v * v;
	}
	ss = workgroup_sum(ss);
	const float scale = inversesqrt(ss / float(p.n) + p.eps);
	const uint yb = p.y_off + tok * p.y_stride + head * p.n;
	const bool second = head >= p.w2_from;
	for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) {
		const float wi = second ? w2[p.w2_off + i] : w[p.w_off + i];
		const float v = ((x[xb + i] - shift) - mean) * scale * wi;
		y[yb + i] = p.accumulate != 0 ? y[yb + i] + v : v;
	}
}
