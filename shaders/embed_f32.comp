#version 450
// embed_f32: x (ntok, cols) f32 = rows tokens[i] (u32) of a (vocab, cols)
// f32 table in its device layout; zeros for ids ≥ vocab.
#define WEIGHT_F32
#include "embed.glsl"
