#version 450
// add: z (n,) = x (n,) + y (n,), all f32. z may alias x or y. With
// y_period > 0, y is a (y_period,) row added to every row of x: z[i] =
// x[i] + y[i mod y_period] (a bias).
#include "common.glsl"

layout(push_constant) uniform Params {
	uint n;
	uint x_off;
	uint y_off;
	uint z_off;
	uint y_period; // 0: y is (n,); else y is one row of y_period
} p;

layout(binding = 0) readonly buffer XBuf { float x[]; };
layout(binding = 1) readonly buffer YBuf { float y[]; };
layout(binding = 2) writeonly buffer ZBuf { float z[]; };

void main() {
	const uint i = group_index() * WG + gl_LocalInvocationID.x;
	if (i < p.n) {
		const uint j = p.y_period == 0 ? i : i % p.y_period;
		z[p.z_off + i] = x[p.x_off + i] + y[p.y_off + j];
	}
}
