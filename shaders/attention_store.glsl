// attention_store.glsl: StoreKV, the body of kv_store_f32.comp and
// kv_store_f16.comp (RING_F16 defined). It writes a chunk's keys and values,
// chunk row i being absolute position q = pos0 + i, into ring row q when
// q < sinks (a sink row, written once) and row sinks + q mod slots
// otherwise, converting them to the ring's type. It runs after swa*.comp has attended the
// same chunk (design §3: attend, then write). One invocation per pair of
// elements, so an f16 ring is written in whole uint words.
#include "common.glsl"

layout(push_constant) uniform Params {
	uint rows;     // chunk rows (tokens), at most slots
	uint kv_dim;   // row length, even
	uint slots;    // the ring's slots
	uint k_off;    // element offsets into each binding
	uint v_off;
	uint step_off;
	uint rk_off;
	uint rv_off;
	uint kv_stride; // elements from one chunk k or v row to the next (≥ kv_dim)
	uint sinks;     // rows 0 … sinks−1 hold positions 0 … sinks−1
} p;

#ifdef RING_F16
#define RING_T uint // two halves, element 2c in the low bits
#else
#define RING_T float
#endif

layout(binding = 0) readonly buffer KBuf { float kc[]; };      // (rows, kv_stride) f32
layout(binding = 1) readonly buffer VBuf { float vc[]; };      // (rows, kv_stride) f32
layout(binding = 2) readonly buffer StepBuf { uint step[]; };  // step[step_off] = pos0
layout(binding = 3) writeonly buffer RKBuf { RING_T rk[]; };   // (sinks + slots, kv_dim) ring keys
layout(binding = 4) writeonly buffer RVBuf { RING_T rv[]; };   // (sinks + slots, kv_dim) ring values

void main() {
	const uint np = p.kv_dim / 2;
	const uint i = group_index() * WG + gl_LocalInvocationID.x;
	if (i >= p.rows * np) {
		return;
	}
	const uint row = i / np;
	const uint c = i % np;
	const uint q = step[p.step_off] + row;
	const uint slot = q < p.sinks ? q : p.sinks + q % p.slots; // the ring row
	const uint src = row * p.kv_stride + 2 * c;
	const vec2 k = vec2(kc[p.k_off + src], kc[p.k_off + src + 1]);
	const vec2 v = vec2(vc[p.v_off + src], vc[p.v_off + src + 1]);
#ifdef RING_F16
	const uint dst = slot * np + c;
	rk[p.rk_off + dst] = packHalf2x16(k);
	rv[p.rv_off + dst] = packHalf2x16(v);
#else
	const uint dst = slot * p.kv_dim + 2 * c;
	rk[p.rk_off + dst] = k.x;
	rk[p.rk_off + dst + 1] = k.y;
	rv[p.rv_off + dst] = v.x;
	rv[p.rv_off + dst + 1] = v.y;
#endif
}
