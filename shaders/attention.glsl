// attention.glsl: sliding-window attention of a chunk of queries over a
// rolling KV cache plus the chunk's own keys. It is the body of swa.comp (f32
// ring) and swa_f16.comp (f16 ring, RING_F16 defined: pairs of halves packed
// in uint words with packHalf2x16, so no 16-bit storage feature is needed).
//
// Semantics (design §3). The query at absolute position pos = pos0 + i, with
// pos0 = step[step_off], attends the W keys j in [lo, pos], lo =
// max(0, pos − W + 1), itself included. Keys j < pos0 come from the ring (slot
// j mod W), keys j ≥ pos0 from the chunk (row j − pos0). The chunk is attended
// before kv_store_*.comp writes it into the ring, so no query can meet a slot
// that a later key of its own chunk has overwritten. For an f16 ring the
// chunk's keys and values are rounded to f16 first, exactly as the store will
// round them, so a chunk sees the values it would read back from the ring.
//
// Work. One workgroup per (query, head). The band is cut into tiles of WG
// keys counted from lo. Per tile: thread t scores key lo + tile + t (a dot
// product over head_dim, in order); the workgroup takes the tile's maximum;
// each thread exponentiates its own score against the running maximum; then
// the value pass runs in S = WG / (head_dim/2) lanes: thread t of lane
// s = t / (head_dim/2) owns the output pair c = t mod (head_dim/2) and adds
// the tile's keys u ≡ s (mod S) in position order. When head_dim/2 > WG there
// is one lane and each thread owns several pairs. After the last tile the
// lanes are added in lane order. Keys outside the band are never read and no
// mask is built.
//
// Bit-exactness. Every floating-point operation of a query depends only on
// pos, W, head_dim and WG, never on the chunk size nor on whether a key came
// from the ring or the chunk: the tiles start at lo, keys go in position
// order, the sums have a fixed order, and the accumulators are precise with
// explicit fma so that no compiler contracts two code paths differently. A
// token decoded alone and the same token inside a prefill chunk of any size
// give the same bits.
#include "attention_common.glsl"

const uint MAX_HEAD_DIM = 256;
const uint MAX_PAIRS = MAX_HEAD_DIM / 2;
const uint NR = (MAX_PAIRS + WG - 1) / WG; // output pairs per thread, at most
const uint NG = WG < 16 ? WG : 16;         // threads of the tile max's first level
const float NEG_BIG = -3.0e38;             // below any score; exp2(NEG_BIG − m) = 0

shared float q_sh[MAX_HEAD_DIM]; // the query
shared float s_sh[WG];           // the tile's scores; at the end, lane sums (x)
shared float e_sh[WG];           // exp2(score − max); at the end, lane sums (y)
shared float m_sh[WG];           // partial maxima; at the end, lane denominators

// acc += q[2c]·k.x, then += q[2c+1]·k.y.
#define DOT2(acc, c, k) acc = fma(q_sh[2 * (c) + 1], (k).y, fma(q_sh[2 * (c)], (k).x, acc))

// score is key j's q·k times scale, summed over d = 0 … head_dim−1 in order
// whichever buffer holds the key and however it is loaded. col is the KV
// head's first column.
//
// The sources and load widths are loops of which exactly one runs (the others
// run zero times) rather than if/else: lavapipe runs both sides of a branch
// under a mask, and a loop that no invocation enters costs one masked pass
// of its body (loops measured 1.6× faster than if/else on the decode
// benchmark). On a GPU either form is a uniform branch.
float score(uint j, uint pos0, uint col) {
	const uint np = p.head_dim / 2;
	const bool ring = j < pos0;
	precise float acc = 0.0;
#ifdef RING_F16
	const uint rb = p.rk_off + (slot_of(j) * p.kv_dim + col) / 2;
	const bool rvec = rb % 4 == 0 && p.head_dim % RING_VEC == 0;
	const uint n_rv = ring && rvec ? np : 0;
	for (uint c = 0; c < n_rv; c += 4) {
		const uvec4 w = rk4[(rb + c) / 4];
		DOT2(acc, c, unpackHalf2x16(w.x));
		DOT2(acc, c + 1, unpackHalf2x16(w.y));
		DOT2(acc, c + 2, unpackHalf2x16(w.z));
		DOT2(acc, c + 3, unpackHalf2x16(w.w));
	}
	const uint n_rs = ring && !rvec ? np : 0;
	for (uint c = 0; c < n_rs; c++) {
		DOT2(acc, c, unpackHalf2x16(rk[rb + c]));
	}
#else
	const uint rb = p.rk_off + slot_of(j) * p.kv_dim + col;
	const bool rvec = rb % 4 == 0 && p.head_dim % RING_VEC == 0;
	const uint n_rv = ring && rvec ? np : 0;
	for (uint c = 0; c < n_rv; c += 2) {
		const vec4 k = rk4[(rb + 2 * c) / 4];
		DOT2(acc, c, k.xy);
		DOT2(acc, c + 1, k.zw);
	}
	const uint n_rs = ring && !rvec ? np : 0;
	for (uint c = 0; c < n_rs; c++) {
		DOT2(acc, c, vec2(rk[rb + 2 * c], rk[rb + 2 * c + 1]));
	}
#endif
	const uint kb = p.k_off + (j - pos0) * p.kv_dim + col; // meaningless for ring keys, and unused
	const bool kvec = kb % 4 == 0 && p.head_dim % 4 == 0;
	const uint n_kv = !ring && kvec ? np : 0;
	for (uint c = 0; c < n_kv; c += 2) {
		const vec4 k = kc4[(kb + 2 * c) / 4];
		DOT2(acc, c, as_ring(k.xy));
		DOT2(acc, c + 1, as_ring(k.zw));
	}
	const uint n_ks = !ring && !kvec ? np : 0;
	for (uint c = 0; c < n_ks; c++) {
		DOT2(acc, c, as_ring(vec2(kc[kb + 2 * c], kc[kb + 2 * c + 1])));
	}
	precise float s = acc * p.scale;
	return s;
}

// ring_value returns elements 2c, 2c+1 of ring key j's value (KV head at col).
vec2 ring_value(uint j, uint col, uint c) {
#ifdef RING_F16
	return unpackHalf2x16(rv[p.rv_off + (slot_of(j) * p.kv_dim + col) / 2 + c]);
#else
	const uint b = p.rv_off + slot_of(j) * p.kv_dim + col + 2 * c;
	return vec2(rv[b], rv[b + 1]);
#endif
}

// chunk_value is the same for chunk row i, rounded like the ring.
vec2 chunk_value(uint i, uint col, uint c) {
	const uint b = p.v_off + i * p.kv_dim + col + 2 * c;
	return as_ring(vec2(vc[b], vc[b + 1]));
}

void main() {
	const uint g = group_index();
	if (g >= p.rows * p.n_heads) {
		return; // uniform across the workgroup
	}
	const uint t = gl_LocalInvocationID.x;
	const uint r = g / p.n_heads;
	const uint h = g % p.n_heads;
	const uint hd = p.head_dim;
	const uint np = hd / 2;
	const uint col = (h / p.group) * hd;

	const uint pos0 = step[p.step_off];
	const uint pos = pos0 + p.q0 + r;
	const uint n = begin_band(pos); // keys in the band, at most W
	const uint lo = band_lo;

	const uint qb = p.q_off + (r * p.n_heads + h) * hd;
	for (uint d = t; d < hd; d += WG) {
		q_sh[d] = q[qb + d];
	}

	// Value-pass roles: lane and first pair of this thread, and lane count.
	const uint nlanes = np <= WG ? WG / np : 1;
	const uint lane = np <= WG ? t / np : 0;
	const uint c0 = np <= WG ? t % np : t;
	const bool in_lane = lane < nlanes;

	float m = NEG_BIG;      // running maximum, the same in every thread
	precise float l = 0.0;  // this lane's running denominator
	precise vec2 acc[NR];   // this thread's running numerators
	[[unroll]] for (uint i = 0; i < NR; i++) {
		acc[i] = vec2(0.0);
	}
	barrier(); // q_sh

	for (uint base = 0; base < n; base += WG) {
		const uint len = min(WG, n - base);
		float s = NEG_BIG;
		if (t < len) {
			s = score(lo + base + t, pos0, col);
		}
		s_sh[t] = s;
		barrier();
		if (t < NG) {
			float mx = s_sh[t];
			for (uint i = t + NG; i < WG; i += NG) {
				mx = max(mx, s_sh[i]);
			}
			m_sh[t] = mx;
		}
		barrier();
		float mt = m_sh[0];
		for (uint i = 1; i < NG; i++) {
			mt = max(mt, m_sh[i]);
		}
		const float mn = max(m, mt);
		const float alpha = exp2(m - mn);
		m = mn;
		e_sh[t] = t < len ? exp2(s - mn) : 0.0;
		barrier();
		if (in_lane) {
			l *= alpha;
			[[unroll]] for (uint i = 0; i < NR; i++) {
				acc[i] *= alpha;
			}
			// The lane's keys in position order: ring keys, then chunk keys.
			const uint first = lo + base;
			const uint nring = pos0 > first ? min(len, pos0 - first) : 0;
			uint u = lane;
			for (; u < nring; u += nlanes) {
				const float w = e_sh[u];
				l += w;
				[[unroll]] for (uint i = 0; i < NR; i++) {
					const uint c = c0 + i * WG;
					if (c < np) {
						acc[i] = fma(vec2(w), ring_value(first + u, col, c), acc[i]);
					}
				}
			}
			for (; u < len; u += nlanes) {
				const float w = e_sh[u];
				l += w;
				[[unroll]] for (uint i = 0; i < NR; i++) {
					const uint c = c0 + i * WG;
					if (c < np) {
						acc[i] = fma(vec2(w), chunk_value(first + u - pos0, col, c), acc[i]);
					}
				}
			}
		}
	}

	const uint ob = p.out_off + (r * p.n_heads + h) * hd;
	if (nlanes == 1) {
		[[unroll]] for (uint i = 0; i < NR; i++) {
			const uint c = c0 + i * WG;
			if (c < np) {
				precise vec2 y = acc[i] / l;
				o[ob + 2 * c] = y.x;
				o[ob + 2 * c + 1] = y.y;
			}
		}
		return;
	}
	barrier(); // the last tile's e_sh reads
	if (in_lane) {
		s_sh[t] = acc[0].x;
		e_sh[t] = acc[0].y;
		if (c0 == 0) {
			m_sh[lane] = l;
		}
	}
	barrier();
	if (t < np) {
		precise vec2 a = vec2(s_sh[t], e_sh[t]);
		precise float d = m_sh[0];
		for (uint s = 1; s < nlanes; s++) {
			a += vec2(s_sh[s * np + t], e_sh[s * np + t]);
			d += m_sh[s];
		}
		precise vec2 y = a / d;
		o[ob + 2 * t] = y.x;
		o[ob + 2 * t + 1] = y.y;
	}
}
