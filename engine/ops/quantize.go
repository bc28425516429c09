package ops

import (
	"fmt"

	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/vk"
)

// quantizeQ8 records x (nt, cols) f32 rounded to q8 rows
// (shaders.QuantizeQ8: per 32 columns, 32 int8 values, a scale and their
// sum) into the plan's q8 buffer (q8Rows), in dispatches of tokStep tokens
// (x's rows and the q8 rows of a dispatch each fit one binding, the q8
// rows being smaller), and returns the q8 rows as a tensor of words. The
// integer-dot matmul kernels (shaders.MatMulDot) read them as their x. The
// sequence's hazard tracking orders the quantisation after x's writer and
// before the products, and a later quantisation into the same buffer
// after them.
func (p *Plan) quantizeQ8(x Tensor, nt, cols, tokStep uint64) (Tensor, error) {
	if cols%32 != 0 || p.lib.WG%8 != 0 {
		return Tensor{}, fmt.Errorf("quantising x to q8: %d columns (want a multiple of 32) at a workgroup of %d (want a multiple of 8)", cols, p.lib.WG)
	}
	rw := shaders.Q8RowWords(cols)
	q, err := p.q8Rows(nt * rw)
	if err != nil {
		return Tensor{}, fmt.Errorf("q8 activations for %d tokens of %d columns: %w", nt, cols, err)
	}
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
	p.q8src = q8Source{x: x, cols: cols, q: q}
	return q, nil
}

// q8Rows is need words of the plan's q8 buffer from its start:
// SetQ8Scratch's, or one of the plan's own, replaced by a larger one when
// too small (recorded dispatches may still bind the smaller: it stays in
// own until Close). What it held before is no longer any tensor's q8 rows.
func (p *Plan) q8Rows(need uint64) (Tensor, error) {
	if p.q8.Buf == nil || p.q8.Len < need {
		b, err := p.lib.Device.NewBuffer("q8 activations", 4*need, vk.DeviceMemory)
		if err != nil {
			return Tensor{}, err
		}
		p.own = append(p.own, b)
		p.q8 = F32(b)
	}
	p.q8src = q8Source{}
	return p.q8.Sub(0, need), nil
}

// q8Source is the tensor whose q8 rows the plan's q8 buffer holds (made by
// quantizeQ8 or a norm with q8 output), so that a later integer-dot product
// of the same x reads them instead of rounding x again: x (the whole
// tensor, of rows of cols columns) and q, its rows. Any dispatch that writes
// x forgets it (dispatchPipe).
type q8Source struct {
	x    Tensor
	cols uint64
	q    Tensor
}

// q8Of is the q8 rows of x (rows of cols columns) that the plan's buffer
// holds, if it holds x's.
func (p *Plan) q8Of(x Tensor, cols uint64) (Tensor, bool) {
	s := p.q8src
	if s.q.Buf == nil || s.x.Buf != x.Buf || s.x.Off != x.Off || s.x.Len != x.Len || s.cols != cols {
		return Tensor{}, false
	}
	return s.q, true
}

// forgetWritten forgets the q8 rows of a tensor that a dispatch binding
// ranges (of pipeline access acc) writes.
func (p *Plan) forgetWritten(acc []vk.Access, ranges []vk.Range) {
	s := p.q8src
	if s.q.Buf == nil {
		return
	}
	lo, hi := 4*s.x.Off, 4*(s.x.Off+s.x.Len)
	for i, r := range ranges {
		if i < len(acc) && acc[i]&vk.Write != 0 && r.Buffer == s.x.Buf && r.Offset < hi && lo < r.Offset+r.Size {
			p.q8src = q8Source{}
			return
		}
	}
}

// dotX binds tokens [t0, t0+m) of x (nt, cols) as an integer-dot kernel's
// x: the q8 rows the plan holds of x (a norm's), or else x rounded now, in
// one go for all its tokens at a product's first integer-dot dispatch;
// *q8 keeps them for the product's later dispatches.
func (p *Plan) dotX(q8 *Tensor, x Tensor, nt, cols, tokStep, t0, m uint64) (vk.Range, uint32, error) {
	if q8.Buf == nil {
		q, ok := p.q8Of(x, cols)
		if !ok {
			var err error
			if q, err = p.quantizeQ8(x, nt, cols, tokStep); err != nil {
				return vk.Range{}, 0, err
			}
		}
		*q8 = q
	}
	r, off, err := p.q8Binding(*q8, t0, m, cols)
	if err != nil {
		return vk.Range{}, 0, fmt.Errorf("q8 x: %w", err)
	}
	return r, off, nil
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
