// quants.glsl: the tiled block types of weights.glsl (W_TILED): Q4_1, Q5_0,
// Q5_1, IQ4_NL (32-element blocks), Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and IQ4_XS
// (256-element blocks). For each: the block's body and side (ops.Pack's
// split of the ggml block), its tiles, and w_elem in ggml's arithmetic.
//
// The matmul takes a row's blocks one at a time: it loads the block's side
// into registers once (w_side_load: W_SIDE_WORDS words), then its W_TPB
// tiles in turn (w_tile_load, w_tile_values, w_tile_coefs with k, the tile
// within the block). Byte i of a block's body is body_byte(row_word +
// blk·W_BODY, i), or tile_byte(q, i) of the uvec4s a tile loaded; byte i of
// its side is side_byte(s, i) from memory, or sw_byte(sw, par, i) from the
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
#define W_TILE 128
#define W_TILE_VEC4 2
#define W_GROUP 16
#define W_MIN
#elif defined(WEIGHT_Q3_K)
#define W_BLOCK 256u
#define W_BODY 24u
#define W_SIDE 7u
#define W_TILE 128
#define W_TILE_VEC4 4
#define W_GROUP 16
#elif defined(WEIGHT_Q4_K) || defined(WEIGHT_Q5_K)
#define W_BLOCK 256u
#define W_SIDE 8u
#define W_TILE 64
#define W_GROUP 32
#define W_MIN
#if defined(WEIGHT_Q4_K)
#define W_BODY 32u
#define W_TILE_VEC4 2
#define W_QS 0u // body byte of qs
#else
#define W_BODY 40u
#define W_TILE_VEC4 4
#define W_QS 32u
#endif
#elif defined(WEIGHT_Q6_K)
#define W_BLOCK 256u
#define W_BODY 48u
#define W_SIDE 9u
#define W_TILE 128
#define W_TILE_VEC4 6
#define W_GROUP 16
#elif defined(WEIGHT_IQ4_XS)
#define W_BLOCK 256u
#define W_BODY 32u
#define W_SIDE 4u
#define W_TILE 64
#define W_TILE_VEC4 2
#define W_GROUP 32
#else
#error "define one WEIGHT_<TYPE> of shaders.WeightTypes"
#endif

#define W_GROUPS (W_TILE / W_GROUP)
#define W_TPB (W_BLOCK / uint(W_TILE)) // tiles per block

uint w_row_words(uint cols) { return cols / W_BLOCK * W_BODY; }
uint w_row_scales(uint cols) { return cols / W_BLOCK * W_SIDE; }

// ---- Side words. A block's side is loaded as W_SIDE_WORDS words from word
// s/2 (s: its first half); par is s & 1, whether it starts in the high half
// of the first word (always 0 for an even W_SIDE). sw_pick selects a word by
// a run-time index with selects, not by indexing the array (which lavapipe
// would move to scratch memory).
#define W_SIDE_WORDS ((W_SIDE + 1u + (W_SIDE & 1u)) / 2u)

void w_side_load(uint s, out uint sw[W_SIDE_WORDS]) {
	[[unroll]] for (uint i = 0; i < W_SIDE_WORDS; i++) {
		sw[i] = ws[s / 2u + i];
	}
}

uint sw_pick(uint sw[W_SIDE_WORDS], uint w) {
	uint v = sw[0];
	[[unroll]] for (uint i = 1; i < W_SIDE_WORDS; i++) {
		v = w == i ? sw[i] : v;
	}
	return v;
}

// sw_byte is byte i of the loaded side, sw_u16 its 16-bit field at half h,
// sw_half that field as an f16.
uint sw_byte(uint sw[W_SIDE_WORDS], uint par, uint i) {
	const uint b = 2u * ((W_SIDE & 1u) != 0u ? par : 0u) + i;
	return (sw_pick(sw, b >> 2) >> ((b & 3u) * 8u)) & 0xffu;
}

uint sw_u16(uint sw[W_SIDE_WORDS], uint par, uint h) {
	const uint b = ((W_SIDE & 1u) != 0u ? par : 0u) + h;
	return (sw_pick(sw, b >> 1) >> ((b & 1u) * 16u)) & 0xffffu;
}

float sw_half(uint sw[W_SIDE_WORDS], uint par, uint h) {
	return unpackHalf2x16(sw_u16(sw, par, h)).x;
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

void w_tile_values(uvec4 q[W_TILE_VEC4], uint sw[W_SIDE_WORDS], uint par, uint k, out float r[W_TILE]) {
#ifdef W_QH_HALF
	const uint qh = sw_u16(sw, par, W_QH_HALF) | (sw_u16(sw, par, W_QH_HALF + 1u) << 16);
#else
	const uint qh = 0u;
#endif
	[[unroll]] for (uint j = 0; j < 16; j++) {
		const uint b = tile_byte(q, j);
		r[j] = block_raw(b & 15u, j, qh);
		r[j + 16] = block_raw(b >> 4, j + 16, qh);
	}
}

void w_tile_coefs(uint sw[W_SIDE_WORDS], uint par, uint k, out float a[1], out float b[1]) {
	a[0] = sw_half(sw, par, 0u);
#ifdef W_MIN
	b[0] = sw_half(sw, par, 1u);
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
// 8n + 2j + l/16; value = d·sc·q − dmin·m. A tile is a half block (n).

void w_tile_load(uint row_word, uint blk, uint k, out uvec4 q[W_TILE_VEC4]) {
	const uint v = (row_word + blk * W_BODY) / 4u + 2u * k;
	q[0] = wq4[v];
	q[1] = wq4[v + 1u];
}

void w_tile_values(uvec4 q[W_TILE_VEC4], uint sw[W_SIDE_WORDS], uint par, uint k, out float r[W_TILE]) {
	[[unroll]] for (uint j = 0; j < 4; j++) {
		[[unroll]] for (uint l = 0; l < 32; l++) {
			r[32 * j + l] = float((tile_byte(q, l) >> (2u * j)) & 3u);
		}
	}
}

void w_tile_coefs(uint sw[W_SIDE_WORDS], uint par, uint k, out float a[8], out float b[8]) {
	const float d = sw_half(sw, par, 8u), dmin = sw_half(sw, par, 9u);
	const uint lo = k == 0u ? sw[0] : sw[2], hi = k == 0u ? sw[1] : sw[3]; // scales 8k … 8k+7
	[[unroll]] for (uint g = 0; g < 8; g++) {
		const uint sc = ((g < 4 ? lo : hi) >> (8u * (g % 4u))) & 0xffu;
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
// subtracts 4), in group 8n + 2j + l/16; value = d·(sc−32)·q. A tile is a
// half block (n).

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
	q[0] = wq4[v]; // hmask
	q[1] = wq4[v + 1u];
	q[2] = wq4[v + 2u + 2u * k]; // qs of half k
	q[3] = wq4[v + 3u + 2u * k];
}

void w_tile_values(uvec4 q[W_TILE_VEC4], uint sw[W_SIDE_WORDS], uint par, uint k, out float r[W_TILE]) {
	[[unroll]] for (uint j = 0; j < 4; j++) {
		[[unroll]] for (uint l = 0; l < 32; l++) {
			const uint lo = (tile_byte(q, 32u + l) >> (2u * j)) & 3u;
			const uint h = (tile_byte(q, l) >> (4u * k + j)) & 1u;
			r[32 * j + l] = float(int(lo) - (h != 0u ? 0 : 4));
		}
	}
}

void w_tile_coefs(uint sw[W_SIDE_WORDS], uint par, uint k, out float a[8], out float b[8]) {
	const float d = sw_half(sw, par, 6u);
	[[unroll]] for (uint g = 0; g < 8; g++) {
		const uint i = 8u * k + g;
		a[g] = d * q3k_scale(sw_byte(sw, par, g), sw_byte(sw, par, 8u + g % 4u), i);
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
// sub-block s is bit s of qh[l]. Value = d·sc·q − dmin·m. A tile is a pair
// of sub-blocks (g).

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
#if defined(WEIGHT_Q5_K)
	q[2] = wq4[v]; // qh, after the tile's qs
	q[3] = wq4[v + 1u];
#endif
	q[0] = wq4[v + W_QS / 16u + 2u * k];
	q[1] = wq4[v + W_QS / 16u + 2u * k + 1u];
}

void w_tile_values(uvec4 q[W_TILE_VEC4], uint sw[W_SIDE_WORDS], uint par, uint k, out float r[W_TILE]) {
	[[unroll]] for (uint l = 0; l < 32; l++) {
		const uint b = tile_byte(q, l);
#if defined(WEIGHT_Q5_K)
		const uint h = tile_byte(q, 32u + l) >> (2u * k);
		r[l] = float((b & 15u) | ((h & 1u) << 4));
		r[l + 32] = float((b >> 4) | ((h & 2u) << 3));
#else
		r[l] = float(b & 15u);
		r[l + 32] = float(b >> 4);
#endif
	}
}

void w_tile_coefs(uint sw[W_SIDE_WORDS], uint par, uint k, out float a[2], out float b[2]) {
	// sw[0] holds d and dmin; sw[1], sw[2], sw[3] scales bytes 0–3, 4–7, 8–11.
	const vec2 dm = unpackHalf2x16(sw[0]);
	[[unroll]] for (uint t = 0; t < 2; t++) {
		const uint j = 2u * k + t, sh = 8u * (j % 4u);
		const uvec2 sm = k4_scale_min(j, (sw[1] >> sh) & 0xffu, (sw[2] >> sh) & 0xffu, (sw[3] >> sh) & 0xffu);
		a[t] = dm.x * float(sm.x);
		b[t] = -(dm.y * float(sm.y));
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
// 8h + e/16); value = d·sc·(q−32). A tile is a half.

void w_tile_load(uint row_word, uint blk, uint k, out uvec4 q[W_TILE_VEC4]) {
	const uint v = (row_word + blk * W_BODY) / 4u;
	[[unroll]] for (uint i = 0; i < 4; i++) {
		q[i] = wq4[v + 4u * k + i]; // ql of half k
	}
	q[4] = wq4[v + 8u + 2u * k]; // qh of half k
	q[5] = wq4[v + 9u + 2u * k];
}

void w_tile_values(uvec4 q[W_TILE_VEC4], uint sw[W_SIDE_WORDS], uint par, uint k, out float r[W_TILE]) {
	[[unroll]] for (uint l = 0; l < 32; l++) {
		const uint a = tile_byte(q, l), b = tile_byte(q, l + 32u), h = tile_byte(q, 64u + l);
		r[l] = float(int((a & 15u) | ((h & 3u) << 4)) - 32);
		r[l + 32] = float(int((b & 15u) | (((h >> 2) & 3u) << 4)) - 32);
		r[l + 64] = float(int((a >> 4) | (((h >> 4) & 3u) << 4)) - 32);
		r[l + 96] = float(int((b >> 4) | ((h >> 6) << 4)) - 32);
	}
}

void w_tile_coefs(uint sw[W_SIDE_WORDS], uint par, uint k, out float a[8], out float b[8]) {
	const float d = sw_half(sw, par, 8u);
	[[unroll]] for (uint g = 0; g < 8; g++) {
		a[g] = d * float(bitfieldExtract(int(sw_byte(sw, par, 8u * k + g)), 0, 8));
		b[g] = 0.0;
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
// d·(ls−32)·kvalues[q]. A tile is a pair of sub-blocks.

// iq4xs_scale is sub-block ib's scale minus 32, from scales_h and the
// scales_l word.
float iq4xs_scale(uint sh, uint sl, uint ib) {
	const uint lo = (sl >> (4u * ib)) & 15u;
	const uint hi = (sh >> (2u * ib)) & 3u;
	return float(int(lo | (hi << 4)) - 32);
}

void w_tile_load(uint row_word, uint blk, uint k, out uvec4 q[W_TILE_VEC4]) {
	const uint v = (row_word + blk * W_BODY) / 4u + 2u * k;
	q[0] = wq4[v];
	q[1] = wq4[v + 1u];
}

void w_tile_values(uvec4 q[W_TILE_VEC4], uint sw[W_SIDE_WORDS], uint par, uint k, out float r[W_TILE]) {
	[[unroll]] for (uint t = 0; t < 2; t++) {
		[[unroll]] for (uint j = 0; j < 16; j++) {
			const uint b = tile_byte(q, 16u * t + j);
			r[32 * t + j] = iq4_value(b & 15u);
			r[32 * t + j + 16] = iq4_value(b >> 4);
		}
	}
}

void w_tile_coefs(uint sw[W_SIDE_WORDS], uint par, uint k, out float a[2], out float b[2]) {
	// sw[0] holds d and scales_h, sw[1] scales_l.
	const float d = unpackHalf2x16(sw[0]).x;
	[[unroll]] for (uint t = 0; t < 2; t++) {
		a[t] = d * iq4xs_scale(sw[0] >> 16, sw[1], 2u * k + t);
		b[t] = 0.0;
	}
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
