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
		pc := shaders.SiluMulParams{N: uint32(m), GOff: gOff, UOff: uOff, HOff: hOff}
		if err := p.dispatch(shaders.SiluMul, (m+wg-1)/wg, shaders.Push(&pc), gr, ur, hr); err != nil {
			return err
		}
	}
	return nil
}
