#version 450
// swa: sliding-window attention over an f32 rolling KV cache (attention.glsl).
// out (rows, heads*head_dim) f32 from q (rows, heads*head_dim) f32, the
// chunk's k, v (rows, kv_dim) f32 and the ring's K, V (sinks + slots, kv_dim)
// f32.
#include "attention.glsl"
