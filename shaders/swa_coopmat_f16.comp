#version 450
// swa_coopmat_f16: prefill attention over an f16 ring in tiles of 32 query rows
// on cooperative matrices (attention_coopmat.glsl); built again with
// COOPMAT_EMULATE as swa_coopmat_emu_f16.
#define RING_F16
#include "attention_coopmat.glsl"
