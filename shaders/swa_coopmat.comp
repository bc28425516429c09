#version 450
// swa_coopmat: prefill attention over an f32 ring in tiles of 32 query rows
// on cooperative matrices (attention_coopmat.glsl); built again with
// COOPMAT_EMULATE as swa_coopmat_emu.
#include "attention_coopmat.glsl"
