package ops

import (
	"fmt"
	"math"

	"github.com/vkrun/vkrun/shaders"
)

// Embed records x (ntok, table.Cols) f32 = row tokens[i] of table for each
// of the ntok u32 ids in tokens (4-byte elements). An id ≥ table.Rows gives
// a row of zeros; the table is never read out of bounds. The row values
// are exactly the dequantised weights (bit-identical to ggml's reference
// dequantisation: q·d in f32).
//
// A table larger than one binding is bound in row blocks, one dispatch
// each; every block's dispatch reads all the ids and copies the rows it
// holds.
func (p *Plan) Embed(table Weight, tokens Tensor, x Tensor, ntok int) {
	p.EmbedScaled(table, tokens, x, ntok, 1)
}

// EmbedScaled is Embed with every value multiplied by scale in f32
// (Gemma's √dim): x (ntok, table.Cols) f32 = row tokens[i] · scale. Scale
// 1 gives exactly Embed's values.
func (p *Plan) EmbedScaled(table Weight, tokens Tensor, x Tensor, ntok int, scale float32) {
	if p.err == nil {
		p.fail(p.embed(table, tokens, x, ntok, scale))
	}
}

// embed is EmbedScaled, returning its error.
func (p *Plan) embed(table Weight, tokens Tensor, x Tensor, ntok int, scale float32) error {
	if s := float64(scale); math.IsNaN(s) || math.IsInf(s, 0) {
		return fmt.Errorf("ops: Embed: scale %g is not finite", scale)
	}
	wt, l, err := table.words()
	if err != nil {
		return fmt.Errorf("ops: Embed: %w", err)
	}
	k, err := p.lib.WeightKernel(shaders.OpEmbed, table.Type)
	if err != nil {
		return err
	}
	p.lib.record(Pick{Op: shaders.OpEmbed.String(), Type: table.Type.String(), Table: k.Name, Kernel: k.Name})
	vocab, cols, nt := uint64(table.Rows), uint64(table.Cols), uint64(ntok)
	if ntok <= 0 || tokens.Len != nt || x.Len != nt*cols {
		return fmt.Errorf("ops: Embed: %d ids, x %d elements for %d tokens of %d: %w", tokens.Len, x.Len, ntok, cols, errShape)
	}
	rowStep := p.weightRowStep(l)
	tokStep := p.maxRows(cols, 4)
	for r0 := uint64(0); r0 < vocab; r0 += rowStep {
		n := min(rowStep, vocab-r0)
		wr, wo, so, err := p.weightRanges(wt, l, r0, n)
		if err != nil {
			return fmt.Errorf("ops: Embed table rows [%d, %d): %w", r0, r0+n, err)
		}
		for t0 := uint64(0); t0 < nt; t0 += tokStep {
			m := min(tokStep, nt-t0)
			tr, to, err := p.binding(tokens, t0, m, 4)
			if err != nil {
				return fmt.Errorf("ops: Embed tokens: %w", err)
			}
			xr, xo, err := p.binding(x, t0*cols, m*cols, 4)
			if err != nil {
				return fmt.Errorf("ops: Embed x: %w", err)
			}
			pc := shaders.EmbedParams{Ntok: uint32(m), Cols: uint32(cols), Vocab: uint32(vocab), Row0: uint32(r0), Nrows: uint32(n),
				WOff: wo, SOff: so, TokOff: to, XOff: xo, Scale: scale}
			if err := p.dispatch(k, m, shaders.Push(&pc), append(wr, tr, xr)...); err != nil {
				return err
			}
		}
	}
	return nil
}
