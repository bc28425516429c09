#version 450
// matmul_coopmat: the prefill product y (ntok, rows) = x (ntok, cols) @ Wᵀ
// (or y += that, or the GLU epilogue's h) on cooperative matrices: tensor
// cores or matrix units (coopmat.glsl). Built once per weight type
// (WEIGHT_<TYPE>) as matmul_coopmat_<type> (VK_NV_cooperative_matrix),
// rewritten as matmul_coopmat_khr_<type> (VK_KHR_cooperative_matrix), and
// with COOPMAT_EMULATE as matmul_coopmat_emu_<type>:
// the same kernel with the matrix operations done by plain invocations, so
// that a device without the extension (lavapipe, and so CI) runs and tests
// every part of it but the three matrix calls. All need shaderFloat16.
//
// Work. A workgroup computes a tile of BM = 64 rows of W by BN = 64
// tokens, stepping through the columns BK = 32 at a time. Per step it
// stages the tile's W columns dequantised to f16 (w_elem, the one
// dequantisation of each weight type, weights.glsl) and the tokens' x
// rounded to f16, both in shared memory, then multiplies them: with the
// extension, the SG_R × SG_C subgroups tile the block, each owning FR × FC
// accumulators of CM_M rows × CM_N tokens in f32, fed by CM_M × CM_K and
// CM_K × CM_N f16 matrices (a shape the device lists); emulated, invocation
// i owns row i mod 64 of 32 tokens and adds the same f16 products in f32,
// column by column. After the last step every accumulator goes to a f32
// tile in shared memory, from which the whole workgroup writes y through
// matmul_store.glsl's y_store, the GLU epilogue included, as matmul.comp
// does. Rows past p.rows, tokens past p.ntok and columns past p.cols are
// zeros in the tiles, so any shape works.
//
// Exactness. The sums are not matmul.comp's: W and x are rounded to f16
// (about 2⁻¹² relative each) and the device orders each CM_K-column
// product as its hardware does, in f32. So a token's result here differs from its
// decode result by that rounding, and the host takes this kernel only where
// told to (ops.Options.CoopMat) and only for prefill tiles; decode stays
// exact. A token's result does not depend on the other tokens of its tile.
#include "common.glsl"
#include "weights.glsl"
#include "act.glsl"
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#ifndef COOPMAT_EMULATE
#include "coopmat.glsl"
#endif

layout(constant_id = 1) const uint NT = 64; // tokens per workgroup (BN); the host reads it
layout(constant_id = 2) const uint NR = 64; // rows of W per workgroup (BM); the host reads it
layout(constant_id = 5) const uint GLU = 0; // 0: y = x·Wᵀ; 1: h = silu(gate)·up; 2: h = gelu_tanh(gate)·up

#include "matmul_params.glsl"
#include "matmul_store.glsl"

const uint BM = 64, BN = 64, BK = 32;
const uint AS = BK + 8; // f16 elements from one staged row (or token) to the next: 80 bytes
const uint CS = BM + 4; // f32 elements from one token of the result tile to the next: 272 bytes

shared float16_t a_sh[BM * AS]; // W: row r's BK columns from a_sh[r·AS]
shared float16_t b_sh[BN * AS]; // x: token n's BK columns from b_sh[n·AS]
shared float c_sh[BN * CS]; // the result: (token n, row r) at c_sh[n·CS + r]

// stage fills a_sh and b_sh with columns k0 … k0+BK−1 of the tile's rows
// and tokens.
void stage(uint r0, uint t0, uint k0) {
	const uint rw = w_row_words(p.cols), rs = w_row_scales(p.cols);
	for (uint e = gl_LocalInvocationID.x; e < BM * BK; e += WG) {
		const uint r = e / BK, c = e % BK;
		const uint row = r0 + r, col = k0 + c;
		float v = 0.0;
		if (row < p.rows && col < p.cols) {
			v = w_elem(p.w_off + row * rw, p.s_off + row * rs, col);
		}
		a_sh[r * AS + c] = float16_t(v);
	}
	for (uint e = gl_LocalInvocationID.x; e < BN * BK; e += WG) {
		const uint n = e / BK, c = e % BK;
		const uint tok = t0 + n, col = k0 + c;
		float v = 0.0;
		if (tok < p.ntok && col < p.cols) {
			v = x[p.x_off + tok * p.cols + col];
		}
		b_sh[n * AS + c] = float16_t(v);
	}
}

void main() {
	const uint ntg = (p.ntok + BN - 1) / BN;
	const uint g = group_index();
	const uint tg = g % ntg; // token tiles vary fastest: neighbours share W's rows
	const uint rg = g / ntg;
	if (rg * BM >= p.rows) {
		return; // uniform across the workgroup
	}
	const uint r0 = rg * BM, t0 = tg * BN;

#ifdef COOPMAT_EMULATE
	// Invocation i (the host runs this kernel at WG 128) owns row i mod BM
	// of the tile and its 32 tokens from 32·(i / BM).
	const uint er = gl_LocalInvocationID.x % BM, en = 32 * (gl_LocalInvocationID.x / BM);
	precise float acc[32];
	[[unroll]] for (uint n = 0; n < 32; n++) {
		acc[n] = 0.0;
	}
#else
	// Subgroup sg owns rows sr … sr + BM/SG_R − 1 and tokens sn … sn +
	// BN/SG_C − 1 of the tile (the host runs this kernel with SG_R · SG_C
	// subgroups, and picks the grid and shape so that these divide).
	const uint sg = gl_SubgroupID;
	const uint FR = BM / (SG_R * CM_M), FC = BN / (SG_C * CM_N);
	const uint sr = (BM / SG_R) * (sg / SG_C), sn = (BN / SG_C) * (sg % SG_C);
	CM_C acc[FR][FC];
	[[unroll]] for (uint i = 0; i < FR; i++) {
		[[unroll]] for (uint j = 0; j < FC; j++) {
			acc[i][j] = CM_C(0.0);
		}
	}
#endif

	for (uint k0 = 0; k0 < p.cols; k0 += BK) {
		stage(r0, t0, k0);
		barrier();
#ifdef COOPMAT_EMULATE
		// The f16 products in f32, column by column.
		for (uint c = 0; c < BK; c++) {
			const float w = float(a_sh[er * AS + c]);
			[[unroll]] for (uint n = 0; n < 32; n++) {
				acc[n] = fma(w, float(b_sh[(en + n) * AS + c]), acc[n]);
			}
		}
#else
		[[unroll]] for (uint kk = 0; kk < BK; kk += CM_K) {
			CM_A a[FR];
			CM_B b[FC];
			[[unroll]] for (uint i = 0; i < FR; i++) {
				coopMatLoadNV(a[i], a_sh, (sr + CM_M * i) * AS + kk, AS, false);
			}
			[[unroll]] for (uint j = 0; j < FC; j++) {
				// B is K × N, column n a token's row of x: column-major.
				coopMatLoadNV(b[j], b_sh, (sn + CM_N * j) * AS + kk, AS, true);
			}
			[[unroll]] for (uint i = 0; i < FR; i++) {
				[[unroll]] for (uint j = 0; j < FC; j++) {
					acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
				}
			}
		}
#endif
		barrier();
	}

#ifdef COOPMAT_EMULATE
	[[unroll]] for (uint n = 0; n < 32; n++) {
		c_sh[(en + n) * CS + er] = acc[n];
	}
#else
	[[unroll]] for (uint i = 0; i < FR; i++) {
		[[unroll]] for (uint j = 0; j < FC; j++) {
			// C is rows × tokens; c_sh keeps a token's rows together: column-major.
			coopMatStoreNV(acc[i][j], c_sh, (sn + CM_N * j) * CS + sr + CM_M * i, CS, true);
		}
	}
#endif
	barrier();

	// The epilogue: element (n, r) of the tile is y's (token t0 + n, row
	// r0 + r); with GLU, pairs (r, r+1), r even, make one h.
	const uint step = GLU != 0 ? 2 : 1;
	for (uint e = gl_LocalInvocationID.x; e < BN * BM / step; e += WG) {
		const uint n = e / (BM / step), r = step * (e % (BM / step));
		if (t0 + n < p.ntok && r0 + r < p.rows) {
			const float u = GLU != 0 ? c_sh[n * CS + r + 1] : 0.0;
			y_store(t0 + n, r0 + r, c_sh[n * CS + r], u);
		}
	}
}
