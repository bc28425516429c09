package ref

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vkrun/vkrun/internal/testmodel"
	"github.com/vkrun/vkrun/loader"
)

// ---- helpers ----

// tinyConfig is the small synthetic model of the receptive-field test.
var tinyConfig = loader.Config{
	Dim: 32, NumLayers: 3, NumHeads: 4, NumKVHeads: 2, HeadDim: 8, FFNDim: 48, VocabSize: 64, Window: 3,
}

// synthetic writes a random model of cfg into a temporary directory and
// returns its path.
func synthetic(t *testing.T, cfg loader.Config, dt loader.DType, seed int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "synthetic.gguf")
	require.NoError(t, loader.WriteSynthetic(path, cfg, dt, seed, nil))
	return path
}

// load opens path (with its window replaced by window when window >= 0) and
// dequantises it.
func load(t *testing.T, path string, window int) *Model {
	t.Helper()
	var opts []loader.Option
	if window >= 0 {
		opts = append(opts, loader.WithWindow(window))
	}
	lm, err := loader.Open(path, opts...)
	require.NoError(t, err)
	defer lm.Close()
	m, err := Load(lm)
	require.NoError(t, err)
	return m
}

// randomTokens returns n ids in [3, vocab) (no BOS/EOS), reproducibly.
func randomTokens(n, vocab int, seed uint64) []int {
	r := rand.New(rand.NewPCG(seed, 0))
	toks := make([]int, n)
	for i := range toks {
		toks[i] = 3 + r.IntN(vocab-3)
	}
	return toks
}

// sameBits reports whether a and b are identical bit for bit.
func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// steps runs tokens through a fresh State, one Step per position.
func steps(t *testing.T, m *Model, tokens []int) [][]float32 {
	t.Helper()
	st := m.NewState()
	out := make([][]float32, len(tokens))
	for pos, tok := range tokens {
		var err error
		out[pos], err = st.Step(tok, pos)
		require.NoError(t, err)
	}
	return out
}

func forward(t *testing.T, m *Model, tokens []int) [][]float32 {
	t.Helper()
	logits, err := m.Forward(tokens)
	require.NoError(t, err)
	require.Len(t, logits, len(tokens))
	return logits
}

// ---- golden: stories260K against llama2.c ----

// llama2cPiece is what llama2.c's run.c prints for token id after prev:
// decode() followed by safe_printf(). It is written out here, rather than
// taken from Tokenizer.Decode, because this test pins llama2.c's behaviour:
//   - tokenizer.bin stores pieces with real spaces where GGUF has "▁", and
//     BOS and EOS as "\n<s>\n" and "\n</s>\n" (llama2.c tokenizer.py export);
//   - after BOS (id 1) a leading space is dropped;
//   - a piece "<0xNN>" is the raw byte NN;
//   - safe_printf prints nothing for a one-byte piece that is neither
//     isprint nor isspace (C locale: control bytes and every byte ≥ 0x80).
func llama2cPiece(tok *loader.Tokenizer, prev, id int) string {
	p := strings.ReplaceAll(tok.Piece(id), "▁", " ")
	switch id {
	case tok.BOS():
		p = "\n<s>\n"
	case tok.EOS():
		p = "\n</s>\n"
	}
	if prev == 1 && strings.HasPrefix(p, " ") {
		p = p[1:]
	}
	var b byte
	if n, err := fmt.Sscanf(p, "<0x%02X>", &b); err == nil && n == 1 {
		p = string([]byte{b})
	}
	if len(p) == 1 {
		c := p[0]
		printable := c >= 0x20 && c < 0x7f
		space := c == ' ' || (c >= '\t' && c <= '\r')
		if !printable && !space {
			return ""
		}
	}
	return p
}

// TestGoldenStories260K reproduces llama2.c's published test output:
// `./run stories260K.bin -z tok512.bin -t 0.0 -n 200` (test_all.py).
//
// llama2.c's generate() with an empty prompt: the prompt is [BOS]; the loop
//
//	while (pos < steps) { logits = forward(token, pos); next = argmax; pos++;
//	                      if (next == 1) break; print decode(token, next); token = next; }
//
// runs forward at positions 0…199 (200 forwards, BOS at position 0) and
// prints the 200 sampled tokens, stopping early, unprinted, at BOS. It then
// prints "\n", which the expected output (464 bytes) does not include.
func TestGoldenStories260K(t *testing.T) {
	path := testmodel.Stories260K(t)
	want, err := os.ReadFile("../../tests/testdata/stories260K-greedy-200.txt")
	require.NoError(t, err)

	lm, err := loader.Open(path, loader.WithWindow(0)) // stories260K has no window
	require.NoError(t, err)
	defer lm.Close()
	m, err := Load(lm)
	require.NoError(t, err)
	tok := lm.Tokenizer
	require.NotNil(t, tok)
	require.Equal(t, 1, tok.BOS(), "llama2.c hard-codes BOS = 1")

	const steps = 200
	var out strings.Builder
	fed := []int{tok.BOS()} // the token at each position
	var sampled []int       // argmax at each position
	st := m.NewState()
	for pos := 0; pos < steps; pos++ {
		logits, err := st.Step(fed[pos], pos)
		require.NoError(t, err)
		next := Argmax(logits)
		sampled = append(sampled, next)
		if next == 1 {
			break
		}
		out.WriteString(llama2cPiece(tok, fed[pos], next))
		fed = append(fed, next)
	}
	require.Equal(t, string(want), out.String())
	require.Len(t, sampled, steps, "llama2.c's run did not stop early")

	// The tokenizer's own Decode agrees on this (ASCII) text.
	assert.Equal(t, string(want), tok.Decode(fed), "Tokenizer.Decode")

	// Forward over the same 200 positions picks the same tokens.
	logits := forward(t, m, fed[:steps])
	for pos := range logits {
		require.Equal(t, sampled[pos], Argmax(logits[pos]), "position %d", pos)
	}
}

// ---- sliding window ----

// TestReceptiveField is design.md §3's property: with L layers and window
// W, changing the token at position 0 leaves the logits at every position
// p > L·(W−1) bit-for-bit unchanged, and changes them at p ≤ L·(W−1).
func TestReceptiveField(t *testing.T) {
	for _, tc := range []struct {
		layers, window int
	}{
		{3, 3}, // the model of the brief: dim 32, 4 heads, 2 KV heads, head dim 8
		{3, 2},
		{2, 4},
		{1, 5},
		{4, 1}, // W = 1: nothing reaches back at all
	} {
		t.Run(fmt.Sprintf("L=%d/W=%d", tc.layers, tc.window), func(t *testing.T) {
			cfg := tinyConfig
			cfg.NumLayers, cfg.Window = tc.layers, tc.window
			m := load(t, synthetic(t, cfg, loader.F32, 1), -1)
			require.Equal(t, tc.window, m.Config.Window, "window from the file's metadata")

			field := tc.layers * (tc.window - 1) // last position that sees position 0
			tokens := randomTokens(field+6, cfg.VocabSize, 2)
			changed := append([]int(nil), tokens...)
			changed[0] = 3 + (tokens[0]-3+1)%(cfg.VocabSize-3)
			a, b := forward(t, m, tokens), forward(t, m, changed)
			for p := range tokens {
				if p > field {
					assert.True(t, sameBits(a[p], b[p]), "position %d > L·(W−1) = %d changed", p, field)
				} else {
					assert.False(t, sameBits(a[p], b[p]), "position %d ≤ L·(W−1) = %d unchanged", p, field)
				}
			}
		})
	}
}

// TestWindowSemantics: against full attention, a window W lets the first W
// positions through unchanged (their band is still 0…i) and changes every
// later one; W = 0 and W ≥ the sequence length are full attention bit for
// bit; with W = 1 a position sees only itself, so its logits are those of
// its token alone at position 0.
func TestWindowSemantics(t *testing.T) {
	const n = 10
	path := synthetic(t, tinyConfig, loader.F32, 3)
	tokens := randomTokens(n, tinyConfig.VocabSize, 4)
	full := forward(t, load(t, path, 0), tokens)

	for _, tc := range []struct {
		name   string
		window int
		sameTo int // positions < sameTo equal full attention, the rest differ
	}{
		{"W=0 is full", 0, n},
		{"W=n is full", n, n},
		{"W=n+1 is full", n + 1, n},
		{"W=4096 is full", 4096, n},
		{"W=n-1", n - 1, n - 1},
		{"W=3", 3, 3},
		{"W=2", 2, 2},
		{"W=1 attends only itself", 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t, path, tc.window)
			got := forward(t, m, tokens)
			for p := range tokens {
				if p < tc.sameTo {
					assert.True(t, sameBits(full[p], got[p]), "position %d differs from full attention", p)
				} else {
					assert.False(t, sameBits(full[p], got[p]), "position %d equals full attention", p)
				}
			}
			if tc.window == 1 {
				for p, tok := range tokens {
					alone := forward(t, m, []int{tok})
					assert.True(t, sameBits(alone[0], got[p]), "position %d depends on more than its own token", p)
				}
			}
		})
	}
}

func TestFirstKey(t *testing.T) {
	for _, tc := range []struct{ w, pos, want int }{
		{0, 0, 0}, {0, 100, 0},
		{1, 0, 0}, {1, 7, 7},
		{3, 0, 0}, {3, 2, 0}, {3, 3, 1}, {3, 10, 8},
		{4096, 4095, 0}, {4096, 4096, 1},
	} {
		assert.Equal(t, tc.want, FirstKey(tc.w, tc.pos), "FirstKey(%d, %d)", tc.w, tc.pos)
	}
}

// TestMaskedKeysUnread: keys and values outside the band are never read, so
// even NaN there cannot leak into the output.
func TestMaskedKeysUnread(t *testing.T) {
	cfg := tinyConfig
	m := load(t, synthetic(t, cfg, loader.F32, 5), 3)
	const pos = 6
	kvd := cfg.NumKVHeads * cfg.HeadDim
	r := rand.New(rand.NewPCG(6, 0))
	q := make([]float32, cfg.NumHeads*cfg.HeadDim)
	for i := range q {
		q[i] = r.Float32()*2 - 1
	}
	keys, values := make([][]float32, pos+1), make([][]float32, pos+1)
	for j := range keys {
		keys[j], values[j] = make([]float32, kvd), make([]float32, kvd)
		for d := range kvd {
			keys[j][d], values[j][d] = r.Float32()*2-1, r.Float32()*2-1
		}
	}
	s := m.newRunState()
	m.attention(s, 0, pos, q, keys, values)
	want := append([]float32(nil), s.att...)

	nan := float32(math.NaN())
	for j := 0; j < FirstKey(m.Config.Window, pos); j++ {
		for d := range kvd {
			keys[j][d], values[j][d] = nan, nan
		}
	}
	m.attention(s, 0, pos, q, keys, values)
	assert.True(t, sameBits(want, s.att), "masked keys changed the output")
}

// ---- Forward vs Step ----

func TestForwardEqualsStep(t *testing.T) {
	for _, window := range []int{0, 1, 3, 8} {
		t.Run(fmt.Sprintf("W=%d", window), func(t *testing.T) {
			m := load(t, synthetic(t, tinyConfig, loader.F32, 7), window)
			tokens := randomTokens(20, tinyConfig.VocabSize, 8)
			f, s := forward(t, m, tokens), steps(t, m, tokens)
			for p := range tokens {
				require.True(t, sameBits(f[p], s[p]), "position %d", p)
			}
		})
	}
}

func TestStepErrors(t *testing.T) {
	m := load(t, synthetic(t, tinyConfig, loader.F32, 9), -1)
	st := m.NewState()
	_, err := st.Step(5, 1)
	require.ErrorContains(t, err, "want 0")
	_, err = st.Step(5, 0)
	require.NoError(t, err)
	assert.Equal(t, 1, st.Pos())
	_, err = st.Step(tinyConfig.VocabSize, 1)
	require.ErrorContains(t, err, "outside the vocabulary")
	_, err = st.Step(-1, 1)
	require.Error(t, err)
	_, err = m.Forward([]int{1, 2, 64})
	require.ErrorContains(t, err, "position 2")
	logits, err := m.Forward(nil)
	require.NoError(t, err)
	assert.Empty(t, logits)
}

// ---- shapes ----

// TestShapes runs GQA and MHA models with head dims 64 and 128, partial
// RoPE, quantised matrices and tied embeddings: finite logits of the right
// size, and Forward equal to Step.
func TestShapes(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  loader.Config
		dt   loader.DType
	}{
		{"gqa4:1/hd64", loader.Config{Dim: 128, NumLayers: 2, NumHeads: 8, NumKVHeads: 2, HeadDim: 64, FFNDim: 96, VocabSize: 40, Window: 4}, loader.F32},
		{"mha/hd128", loader.Config{Dim: 96, NumLayers: 2, NumHeads: 2, HeadDim: 128, FFNDim: 64, VocabSize: 40}, loader.F32},
		{"gqa2:1/hd128", loader.Config{Dim: 64, NumLayers: 1, NumHeads: 4, NumKVHeads: 2, HeadDim: 128, FFNDim: 64, VocabSize: 40, Window: 3}, loader.F16},
		{"mqa/hd64/rope32", loader.Config{Dim: 64, NumLayers: 2, NumHeads: 4, NumKVHeads: 1, HeadDim: 64, RopeDim: 32, FFNDim: 64, VocabSize: 40, RopeTheta: 1e6}, loader.F32},
		{"q8_0", loader.Config{Dim: 64, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, FFNDim: 96, VocabSize: 40, Window: 5}, loader.Q8_0},
		{"q4_0", loader.Config{Dim: 64, NumLayers: 2, NumHeads: 2, FFNDim: 64, VocabSize: 40}, loader.Q4_0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t, synthetic(t, tc.cfg, tc.dt, 11), -1)
			requireForwardEqualsStep(t, m, randomTokens(9, tc.cfg.VocabSize, 12))
		})
	}
}

// requireForwardEqualsStep: Forward and Step give the same finite logits,
// bit for bit, at every position of tokens.
func requireForwardEqualsStep(t *testing.T, m *Model, tokens []int) {
	t.Helper()
	f, s := forward(t, m, tokens), steps(t, m, tokens)
	for p := range tokens {
		require.Len(t, f[p], m.Config.VocabSize)
		for _, v := range f[p] {
			require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0), "position %d", p)
		}
		require.True(t, sameBits(f[p], s[p]), "Forward and Step differ at position %d", p)
	}
}

// TestGQAMapping: a GQA model equals the MHA model whose K and V heads are
// the GQA heads repeated (query head h ↔ KV head h/(heads/kvHeads)).
func TestGQAMapping(t *testing.T) {
	gqa := load(t, synthetic(t, tinyConfig, loader.F32, 13), -1)
	c, w := gqa.Config, gqa.Weights
	group, hd := c.NumHeads/c.NumKVHeads, c.HeadDim
	repeat := func(src []float32) []float32 {
		rows := c.NumKVHeads * hd
		var dst []float32
		for l := 0; l < c.NumLayers; l++ {
			layer := src[l*rows*c.Dim : (l+1)*rows*c.Dim]
			for h := 0; h < c.NumHeads; h++ {
				kv := h / group
				dst = append(dst, layer[kv*hd*c.Dim:(kv+1)*hd*c.Dim]...)
			}
		}
		return dst
	}
	mc := c
	mc.NumKVHeads = c.NumHeads
	mw := w
	mw.Wk, mw.Wv = repeat(w.Wk), repeat(w.Wv)
	mha, err := New(mc, mw)
	require.NoError(t, err)

	tokens := randomTokens(12, c.VocabSize, 14)
	a, b := forward(t, gqa, tokens), forward(t, mha, tokens)
	for p := range tokens {
		require.True(t, sameBits(a[p], b[p]), "position %d", p)
	}
}

// TestTiedOutput: without output.weight the classifier is token_embd.
func TestTiedOutput(t *testing.T) {
	src := synthetic(t, tinyConfig, loader.F32, 15)
	lm, err := loader.Open(src)
	require.NoError(t, err)
	defer lm.Close()

	w := loader.NewGGUFWriter()
	for _, kv := range lm.GGUF.Metadata {
		require.NoError(t, w.Set(kv.Key, kv.Value))
	}
	for _, tn := range lm.Tensors {
		if tn.Name == "output.weight" {
			continue
		}
		raw, err := tn.Bytes()
		require.NoError(t, err)
		require.NoError(t, w.AddTensorBytes(tn.Name, tn.Type, tn.Shape, raw))
	}
	tied := filepath.Join(t.TempDir(), "tied.gguf")
	require.NoError(t, w.WriteFile(tied))

	m := load(t, tied, -1)
	require.Same(t, &m.Weights.TokenEmbedding[0], &m.Weights.Output[0], "Output aliases TokenEmbedding")

	// Same as the untied model with output.weight replaced by token_embd.
	untied := load(t, src, -1)
	uw := untied.Weights
	uw.Output = uw.TokenEmbedding
	want, err := New(untied.Config, uw)
	require.NoError(t, err)
	tokens := randomTokens(6, tinyConfig.VocabSize, 16)
	a, b := forward(t, m, tokens), forward(t, want, tokens)
	for p := range tokens {
		require.True(t, sameBits(a[p], b[p]), "position %d", p)
	}
}

// ---- kernels ----

func TestRoPE(t *testing.T) {
	freqs := ropeFreqs(100, 4, nil)
	require.Equal(t, []float64{1, math.Pow(100, -2.0/4)}, freqs, "θ^0, θ^(−2/4)")
	v := []float32{1, 0, 0, 1, 5, 6, 2, 3, 1, 1, 7, 8} // two heads of 6
	const pos = 3
	rope(v, 6, loader.RopePairwise, freqs, pos)
	rot := func(a, b, angle float64) (float32, float32) {
		return float32(a*math.Cos(angle) - b*math.Sin(angle)), float32(a*math.Sin(angle) + b*math.Cos(angle))
	}
	var want []float32
	for _, head := range [][]float64{{1, 0, 0, 1}, {2, 3, 1, 1}} {
		x0, x1 := rot(head[0], head[1], pos*1)
		x2, x3 := rot(head[2], head[3], pos*0.1)
		want = append(want, x0, x1, x2, x3)
	}
	want = []float32{want[0], want[1], want[2], want[3], 5, 6, want[4], want[5], want[6], want[7], 7, 8}
	assert.InDeltaSlice(t, want, v, 1e-6, "pairs (x[2i], x[2i+1]) of the first RopeDim dims rotated; the rest untouched")

	// Position 0 is the identity.
	u := []float32{1, 2, 3, 4, 5, 6}
	rope(u, 6, loader.RopePairwise, freqs, 0)
	assert.Equal(t, []float32{1, 2, 3, 4, 5, 6}, u)
}

func TestRMSNormMatmul(t *testing.T) {
	out := make([]float32, 2)
	rmsnorm(out, []float32{3, 4}, []float32{1, 2}, 0.5)
	inv := 1 / math.Sqrt((9+16)/2.0+0.5)
	assert.Equal(t, []float32{float32(3 * inv), float32(8 * inv)}, out)

	y := make([]float32, 3)
	matmul(y, []float32{1, 2}, []float32{1, 0, 0, 1, 2, -1}) // W (3,2)
	assert.Equal(t, []float32{1, 2, 0}, y)
}

func TestArgmax(t *testing.T) {
	nan := float32(math.NaN())
	for _, tc := range []struct {
		in   []float32
		want int
	}{
		{nil, -1},
		{[]float32{0}, 0},
		{[]float32{1, 3, 2}, 1},
		{[]float32{3, 1, 3}, 0}, // first on ties
		{[]float32{nan, 1, 2}, 2},
		{[]float32{1, nan, 0}, 0},
		{[]float32{float32(math.Inf(-1)), -1e30}, 1},
	} {
		assert.Equal(t, tc.want, Argmax(tc.in), "%v", tc.in)
	}
}

func TestLoadErrors(t *testing.T) {
	m := load(t, synthetic(t, tinyConfig, loader.F32, 17), -1)
	w := m.Weights
	w.Wq = w.Wq[:len(w.Wq)-1]
	_, err := New(m.Config, w)
	require.ErrorContains(t, err, "Wq")
	c := m.Config
	c.NumKVHeads = 3
	_, err = New(c, m.Weights)
	require.Error(t, err)
}

// ---- SWA families (hand-built configs through New) ----

// randomWeights returns deterministic pseudo-random weights of c's shapes:
// matrices uniform in ±1/√in, embeddings in ±1, norm vectors 1 ± 0.1 and
// biases in ±0.5 (as the synthetic writer), and nothing for the tensors c
// does not use. The biases are drawn last, so that the other weights do
// not depend on QKVBias.
func randomWeights(c loader.Config, seed uint64) Weights {
	r := rand.New(rand.NewPCG(seed, 1))
	dim, hd, q, kv, ffn, L := c.Dim, c.HeadDim, c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim, c.FFNDim, c.NumLayers
	uniform := func(n int, scale float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32((2*r.Float64() - 1) * scale)
		}
		return v
	}
	matrix := func(rows, in int) []float32 { return uniform(L*rows*in, 1/math.Sqrt(float64(in))) }
	normVec := func(used bool, n int) []float32 {
		if !used {
			return nil
		}
		v := uniform(n, 0.1)
		for i := range v {
			v[i]++
		}
		return v
	}
	w := Weights{
		TokenEmbedding: uniform(c.VocabSize*dim, 1),
		AttnNorm:       normVec(true, L*dim),
		Wq:             matrix(q, dim),
		Wk:             matrix(kv, dim),
		Wv:             matrix(kv, dim),
		QNorm:          normVec(c.QKNorm, L*hd),
		KNorm:          normVec(c.QKNorm, L*hd),
		Wo:             matrix(dim, q),
		PostAttnNorm:   normVec(c.PostNorms, L*dim),
		FFNNorm:        normVec(!c.Parallel, L*dim),
		WGate:          matrix(ffn, dim),
		WUp:            matrix(ffn, dim),
		WDown:          matrix(dim, ffn),
		PostFFNNorm:    normVec(c.PostNorms, L*dim),
		OutputNorm:     normVec(true, dim),
	}
	w.Output = uniform(c.VocabSize*dim, 1/math.Sqrt(float64(dim)))
	if c.QKVBias {
		w.BQ, w.BK, w.BV = uniform(L*q, 0.5), uniform(L*kv, 0.5), uniform(L*kv, 0.5)
	}
	return w
}

// newModel is New(c, randomWeights(c, seed)).
func newModel(t *testing.T, c loader.Config, seed uint64) *Model {
	t.Helper()
	m, err := New(c, randomWeights(c, seed))
	require.NoError(t, err)
	return m
}

// layers returns one LayerSpec per window: a local layer (window > 0)
// turns by θ = local, unscaled; a global one (window 0) by θ = global with
// RoPE scale globalScale.
func layers(local, global, globalScale float64, windows ...int) []loader.LayerSpec {
	specs := make([]loader.LayerSpec, len(windows))
	for l, w := range windows {
		specs[l] = loader.LayerSpec{Window: w, RopeTheta: local, RopeScale: 1}
		if w == 0 {
			specs[l] = loader.LayerSpec{Window: 0, RopeTheta: global, RopeScale: globalScale}
		}
	}
	return specs
}

// withWindows is c with one layer per window, keeping c's RoPE: local
// layers get the θ of c's first layer (local in every config here), global
// ones the θ and scale of c's last global layer (RopeTheta and 1 if none).
func withWindows(c loader.Config, windows ...int) loader.Config {
	spec := c.Layer(0)
	global, scale := c.RopeTheta, 1.0
	for l := range c.NumLayers {
		if s := c.Layer(l); s.Window == 0 {
			global, scale = s.RopeTheta, s.RopeScale
		}
	}
	c.NumLayers = len(windows)
	c.Layers = layers(spec.RopeTheta, global, scale, windows...)
	return c
}

// Small configs of each family: every feature of its block is on, with a
// global layer and local layers of different windows.
var (
	// llamaSWA: a llama file with a per-layer window pattern.
	llamaSWA = loader.Config{
		Arch: "llama", Dim: 32, NumLayers: 3, NumHeads: 4, NumKVHeads: 2, HeadDim: 8, RopeDim: 8, FFNDim: 48,
		VocabSize: 64, RopeTheta: 1e4, NormEps: 1e-5, Window: 5,
		Layers: layers(1e4, 1e4, 1, 3, 0, 5),
	}
	// gemma2Like: alternating local/global, NEOX RoPE over part of the head,
	// GeGLU, √dim embeddings, post norms, both soft-caps (small, so that they
	// bite on these small scores).
	gemma2Like = loader.Config{
		Arch: "gemma2", Dim: 32, NumLayers: 4, NumHeads: 4, NumKVHeads: 2, HeadDim: 8, RopeDim: 6, FFNDim: 48,
		VocabSize: 64, RopeTheta: 1e4, NormEps: 1e-6, Window: 4,
		Layers: layers(1e4, 1e4, 1, 4, 0, 4, 0),
		Rope:   loader.RopeHalf, Act: loader.ActGELUTanh, EmbedScale: math.Sqrt(32), PostNorms: true,
		AttnSoftcap: 1, FinalSoftcap: 2,
	}
	// gemma3Like: local layers on θ 1e4, a global one on θ 1e6 with linear
	// RoPE scaling 8, per-head q/k norms, head dim 16 ≠ dim/heads, and a
	// query scale that is not 1/√headDim.
	gemma3Like = loader.Config{
		Arch: "gemma3", Dim: 32, NumLayers: 4, NumHeads: 4, NumKVHeads: 2, HeadDim: 16, RopeDim: 16, FFNDim: 48,
		VocabSize: 64, RopeTheta: 1e6, NormEps: 1e-6, Window: 3,
		Layers: layers(1e4, 1e6, 8, 3, 3, 0, 2),
		Rope:   loader.RopeHalf, Act: loader.ActGELUTanh, EmbedScale: math.Sqrt(32), PostNorms: true, QKNorm: true,
		AttnScale: 1 / math.Sqrt(8),
	}
	// cohere2Like: three local layers and a global one without RoPE,
	// LayerNorm, the parallel block, MQA and a logit scale.
	cohere2Like = loader.Config{
		Arch: "cohere2", Dim: 32, NumLayers: 4, NumHeads: 4, NumKVHeads: 1, HeadDim: 8, RopeDim: 8, FFNDim: 48,
		VocabSize: 64, RopeTheta: 1e4, NormEps: 1e-5, Window: 5,
		Layers: layers(1e4, 0, 1, 5, 5, 5, 0),
		Norm:   loader.NormLayer, Parallel: true, LogitScale: 0.125,
	}
	// qwen2Like: Q/K/V biases, NEOX RoPE on θ 1e6, every layer global.
	qwen2Like = loader.Config{
		Arch: "qwen2", Dim: 32, NumLayers: 3, NumHeads: 4, NumKVHeads: 2, HeadDim: 8, RopeDim: 8, FFNDim: 48,
		VocabSize: 64, RopeTheta: 1e6, NormEps: 1e-6,
		Layers: layers(1e6, 1e6, 1, 0, 0, 0),
		Rope:   loader.RopeHalf, QKVBias: true,
	}
	// qwen3Like: per-head q/k norms, NEOX RoPE, and head dim 16 with
	// heads·headDim (64) ≠ dim (32), as in the real Qwen3 sizes.
	qwen3Like = loader.Config{
		Arch: "qwen3", Dim: 32, NumLayers: 3, NumHeads: 4, NumKVHeads: 2, HeadDim: 16, RopeDim: 16, FFNDim: 48,
		VocabSize: 64, RopeTheta: 1e6, NormEps: 1e-6,
		Layers: layers(1e6, 1e6, 1, 0, 0, 0),
		Rope:   loader.RopeHalf, QKNorm: true,
	}
	// llama3Like: Llama 3.1's RoPE frequency factors (the first pair kept,
	// the last slowed 8 times) on θ 5e5, with a local layer among global
	// ones: the factors apply to every layer.
	llama3Like = loader.Config{
		Arch: "llama", Dim: 32, NumLayers: 3, NumHeads: 4, NumKVHeads: 2, HeadDim: 8, RopeDim: 8, FFNDim: 48,
		VocabSize: 64, RopeTheta: 5e5, NormEps: 1e-5, Window: 4,
		Layers:          layers(5e5, 5e5, 1, 0, 4, 0),
		RopeFreqFactors: []float64{1, 1.5, 4, 8},
	}
	families = []struct {
		name string
		cfg  loader.Config
	}{{"llama", llamaSWA}, {"gemma2", gemma2Like}, {"gemma3", gemma3Like}, {"cohere2", cohere2Like},
		{"qwen2", qwen2Like}, {"qwen3", qwen3Like}, {"llama3", llama3Like}}
)

// maxAbsDiff is max |a[i] − b[i]| over equal-length a and b.
func maxAbsDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

// maxAbs is max |a[i]|.
func maxAbs(a []float32) float64 {
	var m float64
	for _, v := range a {
		m = max(m, math.Abs(float64(v)))
	}
	return m
}

// TestFamiliesForwardEqualsStep: for every family, the two schedules give
// the same finite logits bit for bit, over a sequence longer than every
// window.
func TestFamiliesForwardEqualsStep(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			m := newModel(t, fam.cfg, 21)
			requireForwardEqualsStep(t, m, randomTokens(13, fam.cfg.VocabSize, 22))
		})
	}
}

// TestFamilyReceptiveField is design.md §3's property with a window per
// layer: with local layers only, of windows W_l, changing the token at
// position 0 leaves the logits at every position p > Σ(W_l − 1) bit for bit
// unchanged and changes them at every p ≤ Σ(W_l − 1); one global layer
// lets position 0 reach every later position.
func TestFamilyReceptiveField(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  loader.Config
	}{
		{"llama/3,2,4", withWindows(llamaSWA, 3, 2, 4)},
		{"llama/1,5", withWindows(llamaSWA, 1, 5)},
		{"gemma2/4,3", withWindows(gemma2Like, 4, 3)},
		{"gemma3/3,2,2", withWindows(gemma3Like, 3, 2, 2)},
		{"cohere2/5,2", withWindows(cohere2Like, 5, 2)},
		{"llama/3,global,2", withWindows(llamaSWA, 3, 0, 2)},
		{"gemma2/global,4", withWindows(gemma2Like, 0, 4)},
		{"gemma3/3,global", withWindows(gemma3Like, 3, 0)},
		{"cohere2/5,global", withWindows(cohere2Like, 5, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			field, global := 0, false // last position that sees position 0, unless global
			for l := range c.NumLayers {
				if w := c.Layer(l).Window; w > 0 {
					field += w - 1
				} else {
					global = true
				}
			}
			n := field + 5
			if global {
				n = 12
			}
			m := newModel(t, c, 23)
			tokens := randomTokens(n, c.VocabSize, 24)
			changed := append([]int(nil), tokens...)
			changed[0] = 3 + (tokens[0]-3+1)%(c.VocabSize-3)
			a, b := forward(t, m, tokens), forward(t, m, changed)
			for p := range tokens {
				if !global && p > field {
					assert.True(t, sameBits(a[p], b[p]), "position %d > Σ(W−1) = %d changed", p, field)
				} else {
					assert.False(t, sameBits(a[p], b[p]), "position %d (Σ(W−1) = %d, global %v) unchanged", p, field, global)
				}
			}
		})
	}
}

// permuteHeads returns the rows (or elements, for width 1) of a stacked
// per-head tensor in the order a pairwise-RoPE model needs to compute what
// the RopeHalf model computes: within each head of hd rows, new row 2i is
// old row i and new row 2i+1 is old row i + ropeDim/2 (i < ropeDim/2);
// rows from ropeDim on stay.
func permuteHeads(src []float32, hd, ropeDim, width int) []float32 {
	from := make([]int, hd) // new row j comes from old row from[j]
	for j := range from {
		from[j] = j
	}
	for i := 0; i < ropeDim/2; i++ {
		from[2*i], from[2*i+1] = i, i+ropeDim/2
	}
	dst := make([]float32, 0, len(src))
	for h := 0; h < len(src)/(hd*width); h++ {
		head := src[h*hd*width : (h+1)*hd*width]
		for _, j := range from {
			dst = append(dst, head[j*width:(j+1)*width]...)
		}
	}
	return dst
}

// TestRopeHalfPairing checks the NEOX pairing independently of its code:
// a RopeHalf model equals the RopePairwise model whose Q and K rows (and
// q/k norm weights) are permuted within each head so that pair
// (x[i], x[i+ropeDim/2]) lands on (x[2i], x[2i+1]). The two sum the q·k
// and norm terms in different orders, so they agree to rounding, not bit
// for bit; a wrong pairing is off by the size of the logits.
func TestRopeHalfPairing(t *testing.T) {
	for _, fam := range []struct {
		name string
		cfg  loader.Config
	}{
		{"gemma2/partial rope", gemma2Like},
		{"gemma3/qk norm", gemma3Like},
		{"llama/half", func() loader.Config { c := llamaSWA; c.Rope = loader.RopeHalf; return c }()},
	} {
		t.Run(fam.name, func(t *testing.T) {
			c := fam.cfg
			require.Equal(t, loader.RopeHalf, c.Rope)
			w := randomWeights(c, 25)
			half, err := New(c, w)
			require.NoError(t, err)

			pc := c
			pc.Rope = loader.RopePairwise
			unpermuted, err := New(pc, w)
			require.NoError(t, err)
			pw := w
			pw.Wq = permuteHeads(w.Wq, c.HeadDim, c.RopeDim, c.Dim)
			pw.Wk = permuteHeads(w.Wk, c.HeadDim, c.RopeDim, c.Dim)
			if c.QKNorm {
				pw.QNorm = permuteHeads(w.QNorm, c.HeadDim, c.RopeDim, 1)
				pw.KNorm = permuteHeads(w.KNorm, c.HeadDim, c.RopeDim, 1)
			}
			pairwise, err := New(pc, pw)
			require.NoError(t, err)

			tokens := randomTokens(9, c.VocabSize, 26)
			h, p, u := forward(t, half, tokens), forward(t, pairwise, tokens), forward(t, unpermuted, tokens)
			for pos := range tokens {
				scale := maxAbs(h[pos])
				assert.LessOrEqual(t, maxAbsDiff(h[pos], p[pos]), 1e-6*scale, "position %d: permuted pairwise differs", pos)
				if pos > 0 { // at position 0 RoPE is the identity
					assert.Greater(t, maxAbsDiff(h[pos], u[pos]), 1e-3*scale, "position %d: the pairing made no difference", pos)
				}
			}
		})
	}
}

// TestLayerRoPE: each layer turns by its own θ and RopeScale (a layer of
// scale s at position s·p equals scale 1 at position p), a layer of θ 0 has
// no RoPE, and the frequencies are computed once per distinct θ.
func TestLayerRoPE(t *testing.T) {
	m := newModel(t, gemma3Like, 27)
	c := m.Config
	require.Equal(t, 8.0, c.Layer(2).RopeScale)
	assert.Same(t, &m.invFreq[0][0], &m.invFreq[1][0], "layers 0 and 1 share θ 1e4")
	assert.Same(t, &m.invFreq[0][0], &m.invFreq[3][0], "layers 0 and 3 share θ 1e4")
	assert.NotEqual(t, m.invFreq[0], m.invFreq[2], "layer 2 has θ 1e6")
	assert.Equal(t, ropeFreqs(1e6, c.RopeDim, nil), m.invFreq[2])

	unscaled := c
	unscaled.Layers = slices.Clone(c.Layers)
	unscaled.Layers[2].RopeScale = 1
	mu, err := New(unscaled, m.Weights)
	require.NoError(t, err)
	x := randomWeights(c, 28).TokenEmbedding[:c.Dim]
	s := m.newRunState()
	for _, p := range []int{1, 3} {
		q8, k8, _ := m.qkv(s, 2, 8*p, x)
		q1, k1, _ := mu.qkv(s, 2, p, x)
		assert.True(t, sameBits(q8, q1) && sameBits(k8, k1), "scale 8 at position %d ≠ scale 1 at position %d", 8*p, p)
		q1s, _, _ := mu.qkv(s, 2, 8*p, x)
		assert.False(t, sameBits(q8, q1s), "RopeScale changed nothing at position %d", 8*p)
	}

	// Cohere2's global layer has no RoPE: its q and k are the same at every
	// position.
	mc := newModel(t, cohere2Like, 29)
	assert.Nil(t, mc.invFreq[3])
	q0, k0, _ := mc.qkv(s, 3, 0, x)
	q5, k5, _ := mc.qkv(s, 3, 5, x)
	assert.True(t, sameBits(q0, q5) && sameBits(k0, k5), "layer with θ 0 rotated")
	q5l, _, _ := mc.qkv(s, 0, 5, x)
	q0l, _, _ := mc.qkv(s, 0, 0, x)
	assert.False(t, sameBits(q0l, q5l), "local layer did not rotate")
}

// TestNoRopeLayer: a model whose only layer is global without RoPE cannot
// tell the order of earlier tokens: swapping the first two changes the last
// position's logits only by rounding, while with RoPE it changes them.
func TestNoRopeLayer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		theta float64
	}{{"no rope", 0}, {"rope", 1e4}} {
		t.Run(tc.name, func(t *testing.T) {
			c := cohere2Like
			c.NumLayers = 1
			c.Layers = []loader.LayerSpec{{Window: 0, RopeTheta: tc.theta, RopeScale: 1}}
			m := newModel(t, c, 30)
			a := forward(t, m, []int{5, 9, 17})
			b := forward(t, m, []int{9, 5, 17})
			d, scale := maxAbsDiff(a[2], b[2]), maxAbs(a[2])
			if tc.theta == 0 {
				assert.LessOrEqual(t, d, 1e-6*scale)
			} else {
				assert.Greater(t, d, 1e-3*scale)
			}
		})
	}
}

func TestRoPEHalf(t *testing.T) {
	freqs := ropeFreqs(100, 4, nil)                    // 1, 0.1
	v := []float32{1, 2, 3, 4, 5, 6, 0, 1, 1, 0, 7, 8} // two heads of 6
	const pos = 3
	rope(v, 6, loader.RopeHalf, freqs, pos)
	rot := func(a, b, angle float64) (float32, float32) {
		return float32(a*math.Cos(angle) - b*math.Sin(angle)), float32(a*math.Sin(angle) + b*math.Cos(angle))
	}
	var want []float32
	for _, head := range [][]float64{{1, 2, 3, 4}, {0, 1, 1, 0}} {
		x0, x2 := rot(head[0], head[2], pos*1) // pair (x[0], x[2])
		x1, x3 := rot(head[1], head[3], pos*0.1)
		want = append(want, x0, x1, x2, x3)
	}
	want = []float32{want[0], want[1], want[2], want[3], 5, 6, want[4], want[5], want[6], want[7], 7, 8}
	assert.InDeltaSlice(t, want, v, 1e-6, "pairs (x[i], x[i+RopeDim/2]) rotated; dims from RopeDim on untouched")
}

func TestLayerNorm(t *testing.T) {
	for _, tc := range []struct {
		name    string
		x, w    []float32
		eps     float64
		want    []float32
		inPlace bool
	}{
		// mean 3, deviations −2 −1 0 3, var 14/4, √(3.5 + 0.5) = 2
		{"weighted", []float32{1, 2, 3, 6}, []float32{1, 2, 0.5, 1}, 0.5, []float32{-1, -1, 0, 1.5}, false},
		{"in place", []float32{1, 2, 3, 6}, []float32{1, 2, 0.5, 1}, 0.5, []float32{-1, -1, 0, 1.5}, true},
		// mean 2, var 4: ±1, whatever the offset
		{"offset", []float32{100, 104}, []float32{1, 1}, 0, []float32{-1, 1}, false},
		{"constant", []float32{-3, -3, -3}, []float32{1, 2, 3}, 1e-5, []float32{0, 0, 0}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := make([]float32, len(tc.x))
			if tc.inPlace {
				out = slices.Clone(tc.x)
				layernorm(out, out, tc.w, tc.eps)
			} else {
				layernorm(out, tc.x, tc.w, tc.eps)
			}
			assert.Equal(t, tc.want, out)
		})
	}
}

// TestLayerNormEveryNorm: LayerNorm forgets a constant added to its input,
// and a Cohere2-like model's residual stream carries a constant added to the
// embeddings unchanged through its parallel blocks, so if every norm,
// output_norm included, is a LayerNorm, the logits change only by rounding;
// with RMSNorm they change.
func TestLayerNormEveryNorm(t *testing.T) {
	for _, kind := range []loader.NormKind{loader.NormLayer, loader.NormRMS} {
		t.Run(kind.String(), func(t *testing.T) {
			c := cohere2Like
			c.Norm = kind
			w := randomWeights(c, 31)
			m, err := New(c, w)
			require.NoError(t, err)
			sw := w
			sw.TokenEmbedding = slices.Clone(w.TokenEmbedding)
			for i := range sw.TokenEmbedding {
				sw.TokenEmbedding[i] += 0.5
			}
			shifted, err := New(c, sw)
			require.NoError(t, err)
			tokens := randomTokens(8, c.VocabSize, 32)
			a, b := forward(t, m, tokens), forward(t, shifted, tokens)
			for p := range tokens {
				d, scale := maxAbsDiff(a[p], b[p]), maxAbs(a[p])
				if kind == loader.NormLayer {
					assert.LessOrEqual(t, d, 1e-5*scale, "position %d", p)
				} else {
					assert.Greater(t, d, 1e-2*scale, "position %d", p)
				}
			}
		})
	}
}

// TestLogitScaleAndSoftcap: the head multiplies by LogitScale, then caps
// to c·tanh(l/c) (llama.cpp's order), so every capped logit lies strictly
// inside (−c, c) while the uncapped ones go beyond.
func TestLogitScaleAndSoftcap(t *testing.T) {
	base := gemma2Like
	base.FinalSoftcap = 0
	w := randomWeights(base, 33)
	raw, err := New(base, w)
	require.NoError(t, err)
	tokens := randomTokens(7, base.VocabSize, 34)
	rawLogits := forward(t, raw, tokens)
	var peak float64
	for _, l := range rawLogits {
		peak = max(peak, maxAbs(l))
	}

	for _, tc := range []struct {
		name       string
		scale, cap float64 // cap as a fraction of the largest raw |logit|
	}{
		{"scale only (cohere2)", 0.125, 0},
		{"cap only (gemma2)", 0, 0.5},
		{"scale then cap", 3, 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			c.LogitScale, c.FinalSoftcap = tc.scale, tc.cap*peak
			m, err := New(c, w)
			require.NoError(t, err)
			got := forward(t, m, tokens)
			capped := 0
			for p := range tokens {
				for i, v := range got[p] {
					want := float64(rawLogits[p][i])
					if tc.scale != 0 {
						want = float64(float32(want * tc.scale))
					}
					if c.FinalSoftcap > 0 {
						if math.Abs(want) > c.FinalSoftcap {
							capped++
						}
						want = c.FinalSoftcap * math.Tanh(want/c.FinalSoftcap)
						require.Less(t, math.Abs(float64(v)), c.FinalSoftcap, "position %d logit %d", p, i)
					}
					require.Equal(t, float32(want), v, "position %d logit %d", p, i)
				}
			}
			if c.FinalSoftcap > 0 {
				assert.Positive(t, capped, "no logit went beyond the cap")
			}
		})
	}
}

// TestAttnScaleAndSoftcap: with a tiny AttnScale, or a tiny AttnSoftcap,
// every score in the band is squashed to almost 0, so the attention output
// is the plain mean of the band's values; with neither, it is not.
func TestAttnScaleAndSoftcap(t *testing.T) {
	const pos = 6
	for _, tc := range []struct {
		name           string
		scale, softcap float64
		uniform        bool
	}{
		{"capped", 0, 1e-9, true},
		{"tiny scale", 1e-12, 0, true},
		{"neither", 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := gemma2Like
			c.AttnScale, c.AttnSoftcap = tc.scale, tc.softcap
			m := newModel(t, c, 35)
			const l = 0 // window 4
			lo := FirstKey(c.Layer(l).Window, pos)
			require.Equal(t, 3, lo)
			kvd, group := c.NumKVHeads*c.HeadDim, c.NumHeads/c.NumKVHeads
			r := rand.New(rand.NewPCG(36, 0))
			q := make([]float32, c.NumHeads*c.HeadDim)
			for i := range q {
				q[i] = float32(4 * (2*r.Float64() - 1)) // large scores
			}
			keys, values := make([][]float32, pos+1), make([][]float32, pos+1)
			for j := range keys {
				keys[j], values[j] = make([]float32, kvd), make([]float32, kvd)
				for d := range kvd {
					keys[j][d], values[j][d] = float32(4*(2*r.Float64()-1)), float32(2*r.Float64()-1)
				}
			}
			s := m.newRunState()
			m.attention(s, l, pos, q, keys, values)
			mean := make([]float32, len(q))
			for h := 0; h < c.NumHeads; h++ {
				for d := 0; d < c.HeadDim; d++ {
					var acc float64
					for j := lo; j <= pos; j++ {
						acc += float64(values[j][(h/group)*c.HeadDim+d])
					}
					mean[h*c.HeadDim+d] = float32(acc / float64(pos+1-lo))
				}
			}
			if tc.uniform {
				assert.InDeltaSlice(t, mean, s.att, 1e-6)
			} else {
				assert.Greater(t, maxAbsDiff(mean, s.att), 0.05)
			}
		})
	}
}

// TestPostNormsOnBranches: post_attention_norm and post_ffw_norm scale the
// branches, not the residual: with both zero every block adds nothing, and
// the logits are the head of the (scaled) embedding.
func TestPostNormsOnBranches(t *testing.T) {
	c := gemma2Like
	w := randomWeights(c, 37)
	w.PostAttnNorm = make([]float32, len(w.PostAttnNorm))
	w.PostFFNNorm = make([]float32, len(w.PostFFNNorm))
	m, err := New(c, w)
	require.NoError(t, err)
	tokens := randomTokens(6, c.VocabSize, 38)
	got := forward(t, m, tokens)
	live := forward(t, newModel(t, c, 37), tokens)
	for p, tok := range tokens {
		want := m.head(m.newRunState(), m.embed(tok))
		assert.True(t, sameBits(want, got[p]), "position %d", p)
		assert.False(t, sameBits(want, live[p]), "position %d: the blocks added nothing with live post norms", p)
	}
}

// TestBlockAtPosition0 writes out, for a one-layer model of each family,
// the block of the brief at position 0, where attention returns the value
// itself (one key, weight 1), so only the wiring is under test: the
// embedding scale, which norm feeds which branch, the post norms, the
// activation, the parallel sum and the head's scale and cap.
func TestBlockAtPosition0(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			c := fam.cfg
			c.NumLayers, c.Layers = 1, c.Layers[:1]
			m := newModel(t, c, 39)
			w := m.Weights
			const tok = 11
			nrm := func(x, weight []float32) []float32 {
				out := make([]float32, len(x))
				if c.Norm == loader.NormLayer {
					layernorm(out, x, weight, c.NormEps)
				} else {
					rmsnorm(out, x, weight, c.NormEps)
				}
				return out
			}
			mul := func(wm, x []float32) []float32 {
				out := make([]float32, len(wm)/len(x))
				matmul(out, x, wm)
				return out
			}
			ffn := func(h []float32) []float32 {
				gate, up := mul(w.WGate, h), mul(w.WUp, h)
				for i, g := range gate {
					if c.Act == loader.ActGELUTanh {
						gate[i] = float32(geluTanh(float64(g)) * float64(up[i]))
					} else {
						gate[i] = float32(silu(float64(g)) * float64(up[i]))
					}
				}
				return mul(w.WDown, gate)
			}

			x := slices.Clone(w.TokenEmbedding[tok*c.Dim : (tok+1)*c.Dim]) // (dim,)
			if c.EmbedScale != 0 {
				for i := range x {
					x[i] *= float32(c.EmbedScale)
				}
			}
			n := nrm(x, w.AttnNorm)
			v := mul(w.Wv, n) // (kvHeads*headDim,)
			if c.QKVBias {
				// Position 0 attends to itself alone: its output is v + bv.
				matmulBias(v, n, w.Wv, w.BV)
			}
			att := make([]float32, c.NumHeads*c.HeadDim) // (heads*headDim,) each head's KV head's value
			for h := 0; h < c.NumHeads; h++ {
				kv := h / (c.NumHeads / c.NumKVHeads)
				copy(att[h*c.HeadDim:(h+1)*c.HeadDim], v[kv*c.HeadDim:(kv+1)*c.HeadDim])
			}
			a := mul(w.Wo, att)
			if c.PostNorms {
				a = nrm(a, w.PostAttnNorm)
			}
			if c.Parallel {
				f := ffn(n)
				add(x, a)
				add(x, f)
			} else {
				add(x, a)
				f := ffn(nrm(x, w.FFNNorm))
				if c.PostNorms {
					f = nrm(f, w.PostFFNNorm)
				}
				add(x, f)
			}
			want := mul(w.Output, nrm(x, w.OutputNorm))
			for i, l := range want {
				if c.LogitScale != 0 {
					l = float32(float64(l) * c.LogitScale)
				}
				if c.FinalSoftcap > 0 {
					l = float32(c.FinalSoftcap * math.Tanh(float64(l)/c.FinalSoftcap))
				}
				want[i] = l
			}

			got := forward(t, m, []int{tok})
			assert.True(t, sameBits(want, got[0]), "max diff %g", maxAbsDiff(want, got[0]))
		})
	}
}

// TestQKNormScaleInvariance: with QKNorm the queries and keys are
// RMS-normalised per head, so scaling Wq and Wk changes the logits only by
// rounding (ε aside); without it the scores, and the logits, change.
func TestQKNormScaleInvariance(t *testing.T) {
	for _, qk := range []bool{true, false} {
		t.Run(fmt.Sprintf("QKNorm=%v", qk), func(t *testing.T) {
			c := gemma3Like
			c.QKNorm = qk
			w := randomWeights(c, 43)
			m, err := New(c, w)
			require.NoError(t, err)
			sw := w
			sw.Wq, sw.Wk = slices.Clone(w.Wq), slices.Clone(w.Wk)
			for i := range sw.Wq {
				sw.Wq[i] *= 4
			}
			for i := range sw.Wk {
				sw.Wk[i] *= 4
			}
			scaled, err := New(c, sw)
			require.NoError(t, err)
			tokens := randomTokens(8, c.VocabSize, 44)
			a, b := forward(t, m, tokens), forward(t, scaled, tokens)
			for p := 1; p < len(tokens); p++ { // position 0 attends only itself either way
				d, scale := maxAbsDiff(a[p], b[p]), maxAbs(a[p])
				if qk {
					assert.LessOrEqual(t, d, 1e-4*scale, "position %d", p)
				} else {
					assert.Greater(t, d, 1e-2*scale, "position %d", p)
				}
			}
		})
	}
}

func TestActivations(t *testing.T) {
	for _, tc := range []struct {
		act     loader.Activation
		x, want float64
	}{
		// GELU, tanh approximation (the exact erf GELU gives 0.841345 at 1)
		{loader.ActGELUTanh, 1, 0.841192},
		{loader.ActGELUTanh, -1, -0.158808},
		{loader.ActGELUTanh, 2, 1.954598},
		{loader.ActGELUTanh, -3, -0.003637},
		{loader.ActGELUTanh, 0, 0},
		// SiLU: x·σ(x)
		{loader.ActSiLU, 1, 0.731059},
		{loader.ActSiLU, -2, -0.238406},
		{loader.ActSiLU, 0, 0},
	} {
		assert.InDelta(t, tc.want, activate(tc.act, tc.x), 1e-6, "%v(%v)", tc.act, tc.x)
	}
}

// TestEmbedScale: EmbedScale 0 and 1 are the same model, and a scale
// multiplies every embedding element as a float32 product.
func TestEmbedScale(t *testing.T) {
	c := llamaSWA
	w := randomWeights(c, 40)
	tokens := randomTokens(5, c.VocabSize, 41)
	var logits [][][]float32
	for _, s := range []float64{0, 1} {
		c.EmbedScale = s
		m, err := New(c, w)
		require.NoError(t, err)
		logits = append(logits, forward(t, m, tokens))
	}
	for p := range tokens {
		assert.True(t, sameBits(logits[0][p], logits[1][p]), "position %d", p)
	}

	c.EmbedScale = math.Sqrt(float64(c.Dim))
	m, err := New(c, w)
	require.NoError(t, err)
	e := m.embed(7)
	for i, v := range e {
		require.Equal(t, w.TokenEmbedding[7*c.Dim+i]*float32(c.EmbedScale), v, "element %d", i)
	}
}

// TestNewErrors: New names the weight whose length does not fit the
// config, including a tensor the config does not use, and refuses layer
// specs it cannot run.
func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    loader.Config
		edit   func(*Weights)
		config func(*loader.Config)
		want   string
	}{
		{"missing QNorm", gemma3Like, func(w *Weights) { w.QNorm = nil }, nil, "QNorm"},
		{"short KNorm", gemma3Like, func(w *Weights) { w.KNorm = w.KNorm[1:] }, nil, "KNorm"},
		{"QNorm without QKNorm", gemma2Like, func(w *Weights) { w.QNorm = make([]float32, 4*8) }, nil, "QNorm"},
		{"missing PostAttnNorm", gemma2Like, func(w *Weights) { w.PostAttnNorm = nil }, nil, "PostAttnNorm"},
		{"missing PostFFNNorm", gemma3Like, func(w *Weights) { w.PostFFNNorm = nil }, nil, "PostFFNNorm"},
		{"FFNNorm in a parallel block", cohere2Like, func(w *Weights) { w.FFNNorm = make([]float32, 4*32) }, nil, "FFNNorm"},
		{"no FFNNorm in a sequential block", llamaSWA, func(w *Weights) { w.FFNNorm = nil }, nil, "FFNNorm"},
		{"post norms without PostNorms", llamaSWA, func(w *Weights) { w.PostFFNNorm = make([]float32, 3*32) }, nil, "PostFFNNorm"},
		{"layer specs short", llamaSWA, nil, func(c *loader.Config) { c.Layers = c.Layers[:2] }, "layer"},
		{"zero rope scale", gemma3Like, nil, func(c *loader.Config) {
			c.Layers = slices.Clone(c.Layers)
			c.Layers[2].RopeScale = 0
		}, "scale"},
		{"negative window", llamaSWA, nil, func(c *loader.Config) {
			c.Layers = slices.Clone(c.Layers)
			c.Layers[1].Window = -1
		}, "window"},
		{"unknown norm", llamaSWA, nil, func(c *loader.Config) { c.Norm = 7 }, "norm"},
		{"unknown activation", llamaSWA, nil, func(c *loader.Config) { c.Act = 7 }, "activation"},
		{"negative softcap", gemma2Like, nil, func(c *loader.Config) { c.AttnSoftcap = -1 }, "softcap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := randomWeights(tc.cfg, 42)
			c := tc.cfg
			if tc.edit != nil {
				tc.edit(&w)
			}
			if tc.config != nil {
				tc.config(&c)
			}
			_, err := New(c, w)
			require.Error(t, err)
			assert.Contains(t, strings.ToLower(err.Error()), strings.ToLower(tc.want))
		})
	}
}

// TestLoadFamilies: Load reads each arch's tensors from a synthetic GGUF of
// that arch (the post norms, the q/k norms, no ffn_norm for cohere2) and
// runs it, Forward equal to Step; a tensor the config needs but the file
// lacks is an error that names it.
func TestLoadFamilies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     loader.Config
		needs   func(*loader.Config) // a config that wants a tensor the file lacks
		missing string
	}{
		{"gemma2", loader.Config{Arch: "gemma2", Dim: 32, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, HeadDim: 8, FFNDim: 48, VocabSize: 64, Window: 3},
			func(c *loader.Config) { c.QKNorm = true }, "blk.0.attn_q_norm.weight"},
		{"gemma3", loader.Config{Arch: "gemma3", Dim: 32, NumLayers: 6, NumHeads: 2, NumKVHeads: 1, HeadDim: 16, FFNDim: 48, VocabSize: 64, Window: 2, RopeTheta: 1e6},
			nil, ""},
		{"cohere2", loader.Config{Arch: "cohere2", Dim: 32, NumLayers: 4, NumHeads: 4, NumKVHeads: 2, HeadDim: 8, FFNDim: 48, VocabSize: 64, Window: 3, LogitScale: 0.25},
			func(c *loader.Config) { c.Parallel = false }, "blk.0.ffn_norm.weight"},
		{"llama", loader.Config{Arch: "llama", Dim: 32, NumLayers: 3, NumHeads: 4, NumKVHeads: 2, FFNDim: 48, VocabSize: 64, RopeTheta: 1e4, Window: 2, Layers: layers(1e4, 1e4, 1, 2, 0, 2)},
			func(c *loader.Config) { c.PostNorms = true }, "blk.0.post_attention_norm.weight"},
		{"qwen2", loader.Config{Arch: "qwen2", Dim: 32, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, FFNDim: 48, VocabSize: 64, RopeTheta: 1e6},
			func(c *loader.Config) { c.QKNorm = true }, "blk.0.attn_q_norm.weight"},
		{"qwen3", loader.Config{Arch: "qwen3", Dim: 32, NumLayers: 2, NumHeads: 2, NumKVHeads: 1, HeadDim: 24, FFNDim: 48, VocabSize: 64, RopeTheta: 1e6},
			func(c *loader.Config) { c.QKVBias = true }, "blk.0.attn_q.bias"},
		{"llama3", loader.Config{Arch: "llama", Dim: 32, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, FFNDim: 48, VocabSize: 64, RopeTheta: 5e5,
			RopeFreqFactors: []float64{1, 1.25, 3, 8}}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := synthetic(t, tc.cfg, loader.F32, 45)
			lm, err := loader.Open(path)
			require.NoError(t, err)
			defer lm.Close()
			m, err := Load(lm)
			require.NoError(t, err)
			c := m.Config
			require.Equal(t, tc.cfg.Arch, c.Arch)
			assert.Equal(t, c.QKNorm, len(m.Weights.QNorm) > 0, "QNorm loaded iff QKNorm")
			assert.Equal(t, c.PostNorms, len(m.Weights.PostFFNNorm) > 0, "post norms loaded iff PostNorms")
			assert.Equal(t, c.Parallel, len(m.Weights.FFNNorm) == 0, "no FFNNorm iff Parallel")
			assert.Equal(t, c.QKVBias, len(m.Weights.BQ) > 0 && len(m.Weights.BK) > 0 && len(m.Weights.BV) > 0, "biases loaded iff QKVBias")
			assert.Equal(t, tc.cfg.RopeFreqFactors, c.RopeFreqFactors, "factors through the file")

			tokens := randomTokens(9, c.VocabSize, 46)
			f, s := forward(t, m, tokens), steps(t, m, tokens)
			for p := range tokens {
				require.True(t, sameBits(f[p], s[p]), "Forward and Step differ at position %d", p)
			}

			if tc.needs == nil {
				return
			}
			lm.Config = c
			tc.needs(&lm.Config)
			_, err = Load(lm)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.missing)
		})
	}
}

// ---- Qwen biases and Llama 3.1 RoPE factors ----

// TestQKVBias: a zero bias is no bias, bit for bit; each non-zero bias
// (of Q, of K, of V) changes the logits.
func TestQKVBias(t *testing.T) {
	c := qwen2Like
	w := randomWeights(c, 51)
	tokens := randomTokens(9, c.VocabSize, 52)
	run := func(c loader.Config, w Weights) [][]float32 {
		m, err := New(c, w)
		require.NoError(t, err)
		return forward(t, m, tokens)
	}

	noBias := c
	noBias.QKVBias = false
	nw := w
	nw.BQ, nw.BK, nw.BV = nil, nil, nil
	want := run(noBias, nw)

	zw := w
	zw.BQ, zw.BK, zw.BV = make([]float32, len(w.BQ)), make([]float32, len(w.BK)), make([]float32, len(w.BV))
	zero := run(c, zw)
	for p := range tokens {
		require.True(t, sameBits(want[p], zero[p]), "zero bias differs from none at position %d", p)
	}

	for _, b := range []string{"BQ", "BK", "BV"} {
		t.Run(b, func(t *testing.T) {
			one := zw
			switch b { // only this bias is non-zero
			case "BQ":
				one.BQ = w.BQ
			case "BK":
				one.BK = w.BK
			case "BV":
				one.BV = w.BV
			}
			got := run(c, one)
			changed := false
			for p := range tokens {
				changed = changed || maxAbsDiff(want[p], got[p]) > 1e-4*maxAbs(want[p])
			}
			assert.True(t, changed, "%s changes nothing", b)
		})
	}
}

// TestQKVBiasBeforeRoPE: the biases are added to the products, before the
// rotation: q = RoPE(Wq·n + bq) at a position where RoPE is not the
// identity, and likewise k; v is never rotated.
func TestQKVBiasBeforeRoPE(t *testing.T) {
	c := qwen2Like
	c.NumLayers, c.Layers = 1, c.Layers[:1]
	m := newModel(t, c, 53)
	w := m.Weights
	x := slices.Clone(w.TokenEmbedding[7*c.Dim : 8*c.Dim]) // (dim,)
	const pos = 5
	q, k, v := m.qkv(m.newRunState(), 0, pos, x)

	n := make([]float32, c.Dim)
	rmsnorm(n, x, w.AttnNorm, c.NormEps)
	product := func(wm, b []float32) []float32 {
		out := make([]float32, len(b))
		matmulBias(out, n, wm, b)
		return out
	}
	freqs := ropeFreqs(c.RopeTheta, c.RopeDim, nil)
	wantQ, wantK, wantV := product(w.Wq, w.BQ), product(w.Wk, w.BK), product(w.Wv, w.BV)
	rope(wantQ, c.HeadDim, c.Rope, freqs, pos)
	rope(wantK, c.HeadDim, c.Rope, freqs, pos)
	assert.True(t, sameBits(wantQ, q), "q = RoPE(Wq·n + bq)")
	assert.True(t, sameBits(wantK, k), "k = RoPE(Wk·n + bk)")
	assert.True(t, sameBits(wantV, v), "v = Wv·n + bv")

	// The other order, bias after the rotation, is a different q.
	late := product(w.Wq, make([]float32, len(w.BQ)))
	rope(late, c.HeadDim, c.Rope, freqs, pos)
	add(late, w.BQ)
	assert.Greater(t, maxAbsDiff(late, q), 1e-3, "bias after RoPE would give the same q")
}

// TestRopeFreqFactorsOfOne: factors of 1 are no factors, bit for bit, in
// both schedules.
func TestRopeFreqFactorsOfOne(t *testing.T) {
	c := llama3Like
	w := randomWeights(c, 55)
	tokens := randomTokens(11, c.VocabSize, 56)
	none := c
	none.RopeFreqFactors = nil
	ones := c
	ones.RopeFreqFactors = []float64{1, 1, 1, 1}
	mNone, err := New(none, w)
	require.NoError(t, err)
	mOnes, err := New(ones, w)
	require.NoError(t, err)
	mScaled, err := New(c, w)
	require.NoError(t, err)
	a, b, s := forward(t, mNone, tokens), forward(t, mOnes, tokens), steps(t, mOnes, tokens)
	scaled := forward(t, mScaled, tokens)
	for p := range tokens {
		require.True(t, sameBits(a[p], b[p]), "Forward, position %d", p)
		require.True(t, sameBits(a[p], s[p]), "Step, position %d", p)
	}
	changed := false
	for p := 1; p < len(tokens); p++ { // position 0 has no rotation at all
		changed = changed || !sameBits(a[p], scaled[p])
	}
	assert.True(t, changed, "llama3Like's factors change nothing")
}

// TestRopeFreqFactorByHand: factor f on pair i turns it by pos·θ^(−2i/d)/f.
// With θ = 10⁴ and d = 4 the pairs turn by pos·1 and pos·10⁴^(−1/2) =
// pos·0.01; a factor 2 on pair 1 makes that pos·0.005. At pos 100 the
// angles are 100 rad and 0.5 rad, so the head (1, 0, 1, 0) becomes
// (cos 100, sin 100, cos 0.5, sin 0.5) = (0.8623188722876839,
// −0.5063656411097588, 0.8775825618903728, 0.4794255386042030).
func TestRopeFreqFactorByHand(t *testing.T) {
	freqs := ropeFreqs(1e4, 4, []float64{1, 2})
	assert.InDeltaSlice(t, []float64{1, 0.005}, freqs, 1e-17)
	v := []float32{1, 0, 1, 0}
	rope(v, 4, loader.RopePairwise, freqs, 100)
	assert.InDeltaSlice(t, []float32{0.8623188722876839, -0.5063656411097588, 0.8775825618903728, 0.4794255386042030}, v, 1e-7)
}

// TestRopeFreqFactorsShiftTheta: dividing pair i's frequency by f_i is
// raising θ for it: with d = 8, θ = 10⁴ turns pair i by 10^(−i) per
// position and θ = 10⁸ by 10^(−2i), so θ = 10⁴ with factors 10^i
// (1, 10, 100, 1000) is the θ = 10⁸ model, up to the rounding of the
// angles.
func TestRopeFreqFactorsShiftTheta(t *testing.T) {
	c := llama3Like
	c.RopeTheta, c.Layers = 1e4, layers(1e4, 1e4, 1, 0, 4, 0)
	c.RopeFreqFactors = []float64{1, 10, 100, 1000}
	far := c
	far.RopeTheta, far.Layers, far.RopeFreqFactors = 1e8, layers(1e8, 1e8, 1, 0, 4, 0), nil
	w := randomWeights(c, 57)
	m, err := New(c, w)
	require.NoError(t, err)
	mFar, err := New(far, w)
	require.NoError(t, err)
	for i, f := range mFar.invFreq[0] {
		assert.InEpsilon(t, f, m.invFreq[0][i], 1e-14, "pair %d", i)
	}
	tokens := randomTokens(12, c.VocabSize, 58)
	a, b := forward(t, m, tokens), forward(t, mFar, tokens)
	for p := range tokens {
		assert.LessOrEqual(t, maxAbsDiff(a[p], b[p]), 1e-5*maxAbs(a[p]), "position %d", p)
	}
}

// TestNewErrorsQwenLlama3: the biases' lengths follow QKVBias, and the
// frequency factors must fit the config.
func TestNewErrorsQwenLlama3(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    loader.Config
		edit   func(*Weights)
		config func(*loader.Config)
		want   string
	}{
		{"missing BQ", qwen2Like, func(w *Weights) { w.BQ = nil }, nil, "BQ"},
		{"short BK", qwen2Like, func(w *Weights) { w.BK = w.BK[1:] }, nil, "BK"},
		{"BV without QKVBias", qwen3Like, func(w *Weights) { w.BV = make([]float32, 3*2*16) }, nil, "BV"},
		{"too few factors", llama3Like, nil, func(c *loader.Config) { c.RopeFreqFactors = []float64{1, 2} }, "rope frequency factors"},
		{"zero factor", llama3Like, nil, func(c *loader.Config) { c.RopeFreqFactors = []float64{1, 0, 1, 1} }, "rope frequency factor 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := randomWeights(tc.cfg, 59)
			c := tc.cfg
			if tc.edit != nil {
				tc.edit(&w)
			}
			if tc.config != nil {
				tc.config(&c)
			}
			_, err := New(c, w)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestSinks: with sinks, a query attends to the first positions beside its
// band; with a window that covers everything, sinks change nothing; and
// the schedules still agree bit for bit.
func TestSinks(t *testing.T) {
	cfg := loader.SyntheticConfig(loader.Config{Arch: "llama", Dim: 32, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, FFNDim: 48, VocabSize: 64, Window: 3})
	m := newModel(t, cfg, 31)
	tokens := randomTokens(17, cfg.VocabSize, 32)
	plain := forward(t, m, tokens)
	m.Sinks = 2
	requireForwardEqualsStep(t, m, tokens)
	sinks := forward(t, m, tokens)
	// Positions whose band still holds positions 0 and 1 in every layer
	// see no difference.
	for p := range 3 {
		require.True(t, sameBits(plain[p], sinks[p]), "position %d: its band covers the sinks", p)
	}
	require.False(t, sameBits(plain[16], sinks[16]), "position 16 attends to the sinks")

	// Changing a sink token reaches the last position; changing a later
	// token does not reach past L·(W−1) from it.
	b := slices.Clone(tokens)
	b[1] = (tokens[1] + 1) % cfg.VocabSize
	require.False(t, sameBits(sinks[16], forward(t, m, b)[16]), "a sink reaches every position")
	c := slices.Clone(tokens)
	c[5] = (tokens[5] + 1) % cfg.VocabSize
	other := forward(t, m, c)
	edge := 5 + cfg.NumLayers*(cfg.Window-1)
	require.False(t, sameBits(sinks[edge], other[edge]), "position %d still sees position 5", edge)
	for p := edge + 1; p < len(tokens); p++ {
		require.True(t, sameBits(sinks[p], other[p]), "position %d must not see position 5", p)
	}

	full := loader.SyntheticConfig(loader.Config{Arch: "llama", Dim: 32, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, FFNDim: 48, VocabSize: 64})
	fm := newModel(t, full, 31)
	want := forward(t, fm, tokens)
	fm.Sinks = 4
	got := forward(t, fm, tokens)
	for p := range tokens {
		require.True(t, sameBits(want[p], got[p]), "full attention: sinks change nothing (position %d)", p)
	}
}
