// Package shaders is vkrun's kernels as data: the GLSL compute shaders, their
// SPIR-V (built by `make shaders`, committed, and embedded so `go build`
// needs no glslc), the Go mirrors of their push constants, and the kernel
// table. It runs nothing; engine/ops records the kernels.
//
// Each entry point is a thin .comp over shared .glsl includes (common.glsl:
// workgroup width as specialization constant 0 and the folded 2-D grid;
// reduce.glsl: workgroup sums without optional features; weights.glsl and
// quants.glsl: every weight type's device layout and dequantisation;
// attention*.glsl: the attention bodies; act.glsl: SiLU, GELU-tanh and a
// tanh that cannot overflow). Variants of an entry point come
// from defines (Sources: matmul.comp and embed.comp are built once per
// weight type, with WEIGHT_<TYPE>, and matmul.comp again with MATMUL_BLOCKS
// for the CPU layout, with MATMUL_SHUFFLE for GPUs with subgroup
// shuffles, MatMulShuffled, and with MATMUL_DOT too for the integer-dot
// products of Q8_0 and Q4_0 over q8 rows of x made by QuantizeQ8,
// MatMulDot, and with MATMUL_ROPE for RoPE in the Q|K|V product's
// epilogue, OpMatMulRoPE; matmul_coopmat.comp is built once per weight type
// for the prefill tiles on VK_NV_cooperative_matrix, rewritten onto
// VK_KHR_cooperative_matrix by internal/spirv (the *_khr* modules: no
// compiler here writes the KHR extension), and built again with
// COOPMAT_EMULATE for its emulated twin, MatMulCoopMat, as swa_coopmat*.comp
// are for prefill attention, AttentionCoopMat; ChooseCoopMat picks their
// shape and grid of subgroups from what the device lists) and from
// specialization constants (Kernel.Spec: the
// one-token matmul for decode, tile and head sizes, LayerNorm from
// rmsnorm.comp, GELU-tanh from silu_mul.comp, the soft-capped CPU-layout
// attention). NormKernel and ActMulKernel say which kernel serves each norm
// kind and activation.
//
// The kernel table, WeightKernel, says which kernel serves each weight op
// (OpMatMul1, OpMatMul, OpMatMulTiled and their GLU forms, OpEmbed; MatMulOp
// picks the size by token count) for each type in WeightTypes and each
// Layout: GPULayout, a few lanes per row with an x tile in shared memory
// and its lanes' sums by a fixed tree (in shared memory, or the same tree
// by subgroup shuffles: the library takes MatMulShuffled's variant where
// the device offers them), the same sum order at every size, and
// CPULayout, for devices such as lavapipe where every load costs scalar
// work per lane (one subgroup per workgroup, many rows per invocation,
// subgroupAdd). Block sizes come from loader's dtype table; BlockBody is the
// split of each ggml block into its quants (the body) and the rest (the
// side) that ops.Pack lays out and the shaders read.
package shaders
