package shaders

import (
	"fmt"
	"reflect"

	"github.com/vkrun/vkrun/vk"
)

func embedKernel(t WeightType) Kernel {
	b := []vk.Access{vk.Read, vk.Read, vk.Write} // table, tokens, x
	if t == WeightQ8_0 || t == WeightQ4_0 {
		b = []vk.Access{vk.Read, vk.Read, vk.Read, vk.Write} // table quants, table scales, tokens, x
	}
	return Kernel{Name: "embed_" + t.String(), Bindings: b, Params: reflect.TypeFor[EmbedParams]()}
}

// The Embed kernels, one per table type: x (ntok, cols) f32 = rows
// tokens[i] (u32) of a (vocab, cols) table in its device layout.
var (
	EmbedF32  = embedKernel(WeightF32)
	EmbedF16  = embedKernel(WeightF16)
	EmbedQ8_0 = embedKernel(WeightQ8_0)
	EmbedQ4_0 = embedKernel(WeightQ4_0)
)

func init() { register(EmbedF32, EmbedF16, EmbedQ8_0, EmbedQ4_0) }

// EmbedParams mirrors embed.glsl's push constants.
type EmbedParams struct {
	Ntok, Cols, Vocab uint32
	Row0, Nrows       uint32 // the table rows in this dispatch's binding
	WOff, SOff        uint32 // word offset of row Row0; f16 index of its first scale
	TokOff, XOff      uint32 // element offsets
}

// Embed records x (ntok, table.Cols) f32 = row tokens[i] of table for each
// of the ntok u32 ids in tokens (4-byte elements). An id ≥ table.Rows gives
// a row of zeros; the table is never read out of bounds. The row values
// are exactly the dequantised weights (bit-identical to ggml's reference
// dequantisation: q·d in f32).
//
// A table larger than one binding is bound in row blocks, one dispatch
// each; every block's dispatch reads all the ids and copies the rows it
// holds.
func (p *Plan) Embed(table Weight, tokens Tensor, x Tensor, ntok int) error {
	wt, l, err := table.words()
	if err != nil {
		return fmt.Errorf("shaders: Embed: %w", err)
	}
	k, err := weightKernel([4]Kernel{EmbedF32, EmbedF16, EmbedQ8_0, EmbedQ4_0}, table.Type)
	if err != nil {
		return err
	}
	vocab, cols, nt := uint64(table.Rows), uint64(table.Cols), uint64(ntok)
	if ntok <= 0 || tokens.Len != nt || x.Len != nt*cols {
		return fmt.Errorf("shaders: Embed: %d ids, x %d elements for %d tokens of %d: %w", tokens.Len, x.Len, ntok, cols, errShape)
	}
	rowStep := p.weightRowStep(l)
	tokStep := p.maxRows(cols, 4)
	for r0 := uint64(0); r0 < vocab; r0 += rowStep {
		n := min(rowStep, vocab-r0)
		wr, wo, so, err := p.weightRanges(wt, l, r0, n)
		if err != nil {
			return fmt.Errorf("shaders: Embed table rows [%d, %d): %w", r0, r0+n, err)
		}
		for t0 := uint64(0); t0 < nt; t0 += tokStep {
			m := min(tokStep, nt-t0)
			tr, to, err := p.binding(tokens, t0, m, 4)
			if err != nil {
				return fmt.Errorf("shaders: Embed tokens: %w", err)
			}
			xr, xo, err := p.binding(x, t0*cols, m*cols, 4)
			if err != nil {
				return fmt.Errorf("shaders: Embed x: %w", err)
			}
			pc := EmbedParams{Ntok: uint32(m), Cols: uint32(cols), Vocab: uint32(vocab), Row0: uint32(r0), Nrows: uint32(n),
				WOff: wo, SOff: so, TokOff: to, XOff: xo}
			if err := p.dispatch(k, m, Push(&pc), append(wr, tr, xr)...); err != nil {
				return err
			}
		}
	}
	return nil
}
