#version 450
// swa_keys: swa (sliding-window attention over an f32 ring) laid out for CPU
// devices (attention_keys.glsl).
#include "attention_keys.glsl"
