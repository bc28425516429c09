#version 450
// scale_cap: x (n,) f32 in place ← cap·tanh(x·scale/cap) when cap > 0 (a
// logit soft-cap, Gemma 2), else x·scale (a logit scale, Cohere2). tanh is
// act.glsl's, which no finite argument makes NaN.
#include "common.glsl"
#include "act.glsl"

layout(push_constant) uniform Params {
	uint n;
	uint x_off;
	float scale;
	float cap; // ≤ 0: no cap
} p;

layout(binding = 0) buffer XBuf { float x[]; };

void main() {
	const uint i = group_index() * WG + gl_LocalInvocationID.x;
	if (i < p.n) {
		const float v = x[p.x_off + i] * p.scale;
		x[p.x_off + i] = p.cap > 0.0 ? p.cap * tanh_safe(v / p.cap) : v;
	}
}
