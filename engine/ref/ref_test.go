package ref

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
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
	m.attention(s, pos, q, keys, values)
	want := append([]float32(nil), s.att...)

	nan := float32(math.NaN())
	for j := 0; j < FirstKey(m.Config.Window, pos); j++ {
		for d := range kvd {
			keys[j][d], values[j][d] = nan, nan
		}
	}
	m.attention(s, pos, q, keys, values)
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
			tokens := randomTokens(9, tc.cfg.VocabSize, 12)
			f, s := forward(t, m, tokens), steps(t, m, tokens)
			for p := range tokens {
				require.Len(t, f[p], tc.cfg.VocabSize)
				for _, v := range f[p] {
					require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0), "position %d", p)
				}
				require.True(t, sameBits(f[p], s[p]), "Forward and Step differ at position %d", p)
			}
		})
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
	m := &Model{Config: loader.Config{HeadDim: 6, RopeDim: 4, RopeTheta: 100}}
	m.invFreq = []float64{1, math.Pow(100, -2.0/4)}    // θ^0, θ^(−2/4)
	v := []float32{1, 0, 0, 1, 5, 6, 2, 3, 1, 1, 7, 8} // two heads of 6
	const pos = 3
	m.rope(v, pos)
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
	m.rope(u, 0)
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
