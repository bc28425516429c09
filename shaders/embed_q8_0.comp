#version 450
// embed_q8_0: x (ntok, cols) f32 = rows tokens[i] (u32) of a (vocab, cols)
// q8_0 table in its device layout; zeros for ids ≥ vocab.
#define WEIGHT_Q8_0
#include "embed.glsl"
