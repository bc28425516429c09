#version 450
// matmul_q4_0: y (ntok, rows) f32 = x (ntok, cols) f32 @ Wᵀ, W (rows, cols) q4_0
// in its device layout; y += that when accumulate is set.
#define WEIGHT_Q4_0
#include "matmul.glsl"
