// attention.glsl: sliding-window attention of a chunk of queries over a
// rolling KV cache plus the chunk's own keys, in the GPU layout: split-K
// (flash-decoding), with the query heads of a KV head sharing every key and
// value load. It is the body of swa.comp (f32 ring) and swa_f16.comp (f16
// ring, RING_F16 defined: pairs of halves packed in uint words with
// packHalf2x16, so no 16-bit storage feature is needed), and, with STORE
// defined, of swa_store.comp and swa_f16_store.comp, which also write the
// chunk into the ring (store_kv), for decode steps.
//
// Semantics (design §3, §12). The query at absolute position pos = pos0 + i,
// with pos0 = step[step_off], attends the keys j in [lo, pos], lo =
// max(0, pos − W + 1), itself included, W = window; a global ring (window 0)
// attends every key from 0 (lo = 0 while pos < slots). With N = sinks > 0
// (local rings only) it also attends the sinks, keys [0, min(N, lo)), so
// every key j < N or j ≥ lo up to pos, each once. Its keys are one sequence,
// the sinks then the band in position order (key_pos). Keys j < pos0 come
// from the ring: position j < N from sink row j, others from row
// N + j mod slots (slots ≥ W); keys j ≥ pos0 from the chunk (row j − pos0),
// whether sinks or not. The chunk is attended before kv_store_*.comp writes
// it into the ring, so no query can meet a slot that a later key of its own chunk has
// overwritten. For an f16 ring the chunk's keys and values are rounded to f16
// first, exactly as the store will round them, so a chunk sees the values it
// would read back from the ring. A score is q·k·scale in base 2, soft-capped
// to softcap·tanh(q·k·scale) when softcap ≠ 0 (Gemma 2). With SQ = 1 a
// sink's score uses the query's sink query from binding 7 instead of q (q
// rotated at its cache position; keys stay rotated at their absolute
// positions, which for a sink are its cache positions too).
//
// Work. One workgroup per (query, HG query heads of one KV head, split).
// The query's n keys (sinks, then band) are cut into S = p.splits splits of
// split_len(n) keys (whole tiles of WG keys, counted from its first key), so
// that a single decode query fills the GPU with (heads / HG)·S workgroups;
// splits past its last key return at once. Within a split, tiles of WG keys: thread t scores key t of
// the tile for the HG heads (one load of the key serves them all); the
// workgroup takes each head's tile maximum; each thread exponentiates its
// own scores against the running maxima; then the value pass runs in
// L = WG / (head_dim/2) lanes: thread t of lane s = t / (head_dim/2) owns the
// output pair c = t mod (head_dim/2) of all HG heads (one load of the value
// pair serves them all) and adds the tile's keys u ≡ s (mod L) in key
// order. When head_dim/2 > WG there is one lane and each thread owns several
// pairs. After the split's last tile the lanes are added in lane order. With
// S = 1 the workgroup writes the normalised output; otherwise it writes its
// split's partial result (numerator, base-2 maximum, denominator) and
// swa_merge.comp combines the splits in split order.
//
// Bit-exactness. Every floating-point operation of a query depends only on
// pos, the band (W or slots), the sinks, head_dim, the scale and soft-cap,
// S and WG, never on the chunk size nor on whether a key came from the ring
// or the chunk: the splits and tiles start at the query's first key, keys
// go in key order, the sums have a fixed order, and the accumulators
// are precise with explicit fma so that no compiler contracts two code paths
// differently. A token decoded alone and the same token inside a prefill
// chunk of any size give the same bits.
#include "attention_common.glsl"

layout(constant_id = 1) const uint HG = 1; // query heads per workgroup: a divisor of p.group
// SQ = 1: the sinks are scored with the sink queries (binding 7), kept in
// the second half of q_sh; 0: there are none, or they use q.
layout(constant_id = 2) const uint SQ = 0;

// Partial results, (rows, n_heads, S, head_dim + 2) f32: a split's
// numerator, then its maximum and denominator.
layout(binding = 8) writeonly buffer PartBuf { float part[]; };

const uint MAX_HEAD_DIM = 256;
const uint MAX_PAIRS = MAX_HEAD_DIM / 2;
const uint NR = (MAX_PAIRS + WG - 1) / WG; // output pairs per thread and head, at most
const uint NG = WG < 16 ? WG : 16;         // threads of a tile max's first level, per head
const float NEG_BIG = -3.0e38;             // below any score; exp2(NEG_BIG − m) = 0

shared float q_sh[(1 + SQ) * HG * MAX_HEAD_DIM]; // the HG queries, then (SQ) their sink queries
shared float s_sh[HG * WG];           // the tile's scores; at the end, lane sums (x)
shared float e_sh[HG * WG];           // exp2(score − max); at the end, lane sums (y)
shared float m_sh[HG * WG];           // partial maxima; at the end, lane denominators

// acc[h] += q_h[2c]·k.x, then += q_h[2c+1]·k.y, for each of the HG heads,
// with the queries from element qo of q_sh (0, or a sink's HG·MAX_HEAD_DIM).
#define DOT2(acc, c, k)                                                                        \
	[[unroll]] for (uint hh = 0; hh < HG; hh++) {                                              \
		acc[hh] = fma(q_sh[qo + hh * MAX_HEAD_DIM + 2 * (c) + 1], (k).y,                        \
			fma(q_sh[qo + hh * MAX_HEAD_DIM + 2 * (c)], (k).x, acc[hh]));                       \
	}

// scores sets s[h] to key j's q_h·k times scale, summed over d = 0 …
// head_dim−1 in order whichever buffer holds the key and however it is
// loaded, and soft-capped when p.softcap ≠ 0 (a uniform branch), against
// the sink queries when j is a sink and SQ = 1. col is the KV head's first
// column.
//
// The sources and load widths are loops of which exactly one runs (the others
// run zero times) rather than if/else: lavapipe runs both sides of a branch
// under a mask, and a loop that no invocation enters costs one masked pass
// of its body. On a GPU either form is a uniform branch.
void scores(uint j, uint pos0, uint col, out float s[HG]) {
	const uint np = p.head_dim / 2;
	const bool ring = j < pos0;
	const uint qo = SQ != 0 && j < band_sinks ? HG * MAX_HEAD_DIM : 0; // a sink: its own query
	precise float acc[HG];
	[[unroll]] for (uint hh = 0; hh < HG; hh++) {
		acc[hh] = 0.0;
	}
#ifdef RING_F16
	const uint rb = p.rk_off + (row_of(j) * p.kv_dim + col) / 2;
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
	const uint rb = p.rk_off + row_of(j) * p.kv_dim + col;
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
	const uint kb = p.k_off + (j - pos0) * p.kv_stride + col; // meaningless for ring keys, and unused
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
	[[unroll]] for (uint hh = 0; hh < HG; hh++) {
		precise float sc = acc[hh] * p.scale;
		s[hh] = sc;
		if (p.softcap != 0.0) {
			s[hh] = capped(sc);
		}
	}
}

// ring_value returns elements 2c, 2c+1 of ring key j's value (KV head at col).
vec2 ring_value(uint j, uint col, uint c) {
#ifdef RING_F16
	return unpackHalf2x16(rv[p.rv_off + (row_of(j) * p.kv_dim + col) / 2 + c]);
#else
	const uint b = p.rv_off + row_of(j) * p.kv_dim + col + 2 * c;
	return vec2(rv[b], rv[b + 1]);
#endif
}

// chunk_value is the same for chunk row i, rounded like the ring.
vec2 chunk_value(uint i, uint col, uint c) {
	const uint b = p.v_off + i * p.kv_stride + col + 2 * c;
	return as_ring(vec2(vc[b], vc[b + 1]));
}


void main() {
	const uint hgs = p.n_heads / HG; // head groups per query
	const uint g = group_index();
	if (g >= p.rows * hgs * p.splits) {
		return; // uniform across the workgroup
	}
	const uint t = gl_LocalInvocationID.x;
	const uint sp = g % p.splits;
	const uint r = g / p.splits / hgs;
	const uint h0 = (g / p.splits % hgs) * HG; // the first of the HG heads
	const uint hd = p.head_dim;
	const uint np = hd / 2;
	const uint col = (h0 / p.group) * hd;

	const uint pos0 = step[p.step_off];
	const uint pos = pos0 + p.q0 + r;
#ifdef STORE
	if (sp == 0 && h0 % p.group == 0) { // one workgroup per (query, KV head) stores its key and value
		store_kv(p.q0 + r, pos, col);
	}
#endif
	const uint n = begin_band(pos); // the sinks and the band: at most sinks + W (or slots)
	const uint ks = split_len(n, p.splits, WG);
	if (sp * ks >= n) {
		return; // an empty split: uniform
	}
	const uint u0 = sp * ks; // the split's first key, in key order
	const uint cnt = min(ks, n - u0);
	const uint nring = ring_keys(n, pos0); // the query's keys from the ring come first

	const uint qb = p.q_off + r * p.q_stride + h0 * hd;
	for (uint i = t; i < HG * hd; i += WG) {
		q_sh[i / hd * MAX_HEAD_DIM + i % hd] = q[qb + i];
	}
	if (SQ != 0) {
		const uint sb = p.sq_off + r * p.sq_stride + h0 * hd;
		for (uint i = t; i < HG * hd; i += WG) {
			q_sh[HG * MAX_HEAD_DIM + i / hd * MAX_HEAD_DIM + i % hd] = sq[sb + i];
		}
	}

	// Value-pass roles: lane and first pair of this thread, and lane count.
	const uint nlanes = np <= WG ? WG / np : 1;
	const uint lane = np <= WG ? t / np : 0;
	const uint c0 = np <= WG ? t % np : t;
	const bool in_lane = lane < nlanes;

	float m[HG];            // running maxima, the same in every thread
	precise float l[HG];    // this lane's running denominators
	precise vec2 acc[NR * HG]; // this thread's running numerators, pair-major
	[[unroll]] for (uint hh = 0; hh < HG; hh++) {
		m[hh] = NEG_BIG;
		l[hh] = 0.0;
	}
	[[unroll]] for (uint i = 0; i < NR * HG; i++) {
		acc[i] = vec2(0.0);
	}
	barrier(); // q_sh

	for (uint base = 0; base < cnt; base += WG) {
		const uint len = min(WG, cnt - base);
		float s[HG];
		[[unroll]] for (uint hh = 0; hh < HG; hh++) {
			s[hh] = NEG_BIG;
		}
		if (t < len) {
			scores(key_pos(u0 + base + t), pos0, col, s);
		}
		[[unroll]] for (uint hh = 0; hh < HG; hh++) {
			s_sh[hh * WG + t] = s[hh];
		}
		barrier();
		for (uint i = t; i < HG * NG; i += WG) {
			const uint hh = i / NG, k = i % NG;
			float mx = s_sh[hh * WG + k];
			for (uint u = k + NG; u < WG; u += NG) {
				mx = max(mx, s_sh[hh * WG + u]);
			}
			m_sh[i] = mx;
		}
		barrier();
		float alpha[HG];
		[[unroll]] for (uint hh = 0; hh < HG; hh++) {
			float mt = m_sh[hh * NG];
			for (uint i = 1; i < NG; i++) {
				mt = max(mt, m_sh[hh * NG + i]);
			}
			const float mn = max(m[hh], mt);
			alpha[hh] = exp2(m[hh] - mn);
			m[hh] = mn;
			e_sh[hh * WG + t] = t < len ? exp2(s[hh] - mn) : 0.0;
		}
		barrier();
		if (in_lane) {
			[[unroll]] for (uint hh = 0; hh < HG; hh++) {
				l[hh] *= alpha[hh];
				[[unroll]] for (uint i = 0; i < NR; i++) {
					acc[i * HG + hh] *= alpha[hh];
				}
			}
			// The lane's keys in key order: ring keys, then chunk keys.
			const uint first = u0 + base;
			const uint tring = nring > first ? min(len, nring - first) : 0;
			uint u = lane;
			for (; u < tring; u += nlanes) {
				[[unroll]] for (uint hh = 0; hh < HG; hh++) {
					l[hh] += e_sh[hh * WG + u];
				}
				[[unroll]] for (uint i = 0; i < NR; i++) {
					const uint c = c0 + i * WG;
					if (c < np) {
						const vec2 v = ring_value(key_pos(first + u), col, c);
						[[unroll]] for (uint hh = 0; hh < HG; hh++) {
							acc[i * HG + hh] = fma(vec2(e_sh[hh * WG + u]), v, acc[i * HG + hh]);
						}
					}
				}
			}
			for (; u < len; u += nlanes) {
				[[unroll]] for (uint hh = 0; hh < HG; hh++) {
					l[hh] += e_sh[hh * WG + u];
				}
				[[unroll]] for (uint i = 0; i < NR; i++) {
					const uint c = c0 + i * WG;
					if (c < np) {
						const vec2 v = chunk_value(key_pos(first + u) - pos0, col, c);
						[[unroll]] for (uint hh = 0; hh < HG; hh++) {
							acc[i * HG + hh] = fma(vec2(e_sh[hh * WG + u]), v, acc[i * HG + hh]);
						}
					}
				}
			}
		}
	}

	// The split's result for head h0 + hh, pair c: numerator a over
	// denominator d with maximum m[hh].
	const uint qdim = p.n_heads * hd;
	if (nlanes == 1) {
		[[unroll]] for (uint hh = 0; hh < HG; hh++) {
			const uint h = h0 + hh;
			const uint ob = p.out_off + r * qdim + h * hd;
			const uint pb = p.part_off + ((r * p.n_heads + h) * p.splits + sp) * (hd + 2);
			[[unroll]] for (uint i = 0; i < NR; i++) {
				const uint c = c0 + i * WG;
				if (c < np) {
					if (p.splits == 1) {
						precise vec2 y = acc[i * HG + hh] / l[hh];
						o[ob + 2 * c] = y.x;
						o[ob + 2 * c + 1] = y.y;
					} else {
						part[pb + 2 * c] = acc[i * HG + hh].x;
						part[pb + 2 * c + 1] = acc[i * HG + hh].y;
					}
				}
			}
			if (p.splits > 1 && t == 0) {
				part[pb + hd] = m[hh];
				part[pb + hd + 1] = l[hh];
			}
		}
		return;
	}
	barrier(); // the last tile's e_sh and m_sh reads
	if (in_lane) {
		[[unroll]] for (uint hh = 0; hh < HG; hh++) {
			s_sh[hh * WG + t] = acc[hh].x;
			e_sh[hh * WG + t] = acc[hh].y;
			if (c0 == 0) {
				m_sh[hh * WG + lane] = l[hh];
			}
		}
	}
	barrier();
	for (uint i = t; i < HG * np; i += WG) {
		const uint hh = i / np, c = i % np, h = h0 + hh;
		precise vec2 a = vec2(s_sh[hh * WG + c], e_sh[hh * WG + c]);
		precise float d = m_sh[hh * WG];
		for (uint s = 1; s < nlanes; s++) {
			a += vec2(s_sh[hh * WG + s * np + c], e_sh[hh * WG + s * np + c]);
			d += m_sh[hh * WG + s];
		}
		if (p.splits == 1) {
			precise vec2 y = a / d;
			const uint ob = p.out_off + r * qdim + h * hd;
			o[ob + 2 * c] = y.x;
			o[ob + 2 * c + 1] = y.y;
		} else {
			const uint pb = p.part_off + ((r * p.n_heads + h) * p.splits + sp) * (hd + 2);
			part[pb + 2 * c] = a.x;
			part[pb + 2 * c + 1] = a.y;
			if (c == 0) {
				part[pb + hd] = m[hh];
				part[pb + hd + 1] = d;
			}
		}
	}
}
