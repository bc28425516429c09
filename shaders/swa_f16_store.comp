#version 450
// swa_f16_store: swa_f16 (an f16 ring) that also writes the chunk's keys and
// values into the ring, rounded to f16 as kv_store_f16.comp would: StoreKV
// fused into a decode step's attention (attention.glsl, STORE).
#define RING_F16
#define STORE
#include "attention.glsl"
