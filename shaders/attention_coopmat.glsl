// attention_coopmat.glsl: prefill attention in tiles of query rows, with
// each tile of keys and values staged in shared memory once for the block's
// queries and the two products on cooperative matrices (coopmat.glsl, as
// matmul_coopmat.comp): the body of swa_coopmat.comp (f32 ring) and
// swa_coopmat_f16.comp (f16 ring), rewritten as swa_coopmat_khr[_f16] for
// VK_KHR_cooperative_matrix, and, with COOPMAT_EMULATE, of their emulated
// modules, which do the matrix products with plain invocations so that a
// device without the extension runs the rest. It runs at a workgroup of
// 128 (SG_R × SG_C subgroups with the extension). The push constants,
// bindings and semantics are
// attention.glsl's, for the case the host gives it: a ring without sinks
// (so no sink queries), head_dim HD a multiple of 32 up to 256, and no
// StoreKV in the dispatch.
//
// Work. A workgroup is (a block of BQ = 32 queries, one head). The keys of
// its queries' bands, from the first query's first key to the last query,
// go in tiles of BKEYS = 32 positions, each row staged as f16 from the ring
// (positions below pos0) or the chunk. Two passes: the first computes each
// query's scores S = q·k·scale (soft-capped) tile by tile and keeps their
// maximum m; the second computes S again, P = exp2(S − m) (0 outside the
// query's band), its row sums l, and O += P·V. So no accumulator is ever
// rescaled, which cooperative matrices could not do row by row; the price is
// Q·Kᵀ twice. With the extension subgroup sg owns BQ/SG_R rows of S and O
// (FR matrices of CM_M rows), BKEYS/SG_C keys of S (FS of CM_N) and HD/SG_C
// columns of O (FO of CM_N), and keeps its rows of Q as CM_K-column A
// matrices for the whole dispatch; emulated,
// invocation i owns row i / 4 and a quarter of its keys (S) and of its
// dims (O). The output is O / l, with the extension through S's shared
// tile a few columns at a time (so that O needs no tile of its own: 25 KiB
// of shared memory at HD 128).
//
// Exactness. q, k, v and P are rounded to f16 and the device orders the
// products' sums, so the results are near attention.glsl's (an NMSE near
// 1e-6), not its bits: the host takes this kernel only where told to
// (ops.Options.CoopMat), for prefill chunks.
#include "attention_common.glsl"
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#ifndef COOPMAT_EMULATE
#include "coopmat.glsl"
#endif

layout(constant_id = 1) const uint HD = 64; // head dim: p.head_dim equals it, a multiple of 32, at most 256

const uint BQ = 32, BKEYS = 32;
const uint KS = HD + 8;    // f16 elements from one staged key (or query) row to the next
const uint SS = BKEYS + 4; // f32 elements from one row of S to the next
const uint PS = BKEYS + 8; // f16 elements from one row of P to the next
const float NEG_BIG = -3.0e38;

// The tile's keys at kv_sh[0 …] (at the start, the block's queries) and
// its values at kv_sh[VO …]. Past head dim 128 the values go where the
// keys were, once S is computed, so that the staging stays within
// 17 KiB (lavapipe has 32 KiB of shared memory, Vulkan guarantees 16).
const bool KV1 = HD > 128;
const uint VO = KV1 ? 0 : BKEYS * KS;
shared float16_t kv_sh[(KV1 ? 1 : 2) * BKEYS * KS];
shared float s_sh[BQ * SS];        // S of the tile; at the end, O's columns a round at a time
shared float16_t p_sh[BQ * PS];    // P of the tile
shared float r_sh[BQ * 4];         // the rows' partial maxima, then sums

// load_row stages the HD elements of key or value kind (0, 1) at position
// j of the KV head at col into dst's row i: from ring row j mod slots below
// pos0, else from chunk row j − pos0.
void load_row(uint kind, uint j, uint pos0, uint col, uint i) {
	for (uint d = gl_LocalInvocationID.x % 32; d < HD; d += 32) {
		float v;
		if (j < pos0) {
			const uint e = (j % p.slots) * p.kv_dim + col + d;
#ifdef RING_F16
			const uint w = kind == 0 ? rk[p.rk_off + e / 2] : rv[p.rv_off + e / 2];
			v = unpackHalf2x16(w)[e % 2];
#else
			v = kind == 0 ? rk[p.rk_off + e] : rv[p.rv_off + e];
#endif
		} else {
			const uint e = (j - pos0) * p.kv_stride + col + d;
			v = kind == 0 ? kc[p.k_off + e] : vc[p.v_off + e];
		}
		kv_sh[(kind == 0 ? 0 : VO) + i * KS + d] = float16_t(v);
	}
}

// stage fills the keys (kind 0) or values (1) of kv_sh with positions j0
// … j0+BKEYS−1, zeros past jend: a row per 32 invocations.
void stage(uint kind, uint j0, uint jend, uint pos0, uint col) {
	for (uint i = gl_LocalInvocationID.x / 32; i < BKEYS; i += WG / 32) {
		if (j0 + i < jend) {
			load_row(kind, j0 + i, pos0, col, i);
		} else {
			for (uint d = gl_LocalInvocationID.x % 32; d < HD; d += 32) {
				kv_sh[(kind == 0 ? 0 : VO) + i * KS + d] = float16_t(0.0);
			}
		}
	}
}

void main() {
	const uint g = group_index();
	const uint nblk = (p.rows + BQ - 1) / BQ;
	if (g >= nblk * p.n_heads) {
		return; // uniform
	}
	const uint t = gl_LocalInvocationID.x;
	const uint h = g % p.n_heads, r0 = (g / p.n_heads) * BQ;
	const uint nr = min(BQ, p.rows - r0); // the block's queries
	const uint col = (h / p.group) * HD;
	const uint qdim = p.n_heads * HD;
	const uint pos0 = step[p.step_off];
	const uint posA = pos0 + p.q0 + r0;   // the block's first query
	const uint jlo = band_first(posA, band_keys(p.window, p.slots));
	const uint jend = posA + nr;          // one past the last key
	// Invocation t's row of S and P and its quarter of the keys.
	const uint sr = t / 4, sk = (t % 4) * (BKEYS / 4);
	const uint mypos = posA + sr;
	const uint mylo = band_first(mypos, band_keys(p.window, p.slots));

	// The block's queries, f16, through the keys' staging.
	for (uint e = t; e < BQ * HD; e += WG) {
		const uint r = e / HD, d = e % HD;
		const float v = r < nr ? q[p.q_off + (r0 + r) * p.q_stride + h * HD + d] : 0.0;
		kv_sh[r * KS + d] = float16_t(v);
	}
	barrier();
#ifdef COOPMAT_EMULATE
	float qv[HD]; // row sr of Q
	[[unroll]] for (uint d = 0; d < HD; d++) {
		qv[d] = float(kv_sh[sr * KS + d]);
	}
	const uint od = (t % 4) * (HD / 4); // this invocation's quarter of O's row sr
	float oa[HD / 4];
	[[unroll]] for (uint d = 0; d < HD / 4; d++) {
		oa[d] = 0.0;
	}
#else
	// Subgroup sg: rows rb … of S and O, keys kb … of S, columns ob … of O.
	const uint sg = gl_SubgroupID;
	const uint FR = BQ / (SG_R * CM_M), FS = BKEYS / (SG_C * CM_N), FO = HD / (SG_C * CM_N);
	const uint rb = (BQ / SG_R) * (sg / SG_C), kb = (BKEYS / SG_C) * (sg % SG_C), ob = (HD / SG_C) * (sg % SG_C);
	CM_A qa[FR][HD / CM_K];
	[[unroll]] for (uint i = 0; i < FR; i++) {
		[[unroll]] for (uint c = 0; c < HD / CM_K; c++) {
			coopMatLoadNV(qa[i][c], kv_sh, (rb + CM_M * i) * KS + CM_K * c, KS, false);
		}
	}
	CM_C oa[FR][FO];
	[[unroll]] for (uint i = 0; i < FR; i++) {
		[[unroll]] for (uint c = 0; c < FO; c++) {
			oa[i][c] = CM_C(0.0);
		}
	}
#endif
	barrier(); // the queries read

	float mx = NEG_BIG; // pass 1: this invocation's maximum of its keys' scores
	float lsum = 0.0;   // pass 2: its sum of their P
	float m = NEG_BIG;  // row sr's maximum
	for (uint pass = 0; pass < 2; pass++) {
		for (uint j0 = jlo; j0 < jend; j0 += BKEYS) {
			stage(0, j0, jend, pos0, col);
			if (pass == 1 && !KV1) {
				stage(1, j0, jend, pos0, col);
			}
			barrier();
#ifdef COOPMAT_EMULATE
			[[unroll]] for (uint k = 0; k < BKEYS / 4; k++) {
				float s = 0.0;
				for (uint d = 0; d < HD; d++) {
					s = fma(qv[d], float(kv_sh[(sk + k) * KS + d]), s);
				}
				s_sh[sr * SS + sk + k] = s;
			}
#else
			[[unroll]] for (uint i = 0; i < FR; i++) {
				[[unroll]] for (uint j = 0; j < FS; j++) {
					CM_C s = CM_C(0.0);
					[[unroll]] for (uint c = 0; c < HD / CM_K; c++) {
						CM_B kt; // Kᵀ: column n is key kb + CM_N·j + n
						coopMatLoadNV(kt, kv_sh, (kb + CM_N * j) * KS + CM_K * c, KS, true);
						s = coopMatMulAddNV(qa[i][c], kt, s);
					}
					coopMatStoreNV(s, s_sh, (rb + CM_M * i) * SS + kb + CM_N * j, SS, false);
				}
			}
#endif
			barrier();
			// The scores of invocation t's keys, masked to row sr's band.
			[[unroll]] for (uint k = 0; k < BKEYS / 4; k++) {
				const uint j = j0 + sk + k;
				const bool in_band = sr < nr && j >= mylo && j <= mypos;
				precise float sc = s_sh[sr * SS + sk + k] * p.scale;
				float s = sc;
				if (p.softcap != 0.0) {
					s = capped(sc);
				}
				if (pass == 0) {
					mx = in_band ? max(mx, s) : mx;
				} else {
					const float16_t pv = float16_t(in_band ? exp2(s - m) : 0.0);
					p_sh[sr * PS + sk + k] = pv;
					lsum += float(pv);
				}
			}
			if (pass == 0) {
				continue; // the next tile's staging waits for the barrier at its top
			}
			if (KV1) {
				stage(1, j0, jend, pos0, col); // the keys were last read before the barrier above
			}
			barrier();
#ifdef COOPMAT_EMULATE
			for (uint k = 0; k < BKEYS; k++) {
				const float pk = float(p_sh[sr * PS + k]);
				[[unroll]] for (uint d = 0; d < HD / 4; d++) {
					oa[d] = fma(pk, float(kv_sh[VO + k * KS + od + d]), oa[d]);
				}
			}
#else
			[[unroll]] for (uint k = 0; k < BKEYS; k += CM_K) {
				CM_A pa[FR];
				[[unroll]] for (uint i = 0; i < FR; i++) {
					coopMatLoadNV(pa[i], p_sh, (rb + CM_M * i) * PS + k, PS, false);
				}
				[[unroll]] for (uint c = 0; c < FO; c++) {
					CM_B vb;
					coopMatLoadNV(vb, kv_sh, VO + k * KS + ob + CM_N * c, KS, false);
					[[unroll]] for (uint i = 0; i < FR; i++) {
						oa[i][c] = coopMatMulAddNV(pa[i], vb, oa[i][c]);
					}
				}
			}
#endif
			barrier();
		}
		if (pass == 0) {
			// Row sr's maximum from its four invocations' maxima.
			barrier();
			r_sh[t] = mx;
			barrier();
			m = max(max(r_sh[4 * sr], r_sh[4 * sr + 1]), max(r_sh[4 * sr + 2], r_sh[4 * sr + 3]));
			barrier();
		}
	}

	// O / l. Row r's l is the sum of its four invocations' sums.
	r_sh[t] = lsum;
	barrier();
#ifdef COOPMAT_EMULATE
	if (sr < nr) {
		precise float l = (r_sh[4 * sr] + r_sh[4 * sr + 1]) + (r_sh[4 * sr + 2] + r_sh[4 * sr + 3]);
		[[unroll]] for (uint d = 0; d < HD / 4; d++) {
			precise float y = oa[d] / l;
			o[p.out_off + (r0 + sr) * qdim + h * HD + od + d] = y;
		}
	}
#else
	// Through s_sh, FO rounds of SG_C · CM_N columns: in round c, column
	// group g (the subgroups with sg mod SG_C = g) stages its columns
	// (HD/SG_C)·g + CM_N·c … at s_sh's columns CM_N·g ….
	const uint RW = SG_C * CM_N; // a round's columns, at most BKEYS
	[[unroll]] for (uint c = 0; c < FO; c++) {
		[[unroll]] for (uint i = 0; i < FR; i++) {
			coopMatStoreNV(oa[i][c], s_sh, (rb + CM_M * i) * SS + CM_N * (sg % SG_C), SS, false);
		}
		barrier();
		for (uint e = t; e < nr * RW; e += WG) {
			const uint r = e / RW, j = e % RW;
			const uint d = (HD / SG_C) * (j / CM_N) + CM_N * c + j % CM_N;
			precise float l = (r_sh[4 * r] + r_sh[4 * r + 1]) + (r_sh[4 * r + 2] + r_sh[4 * r + 3]);
			precise float y = s_sh[r * SS + j] / l;
			o[p.out_off + (r0 + r) * qdim + h * HD + d] = y;
		}
		barrier();
	}
#endif
}
