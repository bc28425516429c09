// attention_common.glsl: what both sliding-window attention bodies share:
// the push constants, the bindings, the ring's element type and the band's
// slot arithmetic (semantics in attention.glsl).
#include "common.glsl"
#include "attention_split.glsl"

layout(push_constant) uniform Params {
	uint n_heads;  // query heads
	uint group;    // query heads per KV head: head h reads KV head h / group
	uint head_dim; // even, at most MAX_HEAD_DIM
	uint kv_dim;   // KV heads × head_dim: the row length of k, v and the ring
	uint window;   // W, the ring's slots
	uint q0;       // chunk row of this dispatch's first query
	uint rows;     // queries in this dispatch
	float scale;   // log2(e) / sqrt(head_dim): scores are kept in base 2
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
	uint part_off;  // element offset into the partials binding (GPU layout, S > 1)
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
layout(binding = 3) readonly buffer RKBuf { RING_T rk[]; };       // (W, kv_dim) ring keys
layout(binding = 3) readonly buffer RKBuf4 { RING4_T rk4[]; };
layout(binding = 4) readonly buffer RVBuf { RING_T rv[]; };       // (W, kv_dim) ring values
layout(binding = 4) readonly buffer RVBuf4 { RING4_T rv4[]; };
layout(binding = 5) readonly buffer StepBuf { uint step[]; };     // step[step_off] = pos0
layout(binding = 6) writeonly buffer OutBuf { float o[]; };       // (rows, n_heads*head_dim) f32

// as_ring rounds a chunk pair to the ring's type.
vec2 as_ring(vec2 x) {
#ifdef RING_F16
	return unpackHalf2x16(packHalf2x16(x));
#else
	return x;
#endif
}

// Band state shared by the helpers: the band's first key lo, and its slot
// lo mod W. Key j of the band (lo ≤ j ≤ lo + W − 1) lives in slot
// slot_of(j), found without a division per key.
uint band_lo;
uint band_slot;

uint slot_of(uint j) {
	const uint s = band_slot + (j - band_lo);
	return s >= p.window ? s - p.window : s;
}

// begin_band sets the band of the query at position pos: the keys j in
// [lo, pos], lo = max(0, pos − W + 1), itself included. It returns their
// count, at most W.
uint begin_band(uint pos) {
	band_lo = pos >= p.window ? pos - p.window + 1 : 0;
	band_slot = band_lo % p.window;
	return pos - band_lo + 1;
}

