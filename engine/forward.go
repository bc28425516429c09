package engine

import (
	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/loader"
)

// forward records the transformer over a chunk of n tokens at positions
// pos0…pos0+n−1 (pos0, the token ids and the RoPE angles are read from the
// step buffer when the recording runs):
//
//	x = embed(tokens) · embedScale
//	for each layer l, with cache[l] its ring or linear cache:
//	    h = norm(x) · attn_norm                  // RMSNorm, or LayerNorm (Cohere2)
//	    q, k, v = Wq·h, Wk·h, Wv·h               // one product, q|k|v per row
//	    q, k, v += bq, bk, bv                    // Qwen 2.5
//	    q, k = headnorm(q, k)                    // Gemma 3, Qwen 3: per-head RMSNorm
//	    qs = rope_l(q) at min(pos, N+W−1)        // with N sinks: the query that scores them, at its cache position
//	    q, k = rope_l(q, k)                      // the layer's base and scale (and Llama 3.1's factors); none in Cohere2's global layers
//	    a = Wo · attention(q, qs, cache[l] ∪ {k, v}) // the layer's sinks and band; scores scaled, soft-capped (Gemma 2)
//	    cache[l] ← k, v                          // slot = position mod slots
//	    x += a, or x += post_attention_norm(a)   // Gemma
//	    h = norm(x) · ffn_norm, or h as above    // Cohere2: the same h feeds both
//	    f = Wdown · (act(Wgate·h) ⊙ Wup·h)        // SiLU or GELU-tanh; gate and up in one product
//	    x += f, or x += post_ffw_norm(f)         // Gemma
//	logits = cap(scale · Wout · (norm(x) · output_norm))
//
// Attention reads the chunk's own keys from k and v, and earlier ones from the
// cache; only then is the chunk written into it, so a chunk no longer than
// the smallest cache never overwrites a key that one of its own queries
// still needs. Decode is a chunk of one.
func (s *Session) forward(p *ops.Plan, n int, out output) error {
	sh := stepShape{rows: n, segs: []segment{{n: n, cache: s.cache, pos: s.step, scratch: s.scratch}}}
	switch out {
	case allLogits:
		sh.outRow, sh.outRows = 0, n
	case greedy:
		sh.outRow, sh.outRows = n-1, 1
		sh.argmax = s.tokens.Sub(0, 1)
	default:
		sh.outRow, sh.outRows = n-1, 1
	}
	return s.m.forward(p, &s.stepBufs, sh)
}

// stepBufs are a step's activations and per-step values, for up to as many
// tokens as they were made for, all f32 (or u32) in device memory.
type stepBufs struct {
	x, xb   ops.Tensor // (rows, dim): the residual stream and its normed copy
	qkv     ops.Tensor // (rows, (heads + 2·kvHeads)·headDim): each row q|k|v
	att     ops.Tensor // (rows, heads*headDim)
	hg, hu  ops.Tensor // (rows, 2·ffn) and (rows, ffn): gate and up projections, or both in hg
	logits  ops.Tensor // (output rows, vocab)
	sinkQ   ops.Tensor // (rows, heads*headDim): a layer's queries at their sinks' cache positions (only with sinks)
	scratch ops.Tensor // the ops' scratch (split-K attention's partials), shared by the recordings
	q8      ops.Tensor // x as q8 rows for the integer-dot products (Library.Q8Scratch), shared likewise

	tokens ops.Tensor   // (rows,) u32: the step's token ids
	ropes  []ops.Tensor // per RoPE of the model: (rows, ropeDim/2, 2) f32, cos and sin of each row's angles
}

// segment is one sequence's part of a step: rows [row, row+n) of the
// activations, at positions pos0…pos0+n−1 of its own cache.
type segment struct {
	row, n  int
	cache   *KVCache
	pos     ops.Tensor      // (1,) u32 in device memory: pos0
	scratch ops.Tensor      // this segment's attention scratch (may be empty)
	probe   *attentionProbe // vkrun attention (probe.go): one layer's probabilities; nil normally
}

// stepShape is what one recorded step computes: the segments, which rows
// get logits (the contiguous rows [outRow, outRow+outRows)), and, when
// argmax is set, the greedy id of each of those rows into argmax[i].
type stepShape struct {
	rows            int
	segs            []segment
	outRow, outRows int
	argmax          ops.Tensor // (outRows,) u32, or no buffer
}

// forward records the transformer over a step of sh.rows tokens, which
// belong to one or more sequences (sh.segs): every matrix product runs over
// all rows at once, so each weight is read once per step, while RoPE reads
// each row's own angles and attention and the cache store run per
// sequence, over its own cache.
func (m *Model) forward(p *ops.Plan, b *stepBufs, sh stepShape) error {
	c := m.Config
	w := &m.w
	eps := float32(c.NormEps)
	qDim, kvDim := c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim
	n := sh.rows

	x := b.x.Sub(0, uint64(n*c.Dim))
	h := b.xb.Sub(0, uint64(n*c.Dim))
	qkvDim := qDim + 2*kvDim
	qkv := b.qkv.Sub(0, uint64(n*qkvDim)) // each row q|k|v
	att := b.att.Sub(0, uint64(n*qDim))
	gate := b.hg.Sub(0, uint64(n*c.FFNDim))
	gateUp := b.hg.Sub(0, uint64(2*n*c.FFNDim)) // (n, 2·ffn): gate and up side by side
	up := b.hu.Sub(0, uint64(n*c.FFNDim))
	tokens := b.tokens.Sub(0, uint64(n))
	norm := func(x, w, y ops.Tensor, rows int) {
		if c.Norm == loader.NormLayer {
			p.LayerNorm(x, w, y, rows, c.Dim, eps)
		} else {
			p.RMSNorm(x, w, y, rows, c.Dim, eps)
		}
	}
	attn := ops.AttentionOpts{Scale: float32(c.AttnScale), Softcap: float32(c.AttnSoftcap)}

	if c.EmbedScale != 0 && c.EmbedScale != 1 {
		p.EmbedScaled(w.tokenEmbd, tokens, x, n, float32(c.EmbedScale))
	} else {
		p.Embed(w.tokenEmbd, tokens, x, n)
	}
	for l, lw := range w.layers {
		// Attention.
		norm(x, lw.attnNorm, h, n)
		ropeT, sinkRope := m.layerRope[l], m.sinkRope[l]
		switch {
		case lw.wQKV.Buf != nil && lw.bQKV.Buf == nil && !c.QKNorm && sinkRope < 0 && ropeT >= 0:
			// Q, K and V in one product, and q and k turned in its epilogue
			// where the library can.
			p.MatMulRoPE(lw.wQKV, h, qkv, b.ropes[ropeT].Sub(0, uint64(n*c.RopeDim)), n, c.NumHeads, c.NumKVHeads, c.HeadDim, c.RopeDim, c.Rope)
			ropeT = -1
		case lw.wQKV.Buf != nil: // Q, K and V in one product
			p.MatMul(lw.wQKV, h, qkv, n, false)
		default:
			span := uint64((n - 1) * qkvDim)
			p.MatMulInto(lw.wq, h, qkv.Sub(0, span+uint64(qDim)), n, qkvDim, false)
			p.MatMulInto(lw.wk, h, qkv.Sub(uint64(qDim), span+uint64(kvDim)), n, qkvDim, false)
			p.MatMulInto(lw.wv, h, qkv.Sub(uint64(qDim+kvDim), span+uint64(kvDim)), n, qkvDim, false)
		}
		if lw.bQKV.Buf != nil { // Qwen 2.5: q|k|v += bq|bk|bv
			p.AddBias(qkv, lw.bQKV, n, qkvDim)
		}
		if c.QKNorm {
			p.HeadNormQK(qkv, lw.qNorm, lw.kNorm, n, c.NumHeads, c.NumKVHeads, c.HeadDim, eps)
		}
		if sinkRope >= 0 { // the sinks' query: q at min(pos, sinks + W − 1), from q before its RoPE
			p.RoPEQTo(qkv, b.ropes[sinkRope].Sub(0, uint64(n*c.RopeDim)), b.sinkQ.Sub(0, uint64(n*qDim)), n, c.NumHeads, c.NumKVHeads, c.HeadDim, c.RopeDim, c.Rope)
		}
		if ropeT >= 0 {
			p.RoPEQK(qkv, b.ropes[ropeT].Sub(0, uint64(n*c.RopeDim)), n, c.NumHeads, c.NumKVHeads, c.HeadDim, c.RopeDim, c.Rope)
		}
		for _, sg := range sh.segs { // each sequence over its own cache
			cache := sg.cache.Layer(l)
			q := qkv.Sub(uint64(sg.row*qkvDim), uint64(sg.n*qkvDim))
			if sg.scratch.Buf != nil {
				p.SetScratch(sg.scratch)
			}
			a := attn
			if sinkRope >= 0 {
				a.SinkQuery = b.sinkQ.Sub(uint64(sg.row*qDim), uint64(sg.n*qDim))
			}
			out := att.Sub(uint64(sg.row*qDim), uint64(sg.n*qDim))
			if pr := sg.probe; pr != nil && pr.layer == l {
				p.AttentionQKVProbs(q, cache, sg.pos, out, pr.probs, sg.n, c.NumHeads, c.NumKVHeads, c.HeadDim, a)
				p.StoreKVQKV(q, cache, sg.pos, sg.n, c.NumHeads, c.NumKVHeads, c.HeadDim)
			} else {
				p.AttendQKV(q, cache, sg.pos, out, sg.n, c.NumHeads, c.NumKVHeads, c.HeadDim, a) // attention, then cache ← k, v
			}
		}
		if c.PostNorms { // h is free once q|k|v are made
			p.MatMul(lw.wo, att, h, n, false)
			p.RMSNormAdd(h, lw.postAttnNorm, x, n, c.Dim, eps) // x += post_attention_norm(Wo·att)
		} else {
			p.MatMul(lw.wo, att, x, n, true) // x += Wo·att
		}

		// Feed-forward: down(act(gate·h) ⊙ up·h). Parallel blocks keep
		// the attention's h, the norm of x before attention added to it.
		if !c.Parallel {
			norm(x, lw.ffnNorm, h, n)
		}
		ffnIn := h
		hidden := up
		switch {
		case lw.gateUpGLU: // gate and up interleaved in one product, act(gate)·up in its epilogue
			p.MatMulGLU(lw.wGateUp, ffnIn, up, n, c.Act)
		case lw.wGateUp.Buf != nil: // gate and up in one product
			p.MatMul(lw.wGateUp, ffnIn, gateUp, n, false)
			p.ActMulRows(c.Act, gateUp, up, n, c.FFNDim)
		default:
			p.MatMul(lw.wGate, ffnIn, gate, n, false)
			p.MatMul(lw.wUp, ffnIn, up, n, false)
			p.ActMul(c.Act, gate, up, gate)
			hidden = gate
		}
		if c.PostNorms { // h is free once gate and up are made
			p.MatMul(lw.wDown, hidden, h, n, false)
			p.RMSNormAdd(h, lw.postFFNNorm, x, n, c.Dim, eps) // x += post_ffw_norm(Wdown·hidden)
		} else {
			p.MatMul(lw.wDown, hidden, x, n, true) // x += Wdown·hidden
		}
	}

	// Final norm and logits, for the output rows only (none for a prompt's
	// middle chunks).
	rows := sh.outRows
	if rows == 0 {
		return p.Err()
	}
	x = x.Sub(uint64(sh.outRow*c.Dim), uint64(rows*c.Dim))
	h = h.Sub(0, uint64(rows*c.Dim))
	logits := b.logits.Sub(0, uint64(rows*c.VocabSize))
	norm(x, w.outputNorm, h, rows)
	p.MatMul(w.output, h, logits, rows, false)
	if scale := c.LogitScale; (scale != 0 && scale != 1) || c.FinalSoftcap != 0 {
		if scale == 0 {
			scale = 1
		}
		p.ScaleCap(logits, float32(scale), float32(c.FinalSoftcap))
	}
	if sh.argmax.Buf != nil {
		p.ArgmaxRows(logits, sh.argmax, rows)
	}
	return p.Err()
}
