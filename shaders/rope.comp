#version 450
// rope: rotates x (ntok, nheads·head_dim) f32 in place, rows x_stride
// elements apart (the q and k heads at the start of each q|k|v row). For
// every token and head, pair i < rope_dim/2 is rotated by the angle whose
// cosine and sine are rope[tok, i] = (cos, sin), from a (ntok, rope_dim/2,
// 2) f32 table; dims ≥ rope_dim are untouched. The pair is (x[2i], x[2i+1])
// (loader.RopePairwise, GGUF llama) or, with rotate_half = 1, (x[i],
// x[i + rope_dim/2]) (loader.RopeHalf, NEOX rotate-half). The host
// computes the table in float64 per position: GPU sin and cos of large
// angles (pos·θ^(−2i/d) reaches thousands of radians) are inaccurate.
// One invocation per pair.
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
} p;

layout(binding = 0) buffer XBuf { float x[]; };
layout(binding = 1) readonly buffer RopeBuf { float rope[]; };

void main() {
	const uint half_dim = p.rope_dim / 2;
	const uint i = group_index() * WG + gl_LocalInvocationID.x;
	if (i >= p.ntok * p.nheads * half_dim) {
		return;
	}
	const uint pair = i % half_dim;
	const uint head = (i / half_dim) % p.nheads;
	const uint tok = i / (half_dim * p.nheads);
	const uint base = p.x_off + tok * p.x_stride + head * p.head_dim;
	const uint i0 = p.rotate_half != 0 ? base + pair : base + 2 * pair;
	const uint i1 = p.rotate_half != 0 ? i0 + half_dim : i0 + 1;
	const uint ri = p.r_off + (tok * half_dim + pair) * 2;
	const float c = rope[ri], s = rope[ri + 1];
	const float x0 = x[i0], x1 = x[i1];
	precise float y0 = x0 * c - x1 * s;
	precise float y1 = x0 * s + x1 * c;
	x[i0] = y0;
	x[i1] = y1;
}
