#version 450
// kv_store_f16: ring row of position pos0 + i (attention_store.glsl) ← chunk
// row i of k, v (f32), rounded to f16 and packed in pairs (attention_store.glsl).
#define RING_F16
#include "attention_store.glsl"
