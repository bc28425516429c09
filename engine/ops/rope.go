package ops

import (
	"fmt"

	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/shaders"
)

// RoPE records, in place on x (ntok, nHeads·headDim) f32: for each token
// and head, pair i < ropeDim/2 of the head is rotated by the angle whose
// [cos, sin] are rope[tok, i, :], from rope (ntok, ropeDim/2, 2) f32; dims
// ≥ ropeDim are untouched. style says which elements pair up:
// loader.RopePairwise rotates (x[2i], x[2i+1]) (GGUF llama's permuted
// rows), loader.RopeHalf rotates (x[i], x[i+ropeDim/2]) (NEOX rotate-half:
// Gemma). The table is the same for both. The host computes it in float64
// for each position, because GPU sin and cos of large angles (pos·θ^(−2i/d),
// thousands of radians at long contexts) are inaccurate. ropeDim must be
// even and ≤ headDim; ropeDim = 0 records nothing.
func (p *Plan) RoPE(x, rope Tensor, ntok, nHeads, headDim, ropeDim int, style loader.RopeStyle) {
	if p.err == nil {
		p.fail(p.rope(x, x, rope, ntok, nHeads, headDim, ropeDim, nHeads*headDim, nHeads*headDim, style))
	}
}

// RoPEQK is RoPE on the q and k heads of a q|k|v activation qkv (ntok,
// (nHeads + 2·nKVHeads)·headDim): the first nHeads + nKVHeads heads of
// each row, in one dispatch.
func (p *Plan) RoPEQK(qkv, rope Tensor, ntok, nHeads, nKVHeads, headDim, ropeDim int, style loader.RopeStyle) {
	if p.err == nil {
		stride := (nHeads + 2*nKVHeads) * headDim
		heads := nHeads + nKVHeads
		if ntok <= 0 || nHeads <= 0 || nKVHeads < 0 || headDim <= 0 || qkv.Len != uint64(ntok)*uint64(stride) {
			p.fail(fmt.Errorf("ops: RoPEQK: qkv %d elements for %d tokens of %d query and %d key heads of %d: %w", qkv.Len, ntok, nHeads, nKVHeads, headDim, errShape))
			return
		}
		x := qkv.Sub(0, uint64(ntok-1)*uint64(stride)+uint64(heads*headDim))
		p.fail(p.rope(x, x, rope, ntok, heads, headDim, ropeDim, stride, stride, style))
	}
}

// RoPEQTo writes into q (ntok, nHeads·headDim) the query heads of a q|k|v
// activation qkv (ntok, (nHeads + 2·nKVHeads)·headDim), rotated as RoPE
// does by the angles of rope, and dims ≥ ropeDim copied; qkv is not
// changed. Record it before RoPEQK rotates qkv in place: it makes the
// query that scores a local layer's sinks at its cache position
// (AttentionOpts.SinkQuery).
func (p *Plan) RoPEQTo(qkv, rope, q Tensor, ntok, nHeads, nKVHeads, headDim, ropeDim int, style loader.RopeStyle) {
	if p.err == nil {
		stride := (nHeads + 2*nKVHeads) * headDim
		if ntok <= 0 || nHeads <= 0 || nKVHeads < 0 || headDim <= 0 || qkv.Len != uint64(ntok)*uint64(stride) {
			p.fail(fmt.Errorf("ops: RoPEQTo: qkv %d elements for %d tokens of %d query and %d key heads of %d: %w", qkv.Len, ntok, nHeads, nKVHeads, headDim, errShape))
			return
		}
		x := qkv.Sub(0, uint64(ntok-1)*uint64(stride)+uint64(nHeads*headDim))
		p.fail(p.rope(x, q, rope, ntok, nHeads, headDim, ropeDim, stride, nHeads*headDim, style))
	}
}

// rope rotates x into y (the same tensor in place, else a copy that also
// gets the dims ≥ ropeDim), over rows xStride and yStride elements apart,
// returning its error.
func (p *Plan) rope(x, y, rope Tensor, ntok, nHeads, headDim, ropeDim, xStride, yStride int, style loader.RopeStyle) error {
	var rotateHalf uint32
	switch style {
	case loader.RopePairwise:
	case loader.RopeHalf:
		rotateHalf = 1
	default:
		return fmt.Errorf("ops: RoPE: unknown pairing %s", style)
	}
	inPlace := x == y
	if ntok <= 0 || nHeads <= 0 || headDim <= 0 || ropeDim < 0 || ropeDim%2 != 0 || ropeDim > headDim || xStride < nHeads*headDim || yStride < nHeads*headDim {
		return fmt.Errorf("ops: RoPE: %d tokens, %d heads of %d, rope dim %d: %w", ntok, nHeads, headDim, ropeDim, errShape)
	}
	nt, row, xs, ys := uint64(ntok), uint64(nHeads)*uint64(headDim), uint64(xStride), uint64(yStride)
	if x.Len != (nt-1)*xs+row || y.Len != (nt-1)*ys+row || rope.Len != nt*uint64(ropeDim) {
		return fmt.Errorf("ops: RoPE: x %d, y %d, rope %d elements for %d tokens, %d heads of %d, rope dim %d: %w", x.Len, y.Len, rope.Len, ntok, nHeads, headDim, ropeDim, errShape)
	}
	tail := uint64(0) // the dims ≥ ropeDim that a copy needs
	if !inPlace {
		if x.Buf == y.Buf && x.Off < y.Off+y.Len && y.Off < x.Off+x.Len {
			return fmt.Errorf("ops: RoPE: x and y overlap without being the same tensor: %w", errShape)
		}
		tail = uint64(headDim - ropeDim)
	}
	if ropeDim == 0 && tail == 0 {
		return nil
	}
	wg := uint64(p.lib.WG)
	step := min(p.maxRows(xs, 4), p.maxRows(ys, 4), p.maxRows(max(uint64(ropeDim), 1), 4))
	for t0 := uint64(0); t0 < nt; t0 += step {
		m := min(step, nt-t0)
		xr, xo, err := p.binding(x, t0*xs, (m-1)*xs+row, 4)
		if err != nil {
			return fmt.Errorf("ops: RoPE x: %w", err)
		}
		yr, yo := xr, xo
		if !inPlace {
			if yr, yo, err = p.binding(y, t0*ys, (m-1)*ys+row, 4); err != nil {
				return fmt.Errorf("ops: RoPE y: %w", err)
			}
		}
		rr, ro := xr, uint32(0) // no table with ropeDim 0: the kernel only copies
		if ropeDim > 0 {
			if rr, ro, err = p.binding(rope, t0*uint64(ropeDim), m*uint64(ropeDim), 4); err != nil {
				return fmt.Errorf("ops: RoPE table: %w", err)
			}
		}
		pc := shaders.RoPEParams{Ntok: uint32(m), NHeads: uint32(nHeads), HeadDim: uint32(headDim), RopeDim: uint32(ropeDim),
			XOff: xo, ROff: ro, XStride: uint32(xs), RotateHalf: rotateHalf, YOff: yo, YStride: uint32(ys), Tail: uint32(tail)}
		items := m * uint64(nHeads) * (uint64(ropeDim/2) + tail)
		if err := p.dispatch(shaders.RoPE, (items+wg-1)/wg, shaders.Push(&pc), xr, rr, yr); err != nil {
			return err
		}
	}
	return nil
}
