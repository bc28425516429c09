#version 450
// matmul_blocks_q8_0: matmul_q8_0 in the block layout (matmul.glsl, MATMUL_BLOCKS),
// the layout for CPU devices.
#define WEIGHT_Q8_0
#define MATMUL_BLOCKS
#include "matmul.glsl"
