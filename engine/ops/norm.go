package ops

import (
	"fmt"
	"math"

	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/vk"
)

// RMSNorm records y (rows, n) = x (rows, n) / sqrt(mean(x²)+eps) * w (n,),
// per row, f32. y may be x.
func (p *Plan) RMSNorm(x, w, y Tensor, rows, n int, eps float32) {
	if p.err == nil {
		p.fail(p.rowNorm("RMSNorm", loader.NormRMS, x, w, y, rows, n, eps, false))
	}
}

// LayerNorm records y (rows, n) = (x − mean) / sqrt(var + eps) * w (n,),
// per row of x (rows, n), with var = mean((x − mean)²): LayerNorm without
// bias (Cohere2), f32. y may be x.
func (p *Plan) LayerNorm(x, w, y Tensor, rows, n int, eps float32) {
	if p.err == nil {
		p.fail(p.rowNorm("LayerNorm", loader.NormLayer, x, w, y, rows, n, eps, false))
	}
}

// RMSNormAdd records y (rows, n) += rmsnorm(x (rows, n)) * w (n,): a norm of
// a block's output added into the residual stream (Gemma's
// post_attention_norm and post_ffw_norm), in one dispatch. x and y must not
// overlap.
func (p *Plan) RMSNormAdd(x, w, y Tensor, rows, n int, eps float32) {
	if p.err == nil {
		p.fail(p.rowNorm("RMSNormAdd", loader.NormRMS, x, w, y, rows, n, eps, true))
	}
}

// HeadNormQK records, in place on qkv (ntok, (nHeads + 2·nKVHeads)·headDim)
// f32 (q heads, then k heads, then v heads in each row), an RMSNorm of each
// query head over its headDim values with weight qNorm (headDim,) f32, and
// of each key head with kNorm (headDim,) f32; the value heads are
// untouched. One dispatch for both (Gemma 3's attn_q_norm and attn_k_norm,
// before RoPE).
func (p *Plan) HeadNormQK(qkv, qNorm, kNorm Tensor, ntok, nHeads, nKVHeads, headDim int, eps float32) {
	if p.err == nil {
		p.fail(p.headNormQK(qkv, qNorm, kNorm, ntok, nHeads, nKVHeads, headDim, eps))
	}
}

// rowNorm is RMSNorm, LayerNorm and RMSNormAdd, returning the error.
func (p *Plan) rowNorm(op string, kind loader.NormKind, x, w, y Tensor, rows, n int, eps float32, accumulate bool) error {
	r, c := uint64(rows), uint64(n)
	if rows <= 0 || n <= 0 || x.Len != r*c || y.Len != r*c || w.Len != c {
		return fmt.Errorf("ops: %s: x %d, w %d, y %d elements for (%d, %d): %w", op, x.Len, w.Len, y.Len, rows, n, errShape)
	}
	if accumulate && overlap(x, y) {
		return fmt.Errorf("ops: %s: x and y overlap in %s (y += norm(x) needs them distinct)", op, x.Buf.Name)
	}
	rowsOf := normRows{ntok: r, heads: 1, n: c, xStride: c, yStride: c, w2From: 1}
	if accumulate || !p.lib.dot || c%32 != 0 || p.lib.WG%32 != 0 {
		return p.norm(op, kind, rowsOf, x, w, w, y, Tensor{}, eps, accumulate)
	}
	// Where the library takes integer-dot products, a plain norm also
	// writes y as q8 rows, for the product that reads y next (q8Of).
	q, err := p.q8Rows(r * shaders.Q8RowWords(c))
	if err != nil {
		return fmt.Errorf("ops: %s: q8 rows of %d×%d: %w", op, rows, n, err)
	}
	if err := p.norm(op, kind, rowsOf, x, w, w, y, q, eps, false); err != nil {
		return err
	}
	p.q8src = q8Source{x: y, cols: c, q: q}
	return nil
}

// headNormQK is HeadNormQK, returning its error.
func (p *Plan) headNormQK(qkv, qNorm, kNorm Tensor, ntok, nHeads, nKVHeads, headDim int, eps float32) error {
	if ntok <= 0 || nHeads <= 0 || nKVHeads <= 0 || headDim <= 0 {
		return fmt.Errorf("ops: HeadNormQK: %d tokens, %d query and %d key heads of %d: %w", ntok, nHeads, nKVHeads, headDim, errShape)
	}
	nt, hd := uint64(ntok), uint64(headDim)
	stride := uint64(nHeads+2*nKVHeads) * hd
	heads := uint64(nHeads + nKVHeads)
	if qkv.Len != nt*stride || qNorm.Len != hd || kNorm.Len != hd {
		return fmt.Errorf("ops: HeadNormQK: qkv %d, q norm %d, k norm %d elements for %d tokens of %d query and %d key heads of %d: %w",
			qkv.Len, qNorm.Len, kNorm.Len, ntok, nHeads, nKVHeads, headDim, errShape)
	}
	qk := qkv.Sub(0, (nt-1)*stride+heads*hd) // the last row's v heads are not bound
	rows := normRows{ntok: nt, heads: heads, n: hd, xStride: stride, yStride: stride, w2From: uint64(nHeads)}
	return p.norm("HeadNormQK", loader.NormRMS, rows, qk, qNorm, kNorm, qk, Tensor{}, eps, false)
}

// normRows is how a norm dispatch finds its rows: ntok tokens of heads
// rows of n elements each, a token's rows xStride (yStride) elements after
// the previous token's in x (y), its heads from w2From on normalised with
// the second weight.
type normRows struct {
	ntok, heads, n   uint64
	xStride, yStride uint64
	w2From           uint64
}

// norm records a norm of kind over rows, with x and y holding the rows
// (ntok−1 strides plus one token's rows each), bound in blocks of tokens
// that fit one binding. With q given (plain rows of whole q8 blocks, no
// accumulation) it also writes y's rows as q8 rows into q
// (shaders.RMSNormQ8).
func (p *Plan) norm(op string, kind loader.NormKind, rows normRows, x, w, w2, y, q Tensor, eps float32, accumulate bool) error {
	k, ok := shaders.NormKernel(kind)
	if q.Buf != nil {
		k, ok = shaders.NormQ8Kernel(kind)
	}
	if !ok {
		return fmt.Errorf("ops: %s: no kernel for norm %s", op, kind)
	}
	if math.IsNaN(float64(eps)) || math.IsInf(float64(eps), 0) || eps < 0 {
		return fmt.Errorf("ops: %s: epsilon %g is not a finite non-negative number", op, eps)
	}
	tokRow := rows.heads * rows.n // one token's rows
	wr, wo, err := p.binding(w, 0, rows.n, 4)
	if err != nil {
		return fmt.Errorf("ops: %s w: %w", op, err)
	}
	w2r, w2o, err := p.binding(w2, 0, rows.n, 4)
	if err != nil {
		return fmt.Errorf("ops: %s w2: %w", op, err)
	}
	acc := uint32(0)
	if accumulate {
		acc = 1
	}
	step := min(p.maxRows(rows.xStride, 4), p.maxRows(rows.yStride, 4))
	for t0 := uint64(0); t0 < rows.ntok; t0 += step {
		m := min(step, rows.ntok-t0)
		xr, xo, err := p.binding(x, t0*rows.xStride, (m-1)*rows.xStride+tokRow, 4)
		if err != nil {
			return fmt.Errorf("ops: %s x: %w", op, err)
		}
		yr, yo, err := p.binding(y, t0*rows.yStride, (m-1)*rows.yStride+tokRow, 4)
		if err != nil {
			return fmt.Errorf("ops: %s y: %w", op, err)
		}
		pc := shaders.RMSNormParams{N: uint32(rows.n), Rows: uint32(m * rows.heads), Eps: eps, XOff: xo, WOff: wo, YOff: yo,
			Heads: uint32(rows.heads), XStride: uint32(rows.xStride), YStride: uint32(rows.yStride),
			W2From: uint32(rows.w2From), W2Off: w2o, Accumulate: acc}
		ranges := []vk.Range{xr, wr, w2r, yr}
		if q.Buf != nil {
			rw := shaders.Q8RowWords(rows.n)
			qr, qo, err := p.binding(q, t0*rw, m*rw, 4)
			if err != nil {
				return fmt.Errorf("ops: %s q8 rows: %w", op, err)
			}
			pc.QOff = qo
			ranges = append(ranges, qr)
		}
		if err := p.dispatch(k, m*rows.heads, shaders.Push(&pc), ranges...); err != nil {
			return err
		}
	}
	return nil
}

// overlap reports whether a and b share an element of one buffer.
func overlap(a, b Tensor) bool {
	return a.Buf != nil && a.Buf == b.Buf && a.Off < b.Off+b.Len && b.Off < a.Off+a.Len
}
