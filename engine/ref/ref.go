package ref

import (
	"fmt"
	"math"
	"slices"

	"github.com/vkrun/vkrun/loader"
)

// Model is a model ready for the reference forward pass. It is immutable
// after Load and safe for concurrent use; each Forward call and each State
// has its own scratch memory.
type Model struct {
	Config  loader.Config
	Weights Weights
	// Sinks keeps the first Sinks positions in every local layer's keys
	// beside its band (attention sinks): the query at position i attends
	// to the keys j ≤ i with j < Sinks or j ≥ i − W + 1, each once. Set it
	// before Forward or NewState; 0 is none.
	Sinks int
	// Positions chooses the RoPE positions of a local layer's keys and
	// query: AbsolutePositions (the zero value) or CachePositions. Global
	// layers always use absolute positions. Set it before Forward or
	// NewState.
	Positions Positions

	// invFreq[l][i] = θ_l^(−2i/RopeDim) / RopeFreqFactors[i], the RoPE
	// angle per position of pair i in layer l (no division without
	// factors); nil for a layer without RoPE. Layers of the same θ share
	// one slice.
	invFreq [][]float64 // (layer, ropeDim/2)
}

// Positions is the choice of RoPE positions in a local layer (Window > 0),
// which matters once sinks sit beside the band (issue 14).
type Positions int

const (
	// AbsolutePositions rotates every query and key by its absolute
	// position in the sequence, once, when it is computed: a sink key
	// keeps position j < Sinks while the query moves on.
	AbsolutePositions Positions = iota
	// CachePositions is StreamingLLM's choice (Xiao et al. 2023): keys
	// are kept un-rotated, and at every query the keys it attends to (the
	// sinks, then the band, count of them in absolute order) are rotated
	// by their index in that list, 0 … count−1, and the query by count−1,
	// the index of its own key. While the sinks and the band are
	// contiguous (FirstKey ≤ Sinks) the indices are the absolute
	// positions, bit for bit; past that every query sees the same
	// positions 0 … Sinks+W−1 however far into the sequence it is.
	CachePositions
)

// String names the mode as the measurement tables do.
func (p Positions) String() string {
	switch p {
	case AbsolutePositions:
		return "absolute"
	case CachePositions:
		return "cache"
	}
	return fmt.Sprintf("Positions(%d)", int(p))
}

// Weights holds every tensor dequantised to float32. Matrices are row-major
// (out, in): a GGUF tensor of Shape {in, out}. Per-layer tensors are stacked
// along a leading layer axis. A tensor the config does not use (FFNNorm of
// a Parallel model, the post norms without PostNorms, QNorm and KNorm
// without QKNorm, the biases without QKVBias) is empty.
type Weights struct {
	TokenEmbedding []float32 // (vocab, dim)

	AttnNorm []float32 // (layer, dim)
	Wq       []float32 // (layer, heads*headDim, dim)
	Wk       []float32 // (layer, kvHeads*headDim, dim)
	Wv       []float32 // (layer, kvHeads*headDim, dim)
	BQ       []float32 // (layer, heads*headDim) attn_q.bias; QKVBias only
	BK       []float32 // (layer, kvHeads*headDim) attn_k.bias; QKVBias only
	BV       []float32 // (layer, kvHeads*headDim) attn_v.bias; QKVBias only
	QNorm    []float32 // (layer, headDim) attn_q_norm; QKNorm only
	KNorm    []float32 // (layer, headDim) attn_k_norm; QKNorm only
	Wo       []float32 // (layer, dim, heads*headDim)

	PostAttnNorm []float32 // (layer, dim) post_attention_norm; PostNorms only

	FFNNorm []float32 // (layer, dim); empty when Parallel
	WGate   []float32 // (layer, ffnDim, dim)
	WUp     []float32 // (layer, ffnDim, dim)
	WDown   []float32 // (layer, dim, ffnDim)

	PostFFNNorm []float32 // (layer, dim) post_ffw_norm; PostNorms only

	OutputNorm []float32 // (dim,)
	// Output is the classifier; it is TokenEmbedding itself (same backing
	// array) when the file has no output.weight (tied embeddings).
	Output []float32 // (vocab, dim)
}

// Load dequantises m's weights: the tensors its config's arch has (see
// Weights), read by name. A missing tensor is an error that names it. The
// RoPE frequency factors come from the config (the loader reads
// rope_freqs.weight into it). m may be closed afterwards.
func Load(m *loader.Model) (*Model, error) {
	c := m.Config
	if err := c.Validate(); err != nil { // also every layer spec, norm kind and activation
		return nil, fmt.Errorf("ref: %w", err)
	}
	dim, hd, q, kv, ffn, vocab := c.Dim, c.HeadDim, c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim, c.FFNDim, c.VocabSize

	var firstErr error
	// matrix reads the tensor name of GGUF shape {in, out} (1-D {in} when
	// out == 0) and appends its values to dst.
	matrix := func(dst []float32, name string, in, out int) []float32 {
		if firstErr != nil {
			return dst
		}
		t := m.Tensor(name)
		if t == nil {
			firstErr = fmt.Errorf("ref: tensor %s is missing", name)
			return dst
		}
		want := []uint64{uint64(in), uint64(out)}
		if out == 0 {
			want = want[:1]
		}
		if !slices.Equal(t.Shape, want) {
			firstErr = fmt.Errorf("ref: tensor %s has shape %v, want %v", name, t.Shape, want)
			return dst
		}
		v, err := t.Float32s()
		if err != nil {
			firstErr = fmt.Errorf("ref: %w", err)
			return dst
		}
		return append(dst, v...)
	}

	var w Weights
	w.TokenEmbedding = matrix(nil, "token_embd.weight", dim, vocab)
	w.OutputNorm = matrix(nil, "output_norm.weight", dim, 0)
	if m.Tensor("output.weight") != nil {
		w.Output = matrix(nil, "output.weight", dim, vocab)
	} else {
		w.Output = w.TokenEmbedding
	}
	for l := 0; l < c.NumLayers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		w.AttnNorm = matrix(w.AttnNorm, p+"attn_norm.weight", dim, 0)
		w.Wq = matrix(w.Wq, p+"attn_q.weight", dim, q)
		w.Wk = matrix(w.Wk, p+"attn_k.weight", dim, kv)
		w.Wv = matrix(w.Wv, p+"attn_v.weight", dim, kv)
		if c.QKVBias {
			w.BQ = matrix(w.BQ, p+"attn_q.bias", q, 0)
			w.BK = matrix(w.BK, p+"attn_k.bias", kv, 0)
			w.BV = matrix(w.BV, p+"attn_v.bias", kv, 0)
		}
		if c.QKNorm {
			w.QNorm = matrix(w.QNorm, p+"attn_q_norm.weight", hd, 0)
			w.KNorm = matrix(w.KNorm, p+"attn_k_norm.weight", hd, 0)
		}
		w.Wo = matrix(w.Wo, p+"attn_output.weight", q, dim)
		if c.PostNorms {
			w.PostAttnNorm = matrix(w.PostAttnNorm, p+"post_attention_norm.weight", dim, 0)
		}
		if !c.Parallel {
			w.FFNNorm = matrix(w.FFNNorm, p+"ffn_norm.weight", dim, 0)
		}
		w.WGate = matrix(w.WGate, p+"ffn_gate.weight", dim, ffn)
		w.WUp = matrix(w.WUp, p+"ffn_up.weight", dim, ffn)
		w.WDown = matrix(w.WDown, p+"ffn_down.weight", ffn, dim)
		if c.PostNorms {
			w.PostFFNNorm = matrix(w.PostFFNNorm, p+"post_ffw_norm.weight", dim, 0)
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return New(c, w)
}

// New makes a Model from a config and weights already in memory (tests
// build variants of a loaded model this way). It checks every length
// against the config, including that the tensors the config does not use
// are empty.
func New(c loader.Config, w Weights) (*Model, error) {
	if err := c.Validate(); err != nil { // also every layer spec, norm kind and activation
		return nil, fmt.Errorf("ref: %w", err)
	}
	dim, hd, q, kv, ffn, vocab, L := c.Dim, c.HeadDim, c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim, c.FFNDim, c.VocabSize, c.NumLayers
	// when is n if the config uses the tensor, else 0.
	when := func(used bool, n int) int {
		if used {
			return n
		}
		return 0
	}
	for _, f := range []struct {
		name string
		got  int
		want int
	}{
		{"TokenEmbedding", len(w.TokenEmbedding), vocab * dim},
		{"AttnNorm", len(w.AttnNorm), L * dim},
		{"Wq", len(w.Wq), L * q * dim},
		{"Wk", len(w.Wk), L * kv * dim},
		{"Wv", len(w.Wv), L * kv * dim},
		{"BQ", len(w.BQ), when(c.QKVBias, L*q)},
		{"BK", len(w.BK), when(c.QKVBias, L*kv)},
		{"BV", len(w.BV), when(c.QKVBias, L*kv)},
		{"QNorm", len(w.QNorm), when(c.QKNorm, L*hd)},
		{"KNorm", len(w.KNorm), when(c.QKNorm, L*hd)},
		{"Wo", len(w.Wo), L * dim * q},
		{"PostAttnNorm", len(w.PostAttnNorm), when(c.PostNorms, L*dim)},
		{"FFNNorm", len(w.FFNNorm), when(!c.Parallel, L*dim)},
		{"WGate", len(w.WGate), L * ffn * dim},
		{"WUp", len(w.WUp), L * ffn * dim},
		{"WDown", len(w.WDown), L * dim * ffn},
		{"PostFFNNorm", len(w.PostFFNNorm), when(c.PostNorms, L*dim)},
		{"OutputNorm", len(w.OutputNorm), dim},
		{"Output", len(w.Output), vocab * dim},
	} {
		if f.got != f.want {
			return nil, fmt.Errorf("ref: weights %s has %d values, want %d", f.name, f.got, f.want)
		}
	}

	// One table of inverse frequencies per distinct θ, each divided by the
	// same frequency factors (Validate checked their count and values).
	byTheta := map[float64][]float64{}
	invFreq := make([][]float64, L)
	for l := range invFreq {
		theta := c.Layer(l).RopeTheta
		if theta == 0 {
			continue // no RoPE in this layer
		}
		if byTheta[theta] == nil {
			byTheta[theta] = ropeFreqs(theta, c.RopeDim, c.RopeFreqFactors)
		}
		invFreq[l] = byTheta[theta]
	}
	return &Model{Config: c, Weights: w, invFreq: invFreq}, nil
}

// FirstKey is the first key position the query at position pos attends to
// under window w: max(0, pos−w+1), or 0 when w == 0 (full attention). The
// band is FirstKey(w, pos) … pos.
func FirstKey(w, pos int) int {
	if w <= 0 {
		return 0
	}
	return max(0, pos-w+1)
}

// Forward returns the logits of every position of tokens, token i being at
// absolute position i: logits[i] (vocab,) predicts token i+1. It runs layer
// by layer over the whole sequence; each query attends to its layer's band
// of the full history.
func (m *Model) Forward(tokens []int) ([][]float32, error) {
	if err := m.checkPositions(); err != nil {
		return nil, err
	}
	for i, tok := range tokens {
		if err := m.checkToken(tok); err != nil {
			return nil, fmt.Errorf("ref: position %d: %w", i, err)
		}
	}
	c := m.Config
	n := len(tokens)
	s := m.newRunState()

	x := make([][]float32, n) // (seq, dim) the residual stream
	for i, tok := range tokens {
		x[i] = m.embed(tok)
	}
	q := make([][]float32, n)      // (seq, heads*headDim) this layer's queries
	keys := make([][]float32, n)   // (seq, kvHeads*headDim) this layer's keys, rotated unless cacheRoPE
	values := make([][]float32, n) // (seq, kvHeads*headDim)
	for l := 0; l < c.NumLayers; l++ {
		for i := range x {
			q[i], keys[i], values[i] = m.qkv(s, l, i, x[i])
		}
		for i := range x {
			m.block(s, l, i, x[i], q[i], keys, values)
		}
	}
	logits := make([][]float32, n)
	for i := range x {
		logits[i] = m.head(s, x[i])
	}
	return logits, nil
}

// State is an incremental decode: Step feeds one token at the next
// position. It keeps the K and V of every position seen, per layer, indexed
// by absolute position (never evicted, no ring), and attends over the same
// bands as Forward, so Step's logits equal Forward's bit for bit.
type State struct {
	m      *Model
	s      *runState
	keys   [][][]float32 // (layer, pos, kvHeads*headDim) keys, rotated unless cacheRoPE(layer)
	values [][][]float32 // (layer, pos, kvHeads*headDim)
}

// NewState starts an empty sequence.
func (m *Model) NewState() *State {
	return &State{
		m:      m,
		s:      m.newRunState(),
		keys:   make([][][]float32, m.Config.NumLayers),
		values: make([][][]float32, m.Config.NumLayers),
	}
}

// Pos is the number of tokens fed so far: the position the next Step must
// give.
func (st *State) Pos() int {
	if len(st.keys) == 0 {
		return 0
	}
	return len(st.keys[0])
}

// Step feeds token at absolute position pos, which must be Pos(), and
// returns that position's logits (vocab,).
func (st *State) Step(token, pos int) ([]float32, error) {
	m := st.m
	if err := m.checkPositions(); err != nil {
		return nil, err
	}
	if err := m.checkToken(token); err != nil {
		return nil, fmt.Errorf("ref: position %d: %w", pos, err)
	}
	if pos != st.Pos() {
		return nil, fmt.Errorf("ref: step at position %d, want %d (positions are consecutive from 0)", pos, st.Pos())
	}
	x := m.embed(token) // (dim,)
	for l := 0; l < m.Config.NumLayers; l++ {
		q, k, v := m.qkv(st.s, l, pos, x)
		st.keys[l] = append(st.keys[l], k)
		st.values[l] = append(st.values[l], v)
		m.block(st.s, l, pos, x, q, st.keys[l], st.values[l])
	}
	return m.head(st.s, x), nil
}

// Argmax is greedy sampling: the index of the largest logit, the first one
// on ties (as llama2.c), or -1 for an empty slice. NaNs are never chosen
// unless every value is NaN (then 0).
func Argmax(logits []float32) int {
	if len(logits) == 0 {
		return -1
	}
	best := 0
	for i, v := range logits {
		if v > logits[best] || (logits[best] != logits[best] && v == v) {
			best = i
		}
	}
	return best
}

func (m *Model) checkPositions() error {
	if m.Positions != AbsolutePositions && m.Positions != CachePositions {
		return fmt.Errorf("ref: unknown Positions %d (want AbsolutePositions or CachePositions)", int(m.Positions))
	}
	return nil
}

// cacheRoPE reports whether layer l rotates q and k at attention time, by
// cache index (CachePositions in a local layer with RoPE), rather than once
// in qkv by absolute position.
func (m *Model) cacheRoPE(l int) bool {
	return m.Positions == CachePositions && m.Config.Layer(l).Window > 0 && m.invFreq[l] != nil
}

func (m *Model) checkToken(tok int) error {
	if tok < 0 || tok >= m.Config.VocabSize {
		return fmt.Errorf("token %d outside the vocabulary of %d", tok, m.Config.VocabSize)
	}
	return nil
}

// runState is the scratch memory of one position's pass through a layer,
// as llama2.c's RunState. The outputs that outlive a call (q, k, v, logits)
// are allocated fresh.
type runState struct {
	xb     []float32   // (dim,) normed residual: the input of attention and FFN
	att    []float32   // (heads*headDim,) attention output, heads concatenated
	xb2    []float32   // (dim,) the attention branch's output, Wo·att (post-normed with PostNorms)
	xb3    []float32   // (dim,) the FFN branch's output (post-normed with PostNorms)
	hb     []float32   // (ffnDim,) gate, then act(gate)·up
	hb2    []float32   // (ffnDim,) up
	scores []float64   // (keys,) one head's scores, then softmax weights; grows
	keyPos []int       // (keys,) the positions of the keys a query attends to, in order; grows
	keyVec [][]float32 // (keys,) the key vectors attended to, in keyPos order (rotated copies with cacheRoPE); grows
	kRot   []float32   // (keys*kvHeads*headDim,) cacheRoPE: the keys rotated by cache index; grows
	qRot   []float32   // (heads*headDim,) cacheRoPE: the query rotated by its cache index
}

func (m *Model) newRunState() *runState {
	c := m.Config
	return &runState{
		xb:   make([]float32, c.Dim),
		att:  make([]float32, c.NumHeads*c.HeadDim),
		xb2:  make([]float32, c.Dim),
		xb3:  make([]float32, c.Dim),
		hb:   make([]float32, c.FFNDim),
		hb2:  make([]float32, c.FFNDim),
		qRot: make([]float32, c.NumHeads*c.HeadDim),
	}
}

// embed returns a copy of token's embedding row, times EmbedScale when set:
// the residual stream (dim,). The scale is a float32 multiply, as llama.cpp
// scales its f32 embeddings.
func (m *Model) embed(token int) []float32 {
	d := m.Config.Dim
	x := append([]float32(nil), m.Weights.TokenEmbedding[token*d:(token+1)*d]...)
	if s := m.Config.EmbedScale; s != 0 {
		for i := range x {
			x[i] *= float32(s)
		}
	}
	return x
}

// qkv computes layer l's query (heads*headDim,), key and value
// (kvHeads*headDim,) for the residual x (dim,) at absolute position pos:
// attn_norm, the three products (plus their biases with QKVBias), then
// (QKNorm) the RMSNorm of every q and k head, then the layer's RoPE of q
// and k (not here for a cacheRoPE layer: attention rotates copies).
func (m *Model) qkv(s *runState, l, pos int, x []float32) (q, k, v []float32) {
	c, w := m.Config, &m.Weights
	dim, hd, qd, kvd := c.Dim, c.HeadDim, c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim
	norm(c.Norm, s.xb, x, w.AttnNorm[l*dim:(l+1)*dim], c.NormEps)
	q = make([]float32, qd)
	k = make([]float32, kvd)
	v = make([]float32, kvd)
	var bq, bk, bv []float32 // nil: no bias
	if c.QKVBias {
		bq, bk, bv = w.BQ[l*qd:(l+1)*qd], w.BK[l*kvd:(l+1)*kvd], w.BV[l*kvd:(l+1)*kvd]
	}
	matmulBias(q, s.xb, w.Wq[l*qd*dim:(l+1)*qd*dim], bq)
	matmulBias(k, s.xb, w.Wk[l*kvd*dim:(l+1)*kvd*dim], bk)
	matmulBias(v, s.xb, w.Wv[l*kvd*dim:(l+1)*kvd*dim], bv)
	if c.QKNorm {
		qn, kn := w.QNorm[l*hd:(l+1)*hd], w.KNorm[l*hd:(l+1)*hd]
		for h := 0; h < c.NumHeads; h++ {
			rmsnorm(q[h*hd:(h+1)*hd], q[h*hd:(h+1)*hd], qn, c.NormEps)
		}
		for h := 0; h < c.NumKVHeads; h++ {
			rmsnorm(k[h*hd:(h+1)*hd], k[h*hd:(h+1)*hd], kn, c.NormEps)
		}
	}
	if f := m.invFreq[l]; f != nil && !m.cacheRoPE(l) {
		p := float64(pos) / c.Layer(l).RopeScale
		rope(q, hd, c.Rope, f, p)
		rope(k, hd, c.Rope, f, p)
	}
	return q, k, v
}

// block finishes layer l for the query at position pos, into x (dim,):
// attention of q over keys/values (indexed by absolute position, at least
// pos+1 of them; only the layer's band FirstKey … pos is read) and the
// output projection, then the gated FFN, each added to x:
//
//	sequential:           x += post(Wo·attn);  x += post(ffn(norm(x)·ffn_norm))
//	Parallel (Cohere2):   n = norm(x)·attn_norm;  x += Wo·attn;  x += ffn(n)
//
// where post is the post_attention_norm / post_ffw_norm with PostNorms and
// nothing otherwise.
func (m *Model) block(s *runState, l, pos int, x, q []float32, keys, values [][]float32) {
	c, w := m.Config, &m.Weights
	dim, qd := c.Dim, c.NumHeads*c.HeadDim

	m.attention(s, l, pos, q, keys, values)
	matmul(s.xb2, s.att, w.Wo[l*dim*qd:(l+1)*dim*qd])
	if c.PostNorms {
		norm(c.Norm, s.xb2, s.xb2, w.PostAttnNorm[l*dim:(l+1)*dim], c.NormEps)
	}

	if c.Parallel {
		// The FFN reads the same attn_norm of x as q, k and v did
		// (recomputed: x is unchanged since qkv).
		norm(c.Norm, s.xb, x, w.AttnNorm[l*dim:(l+1)*dim], c.NormEps)
		m.ffn(s, l)
		add(x, s.xb2)
		add(x, s.xb3)
		return
	}
	add(x, s.xb2)
	norm(c.Norm, s.xb, x, w.FFNNorm[l*dim:(l+1)*dim], c.NormEps)
	m.ffn(s, l)
	add(x, s.xb3)
}

// ffn is layer l's gated FFN of s.xb (dim,) into s.xb3 (dim,):
// Wdown·(act(Wgate·xb) ⊙ Wup·xb), then post_ffw_norm with PostNorms.
func (m *Model) ffn(s *runState, l int) {
	c, w := m.Config, &m.Weights
	dim, ffn := c.Dim, c.FFNDim
	matmul(s.hb, s.xb, w.WGate[l*ffn*dim:(l+1)*ffn*dim])
	matmul(s.hb2, s.xb, w.WUp[l*ffn*dim:(l+1)*ffn*dim])
	for i, g := range s.hb {
		s.hb[i] = float32(activate(c.Act, float64(g)) * float64(s.hb2[i]))
	}
	matmul(s.xb3, s.hb, w.WDown[l*dim*ffn:(l+1)*dim*ffn])
	if c.PostNorms {
		norm(c.Norm, s.xb3, s.xb3, w.PostFFNNorm[l*dim:(l+1)*dim], c.NormEps)
	}
}

// attention writes into s.att (heads*headDim,) each query head's
// softmax(sⱼ)·vⱼ over layer l's keys (attendedKeys: the sinks, then the
// band), with the score sⱼ = (q·kⱼ)·QueryScale, soft-capped to
// c·tanh(sⱼ/c) when AttnSoftcap = c > 0. Query head h reads KV head
// h/(heads/kvHeads). Other keys are not touched at all. In a cacheRoPE
// layer, q and the keys arrive un-rotated: key t of the list is rotated by
// position t and q by the last index, on copies (the stored keys stay
// un-rotated, since the next query gives them other indices).
func (m *Model) attention(s *runState, l, pos int, q []float32, keys, values [][]float32) {
	c := m.Config
	hd, group, kvd := c.HeadDim, c.NumHeads/c.NumKVHeads, c.NumKVHeads*c.HeadDim
	s.keyPos = m.attendedKeys(s.keyPos[:0], l, pos)
	n := len(s.keyPos)
	s.keyVec = s.keyVec[:0]
	if m.cacheRoPE(l) {
		f, scale := m.invFreq[l], c.Layer(l).RopeScale
		if cap(s.kRot) < n*kvd {
			s.kRot = make([]float32, n*kvd, 2*n*kvd)
		}
		for t, j := range s.keyPos {
			k := s.kRot[t*kvd : (t+1)*kvd]
			copy(k, keys[j])
			rope(k, hd, c.Rope, f, float64(t)/scale)
			s.keyVec = append(s.keyVec, k)
		}
		copy(s.qRot, q)
		rope(s.qRot, hd, c.Rope, f, float64(n-1)/scale)
		q = s.qRot
	} else {
		for _, j := range s.keyPos {
			s.keyVec = append(s.keyVec, keys[j])
		}
	}
	scale, capping := c.QueryScale(), c.AttnSoftcap
	if cap(s.scores) < n {
		s.scores = make([]float64, n, 2*n)
	}
	scores := s.scores[:n] // scores[t] is key keyPos[t]'s
	for h := 0; h < c.NumHeads; h++ {
		qh := q[h*hd : (h+1)*hd]
		kvOff := (h / group) * hd
		maxScore := math.Inf(-1)
		for t, key := range s.keyVec {
			kh := key[kvOff : kvOff+hd]
			var dot float64
			for d := range qh {
				dot += float64(qh[d]) * float64(kh[d])
			}
			sc := dot * scale
			if capping > 0 {
				sc = softcap(sc, capping)
			}
			scores[t] = sc
			maxScore = max(maxScore, sc)
		}
		var sum float64
		for t := range scores {
			scores[t] = math.Exp(scores[t] - maxScore)
			sum += scores[t]
		}
		out := s.att[h*hd : (h+1)*hd]
		for d := range out {
			var acc float64
			for t, j := range s.keyPos {
				acc += scores[t] / sum * float64(values[j][kvOff+d])
			}
			out[d] = float32(acc)
		}
	}
}

// attendedKeys appends to dst the absolute positions of the keys that the
// query at pos attends to in layer l, in the order attention reads them:
// the sinks j < min(Sinks, lo), then the band lo … pos, lo =
// FirstKey(Window, pos). Each key appears once, there are at most
// Sinks + Window of them in a local layer, and the last is pos. Under
// CachePositions a key's index in this list is its RoPE position.
func (m *Model) attendedKeys(dst []int, l, pos int) []int {
	lo := FirstKey(m.Config.Layer(l).Window, pos)
	for j := range min(m.Sinks, lo) {
		dst = append(dst, j)
	}
	for j := lo; j <= pos; j++ {
		dst = append(dst, j)
	}
	return dst
}

// head is the final norm and classifier, x (dim,) -> logits (vocab,):
// Output·(norm(x)·output_norm), then times LogitScale when set, then
// soft-capped to c·tanh(logit/c) when FinalSoftcap = c > 0 (llama.cpp's
// order; Cohere2 has only the scale, Gemma 2 only the cap).
func (m *Model) head(s *runState, x []float32) []float32 {
	c, w := m.Config, &m.Weights
	norm(c.Norm, s.xb, x, w.OutputNorm, c.NormEps)
	logits := make([]float32, c.VocabSize)
	matmul(logits, s.xb, w.Output)
	if c.LogitScale != 0 {
		for i, v := range logits {
			logits[i] = float32(float64(v) * c.LogitScale)
		}
	}
	if c.FinalSoftcap > 0 {
		for i, v := range logits {
			logits[i] = float32(softcap(float64(v), c.FinalSoftcap))
		}
	}
	return logits
}
