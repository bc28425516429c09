#version 450
// matvec_f32: y (rows,) = W (rows, cols) f32 @ x (cols,) f32.
#define W_TYPE float
#define load_w(i) w[i]
#include "matvec.glsl"
