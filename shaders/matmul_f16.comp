#version 450
// matmul_f16: y (ntok, rows) f32 = x (ntok, cols) f32 @ Wᵀ, W (rows, cols) f16
// in its device layout; y += that when accumulate is set.
#define WEIGHT_F16
#include "matmul.glsl"
