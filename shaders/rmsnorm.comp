#version 450
// rmsnorm: y[r,:] = x[r,:] / sqrt(mean(x[r,:]²) + eps) * w[:] for rows of
// length n, or y[r,:] += that (accumulate = 1); one workgroup per row.
// Specialization constant 1 set to 1 makes it LayerNorm without bias:
// y = (x − mean) / sqrt(var + eps) * w, var = mean((x − mean)²), in two
// passes over the row (no E[x²] − mean² cancellation), both of x shifted
// by its first element: the f32 sum of a row far from 0 (all near 100)
// loses the mean's low bits, the sum of the shifted row does not
// (TestLayerNorm's rows near 100, on lavapipe: NMSE 5.5e-11 unshifted,
// 6e-15 shifted).
//
// Rows are grouped by token: row r is head r mod heads of token r / heads,
// at x_off + token·x_stride + head·n (and likewise in y), so one dispatch
// normalises the q and k heads inside q|k|v rows in place (y = x); heads
// from w2_from on take their weights from w2 (the key heads' norm). A plain
// norm of contiguous rows has heads = 1, strides n and w2 = w.
//
// x (rows, n) f32, w (n,) f32, w2 (n,) f32, y (rows, n) f32 (strided as
// above). In place (y = x) every element is read by the invocation that
// writes it, after the reductions.
//
// With NORM_Q8 defined (rmsnorm_q8), plain rows (heads = 1, accumulate 0,
// n a multiple of 32, WG a multiple of 32) also go to q (binding 4) as q8
// rows, row r at word q_off + r·n/32·12: the integer-dot matmul's x
// (q8.glsl), the bits quantize_q8.comp would make of y, in the same
// dispatch. The row is written WG columns at a time, staged in shared
// memory, where a quarter of the invocations round its blocks.
#include "common.glsl"
#include "reduce.glsl"
#ifdef NORM_Q8
#include "q8.glsl"
#endif

layout(constant_id = 1) const uint LAYER_NORM = 0;

layout(push_constant) uniform Params {
	uint n;          // row length
	uint rows;       // rows in this dispatch
	float eps;       // added to the mean square (the variance)
	uint x_off;      // element offsets into each binding
	uint w_off;
	uint y_off;
	uint heads;      // rows per token
	uint x_stride;   // elements from one token's rows of x to the next
	uint y_stride;   // and of y
	uint w2_from;    // first head of a token that uses w2
	uint w2_off;
	uint accumulate; // 1: y += the norm
	uint q_off;      // NORM_Q8: word offset of the first row's q8 blocks
} p;

layout(binding = 0) readonly buffer XBuf { float x[]; };
layout(binding = 1) readonly buffer WBuf { float w[]; };
layout(binding = 2) readonly buffer W2Buf { float w2[]; };
layout(binding = 3) buffer YBuf { float y[]; };
#ifdef NORM_Q8
layout(binding = 4) writeonly buffer QBuf { uint q[]; };
shared float run_sh[WG];     // the run's normed values
shared float amax_sh[WG / 4]; // per word of q8 values: its four values' maximum
shared int sum_sh[WG / 4];    // and their sum
#endif

void main() {
	const uint row = group_index();
	if (row >= p.rows) {
		return;
	}
	const uint tok = row / p.heads, head = row % p.heads;
	const uint xb = p.x_off + tok * p.x_stride + head * p.n;
	float shift = 0.0, mean = 0.0; // x − shift − mean is x's deviation (x itself for RMSNorm)
	if (LAYER_NORM != 0) {
		shift = x[xb];
		float s = 0.0;
		for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) {
			s += x[xb + i] - shift;
		}
		mean = workgroup_sum(s) / float(p.n);
	}
	float ss = 0.0;
	for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) {
		const float v = (x[xb + i] - shift) - mean;
		ss += v * v;
	}
	ss = workgroup_sum(ss);
	const float scale = inversesqrt(ss / float(p.n) + p.eps);
	const uint yb = p.y_off + tok * p.y_stride + head * p.n;
	const bool second = head >= p.w2_from;
#ifdef NORM_Q8
	// Runs of WG columns, whole q8 blocks: every invocation stages its
	// value (0 past the row), then invocation t < WG/4 rounds values
	// 4t … 4t+3 of the run, word t % 8 of the run's block t / 8.
	const uint tid = gl_LocalInvocationID.x, w8 = tid % 8, first = tid - w8;
	const uint qb = p.q_off + row * (p.n / 32) * 12;
	for (uint i0 = 0; i0 < p.n; i0 += WG) {
		const uint i = i0 + tid;
		float v = 0.0;
		if (i < p.n) {
			const float wi = second ? w2[p.w2_off + i] : w[p.w_off + i];
			v = ((x[xb + i] - shift) - mean) * scale * wi;
			y[yb + i] = v;
		}
		run_sh[tid] = v;
		barrier();
		vec4 v4 = vec4(0.0);
		if (tid < WG / 4) {
			v4 = vec4(run_sh[4 * tid], run_sh[4 * tid + 1], run_sh[4 * tid + 2], run_sh[4 * tid + 3]);
			amax_sh[tid] = q8_amax(v4);
		}
		barrier();
		float m = 0.0;
		int qsum = 0;
		uint word = 0u;
		if (tid < WG / 4) {
			m = amax_sh[first];
			[[unroll]] for (uint k = 1; k < 8; k++) {
				m = max(m, amax_sh[first + k]);
			}
			word = q8_word(v4, m, qsum);
			sum_sh[tid] = qsum;
		}
		barrier();
		const uint blk = i0 / 32 + tid / 8; // the block of the row
		if (tid < WG / 4 && 32 * blk < p.n) {
			const uint o = qb + 12 * blk;
			q[o + w8] = word;
			if (w8 == 0) {
				int sum = 0;
				[[unroll]] for (uint k = 0; k < 8; k++) {
					sum += sum_sh[first + k];
				}
				q[o + 8] = floatBitsToUint(q8_scale(m));
				q[o + 9] = uint(sum);
				q[o + 10] = 0u;
				q[o + 11] = 0u;
			}
		}
		barrier(); // run_sh and sum_sh are rewritten by the next run
	}
#else
	for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) {
		const float wi = second ? w2[p.w2_off + i] : w[p.w_off + i];
		const float v = ((x[xb + i] - shift) - mean) * scale * wi;
		y[yb + i] = p.accumulate != 0 ? y[yb + i] + v : v;
	}
#endif
}
