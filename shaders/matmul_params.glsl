// matmul_params.glsl: the push constants and the x and y bindings that
// every matmul module shares (matmul.comp, matmul_coopmat.comp): the
// layout of shaders.MatMulParams. The including file has declared the
// weight's bindings (weights.glsl: W_BINDINGS) first.
layout(push_constant) uniform Params {
	uint rows;       // rows of W in this dispatch (a block of W's rows)
	uint cols;       // columns of W, the length of a token's x
	uint ntok;       // tokens in this dispatch
	uint w_off;      // word offset of the block's first row in binding 0
	uint s_off;      // f16 index of the block's first scale in binding 1 (Q types)
	uint x_off;      // element offset of the first token's x
	uint y_off;      // element offset of y[first token, first row of the block]
	uint y_stride;   // elements from one token's y to the next (W's total rows)
	uint accumulate; // 1: y += x·Wᵀ; 0: y = x·Wᵀ
	uint rope_row0;  // MATMUL_ROPE: the row of q|k|v that the block's first row is
	uint rope_rows;  // rows of q|k|v rotated: the q and k heads
	uint head_dim;   // elements per head
	uint rope_dim;   // leading elements of each head rotated (even)
	uint r_off;      // element offset of the cos/sin table
} p;

#define X_BINDING W_BINDINGS
#define Y_BINDING (W_BINDINGS + 1)
layout(binding = X_BINDING) readonly buffer XBuf { float x[]; };
layout(binding = X_BINDING) readonly buffer XBuf4 { vec4 x4[]; };
layout(binding = Y_BINDING) buffer YBuf { float y[]; };
