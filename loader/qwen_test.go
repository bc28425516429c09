package loader

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// qwenConfig is a small Qwen model: qwen2 with heads·headDim = dim, as
// llama.cpp's qwen2 needs; qwen3 with head dim 24 from key_length, so
// that heads·headDim (48) is not dim (32), as in the real Qwen3 sizes.
func qwenConfig(arch string) Config {
	c := Config{Arch: arch, Dim: 32, NumLayers: 2, NumHeads: 2, NumKVHeads: 1, FFNDim: 32, VocabSize: 40, ContextLength: 64}
	if arch == "qwen3" {
		c.HeadDim = 24
	}
	return c
}

// llama3Config is a llama model whose RoPE carries frequency factors.
func llama3Config(arch string) Config {
	c := swaConfig(arch, 2)
	c.RopeFreqFactors = []float64{1, 1.5, 3.25, 8, 8, 8, 8, 8} // head dim 16: 8 pairs
	return c
}

func bias(l int, name string) string { return fmt.Sprintf("blk.%d.%s.bias", l, name) }

// TestQwenLlama3RoundTrip writes every new kind of model, opens it, and
// checks that the Config comes back as SyntheticConfig says, with the
// tensors and keys the arch implies and no others.
func TestQwenLlama3RoundTrip(t *testing.T) {
	cases := []struct {
		name   string
		cfg    Config
		rope   RopeStyle
		bias   bool // attn_q/k/v.bias
		qkNorm bool
		freqs  bool // rope_freqs.weight
		keys   []string
		noKeys []string
	}{
		{"qwen2", qwenConfig("qwen2"), RopeHalf, true, false, false,
			[]string{"qwen2.attention.layer_norm_rms_epsilon"},
			[]string{"qwen2.attention.sliding_window", "qwen2.attention.sliding_window_pattern", "qwen2.rope.scaling.type"}},
		{"qwen3 head dim from key_length", qwenConfig("qwen3"), RopeHalf, false, true, false,
			[]string{"qwen3.attention.layer_norm_rms_epsilon", "qwen3.attention.key_length"},
			[]string{"qwen3.attention.sliding_window", "qwen3.rope.scaling.type"}},
		{"qwen2 theta 1e6, eps 1e-6", func() Config {
			c := qwenConfig("qwen2")
			c.RopeTheta, c.NormEps = 1e6, 1e-6
			return c
		}(), RopeHalf, true, false, false, nil, nil},
		{"llama with rope_freqs.weight", llama3Config("llama"), RopePairwise, false, false, true, nil,
			// llama.cpp aborts on rope.scaling.type "llama3": only the tensor.
			[]string{"llama.rope.scaling.type", "llama.rope.scaling.factor", "llama.rope.scaling.low_freq_factor"}},
		{"mistral with rope_freqs.weight", llama3Config("mistral"), RopePairwise, false, false, true, nil, nil},
		{"llama without factors", swaConfig("llama", 2), RopePairwise, false, false, false, nil, nil},
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("%d.gguf", i))
			require.NoError(t, WriteSynthetic(path, c.cfg, F32, 7, nil))
			m, err := Open(path)
			require.NoError(t, err)
			defer m.Close()
			want := SyntheticConfig(c.cfg)
			assert.Equal(t, want, m.Config, "round trip")
			cfg := m.Config
			assert.Equal(t, c.rope, cfg.Rope)
			assert.Equal(t, c.bias, cfg.QKVBias, "QKVBias")
			assert.Equal(t, c.qkNorm, cfg.QKNorm, "QKNorm")
			assert.Equal(t, c.freqs, cfg.RopeFreqFactors != nil, "RopeFreqFactors")
			for l := range cfg.Layers {
				assert.Equal(t, LayerSpec{RopeTheta: want.RopeTheta, RopeScale: 1}, cfg.Layers[l], "layer %d is global", l)
			}
			for _, k := range c.keys {
				assert.True(t, m.GGUF.Has(k), "key %s", k)
			}
			for _, k := range c.noKeys {
				assert.False(t, m.GGUF.Has(k), "key %s", k)
			}

			q, kv := uint64(cfg.NumHeads*cfg.HeadDim), uint64(cfg.NumKVHeads*cfg.HeadDim)
			for l := range cfg.NumLayers {
				for _, b := range []struct {
					name  string
					width uint64
				}{{"attn_q", q}, {"attn_k", kv}, {"attn_v", kv}} {
					bt := m.Tensor(bias(l, b.name))
					if !c.bias {
						assert.Nil(t, bt, "layer %d %s.bias", l, b.name)
						continue
					}
					require.NotNil(t, bt, "layer %d %s.bias", l, b.name)
					assert.Equal(t, []uint64{b.width}, bt.Shape)
					assert.Equal(t, F32, bt.Type)
					v, err := bt.Float32s()
					require.NoError(t, err)
					nonzero := 0
					for _, x := range v {
						require.True(t, x >= -0.5 && x <= 0.5, "bias values are uniform in ±0.5, got %g", x)
						if x != 0 {
							nonzero++
						}
					}
					assert.Greater(t, nonzero, len(v)/2, "biases are random, not zero")
				}
				for _, n := range []string{"attn_q_norm", "attn_k_norm"} {
					nt := m.Tensor(blk(l, n))
					if !c.qkNorm {
						assert.Nil(t, nt, "layer %d %s", l, n)
						continue
					}
					require.NotNil(t, nt, "layer %d %s", l, n)
					assert.Equal(t, []uint64{uint64(cfg.HeadDim)}, nt.Shape)
				}
			}
			ft := m.Tensor("rope_freqs.weight")
			if !c.freqs {
				assert.Nil(t, ft)
				return
			}
			require.NotNil(t, ft)
			assert.Equal(t, []uint64{uint64(cfg.RopeDim / 2)}, ft.Shape)
			assert.Equal(t, F32, ft.Type)
			v, err := ft.Float32s()
			require.NoError(t, err)
			for i, x := range v {
				assert.Equal(t, float32(c.cfg.RopeFreqFactors[i]), x, "factor %d", i)
			}
		})
	}
}

// TestQwenSpecsListNoOtherBias: the qwen2 specs name attn_q/k/v.bias and
// no other bias, so that a file with attn_output.bias or output.bias (which
// llama.cpp's qwen2 would add) is left to the engine, which refuses a
// tensor it does not read by name; qwen3 lists no bias at all.
func TestQwenSpecsListNoOtherBias(t *testing.T) {
	for _, arch := range []string{"qwen2", "qwen3"} {
		t.Run(arch, func(t *testing.T) {
			c := SyntheticConfig(qwenConfig(arch))
			var got []string
			for _, s := range c.tensorSpecs() {
				if strings.HasSuffix(s.name, ".bias") {
					got = append(got, s.name)
				}
			}
			var want []string
			if arch == "qwen2" {
				for l := range c.NumLayers {
					want = append(want, bias(l, "attn_q"), bias(l, "attn_k"), bias(l, "attn_v"))
				}
			}
			assert.Equal(t, want, got)

			// Present in a file, such a bias passes the loader untouched.
			m, err := checkEdited(t, qwenConfig(arch), func(w *GGUFWriter) {
				addZeros(w, bias(0, "attn_output"), F32, 32)
				addZeros(w, "output.bias", F32, 40)
			})
			require.NoError(t, err)
			assert.Equal(t, c, m)
		})
	}
}

// TestQwenTiedOutput: without output.weight the classifier is token_embd
// (llama.cpp's qwen2 and qwen3 load either); the Config is the same.
func TestQwenTiedOutput(t *testing.T) {
	for _, arch := range []string{"qwen2", "qwen3"} {
		t.Run(arch, func(t *testing.T) {
			got, err := checkEdited(t, qwenConfig(arch), func(w *GGUFWriter) { deleteTensor(w, "output.weight") })
			require.NoError(t, err)
			assert.Equal(t, SyntheticConfig(qwenConfig(arch)), got)
		})
	}
}

// TestQwenRejects: missing biases and norms are named, bad shapes and
// types explained, and what llama.cpp's qwen archs do not read refused.
func TestQwenRejects(t *testing.T) {
	qwen2, qwen3 := qwenConfig("qwen2"), qwenConfig("qwen3")
	cases := []struct {
		name string
		cfg  Config
		edit func(w *GGUFWriter)
		want string
	}{
		{"qwen2 attn_q.bias", qwen2, func(w *GGUFWriter) { deleteTensor(w, bias(0, "attn_q")) }, "tensor blk.0.attn_q.bias is missing"},
		{"qwen2 attn_k.bias", qwen2, func(w *GGUFWriter) { deleteTensor(w, bias(1, "attn_k")) }, "tensor blk.1.attn_k.bias is missing"},
		{"qwen2 attn_v.bias", qwen2, func(w *GGUFWriter) { deleteTensor(w, bias(1, "attn_v")) }, "tensor blk.1.attn_v.bias is missing"},
		{"qwen2 bias shape", qwen2, func(w *GGUFWriter) { replaceTensor(w, bias(0, "attn_k"), F32, 32) },
			"tensor blk.0.attn_k.bias has shape [32], want [16]"},
		{"qwen2 bias type", qwen2, func(w *GGUFWriter) { replaceTensor(w, bias(0, "attn_v"), F16, 16) },
			"tensor blk.0.attn_v.bias has type F16, want F32"},
		{"qwen3 attn_q_norm", qwen3, func(w *GGUFWriter) { deleteTensor(w, blk(1, "attn_q_norm")) }, "tensor blk.1.attn_q_norm.weight is missing"},
		{"qwen3 attn_k_norm", qwen3, func(w *GGUFWriter) { deleteTensor(w, blk(0, "attn_k_norm")) }, "tensor blk.0.attn_k_norm.weight is missing"},
		{"qwen3 attn_k_norm of dim/heads", qwen3, func(w *GGUFWriter) { replaceTensor(w, blk(0, "attn_k_norm"), F32, 16) },
			"tensor blk.0.attn_k_norm.weight has shape [16], want [24]"},
		{"qwen3 without key_length: head dim dim/heads", qwen3, func(w *GGUFWriter) {
			for _, k := range []string{"attention.key_length", "attention.value_length", "rope.dimension_count"} {
				deleteKey(w, "qwen3."+k)
			}
		},
			"tensor blk.0.attn_q.weight has shape [32 48], want [32 32]"},
		{"qwen2 eps", qwen2, func(w *GGUFWriter) { deleteKey(w, "qwen2.attention.layer_norm_rms_epsilon") },
			"metadata qwen2.attention.layer_norm_rms_epsilon is missing"},
		{"qwen3 eps", qwen3, func(w *GGUFWriter) { deleteKey(w, "qwen3.attention.layer_norm_rms_epsilon") },
			"metadata qwen3.attention.layer_norm_rms_epsilon is missing"},
		{"qwen2 yarn", qwen2, func(w *GGUFWriter) { set(w, "qwen2.rope.scaling.type", "yarn") },
			"metadata qwen2.rope.scaling.type = yarn is not supported"},
		{"qwen2 llama3 scaling", qwen2, func(w *GGUFWriter) { set(w, "qwen2.rope.scaling.type", "llama3") },
			"metadata qwen2.rope.scaling.type = llama3 is not supported"},
		{"qwen3 linear factor", qwen3, func(w *GGUFWriter) { set(w, "qwen3.rope.scaling.factor", float32(4)) },
			"metadata qwen3.rope.scaling.factor = 4 is not supported (plain RoPE only)"},
		{"qwen2 rope_freqs.weight", qwen2, func(w *GGUFWriter) { addZeros(w, "rope_freqs.weight", F32, 8) },
			"tensor rope_freqs.weight is present, but qwen2 takes no RoPE frequency factors"},
		{"gemma3 rope_freqs.weight", func() Config { c := swaConfig("gemma3", 2); c.Window = 8; return c }(),
			func(w *GGUFWriter) { addZeros(w, "rope_freqs.weight", F32, 8) },
			"tensor rope_freqs.weight is present, but gemma3 takes no RoPE frequency factors"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := checkEdited(t, c.cfg, c.edit)
			require.ErrorContains(t, err, c.want)
			require.NotContains(t, err.Error(), "\n", "errors print on one line")
		})
	}
}

// TestQwenIgnoresWindowKeys: llama.cpp's qwen2 and qwen3 read neither
// sliding_window nor its pattern, so every layer stays global; WithWindow
// still overrides.
func TestQwenIgnoresWindowKeys(t *testing.T) {
	for _, arch := range []string{"qwen2", "qwen3"} {
		t.Run(arch, func(t *testing.T) {
			got, err := checkEdited(t, qwenConfig(arch), func(w *GGUFWriter) {
				set(w, arch+".attention.sliding_window", uint32(8))
				set(w, arch+".attention.sliding_window_pattern", []bool{true, false})
			})
			require.NoError(t, err)
			assert.Equal(t, []int{0, 0}, windowsOf(got))
			assert.Zero(t, got.Window)

			applyWindow(&got, 4)
			assert.Equal(t, []int{4, 4}, windowsOf(got))
		})
	}
}

// TestSyntheticRefusesQwenShapes: shapes llama.cpp's qwen archs cannot
// load are refused by the writer, with the reason.
func TestSyntheticRefusesQwenShapes(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"qwen2 heads·headDim ≠ dim", func() Config { c := qwenConfig("qwen2"); c.HeadDim = 8; return c }(),
			"qwen2: 2 heads of 8 are not dim 32"},
		{"qwen3 partial RoPE", func() Config { c := qwenConfig("qwen3"); c.RopeDim = 8; return c }(),
			"qwen3: rope dim 8 differs from head dim 24"},
		{"qwen2 local layers", func() Config {
			c := qwenConfig("qwen2")
			c.Layers = []LayerSpec{{Window: 4, RopeTheta: 1e4, RopeScale: 1}, {RopeTheta: 1e4, RopeScale: 1}}
			return c
		}(), "qwen2 metadata cannot express the layers"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := SyntheticWriter(c.cfg, F32, 1, nil)
			require.ErrorContains(t, err, c.want)
		})
	}
}

// TestSyntheticConfigArchFixesNewFields: QKVBias and RopeFreqFactors are
// what the arch makes of them, whatever the caller passed.
func TestSyntheticConfigArchFixesNewFields(t *testing.T) {
	c := qwenConfig("qwen2")
	c.RopeFreqFactors = []float64{2, 2, 2, 2, 2, 2, 2, 2}
	c.QKNorm = true
	got := SyntheticConfig(c)
	assert.True(t, got.QKVBias)
	assert.False(t, got.QKNorm)
	assert.Nil(t, got.RopeFreqFactors, "qwen2 takes no frequency factors")

	l := llama3Config("llama")
	l.QKVBias = true
	l.RopeFreqFactors[1] = 1.1 // not a float32
	got = SyntheticConfig(l)
	assert.False(t, got.QKVBias)
	assert.Equal(t, float64(float32(1.1)), got.RopeFreqFactors[1], "rounded as the file stores it")
	assert.Equal(t, 1.1, l.RopeFreqFactors[1], "the caller's slice is not modified")
}

// Llama 3.1 8B's RoPE: θ = 500000, 128 dims per head (64 pairs), and
// rope_scaling {factor 8, low_freq_factor 1, high_freq_factor 4,
// original_max_position_embeddings 8192}.
func llama31Keys(w *GGUFWriter) {
	set(w, "llama.rope.freq_base", float32(500000))
	set(w, "llama.rope.scaling.type", "llama3")
	set(w, "llama.rope.scaling.factor", float32(8))
	set(w, "llama.rope.scaling.low_freq_factor", float32(1))
	set(w, "llama.rope.scaling.high_freq_factor", float32(4))
	set(w, "llama.rope.scaling.original_context_length", uint32(8192))
}

// llama31Config has Llama 3.1's head of 128 dims in a tiny model.
var llama31Config = Config{Arch: "llama", Dim: 128, NumLayers: 1, NumHeads: 1, FFNDim: 32, VocabSize: 40, ContextLength: 64}

// TestLlama3FactorsByHand checks the rule against values worked out by
// hand for Llama 3.1 8B. Pair i has the wavelength λᵢ = 2π·500000^(i/64);
// the band edges are L/hi = 8192/4 = 2048 and L/lo = 8192.
//
//   - pair 28: λ = 2π·500000^(28/64) ≈ 1956.5 < 2048: factor 1, and so for
//     every pair below;
//   - pair 29: λ ≈ 2401.7, inside the band;
//   - pair 34: λ ≈ 6695.1, inside; pair 35: λ ≈ 8218.7 > 8192: factor 8,
//     and so for every pair above;
//   - pair 32: λ = 2π·√500000 = 2π·707.10678 ≈ 4442.8829, so
//     m = (8192/4442.8829 − 1)/(4 − 1) = 0.84384782/3 ≈ 0.28128261 and the
//     factor is 1/((1 − m)/8 + m) = 1/(0.08983967 + 0.28128261) =
//     1/0.37112228 ≈ 2.6945297.
func TestLlama3FactorsByHand(t *testing.T) {
	got, err := checkEdited(t, llama31Config, llama31Keys)
	require.NoError(t, err)
	f := got.RopeFreqFactors
	require.Len(t, f, 64)
	for i := 0; i <= 28; i++ {
		assert.Equal(t, 1.0, f[i], "pair %d: high frequency, unchanged", i)
	}
	for i := 35; i < 64; i++ {
		assert.Equal(t, 8.0, f[i], "pair %d: low frequency, divided by the factor", i)
	}
	for i := 29; i <= 34; i++ {
		assert.True(t, f[i] > 1 && f[i] < 8, "pair %d: in the band, got %g", i, f[i])
		if i > 29 {
			assert.Greater(t, f[i], f[i-1], "pair %d: the divisor grows with the wavelength", i)
		}
	}
	assert.InDelta(t, 2.6945297, f[32], 1e-6, "pair 32")

	// The converter's defaults are Llama 3.1's values: the type alone
	// gives the same factors.
	defaults, err := checkEdited(t, llama31Config, func(w *GGUFWriter) {
		set(w, "llama.rope.freq_base", float32(500000))
		set(w, "llama.rope.scaling.type", "llama3")
	})
	require.NoError(t, err)
	assert.Equal(t, f, defaults.RopeFreqFactors)
}

// TestLlama3FactorsKeysAndTensor: the keys and rope_freqs.weight are two
// spellings of one scaling. A tensor holding the factors the keys give
// reads back as the same Config; with both in one file, the tensor wins.
func TestLlama3FactorsKeysAndTensor(t *testing.T) {
	fromKeys, err := checkEdited(t, llama31Config, llama31Keys)
	require.NoError(t, err)

	tensorOf := func(f []float64) []float32 {
		v := make([]float32, len(f))
		for i, x := range f {
			v[i] = float32(x)
		}
		return v
	}
	fromTensor, err := checkEdited(t, llama31Config, func(w *GGUFWriter) {
		set(w, "llama.rope.freq_base", float32(500000))
		require.NoError(t, w.AddTensor("rope_freqs.weight", F32, []uint64{64}, tensorOf(fromKeys.RopeFreqFactors)))
	})
	require.NoError(t, err)
	assert.Equal(t, fromKeys, fromTensor)

	// Both: a tensor of other values overrides what the keys say.
	other := make([]float64, 64)
	for i := range other {
		other[i] = 1 + float64(i)/4
	}
	both, err := checkEdited(t, llama31Config, func(w *GGUFWriter) {
		llama31Keys(w)
		require.NoError(t, w.AddTensor("rope_freqs.weight", F32, []uint64{64}, tensorOf(other)))
	})
	require.NoError(t, err)
	assert.Equal(t, other, both.RopeFreqFactors)
}

// TestLlama3Rejects: malformed llama3 keys and rope_freqs tensors.
func TestLlama3Rejects(t *testing.T) {
	llama := swaConfig("llama", 1) // head dim 16: 8 pairs
	cases := []struct {
		name string
		edit func(w *GGUFWriter)
		want string
	}{
		{"high below low", func(w *GGUFWriter) {
			set(w, "llama.rope.scaling.type", "llama3")
			set(w, "llama.rope.scaling.low_freq_factor", float32(4))
			set(w, "llama.rope.scaling.high_freq_factor", float32(1))
		}, "metadata llama.rope.scaling.high_freq_factor = 1 is below low_freq_factor 4"},
		{"zero factor", func(w *GGUFWriter) {
			set(w, "llama.rope.scaling.type", "llama3")
			set(w, "llama.rope.scaling.factor", float32(0))
		}, "metadata llama.rope.scaling.factor = 0, want a positive finite number"},
		{"negative low factor", func(w *GGUFWriter) {
			set(w, "llama.rope.scaling.type", "llama3")
			set(w, "llama.rope.scaling.low_freq_factor", float32(-1))
		}, "metadata llama.rope.scaling.low_freq_factor = -1, want a positive finite number"},
		{"zero original context", func(w *GGUFWriter) {
			set(w, "llama.rope.scaling.type", "llama3")
			set(w, "llama.rope.scaling.original_context_length", uint32(0))
		}, "metadata llama.rope.scaling.original_context_length is 0"},
		{"original context of the wrong type", func(w *GGUFWriter) {
			set(w, "llama.rope.scaling.type", "llama3")
			set(w, "llama.rope.scaling.original_context_length", "8k")
		}, "metadata llama.rope.scaling.original_context_length has type string"},
		{"linear scaling on top", func(w *GGUFWriter) {
			set(w, "llama.rope.scaling.type", "llama3")
			set(w, "llama.rope.freq_scale", float32(0.5))
		}, "metadata llama.rope.freq_scale = 0.5 is not supported with rope.scaling.type llama3"},
		{"yarn stays refused", func(w *GGUFWriter) { set(w, "llama.rope.scaling.type", "yarn") },
			"metadata llama.rope.scaling.type = yarn is not supported (plain RoPE only)"},
		{"linear stays refused", func(w *GGUFWriter) {
			set(w, "llama.rope.scaling.type", "linear")
			set(w, "llama.rope.scaling.factor", float32(2))
		}, "metadata llama.rope.scaling.type = linear is not supported"},
		{"rope_freqs shape", func(w *GGUFWriter) { addZeros(w, "rope_freqs.weight", F32, 16) },
			"tensor rope_freqs.weight has shape [16], want [8] (rope dimension 16 / 2)"},
		{"rope_freqs type", func(w *GGUFWriter) { addZeros(w, "rope_freqs.weight", F16, 8) },
			"tensor rope_freqs.weight has type F16, want F32"},
		{"rope_freqs of zeros", func(w *GGUFWriter) { addZeros(w, "rope_freqs.weight", F32, 8) },
			"rope frequency factor 0 is 0, want a positive finite number"},
		{"rope_freqs with a NaN", func(w *GGUFWriter) {
			v := []float32{1, 1, 1, float32(math.NaN()), 1, 1, 1, 1}
			require.NoError(t, w.AddTensor("rope_freqs.weight", F32, []uint64{8}, v))
		}, "rope frequency factor 3 is NaN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := checkEdited(t, llama, c.edit)
			require.ErrorContains(t, err, c.want)
			require.NotContains(t, err.Error(), "\n", "errors print on one line")
		})
	}
}

// TestValidateRopeFreqFactors: one factor per pair, each positive and finite.
func TestValidateRopeFreqFactors(t *testing.T) {
	good := SyntheticConfig(llama3Config("llama"))
	require.NoError(t, good.Validate())
	cases := []struct {
		name    string
		factors []float64
		want    string
	}{
		{"too few", []float64{1, 2}, "2 rope frequency factors, want rope dim 16 / 2 = 8"},
		{"empty, not nil", []float64{}, "0 rope frequency factors, want rope dim 16 / 2 = 8"},
		{"negative", []float64{1, 1, -2, 1, 1, 1, 1, 1}, "rope frequency factor 2 is -2"},
		{"infinite", []float64{1, 1, 1, 1, 1, 1, 1, math.Inf(1)}, "rope frequency factor 7 is +Inf"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := good
			bad.RopeFreqFactors = c.factors
			require.ErrorContains(t, bad.Validate(), c.want)
		})
	}
}
