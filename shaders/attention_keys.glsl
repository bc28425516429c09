// attention_keys.glsl: the same sliding-window attention as attention.glsl
// (same semantics, push constants and bindings), laid out for CPU devices.
// It is the body of swa_keys.comp and swa_keys_f16.comp, and, with PROBS
// defined, of their debug variants swa_keys_probs.comp and
// swa_keys_f16_probs.comp, which also write the softmax probabilities, and,
// with STORE, of swa_keys_store.comp and swa_keys_f16_store.comp, which
// also write the chunk into the ring (store_kv, attention_common.glsl).
//
// Work. A workgroup is one subgroup (WG invocations, one SIMD fibre on a
// CPU) and computes one (query, KV head): all G query heads that share the
// KV head, so each key and value row is loaded once for G heads. Invocation
// t owns the DL = ⌈HD/WG⌉ dims from t·DL of every row: it loads that slice
// of each key and value row and keeps that slice of the query and of the G
// numerators; subgroupAdd sums the slices' partial dot products. Keys go in
// batches of KB, with one rescale of the numerators per batch (an online
// softmax over batches). The batch loop (with SQ, the sinks' and the band's) is the only loop that runs: lavapipe
// ends a shader after 65535 loop passes in all (Attention sends bands longer
// than maxKeysBand to attention.glsl), and it runs every loop body and
// both sides of every branch at least once, under a mask, whether or not an
// invocation takes it. Every invocation sees the same scores, so the
// running maximum and denominator agree across the subgroup and nothing is
// merged at the end. Head dim HD and group G are specialization constants,
// so the loops over them unroll and the slices stay in registers: 2·G·DL
// values per invocation. (An earlier body gave each invocation whole keys;
// its G·HD numerators and query values made llvmpipe take 35 s to compile
// the head dim 128, GQA 4:1 variant, and it ran 2× slower.)
//
// Why a second body. lavapipe runs a workgroup as SIMD fibres of 8
// invocations and turns every SSBO or shared-memory load whose address is
// not a constant into a per-lane loop; attention.glsl reads the query from
// shared memory for every key and passes scores and weights through shared
// memory, so on a CPU its loads, not its arithmetic, set the speed. Here a
// key costs its K and V rows (16-byte loads where the slices are aligned for
// them) and G subgroup sums, and nothing touches shared memory. On a GPU one
// subgroup per (query, KV head) would leave most of the machine idle, which
// is why GPUs keep attention.glsl.
//
// Bit-exactness. The batches are counted from the query's first key (its
// sinks, then its band, as one sequence: attention.glsl), and
// each invocation's operations run in a fixed order with precise arithmetic
// and explicit fma (subgroupAdd's order is the device's, the same on every
// call): a query's result depends on its position, the band (W or slots),
// the sinks, the scale and soft-cap and the subgroup size only, never on the chunk it is computed in nor on whether a key came from
// the ring or the chunk (chunk keys and values are rounded to the ring's
// type first).
#include "attention_common.glsl"
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(constant_id = 1) const uint HD = 64; // head dim; p.head_dim equals it
layout(constant_id = 2) const uint G = 4;   // query heads per KV head; p.group equals it
// VEC = 1: every invocation's slice of every ring and chunk row starts on a
// 16-byte boundary (the host checks: keysAligned), so slices are read with
// 16-byte loads; 0: with 4-byte loads. The values are the same either way.
layout(constant_id = 3) const uint VEC = 1;
// CAP = 1: scores are soft-capped (p.softcap ≠ 0, attention.glsl). A
// specialization constant rather than a branch on p.softcap: every
// invocation computes all KB·G scores of a batch, and lavapipe would run the
// cap's exp and division under a mask even when no model asks for it.
layout(constant_id = 4) const uint CAP = 0;
// SQ = 1: the sinks are scored with the sink queries (binding 7,
// attention.glsl) in batches of their own before the band's, the query
// slices reloaded between the two; 0: no sinks, or they use q, and the
// batches run over the sinks and the band as one sequence.
layout(constant_id = 5) const uint SQ = 0;

const uint DL = (HD + WG - 1) / WG; // dims per invocation
const uint KB = 8;                  // keys per batch
const float NEG_BIG = -3.0e38;      // below any score; exp2(NEG_BIG − m) = 0

#ifdef PROBS
// The debug variants (vkrun attention) write, for every query and head, the
// probabilities that this softmax gave its keys, (rows, n_heads, sinks +
// band_keys) f32 from element p.part_off (the partials' offset, which the
// CPU layout has no other use for): key u in key order (key_pos) at u, 0
// past the query's n keys. A define rather than a specialization constant,
// so that the normal modules neither declare binding 8 nor change at all.
// While the batches run, each key's base-2 score goes to its own element,
// written by invocation u mod WG; after the last batch the same invocation
// turns it into exp2(score − m) / l with the final maximum m and
// denominator l that the output was divided by, so the probabilities are the
// softmax's own and each row sums to 1 up to f32 rounding. Each invocation
// reads back only what it wrote, so no barrier is needed.
layout(binding = 8) buffer ProbBuf { float prob[]; }; // (rows, n_heads, sinks + band_keys) f32
uint probs_row;  // element of this (query, KV head)'s first head's key 0
uint probs_keys; // keys per (query, head) row: sinks + band_keys
#endif

// ring_row reads this invocation's slice of the K (kind 0) or V (kind 1)
// ring row row, KV head at col. Dims at or past HD read as 0.
void ring_row(uint kind, uint row, uint col, out float x[DL]) {
	const uint d0 = gl_LocalInvocationID.x * DL;
	const uint e = row * p.kv_dim + col + d0; // element index in the ring
	[[unroll]] for (uint d = 0; d < DL; d++) {
		x[d] = 0.0;
	}
#ifdef RING_F16
	if (VEC != 0) {
		const uint b = ((kind == 0 ? p.rk_off : p.rv_off) + e / 2) / 4;
		[[unroll]] for (uint i = 0; i < DL / 8; i++) {
			const uvec4 w = kind == 0 ? rk4[b + i] : rv4[b + i];
			[[unroll]] for (uint c = 0; c < 4; c++) {
				const vec2 h2 = unpackHalf2x16(w[c]);
				x[8 * i + 2 * c] = h2.x;
				x[8 * i + 2 * c + 1] = h2.y;
			}
		}
	} else {
		const uint b = (kind == 0 ? p.rk_off : p.rv_off) + e / 2;
		[[unroll]] for (uint d = 0; d < DL; d++) {
			if (d0 + d < HD) {
				const uint w = kind == 0 ? rk[b + (e % 2 + d) / 2] : rv[b + (e % 2 + d) / 2];
				x[d] = unpackHalf2x16(w)[(e + d) % 2];
			}
		}
	}
#else
	if (VEC != 0) {
		const uint b = ((kind == 0 ? p.rk_off : p.rv_off) + e) / 4;
		[[unroll]] for (uint i = 0; i < DL / 4; i++) {
			const vec4 w = kind == 0 ? rk4[b + i] : rv4[b + i];
			[[unroll]] for (uint c = 0; c < 4; c++) {
				x[4 * i + c] = w[c];
			}
		}
	} else {
		const uint b = (kind == 0 ? p.rk_off : p.rv_off) + e;
		[[unroll]] for (uint d = 0; d < DL; d++) {
			if (d0 + d < HD) {
				x[d] = kind == 0 ? rk[b + d] : rv[b + d];
			}
		}
	}
#endif
}

// chunk_row is ring_row for the chunk's row row, rounded to the ring's type.
void chunk_row(uint kind, uint row, uint col, out float x[DL]) {
	const uint d0 = gl_LocalInvocationID.x * DL;
	const uint e = row * p.kv_stride + col + d0;
	[[unroll]] for (uint d = 0; d < DL; d++) {
		x[d] = 0.0;
	}
	if (VEC != 0) {
		const uint b = ((kind == 0 ? p.k_off : p.v_off) + e) / 4;
		[[unroll]] for (uint i = 0; i < DL / 4; i++) {
			const vec4 w = kind == 0 ? kc4[b + i] : vc4[b + i];
			const vec2 w01 = as_ring(w.xy), w23 = as_ring(w.zw);
			x[4 * i] = w01.x;
			x[4 * i + 1] = w01.y;
			x[4 * i + 2] = w23.x;
			x[4 * i + 3] = w23.y;
		}
	} else {
		const uint b = (kind == 0 ? p.k_off : p.v_off) + e;
		[[unroll]] for (uint d = 0; d < DL; d++) {
			if (d0 + d < HD) {
				x[d] = as_ring(vec2(kind == 0 ? kc[b + d] : vc[b + d], 0.0)).x;
			}
		}
	}
}

// key_row reads key j's slice from the ring (row_of(j)) when j < pos0 and
// from the chunk otherwise. lavapipe runs both sides under a mask (the idle side's loads
// cost a pass over the lanes each, without memory traffic); one body for
// both sources still beats one per source, since it runs every copy too.
void key_row(uint kind, uint j, uint pos0, uint col, out float x[DL]) {
	if (j < pos0) {
		ring_row(kind, row_of(j), col, x);
	} else {
		chunk_row(kind, j - pos0, col, x);
	}
}

// batch runs the online-softmax step of keys i0 … i0+KB−1 of the query's
// keys (key_pos: its sinks, then its band), up to key n−1. Keys from n on
// repeat key n−1 and get weight 0.
void batch(uint i0, uint n, uint pos0, uint col, float qv[G][DL],
           inout float m[G], inout float l[G], inout float acc[G][DL]) {
	// Each key's G dot products, from the invocations' parts.
	float pd[KB][G];
	[[unroll]] for (uint k = 0; k < KB; k++) {
		float kr[DL];
		key_row(0, key_pos(min(i0 + k, n - 1)), pos0, col, kr);
		[[unroll]] for (uint h = 0; h < G; h++) {
			precise float dot = 0.0;
			[[unroll]] for (uint d = 0; d < DL; d++) {
				dot = fma(qv[h][d], kr[d], dot);
			}
			pd[k][h] = subgroupAdd(dot);
		}
	}
	float e[KB][G];
	[[unroll]] for (uint h = 0; h < G; h++) {
		float s[KB];
		float mn = m[h];
		[[unroll]] for (uint k = 0; k < KB; k++) {
			precise float sc = pd[k][h] * p.scale;
			if (CAP != 0) {
				sc = capped(sc);
			}
			s[k] = i0 + k < n ? sc : NEG_BIG;
			mn = max(mn, s[k]);
#ifdef PROBS
			if (i0 + k < n && (i0 + k) % WG == gl_LocalInvocationID.x) {
				prob[probs_row + h * probs_keys + i0 + k] = s[k];
			}
#endif
		}
		precise float a = exp2(m[h] - mn);
		m[h] = mn;
		precise float sum = 0.0;
		[[unroll]] for (uint k = 0; k < KB; k++) {
			precise float ek = exp2(s[k] - mn);
			e[k][h] = ek;
			sum += ek;
		}
		l[h] = fma(l[h], a, sum);
		[[unroll]] for (uint d = 0; d < DL; d++) {
			precise float scaled = acc[h][d] * a;
			acc[h][d] = scaled;
		}
	}
	[[unroll]] for (uint k = 0; k < KB; k++) {
		float vr[DL];
		key_row(1, key_pos(min(i0 + k, n - 1)), pos0, col, vr);
		[[unroll]] for (uint h = 0; h < G; h++) {
			[[unroll]] for (uint d = 0; d < DL; d++) {
				acc[h][d] = fma(e[k][h], vr[d], acc[h][d]);
			}
		}
	}
}

void main() {
	const uint nkv = p.n_heads / G;
	const uint g = group_index();
	if (g >= p.rows * nkv) {
		return; // uniform across the workgroup
	}
	const uint d0 = gl_LocalInvocationID.x * DL;
	const uint r = g / nkv;
	const uint kh = g % nkv;
	const uint col = kh * HD;

	const uint pos0 = step[p.step_off];
	const uint pos = pos0 + p.q0 + r;
#ifdef STORE
	store_kv(p.q0 + r, pos, col); // this (query, KV head)'s key and value into the ring
#endif
	const uint n = begin_band(pos); // the sinks and the band: at most sinks + W (or slots)

	const uint qb = p.q_off + r * p.q_stride + kh * G * HD + d0;
	const uint sb = p.sq_off + r * p.sq_stride + kh * G * HD + d0;
	float qv[G][DL];
	float m[G];
	float l[G];
	float acc[G][DL];
	[[unroll]] for (uint h = 0; h < G; h++) {
		m[h] = NEG_BIG;
		l[h] = 0.0;
		[[unroll]] for (uint d = 0; d < DL; d++) {
			qv[h][d] = 0.0;
			if (d0 + d < HD) { // never read past the head (HD % WG ≠ 0)
				qv[h][d] = SQ != 0 ? sq[sb + h * HD + d] : q[qb + h * HD + d];
			}
			acc[h][d] = 0.0;
		}
	}

	// Batches are counted from the query's first key (its first sink, or
	// lo; with SQ the band's from lo) whatever the chunk, so a query's sums
	// never depend on where the ring ends and the chunk begins.
#ifdef PROBS
	probs_keys = p.sinks + band_keys(p.window, p.slots);
	probs_row = p.part_off + (r * p.n_heads + kh * G) * probs_keys;
#endif
	// With SQ the sinks' batches (the sink queries in qv) come first, then
	// the band's from key band_sinks (the query itself in qv); one loop,
	// so that batch is inlined once.
	const uint first = SQ != 0 ? band_sinks : 0;            // the band's first batch's key
	const uint nsb = SQ != 0 ? (band_sinks + KB - 1) / KB : 0; // the sinks' batches
	const uint nb = nsb + (n - first + KB - 1) / KB;
	for (uint b = 0; b < nb; b++) {
		if (SQ != 0 && b == nsb) {
			[[unroll]] for (uint h = 0; h < G; h++) {
				[[unroll]] for (uint d = 0; d < DL; d++) {
					if (d0 + d < HD) {
						qv[h][d] = q[qb + h * HD + d];
					}
				}
			}
		}
		const bool sink = b < nsb;
		batch(sink ? b * KB : first + (b - nsb) * KB, sink ? band_sinks : n, pos0, col, qv, m, l, acc);
	}
#ifdef PROBS
	[[unroll]] for (uint h = 0; h < G; h++) {
		for (uint u = gl_LocalInvocationID.x; u < probs_keys; u += WG) {
			const uint i = probs_row + h * probs_keys + u;
			precise float pr = 0.0;
			if (u < n) {
				pr = exp2(prob[i] - m[h]) / l[h];
			}
			prob[i] = pr;
		}
	}
#endif

	const uint ob = p.out_off + (r * p.n_heads + kh * G) * HD + d0;
	[[unroll]] for (uint h = 0; h < G; h++) {
		[[unroll]] for (uint d = 0; d < DL; d++) {
			if (d0 + d < HD) {
				precise float y = acc[h][d] / l[h];
				o[ob + h * HD + d] = y;
			}
		}
	}
}
