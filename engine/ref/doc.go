// Package ref is the plain-Go CPU reference model: the oracle the Vulkan
// engine is tested against. It is written to be read, not to be fast, and it
// only runs small models (every weight is dequantised to float32 at Load).
//
// # The model
//
// A Mistral/Llama decoder, as in the paper, with every hyperparameter taken
// from loader.Config (no baked-in eps, θ or window):
//
//	x = token_embd[token]
//	for each layer:
//	    h = RMSNorm(x)·attn_norm
//	    q, k, v = Wq·h, Wk·h, Wv·h           (k, v: NumKVHeads heads)
//	    RoPE(q), RoPE(k) at the absolute position
//	    x += Wo·Attention(q, k, v)
//	    h = RMSNorm(x)·ffn_norm
//	    x += Wdown·(silu(Wgate·h) ⊙ Wup·h)
//	logits = output · (RMSNorm(x)·output_norm)
//
// where:
//
//   - RMSNorm: y = x / sqrt(mean(x²) + NormEps) · w.
//   - RoPE (GGUF llama convention, design.md §4): within each head, the
//     consecutive pair (x[2i], x[2i+1]) of the first RopeDim dims is rotated
//     by the angle pos·θ^(−2i/RopeDim), θ = RopeTheta.
//   - GQA: query head h reads KV head h / (NumHeads/NumKVHeads).
//   - Attention scores are q·k/√HeadDim.
//
// # Sliding window (design.md §3)
//
// With Window W > 0, the query at absolute position i attends to the keys at
// positions FirstKey(W, i) = max(0, i−W+1) … i: W keys, itself included.
// W = 0 means full causal attention (0 … i). Keys outside the band are
// skipped: they are never read, never enter the softmax maximum or sum, so
// they contribute exactly nothing (not exp(−∞) = 0 added in). Hence, with L
// layers, the logits at a position p > L·(W−1) do not depend, bit for bit,
// on the token at position 0.
//
// The reference attends over the full history under this band mask. There is
// no rolling cache and no chunking: those are what the GPU engine is checked
// for.
//
// # Arithmetic
//
// Activations are stored as float32 between operations, as on the GPU.
// Inside an operation every reduction (matrix–vector dot products, the RMSNorm
// sum of squares, attention scores, the softmax and its weighted sum of values)
// and every elementwise formula (RoPE rotation, SiLU, norm scaling) is carried
// out in float64, and the result is rounded to float32 once, when it is
// stored. This keeps the oracle's own rounding error far below what the GPU's
// float32 and float16 paths produce, so NMSE thresholds measure the GPU.
//
// # Two schedules, one piece of math
//
// Forward runs layer by layer over the whole sequence; State.Step runs one
// position through every layer, keeping the K and V of every earlier position
// (all of them, indexed by absolute position: no ring). Both call the same
// per-position functions (qkv, block, head), so they perform identical float
// operations and give bit-identical logits.
package ref
