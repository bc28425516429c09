#version 450
// kv_store_f32: ring slot (pos0 + i) mod slots ← chunk row i of k, v, all f32
// (attention_store.glsl).
#include "attention_store.glsl"
