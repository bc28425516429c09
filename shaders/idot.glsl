// idot.glsl: the packed 4×int8 signed dot product, SPIR-V's OpSDot with
// PackedVectorFormat4x8Bit (SPV_KHR_integer_dot_product), declared through
// GL_EXT_spirv_intrinsics because this glslang lacks
// GL_EXT_integer_dot_product. sdot4x8(a, b) is Σ a_i·b_i over the four
// signed bytes of each word, exact in 32 bits. A device runs it only with
// shaderIntegerDotProduct enabled (vk.Features.IntegerDotProduct).
#extension GL_EXT_spirv_intrinsics : require

spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot4x8_op(int a, int b, spirv_literal int packed_format);

int sdot4x8(uint a, uint b) {
	return sdot4x8_op(int(a), int(b), 0); // 0: PackedVectorFormat4x8Bit
}
