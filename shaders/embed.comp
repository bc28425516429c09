#version 450
// embed: x (ntok, cols) f32 = rows tokens[i] of a table (vocab, cols)
// in its device layout (weights.glsl), times scale (Gemma's √dim); one
// workgroup per token. A scale of 1 copies the dequantised values as they
// are (no multiply, so no denormal a driver might flush).
//
// A table larger than one binding is bound in row blocks, one dispatch per
// block: a dispatch writes the tokens whose ids fall in its block, and the
// first dispatch (row0 = 0) also writes zeros for ids ≥ vocab, so that no
// id is ever read out of bounds and every token is written once.
#include "common.glsl"
#include "weights.glsl"

layout(push_constant) uniform Params {
	uint ntok;    // tokens in this dispatch
	uint cols;    // row length
	uint vocab;   // rows of the whole table
	uint row0;    // first table row in this dispatch's binding
	uint nrows;   // table rows in this dispatch's binding
	uint w_off;   // word offset of row row0 in binding 0
	uint s_off;   // f16 index of row row0's first scale in binding 1 (Q types)
	uint tok_off; // element offset of the token ids
	uint x_off;   // element offset of x
	float scale;  // multiplies every value
} p;

#define TOK_BINDING W_BINDINGS
#define X_BINDING (W_BINDINGS + 1)
layout(binding = TOK_BINDING) readonly buffer TokBuf { uint tokens[]; };
layout(binding = X_BINDING) writeonly buffer XBuf { float x[]; };

void main() {
	const uint i = group_index();
	if (i >= p.ntok) {
		return;
	}
	const uint id = tokens[p.tok_off + i];
	const uint xb = p.x_off + i * p.cols;
	if (id >= p.row0 && id - p.row0 < p.nrows) {
		const uint r = id - p.row0;
		const uint rw = p.w_off + r * w_row_words(p.cols);
		const uint rs = p.s_off + r * w_row_scales(p.cols);
		for (uint c = gl_LocalInvocationID.x; c < p.cols; c += WG) {
			const float v = w_elem(rw, rs, c);
			x[xb + c] = p.scale == 1.0 ? v : v * p.scale;
		}
	} else if (id >= p.vocab && p.row0 == 0) {
		for (uint c = gl_LocalInvocationID.x; c < p.cols; c += WG) {
			x[xb + c] = 0.0;
		}
	}
}
