// weights.glsl: reading a weight matrix in its device layout (ops.Pack),
// with no optional feature: every array is read as 32-bit words, halves with
// unpackHalf2x16 and bytes with shifts.
//
// The including file defines WEIGHT_<TYPE> for one of the types in
// shaders.WeightTypes (WEIGHT_F32, WEIGHT_Q4_K, …). This file declares the
// weight's bindings: binding 0 is the main array (wq, the blocks' bodies)
// and, for the block types, binding 1 the side array (ws: each block's
// scales and other small fields, 2-byte aligned). W_BINDINGS is how many
// there are; the op's own bindings follow.
//
// Device layout of a block type: each ggml block is split into its body, a
// run of whole 16-byte units (the quants), and its side, the block's other
// bytes in their ggml order (before the body, then after it). Bodies lie
// row-major in wq, so a row's body starts on 16 bytes; sides lie row-major
// in ws, W_SIDE halves a block. A row's addresses are its first body word
// (row_word) and the half index of its first side half (row_side, called
// row_scale for the legacy types whose side is the f16 scale alone).
//
// Every type defines w_elem(row_word, row_side, i): element i of a row,
// dequantised exactly as ggml (and loader.Dequantize) does it, f32 operation
// for f32 operation (precise: no contraction). The matmul reads rows in one
// of two ways:
//
// Units (F32, F16, BF16, Q8_0, Q4_0, the GPU layout): w_unit reads W_UNIT
// columns w_col(u, k), small runs of consecutive columns, so neighbouring
// invocations read neighbouring words. For Q8_0 and Q4_0 it returns the raw
// quants and the block scale (W_SCALED), so a dot product multiplies by the
// scale once. The same types also read 32-column blocks with 16-byte loads
// (w_block_load, w_block_values, w_block_scale: the CPU layout).
//
// Tiles (every other block type, both layouts; W_TILED): a row is read in
// tiles of W_TILE columns (a whole number per block; tile k's column c is
// column w_tile_col(k, c) of its block, in runs of at least 4 consecutive
// columns). w_tile_load fetches tile k's quants as W_TILE_VEC4 uvec4s;
// w_tile_raw(q, …, c) is the raw value r of its column c (a constant after
// unrolling, so that one unpacking serves every column that shares it);
// w_tile_coefs gives each group of W_GROUP columns its scale a and, with
// W_MIN, its offset b, so that element c of group g is a[g]·r[c] + b[g]. A
// dot product over a group is then a[g]·Σ r·x + b[g]·Σ x.

layout(binding = 0) readonly buffer WQBuf { uint wq[]; };
layout(binding = 0) readonly buffer WQBuf4 { uvec4 wq4[]; };

#if defined(WEIGHT_F32) || defined(WEIGHT_F16) || defined(WEIGHT_BF16)
#define W_BINDINGS 1
#else
#define W_BINDINGS 2
layout(binding = 1) readonly buffer WSBuf { uint ws[]; };

// w_scale is the f16 at side half h.
float w_scale(uint h) {
	return unpackHalf2x16(ws[h >> 1] >> ((h & 1u) * 16u)).x;
}

// side_u16 is the 16-bit field at side half h.
uint side_u16(uint h) {
	return (ws[h >> 1] >> ((h & 1u) * 16u)) & 0xffffu;
}

// side_byte is byte i of the side that starts at half h.
uint side_byte(uint h, uint i) {
	const uint b = 2u * h + i;
	return (ws[b >> 2] >> ((b & 3u) * 8u)) & 0xffu;
}
#endif

// body_byte is byte i of the body that starts at word w.
uint body_byte(uint w, uint i) {
	return (wq[w + (i >> 2)] >> ((i & 3u) * 8u)) & 0xffu;
}

// tile_byte is byte i of a tile's loaded uvec4s (constant i after unrolling).
#define tile_byte(q, i) (((q)[(i) >> 4][((i) >> 2) & 3u] >> (((i) & 3u) * 8u)) & 0xffu)

// unpack_bf16 splits a word into its two bfloat16 halves, low first.
vec2 unpack_bf16(uint w) {
	return vec2(uintBitsToFloat(w << 16), uintBitsToFloat(w & 0xffff0000u));
}

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

#elif defined(WEIGHT_F16) || defined(WEIGHT_BF16)
// Rows are padded to a whole word (an odd row ends with a zero half). BF16
// is the same layout with bfloat16 halves (the top 16 bits of an f32).
#if defined(WEIGHT_BF16)
#define unpack2 unpack_bf16
#else
#define unpack2 unpackHalf2x16
#endif
#define W_UNIT 4
uint w_row_words(uint cols) { return (cols + 1) / 2; }
uint w_row_scales(uint cols) { return 0; }
uint w_units(uint cols) { return cols / 4; }
uint w_col(uint u, uint k) { return 4 * u + k; }

void w_unit(uint row_word, uint row_scale, uint u, out float v[W_UNIT], out float d) {
	const uint b = row_word + 2 * u;
	const vec2 h0 = unpack2(wq[b]), h1 = unpack2(wq[b + 1]);
	v[0] = h0.x;
	v[1] = h0.y;
	v[2] = h1.x;
	v[3] = h1.y;
	d = 1.0;
}

float w_elem(uint row_word, uint row_scale, uint i) {
	return unpack2(wq[row_word + i / 2] >> ((i & 1u) * 16u)).x;
}

#define W_BLOCK_VEC4 4
void w_block_values(uvec4 q[W_BLOCK_VEC4], out float v[32]) {
	[[unroll]] for (uint i = 0; i < 4; i++) {
		[[unroll]] for (uint k = 0; k < 4; k++) {
			const vec2 h = unpack2(q[i][k]);
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

#ifdef MATMUL_DOT
// w_block_idot is Σ q_j·x_j over a block's 32 raw values q and a q8 block
// of x (xa: values 0–15 in 4 words, xb: values 16–31; xsum: their sum),
// exact in int32.
#define W_DOT
int w_block_idot(uvec4 q[W_BLOCK_VEC4], uvec4 xa, uvec4 xb, int xsum) {
	int s = 0;
	[[unroll]] for (uint k = 0; k < 4; k++) {
		s += sdot4x8(q[0][k], xa[k]);
		s += sdot4x8(q[1][k], xb[k]);
	}
	return s;
}
#endif

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

#ifdef MATMUL_DOT
// w_block_idot is Q8_0's for Q4_0: the nibbles n_j as int8 against x, less
// 8·Σx for the values n_j − 8. Word k's low nibbles are values 4k…4k+3
// (x word k), its high nibbles values 16+4k… (x word 4+k).
#define W_DOT
int w_block_idot(uvec4 q[W_BLOCK_VEC4], uvec4 xa, uvec4 xb, int xsum) {
	int s = 0;
	[[unroll]] for (uint k = 0; k < 4; k++) {
		s += sdot4x8(q[0][k] & 0x0f0f0f0fu, xa[k]);
		s += sdot4x8((q[0][k] >> 4) & 0x0f0f0f0fu, xb[k]);
	}
	return s - 8 * xsum;
}
#endif

#else
#include "quants.glsl"
#endif

#ifndef W_TILED
// w_block_load reads block b of the row that starts at word row_word.
void w_block_load(uint row_word, uint b, out uvec4 q[W_BLOCK_VEC4]) {
	const uint v0 = row_word / 4 + b * W_BLOCK_VEC4;
	[[unroll]] for (uint i = 0; i < W_BLOCK_VEC4; i++) {
		q[i] = wq4[v0 + i];
	}
}
#endif
