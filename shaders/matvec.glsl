// matvec.glsl: y = W·x for a row-major W (rows, cols), one row per workgroup.
// The including file defines W_TYPE (the binding's element type) and
// load_w(i), returning element i of W as float.
#include "common.glsl"
#include "reduce.glsl"

layout(push_constant) uniform Params {
	uint rows;  // rows of W computed by this dispatch
	uint cols;  // columns of W, the length of x
	uint w_off; // element offset of W's first row in binding 0
	uint x_off; // element offset of x in binding 1
	uint y_off; // element offset of y in binding 2
} p;

layout(binding = 0) readonly buffer WBuf { W_TYPE w[]; };
layout(binding = 1) readonly buffer XBuf { float x[]; };
layout(binding = 2) writeonly buffer YBuf { float y[]; };

void main() {
	const uint row = group_index();
	if (row >= p.rows) {
		return; // uniform across the workgroup: no barrier is skipped by part of it
	}
	const uint base = p.w_off + row * p.cols;
	float acc = 0.0;
	for (uint c = gl_LocalInvocationID.x; c < p.cols; c += WG) {
		acc += load_w(base + c) * x[p.x_off + c];
	}
	acc = workgroup_sum(acc);
	if (gl_LocalInvocationID.x == 0) {
		y[p.y_off + row] = acc;
	}
}
