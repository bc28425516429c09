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
		if out.Len == 0 {
			p.fail(fmt.Errorf("ops: Argmax: x %d, out %d elements: %w", x.Len, out.Len, errShape))
			return
		}
		p.fail(p.argmax(x, out.Sub(0, 1), 1))
	}
}

// ArgmaxRows records out[r] = Argmax of row r of x (rows, n), for every row
// in one dispatch (a workgroup per row): a batched step's greedy ids.
func (p *Plan) ArgmaxRows(x Tensor, out Tensor, rows int) {
	if p.err == nil {
		p.fail(p.argmax(x, out, rows))
	}
}

// argmax is ArgmaxRows, returning its error.
func (p *Plan) argmax(x Tensor, out Tensor, rows int) error {
	if rows <= 0 || x.Len == 0 || x.Len%uint64(rows) != 0 || x.Len/uint64(rows) >= 1<<32-1 || out.Len != uint64(rows) {
		return fmt.Errorf("ops: Argmax: x %d, out %d elements for %d rows: %w", x.Len, out.Len, rows, errShape)
	}
	n := x.Len / uint64(rows)
	step := p.maxRows(n, 4)
	for r0 := uint64(0); r0 < uint64(rows); r0 += step {
		m := min(step, uint64(rows)-r0)
		xr, xo, err := p.binding(x, r0*n, m*n, 4)
		if err != nil {
			return fmt.Errorf("ops: Argmax x: %w", err)
		}
		or, oo, err := p.binding(out, r0, m, 4)
		if err != nil {
			return fmt.Errorf("ops: Argmax out: %w", err)
		}
		pc := shaders.ArgmaxParams{N: uint32(n), XOff: xo, OutOff: oo}
		if err := p.dispatch(shaders.Argmax, m, shaders.Push(&pc), xr, or); err != nil {
			return err
		}
	}
	return nil
}
