package ops

import (
	"fmt"

	"github.com/vkrun/vkrun/shaders"
)

// Argmax records out[0] (u32) = the first index of the maximum of x, in one
// workgroup. NaN never wins unless every element is NaN (the answer is then
// 0); −0 equals +0. This is optest.Argmax's rule. x must fit one binding
// (32M elements on lavapipe), far above any vocabulary.
func (p *Plan) Argmax(x Tensor, out Tensor) {
	if p.err == nil {
		p.fail(p.argmax(x, out))
	}
}

// argmax is Argmax, returning its error.
func (p *Plan) argmax(x Tensor, out Tensor) error {
	if x.Len == 0 || x.Len >= 1<<32-1 || out.Len == 0 {
		return fmt.Errorf("ops: Argmax: x %d, out %d elements: %w", x.Len, out.Len, errShape)
	}
	xr, xo, err := p.binding(x, 0, x.Len, 4)
	if err != nil {
		return fmt.Errorf("ops: Argmax x: %w", err)
	}
	or, oo, err := p.binding(out, 0, 1, 4)
	if err != nil {
		return fmt.Errorf("ops: Argmax out: %w", err)
	}
	pc := shaders.ArgmaxParams{N: uint32(x.Len), XOff: xo, OutOff: oo}
	return p.dispatch(shaders.Argmax, 1, shaders.Push(&pc), xr, or)
}
