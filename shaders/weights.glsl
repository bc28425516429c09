// weights.glsl: reading a weight matrix in its device layout (shaders.Pack),
// with no optional feature: every array is read as 32-bit words, halves with
// unpackHalf2x16 and int8 with bitfieldExtract.
//
// The including file defines one of WEIGHT_F32, WEIGHT_F16, WEIGHT_Q8_0 or
// WEIGHT_Q4_0. This file declares the weight's bindings: binding 0 is the
// main array (wq) and, for the Q types, binding 1 the f16 block scales (ws).
// W_BINDINGS is how many there are; the op's own bindings follow.
//
// w_elem(row_word, row_scale, i) is element i of a row, dequantised. For
// dot products, w_unit reads a row in units of W_UNIT elements: unit u holds
// columns w_col(u, k), k < W_UNIT, small runs of consecutive columns, so
// neighbouring invocations taking neighbouring units read neighbouring words
// of W and of x. For the Q types w_unit returns the raw quants (q, or q−8)
// and the block scale separately (W_SCALED is defined), so that a dot
// product multiplies by the scale once; a row's units are w_units(cols), and
// its columns from w_units(cols)·W_UNIT on (only f32 and f16 rows have any)
// are read with w_elem. Row addresses: a row's first word (row_word) and,
// for the Q types, the f16 index of its first block scale (row_scale;
// ignored otherwise).
//
// Blocks. When cols is a multiple of 32 and a row's first word is a
// multiple of 4, a row can also be read in blocks of 32 columns (the Q
// types' own blocks) with 16-byte loads: w_block_load(row_word, b, q)
// fetches block b as W_BLOCK_VEC4 uvec4s, w_block_values unpacks them into
// the block's 32 raw values in column order, and w_block_scale(row_scale,
// b) is its scale (1 for f32 and f16).

layout(binding = 0) readonly buffer WQBuf { uint wq[]; };
layout(binding = 0) readonly buffer WQBuf4 { uvec4 wq4[]; };

#if defined(WEIGHT_Q8_0) || defined(WEIGHT_Q4_0)
#define W_BINDINGS 2
layout(binding = 1) readonly buffer WSBuf { uint ws[]; };

// w_scale is f16 scale h (an index in halves).
float w_scale(uint h) {
	return unpackHalf2x16(ws[h >> 1] >> ((h & 1u) * 16u)).x;
}
#else
#define W_BINDINGS 1
#endif

#if defined(WEIGHT_F32)
#define W_UNIT 4
uint w_row_words(uint cols) { return cols; }
uint w_row_scales(uint cols) { return 0; }
uint w_units(uint cols) { return cols / 4; }
uint w_col(uint u, uint k) { return 4 * u + k; }

void w_unit(uint row_word, uint row_scale, uint u, out float v[W_UNIT], out float d) {
	const uint b = row_word + 4 * u;
	[[unroll]] for (uint k = 0; k < 4; k++) {
		v[k] = uintBitsToFloat(wq[b + k]);
	}
	d = 1.0;
}

float w_elem(uint row_word, uint row_scale, uint i) {
	return uintBitsToFloat(wq[row_word + i]);
}

#define W_BLOCK_VEC4 8
void w_block_values(uvec4 q[W_BLOCK_VEC4], out float v[32]) {
	[[unroll]] for (uint i = 0; i < 8; i++) {
		[[unroll]] for (uint k = 0; k < 4; k++) {
			v[4 * i + k] = uintBitsToFloat(q[i][k]);
		}
	}
}

float w_block_scale(uint row_scale, uint b) { return 1.0; }

#elif defined(WEIGHT_F16)
// Rows are padded to a whole word (an odd row ends with a zero half).
#define W_UNIT 4
uint w_row_words(uint cols) { return (cols + 1) / 2; }
uint w_row_scales(uint cols) { return 0; }
uint w_units(uint cols) { return cols / 4; }
uint w_col(uint u, uint k) { return 4 * u + k; }

void w_unit(uint row_word, uint row_scale, uint u, out float v[W_UNIT], out float d) {
	const uint b = row_word + 2 * u;
	const vec2 h0 = unpackHalf2x16(wq[b]), h1 = unpackHalf2x16(wq[b + 1]);
	v[0] = h0.x;
	v[1] = h0.y;
	v[2] = h1.x;
	v[3] = h1.y;
	d = 1.0;
}

float w_elem(uint row_word, uint row_scale, uint i) {
	return unpackHalf2x16(wq[row_word + i / 2] >> ((i & 1u) * 16u)).x;
}

#define W_BLOCK_VEC4 4
void w_block_values(uvec4 q[W_BLOCK_VEC4], out float v[32]) {
	[[unroll]] for (uint i = 0; i < 4; i++) {
		[[unroll]] for (uint k = 0; k < 4; k++) {
			const vec2 h = unpackHalf2x16(q[i][k]);
			v[8 * i + 2 * k] = h.x;
			v[8 * i + 2 * k + 1] = h.y;
		}
	}
}

float w_block_scale(uint row_scale, uint b) { return 1.0; }

#elif defined(WEIGHT_Q8_0)
// A block is 8 words of int8 (element j in byte j % 4 of word j / 4) and
// one f16 scale d; the value is q·d. A unit is 2 words: 8 consecutive
// elements of one block.
#define W_UNIT 8
#define W_SCALED
uint w_row_words(uint cols) { return cols / 32 * 8; }
uint w_row_scales(uint cols) { return cols / 32; }
uint w_units(uint cols) { return cols / 8; }
uint w_col(uint u, uint k) { return 8 * u + k; }

void w_unit(uint row_word, uint row_scale, uint u, out float v[W_UNIT], out float d) {
	const uint b = row_word + 2 * u;
	[[unroll]] for (uint k = 0; k < 2; k++) {
		const int q = int(wq[b + k]);
		[[unroll]] for (uint j = 0; j < 4; j++) {
			v[4 * k + j] = float(bitfieldExtract(q, int(8 * j), 8));
		}
	}
	d = w_scale(row_scale + u / 4);
}

float w_elem(uint row_word, uint row_scale, uint i) {
	const uint blk = i / 32, j = i % 32;
	const int q = int(wq[row_word + blk * 8 + j / 4]);
	return float(bitfieldExtract(q, int(8 * (j % 4)), 8)) * w_scale(row_scale + blk);
}

#define W_BLOCK_VEC4 2
void w_block_values(uvec4 q[W_BLOCK_VEC4], out float v[32]) {
	[[unroll]] for (uint i = 0; i < 2; i++) {
		[[unroll]] for (uint k = 0; k < 4; k++) {
			[[unroll]] for (uint j = 0; j < 4; j++) {
				v[16 * i + 4 * k + j] = float(bitfieldExtract(int(q[i][k]), int(8 * j), 8));
			}
		}
	}
}

float w_block_scale(uint row_scale, uint b) { return w_scale(row_scale + b); }

#elif defined(WEIGHT_Q4_0)
// A block is 4 words of nibbles and one f16 scale d. Byte j (byte j % 4 of
// word j / 4) holds element j in its low nibble and element j+16 in its
// high nibble; the value is (q−8)·d. A unit is one word: elements 4k…4k+3
// (low nibbles) and 4k+16…4k+19 (high nibbles) of a block, k = u % 4.
#define W_UNIT 8
#define W_SCALED
uint w_row_words(uint cols) { return cols / 32 * 4; }
uint w_row_scales(uint cols) { return cols / 32; }
uint w_units(uint cols) { return cols / 8; }
uint w_col(uint u, uint k) { return 32 * (u / 4) + 4 * (u % 4) + (k < 4 ? k : k + 12); }

void w_unit(uint row_word, uint row_scale, uint u, out float v[W_UNIT], out float d) {
	const uint q = wq[row_word + u];
	[[unroll]] for (uint j = 0; j < 4; j++) {
		v[j] = float(int((q >> (8 * j)) & 15u) - 8);
		v[j + 4] = float(int((q >> (8 * j + 4)) & 15u) - 8);
	}
	d = w_scale(row_scale + u / 4);
}

float w_elem(uint row_word, uint row_scale, uint i) {
	const uint blk = i / 32, j = i % 16;
	const uint q = wq[row_word + blk * 4 + j / 4];
	const uint shift = 8 * (j % 4) + ((i % 32) >= 16 ? 4 : 0);
	return float(int((q >> shift) & 15u) - 8) * w_scale(row_scale + blk);
}

#define W_BLOCK_VEC4 1
void w_block_values(uvec4 q[W_BLOCK_VEC4], out float v[32]) {
	[[unroll]] for (uint k = 0; k < 4; k++) {
		[[unroll]] for (uint j = 0; j < 4; j++) {
			v[4 * k + j] = float(int((q[0][k] >> (8 * j)) & 15u) - 8);
			v[16 + 4 * k + j] = float(int((q[0][k] >> (8 * j + 4)) & 15u) - 8);
		}
	}
}

float w_block_scale(uint row_scale, uint b) { return w_scale(row_scale + b); }

#else
#error "define one of WEIGHT_F32, WEIGHT_F16, WEIGHT_Q8_0, WEIGHT_Q4_0"
#endif

// w_block_load reads block b of the row that starts at word row_word.
void w_block_load(uint row_word, uint b, out uvec4 q[W_BLOCK_VEC4]) {
	const uint v0 = row_word / 4 + b * W_BLOCK_VEC4;
	[[unroll]] for (uint i = 0; i < W_BLOCK_VEC4; i++) {
		q[i] = wq4[v0 + i];
	}
}
