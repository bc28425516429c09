#version 450
// matmul_blocks_f16: matmul_f16 in the block layout (matmul.glsl, MATMUL_BLOCKS),
// the layout for CPU devices.
#define WEIGHT_F16
#define MATMUL_BLOCKS
#include "matmul.glsl"
