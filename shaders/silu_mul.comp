#version 450
// silu_mul: h (n,) = silu(g)·u = g·sigmoid(g)·u elementwise, f32 (SwiGLU's
// gate), over rows of cols elements: element i of h is row i / cols, column
// i mod cols, and g and u rows are stride elements apart (g and u side by
// side in one (rows, 2·cols) product: stride 2·cols). h may alias g. The
// sigmoid never overflows: exp is only taken of −|g|, so 1 + e stays in
// [1, 2].
#include "common.glsl"

layout(push_constant) uniform Params {
	uint n;
	uint cols;   // elements per row of h
	uint stride; // elements from one row of g (and of u) to the next
	uint g_off;
	uint u_off;
	uint h_off;
} p;

layout(binding = 0) readonly buffer GBuf { float g[]; };
layout(binding = 1) readonly buffer UBuf { float u[]; };
layout(binding = 2) writeonly buffer HBuf { float h[]; };

float sigmoid(float v) {
	const float e = exp(-abs(v));
	const float s = 1.0 / (1.0 + e);
	return v >= 0.0 ? s : e * s; // e/(1+e) for v < 0; NaN stays NaN
}

void main() {
	const uint i = group_index() * WG + gl_LocalInvocationID.x;
	if (i < p.n) {
		const uint j = i / p.cols * p.stride + i % p.cols;
		const float v = g[p.g_off + j];
		h[p.h_off + i] = v * sigmoid(v) * u[p.u_off + j];
	}
}
