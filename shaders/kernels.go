package shaders

import (
	"embed"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/vkrun/vkrun/vk"
)

//go:embed spv/*.spv
var spvFS embed.FS

// Kernel is one compute pipeline: the SPIR-V module spv/<File>.spv (a
// Source), its storage-buffer bindings in order, the Go struct that mirrors
// its push-constant block (checked against the SPIR-V by a test), and its
// specialization constants. Variants of one entry point share a File and
// differ in Spec.
type Kernel struct {
	Name     string // the pipeline's name, unique
	File     string // the SPIR-V module's stem (a Source's Name); "" means Name
	Bindings []vk.Access
	Params   reflect.Type
	// Spec are the specialization constants (IDs ≥ 1) with the fixed
	// values this kernel's pipeline is built with, e.g. tile sizes.
	// Constant 0 is the workgroup width, which the op layer sets per device.
	Spec []vk.SpecConstant
	// Subgroup makes a workgroup exactly one subgroup: its width is the
	// device's subgroup size, and the kernel uses subgroup arithmetic. A
	// device without subgroup arithmetic in compute shaders cannot run it.
	Subgroup bool
	// Shuffles are subgroup shuffles: a device needs them in compute
	// shaders, and the pipeline full subgroups of at least 8 invocations
	// (Library picks such a variant only where the device gives both).
	Shuffles bool
	// Dot is the integer dot product (SPV_KHR_integer_dot_product): a
	// device needs shaderIntegerDotProduct. A Dot matmul reads its x as q8
	// rows (QuantizeQ8's output), not f32.
	Dot bool
	// CoopMat is the cooperative-matrix extension the module is written
	// on (vk.Features.CooperativeMatrixNV or CooperativeMatrixKHR, each with
	// shaderFloat16 and vulkanMemoryModel); CoopMatNone for every other
	// kernel, the emulated cooperative-matrix modules included, which need
	// shaderFloat16 alone (Half).
	CoopMat CoopMatExt
	// Half: the module declares f16 values (shaderFloat16).
	Half bool
}

// Source is the kernel's SPIR-V module stem.
func (k Kernel) Source() string {
	if k.File != "" {
		return k.File
	}
	return k.Name
}

// SPIRV returns the kernel's embedded SPIR-V.
func (k Kernel) SPIRV() ([]byte, error) {
	b, err := spvFS.ReadFile("spv/" + k.Source() + ".spv")
	if err != nil {
		return nil, fmt.Errorf("shaders: %s: %w", k.Name, err)
	}
	return b, nil
}

// SpecValue is the value of k's specialization constant id, and whether k
// sets it.
func (k Kernel) SpecValue(id uint32) (uint32, bool) {
	for _, c := range k.Spec {
		if c.ID == id {
			return c.Value, true
		}
	}
	return 0, false
}

// WithSpec is k with constant id set to v (added if k lacks it), named
// after it: k's variant.
func (k Kernel) WithSpec(id, v uint32) Kernel {
	if old, ok := k.SpecValue(id); ok && old == v {
		return k
	}
	spec := make([]vk.SpecConstant, 0, len(k.Spec)+1)
	set := false
	for _, c := range k.Spec {
		if c.ID == id {
			c.Value, set = v, true
		}
		spec = append(spec, c)
	}
	if !set {
		spec = append(spec, vk.SpecConstant{ID: id, Value: v})
	}
	k.File, k.Spec = k.Source(), spec
	k.Name += fmt.Sprintf("/%d=%d", id, v)
	return k
}

// Desc is the pipeline description for a workgroup width of wg invocations
// (specialization constant 0, a power of two), followed by k.Spec.
func (k Kernel) Desc(wg uint32) (vk.PipelineDesc, error) {
	code, err := k.SPIRV()
	if err != nil {
		return vk.PipelineDesc{}, err
	}
	return vk.PipelineDesc{
		Name:             k.Name,
		SPIRV:            code,
		Bindings:         k.Bindings,
		PushConstantSize: uint32(k.Params.Size()),
		Spec:             append([]vk.SpecConstant{{ID: 0, Value: wg}}, k.Spec...),
	}, nil
}

// Push returns p's bytes as push-constant data. T must be a struct of
// 4-byte fields, as every Params type here is.
func Push[T any](p *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), unsafe.Sizeof(*p))
}

var (
	rrw         = []vk.Access{vk.Read, vk.Read, vk.Write}
	attnAccess  = []vk.Access{vk.Read, vk.Read, vk.Read, vk.Read, vk.Read, vk.Read, vk.Write, vk.Read} // …, out, sink queries
	splitAccess = append(attnAccess[:len(attnAccess):len(attnAccess)], vk.Write)                       // and the partials
	storeAccess = []vk.Access{vk.Read, vk.Read, vk.Read, vk.Write, vk.Write}
	normAccess  = []vk.Access{vk.Read, vk.Read, vk.Read, vk.ReadWrite}               // x, w, w2, y (y += with Accumulate)
	normQ8      = []vk.Access{vk.Read, vk.Read, vk.Read, vk.ReadWrite, vk.Write}     // and q, y's q8 rows
	probsAccess = append(attnAccess[:len(attnAccess):len(attnAccess)], vk.ReadWrite) // and the probabilities (written, read back, rewritten)
)

// storeAttnAccess and storeKeysAccess are splitAccess and attnAccess with
// the ring (bindings 3 and 4) written too: swa_store* and swa_keys_store*.
var (
	storeAttnAccess = []vk.Access{vk.Read, vk.Read, vk.Read, vk.ReadWrite, vk.ReadWrite, vk.Read, vk.Write, vk.Read, vk.Write}
	storeKeysAccess = storeAttnAccess[:8]
)

// The kernels with one variant for all weight types. Each comment gives
// the contract; shapes are row-major.
var (
	// MatVecF32: y (rows,) = W (rows, cols) @ x (cols,), all f32.
	MatVecF32 = Kernel{Name: "matvec_f32", Bindings: rrw, Params: reflect.TypeFor[MatVecParams]()}
	// Add: z (n,) = x (n,) + y (n,), f32; or y one row of YPeriod added to
	// every row of x (a bias).
	Add = Kernel{Name: "add", Bindings: rrw, Params: reflect.TypeFor[AddParams]()}
	// RMSNorm: y (rows, n) = x / sqrt(mean(x²) + eps) * w (n,), or y += that,
	// per row, f32; rows grouped by token with a second weight for the
	// later heads of each (the q and k heads of q|k|v rows, in place).
	// Bindings: x, w, w2, y.
	RMSNorm = Kernel{Name: "rmsnorm", Bindings: normAccess, Params: reflect.TypeFor[RMSNormParams]()}
	// LayerNorm is RMSNorm of x − mean(x) (LayerNorm without bias):
	// rmsnorm.comp with specialization constant 1 set.
	LayerNorm = Kernel{Name: "layernorm", File: "rmsnorm", Bindings: normAccess, Params: reflect.TypeFor[RMSNormParams](),
		Spec: []vk.SpecConstant{{ID: 1, Value: 1}}}
	// RMSNormQ8 and LayerNormQ8 are RMSNorm and LayerNorm of plain rows
	// (one head, no accumulation, n a multiple of 32) that also write y as
	// q8 rows (binding 4, at word QOff), the bits QuantizeQ8 makes of y:
	// rmsnorm.comp with NORM_Q8, for the integer-dot matmul that follows.
	RMSNormQ8   = Kernel{Name: "rmsnorm_q8", Bindings: normQ8, Params: reflect.TypeFor[RMSNormParams]()}
	LayerNormQ8 = Kernel{Name: "layernorm_q8", File: "rmsnorm_q8", Bindings: normQ8, Params: reflect.TypeFor[RMSNormParams](),
		Spec: []vk.SpecConstant{{ID: 1, Value: 1}}}
	// RoPE rotates pairs of x (ntok, nHeads·headDim) f32 by the angles of
	// a (ntok, ropeDim/2, 2) f32 cos/sin table into y: x's own range (in
	// place), or a copy.
	RoPE = Kernel{Name: "rope", Bindings: []vk.Access{vk.Read, vk.Read, vk.Write}, Params: reflect.TypeFor[RoPEParams]()}
	// SiluMul: h (n,) = g·sigmoid(g)·u elementwise, f32.
	SiluMul = Kernel{Name: "silu_mul", Bindings: rrw, Params: reflect.TypeFor[SiluMulParams]()}
	// GELUTanhMul: h (n,) = gelu_tanh(g)·u elementwise, f32 (GeGLU):
	// silu_mul.comp with specialization constant 1, the activation, set to
	// loader.ActGELUTanh.
	GELUTanhMul = Kernel{Name: "gelu_tanh_mul", File: "silu_mul", Bindings: rrw, Params: reflect.TypeFor[SiluMulParams](),
		Spec: []vk.SpecConstant{{ID: 1, Value: 1}}}
	// ScaleCap: x (n,) f32 in place ← cap·tanh(x·scale/cap), or x·scale
	// when cap ≤ 0 (logit scale and soft-cap).
	ScaleCap = Kernel{Name: "scale_cap", Bindings: []vk.Access{vk.ReadWrite}, Params: reflect.TypeFor[ScaleCapParams]()}
	// Argmax: out[r] (u32) = the first index of the maximum of row r of x
	// (rows, n) f32, a workgroup per row.
	Argmax = Kernel{Name: "argmax", Bindings: []vk.Access{vk.Read, vk.Write}, Params: reflect.TypeFor[ArgmaxParams]()}
	// QuantizeQ8: q8 rows (Q8RowWords words a row) = x (rows, cols) f32,
	// cols a multiple of 32: per 32 columns, 32 int8 values, the f32 scale
	// and the values' int32 sum (quantize_q8.comp), the x of the Dot matmul
	// kernels (MatMulDot).
	QuantizeQ8 = Kernel{Name: "quantize_q8", Bindings: []vk.Access{vk.Read, vk.Write}, Params: reflect.TypeFor[QuantizeParams]()}

	// SWAF32: out (rows, heads*headDim) f32 = sliding-window attention of q
	// (rows, heads*headDim) f32 over an f32 ring (sinks + slots, kvDim),
	// its sinks beside each band, and the chunk's k, v (rows, kvDim) f32,
	// split-K: with Splits > 1 it writes each split's
	// partial result (binding 8) for SWAMerge. Specialization constant 1 is
	// the query heads per workgroup, 2 (SQ) set when the sinks are scored
	// with the sink queries of binding 7. The entry point is shaders/swa.comp.
	SWAF32 = Kernel{Name: "swa", Bindings: splitAccess, Params: reflect.TypeFor[AttentionParams](),
		Spec: []vk.SpecConstant{{ID: 1, Value: 1}}}
	// SWAF16: as SWAF32 over an f16 ring; chunk k, v are rounded to f16.
	SWAF16 = Kernel{Name: "swa_f16", Bindings: splitAccess, Params: reflect.TypeFor[AttentionParams](),
		Spec: []vk.SpecConstant{{ID: 1, Value: 1}}}
	// SWAStoreF32 is SWAF32 that also writes the chunk's k, v into the ring
	// rows KVStoreF32 would: StoreKV fused into attention, for chunks whose
	// rows no query of theirs reads (a decode step). shaders/swa_store.comp.
	SWAStoreF32 = Kernel{Name: "swa_store", Bindings: storeAttnAccess, Params: reflect.TypeFor[AttentionParams](),
		Spec: []vk.SpecConstant{{ID: 1, Value: 1}}}
	// SWAStoreF16 is SWAStoreF32 over an f16 ring (KVStoreF16's rounding).
	SWAStoreF16 = Kernel{Name: "swa_f16_store", Bindings: storeAttnAccess, Params: reflect.TypeFor[AttentionParams](),
		Spec: []vk.SpecConstant{{ID: 1, Value: 1}}}
	// SWAMerge: out (rows, heads*headDim) f32 = the splits' partial results
	// (rows, heads, splits, headDim+2) f32 combined (shaders/swa_merge.comp);
	// the splits cut each query's sinks and band as one sequence.
	SWAMerge = Kernel{Name: "swa_merge", Bindings: []vk.Access{vk.Read, vk.Read, vk.Write}, Params: reflect.TypeFor[MergeParams]()}
	// KVStoreF32: the ring row of position pos0+i (sink row pos0+i below
	// Sinks, else row Sinks + (pos0+i) mod Slots) ← k, v row i, f32.
	KVStoreF32 = Kernel{Name: "kv_store_f32", Bindings: storeAccess, Params: reflect.TypeFor[KVStoreParams]()}
	// KVStoreF16: as KVStoreF32, k, v row i rounded to f16.
	KVStoreF16 = Kernel{Name: "kv_store_f16", Bindings: storeAccess, Params: reflect.TypeFor[KVStoreParams]()}

	// The CPULayout attention kernels (attention_keys.glsl), one subgroup
	// per (query, KV head). Specialization constants 1, 2 and 3 are the
	// head dim, the group and whether rows suit 16-byte loads; the values
	// here are the (64, 4, aligned) variant, and the op layer builds others.

	// SWAKeysF32 is SWAF32 in the CPU layout.
	SWAKeysF32 = Kernel{Name: "swa_keys", Bindings: attnAccess, Params: reflect.TypeFor[AttentionParams](),
		Subgroup: true, Spec: []vk.SpecConstant{{ID: 1, Value: 64}, {ID: 2, Value: 4}, {ID: 3, Value: 1}}}
	// SWAKeysF16 is SWAF16 in the CPU layout.
	SWAKeysF16 = Kernel{Name: "swa_keys_f16", Bindings: attnAccess, Params: reflect.TypeFor[AttentionParams](),
		Subgroup: true, Spec: []vk.SpecConstant{{ID: 1, Value: 64}, {ID: 2, Value: 4}, {ID: 3, Value: 1}}}

	// SWAKeysStoreF32 is SWAKeysF32 that also writes the chunk into the
	// ring, as SWAStoreF32 (shaders/swa_keys_store.comp).
	SWAKeysStoreF32 = Kernel{Name: "swa_keys_store", Bindings: storeKeysAccess, Params: reflect.TypeFor[AttentionParams](),
		Subgroup: true, Spec: []vk.SpecConstant{{ID: 1, Value: 64}, {ID: 2, Value: 4}, {ID: 3, Value: 1}}}
	// SWAKeysStoreF16 is SWAKeysStoreF32 over an f16 ring.
	SWAKeysStoreF16 = Kernel{Name: "swa_keys_f16_store", Bindings: storeKeysAccess, Params: reflect.TypeFor[AttentionParams](),
		Subgroup: true, Spec: []vk.SpecConstant{{ID: 1, Value: 64}, {ID: 2, Value: 4}, {ID: 3, Value: 1}}}

	// SWAKeysProbsF32 is SWAKeysF32's debug variant (vkrun attention): the
	// same attention, bit for bit, that also writes each query's softmax
	// probabilities, (rows, heads, sinks + band) f32 from element PartOff,
	// to binding 8 (attention_keys.glsl with PROBS). No normal path runs it.
	SWAKeysProbsF32 = Kernel{Name: "swa_keys_probs", Bindings: probsAccess, Params: reflect.TypeFor[AttentionParams](),
		Subgroup: true, Spec: []vk.SpecConstant{{ID: 1, Value: 64}, {ID: 2, Value: 4}, {ID: 3, Value: 1}}}
	// SWAKeysProbsF16 is SWAKeysF16's debug variant, as SWAKeysProbsF32.
	SWAKeysProbsF16 = Kernel{Name: "swa_keys_f16_probs", Bindings: probsAccess, Params: reflect.TypeFor[AttentionParams](),
		Subgroup: true, Spec: []vk.SpecConstant{{ID: 1, Value: 64}, {ID: 2, Value: 4}, {ID: 3, Value: 1}}}
)

// Kernels lists every kernel: those above, then the weight kernels of the
// table (WeightKernel) in WeightTypes order.
var Kernels = append(append([]Kernel{MatVecF32, Add, RMSNorm, LayerNorm, RMSNormQ8, LayerNormQ8, RoPE, SiluMul, GELUTanhMul, ScaleCap, Argmax, QuantizeQ8,
	SWAF32, SWAF16, SWAStoreF32, SWAStoreF16, SWAMerge, KVStoreF32, KVStoreF16, SWAKeysF32, SWAKeysF16, SWAKeysStoreF32, SWAKeysStoreF16, SWAKeysProbsF32, SWAKeysProbsF16},
	attentionCoopMatKernels()...), weightKernels()...)

// MatVecParams mirrors matvec.glsl's push constants.
type MatVecParams struct {
	Rows, Cols       uint32
	WOff, XOff, YOff uint32 // element offsets within each binding
}

// AddParams mirrors add.comp's push constants.
type AddParams struct {
	N                uint32
	XOff, YOff, ZOff uint32
	YPeriod          uint32 // 0: y is (n,); else one row of YPeriod added to every row
}

// RMSNormParams mirrors rmsnorm.comp's push constants.
type RMSNormParams struct {
	N, Rows          uint32
	Eps              float32
	XOff, WOff, YOff uint32 // element offsets within each binding
	Heads            uint32 // rows per token (1: plain rows)
	XStride, YStride uint32 // elements from one token's rows to the next
	W2From, W2Off    uint32 // the first head of a token that takes w2, and w2's offset
	Accumulate       uint32 // 1: y += the norm
	QOff             uint32 // RMSNormQ8, LayerNormQ8: word offset of the first row's q8 blocks
}

// RoPEParams mirrors rope.comp's push constants.
type RoPEParams struct {
	Ntok, NHeads, HeadDim, RopeDim uint32
	XOff, ROff                     uint32
	XStride                        uint32 // elements from one token's row to the next
	RotateHalf                     uint32 // 1: pairs (x[i], x[i+RopeDim/2]) (NEOX); 0: (x[2i], x[2i+1])
	YOff, YStride                  uint32 // the output's offset and row stride (x's when in place)
	Tail                           uint32 // dims ≥ RopeDim copied to y per head: 0 in place, else HeadDim − RopeDim
}

// SiluMulParams mirrors silu_mul.comp's push constants.
type SiluMulParams struct {
	N                uint32
	Cols, Stride     uint32 // h's row length; g's (and u's) row stride
	GOff, UOff, HOff uint32
}

// ScaleCapParams mirrors scale_cap.comp's push constants.
type ScaleCapParams struct {
	N, XOff    uint32
	Scale, Cap float32 // Cap ≤ 0: no cap
}

// ArgmaxParams mirrors argmax.comp's push constants.
type ArgmaxParams struct {
	N, XOff, OutOff uint32
}

// AttentionParams mirrors attention_common.glsl's push constants.
type AttentionParams struct {
	NHeads   uint32  // query heads
	Group    uint32  // query heads per KV head
	HeadDim  uint32  // even, ≤ 256
	KVDim    uint32  // KV heads × head dim
	Window   uint32  // W; 0: a global ring (every key from 0)
	Slots    uint32  // the ring's slots: position p ≥ Sinks lives in row Sinks + p mod Slots
	Q0       uint32  // chunk row of the dispatch's first query
	Rows     uint32  // queries in the dispatch
	Scale    float32 // multiplies q·k: log2(e)·scale, or scale/c when soft-capped
	Softcap  float32 // 0: none; else log2(e)·c (scores c·tanh(s/c))
	QOff     uint32  // element offsets within each binding
	KOff     uint32
	VOff     uint32
	RKOff    uint32
	RVOff    uint32
	StepOff  uint32
	OutOff   uint32
	QStride  uint32 // elements from one query row to the next
	KVStride uint32 // elements from one chunk k or v row to the next
	Splits   uint32 // S, the band's splits (1 in the CPU layout)
	PartOff  uint32 // element offset of the partial results (Splits > 1), or of the probabilities (SWAKeysProbs*)
	Sinks    uint32 // N: keys 0 … N−1, in rows 0 … N−1, are attended beside every band
	SQOff    uint32 // element offset of the sink queries (binding 7)
	SQStride uint32 // elements from one sink query row to the next
}

// MergeParams mirrors swa_merge.comp's push constants.
type MergeParams struct {
	NHeads, HeadDim          uint32
	Window, Slots            uint32 // as AttentionParams: they give the band
	Q0, Rows                 uint32
	Splits, Tile             uint32 // S and the first pass's keys per tile
	PartOff, StepOff, OutOff uint32
	Sinks                    uint32 // as AttentionParams: the sinks before the band
}

// KVStoreParams mirrors attention_store.glsl's push constants.
type KVStoreParams struct {
	Rows     uint32 // chunk rows
	KVDim    uint32
	Slots    uint32 // the ring's slots: row i, position p = pos0+i, goes to row p < Sinks ? p : Sinks + p mod Slots
	KOff     uint32 // element offsets within each binding
	VOff     uint32
	StepOff  uint32
	RKOff    uint32
	RVOff    uint32
	KVStride uint32 // elements from one chunk k or v row to the next
	Sinks    uint32 // rows 0 … Sinks−1 hold positions 0 … Sinks−1
}

// QuantizeParams mirrors quantize_q8.comp's push constants.
type QuantizeParams struct {
	Blocks uint32 // 32-column blocks in the dispatch: rows · cols/32
	Cols   uint32
	XOff   uint32 // element offset of x's first row
	QOff   uint32 // word offset of the first q8 row
}

// Q8BlockWords is the words of one q8 block (QuantizeQ8): 32 int8 values,
// the scale, the sum and two words of padding, three 16-byte loads.
const Q8BlockWords = 12

// Q8RowWords is the words of a q8 row of cols columns (a multiple of 32).
func Q8RowWords(cols uint64) uint64 { return cols / 32 * Q8BlockWords }

// MatMulParams mirrors matmul.comp's push constants.
type MatMulParams struct {
	Rows, Cols, Ntok uint32
	WOff             uint32 // word offset of the first row in the W binding
	SOff             uint32 // half index of the first row's first side half (block types)
	XOff, YOff       uint32 // element offsets
	YStride          uint32 // elements from one token's y row to the next
	Accumulate       uint32 // 1: y += x·Wᵀ
	// The RoPE epilogue (OpMatMulRoPE): the row of q|k|v that the bound
	// block's first row is (even), the rows rotated (the q and k heads),
	// the head size, the leading elements of a head rotated (even), and the
	// element offset of the cos/sin table.
	RopeRow0, RopeRows, HeadDim, RopeDim, ROff uint32
}

// EmbedParams mirrors embed.comp's push constants.
type EmbedParams struct {
	Ntok, Cols, Vocab uint32
	Row0, Nrows       uint32  // the table rows in this dispatch's binding
	WOff, SOff        uint32  // word offset of row Row0; half index of its first side half
	TokOff, XOff      uint32  // element offsets
	Scale             float32 // multiplies every value (1: the rows as they are)
}
