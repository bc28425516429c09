package shaders

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/vk"
)

// Layout is a family of kernels for one kind of device. Both families
// compute the same results up to f32 rounding, and each is bit-exact
// across batch and chunk sizes on its own.
type Layout int

const (
	// GPULayout spreads each product over many invocations that read
	// neighbouring words (coalesced loads), with shared-memory reductions.
	GPULayout Layout = iota
	// CPULayout is for devices that run a workgroup as SIMD fibres and pay
	// scalar work per lane for every load that is not a constant address
	// (lavapipe): it maximises the arithmetic per load. MatMul takes whole
	// blocks or tiles of many rows per invocation with 16-byte loads, one
	// subgroup per workgroup; Attention gives one subgroup a (query, KV
	// head), each invocation a slice of the head dims for all its query
	// heads. It needs subgroup arithmetic.
	CPULayout
)

func (l Layout) String() string {
	if l == CPULayout {
		return "cpu"
	}
	return "gpu"
}

// Op is an entry point with one kernel per weight type.
type Op int

const (
	// OpMatMul: y (ntok, rows) f32 = x (ntok, cols) f32 @ Wᵀ, or y += that,
	// up to MatMulTokens tokens per workgroup (prefill).
	OpMatMul Op = iota
	// OpMatMul1 is OpMatMul specialised to one token per workgroup (decode):
	// the same code in the same order, so bit-identical to OpMatMul.
	OpMatMul1
	// OpEmbed: x (ntok, cols) f32 = rows tokens[i] (u32) of a (vocab, cols)
	// table; zeros for ids ≥ vocab.
	OpEmbed
	// OpMatMulSwiGLU: h (ntok, rows/2) f32 = silu(g)·u, where g and u are
	// the products of W's even and odd rows (gate and up interleaved,
	// ops.PackGLU) with x (ntok, cols) f32: OpMatMul with the gated
	// activation in its epilogue. The GPU layout only.
	OpMatMulSwiGLU
	// OpMatMulSwiGLU1 is OpMatMulSwiGLU at one token per workgroup.
	OpMatMulSwiGLU1
	// OpMatMulGeGLU is OpMatMulSwiGLU with GELU's tanh approximation.
	OpMatMulGeGLU
	// OpMatMulGeGLU1 is OpMatMulGeGLU at one token per workgroup.
	OpMatMulGeGLU1
	// OpMatMulTiled is OpMatMul in prefill tiles (in the GPU layout, 64
	// rows a workgroup where OpMatMul has 32), bit-identical to it, for
	// MatMulTileTokens tokens or more. The CPU layout serves it with
	// OpMatMul's kernel.
	OpMatMulTiled
	// OpMatMulSwiGLUTiled is OpMatMulSwiGLU in prefill tiles.
	OpMatMulSwiGLUTiled
	// OpMatMulGeGLUTiled is OpMatMulGeGLU in prefill tiles.
	OpMatMulGeGLUTiled
	// OpMatMulRoPE: OpMatMul of stacked Q, K and V rows with RoPE's
	// rotation of the q and k heads' pairs (x[2i], x[2i+1]) in its
	// epilogue (matmul_rope_<type>): OpMatMul then rope.comp, the same
	// bits. The GPU layout with subgroup shuffles only.
	OpMatMulRoPE
	// OpMatMulRoPE1 is OpMatMulRoPE at one token per workgroup.
	OpMatMulRoPE1
	// OpMatMulRoPETiled is OpMatMulRoPE in prefill tiles.
	OpMatMulRoPETiled
)

var opNames = [...]string{"matmul", "matmul1", "embed", "matmul_swiglu", "matmul_swiglu1", "matmul_geglu", "matmul_geglu1",
	"matmul_tiled", "matmul_swiglu_tiled", "matmul_geglu_tiled", "matmul_rope", "matmul_rope1", "matmul_rope_tiled"}

// Ops are every op of the table, in order.
var Ops = []Op{OpMatMul, OpMatMul1, OpEmbed, OpMatMulSwiGLU, OpMatMulSwiGLU1, OpMatMulGeGLU, OpMatMulGeGLU1,
	OpMatMulTiled, OpMatMulSwiGLUTiled, OpMatMulGeGLUTiled, OpMatMulRoPE, OpMatMulRoPE1, OpMatMulRoPETiled}

// RoPEOp is the product op with the RoPE epilogue in the size of the
// product op size (OpMatMul1, OpMatMul or OpMatMulTiled).
func RoPEOp(size Op) Op {
	switch size {
	case OpMatMul1:
		return OpMatMulRoPE1
	case OpMatMulTiled:
		return OpMatMulRoPETiled
	}
	return OpMatMulRoPE
}

// ParseOp is the op named s (Op.String), and whether there is one.
func ParseOp(s string) (Op, bool) {
	for _, o := range Ops {
		if o.String() == s {
			return o, true
		}
	}
	return 0, false
}

// MatMulOp is the product op for ntok tokens: OpMatMul1 for one,
// OpMatMulTiled from MatMulTileTokens, OpMatMul between. The three sum in
// the same order, so the choice never changes a result.
func MatMulOp(ntok uint64) Op {
	switch {
	case ntok <= 1:
		return OpMatMul1
	case ntok >= MatMulTileTokens:
		return OpMatMulTiled
	}
	return OpMatMul
}

// GLUOp is the fused gate-up op for activation a in the size of the
// product op size (OpMatMul1, OpMatMul or OpMatMulTiled); ok is false for
// an activation without one.
func GLUOp(a loader.Activation, size Op) (op Op, ok bool) {
	var ops [3]Op
	switch a {
	case loader.ActSiLU:
		ops = [3]Op{OpMatMulSwiGLU1, OpMatMulSwiGLU, OpMatMulSwiGLUTiled}
	case loader.ActGELUTanh:
		ops = [3]Op{OpMatMulGeGLU1, OpMatMulGeGLU, OpMatMulGeGLUTiled}
	default:
		return 0, false
	}
	switch size {
	case OpMatMul1:
		return ops[0], true
	case OpMatMulTiled:
		return ops[2], true
	}
	return ops[1], true
}

func (o Op) String() string {
	if o < 0 || int(o) >= len(opNames) {
		return fmt.Sprintf("Op(%d)", int(o))
	}
	return opNames[o]
}

// MatMulTokens is the tokens one OpMatMul or OpMatMulTiled workgroup
// covers (constant 1); MatMulTileTokens is the token count from which a
// product takes OpMatMulTiled.
const (
	MatMulTokens     = 8
	MatMulTileTokens = 16
)

// WeightTypes are the weight types that have kernels, in table order.
var WeightTypes = []loader.DType{
	loader.F32, loader.F16, loader.BF16, loader.Q8_0, loader.Q4_0,
	loader.Q4_1, loader.Q5_0, loader.Q5_1, loader.IQ4_NL,
	loader.Q2_K, loader.Q3_K, loader.Q4_K, loader.Q5_K, loader.Q6_K, loader.IQ4_XS,
}

// weightInfo is what the host must know of a type's kernels and device
// layout; the GLSL (weights.glsl, quants.glsl) says the same.
type weightInfo struct {
	// body is the byte range of a ggml block that forms its body (the
	// quants, a whole number of 16-byte units); the rest is its side. Zero
	// for the plain types F32, F16, BF16.
	body [2]uint64
	// tiled types read rows in tiles (quants.glsl) in both layouts; the
	// others in 32-column blocks (the GPU layout takes a block as its units).
	tiled bool
	// wide tiles are 64 columns (W_TILE), so the GPU layout gives a row 4
	// lanes (256 columns a step) where the others give it 8.
	wide bool
	// minGroup is W_GROUP of the types with an offset per group (W_MIN),
	// whose x tile carries its groups' sums; 0 for the others.
	minGroup uint32
}

var weightInfos = map[loader.DType]weightInfo{
	loader.F32:    {},
	loader.F16:    {},
	loader.BF16:   {},
	loader.Q8_0:   {body: [2]uint64{2, 34}},
	loader.Q4_0:   {body: [2]uint64{2, 18}},
	loader.Q4_1:   {body: [2]uint64{4, 20}, tiled: true, minGroup: 32},
	loader.Q5_0:   {body: [2]uint64{6, 22}, tiled: true},
	loader.Q5_1:   {body: [2]uint64{8, 24}, tiled: true, minGroup: 32},
	loader.IQ4_NL: {body: [2]uint64{2, 18}, tiled: true},
	loader.Q2_K:   {body: [2]uint64{16, 80}, tiled: true, wide: true, minGroup: 16},
	loader.Q3_K:   {body: [2]uint64{0, 96}, tiled: true, wide: true},
	loader.Q4_K:   {body: [2]uint64{16, 144}, tiled: true, minGroup: 16},
	loader.Q5_K:   {body: [2]uint64{16, 176}, tiled: true, minGroup: 16},
	loader.Q6_K:   {body: [2]uint64{0, 192}, tiled: true, wide: true, minGroup: 16},
	loader.IQ4_XS: {body: [2]uint64{8, 136}, tiled: true},
}

// HasKernels reports whether t has kernels (is in WeightTypes).
func HasKernels(t loader.DType) bool {
	_, ok := weightInfos[t]
	return ok
}

// BlockBody is the byte range [from, to) of one of t's ggml blocks that
// its device layout keeps in the body array (binding 0); the block's other
// bytes, in order, form its side (binding 1). ok is false for the plain
// types, which have no blocks, and for types without kernels.
func BlockBody(t loader.DType) (from, to uint64, ok bool) {
	i, found := weightInfos[t]
	if !found || i.body[1] == 0 {
		return 0, 0, false
	}
	return i.body[0], i.body[1], true
}

// Tiled reports whether t's matmul reads tiles (quants.glsl), which take x
// in vec4 or scalar loads by constant 4, in both layouts.
func Tiled(t loader.DType) bool { return weightInfos[t].tiled }

// typeName is t's name in kernel and file names ("q4_k").
func typeName(t loader.DType) string { return strings.ToLower(t.String()) }

// Matmul tile sizes, the kernels' specialization constants. A GPU-layout
// workgroup has WG/lanes row slots (constant 6: 8 lanes a row, 4 for the
// wide tiles) of a few rows each (constant 2) for a few tokens (constant
// 1): 1 row and 1 token for decode (matmul1; 2 rows with a GLU epilogue,
// whose rows pair), matmulRows and MatMulTokens for short batches,
// matmulTileRows and MatMulTokens for prefill (from MatMulTileTokens
// tokens: 64 rows × 8 tokens at WG 128, 12.5 KiB of shared memory). A CPU-layout one computes
// matmulBlockRows rows, taking matmulBlockPair adjacent 32-column blocks
// per step (constant 3; the untiled types), and its tiled types take x in
// vec4 loads (constant 4). The GPU layout chooses its vec4 and 16-byte
// loads from the push constants, in the shader.
//
// Sixteen rows in the CPU layout: on lavapipe every x load is a gather
// lane by lane, and it serves that many rows. Q6_K's 128-column tiles at 8
// rows ran its 4096² one-token product at 0.68× Q4_0's bandwidth; at 16 it
// matches Q4_0 (BenchmarkMatMul), for twice the JIT time of its batched
// kernel.
const (
	matmulRows      = 2
	matmulTileRows  = 4
	matmulBlockRows = 16
	matmulBlockPair = 2
)

// matmulLanes is the lanes a GPU-layout workgroup gives a row of type t
// (constant 6): 256 columns a step.
func matmulLanes(t loader.DType) uint32 {
	if weightInfos[t].wide {
		return 4
	}
	return 8
}

// MatMulRowsPerGroup is the rows of W one workgroup of matmul kernel k
// computes at workgroup width wg.
func MatMulRowsPerGroup(k Kernel, wg uint32) uint32 {
	rows, _ := k.SpecValue(2)
	if lanes, ok := k.SpecValue(6); ok {
		return wg / lanes * rows
	}
	return rows
}

// MatMulSharedBytes is the shared memory a workgroup of matmul kernel k
// for weight type t declares at workgroup width wg (the GPU layout's x
// tile, its group sums and the lanes' reduction, the latter absent with
// shuffles; decode declares its tile but leaves it unused; the CPU layout
// uses none).
func MatMulSharedBytes(k Kernel, t loader.DType, wg uint32) uint32 {
	if k.Half { // matmul_coopmat.comp: two f16 tiles of 64 × (32 + 8), one f32 of 64 × (64 + 4)
		return 2*CoopMatTile*40*2 + CoopMatTile*(CoopMatTile+4)*4
	}
	if _, ok := k.SpecValue(6); !ok {
		return 0
	}
	tokens, _ := k.SpecValue(1)
	rows, _ := k.SpecValue(2)
	const step = 256 // columns a step: lanes × chunk
	b := tokens * step * 4
	if g := weightInfos[t].minGroup; g != 0 {
		b += tokens * step / g * 4
	}
	if k.Dot {
		b = tokens * step / 32 * 4 * Q8BlockWords // the q8 x tile
	}
	if !k.Shuffles {
		b += min(rows*tokens, 8) * wg * 4 // the lanes' sums
	}
	return b
}

// MatMulShuffled is the variant of GPU-layout matmul kernel k (a table
// kernel, GLU or not) whose lanes add their sums by subgroup shuffles (an
// xor butterfly in registers) instead of the tree in shared memory: the
// same tree, so the same bits, with no barrier and no shared memory for
// it. Its module is matmul_shuffle_<type> (matmul.comp with
// MATMUL_SHUFFLE). ok is false for a kernel that has no such variant.
func MatMulShuffled(k Kernel) (Kernel, bool) {
	f := k.Source()
	if _, gpu := k.SpecValue(6); !gpu || k.Shuffles || !strings.HasPrefix(f, "matmul_") {
		return k, false
	}
	k.File = "matmul_shuffle_" + strings.TrimPrefix(f, "matmul_")
	k.Name += "/shuffle"
	k.Shuffles = true
	return k, true
}

// DotTypes are the weight types with an integer-dot matmul (MatMulDot):
// 32-column blocks of int8 (Q8_0) or nibbles (Q4_0) with one scale.
var DotTypes = []loader.DType{loader.Q8_0, loader.Q4_0}

// MatMulDot is the integer-dot variant of GPU-layout matmul kernel k (a
// table kernel of a DotTypes type, GLU or not): x quantised to q8 rows
// (QuantizeQ8) and each 32-column block summed exactly in int32 by packed
// 4×int8 dot products, then scaled once by d_w·d_x; the lanes add their
// sums by shuffles, as MatMulShuffled's. Every size sums in one order, so
// its chunked prefill equals its decode bit for bit, but its sums are not
// the f32 kernel's (x is rounded to 8 bits a block). Its module is
// matmul_dot_<type> (matmul.comp with MATMUL_DOT and MATMUL_SHUFFLE). ok
// is false for a kernel without one.
func MatMulDot(k Kernel) (Kernel, bool) {
	f := k.Source()
	if _, gpu := k.SpecValue(6); !gpu || k.Dot || !strings.HasPrefix(f, "matmul_") {
		return k, false
	}
	typ, module := strings.TrimPrefix(f, "matmul_"), "matmul_dot_"
	if strings.HasPrefix(f, "matmul_rope_") { // the RoPE epilogue's module, shuffles and all
		typ, module = strings.TrimPrefix(f, "matmul_rope_"), "matmul_rope_dot_"
	} else if k.Shuffles {
		return k, false
	}
	for _, t := range DotTypes {
		if typ == typeName(t) {
			k.File = module + typ
			k.Name += "/dot"
			k.Shuffles, k.Dot = true, true
			return k, true
		}
	}
	return k, false
}

// matmulKernel is the matmul kernel of type t in layout l in the size of
// op size (OpMatMul1, OpMatMul or OpMatMulTiled).
func matmulKernel(t loader.DType, l Layout, size Op) Kernel {
	info := weightInfos[t]
	b := []vk.Access{vk.Read, vk.Read, vk.ReadWrite} // W, x, y
	if info.body[1] != 0 {
		b = []vk.Access{vk.Read, vk.Read, vk.Read, vk.ReadWrite} // W bodies, W sides, x, y
	}
	k := Kernel{Name: "matmul_" + typeName(t), Bindings: b, Params: reflect.TypeFor[MatMulParams]()}
	tokens, rows := uint32(MatMulTokens), uint32(matmulRows)
	switch {
	case size == OpMatMul1:
		tokens, rows = 1, 1
	case size == OpMatMulTiled && l == GPULayout:
		rows = matmulTileRows
	}
	if l == CPULayout {
		k.Name, rows, k.Subgroup = "matmul_blocks_"+typeName(t), matmulBlockRows, true
	}
	k.File = k.Name
	k.Spec = []vk.SpecConstant{{ID: 1, Value: tokens}, {ID: 2, Value: rows}}
	switch {
	case l == GPULayout:
		k.Spec = append(k.Spec, vk.SpecConstant{ID: 6, Value: matmulLanes(t)})
	case info.tiled:
		k.Spec = append(k.Spec, vk.SpecConstant{ID: 4, Value: 1})
	default:
		k.Spec = append(k.Spec, vk.SpecConstant{ID: 3, Value: matmulBlockPair})
	}
	switch {
	case tokens == 1:
		k.Name += "_1tok"
	case size == OpMatMulTiled && l == GPULayout:
		k.Name += "_tiled"
	}
	return k
}

// gluKernel is the GPU layout's matmul kernel of type t in the size of op
// size with the GLU epilogue glu (constant 5: 1 SiLU, 2 GELU-tanh), named
// matmul_<name>_<type>. Its rows per slot are even, whole (gate, up) pairs.
func gluKernel(t loader.DType, name string, glu uint32, size Op) Kernel {
	k := matmulKernel(t, GPULayout, size)
	k.Name = strings.Replace(k.Name, "matmul_", "matmul_"+name+"_", 1)
	for i, c := range k.Spec {
		if c.ID == 2 && c.Value%2 != 0 {
			k.Spec[i].Value++
		}
	}
	k.Spec = append(k.Spec, vk.SpecConstant{ID: 5, Value: glu})
	return k
}

// ropeKernel is the GPU layout's matmul kernel of type t in the size of op
// size with the RoPE epilogue (matmul_rope_<type>, which adds the lanes'
// sums by shuffles): even rows per slot, whole (2i, 2i+1) pairs, and the
// RoPE table bound after y.
func ropeKernel(t loader.DType, size Op) Kernel {
	k := gluKernel(t, "rope", 0, size)
	k.Spec = k.Spec[:len(k.Spec)-1] // no GLU constant
	k.File = "matmul_rope_" + typeName(t)
	k.Shuffles = true
	k.Bindings = append(slices.Clone(k.Bindings), vk.Read)
	return k
}

func embedKernel(t loader.DType) Kernel {
	b := []vk.Access{vk.Read, vk.Read, vk.Write} // table, tokens, x
	if weightInfos[t].body[1] != 0 {
		b = []vk.Access{vk.Read, vk.Read, vk.Read, vk.Write} // table bodies, table sides, tokens, x
	}
	return Kernel{Name: "embed_" + typeName(t), Bindings: b, Params: reflect.TypeFor[EmbedParams]()}
}

type tableKey struct {
	op     Op
	t      loader.DType
	layout Layout
}

// table is the kernel table: which kernel serves an op for a weight type in
// a layout. Embed has one kernel for both layouts. The GLU ops have kernels
// in the GPU layout alone: the CPU layout keeps the plain product and
// ActMulRows (its workgroups' 16 rows are tuned for a CPU's lanes, and the
// step there is bound by arithmetic, not by dispatches).
var table = func() map[tableKey]Kernel {
	m := map[tableKey]Kernel{}
	for _, t := range WeightTypes {
		for _, l := range []Layout{GPULayout, CPULayout} {
			for _, op := range []Op{OpMatMul, OpMatMul1, OpMatMulTiled} {
				m[tableKey{op, t, l}] = matmulKernel(t, l, op)
			}
			m[tableKey{OpEmbed, t, l}] = embedKernel(t)
		}
		for _, op := range []Op{OpMatMul, OpMatMul1, OpMatMulTiled} {
			swiglu, _ := GLUOp(loader.ActSiLU, op)
			geglu, _ := GLUOp(loader.ActGELUTanh, op)
			m[tableKey{swiglu, t, GPULayout}] = gluKernel(t, "swiglu", 1, op)
			m[tableKey{geglu, t, GPULayout}] = gluKernel(t, "geglu", 2, op)
			m[tableKey{RoPEOp(op), t, GPULayout}] = ropeKernel(t, op)
		}
	}
	return m
}()

// WeightKernel is the kernel the table names for op on weight type t in
// layout l; ok is false when t has no kernels.
func WeightKernel(op Op, t loader.DType, l Layout) (k Kernel, ok bool) {
	k, ok = table[tableKey{op, t, l}]
	return k, ok
}

// NormKernel is the kernel of a row norm of kind n (RMSNorm, or LayerNorm
// without bias: the same module with specialization constant 1); ok is
// false for a kind without one.
func NormKernel(n loader.NormKind) (k Kernel, ok bool) {
	switch n {
	case loader.NormRMS:
		return RMSNorm, true
	case loader.NormLayer:
		return LayerNorm, true
	}
	return Kernel{}, false
}

// NormQ8Kernel is NormKernel's kernel that also writes its rows as q8
// rows (RMSNormQ8, LayerNormQ8).
func NormQ8Kernel(n loader.NormKind) (k Kernel, ok bool) {
	switch n {
	case loader.NormRMS:
		return RMSNormQ8, true
	case loader.NormLayer:
		return LayerNormQ8, true
	}
	return Kernel{}, false
}

// ActMulKernel is the kernel of the gated activation h = act(g)·u with
// activation a (silu_mul.comp, specialization constant 1 = a); ok is false
// for an activation without one.
func ActMulKernel(a loader.Activation) (k Kernel, ok bool) {
	switch a {
	case loader.ActSiLU:
		return SiluMul, true
	case loader.ActGELUTanh:
		return GELUTanhMul, true
	}
	return Kernel{}, false
}

func weightKernels() []Kernel {
	var ks []Kernel
	for _, t := range WeightTypes {
		for _, l := range []Layout{GPULayout, CPULayout} {
			for _, op := range []Op{OpMatMul, OpMatMul1} {
				k, _ := WeightKernel(op, t, l)
				ks = append(ks, k)
			}
		}
		k, _ := WeightKernel(OpMatMulTiled, t, GPULayout) // the CPU layout's is its OpMatMul kernel
		ks = append(ks, k)
		k, _ = WeightKernel(OpEmbed, t, GPULayout)
		ks = append(ks, k)
		for _, op := range []Op{OpMatMulSwiGLU, OpMatMulSwiGLU1, OpMatMulGeGLU, OpMatMulGeGLU1, OpMatMulSwiGLUTiled, OpMatMulGeGLUTiled} {
			k, _ := WeightKernel(op, t, GPULayout)
			ks = append(ks, k)
		}
		// One kernel of the RoPE module and of its integer-dot module stands
		// for their variants.
		k, _ = WeightKernel(OpMatMulRoPE, t, GPULayout)
		ks = append(ks, k)
		if k, ok := MatMulDot(k); ok {
			ks = append(ks, k)
		}
		// One kernel of the shuffle module stands for its variants.
		k, _ = WeightKernel(OpMatMul, t, GPULayout)
		k, _ = MatMulShuffled(k)
		ks = append(ks, k)
		k, _ = WeightKernel(OpMatMul, t, GPULayout)
		if k, ok := MatMulDot(k); ok {
			ks = append(ks, k)
		}
		// One kernel of each cooperative-matrix module stands for its variants.
		k, _ = WeightKernel(OpMatMulTiled, t, GPULayout)
		for _, c := range coopMatModules {
			c, _ := MatMulCoopMat(k, c)
			ks = append(ks, c)
		}
	}
	return ks
}

// Source is one SPIR-V module: shaders/<Comp>.comp compiled by glslc with
// Defines to spv/<Name>.spv (`make shaders`), and, with KHR, rewritten
// from VK_NV_cooperative_matrix onto VK_KHR_cooperative_matrix
// (internal/spirv.CoopMatKHR).
type Source struct {
	Name    string
	Comp    string
	Defines []string
	KHR     bool
}

// Sources lists every SPIR-V module a kernel uses, each once.
func Sources() []Source {
	var out []Source
	seen := map[string]bool{}
	for _, k := range Kernels {
		n := k.Source()
		if seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, sourceOf(n))
	}
	return out
}

// sourceOf derives a module's source from its name: matmul_<type>,
// matmul_blocks_<type>, matmul_shuffle_<type> and matmul_dot_<type> are
// matmul.comp with WEIGHT_<TYPE> (and MATMUL_BLOCKS, MATMUL_SHUFFLE, or
// both MATMUL_SHUFFLE and MATMUL_DOT), matmul_coopmat[_emu]_<type> is
// matmul_coopmat.comp with WEIGHT_<TYPE> (and COOPMAT_EMULATE),
// matmul_coopmat_khr_<type> is matmul_coopmat_<type> rewritten on
// VK_KHR_cooperative_matrix, as swa_coopmat_khr[_f16] is swa_coopmat[_f16],
// embed_<type>
// is embed.comp with WEIGHT_<TYPE>, rmsnorm_q8 is rmsnorm.comp with NORM_Q8,
// swa_coopmat_emu[_f16] is swa_coopmat[_f16].comp with COOPMAT_EMULATE, and
// every other module is the .comp of its own name.
func sourceOf(name string) Source {
	switch name {
	case "rmsnorm_q8":
		return Source{Name: name, Comp: "rmsnorm", Defines: []string{"NORM_Q8"}}
	case "swa_coopmat_emu", "swa_coopmat_emu_f16":
		return Source{Name: name, Comp: strings.Replace(name, "_emu", "", 1), Defines: []string{"COOPMAT_EMULATE"}}
	case "swa_coopmat_khr", "swa_coopmat_khr_f16":
		return Source{Name: name, Comp: strings.Replace(name, "_khr", "", 1), KHR: true}
	}
	for _, t := range WeightTypes {
		def := "WEIGHT_" + strings.ToUpper(typeName(t))
		switch name {
		case "matmul_" + typeName(t):
			return Source{Name: name, Comp: "matmul", Defines: []string{def}}
		case "matmul_blocks_" + typeName(t):
			return Source{Name: name, Comp: "matmul", Defines: []string{def, "MATMUL_BLOCKS"}}
		case "matmul_shuffle_" + typeName(t):
			return Source{Name: name, Comp: "matmul", Defines: []string{def, "MATMUL_SHUFFLE"}}
		case "matmul_dot_" + typeName(t):
			return Source{Name: name, Comp: "matmul", Defines: []string{def, "MATMUL_SHUFFLE", "MATMUL_DOT"}}
		case "matmul_rope_" + typeName(t):
			return Source{Name: name, Comp: "matmul", Defines: []string{def, "MATMUL_SHUFFLE", "MATMUL_ROPE"}}
		case "matmul_rope_dot_" + typeName(t):
			return Source{Name: name, Comp: "matmul", Defines: []string{def, "MATMUL_SHUFFLE", "MATMUL_DOT", "MATMUL_ROPE"}}
		case "matmul_coopmat_" + typeName(t):
			return Source{Name: name, Comp: "matmul_coopmat", Defines: []string{def}}
		case "matmul_coopmat_emu_" + typeName(t):
			return Source{Name: name, Comp: "matmul_coopmat", Defines: []string{def, "COOPMAT_EMULATE"}}
		case "matmul_coopmat_khr_" + typeName(t):
			return Source{Name: name, Comp: "matmul_coopmat", Defines: []string{def}, KHR: true}
		case "embed_" + typeName(t):
			return Source{Name: name, Comp: "embed", Defines: []string{def}}
		}
	}
	return Source{Name: name, Comp: name}
}

// GlslcArgs are glslc's arguments to compile s, run in the shaders
// directory, with the Makefile's flags, writing out.
func (s Source) GlslcArgs(flags []string, out string) []string {
	args := append([]string(nil), flags...)
	for _, d := range s.Defines {
		args = append(args, "-D"+d)
	}
	return append(args, "-I.", "-o", out, s.Comp+".comp")
}
