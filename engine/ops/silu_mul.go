package ops

import (
	"fmt"

	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/shaders"
)

// ActMul records h = act(g)·u elementwise (the gated FFN's gate), f32: act
// is loader.ActSiLU, g·σ(g) (SwiGLU), or loader.ActGELUTanh,
// 0.5·g·(1 + tanh(√(2/π)·(g + 0.044715·g³))) (GeGLU). h may be g (or u).
// Both are computed from exp of non-positive arguments alone (GELU's as
// g·σ(2·√(2/π)·(g + 0.044715·g³)), the same function), so every finite g
// gives a finite result, on drivers whose tanh is NaN for large arguments
// too.
func (p *Plan) ActMul(act loader.Activation, g, u, h Tensor) {
	if p.err == nil {
		p.fail(p.actMul(act, g, u, h))
	}
}

// SiluMul is ActMul with loader.ActSiLU: h = silu(g)·u = g·sigmoid(g)·u.
func (p *Plan) SiluMul(g, u, h Tensor) { p.ActMul(loader.ActSiLU, g, u, h) }

// ActMulRows records h (ntok, ffn) = act(g)·u for the gate and up
// projections side by side in gu (ntok, 2·ffn): each row's first ffn
// elements are g, the next ffn u (one product of the gate and up rows
// stacked, Weight concatenated at load).
func (p *Plan) ActMulRows(act loader.Activation, gu, h Tensor, ntok, ffn int) {
	if p.err == nil {
		p.fail(p.actMulRows(act, gu, h, ntok, ffn))
	}
}

// SiluMulRows is ActMulRows with loader.ActSiLU.
func (p *Plan) SiluMulRows(gu, h Tensor, ntok, ffn int) {
	p.ActMulRows(loader.ActSiLU, gu, h, ntok, ffn)
}

// actKernel is the table's kernel for act.
func actKernel(act loader.Activation) (shaders.Kernel, error) {
	k, ok := shaders.ActMulKernel(act)
	if !ok {
		return shaders.Kernel{}, fmt.Errorf("ops: no kernel for activation %s", act)
	}
	return k, nil
}

// actMul is ActMul, returning its error.
func (p *Plan) actMul(act loader.Activation, g, u, h Tensor) error {
	k, err := actKernel(act)
	if err != nil {
		return err
	}
	n := h.Len
	if g.Len != n || u.Len != n || n == 0 {
		return fmt.Errorf("ops: ActMul %s: g %d, u %d, h %d elements: %w", act, g.Len, u.Len, h.Len, errShape)
	}
	wg := uint64(p.lib.WG)
	step := p.maxRows(1, 4) / wg * wg
	for o := uint64(0); o < n; o += step {
		m := min(step, n-o)
		gr, gOff, err := p.binding(g, o, m, 4)
		if err != nil {
			return fmt.Errorf("ops: ActMul g: %w", err)
		}
		ur, uOff, err := p.binding(u, o, m, 4)
		if err != nil {
			return fmt.Errorf("ops: ActMul u: %w", err)
		}
		hr, hOff, err := p.binding(h, o, m, 4)
		if err != nil {
			return fmt.Errorf("ops: ActMul h: %w", err)
		}
		pc := shaders.SiluMulParams{N: uint32(m), Cols: uint32(m), Stride: uint32(m), GOff: gOff, UOff: uOff, HOff: hOff}
		if err := p.dispatch(k, (m+wg-1)/wg, shaders.Push(&pc), gr, ur, hr); err != nil {
			return err
		}
	}
	return nil
}

// actMulRows is ActMulRows, returning its error.
func (p *Plan) actMulRows(act loader.Activation, gu, h Tensor, ntok, ffn int) error {
	k, err := actKernel(act)
	if err != nil {
		return err
	}
	nt, f := uint64(ntok), uint64(ffn)
	if ntok <= 0 || ffn <= 0 || gu.Len != nt*2*f || h.Len != nt*f {
		return fmt.Errorf("ops: ActMulRows %s: gu %d, h %d elements for %d tokens of %d: %w", act, gu.Len, h.Len, ntok, ffn, errShape)
	}
	wg := uint64(p.lib.WG)
	step := p.maxRows(2*f, 4)
	for t0 := uint64(0); t0 < nt; t0 += step {
		m := min(step, nt-t0)
		gr, gOff, err := p.binding(gu, t0*2*f, m*2*f, 4)
		if err != nil {
			return fmt.Errorf("ops: ActMulRows gu: %w", err)
		}
		hr, hOff, err := p.binding(h, t0*f, m*f, 4)
		if err != nil {
			return fmt.Errorf("ops: ActMulRows h: %w", err)
		}
		pc := shaders.SiluMulParams{N: uint32(m * f), Cols: uint32(f), Stride: uint32(2 * f), GOff: gOff, UOff: gOff + uint32(f), HOff: hOff}
		if err := p.dispatch(k, (m*f+wg-1)/wg, shaders.Push(&pc), gr, gr, hr); err != nil {
			return err
		}
	}
	return nil
}
