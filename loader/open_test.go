package loader

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vkrun/vkrun/internal/testmodel"
)

func TestOpenStories260K(t *testing.T) {
	path := testmodel.Stories260K(t)
	m, err := Open(path)
	require.NoError(t, err)
	defer m.Close()
	assert.Equal(t, "gguf", m.Format)
	assert.Equal(t, Config{
		Arch: "llama", Dim: 64, NumLayers: 5, NumHeads: 8, NumKVHeads: 4, HeadDim: 8, FFNDim: 172,
		VocabSize: 512, RopeTheta: 10000, RopeDim: 8, Rope: RopePairwise, NormEps: 1e-5, ContextLength: 2048,
	}.filledLayers(), m.Config)
	for l := range m.Config.NumLayers {
		assert.Equal(t, LayerSpec{Window: 0, RopeTheta: 10000, RopeScale: 1}, m.Config.Layers[l], "layer %d: global, one RoPE", l)
	}
	assert.Len(t, m.Tensors, 48)
	require.NotNil(t, m.Tokenizer)
	assert.Equal(t, 512, m.Tokenizer.VocabSize())
	assert.Equal(t, 1, m.Tokenizer.BOS())
	assert.Equal(t, 2, m.Tokenizer.EOS())

	out := m.Tensor("output.weight")
	require.NotNil(t, out, "stories260K has an untied output")
	assert.Nil(t, m.Tensor("no.such.tensor"))
	q := m.Tensor("blk.2.attn_q.weight")
	require.NotNil(t, q)
	assert.Equal(t, []uint64{64, 64}, q.Shape)
	assert.Equal(t, uint64(64*64), q.NumElements())
	assert.Equal(t, uint64(64*64*4), q.Size())
	w, err := q.Float32s()
	require.NoError(t, err)
	var sumSq float64
	for _, v := range w {
		require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0))
		sumSq += float64(v) * float64(v)
	}
	assert.Greater(t, sumSq, 1.0, "trained weights are not all ~0")

	// RMSNorm weights of a trained model are positive and O(1).
	norm, err := m.Tensor("output_norm.weight").Float32s()
	require.NoError(t, err)
	assert.Len(t, norm, 64)

	// WithoutTokenizer skips it; WithWindow overrides the (absent) window.
	m2, err := Open(path, WithoutTokenizer(), WithWindow(16))
	require.NoError(t, err)
	defer m2.Close()
	assert.Nil(t, m2.Tokenizer)
	assert.Equal(t, 16, m2.Config.Window)
}

func TestOpenCloseIdempotent(t *testing.T) {
	path := filepath.Join("testdata", "gguf", "tiny-llama-q8_0.gguf")
	m, err := Open(path)
	require.NoError(t, err)
	b, err := m.Tensor("token_embd.weight").Bytes()
	require.NoError(t, err)
	require.NotEmpty(t, b)
	require.NoError(t, m.Close())
	require.NoError(t, m.Close())
	_, err = m.Tensor("token_embd.weight").Bytes()
	require.ErrorContains(t, err, "model closed")
	_, err = m.Tensor("token_embd.weight").Float32s()
	require.Error(t, err)
}

func TestOpenWindow(t *testing.T) {
	path := filepath.Join("testdata", "gguf", "tiny-llama-q8_0.gguf") // declares window 8
	for _, c := range []struct {
		opts []Option
		want int
	}{
		{nil, 8},
		{[]Option{WithWindow(4)}, 4},
		{[]Option{WithWindow(0)}, 0},
		{[]Option{WithWindow(3), WithWindow(5)}, 5},
	} {
		m, err := Open(path, c.opts...)
		require.NoError(t, err)
		assert.Equal(t, c.want, m.Config.Window)
		require.NoError(t, m.Close())
	}
	_, err := Open(path, WithWindow(-5))
	require.ErrorContains(t, err, "window -5")
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(filepath.Join(dir, "missing.gguf"))
	require.ErrorContains(t, err, "no such file")

	empty := filepath.Join(dir, "empty.gguf")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	_, err = Open(empty)
	require.ErrorContains(t, err, "empty.gguf: offset 0: magic")

	// A valid GGUF that is not a model.
	sink := filepath.Join("testdata", "gguf", "kitchen-sink.gguf")
	_, err = Open(sink)
	require.ErrorContains(t, err, `unsupported architecture "test"`)
	// …but OpenGGUF reads it.
	f, err := OpenGGUF(sink)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, f.Close())

	// Truncated model file: the error names the tensor and the range.
	data, err := os.ReadFile(filepath.Join("testdata", "gguf", "tiny-llama-f16.gguf"))
	require.NoError(t, err)
	cut := filepath.Join(dir, "cut.gguf")
	require.NoError(t, os.WriteFile(cut, data[:len(data)-100], 0o644))
	_, err = Open(cut)
	require.ErrorContains(t, err, "lies beyond end of file")
	require.ErrorContains(t, err, "cut.gguf")
	require.Regexp(t, `tensor "[a-z0-9_.]+" \((F16|F32), shape \[[0-9 ]+\]\): data \[`, err.Error(), "names the tensor, its type and shape")
}

func TestOpenTokenizerError(t *testing.T) {
	cfg := smallConfig
	w, err := newSyntheticWriter(cfg, F32, 1, nil)
	require.NoError(t, err)
	set(w, "tokenizer.ggml.bos_token_id", uint32(1000)) // outside the 40-token vocabulary
	path := filepath.Join(t.TempDir(), "badtok.gguf")
	require.NoError(t, w.WriteFile(path))
	_, err = Open(path)
	require.ErrorIs(t, err, ErrTokenizer)
	m, err := Open(path, WithoutTokenizer())
	require.NoError(t, err, "the rest of the model is fine")
	require.NoError(t, m.Close())
}

func TestWriteSynthetic(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dim: 64, NumLayers: 2, NumHeads: 4, NumKVHeads: 1, FFNDim: 128, VocabSize: 300, Window: 32}
	for _, dt := range []DType{F32, F16, BF16, Q8_0, Q4_0} {
		t.Run(dt.String(), func(t *testing.T) {
			a, b, c := filepath.Join(dir, dt.String()+"a"), filepath.Join(dir, dt.String()+"b"), filepath.Join(dir, dt.String()+"c")
			require.NoError(t, WriteSynthetic(a, cfg, dt, 7, nil))
			require.NoError(t, WriteSynthetic(b, cfg, dt, 7, nil))
			require.NoError(t, WriteSynthetic(c, cfg, dt, 8, nil))
			da, _ := os.ReadFile(a)
			db, _ := os.ReadFile(b)
			dc, _ := os.ReadFile(c)
			assert.True(t, bytes.Equal(da, db), "same seed, same bytes")
			assert.False(t, bytes.Equal(da, dc), "different seed, different weights")

			m, err := Open(a)
			require.NoError(t, err)
			defer m.Close()
			want := syntheticDefaults(cfg)
			assert.Equal(t, want, m.Config)
			assert.Equal(t, dt, m.Tensor("blk.1.ffn_down.weight").Type)
			assert.Equal(t, F32, m.Tensor("blk.1.ffn_norm.weight").Type)
			require.NotNil(t, m.Tokenizer)
			assert.Equal(t, 300, m.Tokenizer.VocabSize())

			// Weights have the documented ranges.
			q, err := m.Tensor("blk.0.attn_q.weight").Float32s()
			require.NoError(t, err)
			bound := math.Sqrt(3.0/64) * 1.01
			var mean float64
			for _, v := range q {
				require.LessOrEqual(t, math.Abs(float64(v)), bound)
				mean += float64(v)
			}
			assert.InDelta(t, 0, mean/float64(len(q)), 0.01)
			norm, err := m.Tensor("output_norm.weight").Float32s()
			require.NoError(t, err)
			for _, v := range norm {
				require.InDelta(t, 1, v, 0.1)
			}
		})
	}
	// Rows that are not whole blocks, or a bad config, are errors.
	require.ErrorContains(t, WriteSynthetic(filepath.Join(dir, "x"), Config{Dim: 48, NumLayers: 1, NumHeads: 2, FFNDim: 64, VocabSize: 10}, Q4_0, 1, nil),
		"not whole Q4_0 blocks")
	require.ErrorContains(t, WriteSynthetic(filepath.Join(dir, "x"), Config{Dim: 64, NumLayers: 1, NumHeads: 3, FFNDim: 64, VocabSize: 10}, F32, 1, nil),
		"invalid config")
	require.ErrorContains(t, WriteSynthetic(filepath.Join(dir, "x"), cfg, Q4_K, 1, nil), "not whole Q4_K blocks")
	require.ErrorIs(t, WriteSynthetic(filepath.Join(dir, "x"), cfg, IQ2_XXS, 1, nil), ErrUnsupportedType)
	// Custom tokens set the vocabulary size.
	p := filepath.Join(dir, "tok")
	require.NoError(t, WriteSynthetic(p, cfg, F32, 1, []string{"<unk>", "<s>", "</s>", "a", "b"}))
	m, err := Open(p)
	require.NoError(t, err)
	assert.Equal(t, 5, m.Config.VocabSize)
	require.NoError(t, m.Close())
}

func TestWriteSyntheticQuantized(t *testing.T) {
	// Every quantizable block type makes a model Open accepts, whose
	// weights are the F32 model's within the type's NMSE bound.
	dir := t.TempDir()
	cfg := Config{Dim: 256, NumLayers: 1, NumHeads: 4, NumKVHeads: 2, FFNDim: 512, VocabSize: 64}
	ref := filepath.Join(dir, "f32")
	require.NoError(t, WriteSynthetic(ref, cfg, F32, 3, nil))
	mr, err := Open(ref)
	require.NoError(t, err)
	defer mr.Close()
	for _, c := range nmseCases {
		if c.t.BlockSize() == 1 {
			continue
		}
		t.Run(c.t.String(), func(t *testing.T) {
			p := filepath.Join(dir, c.t.String())
			require.NoError(t, WriteSynthetic(p, cfg, c.t, 3, nil))
			m, err := Open(p)
			require.NoError(t, err)
			defer m.Close()
			for _, name := range []string{"token_embd.weight", "blk.0.attn_q.weight", "blk.0.ffn_down.weight"} {
				tn := m.Tensor(name)
				require.Equal(t, c.t, tn.Type, name)
				got, err := tn.Float32s()
				require.NoError(t, err)
				want, err := mr.Tensor(name).Float32s()
				require.NoError(t, err)
				assert.LessOrEqual(t, nmse(want, got), c.gauss, name)
			}
		})
	}
}

func TestSyntheticVocab(t *testing.T) {
	for _, n := range []int{3, 10, 259, 300, 32000, 70000} {
		v := SyntheticVocab(n)
		require.Len(t, v, n)
		seen := map[string]bool{}
		for _, s := range v {
			require.False(t, seen[s], "duplicate %q", s)
			seen[s] = true
		}
	}
	v := SyntheticVocab(300)
	assert.Equal(t, []string{"<unk>", "<s>", "</s>", "<0x00>"}, v[:4])
	assert.Equal(t, "<0xFF>", v[258])
	assert.Equal(t, "▁", v[259])
}

// TestOpenNoHeapCopy opens a ~64 MiB synthetic model and reads every byte
// of every tensor: the Go heap must grow by far less than the file, because
// tensor data are views into the mapping.
func TestOpenNoHeapCopy(t *testing.T) {
	if !mmapSupported {
		t.Skip("this platform reads files into the heap")
	}
	if testing.Short() {
		t.Skip("writes a 64 MiB file")
	}
	cfg := Config{Dim: 512, NumLayers: 4, NumHeads: 8, NumKVHeads: 8, FFNDim: 1536, VocabSize: 2048}
	path := filepath.Join(t.TempDir(), "big.gguf")
	require.NoError(t, WriteSynthetic(path, cfg, F32, 1, nil))
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Greater(t, st.Size(), int64(60<<20))

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m, err := Open(path, WithoutTokenizer())
	require.NoError(t, err)
	var sum uint64
	for _, tn := range m.Tensors {
		b, err := tn.Bytes()
		require.NoError(t, err)
		for i := 0; i < len(b); i += 64 {
			sum += uint64(b[i])
		}
	}
	runtime.ReadMemStats(&after)
	require.NoError(t, m.Close())
	assert.NotZero(t, sum)
	grew := after.TotalAlloc - before.TotalAlloc
	t.Logf("file %d MiB, Go allocations during Open+read %d KiB", st.Size()>>20, grew>>10)
	assert.Less(t, grew, uint64(2<<20), "tensor data must not be copied into the heap")
}
