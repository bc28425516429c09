#version 450
// quantize_q8: x (rows, cols) f32, cols a multiple of 32, as q8 rows for
// the integer-dot matmul (matmul.comp with MATMUL_DOT). Each run of 32
// columns becomes one block of 12 words: words 0–7 the 32 values
// q_j = roundEven(x_j · 127/m) as int8 (value j in byte j % 4 of word
// j / 4), m = max |x_j|, word 8 the scale d = m/127 (f32 bits, so that
// x_j ≈ d·q_j), word 9 Σ q_j (int32), words 10 and 11 zero (a block is three
// 16-byte loads). A row of cols columns is cols/32·12 words. The divisions
// m/127 and 127/m may be off by Vulkan's 2.5 ulp on some devices, so a q_j
// near a half may round either way there.
//
// One invocation per word of values: 8 invocations per block, a
// workgroup's blocks whole (WG is a multiple of 8). The block maximum and
// the integer sum are exact whatever order they are taken in, so a row's
// blocks depend on its x alone, in any dispatch.
#include "common.glsl"

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
	// A NaN counts as an infinite maximum (max may drop a NaN): the block's
	// d is then infinite and its q zero, so every product that uses it is
	// NaN (0·∞), as the f32 product would be NaN or infinite.
	const vec4 a = abs(v);
	const bool nan = isnan(v.x) || isnan(v.y) || isnan(v.z) || isnan(v.w);
	amax_sh[tid] = nan ? uintBitsToFloat(0x7f800000u) : max(max(a.x, a.y), max(a.z, a.w));
	barrier();
	float m = amax_sh[first];
	[[unroll]] for (uint k = 1; k < 8; k++) {
		m = max(m, amax_sh[first + k]);
	}
	// A block whose maximum is under 2^-100 (or infinite) has q zero: its
	// 127/m could overflow, and its products are below any f32 sum's ulp.
	precise float d = m / 127.0;
	precise float id = m >= uintBitsToFloat(0x0d800000u) && !isinf(m) ? 127.0 / m : 0.0;
	precise vec4 s = v * id;
	const ivec4 qi = id == 0.0 ? ivec4(0) : clamp(ivec4(roundEven(s)), ivec4(-127), ivec4(127));
	sum_sh[tid] = (qi.x + qi.y) + (qi.z + qi.w);
	const uint word = (uint(qi.x) & 0xffu) | (uint(qi.y) & 0xffu) << 8 | (uint(qi.z) & 0xffu) << 16 | (uint(qi.w) & 0xffu) << 24;
	barrier();
	if (blk < p.blocks) {
		const uint o = p.q_off + 12 * blk;
		q[o + w] = word;
		if (w == 0) {
			int sum = 0;
			[[unroll]] for (uint k = 0; k < 8; k++) {
				sum += sum_sh[first + k];
			}
			q[o + 8] = floatBitsToUint(d);
			q[o + 9] = uint(sum);
			q[o + 10] = 0u;
			q[o + 11] = 0u;
		}
	}
}
