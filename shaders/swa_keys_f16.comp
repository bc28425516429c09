#version 450
// swa_keys_f16: swa_f16 (sliding-window attention over an f16 ring) laid out
// for CPU devices (attention_keys.glsl).
#define RING_F16
#include "attention_keys.glsl"
