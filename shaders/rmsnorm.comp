#version 450
// rmsnorm: y[r,:] = x[r,:] / sqrt(mean(x[r,:]²) + eps) * w[:], for rows of
// length n; one workgroup per row. x (rows, n) f32, w (n,) f32, y (rows, n) f32.
#include "common.glsl"
#include "reduce.glsl"

layout(push_constant) uniform Params {
	uint n;     // row length
	uint rows;  // rows in this dispatch
	float eps;  // added to the mean square
	uint x_off; // element offsets into each binding
	uint w_off;
	uint y_off;
} p;

layout(binding = 0) readonly buffer XBuf { float x[]; };
layout(binding = 1) readonly buffer WBuf { float w[]; };
layout(binding = 2) writeonly buffer YBuf { float y[]; };

void main() {
	const uint row = group_index();
	if (row >= p.rows) {
		return;
	}
	const uint xb = p.x_off + row * p.n;
	float ss = 0.0;
	for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) {
		const float v = x[xb + i];
		ss += v * v;
	}
	ss = workgroup_sum(ss);
	const float scale = inversesqrt(ss / float(p.n) + p.eps);
	const uint yb = p.y_off + row * p.n;
	for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) {
		y[yb + i] = x[xb + i] * scale * w[p.w_off + i];
	}
}
