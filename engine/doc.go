// Package engine runs a decoder-only transformer on a Vulkan device: the
// llama and mistral archs, and the sliding-window families Gemma 2, Gemma 3
// and Cohere2, whose layers mix local and global attention (loader.Config
// says how each family differs).
//
// A Model holds the weights on the device (uploaded once, kept in their
// quantised form where a kernel exists for it) and the kernels. A Session
// is one sequence with its KVCache: per layer a LayerCache whose window
// (the keys a query attends to) and slots (what it keeps) are separate
// numbers. A local layer is a ring of W slots (the K and V of position p
// live in slot p mod W), a global layer a linear cache of the context; both
// are allocated once, so device memory stays flat however long the sequence
// grows, and a model whose layers all slide a window runs on without end.
//
// Sliding-window semantics (design.md §3): a query at position i attends to
// keys max(0, i−W+1) … i, W keys including itself. A prompt is prefilled in
// chunks of at most the smallest window. Each chunk attends to the cache and
// to its own keys, and only then is written into the cache. Decode is a
// chunk of one.
// The same kernels and the same per-token arithmetic serve every chunk size,
// so chunked prefill gives the same logits as token-by-token decode, bit for bit.
//
// Every step (a chunk of n tokens) is recorded once per n into a
// vk.Sequence and submitted again for every position: the position, the
// token ids and the RoPE angles come from a small host-visible step buffer.
// Greedy decoding takes the argmax on the GPU and writes it into that
// buffer, so only one token id crosses back to the host per token.
//
// The CPU reference in engine/ref computes the same math naively, and is the
// oracle the tests compare with.
package engine
