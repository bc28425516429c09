package ops

import (
	"fmt"
	"math"

	"github.com/vkrun/vkrun/shaders"
)

// ScaleCap records, in place on x (n,) f32, x ← cap·tanh(x·scale/cap) when
// cap > 0 (a soft-cap: Gemma 2's final_logit_softcapping), else x ←
// x·scale (Cohere2's logit_scale). tanh is computed from exp of a
// non-positive argument, so it is finite and within [−1, 1] for every
// finite input, on drivers whose tanh is NaN for large arguments too.
// scale 1 with no cap records nothing. A negative or non-finite cap, or a
// non-finite scale, is an error.
func (p *Plan) ScaleCap(x Tensor, scale, cap float32) {
	if p.err == nil {
		p.fail(p.scaleCap(x, scale, cap))
	}
}

// scaleCap is ScaleCap, returning its error.
func (p *Plan) scaleCap(x Tensor, scale, cap float32) error {
	if x.Len == 0 {
		return fmt.Errorf("ops: ScaleCap: empty x: %w", errShape)
	}
	if s, c := float64(scale), float64(cap); math.IsNaN(s) || math.IsInf(s, 0) || math.IsNaN(c) || math.IsInf(c, 0) || cap < 0 {
		return fmt.Errorf("ops: ScaleCap: scale %g and cap %g (a finite scale, and a finite cap ≥ 0, 0 for none)", scale, cap)
	}
	if scale == 1 && cap == 0 {
		return nil
	}
	n := x.Len
	wg := uint64(p.lib.WG)
	step := p.maxRows(1, 4) / wg * wg
	for o := uint64(0); o < n; o += step {
		m := min(step, n-o)
		xr, xo, err := p.binding(x, o, m, 4)
		if err != nil {
			return fmt.Errorf("ops: ScaleCap x: %w", err)
		}
		pc := shaders.ScaleCapParams{N: uint32(m), XOff: xo, Scale: scale, Cap: cap}
		if err := p.dispatch(shaders.ScaleCap, (m+wg-1)/wg, shaders.Push(&pc), xr); err != nil {
			return err
		}
	}
	return nil
}
