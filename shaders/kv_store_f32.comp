#version 450
// kv_store_f32: ring row of position pos0 + i ← chunk row i of k, v, all f32
// (attention_store.glsl).
#include "attention_store.glsl"
