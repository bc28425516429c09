#version 450
// matmul_blocks_q4_0: matmul_q4_0 in the block layout (matmul.glsl, MATMUL_BLOCKS),
// the layout for CPU devices.
#define WEIGHT_Q4_0
#define MATMUL_BLOCKS
#include "matmul.glsl"
