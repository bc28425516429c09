#version 450
// matmul: y (ntok, rows) = x (ntok, cols) @ Wᵀ, or y += that, for a weight
// W (rows, cols) in its device layout (weights.glsl), f32 x and y,
// accumulating in f32 and dequantising on the fly. Built once per weight
// type (WEIGHT_<TYPE>), with and without MATMUL_BLOCKS (shaders.Sources).
//
// GPU layout (the matmul_<type> kernels): LANES invocations share a row
// (specialization constant 6; 256 columns over the lanes: 8 lanes of
// 32-column chunks, or 4 of the 64-column tiles), so a workgroup has
// WG/LANES row slots of NR rows each and computes WG/LANES·NR rows of W for
// up to NT tokens. Lane l of a slot takes chunks l, l+LANES, … of its rows (a
// chunk: 32 columns of the untiled types, taken as their units, or one tile
// of a tiled type), keeps one partial sum per (row, token) and the lanes'
// sums are added by a fixed tree of adjacent pairs. The workgroup steps
// through the row 256 columns at a time: it stages the NT tokens' x for the
// step in shared memory (the x tile, with the W_GROUP-column sums the tiled
// types with an offset need), then every lane multiplies its chunk of NR
// rows (its W tile, loaded and dequantised once per workgroup, in registers)
// with the NT tokens' x read from the tile. So each weight element is read
// once per NT tokens and each x element once per WG/LANES·NR rows. Decode
// (NT = 1) stages nothing: each lane loads its chunk's x itself (X_TILE),
// so its loop has no barrier. The sizes are the table's: one token and one
// row per slot for decode (matmul1: 16 rows a workgroup at WG 128), 8
// tokens and 2 rows for short batches (matmul), 8 tokens and 4 rows for
// prefill (matmul_tiled, 64 rows × 8 tokens). Every size computes each
// (row, token) sum in the same order (the chunk partition and the tree
// depend on LANES alone), so they are interchangeable bit for bit and the
// host picks by the token count. The
// untiled types read a whole chunk, one 32-column block, in 16-byte loads
// where W's rows start on 16 bytes, and in word loads otherwise, with the
// same values in the same order; the x tile is staged in vec4 loads where
// x's rows start on 16 bytes. Both are uniform branches on the push
// constants, not pipelines.
//
// With MATMUL_SHUFFLE defined (the matmul_shuffle_<type> modules, which
// the library takes where the device offers subgroup shuffles and full
// subgroups of at least 8 invocations), a slot's lanes are adjacent
// invocations of one subgroup, and they add their sums by the same tree as
// an xor butterfly in registers: no shared memory and no barrier for it,
// and the same bits (float addition commutes, so both lanes of a pair
// hold the tree's sum of the pair).
//
// With MATMUL_ROPE defined as well (matmul_rope_<type>, the product of
// stacked Q, K and V), rows come in (2i, 2i+1) pairs per slot (NR even),
// and the epilogue rotates the q and k heads' pairs by the tokens' RoPE
// table as rope.comp would (rope_store): MatMul then RoPEQK in one
// dispatch, the same bits.
//
// With MATMUL_DOT defined as well (matmul_dot_<type>, Q8_0 and Q4_0 alone:
// the library takes it where the device accelerates integer dot products,
// or where told to), x is q8 rows (quantize_q8.comp, 48 bytes a 32-column
// block) and the tile holds those blocks. A lane's chunk is one block: its
// 32 products summed exactly in int32 by packed 4×int8 dot products
// (w_block_idot), then one fma of that sum with d_w·d_x into the chain.
// The chains and the tree are the f32 kernel's, so every size gives the
// same bits; the values are not the f32 kernel's (x rounded to 8 bits).
//
// Tiled types (W_TILED: the K-quants, IQ4 and the other legacy types) take
// whole blocks in the CPU layout: invocation i takes blocks i, i+WG, … of NR
// rows, loading each row's block side (its scales) once into registers,
// then the block's tiles of W_TILE columns with 16-byte loads.
// Per tile, the x values are loaded once for the NR rows, and each group of
// W_GROUP columns is unpacked, summed on raw values and scaled once
// (a·Σ r·x + b·Σ x, with the x sum made once per token), group after group
// so that few values are live at a time: on lavapipe, 32- and 64-column
// tiles in groups of 16 ran Q4_K and Q6_K up to twice as fast as 64- and
// 128-column ones, and unrolling a block's tiles made them slower.
// Specialization constant 4 (XV) says whether x rows start on 16 bytes
// (vec4 loads) or not (scalar loads).
//
// With MATMUL_BLOCKS defined (the matmul_blocks_* kernels) the workgroup
// is one subgroup, and invocation i takes whole 32-column blocks instead,
// BP adjacent blocks at a time (steps i, i+WG, …), with 16-byte loads; a
// workgroup covers more rows (NR = 16 from the Go side): each x value loaded
// serves NR rows, and with BP = 2 one word holds a row's two block scales.
// subgroupAdd makes the sums, with no shared memory. This is the layout for
// CPU devices, where every load costs scalar work per lane (lavapipe gathers
// an SSBO or shared-memory load lane by lane, with a bounds check per
// component, unless its address is made of constants and push constants),
// so loads per multiply-add decide the speed: the shared-memory reduction
// cost as many loads as the products of a 2048-column row. Its sums use fma,
// still in one fixed order. Tokens of a group past ntok are skipped by
// uniform branches (lavapipe still pays for them: it runs both sides of a
// branch under a mask).
//
// A token's result is bit-identical whatever ntok and whatever its place in
// the batch (chunked prefill equals token-by-token decode): every (row,
// token) sum is made by the same operations in the same order, and ntok is
// a push constant, never a different pipeline. The sums are `precise` and
// every product joins its sum through an explicit fma, in one fixed order,
// so no compiler may contract or reassociate one unrolled copy and not
// another, and each sum is fully determined (one rounding per step, where
// a multiply then an add would take two and twice the instructions).
//
// GLU epilogue (GPU layout, specialization constant 5, the matmul_swiglu_*
// and matmul_geglu_* kernels): W's rows 2i and 2i+1 are the gate and up
// rows of hidden unit i (ops.PackGLU interleaves them at load), so a
// workgroup's NR rows (even) are NR/2 (gate, up) pairs, and instead of
// their 2·NR y values it writes h[t][i] = act(gate)·up, the FFN's hidden
// vector (ntok, rows/2): y_off and y_stride are then h's. act is act.glsl's
// silu (GLU 1) or gelu_tanh (GLU 2) applied to the same f32 sums that the
// plain kernel would store, as silu_mul.comp applies it to them, so the
// fused product equals MatMul then ActMulRows. accumulate must be 0.
#include "common.glsl"
#ifdef MATMUL_DOT
#include "idot.glsl"
#endif
#include "weights.glsl"
#if defined(MATMUL_DOT) && (!defined(W_DOT) || !defined(MATMUL_SHUFFLE))
#error "MATMUL_DOT needs a weight type with w_block_idot, and MATMUL_SHUFFLE"
#endif
#if defined(MATMUL_ROPE) && !defined(MATMUL_SHUFFLE)
#error "MATMUL_ROPE needs MATMUL_SHUFFLE"
#endif
#ifdef MATMUL_BLOCKS
#extension GL_KHR_shader_subgroup_arithmetic : require
#else
#include "act.glsl"
#endif
#ifdef MATMUL_SHUFFLE
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#endif

layout(constant_id = 1) const uint NT = 8; // tokens per workgroup
layout(constant_id = 2) const uint NR = 2; // rows of W per workgroup (GPU layout: per row slot)
layout(constant_id = 3) const uint BP = 2; // blocks per step, 1 or 2 (block layout)
layout(constant_id = 4) const uint XV = 1; // CPU layout, tiled types: 1 when x rows start on 16 bytes
#ifndef MATMUL_BLOCKS
layout(constant_id = 5) const uint GLU = 0; // 0: y = x·Wᵀ; 1: h = silu(gate)·up; 2: h = gelu_tanh(gate)·up
#endif

#include "matmul_params.glsl"
#ifdef MATMUL_ROPE
// The dispatch's tokens' RoPE table, (ntok, rope_dim/2, 2) f32 cos and sin
// (rope.comp's).
layout(binding = Y_BINDING + 1) readonly buffer RopeBuf { float rope[]; };
#endif
#ifdef MATMUL_DOT
// The integer-dot kernels' x is q8 rows (quantize_q8.comp): 12 words, three
// uvec4, per 32 columns; x_off is then the word offset of the first row.
layout(binding = X_BINDING) readonly buffer XQBuf4 { uvec4 xq4[]; };
#endif

#ifndef MATMUL_BLOCKS
layout(constant_id = 6) const uint LANES = 8; // invocations per row, a power of two dividing WG
const uint SLOTS = WG / LANES;   // row slots of a workgroup
const uint WG_ROWS = SLOTS * NR; // rows of W per workgroup
#ifdef W_TILED
#define CHUNK uint(W_TILE)
#else
#define CHUNK 32u
#endif
const uint XS = LANES * CHUNK; // columns of a step (256: whole blocks of every type)
#ifdef MATMUL_DOT
const uint XQ4 = 3 * (XS / 32); // uvec4s of a token's q8 x in the tile
shared uvec4 xqt[NT * XQ4];     // the q8 x tile: token t's blocks from xqt[t·XQ4]
#else
const uint XV4 = XS / 4;       // vec4s of a token's x in the tile
shared vec4 xt[NT * XV4];      // the x tile: xt[t·XV4 + c/4][c%4] is column c0 + c of token t
#endif
#ifdef W_MIN
shared float xg[NT * (XS / W_GROUP)]; // the sums of its runs of W_GROUP columns
#endif
#ifndef MATMUL_SHUFFLE
// The lanes' sums are added RA (row, token) sums at a time: shared memory
// of RA·WG floats, 4 KiB at WG 128.
const uint RA = NR * NT < 8 ? NR * NT : 8;
shared float red[RA * WG];
#endif

// X_TILE: the NT tokens' x is staged in shared memory a step at a time,
// where it serves NT tokens per W load. Decode (NT = 1) reads x straight
// from memory in each lane's own loads instead (the workgroup's slots read
// the same x, from cache), so its loop has no barrier: every lane's loads
// go ahead independently of the others'. The values and the order of the
// sums are the same either way.
const bool X_TILE = NT > 1;

#ifdef MATMUL_DOT
// x_q8 is q8 block ch of tile token t (the workgroup's token t0 + t), the
// step's block ch − c0/32: its values 0–15 (xa) and 16–31 (xb), its scale
// d and the sum of its values.
void x_q8(uint t, uint t0, uint c0, uint ch, out uvec4 xa, out uvec4 xb, out float d, out int sum) {
	uvec4 ds;
	if (X_TILE) {
		const uint i = t * XQ4 + 3 * (ch - c0 / 32);
		xa = xqt[i];
		xb = xqt[i + 1];
		ds = xqt[i + 2];
	} else {
		const uint i = p.x_off / 4 + (t0 + t) * 3 * (p.cols / 32) + 3 * ch;
		xa = xq4[i];
		xb = xq4[i + 1];
		ds = xq4[i + 2];
	}
	d = uintBitsToFloat(ds.x);
	sum = int(ds.y);
}
#else
// x_vec is columns c0 + j … c0 + j + 3 of tile token t (the workgroup's
// token t0 + t), j a multiple of 4 and the four within the row.
vec4 x_vec(uint t, uint t0, uint c0, uint j, bool x_vec4) {
	if (X_TILE) {
		return xt[t * XV4 + j / 4];
	}
	const uint xb = p.x_off + (t0 + t) * p.cols + c0 + j;
	if (x_vec4) {
		return x4[xb / 4];
	}
	return vec4(x[xb], x[xb + 1], x[xb + 2], x[xb + 3]);
}

// x_el is column c0 + j of tile token t.
float x_el(uint t, uint t0, uint c0, uint j) {
	if (X_TILE) {
		return xt[t * XV4 + j / 4][j % 4];
	}
	return x[p.x_off + (t0 + t) * p.cols + c0 + j];
}

#ifdef W_MIN
// x_group is the sum of columns c0 + j … c0 + j + W_GROUP − 1 of tile token
// t (j a multiple of W_GROUP), made as the tile's xg is.
float x_group(uint t, uint t0, uint c0, uint j, bool x_vec4) {
	if (X_TILE) {
		return xg[t * (XS / W_GROUP) + j / W_GROUP];
	}
	precise vec4 s4 = x_vec(t, t0, c0, j, x_vec4);
	[[unroll]] for (uint k = 1; k < W_GROUP / 4; k++) {
		s4 += x_vec(t, t0, c0, j + 4 * k, x_vec4);
	}
	precise float s = (s4.x + s4.y) + (s4.z + s4.w);
	return s;
}
#endif
#endif // MATMUL_DOT

#include "matmul_store.glsl"
#endif

#ifdef MATMUL_ROPE
// rope_store writes the sums v0 and v1 of rows row and row + 1 (row even)
// of token t: rotated as rope.comp rotates the pair (x[2i], x[2i+1]) of a
// q or k head (rows of q|k|v below rope_rows, within the first rope_dim
// elements of their head), with the same expression, so the bits are
// MatMul's then RoPE's; as they are elsewhere (the v heads, and the dims
// past rope_dim).
void rope_store(uint t, uint row, float v0, float v1) {
	const uint g = p.rope_row0 + row;
	const uint d = g % p.head_dim;
	const uint yi = p.y_off + t * p.y_stride + row;
	float y0 = v0, y1 = v1;
	if (g < p.rope_rows && d < p.rope_dim) {
		const uint ri = p.r_off + (t * (p.rope_dim / 2) + d / 2) * 2;
		const float c = rope[ri], s = rope[ri + 1];
		precise float r0 = v0 * c - v1 * s;
		precise float r1 = v0 * s + v1 * c;
		y0 = r0;
		y1 = r1;
	}
	y[yi] = y0;
	if (row + 1 < p.rows) {
		y[yi + 1] = y1;
	}
}
#endif

// w_block_scales are the scales of blocks b … b+BP−1 of a row (b even when
// BP is 2, so that one word holds both: the host checks the offsets).
void w_block_scales(uint row_scale, uint b, out float d[BP]) {
#ifdef W_SCALED
	if (BP == 2) {
		const vec2 h = unpackHalf2x16(ws[(row_scale + b) >> 1]);
		d[0] = h.x;
		d[BP - 1] = h.y;
	} else {
		d[0] = w_scale(row_scale + b);
	}
#else
	[[unroll]] for (uint k = 0; k < BP; k++) {
		d[k] = 1.0;
	}
#endif
}

#ifdef MATMUL_BLOCKS
void main() {
	const uint tid = gl_LocalInvocationID.x;
	const uint ntg = (p.ntok + NT - 1) / NT;
	const uint g = group_index();
	const uint tg = g % ntg; // token groups vary fastest: neighbours share W's rows
	const uint rg = g / ntg;
	if (rg * NR >= p.rows) {
		return; // uniform across the workgroup
	}
	const uint t0 = tg * NT;
	const uint nt = min(NT, p.ntok - t0);
	const uint rw = w_row_words(p.cols), rs = w_row_scales(p.cols);
	uint wrow[NR], srow[NR];
	[[unroll]] for (uint r = 0; r < NR; r++) {
		const uint row = min(rg * NR + r, p.rows - 1); // a short last group repeats a row
		wrow[r] = p.w_off + row * rw;
		srow[r] = p.s_off + row * rs;
	}

	precise float acc[NR * NT];
	[[unroll]] for (uint i = 0; i < NR * NT; i++) {
		acc[i] = 0.0;
	}
#if defined(W_TILED)
	// Tiles: invocation i takes blocks i, i+WG, … of all NR rows: it loads
	// each row's side once, then the block's W_TPB tiles in turn.
	const uint nblk = p.cols / W_BLOCK;
	const uint steps = nblk, step_tiles = W_TPB;
	for (uint it = tid; it < steps; it += WG) {
		const uint blk = it / (W_TPB / step_tiles);
		// Every row's side stays in registers for the step's tiles.
		uint sw[NR][W_SIDE_REGS];
		[[unroll]] for (uint r = 0; r < NR; r++) {
			w_side_load(srow[r] + blk * W_SIDE, sw[r]);
		}
		for (uint kk = 0; kk < step_tiles; kk++) {
			const uint k = step_tiles == 1 ? it % W_TPB : kk;
			vec4 xv[NT][W_TILE / 4];
#ifdef W_MIN
			float xs[NT][W_GROUPS];
#endif
			[[unroll]] for (uint t = 0; t < NT; t++) {
				if (t < nt) {
					const uint xb0 = p.x_off + (t0 + t) * p.cols + blk * W_BLOCK;
					[[unroll]] for (uint i = 0; i < W_TILE / 4; i++) {
						const uint xb = xb0 + w_tile_col(k, 4u * i);
						if (XV != 0) {
							xv[t][i] = x4[xb / 4];
						} else {
							xv[t][i] = vec4(x[xb], x[xb + 1], x[xb + 2], x[xb + 3]);
						}
					}
#ifdef W_MIN
					[[unroll]] for (uint g = 0; g < W_GROUPS; g++) {
						precise vec4 s4 = xv[t][W_GROUP / 4 * g];
						[[unroll]] for (uint i = 1; i < W_GROUP / 4; i++) {
							s4 += xv[t][W_GROUP / 4 * g + i];
						}
						precise float s = (s4.x + s4.y) + (s4.z + s4.w);
						xs[t][g] = s;
					}
#endif
				}
			}
			[[unroll]] for (uint r = 0; r < NR; r++) {
				uvec4 q[W_TILE_VEC4];
				w_tile_load(wrow[r], blk, k, q);
				float a[W_GROUPS], b[W_GROUPS];
				w_tile_coefs(sw[r], k, a, b);
				// Group by group, so that only a group's values are live.
				[[unroll]] for (uint g = 0; g < W_GROUPS; g++) {
					float wv[W_GROUP];
					[[unroll]] for (uint i = 0; i < W_GROUP; i++) {
						wv[i] = w_tile_raw(q, sw[r], k, W_GROUP * g + i);
					}
					[[unroll]] for (uint t = 0; t < NT; t++) {
						if (t < nt) {
							precise float s = 0.0;
							[[unroll]] for (uint i = 0; i < W_GROUP; i++) {
								const uint c = W_GROUP * g + i;
								s = fma(wv[i], xv[t][c / 4][c % 4], s);
							}
							acc[r * NT + t] = fma(s, a[g], acc[r * NT + t]);
#ifdef W_MIN
							acc[r * NT + t] = fma(xs[t][g], b[g], acc[r * NT + t]);
#endif
						}
					}
				}
			}
		}
	}
#else
	// Block layout: invocation i takes the BP blocks from BP·i, then from
	// BP·(i+WG), … (32 columns each) of all NR rows, with 16-byte loads (the
	// host checks the alignment). A block's x values are loaded once for the
	// NR rows and its scale once per row; a block's sum is scaled once.
	const uint nb = p.cols / 32;
	for (uint b0 = tid * BP; b0 < nb; b0 += WG * BP) {
		vec4 xv[NT][BP][8];
		[[unroll]] for (uint t = 0; t < NT; t++) {
			if (t < nt) {
				const uint xb = (p.x_off + (t0 + t) * p.cols) / 4 + 8 * b0;
				[[unroll]] for (uint k = 0; k < BP; k++) {
					[[unroll]] for (uint i = 0; i < 8; i++) {
						xv[t][k][i] = x4[xb + 8 * k + i];
					}
				}
			}
		}
		[[unroll]] for (uint r = 0; r < NR; r++) {
			float d[BP];
			w_block_scales(srow[r], b0, d);
			[[unroll]] for (uint k = 0; k < BP; k++) {
				uvec4 q[W_BLOCK_VEC4];
				w_block_load(wrow[r], b0 + k, q);
				float wv[32];
				w_block_values(q, wv);
				[[unroll]] for (uint t = 0; t < NT; t++) {
					if (t < nt) {
						precise float s = 0.0;
						[[unroll]] for (uint i = 0; i < 8; i++) {
							[[unroll]] for (uint c = 0; c < 4; c++) {
								s = fma(wv[4 * i + c], xv[t][k][i][c], s);
							}
						}
						acc[r * NT + t] = fma(s, d[k], acc[r * NT + t]);
					}
				}
			}
		}
	}
#endif

	// Each (row, token) sum over the subgroup; invocation k of pass i0
	// writes sum i0 + k.
	[[unroll]] for (uint i0 = 0; i0 < NR * NT; i0 += WG) {
		float v = 0.0;
		[[unroll]] for (uint k = 0; k < WG; k++) {
			if (i0 + k < NR * NT) {
				const float sum = subgroupAdd(acc[i0 + k]);
				v = tid == k ? sum : v;
			}
		}
		const uint i = i0 + tid, r = i / NT, t = i % NT, row = rg * NR + r;
		if (i < NR * NT && row < p.rows && t < nt) {
			const uint yi = p.y_off + (t0 + t) * p.y_stride + row;
			if (p.accumulate != 0) {
				v = y[yi] + v;
			}
			y[yi] = v;
		}
	}
}
#else
void main() {
	const uint tid = gl_LocalInvocationID.x;
#ifdef MATMUL_SHUFFLE
	// A slot's lanes are LANES adjacent invocations of one subgroup (the
	// host asks for full subgroups of at least LANES invocations).
	const uint lane = gl_SubgroupInvocationID % LANES;
	const uint slot = gl_SubgroupID * (gl_SubgroupSize / LANES) + gl_SubgroupInvocationID / LANES;
#else
	const uint lane = tid % LANES, slot = tid / LANES;
#endif
	const uint ntg = (p.ntok + NT - 1) / NT;
	const uint g = group_index();
	const uint tg = g % ntg; // token groups vary fastest: neighbours share W's rows
	const uint rg = g / ntg;
	if (rg * WG_ROWS >= p.rows) {
		return; // uniform across the workgroup
	}
	const uint t0 = tg * NT;
	const uint nt = min(NT, p.ntok - t0);
	const uint rw = w_row_words(p.cols), rs = w_row_scales(p.cols);
	// Uniform over the dispatch: x rows on 16 bytes (vec4 staging), and W
	// rows on 16 bytes (the untiled types' 16-byte chunk loads).
	const bool x_vec4 = (p.x_off & 3u) == 0u && (p.cols & 3u) == 0u;
	const bool w_vec4 = (p.w_off & 3u) == 0u && (rw & 3u) == 0u;
	uint wrow[NR], srow[NR];
	[[unroll]] for (uint r = 0; r < NR; r++) {
		const uint row = min(rg * WG_ROWS + slot * NR + r, p.rows - 1); // a short last group repeats a row
		wrow[r] = p.w_off + row * rw;
		srow[r] = p.s_off + row * rs;
	}

	precise float acc[NR * NT]; // acc[t·NR + r]: token t, row r
	[[unroll]] for (uint i = 0; i < NR * NT; i++) {
		acc[i] = 0.0;
	}
#ifdef W_TILED
	const uint nch = p.cols / W_TILE; // chunks: the row's tiles
#else
	const uint units = w_units(p.cols);
	const uint nch = (p.cols + CHUNK - 1) / CHUNK; // chunks of 32 columns; the last may be short
#endif
	for (uint c0 = 0; c0 < p.cols; c0 += XS) {
		// Stage the step's x tile: columns [c0, c0 + XS) of the NT tokens,
		// zeros past the row and past ntok.
		const uint ncols = min(XS, p.cols - c0);
#ifdef MATMUL_DOT
		if (X_TILE) {
			// The q8 tile: the step's whole blocks of the NT tokens.
			for (uint i = tid; i < NT * XQ4; i += WG) {
				const uint t = i / XQ4, j = i % XQ4;
				uvec4 v = uvec4(0u);
				if (t < nt && 32 * (j / 3) < ncols) {
					v = xq4[p.x_off / 4 + (t0 + t) * 3 * (p.cols / 32) + 3 * (c0 / 32) + j];
				}
				xqt[i] = v;
			}
			barrier();
		}
#else
		if (X_TILE) {
			for (uint i = tid; i < NT * XV4; i += WG) {
				const uint t = i / XV4, j = 4 * (i % XV4);
				vec4 v = vec4(0.0);
				if (t < nt && j < ncols) {
					const uint xb = p.x_off + (t0 + t) * p.cols + c0 + j;
					if (x_vec4) {
						v = x4[xb / 4];
					} else {
						[[unroll]] for (uint k = 0; k < 4; k++) {
							v[k] = j + k < ncols ? x[xb + k] : 0.0;
						}
					}
				}
				xt[i] = v;
			}
			barrier();
#ifdef W_MIN
			// The sum of each run of W_GROUP columns, for the offsets b.
			for (uint i = tid; i < NT * (XS / W_GROUP); i += WG) {
				const uint v0 = i * (W_GROUP / 4);
				precise vec4 s4 = xt[v0];
				[[unroll]] for (uint k = 1; k < W_GROUP / 4; k++) {
					s4 += xt[v0 + k];
				}
				precise float s = (s4.x + s4.y) + (s4.z + s4.w);
				xg[i] = s;
			}
			barrier();
#endif
		}
#endif // MATMUL_DOT
		const uint ch = c0 / CHUNK + lane;
		if (ch < nch) {
#if defined(MATMUL_DOT)
			// Block ch: each token's q8 x once for the NR rows, then per row
			// its quants in 16-byte loads (the host checks W's alignment),
			// the integer sum and one scaling, d_w·d_x, into the sum.
			uvec4 xa[NT], xb[NT];
			float xd[NT];
			int xs[NT];
			[[unroll]] for (uint t = 0; t < NT; t++) {
				x_q8(t, t0, c0, ch, xa[t], xb[t], xd[t], xs[t]);
			}
			[[unroll]] for (uint r = 0; r < NR; r++) {
				uvec4 q[W_BLOCK_VEC4];
				w_block_load(wrow[r], ch, q);
				const float d = w_scale(srow[r] + ch);
				[[unroll]] for (uint t = 0; t < NT; t++) {
					if (t < nt) {
						const int si = w_block_idot(q, xa[t], xb[t], xs[t]);
						precise float dd = d * xd[t];
						acc[t * NR + r] = fma(float(si), dd, acc[t * NR + r]);
					}
				}
			}
#elif defined(W_TILED)
			// Tile k of block blk, for each row: its side, its quants, and its
			// groups' coefficients; then each group's raw values against the
			// NT tokens' x.
			const uint blk = ch / W_TPB, k = ch % W_TPB;
			const uint cb = blk * W_BLOCK - c0; // the block's first column in the tile
			[[unroll]] for (uint r = 0; r < NR; r++) {
				uint sw[W_SIDE_REGS];
				w_side_load(srow[r] + blk * W_SIDE, sw);
				uvec4 q[W_TILE_VEC4];
				w_tile_load(wrow[r], blk, k, q);
				float a[W_GROUPS], b[W_GROUPS];
				w_tile_coefs(sw, k, a, b);
				[[unroll]] for (uint g = 0; g < W_GROUPS; g++) {
					float wv[W_GROUP];
					[[unroll]] for (uint i = 0; i < W_GROUP; i++) {
						wv[i] = w_tile_raw(q, sw, k, W_GROUP * g + i);
					}
					// Group g is W_GROUP consecutive columns from run.
					const uint run = cb + w_tile_col(k, W_GROUP * g);
					[[unroll]] for (uint t = 0; t < NT; t++) {
						if (t < nt) {
							precise float s = 0.0;
							[[unroll]] for (uint i = 0; i < W_GROUP / 4; i++) {
								const vec4 xv = x_vec(t, t0, c0, run + 4 * i, x_vec4);
								[[unroll]] for (uint c = 0; c < 4; c++) {
									s = fma(wv[4 * i + c], xv[c], s);
								}
							}
							acc[t * NR + r] = fma(s, a[g], acc[t * NR + r]);
#ifdef W_MIN
							acc[t * NR + r] = fma(x_group(t, t0, c0, run, x_vec4), b[g], acc[t * NR + r]);
#endif
						}
					}
				}
			}
#else
			// The chunk's units, then (the row's last chunk) the columns past
			// the last whole unit (f32 and f16 rows only). A whole chunk of a
			// row on 16 bytes (w_vec4) is one block, loaded per row in 16-byte
			// loads; its units are then taken from the loaded values, in the
			// same order and arithmetic as the unit loads would.
			if (w_vec4 && (ch + 1) * CHUNK <= units * W_UNIT) {
				// Decode: the chunk's x in 16-byte loads (where aligned), once
				// for the NR rows; a tile reads its x from shared memory.
				float xc[32];
				if (!X_TILE) {
					[[unroll]] for (uint i = 0; i < 8; i++) {
						const vec4 v = x_vec(0, t0, c0, ch * CHUNK - c0 + 4 * i, x_vec4);
						[[unroll]] for (uint k = 0; k < 4; k++) {
							xc[4 * i + k] = v[k];
						}
					}
				}
				[[unroll]] for (uint r = 0; r < NR; r++) {
					uvec4 q[W_BLOCK_VEC4];
					w_block_load(wrow[r], ch, q);
					float bv[32];
					w_block_values(q, bv);
					[[unroll]] for (uint k = 0; k < CHUNK / W_UNIT; k++) {
						const uint u = ch * (CHUNK / W_UNIT) + k;
#ifdef W_SCALED
						const float d = w_scale(srow[r] + ch);
#endif
						[[unroll]] for (uint t = 0; t < NT; t++) {
							if (t < nt) {
								precise float s = 0.0;
								[[unroll]] for (uint kk = 0; kk < W_UNIT; kk++) {
									const uint c = w_col(u, kk) - c0;
									s = fma(bv[w_col(u, kk) % 32], X_TILE ? x_el(t, t0, c0, c) : xc[w_col(u, kk) % 32], s);
								}
#ifdef W_SCALED
								acc[t * NR + r] = fma(s, d, acc[t * NR + r]);
#else
								acc[t * NR + r] += s;
#endif
							}
						}
					}
				}
			} else {
				[[unroll]] for (uint k = 0; k < CHUNK / W_UNIT; k++) {
					const uint u = ch * (CHUNK / W_UNIT) + k;
					if (u < units) {
						float wv[NR][W_UNIT], d[NR];
						[[unroll]] for (uint r = 0; r < NR; r++) {
							w_unit(wrow[r], srow[r], u, wv[r], d[r]);
						}
						[[unroll]] for (uint t = 0; t < NT; t++) {
							if (t < nt) {
								float xv[W_UNIT];
								[[unroll]] for (uint kk = 0; kk < W_UNIT; kk++) {
									const uint c = w_col(u, kk) - c0;
									xv[kk] = x_el(t, t0, c0, c);
								}
								[[unroll]] for (uint r = 0; r < NR; r++) {
									precise float s = 0.0;
									[[unroll]] for (uint kk = 0; kk < W_UNIT; kk++) {
										s = fma(wv[r][kk], xv[kk], s);
									}
#ifdef W_SCALED
									acc[t * NR + r] = fma(s, d[r], acc[t * NR + r]);
#else
									acc[t * NR + r] += s;
#endif
								}
							}
						}
					}
				}
			}
			const uint ct = units * W_UNIT;
			if (ch == nch - 1 && ct < p.cols) {
				[[unroll]] for (uint t = 0; t < NT; t++) {
					if (t < nt) {
						[[unroll]] for (uint r = 0; r < NR; r++) {
							precise float s = 0.0;
							for (uint c = ct; c < p.cols; c++) {
								s = fma(w_elem(wrow[r], srow[r], c), x_el(t, t0, c0, c - c0), s);
							}
							acc[t * NR + r] += s;
						}
					}
				}
			}
#endif
		}
		if (X_TILE) {
			barrier(); // the tile is read before the next step overwrites it
		}
	}

#ifdef MATMUL_SHUFFLE
	// The same tree as an xor butterfly in registers: at distance s, lane l
	// adds lane l^s's sum to its own. Float addition commutes, so lanes l
	// and l^s both hold the tree's sum of that pair, bit for bit, and after
	// the log2(LANES) steps every lane holds its slot's sums. Lane l writes
	// the sums (GLU: the pairs) whose index is l modulo LANES.
	[[unroll]] for (uint s = 1; s < LANES; s <<= 1) {
		[[unroll]] for (uint i = 0; i < NR * NT; i++) {
			const float o = subgroupShuffleXor(acc[i], s);
			acc[i] = acc[i] + o;
		}
	}
#ifdef MATMUL_ROPE
	const uint step = 2; // (row, row + 1) pairs, NR even
#else
	const uint step = GLU != 0 ? 2 : 1;
#endif
	[[unroll]] for (uint a = 0; a < NR * NT; a += step) {
		const uint t = a / NR, row = rg * WG_ROWS + slot * NR + a % NR;
		if ((a / step) % LANES == lane && row < p.rows && t < nt) {
#ifdef MATMUL_ROPE
			rope_store(t0 + t, row, acc[a], acc[min(a + 1, NR * NT - 1)]);
#else
			y_store(t0 + t, row, acc[a], GLU != 0 ? acc[min(a + 1, NR * NT - 1)] : 0.0);
#endif
		}
	}
#else
	// Add each (row, token) sum over the slot's lanes by a tree of adjacent
	// pairs, RA sums at a time; lane 0 writes them. GLU: pair j is the gate
	// sum of row 2j and the up sum of row 2j+1 (RA and NR even, so a pair is
	// in one pass).
	[[unroll]] for (uint a0 = 0; a0 < NR * NT; a0 += RA) {
		[[unroll]] for (uint i = 0; i < RA; i++) {
			red[i * WG + tid] = acc[a0 + i];
		}
		barrier();
		[[unroll]] for (uint s = 1; s < LANES; s <<= 1) {
			if (lane % (2 * s) == 0) {
				[[unroll]] for (uint i = 0; i < RA; i++) {
					red[i * WG + tid] += red[i * WG + tid + s];
				}
			}
			barrier();
		}
		if (lane == 0) {
			[[unroll]] for (uint i = 0; i < RA; i += GLU != 0 ? 2 : 1) {
				const uint a = a0 + i, t = a / NR, row = rg * WG_ROWS + slot * NR + a % NR;
				if (row < p.rows && t < nt) {
					y_store(t0 + t, row, red[i * WG + tid], GLU != 0 ? red[(i + 1) * WG + tid] : 0.0);
				}
			}
		}
		if (a0 + RA < NR * NT) {
			barrier(); // red is read before the next pass overwrites it
		}
	}
#endif
}
#endif
