#version 450
// rope: rotates x (ntok, nheads·head_dim) f32 into y, rows x_stride and
// y_stride elements apart (the q and k heads at the start of each q|k|v
// row): in place when the host binds the same range as x and y, or into a
// copy (the sinks' query, issue 14), whose dims ≥ rope_dim are then copied
// as they are (tail = head_dim − rope_dim; 0 in place). For
// every token and head, pair i < rope_dim/2 is rotated by the angle whose
// cosine and sine are rope[tok, i] = (cos, sin), from a (ntok, rope_dim/2,
// 2) f32 table; dims ≥ rope_dim are untouched. The pair is (x[2i], x[2i+1])
// (loader.RopePairwise, GGUF llama) or, with rotate_half = 1, (x[i],
// x[i + rope_dim/2]) (loader.RopeHalf, NEOX rotate-half). The host
// computes the table in float64 per position: GPU sin and cos of large
// angles (pos·θ^(−2i/d) reaches thousands of radians) are inaccurate.
// One invocation per pair, and one per tail element.
#include "common.glsl"

layout(push_constant) uniform Params {
	uint ntok;     // tokens in this dispatch
	uint nheads;   // heads per token
	uint head_dim; // elements per head
	uint rope_dim; // leading elements of each head that are rotated (even)
	uint x_off;    // element offset of x
	uint r_off;    // element offset of the cos/sin table
	uint x_stride; // elements from one token's row of x to the next (≥ nheads·head_dim)
	uint rotate_half; // 0: pairs (2i, 2i+1); 1: pairs (i, i + rope_dim/2)
	uint y_off;    // element offset of y
	uint y_stride; // elements from one token's row of y to the next (≥ nheads·head_dim)
	uint tail;     // dims ≥ rope_dim copied per head: 0 (in place) or head_dim − rope_dim
} p;

layout(binding = 0) readonly buffer XBuf { float x[]; };
layout(binding = 1) readonly buffer RopeBuf { float rope[]; };
layout(binding = 2) writeonly buffer YBuf { float y[]; }; // x's own range when in place

void main() {
	const uint half_dim = p.rope_dim / 2;
	const uint per = half_dim + p.tail; // work items per head
	const uint i = group_index() * WG + gl_LocalInvocationID.x;
	if (i >= p.ntok * p.nheads * per) {
		return;
	}
	const uint pair = i % per;
	const uint head = (i / per) % p.nheads;
	const uint tok = i / (per * p.nheads);
	const uint xb = p.x_off + tok * p.x_stride + head * p.head_dim;
	const uint yb = p.y_off + tok * p.y_stride + head * p.head_dim;
	if (pair >= half_dim) { // a tail element, copied
		const uint d = p.rope_dim + (pair - half_dim);
		y[yb + d] = x[xb + d];
		return;
	}
	const uint d0 = p.rotate_half != 0 ? pair : 2 * pair;
	const uint d1 = p.rotate_half != 0 ? d0 + half_dim : d0 + 1;
	const uint ri = p.r_off + (tok * half_dim + pair) * 2;
	const float c = rope[ri], s = rope[ri + 1];
	const float x0 = x[xb + d0], x1 = x[xb + d1];
	precise float y0 = x0 * c - x1 * s;
	precise float y1 = x0 * s + x1 * c;
	y[yb + d0] = y0;
	y[yb + d1] = y1;
}
