#version 450
// matmul_q8_0: y (ntok, rows) f32 = x (ntok, cols) f32 @ Wᵀ, W (rows, cols) q8_0
// in its device layout; y += that when accumulate is set.
#define WEIGHT_Q8_0
#include "matmul.glsl"
