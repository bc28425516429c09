#version 450
// swa_keys_probs: swa_keys (CPU layout, f32 ring) that also writes the
// softmax probabilities of every query and head to binding 8, the debug
// path of vkrun attention (attention_keys.glsl, PROBS).
#define PROBS
#include "attention_keys.glsl"
