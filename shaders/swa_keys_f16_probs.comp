#version 450
// swa_keys_f16_probs: swa_keys_f16 (CPU layout, f16 ring) that also writes
// the softmax probabilities of every query and head to binding 8, the debug
// path of vkrun attention (attention_keys.glsl, PROBS).
#define RING_F16
#define PROBS
#include "attention_keys.glsl"
