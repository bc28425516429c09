// attention_keys.glsl: the same sliding-window attention as attention.glsl
// (same semantics, push constants and bindings), laid out for CPU devices.
// It is the body of swa_keys.comp and swa_keys_f16.comp.
//
// Work. One workgroup per (query, KV head) computes all G query heads that
// share the KV head, so each key and value row is loaded once for G heads.
// Invocation i takes the band's keys lo+i, lo+i+WG, … and keeps, per head,
// its own running maximum, denominator and HD numerators (an online softmax
// over its keys). At the end the workgroup merges the invocations' partial
// results in invocation order through shared memory. Head dim HD and group G
// are specialization constants, so every loop over them unrolls and the
// query, the key and value rows and the numerators stay in registers.
//
// Why a second body. lavapipe runs a workgroup as SIMD fibres of 8
// invocations and turns every SSBO or shared-memory load whose address is
// not a constant into a per-lane loop; attention.glsl reads the query from
// shared memory for every key and passes scores and weights through shared
// memory, so on a CPU its loads, not its arithmetic, set the speed. Here a
// key costs its K and V rows (16-byte loads where rows are aligned for
// them) and nothing else. On a GPU one workgroup per (query, KV head) with few
// invocations would leave most of the machine idle, which is why GPUs keep
// attention.glsl.
//
// Bit-exactness. Which invocation takes a key depends only on its distance
// from lo, and each invocation's operations, and the merge, run in a fixed
// order with precise arithmetic and explicit fma: a query's result depends
// on its position, W and WG only, never on the chunk it is computed in nor
// on whether a key came from the ring or the chunk (chunk keys and values
// are rounded to the ring's type first).
#include "attention_common.glsl"

layout(constant_id = 1) const uint HD = 64; // head dim; p.head_dim equals it
layout(constant_id = 2) const uint G = 4;   // query heads per KV head; p.group equals it

const float NEG_BIG = -3.0e38; // below any score; exp2(NEG_BIG − m) = 0

shared float sh_m[WG];
shared float sh_l[WG];
shared float sh_acc[WG * HD];

// load_kv reads key j's K and V rows (KV head at col) from the ring when
// j < pos0 and from the chunk otherwise, with 16-byte loads where the rows
// are aligned for them (rvec, cvec) and 4-byte loads elsewhere; the values
// are the same either way. Each source and width is a loop that runs once
// or not at all: lavapipe skips a loop no invocation enters, where it would
// run both sides of an if under a mask.
void load_kv(uint j, uint pos0, uint col, bool rvec, bool cvec, out float kr[HD], out float vr[HD]) {
	const bool ring = j < pos0;
	const uint slot = slot_of(j), row = j - pos0;
	const uint n_rv = ring && rvec ? 1 : 0;
	for (uint once = 0; once < n_rv; once++) {
#ifdef RING_F16
		const uint kb = (p.rk_off + (slot * p.kv_dim + col) / 2) / 4;
		const uint vb = (p.rv_off + (slot * p.kv_dim + col) / 2) / 4;
		[[unroll]] for (uint i = 0; i < HD / 8; i++) {
			const uvec4 kw = rk4[kb + i], vw = rv4[vb + i];
			[[unroll]] for (uint c = 0; c < 4; c++) {
				const vec2 k2 = unpackHalf2x16(kw[c]), v2 = unpackHalf2x16(vw[c]);
				kr[8 * i + 2 * c] = k2.x;
				kr[8 * i + 2 * c + 1] = k2.y;
				vr[8 * i + 2 * c] = v2.x;
				vr[8 * i + 2 * c + 1] = v2.y;
			}
		}
#else
		const uint kb = (p.rk_off + slot * p.kv_dim + col) / 4;
		const uint vb = (p.rv_off + slot * p.kv_dim + col) / 4;
		[[unroll]] for (uint i = 0; i < HD / 4; i++) {
			const vec4 k4 = rk4[kb + i], v4 = rv4[vb + i];
			[[unroll]] for (uint c = 0; c < 4; c++) {
				kr[4 * i + c] = k4[c];
				vr[4 * i + c] = v4[c];
			}
		}
#endif
	}
	const uint n_rs = ring && !rvec ? 1 : 0;
	for (uint once = 0; once < n_rs; once++) {
#ifdef RING_F16
		const uint kb = p.rk_off + (slot * p.kv_dim + col) / 2;
		const uint vb = p.rv_off + (slot * p.kv_dim + col) / 2;
		[[unroll]] for (uint c = 0; c < HD / 2; c++) {
			const vec2 k2 = unpackHalf2x16(rk[kb + c]), v2 = unpackHalf2x16(rv[vb + c]);
			kr[2 * c] = k2.x;
			kr[2 * c + 1] = k2.y;
			vr[2 * c] = v2.x;
			vr[2 * c + 1] = v2.y;
		}
#else
		const uint kb = p.rk_off + slot * p.kv_dim + col;
		const uint vb = p.rv_off + slot * p.kv_dim + col;
		[[unroll]] for (uint d = 0; d < HD; d++) {
			kr[d] = rk[kb + d];
			vr[d] = rv[vb + d];
		}
#endif
	}
	const uint n_cv = !ring && cvec ? 1 : 0;
	for (uint once = 0; once < n_cv; once++) {
		const uint kb = (p.k_off + row * p.kv_dim + col) / 4;
		const uint vb = (p.v_off + row * p.kv_dim + col) / 4;
		[[unroll]] for (uint i = 0; i < HD / 4; i++) {
			const vec4 k4 = kc4[kb + i], v4 = vc4[vb + i];
			const vec2 k01 = as_ring(k4.xy), k23 = as_ring(k4.zw);
			const vec2 v01 = as_ring(v4.xy), v23 = as_ring(v4.zw);
			kr[4 * i] = k01.x;
			kr[4 * i + 1] = k01.y;
			kr[4 * i + 2] = k23.x;
			kr[4 * i + 3] = k23.y;
			vr[4 * i] = v01.x;
			vr[4 * i + 1] = v01.y;
			vr[4 * i + 2] = v23.x;
			vr[4 * i + 3] = v23.y;
		}
	}
	const uint n_cs = !ring && !cvec ? 1 : 0;
	for (uint once = 0; once < n_cs; once++) {
		const uint kb = p.k_off + row * p.kv_dim + col;
		const uint vb = p.v_off + row * p.kv_dim + col;
		[[unroll]] for (uint c = 0; c < HD / 2; c++) {
			const vec2 k2 = as_ring(vec2(kc[kb + 2 * c], kc[kb + 2 * c + 1]));
			const vec2 v2 = as_ring(vec2(vc[vb + 2 * c], vc[vb + 2 * c + 1]));
			kr[2 * c] = k2.x;
			kr[2 * c + 1] = k2.y;
			vr[2 * c] = v2.x;
			vr[2 * c + 1] = v2.y;
		}
	}
}

void main() {
	const uint nkv = p.n_heads / G;
	const uint g = group_index();
	if (g >= p.rows * nkv) {
		return; // uniform across the workgroup
	}
	const uint t = gl_LocalInvocationID.x;
	const uint r = g / nkv;
	const uint kh = g % nkv;
	const uint col = kh * HD;

	const uint pos0 = step[p.step_off];
	const uint pos = pos0 + p.q0 + r;
	const uint n = begin_band(pos); // keys in the band, at most W
	const uint lo = band_lo;

	// Whether every ring row, and every chunk row, of this KV head starts on
	// a 16-byte boundary (uniform: push constants and HD only).
#ifdef RING_F16
	const bool rvec = HD % 8 == 0 && p.kv_dim % 8 == 0 && p.rk_off % 4 == 0 && p.rv_off % 4 == 0;
#else
	const bool rvec = HD % 4 == 0 && p.kv_dim % 4 == 0 && p.rk_off % 4 == 0 && p.rv_off % 4 == 0;
#endif
	const bool cvec = HD % 4 == 0 && p.kv_dim % 4 == 0 && p.k_off % 4 == 0 && p.v_off % 4 == 0;

	const uint qb = p.q_off + (r * p.n_heads + kh * G) * HD;
	float qv[G][HD];
	[[unroll]] for (uint h = 0; h < G; h++) {
		[[unroll]] for (uint d = 0; d < HD; d++) {
			qv[h][d] = q[qb + h * HD + d];
		}
	}
	float m[G];
	precise float l[G];
	precise float acc[G][HD];
	[[unroll]] for (uint h = 0; h < G; h++) {
		m[h] = NEG_BIG;
		l[h] = 0.0;
		[[unroll]] for (uint d = 0; d < HD; d++) {
			acc[h][d] = 0.0;
		}
	}

	for (uint i = t; i < n; i += WG) {
		float kr[HD], vr[HD];
		load_kv(lo + i, pos0, col, rvec, cvec, kr, vr);
		[[unroll]] for (uint h = 0; h < G; h++) {
			precise float dot = 0.0;
			[[unroll]] for (uint d = 0; d < HD; d++) {
				dot = fma(qv[h][d], kr[d], dot);
			}
			precise float s = dot * p.scale;
			const float mn = max(m[h], s);
			const float a = exp2(m[h] - mn), e = exp2(s - mn);
			m[h] = mn;
			l[h] = fma(l[h], a, e);
			[[unroll]] for (uint d = 0; d < HD; d++) {
				acc[h][d] = fma(e, vr[d], acc[h][d] * a);
			}
		}
	}

	// Merge the invocations' partial softmaxes, head by head, in
	// invocation order.
	const uint ob = p.out_off + (r * p.n_heads + kh * G) * HD;
	[[unroll]] for (uint h = 0; h < G; h++) {
		sh_m[t] = m[h];
		barrier();
		float mx = sh_m[0];
		for (uint u = 1; u < WG; u++) {
			mx = max(mx, sh_m[u]);
		}
		const float f = exp2(m[h] - mx); // 0 for an invocation without keys
		sh_l[t] = l[h] * f;
		[[unroll]] for (uint d = 0; d < HD; d++) {
			sh_acc[t * HD + d] = acc[h][d] * f;
		}
		barrier();
		precise float den = 0.0;
		for (uint u = 0; u < WG; u++) {
			den += sh_l[u];
		}
		for (uint d = t; d < HD; d += WG) {
			precise float a = 0.0;
			for (uint u = 0; u < WG; u++) {
				a += sh_acc[u * HD + d];
			}
			precise float y = a / den;
			o[ob + h * HD + d] = y;
		}
		barrier(); // sh_* are reused by the next head
	}
}
