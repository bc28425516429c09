#version 450
// swa_merge: the second pass of split-K attention (attention.glsl). For
// each (query, head) it combines the partial results of the non-empty
// splits of the query's keys (its sinks, then its band), in split order: with M the largest split maximum and
// w_i = exp2(m_i − M), out = Σ w_i·a_i / Σ w_i·d_i. One workgroup per
// (query, head), thread t owning dims t, t+WG, …; every thread computes
// the same weights (recomputed per dim rather than kept in an array that a
// GPU would spill). The splits are found as the first pass found them
// (split_len, with the first pass's tile), so empty splits, which wrote
// nothing, are never read. Soft-capping needs nothing here: the partial
// maxima are of the capped scores.
#include "common.glsl"
#include "attention_split.glsl"

layout(push_constant) uniform Params {
	uint n_heads;  // query heads
	uint head_dim; // elements per head
	uint window;   // W (0: a global ring)
	uint slots;    // the ring's slots (the band of a global ring)
	uint q0;       // chunk row of this dispatch's first query
	uint rows;     // queries in this dispatch
	uint splits;   // S
	uint tile;     // the first pass's keys per tile (its workgroup width)
	uint part_off; // element offsets into each binding
	uint step_off;
	uint out_off;
	uint sinks;    // N: the sinks beside every band (attention.glsl)
} p;

layout(binding = 0) readonly buffer PartBuf { float part[]; }; // (rows, n_heads, S, head_dim + 2)
layout(binding = 1) readonly buffer StepBuf { uint step[]; };  // step[step_off] = pos0
layout(binding = 2) writeonly buffer OutBuf { float o[]; };    // (rows, n_heads·head_dim)

void main() {
	const uint g = group_index();
	if (g >= p.rows * p.n_heads) {
		return;
	}
	const uint r = g / p.n_heads;
	const uint hd = p.head_dim;
	const uint pos = step[p.step_off] + p.q0 + r;
	const uint n = attended(pos, p.window, p.slots, p.sinks);
	const uint ks = split_len(n, p.splits, p.tile);
	const uint nsplit = (n + ks - 1) / ks;
	const uint pb = p.part_off + g * p.splits * (hd + 2);

	float mx = -3.0e38;
	for (uint i = 0; i < nsplit; i++) {
		mx = max(mx, part[pb + i * (hd + 2) + hd]);
	}
	precise float d = 0.0;
	for (uint i = 0; i < nsplit; i++) {
		const uint b = pb + i * (hd + 2);
		d = fma(exp2(part[b + hd] - mx), part[b + hd + 1], d);
	}
	const uint ob = p.out_off + g * hd;
	for (uint e = gl_LocalInvocationID.x; e < hd; e += WG) {
		precise float a = 0.0;
		for (uint i = 0; i < nsplit; i++) {
			const uint b = pb + i * (hd + 2);
			a = fma(exp2(part[b + hd] - mx), part[b + e], a);
		}
		precise float y = a / d;
		o[ob + e] = y;
	}
}
