// Package ops records vkrun's kernels into a vk.Sequence: the op layer
// between the engine's forward pass and the shaders.
//
// A Library is one device's kernel set. Its layout (shaders.GPULayout or
// shaders.CPULayout) is chosen once, from the device type and its probed
// features or as forced (Options.Layout), and never changes. Which kernel
// serves which op and weight type is shaders.WeightKernel's table; the
// library only picks among a kernel's variants where the bound offsets do
// not suit it (x rows off 16 bytes, an odd number of blocks), and records
// every choice with its reason (Library.Picks), so no fallback is silent and
// a test can assert which kernel ran. Pipelines are built on first use.
//
// A Plan records ops (MatMul, Embed and EmbedScaled, RMSNorm, RMSNormAdd,
// LayerNorm, HeadNormQK, RoPE in both pairings and RoPEQTo (a rotated
// copy: the sinks' queries), Attention with its scale, soft-cap and sink
// queries, StoreKV, Attend (both, in one dispatch where the store cannot
// race the reads), ActMul for SiLU and GELU-tanh, ScaleCap, Add, Argmax) and, like vk.Sequence, keeps its first error: an op
// that fails records nothing more, and Err reports it. Ops bind tensors
// larger than maxStorageBufferRange in parts, one dispatch each. The
// ...Into, ...QKV and ...Rows forms work on strided rows: q|k|v side by
// side from one product of stacked Q, K and V weights, gate|up likewise;
// MatMulRoPE turns q and k in that product's epilogue where it can, and
// MatMulGLU applies the gated activation in the gate-up product's.
// Split-K attention (GPU layout) needs scratch for its partial results
// (Library.AttentionScratch): give a plan a shared buffer with SetScratch,
// or it allocates its own. The integer-dot products (Options.Dot) likewise
// round x into q8 rows first (Library.Q8Scratch, SetQ8Scratch).
//
// Weights stay in their file's type on the device (Weight, Pack): F32, F16
// and BF16 rows as they are, every block type split into bodies (the quants,
// 16-byte units) and sides (scales and the other small fields), at the
// file's size. Ring is one layer's KV cache as the kernels bind it: the
// window its queries attend to and the slots it keeps, position p in slot
// p mod slots (a ring of W for a local layer, a linear cache for a global
// one).
package ops
