#version 450
// embed_f16: x (ntok, cols) f32 = rows tokens[i] (u32) of a (vocab, cols)
// f16 table in its device layout; zeros for ids ≥ vocab.
#define WEIGHT_F16
#include "embed.glsl"
