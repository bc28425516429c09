#version 450
// swa_keys_f16_store: swa_keys_f16 (CPU layout, f16 ring) that also writes
// the chunk's keys and values into the ring, rounded to f16 as
// kv_store_f16.comp would (attention_keys.glsl, STORE).
#define RING_F16
#define STORE
#include "attention_keys.glsl"
