// coopmat.glsl: the cooperative-matrix vocabulary of matmul_coopmat.comp
// and attention_coopmat.glsl. The sources are written on glslang 11's
// GL_NV_cooperative_matrix; the modules for VK_KHR_cooperative_matrix
// (*_khr*) are the same SPIR-V with the NV instructions rewritten into the
// KHR ones (shaders/internal/spirv), since no compiler here writes the KHR
// extension. With COOPMAT_EMULATE none of this is used.
//
// A product is D (CM_M × CM_N, f32) = A (CM_M × CM_K, f16) · B (CM_K ×
// CM_N, f16) + C (CM_M × CM_N, f32) over one subgroup: a shape the device
// lists (vk.DeviceInfo), set by specialization constants 7 to 9. The three
// operand types stay distinct SPIR-V types (they never share both
// dimensions' constants), so the rewrite can give each its KHR use.
//
// The kernels run at WG 128 invocations, SG_R × SG_C subgroups (constants
// 10 and 11, set by the host from the subgroup size) that tile a
// workgroup's output.
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require

layout(constant_id = 7) const uint CM_N = 16;  // columns of B, C and D
layout(constant_id = 8) const uint CM_M = 16;  // rows of A, C and D
layout(constant_id = 9) const uint CM_K = 16;  // columns of A, rows of B
layout(constant_id = 10) const uint SG_R = 2;  // subgroups down the output
layout(constant_id = 11) const uint SG_C = 2;  // subgroups across it

#define CM_A fcoopmatNV<16, gl_ScopeSubgroup, CM_M, CM_K>
#define CM_B fcoopmatNV<16, gl_ScopeSubgroup, CM_K, CM_N>
#define CM_C fcoopmatNV<32, gl_ScopeSubgroup, CM_M, CM_N>
