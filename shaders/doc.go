// Package shaders holds vkrun's GLSL compute kernels, their SPIR-V (compiled
// by `make shaders` with glslc, committed, and embedded so `go build` needs no
// glslc), a table of kernels with Go mirrors of their push constants, and a
// thin op layer (Library, Plan) that records kernels into a vk.Sequence and
// binds tensors larger than maxStorageBufferRange in parts.
//
// Each entry point is a thin <op>.comp; shared code lives in .glsl includes
// (common.glsl: workgroup width as specialization constant 0 and the folded
// 2-D grid; reduce.glsl: workgroup sums without optional features;
// weights.glsl: reading weights in their device layouts (see Pack);
// matmul.glsl, embed.glsl, attention.glsl, attention_keys.glsl,
// attention_store.glsl: the op bodies, with attention_common.glsl holding
// what the two attention bodies share). Variants of one entry point share
// its SPIR-V and differ in specialization constants (Kernel.File,
// Kernel.Spec), such as the one-token matmul used by decode, or in
// defines, such as the block-layout matmuls.
//
// Two families of kernels exist for MatMul and Attention (Layout): one for
// GPUs and one for CPU devices such as lavapipe, where every load costs a
// loop over the SIMD lanes; Library.Layout picks one by device type. The CPU
// family makes a workgroup one subgroup and sums with subgroup arithmetic
// (Kernel.Subgroup); a device without it runs the GPU family.
package shaders
