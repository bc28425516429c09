package shaders

import (
	"fmt"
	"reflect"

	"github.com/vkrun/vkrun/vk"
)

// Argmax: out[0] (u32) = the first index of the maximum of x (n,) f32.
var Argmax = Kernel{Name: "argmax", Bindings: []vk.Access{vk.Read, vk.Write}, Params: reflect.TypeFor[ArgmaxParams]()}

func init() { register(Argmax) }

// ArgmaxParams mirrors argmax.comp's push constants.
type ArgmaxParams struct {
	N, XOff, OutOff uint32
}

// Argmax records out[0] (u32) = the first index of the maximum of x, in one
// workgroup. NaN never wins unless every element is NaN (the answer is then
// 0); −0 equals +0. This is optest.Argmax's rule. x must fit one binding
// (32M elements on lavapipe), far above any vocabulary.
func (p *Plan) Argmax(x Tensor, out Tensor) error {
	if x.Len == 0 || x.Len >= 1<<32-1 || out.Len == 0 {
		return fmt.Errorf("shaders: Argmax: x %d, out %d elements: %w", x.Len, out.Len, errShape)
	}
	xr, xo, err := p.binding(x, 0, x.Len, 4)
	if err != nil {
		return fmt.Errorf("shaders: Argmax x: %w", err)
	}
	or, oo, err := p.binding(out, 0, 1, 4)
	if err != nil {
		return fmt.Errorf("shaders: Argmax out: %w", err)
	}
	pc := ArgmaxParams{N: uint32(x.Len), XOff: xo, OutOff: oo}
	return p.dispatch(Argmax, 1, Push(&pc), xr, or)
}
