#version 450
// embed_q4_0: x (ntok, cols) f32 = rows tokens[i] (u32) of a (vocab, cols)
// q4_0 table in its device layout; zeros for ids ≥ vocab.
#define WEIGHT_Q4_0
#include "embed.glsl"
