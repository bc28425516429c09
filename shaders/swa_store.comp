#version 450
// swa_store: swa (sliding-window attention over an f32 ring, attention.glsl)
// that also writes the chunk's keys and values into the ring, as
// kv_store_f32.comp would after it: StoreKV fused into a decode step's
// attention (STORE).
#define STORE
#include "attention.glsl"
