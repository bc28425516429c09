package shaders

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/vkrun/vkrun/vk"
)

// MatMul tile sizes, the kernels' specialization constants 1 and 2: a
// workgroup computes matmulRows rows of W (matmulBlockRows in the block
// layout) for up to matmulTokens tokens. In the block layout an invocation
// takes matmulBlockPair adjacent 32-column blocks per step (constant 3),
// or one where a row's blocks are odd in number or its scales start at an
// odd index.
const (
	matmulTokens    = 8
	matmulRows      = 2
	matmulBlockRows = 16
	matmulBlockPair = 2
)

func matmulKernel(t WeightType, tokens uint32) Kernel {
	b := []vk.Access{vk.Read, vk.Read, vk.ReadWrite} // W, x, y
	if t == WeightQ8_0 || t == WeightQ4_0 {
		b = []vk.Access{vk.Read, vk.Read, vk.Read, vk.ReadWrite} // W quants, W scales, x, y
	}
	k := Kernel{
		Name:     "matmul_" + t.String(),
		Bindings: b,
		Params:   reflect.TypeFor[MatMulParams](),
		Spec:     []vk.SpecConstant{{ID: 1, Value: tokens}, {ID: 2, Value: matmulRows}},
		OnCPU:    CPUNarrow, // the grid is rows × token groups, whatever the width
	}
	if tokens == 1 {
		k.File, k.Name = k.Name, k.Name+"_1tok"
	}
	return k
}

// blockKernel is k (a matmulKernel) in the block layout: one subgroup per
// workgroup, taking pairs of blocks.
func blockKernel(k Kernel) Kernel {
	k.File = strings.Replace(k.Source(), "matmul_", "matmul_blocks_", 1)
	k.Name = strings.Replace(k.Name, "matmul_", "matmul_blocks_", 1)
	k.Spec = []vk.SpecConstant{k.Spec[0], {ID: 2, Value: matmulBlockRows}, {ID: 3, Value: matmulBlockPair}}
	k.OnCPU, k.Subgroup = CPUDefault, true
	return k
}

// The MatMul kernels, one per weight type: y (ntok, rows) f32 = x (ntok,
// cols) f32 @ Wᵀ for W (rows, cols) in its device layout (see Pack), or
// y += x @ Wᵀ.
var (
	MatMulF32  = matmulKernel(WeightF32, matmulTokens)
	MatMulF16  = matmulKernel(WeightF16, matmulTokens)
	MatMulQ8_0 = matmulKernel(WeightQ8_0, matmulTokens)
	MatMulQ4_0 = matmulKernel(WeightQ4_0, matmulTokens)
)

// The one-token variants, for decode: the same shaders specialised to one
// token per workgroup. Drivers that run both sides of a uniform branch
// (lavapipe) would otherwise pay for all matmulTokens slots; every (row,
// token) sum is still the same code in the same order with precise
// accumulators, so results stay bit-identical to the batched pipelines
// (TestMatMulBitExactAcrossBatches, and the engine's chunked-prefill test).
var (
	MatMul1F32  = matmulKernel(WeightF32, 1)
	MatMul1F16  = matmulKernel(WeightF16, 1)
	MatMul1Q8_0 = matmulKernel(WeightQ8_0, 1)
	MatMul1Q4_0 = matmulKernel(WeightQ4_0, 1)
)

// The same in the block layout.
var (
	MatMulBlocksF32   = blockKernel(MatMulF32)
	MatMulBlocksF16   = blockKernel(MatMulF16)
	MatMulBlocksQ8_0  = blockKernel(MatMulQ8_0)
	MatMulBlocksQ4_0  = blockKernel(MatMulQ4_0)
	MatMul1BlocksF32  = blockKernel(MatMul1F32)
	MatMul1BlocksF16  = blockKernel(MatMul1F16)
	MatMul1BlocksQ8_0 = blockKernel(MatMul1Q8_0)
	MatMul1BlocksQ4_0 = blockKernel(MatMul1Q4_0)
)

func init() {
	register(MatMulF32, MatMulF16, MatMulQ8_0, MatMulQ4_0, MatMul1F32, MatMul1F16, MatMul1Q8_0, MatMul1Q4_0,
		MatMulBlocksF32, MatMulBlocksF16, MatMulBlocksQ8_0, MatMulBlocksQ4_0,
		MatMul1BlocksF32, MatMul1BlocksF16, MatMul1BlocksQ8_0, MatMul1BlocksQ4_0)
}

// matmulPick returns the kernel for t in layout l (the block kernels for
// CPULayout), one-token or batched, and how many tokens and rows of W one of
// its workgroups covers.
func matmulPick(t WeightType, l Layout, oneToken bool) (k Kernel, tokens, rows uint64, err error) {
	ks, tokens, rows := [4]Kernel{MatMulF32, MatMulF16, MatMulQ8_0, MatMulQ4_0}, matmulTokens, matmulRows
	switch {
	case l == CPULayout && oneToken:
		ks, tokens, rows = [4]Kernel{MatMul1BlocksF32, MatMul1BlocksF16, MatMul1BlocksQ8_0, MatMul1BlocksQ4_0}, 1, matmulBlockRows
	case l == CPULayout:
		ks, rows = [4]Kernel{MatMulBlocksF32, MatMulBlocksF16, MatMulBlocksQ8_0, MatMulBlocksQ4_0}, matmulBlockRows
	case oneToken:
		ks, tokens = [4]Kernel{MatMul1F32, MatMul1F16, MatMul1Q8_0, MatMul1Q4_0}, 1
	}
	k, err = weightKernel(ks, t)
	return k, tokens, rows, err
}

// MatMulParams mirrors matmul.glsl's push constants.
type MatMulParams struct {
	Rows, Cols, Ntok uint32
	WOff             uint32 // word offset of the first row in the W binding
	SOff             uint32 // f16 index of the first row's first scale (Q types)
	XOff, YOff       uint32 // element offsets
	YStride          uint32 // elements from one token's y row to the next
	Accumulate       uint32 // 1: y += x·Wᵀ
}

// MatMul records y (ntok, w.Rows) = x (ntok, w.Cols) @ Wᵀ, or y += that
// when accumulate is set (y is then read as well: the residual add fused
// into the projection). y must not overlap x. Accumulation is in f32 and
// the weights are dequantised on the fly.
//
// A token's result is bit-identical whatever ntok and whatever its index in
// the batch, so a chunked prefill equals token-by-token decode bit for bit
// (for a given device and Library workgroup width).
//
// A W larger than one binding is split into row blocks, and x and y into
// token blocks that fit one binding, one dispatch each.
func (p *Plan) MatMul(w Weight, x, y Tensor, ntok int, accumulate bool) error {
	wt, l, err := w.words()
	if err != nil {
		return fmt.Errorf("shaders: MatMul: %w", err)
	}
	if _, _, _, err := matmulPick(w.Type, GPULayout, false); err != nil {
		return err
	}
	rows, cols, nt := uint64(w.Rows), uint64(w.Cols), uint64(ntok)
	if ntok <= 0 || x.Len != nt*cols || y.Len != nt*rows {
		return fmt.Errorf("shaders: MatMul: x %d, y %d elements for %d tokens and a %d×%d W: %w", x.Len, y.Len, ntok, rows, cols, errShape)
	}
	acc := uint32(0)
	if accumulate {
		acc = 1
	}
	rowStep := p.weightRowStep(l)
	for r0 := uint64(0); r0 < rows; r0 += rowStep {
		n := min(rowStep, rows-r0)
		wr, wo, so, err := p.weightRanges(wt, l, r0, n)
		if err != nil {
			return fmt.Errorf("shaders: MatMul W rows [%d, %d): %w", r0, r0+n, err)
		}
		tokStep := tokenStep(p.maxRows(1, 4), rows, cols, n)
		for t0 := uint64(0); t0 < nt; t0 += tokStep {
			m := min(tokStep, nt-t0)
			xr, xo, err := p.binding(x, t0*cols, m*cols, 4)
			if err != nil {
				return fmt.Errorf("shaders: MatMul x: %w", err)
			}
			yr, yo, err := p.binding(y, t0*rows+r0, (m-1)*rows+n, 4)
			if err != nil {
				return fmt.Errorf("shaders: MatMul y: %w", err)
			}
			pc := MatMulParams{Rows: uint32(n), Cols: uint32(cols), Ntok: uint32(m), WOff: wo, SOff: so,
				XOff: xo, YOff: yo, YStride: uint32(rows), Accumulate: acc}
			kern, tokens, wgRows, _ := matmulPick(w.Type, p.lib.Layout, m == 1)
			pipe := p.lib.Pipeline(kern)
			if kern.Subgroup {
				pipe, err = p.blockPipeline(kern, w.Type, cols, wo, so, xo)
				if err != nil {
					return fmt.Errorf("shaders: MatMul: %w", err)
				}
				if pipe == nil { // the block layout does not suit this W or x
					kern, tokens, wgRows, _ = matmulPick(w.Type, GPULayout, m == 1)
					pipe = p.lib.Pipeline(kern)
				}
			}
			groups := (n + wgRows - 1) / wgRows * ((m + tokens - 1) / tokens)
			if err := p.dispatchPipe(pipe, groups, Push(&pc), append(wr, xr, yr)...); err != nil {
				return err
			}
		}
	}
	return nil
}

// blockPipeline is the pipeline of k, a block-layout kernel, for a W of
// type t with cols columns whose rows start at word wo and scale so, and an
// x at element xo: k's own (block pairs), its one-block variant, or nil
// where the block layout does not apply (its 16-byte loads need cols a
// multiple of 32 and wo and xo multiples of 4; the device needs subgroup
// arithmetic). The choice depends on the weight and the binding offsets,
// never on the token count, so every chunking sums in the same order.
func (p *Plan) blockPipeline(k Kernel, t WeightType, cols uint64, wo, so, xo uint32) (*vk.Pipeline, error) {
	if cols%32 != 0 || wo%4 != 0 || xo%4 != 0 || !p.lib.Has(k) {
		return nil, nil
	}
	scaled := t == WeightQ8_0 || t == WeightQ4_0
	if cols/32%matmulBlockPair == 0 && (!scaled || so%matmulBlockPair == 0) {
		return p.lib.Pipeline(k), nil
	}
	spec := slices.Clone(k.Spec)
	spec[2].Value = 1
	return p.lib.variant(k, spec)
}

// tokenStep is how many tokens one MatMul dispatch takes when a binding
// holds budget elements: x's rows (m·cols elements) and y's strided span
// ((m−1)·rows+n elements, for n of W's rows) must each fit. It is a
// multiple of matmulTokens when it can be, and at least 1.
func tokenStep(budget, rows, cols, n uint64) uint64 {
	m := budget / cols
	if n <= budget {
		m = min(m, (budget-n)/rows+1)
	}
	if m >= matmulTokens {
		m -= m % matmulTokens
	}
	return max(m, 1)
}
