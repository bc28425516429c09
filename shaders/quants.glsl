// quants.glsl: the tiled block types of weights.glsl (W_TILED): Q4_1, Q5_0,
// Q5_1, IQ4_NL (32-element blocks), Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and IQ4_XS
// (256-element blocks). For each: the block's body and side (ops.Pack's
// split of the ggml block), its tiles, and w_elem in ggml's arithmetic.
//
// The matmul takes a row's blocks one at a time: it loads the block's side
// into registers once (w_side_load: W_SIDE_WORDS words), then its W_TPB
// tiles in turn (w_tile_load, w_tile_coefs, w_tile_raw with k, the tile
// within the block). Byte i of a block's body is body_byte(row_word +
// blk·W_BODY, i), or tile_byte(q, i) of the uvec4s a tile loaded; byte i of
// its side is side_byte(s, i) from memory, or sw_byte(sw, i) from the
// loaded words.
#define W_TILED

// ---- Each type's geometry: block, body words, side halves, tile, groups.
#if defined(WEIGHT_Q4_1) || defined(WEIGHT_Q5_0) || defined(WEIGHT_Q5_1) || defined(WEIGHT_IQ4_NL)
#define W_BLOCK 32u
#define W_BODY 4u
#define W_TILE 32
#define W_TILE_VEC4 1
#define W_GROUP 32
#if defined(WEIGHT_Q4_1)
#define W_SIDE 2u
#define W_MIN
#elif defined(WEIGHT_Q5_0)
#define W_SIDE 3u
#define W_QH_HALF 1u // side half of qh's low 16 bits
#elif defined(WEIGHT_Q5_1)
#define W_SIDE 4u
#define W_MIN
#define W_QH_HALF 2u
#else
#define W_SIDE 1u
#endif
#elif defined(WEIGHT_Q2_K)
#define W_BLOCK 256u
#define W_BODY 16u
#define W_SIDE 10u
#define W_TILE 64
#define W_TILE_VEC4 1
#define W_GROUP 16
#define W_MIN
#define W_QUARTER_TILES // see w_tile_col
#elif defined(WEIGHT_Q3_K)
#define W_BLOCK 256u
#define W_BODY 24u
#define W_SIDE 7u
#define W_TILE 64
#define W_TILE_VEC4 2
#define W_GROUP 16
#define W_QUARTER_TILES
#elif defined(WEIGHT_Q4_K) || defined(WEIGHT_Q5_K)
#define W_BLOCK 256u
#define W_SIDE 8u
#define W_SIDE_PREP
#define W_SIDE_REGS 5u
#define W_TILE 32
#define W_GROUP 16
#define W_MIN
// Tile k (pair g = k/2 of sub-blocks, m = k%2) is bytes 16m … 16m+15 of
// the pair's qs: 16 columns of each sub-block.
#define w_tile_col(k, c) (64u * ((k) / 2u) + 32u * ((c) / 16u) + 16u * ((k) % 2u) + (c) % 16u)
#if defined(WEIGHT_Q4_K)
#define W_BODY 32u
#define W_TILE_VEC4 1
#define W_QS 0u // body byte of qs
#else
#define W_BODY 40u
#define W_TILE_VEC4 2
#define W_QS 32u
#endif
#elif defined(WEIGHT_Q6_K)
#define W_BLOCK 256u
#define W_BODY 48u
#define W_SIDE 9u
#define W_TILE 64
#define W_TILE_VEC4 3
#define W_GROUP 16
#define W_QUARTER_TILES
#define W_MIN // the −32 of every quant
#elif defined(WEIGHT_IQ4_XS)
#define W_BLOCK 256u
#define W_BODY 32u
#define W_SIDE 4u
#define W_TILE 32
#define W_TILE_VEC4 1
#define W_GROUP 32
#else
#error "define one WEIGHT_<TYPE> of shaders.WeightTypes"
#endif

#if defined(W_QUARTER_TILES)
// Q2_K, Q3_K, Q6_K: tile k's column c is column w_tile_col(k, c) of its
// block, four runs of 16, one from each 32-column quarter of half k/2, that
// share their bytes of the quants.
#define w_tile_col(k, c) (128u * ((k) / 2u) + 32u * ((c) / 16u) + 16u * ((k) % 2u) + (c) % 16u)
#elif !defined(w_tile_col)
#define w_tile_col(k, c) ((k) * uint(W_TILE) + (c)) // tiles of consecutive columns
#endif
#define W_GROUPS (W_TILE / W_GROUP)
#define W_TPB (W_BLOCK / uint(W_TILE)) // tiles per block

uint w_row_words(uint cols) { return cols / W_BLOCK * W_BODY; }
uint w_row_scales(uint cols) { return cols / W_BLOCK * W_SIDE; }

// ---- Side words. A block's side is loaded as W_SIDE_WORDS words from word
// s/2 (s: its first half). A side that starts in the high half of a word (s
// odd, only for an odd W_SIDE) is shifted down by a half once, at the load,
// so that half h of every side is half h % 2 of word h / 2 and the unpacking
// takes constant shifts. sw_pick selects a word by a run-time index with
// selects, not by indexing the array (which lavapipe would move to scratch
// memory).
#define W_SIDE_WORDS ((W_SIDE + 1u + (W_SIDE & 1u)) / 2u)
// W_SIDE_REGS words hold a loaded side. A type that defines W_SIDE_PREP
// (and W_SIDE_REGS ≥ W_SIDE_WORDS) rewrites its side once per block
// (w_side_prep) into fields that its tiles unpack with fewer operations.
#ifndef W_SIDE_PREP
#define W_SIDE_REGS W_SIDE_WORDS
#else
void w_side_prep(inout uint sw[W_SIDE_REGS]);
#endif

void w_side_load(uint s, out uint sw[W_SIDE_REGS]) {
	[[unroll]] for (uint i = 0; i < W_SIDE_WORDS; i++) {
		sw[i] = ws[s / 2u + i];
	}
	if ((W_SIDE & 1u) != 0u && (s & 1u) != 0u) {
		[[unroll]] for (uint i = 0; i + 1u < W_SIDE_WORDS; i++) {
			sw[i] = (sw[i] >> 16) | (sw[i + 1u] << 16);
		}
		sw[W_SIDE_WORDS - 1u] >>= 16;
	}
#ifdef W_SIDE_PREP
	w_side_prep(sw);
#endif
}

uint sw_pick(uint sw[W_SIDE_REGS], uint w) {
	uint v = sw[0];
	[[unroll]] for (uint i = 1; i < W_SIDE_REGS; i++) {
		v = w == i ? sw[i] : v;
	}
	return v;
}

// sw_byte is byte i of the loaded side, sw_u16 its 16-bit field at half h,
// sw_half that field as an f16.
uint sw_byte(uint sw[W_SIDE_REGS], uint i) {
	return (sw_pick(sw, i >> 2) >> ((i & 3u) * 8u)) & 0xffu;
}

uint sw_u16(uint sw[W_SIDE_REGS], uint h) {
	return (sw_pick(sw, h >> 1) >> ((h & 1u) * 16u)) & 0xffffu;
}

float sw_half(uint sw[W_SIDE_REGS], uint h) {
	return unpackHalf2x16(sw_u16(sw, h)).x;
}

// iq4_value is IQ4_NL's and IQ4_XS's codebook, kvalues[q] for q < 16:
// {−127, −104, −83, −65, −49, −35, −22, −10, 1, 13, 25, 38, 53, 69, 89, 113},
// as four words of int8 picked without a dynamic array index.
float iq4_value(uint q) {
	const uint w = q < 8u ? (q < 4u ? 0xbfad9881u : 0xf6eaddcfu) : (q < 12u ? 0x26190d01u : 0x71594535u);
	return float(bitfieldExtract(int(w), int(8u * (q & 3u)), 8));
}

// ---- Each type's tiles and elements.
#if defined(WEIGHT_Q4_1) || defined(WEIGHT_Q5_0) || defined(WEIGHT_Q5_1) || defined(WEIGHT_IQ4_NL)
// 32-element blocks whose body is the 16 bytes of nibbles qs: byte j holds
// element j in its low nibble and element j+16 in its high one. A tile is a
// block. Sides:
//   Q4_1:   d f16, m f16                    value = q·d + m
//   Q5_0:   d f16, qh u32 (bit j: element j's 5th bit)   value = (q−16)·d
//   Q5_1:   d f16, m f16, qh u32            value = q·d + m
//   IQ4_NL: d f16                           value = d·kvalues[q]

// block_raw is the raw value of nibble q of element j (0..31) of a block
// whose high bits are qh.
float block_raw(uint q, uint j, uint qh) {
#if defined(WEIGHT_IQ4_NL)
	return iq4_value(q);
#elif defined(WEIGHT_Q5_0)
	return float(int(q | (((qh >> j) & 1u) << 4)) - 16);
#elif defined(WEIGHT_Q5_1)
	return float(q | (((qh >> j) & 1u) << 4));
#else
	return float(q);
#endif
}

void w_tile_load(uint row_word, uint blk, uint k, out uvec4 q[W_TILE_VEC4]) {
	q[0] = wq4[row_word / 4u + blk];
}

float w_tile_raw(uvec4 q[W_TILE_VEC4], uint sw[W_SIDE_REGS], uint k, uint c) {
#ifdef W_QH_HALF
	const uint qh = sw_u16(sw, W_QH_HALF) | (sw_u16(sw, W_QH_HALF + 1u) << 16);
#else
	const uint qh = 0u;
#endif
	const uint b = tile_byte(q, c % 16u);
	return block_raw(c < 16u ? b & 15u : b >> 4, c, qh);
}

void w_tile_coefs(uint sw[W_SIDE_REGS], uint k, out float a[1], out float b[1]) {
	a[0] = sw_half(sw, 0u);
#ifdef W_MIN
	b[0] = sw_half(sw, 1u);
#else
	b[0] = 0.0;
#endif
}

float w_elem(uint row_word, uint row_side, uint i) {
	const uint blk = i / 32u, j = i % 32u, s = row_side + blk * W_SIDE;
	const uint byte = body_byte(row_word + blk * W_BODY, j % 16u);
	const uint q = j < 16u ? byte & 15u : byte >> 4;
#ifdef W_QH_HALF
	const float r = block_raw(q, j, side_u16(s + W_QH_HALF) | (side_u16(s + W_QH_HALF + 1u) << 16));
#else
	const float r = block_raw(q, j, 0u);
#endif
	const float d = w_scale(s);
#if defined(WEIGHT_IQ4_NL)
	precise float y = d * r;
#elif defined(W_MIN)
	precise float y = r * d + w_scale(s + 1u);
#else
	precise float y = r * d;
#endif
	return y;
}

#elif defined(WEIGHT_Q2_K)
// Q2_K, 256 elements: body qs[64] (2-bit quants); side scales[16] (low
// nibble: scale, high nibble: min, one per 16 elements), d f16, dmin f16.
// Element 128n + 32j + l (l < 32) is bits 2j of qs[32n + l], in group
// 8n + 2j + l/16; value = d·sc·q − dmin·m. Tile k is qs[32n + 16m …
// +15] (n = k/2, m = k%2): 16 columns of each quarter j of half n.

void w_tile_load(uint row_word, uint blk, uint k, out uvec4 q[W_TILE_VEC4]) {
	q[0] = wq4[(row_word + blk * W_BODY) / 4u + k];
}

float w_tile_raw(uvec4 q[W_TILE_VEC4], uint sw[W_SIDE_REGS], uint k, uint c) {
	return float((tile_byte(q, c % 16u) >> (2u * (c / 16u))) & 3u);
}

void w_tile_coefs(uint sw[W_SIDE_REGS], uint k, out float a[4], out float b[4]) {
	// Group g's scale is scales[8n + 2g + m]: byte m or m+2 of word 2n or
	// 2n+1.
	const float d = sw_half(sw, 8u), dmin = sw_half(sw, 9u);
	const uint n = k / 2u, m = k % 2u;
	const uint lo = (n == 0u ? sw[0] : sw[2]) >> (8u * m), hi = (n == 0u ? sw[1] : sw[3]) >> (8u * m);
	[[unroll]] for (uint g = 0; g < 4; g++) {
		const uint sc = ((g < 2u ? lo : hi) >> (16u * (g % 2u))) & 0xffu;
		a[g] = d * float(sc & 15u);
		b[g] = -(dmin * float(sc >> 4));
	}
}

float w_elem(uint row_word, uint row_side, uint i) {
	const uint blk = i / 256u, e = i % 256u, n = e / 128u, j = (e % 128u) / 32u, l = e % 32u;
	const uint s = row_side + blk * W_SIDE;
	const uint q = (body_byte(row_word + blk * W_BODY, 32u * n + l) >> (2u * j)) & 3u;
	const uint sc = side_byte(s, 8u * n + 2u * j + l / 16u);
	const float dl = w_scale(s + 8u) * float(sc & 15u);
	const float ml = w_scale(s + 9u) * float(sc >> 4);
	precise float y = dl * float(q) - ml;
	return y;
}

#elif defined(WEIGHT_Q3_K)
// Q3_K, 256 elements: body hmask[32], qs[64]; side scales[12] (sixteen
// 6-bit scales, see q3k_scale), d f16. Element 128n + 32j + l (l < 32) has
// low bits 2j of qs[32n + l] and high bit 4n + j of hmask[l] (a clear bit
// subtracts 4), in group 8n + 2j + l/16; value = d·(sc−32)·q. Tile k is
// hmask[16m … +15] and qs[32n + 16m … +15] (n = k/2, m = k%2): 16 columns
// of each quarter j of half n.

// q3k_scale is 6-bit scale i (0..15) minus 32, from the side's scales
// bytes b (the low nibble is nibble i/8 of byte i%8, the high two bits are
// bits 2·(i/4) of byte 8 + i%4).
float q3k_scale(uint lo_byte, uint hi_byte, uint i) {
	const uint lo = (lo_byte >> (4u * (i / 8u))) & 15u;
	const uint hi = (hi_byte >> (2u * (i / 4u))) & 3u;
	return float(int(lo | (hi << 4)) - 32);
}

void w_tile_load(uint row_word, uint blk, uint k, out uvec4 q[W_TILE_VEC4]) {
	const uint v = (row_word + blk * W_BODY) / 4u;
	q[0] = wq4[v + k % 2u]; // hmask
	q[1] = wq4[v + 2u + k]; // qs
}

float w_tile_raw(uvec4 q[W_TILE_VEC4], uint sw[W_SIDE_REGS], uint k, uint c) {
	const uint j = c / 16u, l = c % 16u;
	const uint lo = (tile_byte(q, 16u + l) >> (2u * j)) & 3u;
	const uint h = (tile_byte(q, l) >> (4u * (k / 2u) + j)) & 1u;
	return float(int(lo) - (h != 0u ? 0 : 4));
}

void w_tile_coefs(uint sw[W_SIDE_REGS], uint k, out float a[4], out float b[4]) {
	const float d = sw_half(sw, 6u);
	[[unroll]] for (uint g = 0; g < 4; g++) {
		const uint i = 8u * (k / 2u) + 2u * g + k % 2u;
		a[g] = d * q3k_scale(sw_byte(sw, i % 8u), sw_byte(sw, 8u + i % 4u), i);
		b[g] = 0.0;
	}
}

float w_elem(uint row_word, uint row_side, uint i) {
	const uint blk = i / 256u, e = i % 256u, n = e / 128u, j = (e % 128u) / 32u, l = e % 32u;
	const uint s = row_side + blk * W_SIDE, w = row_word + blk * W_BODY;
	const uint lo = (body_byte(w, 32u + 32u * n + l) >> (2u * j)) & 3u;
	const uint h = (body_byte(w, l) >> (4u * n + j)) & 1u;
	const uint si = 8u * n + 2u * j + l / 16u;
	const float dl = w_scale(s + 6u) * q3k_scale(side_byte(s, si % 8u), side_byte(s, 8u + si % 4u), si);
	precise float y = dl * float(int(lo) - (h != 0u ? 0 : 4));
	return y;
}

#elif defined(WEIGHT_Q4_K) || defined(WEIGHT_Q5_K)
// Q4_K and Q5_K, 256 elements in 8 sub-blocks of 32: side d f16, dmin f16,
// scales[12] (eight 6-bit scales and mins, see k4_scale_min); Q4_K's body is
// qs[128], Q5_K's qh[32] then qs[128]. Sub-blocks 2g and 2g+1 are the low
// and high nibbles of qs[32g … 32g+31]; Q5_K's 5th bit of element l of
// sub-block s is bit s of qh[l]. Value = d·sc·q − dmin·m. A tile is one
// 16-byte run of a pair's qs (w_tile_col): 16 columns of each sub-block.

// k4_scale_min is sub-block j's 6-bit scale and min from the side's
// scales bytes: for j < 4 the low 6 bits of scales[j] and scales[j+4]; for
// j ≥ 4 the nibbles of scales[j+4] with the top two bits of scales[j−4]
// and scales[j]. a, b, c are those three bytes (c unused for j < 4).
uvec2 k4_scale_min(uint j, uint a, uint b, uint c) {
	if (j < 4u) {
		return uvec2(a & 63u, b & 63u);
	}
	return uvec2((c & 15u) | ((a >> 6) << 4), (c >> 4) | ((b >> 6) << 4));
}

void w_tile_load(uint row_word, uint blk, uint k, out uvec4 q[W_TILE_VEC4]) {
	const uint v = (row_word + blk * W_BODY) / 4u;
	q[0] = wq4[v + W_QS / 16u + 2u * (k / 2u) + k % 2u]; // qs[32g + 16m …]
#if defined(WEIGHT_Q5_K)
	q[1] = wq4[v + k % 2u]; // qh[16m …]
#endif
}

float w_tile_raw(uvec4 q[W_TILE_VEC4], uint sw[W_SIDE_REGS], uint k, uint c) {
	const uint l = c % 16u, hi = c / 16u;
	const uint v = (tile_byte(q, l) >> (4u * hi)) & 15u;
#if defined(WEIGHT_Q5_K)
	return float(v | (((tile_byte(q, 16u + l) >> (2u * (k / 2u) + hi)) & 1u) << 4));
#else
	return float(v);
#endif
}

// w_side_prep unpacks the eight 6-bit scales and mins (k4_scale_min) into
// bytes: sw[1] scales 0–3, sw[2] mins 0–3, sw[3] scales 4–7, sw[4] mins 4–7
// (sw[0] keeps d and dmin).
void w_side_prep(inout uint sw[W_SIDE_REGS]) {
	const uint s0 = sw[1], s1 = sw[2], s2 = sw[3];
	sw[1] = s0 & 0x3f3f3f3fu;
	sw[2] = s1 & 0x3f3f3f3fu;
	sw[3] = (s2 & 0x0f0f0f0fu) | ((s0 >> 2) & 0x30303030u);
	sw[4] = ((s2 >> 4) & 0x0f0f0f0fu) | ((s1 >> 2) & 0x30303030u);
}

void w_tile_coefs(uint sw[W_SIDE_REGS], uint k, out float a[2], out float b[2]) {
	const vec2 dm = unpackHalf2x16(sw[0]);
	const uint g = k / 2u; // sub-blocks 2g and 2g+1
	const uint sc = g < 2u ? sw[1] : sw[3], mn = g < 2u ? sw[2] : sw[4];
	[[unroll]] for (uint t = 0; t < 2; t++) {
		const uint sh = 8u * (2u * (g % 2u) + t);
		a[t] = dm.x * float((sc >> sh) & 0xffu);
		b[t] = -(dm.y * float((mn >> sh) & 0xffu));
	}
}

float w_elem(uint row_word, uint row_side, uint i) {
	const uint blk = i / 256u, e = i % 256u, sub = e / 32u, l = e % 32u;
	const uint s = row_side + blk * W_SIDE, w = row_word + blk * W_BODY;
	const uint byte = body_byte(w, W_QS + 32u * (sub / 2u) + l);
	uint q = (sub % 2u) == 0u ? byte & 15u : byte >> 4;
#if defined(WEIGHT_Q5_K)
	q |= ((body_byte(w, l) >> sub) & 1u) << 4;
#endif
	const uint j4 = sub % 4u;
	const uvec2 sm = k4_scale_min(sub, side_byte(s, 4u + j4), side_byte(s, 8u + j4), side_byte(s, 12u + j4));
	const float d1 = w_scale(s) * float(sm.x);
	const float m1 = w_scale(s + 1u) * float(sm.y);
	precise float y = d1 * float(q) - m1;
	return y;
}

#elif defined(WEIGHT_Q6_K)
// Q6_K, 256 elements in two halves of 128: body ql[128] (low 4 bits),
// qh[64] (high 2 bits); side scales int8[16] (one per 16 elements), d f16.
// In half h, for l < 32: element l is ql[64h+l] low | qh[32h+l] bits 0–1,
// l+32 is ql[64h+l+32] low | bits 2–3, l+64 is ql[64h+l] high | bits 4–5,
// l+96 is ql[64h+l+32] high | bits 6–7; group e/16 of the half (scale
// 8h + e/16); value = d·sc·(q−32). A tile is one 16-byte run of each of
// ql's two runs and of qh in a half (w_tile_col): 16 columns of each quarter.

void w_tile_load(uint row_word, uint blk, uint k, out uvec4 q[W_TILE_VEC4]) {
	const uint v = (row_word + blk * W_BODY) / 4u, h = k / 2u, m = k % 2u;
	q[0] = wq4[v + 4u * h + m];      // ql[64h + 16m …], the low runs
	q[1] = wq4[v + 4u * h + 2u + m]; // ql[64h + 32 + 16m …]
	q[2] = wq4[v + 8u + 2u * h + m]; // qh[32h + 16m …]
}

float w_tile_raw(uvec4 q[W_TILE_VEC4], uint sw[W_SIDE_REGS], uint k, uint c) {
	// Column c = 16j + 4w + i is byte i of a word of four quants made from
	// word w of ql's first (j even) or second run and of qh by masks and
	// shifts that serve all four (the compiler merges them); q − 32 is left
	// to the group's offset b.
	const uint j = c / 16u, w = (c % 16u) / 4u, i = c % 4u;
	const uint l = q[j % 2u][w], h = q[2][w];
	const uint hs = j < 2u ? h << (4u - 2u * j) : h >> (2u * j - 4u); // qh's bits 2j, 2j+1 at 4, 5
	const uint v = ((l >> (4u * (j / 2u))) & 0x0f0f0f0fu) | (hs & 0x30303030u);
	return float((v >> (8u * i)) & 0xffu);
}

void w_tile_coefs(uint sw[W_SIDE_REGS], uint k, out float a[4], out float b[4]) {
	// Group g's scale is scales[8h + 2g + m]: byte m or m+2 of word 2h or
	// 2h+1.
	const float d = sw_half(sw, 8u);
	const uint h = k / 2u, m = k % 2u;
	const uint lo = (h == 0u ? sw[0] : sw[2]) >> (8u * m), hi = (h == 0u ? sw[1] : sw[3]) >> (8u * m);
	[[unroll]] for (uint g = 0; g < 4; g++) {
		a[g] = d * float(bitfieldExtract(int(g < 2u ? lo : hi), int(16u * (g % 2u)), 8));
		b[g] = -32.0 * a[g];
	}
}

float w_elem(uint row_word, uint row_side, uint i) {
	const uint blk = i / 256u, e = i % 256u, h = e / 128u, f = e % 128u, k = f / 32u, l = f % 32u;
	const uint s = row_side + blk * W_SIDE, w = row_word + blk * W_BODY;
	const uint lb = body_byte(w, 64u * h + l + 32u * (k % 2u));
	const uint lo = k < 2u ? lb & 15u : lb >> 4;
	const uint hi = (body_byte(w, 128u + 32u * h + l) >> (2u * k)) & 3u;
	const float sc = float(bitfieldExtract(int(side_byte(s, 8u * h + f / 16u)), 0, 8));
	const float dsc = w_scale(s + 8u) * sc;
	precise float y = dsc * float(int(lo | (hi << 4)) - 32);
	return y;
}

#elif defined(WEIGHT_IQ4_XS)
// IQ4_XS, 256 elements in 8 sub-blocks of 32: body qs[128] (sub-block ib is
// qs[16ib … 16ib+15], element j low nibble, j+16 high); side d f16,
// scales_h u16 (bits 2ib: the top two bits of sub-block ib's scale),
// scales_l[4] (nibble ib%2 of byte ib/2: its low four); value =
// d·(ls−32)·kvalues[q]. A tile is a sub-block.

// iq4xs_scale is sub-block ib's scale minus 32, from scales_h and the
// scales_l word.
float iq4xs_scale(uint sh, uint sl, uint ib) {
	const uint lo = (sl >> (4u * ib)) & 15u;
	const uint hi = (sh >> (2u * ib)) & 3u;
	return float(int(lo | (hi << 4)) - 32);
}

void w_tile_load(uint row_word, uint blk, uint k, out uvec4 q[W_TILE_VEC4]) {
	q[0] = wq4[(row_word + blk * W_BODY) / 4u + k];
}

float w_tile_raw(uvec4 q[W_TILE_VEC4], uint sw[W_SIDE_REGS], uint k, uint c) {
	const uint b = tile_byte(q, c % 16u);
	return iq4_value(c < 16u ? b & 15u : b >> 4);
}

void w_tile_coefs(uint sw[W_SIDE_REGS], uint k, out float a[1], out float b[1]) {
	// sw[0] holds d and scales_h, sw[1] scales_l.
	a[0] = unpackHalf2x16(sw[0]).x * iq4xs_scale(sw[0] >> 16, sw[1], k);
	b[0] = 0.0;
}

float w_elem(uint row_word, uint row_side, uint i) {
	const uint blk = i / 256u, e = i % 256u, ib = e / 32u, j = e % 32u;
	const uint s = row_side + blk * W_SIDE;
	const uint byte = body_byte(row_word + blk * W_BODY, 16u * ib + j % 16u);
	const uint sl = side_u16(s + 2u) | (side_u16(s + 3u) << 16);
	const float dl = w_scale(s) * iq4xs_scale(side_u16(s + 1u), sl, ib);
	precise float y = dl * iq4_value(j < 16u ? byte & 15u : byte >> 4);
	return y;
}
#endif
