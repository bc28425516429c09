#version 450
// swa_keys_store: swa_keys (CPU layout, f32 ring) that also writes the
// chunk's keys and values into the ring, as kv_store_f32.comp would after
// it: StoreKV fused into a decode step's attention (attention_keys.glsl,
// STORE).
#define STORE
#include "attention_keys.glsl"
