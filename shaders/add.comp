#version 450
// add: z (n,) = x (n,) + y (n,), all f32. z may alias x or y.
#include "common.glsl"

layout(push_constant) uniform Params {
	uint n;
	uint x_off;
	uint y_off;
	uint z_off;
} p;

layout(binding = 0) readonly buffer XBuf { float x[]; };
layout(binding = 1) readonly buffer YBuf { float y[]; };
layout(binding = 2) writeonly buffer ZBuf { float z[]; };

void main() {
	const uint i = group_index() * WG + gl_LocalInvocationID.x;
	if (i < p.n) {
		z[p.z_off + i] = x[p.x_off + i] + y[p.y_off + i];
	}
}
