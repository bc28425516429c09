// Package ref is the plain-Go CPU reference model: the oracle the Vulkan
// engine is tested against. It is written to be read, not to be fast, and it
// only runs small models (every weight is dequantised to float32 at Load).
//
// # The model
//
// A decoder of the llama/mistral (Llama 3.1's RoPE scaling included),
// Qwen 2.5, Qwen 3, Gemma 2, Gemma 3 and Cohere2 families, with every
// hyperparameter taken from loader.Config (no baked-in eps, θ or window;
// the zero value of each family field is llama's):
//
//	x = token_embd[token] · EmbedScale                 (a float32 multiply; Gemma: √dim)
//	for each layer l:
//	    n = norm(x)·attn_norm
//	    q, k, v = Wq·n, Wk·n, Wv·n                     (k, v: NumKVHeads heads)
//	    QKVBias: q, k, v += attn_q.bias, attn_k.bias, attn_v.bias   (Qwen 2.5)
//	    QKNorm: q, k = RMSNorm(each head)·attn_q_norm, ·attn_k_norm   (Gemma 3, Qwen 3)
//	    RoPE(q), RoPE(k) at the absolute position, with layer l's θ and scale
//	        (CachePositions: in local layers, at attention time instead; see below)
//	    a = Wo·Attention_l(q, k, v)
//	    PostNorms: a = norm(a)·post_attention_norm
//	    Parallel (Cohere2):
//	        x += a + ffn(n)
//	    otherwise:
//	        x += a
//	        f = ffn(norm(x)·ffn_norm)
//	        PostNorms: f = norm(f)·post_ffw_norm
//	        x += f
//	logits = output · (norm(x)·output_norm)
//	logits ·= LogitScale;  logits = FinalSoftcap·tanh(logits/FinalSoftcap)   (each when set)
//
// where:
//
//   - norm is the config's Norm for every norm tensor: NormRMS,
//     y = x / √(mean(x²) + NormEps) · w, or NormLayer (LayerNorm without
//     bias), y = (x − mean) / √(var + NormEps) · w. The per-head q/k norm is
//     always RMSNorm. Norm weights are used as stored.
//   - ffn(h) = Wdown·(act(Wgate·h) ⊙ Wup·h), act being SiLU, x·σ(x), or
//     GELU's tanh form, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
//   - RoPE: within each head, pair i < RopeDim/2 is turned by the angle
//     (pos/RopeScale)·θ^(−2i/RopeDim) / RopeFreqFactors[i], with layer l's
//     θ and RopeScale (Config.Layer(l)), and the factors (Llama 3.1's
//     rope_freqs, shared by every layer; none when nil); a layer with θ = 0
//     has no RoPE. The pair is (x[2i], x[2i+1]) for RopePairwise (GGUF
//     llama, design.md §4) and (x[i], x[i+RopeDim/2]) for RopeHalf (NEOX:
//     Gemma, Qwen). Dims from RopeDim on are never turned.
//   - GQA: query head h reads KV head h / (NumHeads/NumKVHeads).
//   - Attention scores are s = (q·k)·QueryScale (1/√HeadDim unless
//     AttnScale is set), soft-capped to AttnSoftcap·tanh(s/AttnSoftcap) when
//     that is set, then softmaxed over the band.
//
// # Sliding window (design.md §3)
//
// Each layer has its own window, Config.Layer(l).Window. With W > 0 the
// query at absolute position i attends to the keys at positions
// FirstKey(W, i) = max(0, i−W+1) … i: W keys, itself included. W = 0 is a
// global layer: full causal attention (0 … i). Keys outside the band are
// skipped: they are never read, never enter the softmax maximum or sum, so
// they contribute exactly nothing (not exp(−∞) = 0 added in). Hence, with
// local layers only, of windows W_l, the logits at a position
// p > Σ(W_l − 1) do not depend, bit for bit, on the token at position 0; a
// single global layer makes every position depend on it.
//
// # Sinks and their positions (issue 14)
//
// Model.Sinks = N keeps the first N positions in every local layer's keys
// beside the band: the query at i attends to the sinks 0 … min(N, lo)−1
// and the band lo … i, lo = FirstKey(W, i), each key once, at most N + W
// keys. Model.Positions says where RoPE puts them. AbsolutePositions (the
// default) rotates each key by its absolute position when it is computed.
// CachePositions is StreamingLLM's (Xiao et al. 2023): keys are kept
// un-rotated, and for each query the count keys it attends to are rotated
// by their index 0 … count−1 in that list (absolute order), the query by
// count−1. Until lo > N the list is 0 … i and the indices are the absolute
// positions, bit for bit; from then on every query sees the positions
// 0 … N+W−1, so a model of local layers only gives the same logits
// wherever the text sits after its sinks. Global layers (W = 0) always
// use absolute positions.
//
// The reference attends over the full history under this band mask. There is
// no rolling cache and no chunking: those are what the GPU engine is checked
// for.
//
// # Arithmetic
//
// Activations are stored as float32 between operations, as on the GPU.
// Inside an operation every reduction (matrix–vector dot products, with a
// Q/K/V bias added to the sum before it is rounded, the norm sums,
// attention scores, the softmax and its weighted sum of values) and
// every elementwise formula (RoPE rotation, the activations, soft-caps, norm
// scaling, the logit scale) is carried out in float64, and the result is
// rounded to float32 once, when it is stored. The residual adds and the
// embedding scale are float32 operations. This keeps the oracle's own
// rounding error far below what the GPU's float32 and float16 paths produce,
// so NMSE thresholds measure the GPU.
//
// # Two schedules, one piece of math
//
// Forward runs layer by layer over the whole sequence; State.Step runs one
// position through every layer, keeping the K and V of every earlier position
// (all of them, indexed by absolute position: no ring). Both call the same
// per-position functions (qkv, block, head), so they perform identical float
// operations and give bit-identical logits.
package ref
