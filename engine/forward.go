package engine

import (
	"github.com/vkrun/vkrun/shaders"
)

// forward records the transformer over a chunk of n tokens at positions
// pos0…pos0+n−1 (pos0, the token ids and the RoPE angles are read from the
// step buffer when the recording runs):
//
//	x = embed(tokens)
//	for each layer:
//	    h = rmsnorm(x) · attn_norm
//	    q, k, v = Wq·h, Wk·h, Wv·h;  rope(q, k)
//	    x += Wo · attention(q, ring ∪ {k, v})    // banded: the last W keys
//	    ring ← k, v                              // slot = position mod W
//	    h = rmsnorm(x) · ffn_norm
//	    x += Wdown · (silu(Wgate·h) ⊙ Wup·h)
//	logits = Wout · (rmsnorm(x) · output_norm)
//
// Attention reads the chunk's own keys from k and v, and earlier ones from the
// ring; only then is the chunk written into the ring, so a chunk of up to W
// tokens never overwrites a key that one of its own queries still needs.
// Decode is a chunk of one.
func (s *Session) forward(p *shaders.Plan, n int, out output) error {
	c := s.m.Config
	w := &s.m.w
	r := &rec{p: p}
	eps := float32(c.NormEps)
	qDim, kvDim := c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim

	x := s.x.Sub(0, uint64(n*c.Dim))
	h := s.xb.Sub(0, uint64(n*c.Dim))
	q := s.q.Sub(0, uint64(n*qDim))
	k := s.k.Sub(0, uint64(n*kvDim))
	v := s.v.Sub(0, uint64(n*kvDim))
	att := s.att.Sub(0, uint64(n*qDim))
	gate := s.hg.Sub(0, uint64(n*c.FFNDim))
	up := s.hu.Sub(0, uint64(n*c.FFNDim))
	tokens := s.tokens.Sub(0, uint64(n))
	rope := s.rope.Sub(0, uint64(n*c.RopeDim))

	r.Embed(w.tokenEmbd, tokens, x, n)
	for l, lw := range w.layers {
		// Attention.
		r.RMSNorm(x, lw.attnNorm, h, n, c.Dim, eps)
		r.MatMul(lw.wq, h, q, n, false)
		r.MatMul(lw.wk, h, k, n, false)
		r.MatMul(lw.wv, h, v, n, false)
		r.RoPE(q, rope, n, c.NumHeads, c.HeadDim, c.RopeDim)
		r.RoPE(k, rope, n, c.NumKVHeads, c.HeadDim, c.RopeDim)
		r.Attention(q, k, v, s.rings[l], s.step, att, n, c.NumHeads, c.NumKVHeads, c.HeadDim)
		r.StoreKV(k, v, s.rings[l], s.step, n)
		r.MatMul(lw.wo, att, x, n, true) // x += Wo·att

		// Feed-forward (SwiGLU).
		r.RMSNorm(x, lw.ffnNorm, h, n, c.Dim, eps)
		r.MatMul(lw.wGate, h, gate, n, false)
		r.MatMul(lw.wUp, h, up, n, false)
		r.SiluMul(gate, up, gate)
		r.MatMul(lw.wDown, gate, x, n, true) // x += Wdown·h
	}

	// Final norm and logits: for every token, or only the last.
	rows := n
	if out != allLogits {
		x = x.Sub(uint64((n-1)*c.Dim), uint64(c.Dim))
		h = h.Sub(0, uint64(c.Dim))
		rows = 1
	}
	logits := s.logits.Sub(0, uint64(rows*c.VocabSize))
	r.RMSNorm(x, w.outputNorm, h, rows, c.Dim, eps)
	r.MatMul(w.output, h, logits, rows, false)
	if out == greedy {
		r.Argmax(logits, s.tokens.Sub(0, 1))
	}
	return r.err
}

// rec records ops into a plan and keeps the first error, so that forward
// reads as the math does.
type rec struct {
	p   *shaders.Plan
	err error
}

func (r *rec) do(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *rec) Embed(table shaders.Weight, tokens, x shaders.Tensor, n int) {
	if r.err == nil {
		r.do(r.p.Embed(table, tokens, x, n))
	}
}

func (r *rec) RMSNorm(x, w, y shaders.Tensor, rows, n int, eps float32) {
	if r.err == nil {
		r.do(r.p.RMSNorm(x, w, y, rows, n, eps))
	}
}

func (r *rec) MatMul(w shaders.Weight, x, y shaders.Tensor, n int, accumulate bool) {
	if r.err == nil {
		r.do(r.p.MatMul(w, x, y, n, accumulate))
	}
}

func (r *rec) RoPE(x, rope shaders.Tensor, n, heads, headDim, ropeDim int) {
	if r.err == nil {
		r.do(r.p.RoPE(x, rope, n, heads, headDim, ropeDim))
	}
}

func (r *rec) Attention(q, k, v shaders.Tensor, ring shaders.Ring, step, out shaders.Tensor, n, heads, kvHeads, headDim int) {
	if r.err == nil {
		r.do(r.p.Attention(q, k, v, ring, step, out, n, heads, kvHeads, headDim))
	}
}

func (r *rec) StoreKV(k, v shaders.Tensor, ring shaders.Ring, step shaders.Tensor, n int) {
	if r.err == nil {
		r.do(r.p.StoreKV(k, v, ring, step, n))
	}
}

func (r *rec) SiluMul(g, u, h shaders.Tensor) {
	if r.err == nil {
		r.do(r.p.SiluMul(g, u, h))
	}
}

func (r *rec) Argmax(x, out shaders.Tensor) {
	if r.err == nil {
		r.do(r.p.Argmax(x, out))
	}
}
