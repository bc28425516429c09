#version 450
// swa_f16: sliding-window attention over an f16 rolling KV cache
// (attention.glsl). As swa, with the ring's K, V (sinks + slots, kv_dim) f16,
// stored as packed pairs in uint words; chunk keys and values are rounded to
// f16.
#define RING_F16
#include "attention.glsl"
