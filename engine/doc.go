// Package engine runs a Mistral-style transformer on a Vulkan device.
//
// A Model holds the weights on the device (uploaded once, kept in their
// quantised form where a kernel exists for it) and the kernels. A Session
// is one sequence: per layer, a rolling KV cache of W slots (the K and V of
// position p live in slot p mod W), allocated once, so device memory and
// per-token cost stay flat however long the sequence grows.
//
// Sliding-window semantics (design.md §3): a query at position i attends to
// keys max(0, i−W+1) … i, W keys including itself. A prompt is prefilled in
// chunks of at most W tokens. Each chunk attends to the ring and to its own
// keys, and only then is written into the ring. Decode is a chunk of one.
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
