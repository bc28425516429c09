// quants.glsl: the tiled block types of weights.glsl (W_TILED): Q4_1, Q5_0,
// Q5_1, IQ4_NL (32-element blocks), Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and IQ4_XS
// (256-element blocks). For each: the block's body and side (ops.Pack's
// split of the ggml block), its tiles, and w_elem in ggml's arithmetic.
//
// Byte i of a block's body is body_byte(row_word + blk·W_BODY, i), or
// tile_byte(q, i) of the uvec4s a tile loaded; byte i of its side is
// side_byte(row_side + blk·W_SIDE, i).
#define W_TILED

// iq4_value is IQ4_NL's and IQ4_XS's codebook, kvalues[q] for q < 16:
// {−127, −104, −83, −65, −49, −35, −22, −10, 1, 13, 25, 38, 53, 69, 89, 113},
// as four words of int8 picked without a dynamic array index.
float iq4_value(uint q) {
	const uint w = q < 8u ? (q < 4u ? 0xbfad9881u : 0xf6eaddcfu) : (q < 12u ? 0x26190d01u : 0x71594535u);
	return float(bitfieldExtract(int(w), int(8u * (q & 3u)), 8));
}

#if defined(WEIGHT_Q4_1) || defined(WEIGHT_Q5_0) || defined(WEIGHT_Q5_1) || defined(WEIGHT_IQ4_NL)
// 32-element blocks whose body is the 16 bytes of nibbles qs: byte j holds
// element j in its low nibble and element j+16 in its high one. A tile is a
// block. Sides:
//   Q4_1:   d f16, m f16                    value = q·d + m
//   Q5_0:   d f16, qh u32 (bit j: element j's 5th bit)   value = (q−16)·d
//   Q5_1:   d f16, m f16, qh u32            value = q·d + m
//   IQ4_NL: d f16                           value = d·kvalues[q]
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

uint w_row_words(uint cols) { return cols / 32u * W_BODY; }
uint w_row_scales(uint cols) { return cols / 32u * W_SIDE; }

#ifdef W_QH_HALF
uint block_qh(uint side) {
	return side_u16(side + W_QH_HALF) | (side_u16(side + W_QH_HALF + 1u) << 16);
}
#endif

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

void w_tile_load(uint row_word, uint t, out uvec4 q[W_TILE_VEC4]) {
	q[0] = wq4[row_word / 4u + t];
}

void w_tile_values(uvec4 q[W_TILE_VEC4], uint row_side, uint t, out float r[W_TILE]) {
#ifdef W_QH_HALF
	const uint qh = block_qh(row_side + t * W_SIDE);
#else
	const uint qh = 0u;
#endif
	[[unroll]] for (uint j = 0; j < 16; j++) {
		const uint b = tile_byte(q, j);
		r[j] = block_raw(b & 15u, j, qh);
		r[j + 16] = block_raw(b >> 4, j + 16, qh);
	}
}

void w_tile_coefs(uint row_side, uint t, out float a[1], out float b[1]) {
	const uint s = row_side + t * W_SIDE;
	a[0] = w_scale(s);
#ifdef W_MIN
	b[0] = w_scale(s + 1u);
#else
	b[0] = 0.0;
#endif
}

float w_elem(uint row_word, uint row_side, uint i) {
	const uint blk = i / 32u, j = i % 32u, s = row_side + blk * W_SIDE;
	const uint byte = body_byte(row_word + blk * W_BODY, j % 16u);
	const uint q = j < 16u ? byte & 15u : byte >> 4;
#ifdef W_QH_HALF
	const float r = block_raw(q, j, block_qh(s));
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
#define W_BLOCK 256u
#define W_BODY 16u
#define W_SIDE 10u
#define W_TILE 128
#define W_TILE_VEC4 2
#define W_GROUP 16
#define W_MIN

uint w_row_words(uint cols) { return cols / 256u * W_BODY; }
uint w_row_scales(uint cols) { return cols / 256u * W_SIDE; }

void w_tile_load(uint row_word, uint t, out uvec4 q[W_TILE_VEC4]) {
	const uint v = (row_word + (t / 2u) * W_BODY) / 4u + 2u * (t % 2u);
	q[0] = wq4[v];
	q[1] = wq4[v + 1u];
}

void w_tile_values(uvec4 q[W_TILE_VEC4], uint row_side, uint t, out float r[W_TILE]) {
	[[unroll]] for (uint j = 0; j < 4; j++) {
		[[unroll]] for (uint l = 0; l < 32; l++) {
			r[32 * j + l] = float((tile_byte(q, l) >> (2u * j)) & 3u);
		}
	}
}

void w_tile_coefs(uint row_side, uint t, out float a[8], out float b[8]) {
	const uint s = row_side + (t / 2u) * W_SIDE;
	const float d = w_scale(s + 8u), dmin = w_scale(s + 9u);
	[[unroll]] for (uint g = 0; g < 8; g += 2) {
		const uint w = side_u16(s + 4u * (t % 2u) + g / 2u); // scales 8n+g, 8n+g+1
		a[g] = d * float(w & 15u);
		b[g] = -(dmin * float((w >> 4) & 15u));
		a[g + 1] = d * float((w >> 8) & 15u);
		b[g + 1] = -(dmin * float(w >> 12));
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
#define W_BLOCK 256u
#define W_BODY 24u
#define W_SIDE 7u
#define W_TILE 128
#define W_TILE_VEC4 4
#define W_GROUP 16

uint w_row_words(uint cols) { return cols / 256u * W_BODY; }
uint w_row_scales(uint cols) { return cols / 256u * W_SIDE; }

// q3k_scale is 6-bit scale i (0..15) of the side at half s, minus 32: its
// low nibble is nibble i/8 of byte i%8 of scales, its high two bits are
// bits 2·(i/4) of byte 8 + i%4.
float q3k_scale(uint s, uint i) {
	const uint lo = (side_byte(s, i % 8u) >> (4u * (i / 8u))) & 15u;
	const uint hi = (side_byte(s, 8u + i % 4u) >> (2u * (i / 4u))) & 3u;
	return float(int(lo | (hi << 4)) - 32);
}

void w_tile_load(uint row_word, uint t, out uvec4 q[W_TILE_VEC4]) {
	const uint v = (row_word + (t / 2u) * W_BODY) / 4u;
	q[0] = wq4[v]; // hmask
	q[1] = wq4[v + 1u];
	q[2] = wq4[v + 2u + 2u * (t % 2u)]; // qs of half t % 2
	q[3] = wq4[v + 3u + 2u * (t % 2u)];
}

void w_tile_values(uvec4 q[W_TILE_VEC4], uint row_side, uint t, out float r[W_TILE]) {
	const uint n = t % 2u;
	[[unroll]] for (uint j = 0; j < 4; j++) {
		[[unroll]] for (uint l = 0; l < 32; l++) {
			const uint lo = (tile_byte(q, 32u + l) >> (2u * j)) & 3u;
			const uint h = (tile_byte(q, l) >> (4u * n + j)) & 1u;
			r[32 * j + l] = float(int(lo) - (h != 0u ? 0 : 4));
		}
	}
}

void w_tile_coefs(uint row_side, uint t, out float a[8], out float b[8]) {
	const uint s = row_side + (t / 2u) * W_SIDE;
	const float d = w_scale(s + 6u);
	[[unroll]] for (uint g = 0; g < 8; g++) {
		a[g] = d * q3k_scale(s, 8u * (t % 2u) + g);
		b[g] = 0.0;
	}
}

float w_elem(uint row_word, uint row_side, uint i) {
	const uint blk = i / 256u, e = i % 256u, n = e / 128u, j = (e % 128u) / 32u, l = e % 32u;
	const uint s = row_side + blk * W_SIDE, w = row_word + blk * W_BODY;
	const uint lo = (body_byte(w, 32u + 32u * n + l) >> (2u * j)) & 3u;
	const uint h = (body_byte(w, l) >> (4u * n + j)) & 1u;
	const float dl = w_scale(s + 6u) * q3k_scale(s, 8u * n + 2u * j + l / 16u);
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

uint w_row_words(uint cols) { return cols / 256u * W_BODY; }
uint w_row_scales(uint cols) { return cols / 256u * W_SIDE; }

// k4_scale_min is sub-block j's 6-bit scale and min from the side at half
// s: for j < 4 the low 6 bits of scales[j] and scales[j+4]; for j ≥ 4 the
// nibbles of scales[j+4] with the top two bits of scales[j−4] and scales[j].
uvec2 k4_scale_min(uint s, uint j) {
	if (j < 4u) {
		return uvec2(side_byte(s, 4u + j) & 63u, side_byte(s, 8u + j) & 63u);
	}
	const uint c = side_byte(s, 8u + j);
	return uvec2((c & 15u) | ((side_byte(s, j) >> 6) << 4), (c >> 4) | ((side_byte(s, 4u + j) >> 6) << 4));
}

void w_tile_load(uint row_word, uint t, out uvec4 q[W_TILE_VEC4]) {
	const uint v = (row_word + (t / 4u) * W_BODY) / 4u;
#if defined(WEIGHT_Q5_K)
	q[2] = wq4[v]; // qh, after the tile's qs
	q[3] = wq4[v + 1u];
#endif
	q[0] = wq4[v + W_QS / 16u + 2u * (t % 4u)];
	q[1] = wq4[v + W_QS / 16u + 2u * (t % 4u) + 1u];
}

void w_tile_values(uvec4 q[W_TILE_VEC4], uint row_side, uint t, out float r[W_TILE]) {
	[[unroll]] for (uint l = 0; l < 32; l++) {
		const uint b = tile_byte(q, l);
#if defined(WEIGHT_Q5_K)
		const uint h = tile_byte(q, 32u + l) >> (2u * (t % 4u));
		r[l] = float((b & 15u) | ((h & 1u) << 4));
		r[l + 32] = float((b >> 4) | ((h & 2u) << 3));
#else
		r[l] = float(b & 15u);
		r[l + 32] = float(b >> 4);
#endif
	}
}

void w_tile_coefs(uint row_side, uint t, out float a[2], out float b[2]) {
	const uint s = row_side + (t / 4u) * W_SIDE;
	const float d = w_scale(s), dmin = w_scale(s + 1u);
	[[unroll]] for (uint k = 0; k < 2; k++) {
		const uvec2 sm = k4_scale_min(s, 2u * (t % 4u) + k);
		a[k] = d * float(sm.x);
		b[k] = -(dmin * float(sm.y));
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
	const uvec2 sm = k4_scale_min(s, sub);
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
#define W_BLOCK 256u
#define W_BODY 48u
#define W_SIDE 9u
#define W_TILE 128
#define W_TILE_VEC4 6
#define W_GROUP 16

uint w_row_words(uint cols) { return cols / 256u * W_BODY; }
uint w_row_scales(uint cols) { return cols / 256u * W_SIDE; }

void w_tile_load(uint row_word, uint t, out uvec4 q[W_TILE_VEC4]) {
	const uint v = (row_word + (t / 2u) * W_BODY) / 4u, h = t % 2u;
	[[unroll]] for (uint k = 0; k < 4; k++) {
		q[k] = wq4[v + 4u * h + k]; // ql of half h
	}
	q[4] = wq4[v + 8u + 2u * h]; // qh of half h
	q[5] = wq4[v + 9u + 2u * h];
}

void w_tile_values(uvec4 q[W_TILE_VEC4], uint row_side, uint t, out float r[W_TILE]) {
	[[unroll]] for (uint l = 0; l < 32; l++) {
		const uint a = tile_byte(q, l), b = tile_byte(q, l + 32u), h = tile_byte(q, 64u + l);
		r[l] = float(int((a & 15u) | ((h & 3u) << 4)) - 32);
		r[l + 32] = float(int((b & 15u) | (((h >> 2) & 3u) << 4)) - 32);
		r[l + 64] = float(int((a >> 4) | (((h >> 4) & 3u) << 4)) - 32);
		r[l + 96] = float(int((b >> 4) | ((h >> 6) << 4)) - 32);
	}
}

// q6k_scale is int8 scale i of the side at half s.
float q6k_scale(uint s, uint i) {
	return float(bitfieldExtract(int(side_byte(s, i)), 0, 8));
}

void w_tile_coefs(uint row_side, uint t, out float a[8], out float b[8]) {
	const uint s = row_side + (t / 2u) * W_SIDE;
	const float d = w_scale(s + 8u);
	[[unroll]] for (uint g = 0; g < 8; g++) {
		a[g] = d * q6k_scale(s, 8u * (t % 2u) + g);
		b[g] = 0.0;
	}
}

float w_elem(uint row_word, uint row_side, uint i) {
	const uint blk = i / 256u, e = i % 256u, h = e / 128u, f = e % 128u, k = f / 32u, l = f % 32u;
	const uint s = row_side + blk * W_SIDE, w = row_word + blk * W_BODY;
	const uint lb = body_byte(w, 64u * h + l + 32u * (k % 2u));
	const uint lo = k < 2u ? lb & 15u : lb >> 4;
	const uint hi = (body_byte(w, 128u + 32u * h + l) >> (2u * k)) & 3u;
	const float dsc = w_scale(s + 8u) * q6k_scale(s, 8u * h + f / 16u);
	precise float y = dsc * float(int(lo | (hi << 4)) - 32);
	return y;
}

#elif defined(WEIGHT_IQ4_XS)
// IQ4_XS, 256 elements in 8 sub-blocks of 32: body qs[128] (sub-block ib is
// qs[16ib … 16ib+15], element j low nibble, j+16 high); side d f16,
// scales_h u16 (bits 2ib: the top two bits of sub-block ib's scale),
// scales_l[4] (nibble ib%2 of byte ib/2: its low four); value =
// d·(ls−32)·kvalues[q]. A tile is a pair of sub-blocks.
#define W_BLOCK 256u
#define W_BODY 32u
#define W_SIDE 4u
#define W_TILE 64
#define W_TILE_VEC4 2
#define W_GROUP 32

uint w_row_words(uint cols) { return cols / 256u * W_BODY; }
uint w_row_scales(uint cols) { return cols / 256u * W_SIDE; }

// iq4xs_scale is sub-block ib's scale minus 32, from the side at half s.
float iq4xs_scale(uint s, uint ib) {
	const uint lo = (side_byte(s, 4u + ib / 2u) >> (4u * (ib % 2u))) & 15u;
	const uint hi = (side_u16(s + 1u) >> (2u * ib)) & 3u;
	return float(int(lo | (hi << 4)) - 32);
}

void w_tile_load(uint row_word, uint t, out uvec4 q[W_TILE_VEC4]) {
	const uint v = (row_word + (t / 4u) * W_BODY) / 4u + 2u * (t % 4u);
	q[0] = wq4[v];
	q[1] = wq4[v + 1u];
}

void w_tile_values(uvec4 q[W_TILE_VEC4], uint row_side, uint t, out float r[W_TILE]) {
	[[unroll]] for (uint k = 0; k < 2; k++) {
		[[unroll]] for (uint j = 0; j < 16; j++) {
			const uint b = tile_byte(q, 16u * k + j);
			r[32 * k + j] = iq4_value(b & 15u);
			r[32 * k + j + 16] = iq4_value(b >> 4);
		}
	}
}

void w_tile_coefs(uint row_side, uint t, out float a[2], out float b[2]) {
	const uint s = row_side + (t / 4u) * W_SIDE;
	const float d = w_scale(s);
	[[unroll]] for (uint k = 0; k < 2; k++) {
		a[k] = d * iq4xs_scale(s, 2u * (t % 4u) + k);
		b[k] = 0.0;
	}
}

float w_elem(uint row_word, uint row_side, uint i) {
	const uint blk = i / 256u, e = i % 256u, ib = e / 32u, j = e % 32u;
	const uint s = row_side + blk * W_SIDE;
	const uint byte = body_byte(row_word + blk * W_BODY, 16u * ib + j % 16u);
	const float dl = w_scale(s) * iq4xs_scale(s, ib);
	precise float y = dl * iq4_value(j < 16u ? byte & 15u : byte >> 4);
	return y;
}

#else
#error "define one WEIGHT_<TYPE> of shaders.WeightTypes"
#endif

#define W_GROUPS (W_TILE / W_GROUP)
