package engine

import (
	"github.com/vkrun/vkrun/engine/ops"
)

// forward records the transformer over a chunk of n tokens at positions
// pos0…pos0+n−1 (pos0, the token ids and the RoPE angles are read from the
// step buffer when the recording runs):
//
//	x = embed(tokens)
//	for each layer:
//	    h = rmsnorm(x) · attn_norm
//	    q, k, v = Wq·h, Wk·h, Wv·h;  rope(q, k)   // one product, q|k|v per row
//	    x += Wo · attention(q, ring ∪ {k, v})    // banded: the last W keys
//	    ring ← k, v                              // slot = position mod W
//	    h = rmsnorm(x) · ffn_norm
//	    x += Wdown · (silu(Wgate·h) ⊙ Wup·h)      // gate and up: one product
//	logits = Wout · (rmsnorm(x) · output_norm)
//
// Attention reads the chunk's own keys from k and v, and earlier ones from the
// ring; only then is the chunk written into the ring, so a chunk of up to W
// tokens never overwrites a key that one of its own queries still needs.
// Decode is a chunk of one.
func (s *Session) forward(p *ops.Plan, n int, out output) error {
	c := s.m.Config
	w := &s.m.w
	eps := float32(c.NormEps)
	qDim, kvDim := c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim

	x := s.x.Sub(0, uint64(n*c.Dim))
	h := s.xb.Sub(0, uint64(n*c.Dim))
	qkvDim := qDim + 2*kvDim
	qkv := s.qkv.Sub(0, uint64(n*qkvDim)) // each row q|k|v
	att := s.att.Sub(0, uint64(n*qDim))
	gate := s.hg.Sub(0, uint64(n*c.FFNDim))
	gateUp := s.hg.Sub(0, uint64(2*n*c.FFNDim)) // (n, 2·ffn): gate and up side by side
	up := s.hu.Sub(0, uint64(n*c.FFNDim))
	tokens := s.tokens.Sub(0, uint64(n))
	rope := s.rope.Sub(0, uint64(n*c.RopeDim))

	p.Embed(w.tokenEmbd, tokens, x, n)
	for l, lw := range w.layers {
		// Attention.
		p.RMSNorm(x, lw.attnNorm, h, n, c.Dim, eps)
		if lw.wQKV.Buf != nil { // Q, K and V in one product
			p.MatMul(lw.wQKV, h, qkv, n, false)
		} else {
			span := uint64((n - 1) * qkvDim)
			p.MatMulInto(lw.wq, h, qkv.Sub(0, span+uint64(qDim)), n, qkvDim, false)
			p.MatMulInto(lw.wk, h, qkv.Sub(uint64(qDim), span+uint64(kvDim)), n, qkvDim, false)
			p.MatMulInto(lw.wv, h, qkv.Sub(uint64(qDim+kvDim), span+uint64(kvDim)), n, qkvDim, false)
		}
		p.RoPEQK(qkv, rope, n, c.NumHeads, c.NumKVHeads, c.HeadDim, c.RopeDim)
		p.AttentionQKV(qkv, s.rings[l], s.step, att, n, c.NumHeads, c.NumKVHeads, c.HeadDim)
		p.StoreKVQKV(qkv, s.rings[l], s.step, n, c.NumHeads, c.NumKVHeads, c.HeadDim)
		p.MatMul(lw.wo, att, x, n, true) // x += Wo·att

		// Feed-forward (SwiGLU).
		p.RMSNorm(x, lw.ffnNorm, h, n, c.Dim, eps)
		if lw.wGateUp.Buf != nil { // gate and up in one product
			p.MatMul(lw.wGateUp, h, gateUp, n, false)
			p.SiluMulRows(gateUp, up, n, c.FFNDim)
			p.MatMul(lw.wDown, up, x, n, true) // x += Wdown·h
			continue
		}
		p.MatMul(lw.wGate, h, gate, n, false)
		p.MatMul(lw.wUp, h, up, n, false)
		p.SiluMul(gate, up, gate)
		p.MatMul(lw.wDown, gate, x, n, true) // x += Wdown·h
	}

	// Final norm and logits: for every token, or only the last.
	rows := n
	if out != allLogits {
		x = x.Sub(uint64((n-1)*c.Dim), uint64(c.Dim))
		h = h.Sub(0, uint64(c.Dim))
		rows = 1
	}
	logits := s.logits.Sub(0, uint64(rows*c.VocabSize))
	p.RMSNorm(x, w.outputNorm, h, rows, c.Dim, eps)
	p.MatMul(w.output, h, logits, rows, false)
	if out == greedy {
		p.Argmax(logits, s.tokens.Sub(0, 1))
	}
	return p.Err()
}
