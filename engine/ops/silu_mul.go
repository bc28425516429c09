package ops

import (
	"fmt"

	"github.com/vkrun/vkrun/shaders"
)

// SiluMul records h = silu(g)·u = g·sigmoid(g)·u elementwise (SwiGLU's gate),
// f32. h may be g (or u). The sigmoid is computed from exp(−|g|), which
// never overflows, so every finite g gives a finite result.
func (p *Plan) SiluMul(g, u, h Tensor) {
	if p.err == nil {
		p.fail(p.siluMul(g, u, h))
	}
}

// siluMul is SiluMul, returning its error.
func (p *Plan) siluMul(g, u, h Tensor) error {
	n := h.Len
	if g.Len != n || u.Len != n || n == 0 {
		return fmt.Errorf("ops: SiluMul: g %d, u %d, h %d elements: %w", g.Len, u.Len, h.Len, errShape)
	}
	wg := uint64(p.lib.WG)
	step := p.maxRows(1, 4) / wg * wg
	for o := uint64(0); o < n; o += step {
		m := min(step, n-o)
		gr, gOff, err := p.binding(g, o, m, 4)
		if err != nil {
			return fmt.Errorf("ops: SiluMul g: %w", err)
		}
		ur, uOff, err := p.binding(u, o, m, 4)
		if err != nil {
			return fmt.Errorf("ops: SiluMul u: %w", err)
		}
		hr, hOff, err := p.binding(h, o, m, 4)
		if err != nil {
			return fmt.Errorf("ops: SiluMul h: %w", err)
		}
		pc := shaders.SiluMulParams{N: uint32(m), Cols: uint32(m), Stride: uint32(m), GOff: gOff, UOff: uOff, HOff: hOff}
		if err := p.dispatch(shaders.SiluMul, (m+wg-1)/wg, shaders.Push(&pc), gr, ur, hr); err != nil {
			return err
		}
	}
	return nil
}

// SiluMulRows records h (ntok, ffn) = silu(g)·u for the gate and up
// projections side by side in gu (ntok, 2·ffn): each row's first ffn
// elements are g, the next ffn u (one product of the gate and up rows
// stacked, Weight concatenated at load).
func (p *Plan) SiluMulRows(gu, h Tensor, ntok, ffn int) {
	if p.err == nil {
		p.fail(p.siluMulRows(gu, h, ntok, ffn))
	}
}

func (p *Plan) siluMulRows(gu, h Tensor, ntok, ffn int) error {
	nt, f := uint64(ntok), uint64(ffn)
	if ntok <= 0 || ffn <= 0 || gu.Len != nt*2*f || h.Len != nt*f {
		return fmt.Errorf("ops: SiluMulRows: gu %d, h %d elements for %d tokens of %d: %w", gu.Len, h.Len, ntok, ffn, errShape)
	}
	wg := uint64(p.lib.WG)
	step := p.maxRows(2*f, 4)
	for t0 := uint64(0); t0 < nt; t0 += step {
		m := min(step, nt-t0)
		gr, gOff, err := p.binding(gu, t0*2*f, m*2*f, 4)
		if err != nil {
			return fmt.Errorf("ops: SiluMulRows gu: %w", err)
		}
		hr, hOff, err := p.binding(h, t0*f, m*f, 4)
		if err != nil {
			return fmt.Errorf("ops: SiluMulRows h: %w", err)
		}
		pc := shaders.SiluMulParams{N: uint32(m * f), Cols: uint32(f), Stride: uint32(2 * f), GOff: gOff, UOff: gOff + uint32(f), HOff: hOff}
		if err := p.dispatch(shaders.SiluMul, (m*f+wg-1)/wg, shaders.Push(&pc), gr, gr, hr); err != nil {
			return err
		}
	}
	return nil
}
