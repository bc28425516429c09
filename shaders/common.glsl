// common.glsl: what every vkrun kernel shares.
//
// Workgroup width is specialization constant 0 (local_size_x_id = 0), so the
// host picks it per device (subgroup size, lavapipe vs a GPU) without a
// rebuild. Grids larger than maxComputeWorkGroupCount[0] are folded into y:
// the linear workgroup index is group_index().
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 64;

uint group_index() {
	return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
}
