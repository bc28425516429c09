#version 450
// matmul_blocks_f32: matmul_f32 in the block layout (matmul.glsl, MATMUL_BLOCKS),
// the layout for CPU devices.
#define WEIGHT_F32
#define MATMUL_BLOCKS
#include "matmul.glsl"
