// attention_common.glsl: what both sliding-window attention bodies share:
// the push constants, the bindings, the ring's element type, the order of a
// query's keys (its sinks, then its band), their rows in the ring, and the
// score soft-cap (semantics in attention.glsl).
#include "common.glsl"
#include "attention_split.glsl"

layout(push_constant) uniform Params {
	uint n_heads;  // query heads
	uint group;    // query heads per KV head: head h reads KV head h / group
	uint head_dim; // even, at most MAX_HEAD_DIM
	uint kv_dim;   // KV heads × head_dim: the row length of k, v and the ring
	uint window;   // W: the query at pos attends keys max(0, pos − W + 1) … pos; 0: a global ring
	uint slots;    // the ring's slots: position j ≥ sinks lives in row sinks + j mod slots (slots ≥ W)
	uint q0;       // chunk row of this dispatch's first query
	uint rows;     // queries in this dispatch
	float scale;   // scores are kept in base 2: log2(e)·Scale, or Scale/c when soft-capped
	float softcap; // 0: none; else log2(e)·c, and a score is softcap·tanh(q·k·scale)
	uint q_off;    // element offsets into each binding
	uint k_off;
	uint v_off;
	uint rk_off;
	uint rv_off;
	uint step_off;
	uint out_off;
	uint q_stride;  // elements from one query row to the next (≥ n_heads·head_dim)
	uint kv_stride; // elements from one chunk k or v row to the next (≥ kv_dim)
	uint splits;    // S: the band is cut into S splits (GPU layout; 1 in the CPU layout)
	uint part_off;  // element offset into the partials binding (GPU layout, S > 1), or the probabilities (PROBS)
	uint sinks;     // N: keys 0 … N−1 are attended beside every band, from rows 0 … N−1 (0 with a global ring)
	uint sq_off;    // element offset of the sink queries (binding 7)
	uint sq_stride; // elements from one sink query row to the next
} p;

#ifdef RING_F16
#define RING_T uint   // two halves, element 2c in the low bits
#define RING4_T uvec4 // eight halves
#define RING_VEC 8u   // elements per RING4_T
#else
#define RING_T float
#define RING4_T vec4
#define RING_VEC 4u
#endif

// Keys are also read through 16-byte views of the same bindings when the
// rows and offsets allow (a thread scores a whole key, so wide loads cut the
// load count 4×); the arithmetic is the same either way.
layout(binding = 0) readonly buffer QBuf { float q[]; };          // (rows, q_stride) f32
layout(binding = 1) readonly buffer KBuf { float kc[]; };         // (q0+rows, kv_stride) f32, from chunk row 0
layout(binding = 1) readonly buffer KBuf4 { vec4 kc4[]; };
layout(binding = 2) readonly buffer VBuf { float vc[]; };         // (q0+rows, kv_stride) f32
layout(binding = 2) readonly buffer VBuf4 { vec4 vc4[]; };
// With STORE (swa_store*.comp, swa_keys_store*.comp) the kernel also writes the
// chunk's keys and values into the ring, so the ring is not read-only there.
#ifdef STORE
#define RING_ACCESS
#else
#define RING_ACCESS readonly
#endif
layout(binding = 3) RING_ACCESS buffer RKBuf { RING_T rk[]; };       // (sinks + slots, kv_dim) ring keys
layout(binding = 3) RING_ACCESS buffer RKBuf4 { RING4_T rk4[]; };
layout(binding = 4) RING_ACCESS buffer RVBuf { RING_T rv[]; };       // (sinks + slots, kv_dim) ring values
layout(binding = 4) RING_ACCESS buffer RVBuf4 { RING4_T rv4[]; };
layout(binding = 5) readonly buffer StepBuf { uint step[]; };     // step[step_off] = pos0
layout(binding = 6) writeonly buffer OutBuf { float o[]; };       // (rows, n_heads*head_dim) f32
// The sink queries, (rows, sq_stride) f32: each query rotated at its cache
// position, which scores the sinks (StreamingLLM's positions: RATIONALE.md,
// "Sinks sit at their cache positions"). Read only with SQ = 1; the host
// binds q itself otherwise.
layout(binding = 7) readonly buffer SQBuf { float sq[]; };

// as_ring rounds a chunk pair to the ring's type.
vec2 as_ring(vec2 x) {
#ifdef RING_F16
	return unpackHalf2x16(packHalf2x16(x));
#else
	return x;
#endif
}

// Band state shared by the helpers: the band's first key lo, its slot
// lo mod slots, and the sinks ns = min(sinks, lo) that precede the band.
// Key j ≥ sinks of the band (lo ≤ j < lo + band_keys ≤ lo + slots) lives in
// slot slot_of(j), found without a division per key.
uint band_lo;
uint band_slot;
uint band_sinks;

uint slot_of(uint j) {
	const uint s = band_slot + (j - band_lo);
	return s >= p.slots ? s - p.slots : s;
}

// row_of is the ring row of key j of the query's keys: sink row j for
// j < sinks (written once, never overwritten), else row sinks + slot_of(j).
uint row_of(uint j) {
	return j < p.sinks ? j : p.sinks + slot_of(j);
}

// key_pos is the position of the query's key u, 0 ≤ u < n: the sinks
// 0 … ns−1 first, then the band lo … pos. It rises with u, so the keys
// from the ring (positions below pos0) come first.
uint key_pos(uint u) {
	return u < band_sinks ? u : band_lo + (u - band_sinks);
}

// ring_keys is how many of the query's n keys come from the ring (positions
// below pos0): the first ring_keys(n, pos0) in key order.
uint ring_keys(uint n, uint pos0) {
	const uint band = min(pos0 > band_lo ? pos0 - band_lo : 0, n - band_sinks);
	return min(band_sinks, pos0) + band;
}

// begin_band sets the keys of the query at position pos: the sinks j in
// [0, ns), ns = min(sinks, lo), then the band j in [lo, pos], lo =
// max(0, pos − W + 1) (0 for a global ring), itself included, each key
// once. It returns their count n = attended(pos, …), at most
// band_keys(window, slots) + sinks.
uint begin_band(uint pos) {
	band_lo = band_first(pos, band_keys(p.window, p.slots));
	band_slot = band_lo % p.slots;
	band_sinks = min(p.sinks, band_lo);
	return band_sinks + pos - band_lo + 1;
}

#ifdef STORE
// store_kv writes chunk row i, at position pos, of the KV head at col into
// its ring row, as kv_store_*.comp does (attention_store.glsl: the same row,
// the same rounding), so that StoreKV needs no dispatch of its own. The host
// runs this variant only when no query of the chunk reads a row that the
// chunk writes (Ring.StoreFuses): at most slots − band + 1 tokens (one, a
// decode step, when slots is the band), whose rows hold positions below
// every band of the chunk.
void store_kv(uint i, uint pos, uint col) {
	const uint row = pos < p.sinks ? pos : p.sinks + pos % p.slots;
	const uint src = i * p.kv_stride + col;
	for (uint c = gl_LocalInvocationID.x; c < p.head_dim / 2; c += WG) {
		const vec2 k = vec2(kc[p.k_off + src + 2 * c], kc[p.k_off + src + 2 * c + 1]);
		const vec2 v = vec2(vc[p.v_off + src + 2 * c], vc[p.v_off + src + 2 * c + 1]);
#ifdef RING_F16
		const uint dst = (row * p.kv_dim + col) / 2 + c;
		rk[p.rk_off + dst] = packHalf2x16(k);
		rv[p.rv_off + dst] = packHalf2x16(v);
#else
		const uint dst = row * p.kv_dim + col + 2 * c;
		rk[p.rk_off + dst] = k.x;
		rk[p.rk_off + dst + 1] = k.y;
		rv[p.rv_off + dst] = v.x;
		rv[p.rv_off + dst + 1] = v.y;
#endif
	}
}
#endif

// softcap_tanh is tanh(x) by a formula that cannot overflow: tanh of a large
// argument, as (e^x − e^−x)/(e^x + e^−x), is inf/inf = NaN on some drivers.
// |x| is clamped to 10 (tanh(10) is 1 in f32). Below |x| = 0.25 the odd
// Taylor series through x⁹ (truncation < 1e-8 relative) keeps the relative
// accuracy that 1 − 2/(e^2|x| + 1), used above, loses to cancellation near 0.
float softcap_tanh(float x) {
	const float a = min(abs(x), 10.0);
	const float z = a * a;
	precise float small = a * (1.0 + z * (-1.0 / 3.0 + z * (2.0 / 15.0 + z * (-17.0 / 315.0 + z * (62.0 / 2835.0)))));
	precise float large = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
	const float t = a < 0.25 ? small : large;
	return x < 0.0 ? -t : t;
}

// capped soft-caps s, a q·k times scale (Scale/c), to the base-2 score
// softcap·tanh(s) = log2(e)·c·tanh(q·k·Scale/c); the caller applies it only
// when p.softcap ≠ 0.
float capped(float s) {
	precise float c = p.softcap * softcap_tanh(s);
	return c;
}
