#version 450
// quantize_q8: x (rows, cols) f32, cols a multiple of 32, as q8 rows for
// the integer-dot matmul (matmul.comp with MATMUL_DOT), in q8.glsl's block
// layout: a row of cols columns is cols/32·12 words.
//
// One invocation per word of values: 8 invocations per block, a
// workgroup's blocks whole (WG is a multiple of 8). The block maximum and
// the integer sum are exact whatever order they are taken in, so a row's
// blocks depend on its x alone, in any dispatch.
#include "common.glsl"
#include "q8.glsl"

layout(push_constant) uniform Params {
	uint blocks; // blocks in this dispatch: rows · cols/32
	uint cols;   // columns of x, a multiple of 32
	uint x_off;  // element offset of x's first row
	uint q_off;  // word offset of the first row's first block
} p;

layout(binding = 0) readonly buffer XBuf { float x[]; };
layout(binding = 1) writeonly buffer QBuf { uint q[]; };

shared float amax_sh[WG];
shared int sum_sh[WG];

void main() {
	const uint tid = gl_LocalInvocationID.x;
	const uint i = group_index() * WG + tid;
	const uint blk = i / 8, w = i % 8, first = tid - w; // the block's first invocation
	const uint nb = p.cols / 32;
	vec4 v = vec4(0.0);
	if (blk < p.blocks) {
		const uint xb = p.x_off + (blk / nb) * p.cols + 32 * (blk % nb) + 4 * w;
		v = vec4(x[xb], x[xb + 1], x[xb + 2], x[xb + 3]);
	}
	amax_sh[tid] = q8_amax(v);
	barrier();
	float m = amax_sh[first];
	[[unroll]] for (uint k = 1; k < 8; k++) {
		m = max(m, amax_sh[first + k]);
	}
	int qsum;
	const uint word = q8_word(v, m, qsum);
	sum_sh[tid] = qsum;
	barrier();
	if (blk < p.blocks) {
		const uint o = p.q_off + 12 * blk;
		q[o + w] = word;
		if (w == 0) {
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
}
