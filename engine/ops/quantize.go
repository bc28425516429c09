package ops

import (
	"fmt"

	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/vk"
)

// quantizeQ8 records x (nt, cols) f32 rounded to q8 rows
// (shaders.QuantizeQ8: per 32 columns, 32 int8 values, a scale and their
// sum) into a buffer of the plan's own, in dispatches of tokStep tokens (x's
// rows and the q8 rows of a dispatch each fit one binding, the q8 rows
// being smaller), and returns the q8 rows as a tensor of words. The
// integer-dot matmul kernels (shaders.MatMulDot) read them as their x. The
// sequence's hazard tracking orders the quantisation after x's writer and
// before the products, and a later quantisation into the same buffer
// after them.
func (p *Plan) quantizeQ8(x Tensor, nt, cols, tokStep uint64) (Tensor, error) {
	if cols%32 != 0 || p.lib.WG%8 != 0 {
		return Tensor{}, fmt.Errorf("quantising x to q8: %d columns (want a multiple of 32) at a workgroup of %d (want a multiple of 8)", cols, p.lib.WG)
	}
	rw := shaders.Q8RowWords(cols)
	need := nt * rw
	if p.q8.Buf == nil || p.q8.Len < need {
		// Recorded dispatches may still bind a smaller buffer: it stays in
		// own until Close.
		b, err := p.lib.Device.NewBuffer("q8 activations", 4*need, vk.DeviceMemory)
		if err != nil {
			return Tensor{}, fmt.Errorf("q8 activations for %d tokens of %d columns: %w", nt, cols, err)
		}
		p.own = append(p.own, b)
		p.q8 = F32(b)
	}
	q := p.q8.Sub(0, need)
	for t0 := uint64(0); t0 < nt; t0 += tokStep {
		m := min(tokStep, nt-t0)
		xr, xo, err := p.binding(x, t0*cols, m*cols, 4)
		if err != nil {
			return Tensor{}, fmt.Errorf("quantising x: %w", err)
		}
		qr, qo, err := p.binding(q, t0*rw, m*rw, 4)
		if err != nil {
			return Tensor{}, fmt.Errorf("quantising x: q8 rows: %w", err)
		}
		blocks := m * cols / 32
		pc := shaders.QuantizeParams{Blocks: uint32(blocks), Cols: uint32(cols), XOff: xo, QOff: qo}
		wg := uint64(p.lib.WG)
		if err := p.dispatch(shaders.QuantizeQ8, (8*blocks+wg-1)/wg, shaders.Push(&pc), xr, qr); err != nil {
			return Tensor{}, fmt.Errorf("quantising x: %w", err)
		}
	}
	return q, nil
}

// q8Binding binds the q8 rows of tokens [t0, t0+m) of q (quantizeQ8's) as
// a Dot kernel's x: its offset is in words and on 16 bytes (a row is a
// whole number of 48-byte blocks from the buffer's start).
func (p *Plan) q8Binding(q Tensor, t0, m, cols uint64) (vk.Range, uint32, error) {
	rw := shaders.Q8RowWords(cols)
	r, off, err := p.binding(q, t0*rw, m*rw, 4)
	if err == nil && off%4 != 0 {
		err = fmt.Errorf("q8 rows bound at word %d, not on 16 bytes", off)
	}
	return r, off, err
}
