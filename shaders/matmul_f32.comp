#version 450
// matmul_f32: y (ntok, rows) f32 = x (ntok, cols) f32 @ Wᵀ, W (rows, cols) f32
// in its device layout; y += that when accumulate is set.
#define WEIGHT_F32
#include "matmul.glsl"
