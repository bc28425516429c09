#version 450
// silu_mul: h (n,) = act(g)·u elementwise, f32 (the gated FFN's gate), over
// rows of cols elements: element i of h is row i / cols, column i mod cols,
// and g and u rows are stride elements apart (g and u side by side in one
// (rows, 2·cols) product: stride 2·cols). h may alias g. Specialization
// constant 1 is the activation, loader.Activation's value: 0 SiLU (SwiGLU),
// 1 GELU's tanh approximation (GeGLU). Neither overflows for any finite g
// (act.glsl).
#include "common.glsl"
#include "act.glsl"

layout(constant_id = 1) const uint ACT = 0;

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

void main() {
	const uint i = group_index() * WG + gl_LocalInvocationID.x;
	if (i < p.n) {
		const uint j = i / p.cols * p.stride + i % p.cols;
		const float v = g[p.g_off + j];
		const float a = ACT == 1 ? gelu_tanh(v) : silu(v);
		h[p.h_off + i] = a * u[p.u_off + j];
	}
}
