package ops

import (
	"fmt"
	"strings"

	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/vk"
)

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
func (p *Plan) MatMul(w Weight, x, y Tensor, ntok int, accumulate bool) {
	if p.err == nil {
		p.fail(p.matMul(w, x, y, ntok, w.Rows, accumulate, nil))
	}
}

// MatMulInto is MatMul into rows of a wider y: token t's w.Rows outputs
// are y's elements [t·stride, t·stride + w.Rows), so that several
// products fill the column ranges of one activation (q, k and v side by
// side). y.Len must be (ntok−1)·stride + w.Rows.
func (p *Plan) MatMulInto(w Weight, x, y Tensor, ntok, stride int, accumulate bool) {
	if p.err == nil {
		p.fail(p.matMul(w, x, y, ntok, stride, accumulate, nil))
	}
}

// MatMulRoPE records qkv (ntok, w.Rows) = x (ntok, w.Cols) @ Wᵀ for W the
// stacked Q, K and V rows ((nHeads + 2·nKVHeads)·headDim of them), then
// RoPEQK's rotation of qkv's q and k heads by rope (ntok, ropeDim/2, 2):
// in one dispatch where the library can (the GPU layout with subgroup
// shuffles, and pairs (x[2i], x[2i+1]), loader.RopePairwise), the
// rotation in the product's epilogue (shaders.OpMatMulRoPE); as MatMul then
// RoPEQK elsewhere. Both give the same bits, and so chunked prefill equals
// decode as with MatMul.
func (p *Plan) MatMulRoPE(w Weight, x, qkv, rope Tensor, ntok, nHeads, nKVHeads, headDim, ropeDim int, style loader.RopeStyle) {
	if p.err == nil {
		p.fail(p.matMulRoPE(w, x, qkv, rope, ntok, nHeads, nKVHeads, headDim, ropeDim, style))
	}
}

// matMulRoPE is MatMulRoPE, returning its error.
func (p *Plan) matMulRoPE(w Weight, x, qkv, rope Tensor, ntok, nHeads, nKVHeads, headDim, ropeDim int, style loader.RopeStyle) error {
	if nHeads <= 0 || nKVHeads < 0 || headDim <= 0 || w.Rows != (nHeads+2*nKVHeads)*headDim {
		return fmt.Errorf("ops: MatMulRoPE: a W of %d rows for %d query and %d key heads of %d: %w", w.Rows, nHeads, nKVHeads, headDim, errShape)
	}
	heads := nHeads + nKVHeads
	// The cooperative-matrix tiles have no RoPE epilogue: a prefill chunk
	// they serve takes the product, then RoPEQK.
	coopmat := p.lib.coopmat && p.matmulSize(w.Type, uint64(max(ntok, 0))) == shaders.OpMatMulTiled
	fuses := p.lib.layout == shaders.GPULayout && p.lib.Shuffles() && style == loader.RopePairwise && headDim%2 == 0 && ropeDim > 0 && !coopmat
	if fuses {
		if ropeDim%2 != 0 || ropeDim > headDim || ntok <= 0 || rope.Len != uint64(ntok)*uint64(ropeDim) {
			return fmt.Errorf("ops: MatMulRoPE: a RoPE table of %d elements for %d tokens of %d rotated dims (even, ≤ %d): %w", rope.Len, ntok, ropeDim, headDim, errShape)
		}
		return p.matMul(w, x, qkv, ntok, w.Rows, false, &ropeEpilogue{rope: rope, rows: uint64(heads * headDim), headDim: uint64(headDim), ropeDim: uint64(ropeDim)})
	}
	if err := p.matMul(w, x, qkv, ntok, w.Rows, false, nil); err != nil {
		return err
	}
	qk := qkv.Sub(0, uint64(ntok-1)*uint64(w.Rows)+uint64(heads*headDim)) // RoPEQK's range: the last row's v heads unbound
	return p.rope(qk, qk, rope, ntok, heads, headDim, ropeDim, w.Rows, w.Rows, style)
}

// ropeEpilogue is MatMulRoPE's rotation in the product's epilogue: the
// tokens' RoPE table, the rows rotated (the q and k heads), the head size
// and the rotated dims of a head.
type ropeEpilogue struct {
	rope                   Tensor
	rows, headDim, ropeDim uint64
}

// matMul is MatMulInto, returning its error, with MatMulRoPE's epilogue
// where rp is set.
func (p *Plan) matMul(w Weight, x, y Tensor, ntok, stride int, accumulate bool, rp *ropeEpilogue) error {
	wt, l, err := w.words()
	if err != nil {
		return fmt.Errorf("ops: MatMul: %w", err)
	}
	rows, cols, nt, ys := uint64(w.Rows), uint64(w.Cols), uint64(ntok), uint64(stride)
	if ntok <= 0 || stride < w.Rows || x.Len != nt*cols || y.Len != (nt-1)*ys+rows {
		return fmt.Errorf("ops: MatMul: x %d, y %d elements (stride %d) for %d tokens and a %d×%d W: %w", x.Len, y.Len, stride, ntok, rows, cols, errShape)
	}
	acc := uint32(0)
	if accumulate {
		acc = 1
	}
	rowStep := p.weightRowStep(l)
	if rp != nil {
		rowStep -= rowStep % 2 // whole (2i, 2i+1) pairs per dispatch
		if rowStep == 0 {
			return fmt.Errorf("ops: MatMulRoPE: a %s row of %d columns does not fit a binding twice", w.Type, cols)
		}
	}
	var q8 Tensor // x as q8 rows, made at the first integer-dot dispatch
	_, ready := p.q8Of(x, cols)
	for r0 := uint64(0); r0 < rows; r0 += rowStep {
		n := min(rowStep, rows-r0)
		wr, wo, so, err := p.weightRanges(wt, l, r0, n)
		if err != nil {
			return fmt.Errorf("ops: MatMul W rows [%d, %d): %w", r0, r0+n, err)
		}
		tokStep := tokenStep(p.maxRows(1, 4), ys, cols, n)
		for t0 := uint64(0); t0 < nt; t0 += tokStep {
			m := min(tokStep, nt-t0)
			xr, xo, err := p.binding(x, t0*cols, m*cols, 4)
			if err != nil {
				return fmt.Errorf("ops: MatMul x: %w", err)
			}
			yr, yo, err := p.binding(y, t0*ys+r0, (m-1)*ys+n, 4)
			if err != nil {
				return fmt.Errorf("ops: MatMul y: %w", err)
			}
			pc := shaders.MatMulParams{Rows: uint32(n), Cols: uint32(cols), Ntok: uint32(m), WOff: wo, SOff: so,
				XOff: xo, YOff: yo, YStride: uint32(ys), Accumulate: acc}
			op := p.matmulSize(w.Type, m)
			var extra []vk.Range
			if rp != nil {
				op = shaders.RoPEOp(op)
				rr, ro, err := p.binding(rp.rope, t0*rp.ropeDim, m*rp.ropeDim, 4)
				if err != nil {
					return fmt.Errorf("ops: MatMulRoPE table: %w", err)
				}
				extra = append(extra, rr)
				pc.RopeRow0, pc.RopeRows, pc.HeadDim, pc.RopeDim, pc.ROff = uint32(r0), uint32(rp.rows), uint32(rp.headDim), uint32(rp.ropeDim), ro
			}
			kern, err := p.matmulKernel(op, w.Type, cols, wo, so, xo, ready)
			if err != nil {
				return fmt.Errorf("ops: MatMul: %w", err)
			}
			if kern.Dot {
				if xr, pc.XOff, err = p.dotX(&q8, x, nt, cols, tokStep, t0, m); err != nil {
					return fmt.Errorf("ops: MatMul: %w", err)
				}
			}
			tokens, _ := kern.SpecValue(1)
			wgRows := uint64(shaders.MatMulRowsPerGroup(kern, p.lib.WG))
			groups := (n + wgRows - 1) / wgRows * ((m + uint64(tokens) - 1) / uint64(tokens))
			pipe, err := p.lib.Pipeline(kern)
			if err != nil {
				return fmt.Errorf("ops: MatMul: %w", err)
			}
			if err := p.dispatchPipe(pipe, groups, shaders.Push(&pc), append(append(wr, xr, yr), extra...)...); err != nil {
				return err
			}
		}
	}
	return nil
}

// matmulSize is the product op for m tokens of a W of type t:
// shaders.MatMulOp's, or OpMatMul where the device's shared memory cannot
// hold the prefill tile. Every size sums in the same order.
func (p *Plan) matmulSize(t loader.DType, m uint64) shaders.Op {
	op := shaders.MatMulOp(m)
	if op == shaders.OpMatMulTiled {
		k, err := p.lib.WeightKernel(op, t)
		if err != nil || shaders.MatMulSharedBytes(k, t, p.lib.WG) > p.lib.Device.Info.MaxComputeSharedMemorySize {
			return shaders.OpMatMul
		}
	}
	return op
}

// matmulKernel picks the kernel of op (a matmul op of one token per
// workgroup, a few, or a prefill tile) for a W of type t with cols columns
// whose bound rows start at word wo and side half so, and an x at element
// xo, and records the pick: the table's kernel, or its variant where the
// offsets do not suit it, or its integer-dot variant (Options.Dot; q8:
// x's q8 rows are at hand, a norm's). The choice depends on the weight,
// the binding offsets and where x comes from, never on the token count
// beyond the op's size (every size sums in the same order), so every
// chunking gives the same bits.
func (p *Plan) matmulKernel(op shaders.Op, t loader.DType, cols uint64, wo, so, xo uint32, q8 bool) (shaders.Kernel, error) {
	k, err := p.lib.WeightKernel(op, t)
	if err != nil {
		return k, err
	}
	chosen, reason := k, ""
	_, _, block := shaders.BlockBody(t)
	if shaders.Tiled(t) && wo%4 != 0 {
		return k, fmt.Errorf("%s rows bound at word %d, not on 16 bytes", t, wo)
	}
	// Only where the tiles may take them: MatMulCoopMat builds a kernel name.
	if p.lib.coopmat {
		if c, ok := shaders.MatMulCoopMat(k, p.lib.coopmatAt); ok {
			reason = fmt.Sprintf("cooperative matrices (%v): W and x in f16", p.lib.coopmatAt)
			if need, have := shaders.MatMulSharedBytes(c, t, p.lib.WG), p.lib.Device.Info.MaxComputeSharedMemorySize; need > have {
				return k, fmt.Errorf("%s needs %d bytes of shared memory, more than the device's %d", c.Name, need, have)
			}
			p.lib.record(Pick{Op: op.String(), Type: t.String(), Table: k.Name, Kernel: c.Name, Reason: reason})
			return c, nil
		}
	}
	switch {
	case p.lib.layout == shaders.CPULayout && !shaders.Tiled(t):
		if cols%32 != 0 || wo%4 != 0 || xo%4 != 0 {
			chosen, _ = shaders.WeightKernel(op, t, shaders.GPULayout)
			reason = "rows not in 16-byte-aligned 32-column blocks: the GPU layout's kernel"
		} else if cols/32%2 != 0 || (block && so%2 != 0) {
			chosen, reason = k.WithSpec(3, 1), "an odd number of blocks per row or an odd first scale: one block per step"
		}
	}
	if _, vec := chosen.SpecValue(4); vec && (xo%4 != 0 || cols%4 != 0) {
		chosen = chosen.WithSpec(4, 0)
		reason = strings.TrimPrefix(reason+"; x rows not on 16 bytes: scalar x loads", "; ")
	}
	if d, ok := shaders.MatMulDot(chosen); ok && p.lib.dot && (q8 || p.lib.dotAll) && cols%32 == 0 && wo%4 == 0 {
		chosen = d
		reason = strings.TrimPrefix(reason+"; x in q8 blocks: integer dot products, the lanes' sums by subgroup shuffles", "; ")
	} else if sh, ok := shaders.MatMulShuffled(chosen); ok && p.lib.Shuffles() {
		chosen = sh
		reason = strings.TrimPrefix(reason+"; the lanes' sums by subgroup shuffles", "; ")
	}
	if lanes, ok := chosen.SpecValue(6); ok && p.lib.WG%lanes != 0 {
		return k, fmt.Errorf("%s gives a row %d lanes, more than a workgroup of %d", chosen.Name, lanes, p.lib.WG)
	}
	if need, have := shaders.MatMulSharedBytes(chosen, t, p.lib.WG), p.lib.Device.Info.MaxComputeSharedMemorySize; need > have {
		return k, fmt.Errorf("%s needs %d bytes of shared memory at a workgroup of %d, more than the device's %d (a narrower workgroup needs less)", chosen.Name, need, p.lib.WG, have)
	}
	p.lib.record(Pick{Op: op.String(), Type: t.String(), Table: k.Name, Kernel: chosen.Name, Reason: reason})
	return chosen, nil
}

// tokenStep is how many tokens one MatMul dispatch takes when a binding
// holds budget elements: x's rows (m·cols elements) and y's strided span
// ((m−1)·rows+n elements, for n of W's rows) must each fit. It is a
// multiple of shaders.MatMulTokens when it can be, and at least 1.
func tokenStep(budget, rows, cols, n uint64) uint64 {
	m := budget / cols
	if n <= budget {
		m = min(m, (budget-n)/rows+1)
	}
	if m >= shaders.MatMulTokens {
		m -= m % shaders.MatMulTokens
	}
	return max(m, 1)
}

// MatMulGLU records the gated FFN's hidden vector h (ntok, w.Rows/2) =
// act(g)·u, where g and u are x (ntok, w.Cols) times W's even and odd rows
// (W packed by PackGLU: gate row i and up row i at rows 2i and 2i+1): the
// product and ActMulRows in one dispatch, act applied to the same f32 sums
// in the product's epilogue, so h equals MatMul of the gate and up rows
// stacked followed by ActMulRows. act is loader.ActSiLU (SwiGLU) or
// loader.ActGELUTanh (GeGLU). The kernels are the GPU layout's alone
// (shaders.OpMatMulSwiGLU); a CPU-layout library returns an error. Chunked
// prefill equals token-by-token decode bit for bit, as with MatMul.
func (p *Plan) MatMulGLU(w Weight, x, h Tensor, ntok int, act loader.Activation) {
	if p.err == nil {
		p.fail(p.matMulGLU(w, x, h, ntok, act))
	}
}

// matMulGLU is MatMulGLU, returning its error.
func (p *Plan) matMulGLU(w Weight, x, h Tensor, ntok int, act loader.Activation) error {
	if _, ok := shaders.GLUOp(act, shaders.OpMatMul); !ok {
		return fmt.Errorf("ops: MatMulGLU: no kernel for activation %s", act)
	}
	wt, l, err := w.words()
	if err != nil {
		return fmt.Errorf("ops: MatMulGLU: %w", err)
	}
	rows, cols, nt := uint64(w.Rows), uint64(w.Cols), uint64(ntok)
	ffn := rows / 2
	if ntok <= 0 || rows%2 != 0 || x.Len != nt*cols || h.Len != nt*ffn {
		return fmt.Errorf("ops: MatMulGLU: x %d, h %d elements for %d tokens and a %d×%d W of gate and up rows interleaved (an even number): %w", x.Len, h.Len, ntok, rows, cols, errShape)
	}
	rowStep := p.weightRowStep(l)
	rowStep -= rowStep % 2 // whole (gate, up) pairs per dispatch
	if rowStep == 0 {
		return fmt.Errorf("ops: MatMulGLU: a %s row of %d columns does not fit a binding twice", w.Type, cols)
	}
	var q8 Tensor // x as q8 rows, made at the first integer-dot dispatch
	_, ready := p.q8Of(x, cols)
	for r0 := uint64(0); r0 < rows; r0 += rowStep {
		n := min(rowStep, rows-r0)
		wr, wo, so, err := p.weightRanges(wt, l, r0, n)
		if err != nil {
			return fmt.Errorf("ops: MatMulGLU W rows [%d, %d): %w", r0, r0+n, err)
		}
		tokStep := tokenStep(p.maxRows(1, 4), ffn, cols, n/2)
		for t0 := uint64(0); t0 < nt; t0 += tokStep {
			m := min(tokStep, nt-t0)
			xr, xo, err := p.binding(x, t0*cols, m*cols, 4)
			if err != nil {
				return fmt.Errorf("ops: MatMulGLU x: %w", err)
			}
			hr, ho, err := p.binding(h, t0*ffn+r0/2, (m-1)*ffn+n/2, 4)
			if err != nil {
				return fmt.Errorf("ops: MatMulGLU h: %w", err)
			}
			op, _ := shaders.GLUOp(act, p.matmulSize(w.Type, m))
			kern, err := p.matmulKernel(op, w.Type, cols, wo, so, xo, ready)
			if err != nil {
				return fmt.Errorf("ops: MatMulGLU: %w", err)
			}
			if kern.Dot {
				if xr, xo, err = p.dotX(&q8, x, nt, cols, tokStep, t0, m); err != nil {
					return fmt.Errorf("ops: MatMulGLU: %w", err)
				}
			}
			tokens, _ := kern.SpecValue(1)
			if slotRows, _ := kern.SpecValue(2); slotRows%2 != 0 {
				return fmt.Errorf("ops: MatMulGLU: %s takes %d rows per row slot, not whole (gate, up) pairs", kern.Name, slotRows)
			}
			wgRows := uint64(shaders.MatMulRowsPerGroup(kern, p.lib.WG))
			pc := shaders.MatMulParams{Rows: uint32(n), Cols: uint32(cols), Ntok: uint32(m), WOff: wo, SOff: so,
				XOff: xo, YOff: ho, YStride: uint32(ffn)}
			groups := (n + wgRows - 1) / wgRows * ((m + uint64(tokens) - 1) / uint64(tokens))
			pipe, err := p.lib.Pipeline(kern)
			if err != nil {
				return fmt.Errorf("ops: MatMulGLU: %w", err)
			}
			if err := p.dispatchPipe(pipe, groups, shaders.Push(&pc), append(wr, xr, hr)...); err != nil {
				return err
			}
		}
	}
	return nil
}

// PackGLU is Pack of a (2·ffn, cols) matrix given as the ffn gate rows
// then the ffn up rows (GGUF data of type t, ffn_gate then ffn_up), with
// the two interleaved: gate row i becomes row 2i, up row i row 2i+1, the
// layout MatMulGLU reads. Every device layout keeps rows whole, so this is
// a permutation of whole rows before packing.
func PackGLU(t loader.DType, gateUp []byte, ffn, cols int) ([]byte, error) {
	if ffn <= 0 || cols <= 0 {
		return nil, fmt.Errorf("ops: packing a gate-up matrix of 2×%d×%d %s: %w", ffn, cols, t, errShape)
	}
	rb, err := t.RowBytes(uint64(cols))
	if err != nil {
		return nil, fmt.Errorf("ops: packing a gate-up matrix of 2×%d×%d %s: %w", ffn, cols, t, err)
	}
	if uint64(len(gateUp)) != 2*uint64(ffn)*rb {
		return nil, fmt.Errorf("ops: packing a gate-up matrix of 2×%d×%d %s: %d bytes, want %d", ffn, cols, t, len(gateUp), 2*uint64(ffn)*rb)
	}
	mixed := make([]byte, len(gateUp))
	half := uint64(ffn) * rb
	for i := range uint64(ffn) {
		copy(mixed[2*i*rb:(2*i+1)*rb], gateUp[i*rb:(i+1)*rb])
		copy(mixed[(2*i+1)*rb:(2*i+2)*rb], gateUp[half+i*rb:half+(i+1)*rb])
	}
	return Pack(t, mixed, 2*ffn, cols)
}
