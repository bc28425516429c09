package loader

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// swaConfig is a small model for the SWA families: 2 heads of 16 (4 KV
// heads' worth of K/V would not divide), width 32.
func swaConfig(arch string, layers int) Config {
	return Config{Arch: arch, Dim: 32, NumLayers: layers, NumHeads: 2, NumKVHeads: 1, FFNDim: 32, VocabSize: 40, ContextLength: 64}
}

// layerSpecs builds Layers from parallel windows and thetas (scale 1
// unless scales is given).
func layerSpecs(windows []int, thetas []float64, scales ...float64) []LayerSpec {
	out := make([]LayerSpec, len(windows))
	for l := range out {
		out[l] = LayerSpec{Window: windows[l], RopeTheta: thetas[l], RopeScale: 1}
		if scales != nil {
			out[l].RopeScale = scales[l]
		}
	}
	return out
}

func windowsOf(c Config) []int {
	out := make([]int, len(c.Layers))
	for l, s := range c.Layers {
		out[l] = s.Window
	}
	return out
}

// TestSyntheticArchRoundTrip writes a model of every arch, opens it and
// checks that the Config comes back as written, with the layers, keys and
// tensors the arch implies.
func TestSyntheticArchRoundTrip(t *testing.T) {
	const e4, e6 = 1e4, 1e6
	withLayers := func(c Config, ls []LayerSpec) Config { c.Layers = ls; return c }
	cases := []struct {
		name    string
		cfg     Config
		layers  []LayerSpec
		pattern any      // the sliding_window_pattern key's value; nil: absent
		keys    []string // further keys the file must have
		noKeys  []string // keys it must not have
	}{
		{"llama all local", func() Config { c := swaConfig("llama", 2); c.Window = 8; return c }(),
			layerSpecs([]int{8, 8}, []float64{e4, e4}), nil, nil, []string{"llama.attention.sliding_window_pattern"}},
		{"mistral interleaved", withLayers(swaConfig("mistral", 4), layerSpecs([]int{8, 0, 8, 0}, []float64{e4, e4, e4, e4})),
			layerSpecs([]int{8, 0, 8, 0}, []float64{e4, e4, e4, e4}), []bool{true, false, true, false}, nil, nil},
		{"gemma2 defaults", swaConfig("gemma2", 4),
			layerSpecs([]int{4096, 0, 4096, 0}, []float64{e4, e4, e4, e4}), nil,
			[]string{"gemma2.attn_logit_softcapping", "gemma2.final_logit_softcapping", "gemma2.attention.sliding_window"},
			[]string{"gemma2.rope.freq_base_swa"}},
		{"gemma2 period 3, local base", func() Config {
			c := swaConfig("gemma2", 3)
			c.Window, c.RopeTheta = 16, e6
			c.Layers = layerSpecs([]int{16, 16, 0}, []float64{5000, 5000, e6})
			return c
		}(), layerSpecs([]int{16, 16, 0}, []float64{5000, 5000, e6}), uint32(3), []string{"gemma2.rope.freq_base_swa"}, nil},
		{"gemma3 five local to one global", func() Config { c := swaConfig("gemma3", 7); c.Window, c.RopeTheta = 8, e6; return c }(),
			layerSpecs([]int{8, 8, 8, 8, 8, 0, 8}, []float64{e4, e4, e4, e4, e4, e6, e4}), nil,
			[]string{"gemma3.rope.freq_base_swa"}, []string{"gemma3.final_logit_softcapping", "gemma3.rope.scaling.factor"}},
		{"gemma3 linear scaling on global layers, final softcap", func() Config {
			c := swaConfig("gemma3", 6)
			c.Window, c.RopeTheta, c.FinalSoftcap = 8, e6, 30
			c.Layers = layerSpecs([]int{8, 8, 8, 8, 8, 0}, []float64{e4, e4, e4, e4, e4, e6}, 1, 1, 1, 1, 1, 8)
			return c
		}(), layerSpecs([]int{8, 8, 8, 8, 8, 0}, []float64{e4, e4, e4, e4, e4, e6}, 1, 1, 1, 1, 1, 8), nil,
			[]string{"gemma3.rope.scaling.type", "gemma3.rope.scaling.factor", "gemma3.final_logit_softcapping"}, nil},
		{"gemma3 without a window", func() Config { c := swaConfig("gemma3", 2); c.RopeTheta = e6; return c }(),
			layerSpecs([]int{0, 0}, []float64{e6, e6}), nil, nil,
			[]string{"gemma3.attention.sliding_window", "gemma3.rope.freq_base_swa"}},
		{"cohere2 three local to one global", func() Config { c := swaConfig("cohere2", 4); c.Window, c.LogitScale = 16, 0.25; return c }(),
			layerSpecs([]int{16, 16, 16, 0}, []float64{e4, e4, e4, 0}), nil,
			[]string{"cohere2.logit_scale", "cohere2.attention.layer_norm_epsilon"}, []string{"cohere2.attention.layer_norm_rms_epsilon"}},
		{"cohere2 irregular layers", withLayers(swaConfig("cohere2", 5), layerSpecs([]int{4, 0, 4, 4, 0}, []float64{e4, 0, e4, e4, 0})),
			layerSpecs([]int{4, 0, 4, 4, 0}, []float64{e4, 0, e4, e4, 0}), []bool{true, false, true, true, false}, nil, nil},
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, string(rune('a'+i))+".gguf")
			require.NoError(t, WriteSynthetic(path, c.cfg, F32, 3, nil))
			m, err := Open(path)
			require.NoError(t, err)
			defer m.Close()
			assert.Equal(t, SyntheticConfig(c.cfg), m.Config, "round trip")
			assert.Equal(t, c.layers, m.Config.Layers)

			key := c.cfg.Arch + ".attention.sliding_window_pattern"
			if v, ok := m.GGUF.Metadata.Get(key); c.pattern == nil {
				assert.False(t, ok, "%s is written only for layers the arch's rule does not give", key)
			} else {
				require.True(t, ok, key)
				assert.Equal(t, c.pattern, v.Data)
			}
			for _, k := range c.keys {
				assert.True(t, m.GGUF.Has(k), "key %s", k)
			}
			for _, k := range c.noKeys {
				assert.False(t, m.GGUF.Has(k), "key %s", k)
			}

			cfg := m.Config
			tied := cfg.Arch == "gemma2" || cfg.Arch == "cohere2"
			assert.Equal(t, tied, m.Tensor("output.weight") == nil, "output.weight")
			for l := range cfg.NumLayers {
				has := func(name string) bool { return m.Tensor(blk(l, name)) != nil }
				assert.Equal(t, cfg.PostNorms, has("post_attention_norm") && has("post_ffw_norm"), "layer %d post norms", l)
				assert.Equal(t, cfg.QKNorm, has("attn_q_norm") && has("attn_k_norm"), "layer %d q/k norms", l)
				assert.Equal(t, !cfg.Parallel, has("ffn_norm"), "layer %d ffn_norm", l)
			}
			if cfg.QKNorm {
				qn := m.Tensor("blk.0.attn_q_norm.weight")
				assert.Equal(t, []uint64{16}, qn.Shape)
				assert.Equal(t, F32, qn.Type)
				w, err := qn.Float32s()
				require.NoError(t, err)
				for _, v := range w {
					require.InDelta(t, 1, v, 0.1, "norm weights are 1 ± 0.1")
				}
			}
		})
	}
}

// TestArchFields checks the fields each arch fixes or reads, beyond Layers.
func TestArchFields(t *testing.T) {
	cases := []struct {
		cfg                                                           Config
		norm                                                          NormKind
		act                                                           Activation
		rope                                                          RopeStyle
		postNorms, qkNorm, parallel                                   bool
		embedScale, queryScale, attnSoftcap, finalSoftcap, logitScale float64
	}{
		{swaConfig("llama", 1), NormRMS, ActSiLU, RopePairwise, false, false, false, 0, 0.25, 0, 0, 0},
		{swaConfig("gemma2", 2), NormRMS, ActGELUTanh, RopeHalf, true, false, false, math.Sqrt(32), 0.25, 50, 30, 0},
		{func() Config { c := swaConfig("gemma2", 2); c.AttnSoftcap, c.FinalSoftcap = 20, 10; return c }(),
			NormRMS, ActGELUTanh, RopeHalf, true, false, false, math.Sqrt(32), 0.25, 20, 10, 0},
		{swaConfig("gemma3", 1), NormRMS, ActGELUTanh, RopeHalf, true, true, false, math.Sqrt(32), 0.25, 0, 0, 0},
		{func() Config { c := swaConfig("gemma3", 1); c.HeadDim = 8; return c }(), // key_length, not dim/heads
			NormRMS, ActGELUTanh, RopeHalf, true, true, false, math.Sqrt(32), 1 / math.Sqrt(8), 0, 0, 0},
		{func() Config { c := swaConfig("cohere2", 1); c.LogitScale = 0.5; return c }(),
			NormLayer, ActSiLU, RopePairwise, false, false, true, 0, 0.25, 0, 0, 0.5},
	}
	for _, c := range cases {
		t.Run(c.cfg.Arch, func(t *testing.T) {
			got, err := checkEdited(t, c.cfg, nil)
			require.NoError(t, err)
			assert.Equal(t, syntheticDefaults(c.cfg), got)
			assert.Equal(t, c.norm, got.Norm)
			assert.Equal(t, c.act, got.Act)
			assert.Equal(t, c.rope, got.Rope)
			assert.Equal(t, []bool{c.postNorms, c.qkNorm, c.parallel}, []bool{got.PostNorms, got.QKNorm, got.Parallel})
			assert.InDelta(t, c.embedScale, got.EmbedScale, 1e-12)
			assert.InDelta(t, c.queryScale, got.QueryScale(), 1e-12)
			assert.Equal(t, []float64{c.attnSoftcap, c.finalSoftcap, c.logitScale}, []float64{got.AttnSoftcap, got.FinalSoftcap, got.LogitScale})
		})
	}
}

// TestGemmaQueryScale: llama.cpp's rule, with the 27B models recognised by
// their block count.
func TestGemmaQueryScale(t *testing.T) {
	cases := []struct {
		name                        string
		arch                        string
		layers, dim, heads, headDim int
		want                        float64
	}{
		{"gemma2 27B: dim/heads", "gemma2", 46, 4608, 32, 128, 1 / math.Sqrt(144)},
		{"gemma2 9B: key_length", "gemma2", 42, 3584, 16, 256, 1 / math.Sqrt(256)},
		{"gemma3 27B: dim/heads", "gemma3", 62, 5376, 32, 128, 1 / math.Sqrt(168)},
		{"gemma3 1B: key_length", "gemma3", 26, 1152, 4, 256, 1 / math.Sqrt(256)},
		{"gemma3 at gemma2's 27B depth: key_length", "gemma3", 46, 4608, 32, 128, 1 / math.Sqrt(128)},
		{"integer quotient", "gemma2", 46, 100, 3, 16, 1 / math.Sqrt(33)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := gemmaQueryScale(Config{Arch: c.arch, NumLayers: c.layers, Dim: c.dim, NumHeads: c.heads, HeadDim: c.headDim})
			assert.Equal(t, c.want, got)
		})
	}
	// Through the file: 46 gemma2 blocks of width 32 with 2 heads of 8.
	cfg := swaConfig("gemma2", 46)
	cfg.HeadDim = 8
	got, err := checkEdited(t, cfg, nil)
	require.NoError(t, err)
	assert.Equal(t, 1/math.Sqrt(16), got.AttnScale)
}

// TestArchMetadata reads per-layer windows, RoPE bases and scales from
// edited metadata: llama.cpp's defaults for absent keys, and the overrides.
func TestArchMetadata(t *testing.T) {
	const e4, e6 = 1e4, 1e6
	gemma3 := func(layers int) Config { c := swaConfig("gemma3", layers); c.Window, c.RopeTheta = 8, e6; return c }
	cases := []struct {
		name    string
		cfg     Config
		edit    func(w *GGUFWriter)
		windows []int
		thetas  []float64
		scales  []float64 // nil: all 1
		check   func(t *testing.T, c Config)
	}{
		{"gemma2 defaults for absent keys", swaConfig("gemma2", 4), func(w *GGUFWriter) {
			for _, k := range []string{"attention.sliding_window", "attn_logit_softcapping", "final_logit_softcapping"} {
				deleteKey(w, "gemma2."+k)
			}
		}, []int{4096, 0, 4096, 0}, []float64{e4, e4, e4, e4}, nil, func(t *testing.T, c Config) {
			assert.Equal(t, []float64{4096, 50, 30}, []float64{float64(c.Window), c.AttnSoftcap, c.FinalSoftcap})
		}},
		{"gemma2 local base from rope.freq_base_swa", swaConfig("gemma2", 2), func(w *GGUFWriter) {
			set(w, "gemma2.rope.freq_base_swa", float32(5000))
		}, []int{4096, 0}, []float64{5000, e4}, nil, nil},
		{"gemma3 local base defaults to 10000", gemma3(6), func(w *GGUFWriter) { deleteKey(w, "gemma3.rope.freq_base_swa") },
			[]int{8, 8, 8, 8, 8, 0}, []float64{e4, e4, e4, e4, e4, e6}, nil, nil},
		{"gemma3 local base from the key", gemma3(2), func(w *GGUFWriter) { set(w, "gemma3.rope.freq_base_swa", float32(2e4)) },
			[]int{8, 8}, []float64{2e4, 2e4}, nil, nil},
		{"gemma3 window 0: all global", gemma3(6), func(w *GGUFWriter) { set(w, "gemma3.attention.sliding_window", uint32(0)) },
			[]int{0, 0, 0, 0, 0, 0}, []float64{e6, e6, e6, e6, e6, e6}, nil, nil},
		{"gemma3 linear scaling by type and factor", gemma3(6), func(w *GGUFWriter) {
			set(w, "gemma3.rope.scaling.type", "linear")
			set(w, "gemma3.rope.scaling.factor", float32(8))
		}, []int{8, 8, 8, 8, 8, 0}, []float64{e4, e4, e4, e4, e4, e6}, []float64{1, 1, 1, 1, 1, 8}, nil},
		{"gemma3 linear scaling by freq_scale", gemma3(6), func(w *GGUFWriter) { set(w, "gemma3.rope.freq_scale", float32(0.25)) },
			[]int{8, 8, 8, 8, 8, 0}, []float64{e4, e4, e4, e4, e4, e6}, []float64{1, 1, 1, 1, 1, 4}, nil},
		{"gemma3 linear scaling by the old key, no SWA", func() Config { c := gemma3(2); c.Window = 0; return c }(), func(w *GGUFWriter) {
			set(w, "gemma3.rope.scale_linear", float32(2))
		}, []int{0, 0}, []float64{e6, e6}, []float64{2, 2}, nil},
		{"gemma3 scaling keys that agree", gemma3(6), func(w *GGUFWriter) {
			set(w, "gemma3.rope.scaling.factor", float32(8))
			set(w, "gemma3.rope.freq_scale", float32(0.125))
		}, []int{8, 8, 8, 8, 8, 0}, []float64{e4, e4, e4, e4, e4, e6}, []float64{1, 1, 1, 1, 1, 8}, nil},
		{"gemma3 final softcap only with the key", gemma3(1), func(w *GGUFWriter) { set(w, "gemma3.final_logit_softcapping", float32(30)) },
			[]int{8}, []float64{e4}, nil, func(t *testing.T, c Config) {
				assert.Equal(t, []float64{0, 30}, []float64{c.AttnSoftcap, c.FinalSoftcap})
			}},
		{"cohere2: no RoPE on global layers", func() Config { c := swaConfig("cohere2", 8); c.Window = 4; return c }(), nil,
			[]int{4, 4, 4, 0, 4, 4, 4, 0}, []float64{e4, e4, e4, 0, e4, e4, e4, 0}, nil, nil},
		{"cohere2 ignores rope.freq_base_swa", func() Config { c := swaConfig("cohere2", 4); c.Window = 4; return c }(), func(w *GGUFWriter) {
			set(w, "cohere2.rope.freq_base_swa", float32(5))
		}, []int{4, 4, 4, 0}, []float64{e4, e4, e4, 0}, nil, nil},
		{"llama pattern as a period", swaConfig("llama", 4), func(w *GGUFWriter) {
			set(w, "llama.attention.sliding_window", uint32(8))
			set(w, "llama.attention.sliding_window_pattern", uint32(2))
		}, []int{8, 0, 8, 0}, []float64{e4, e4, e4, e4}, nil, nil},
		{"llama pattern as bools", swaConfig("llama", 3), func(w *GGUFWriter) {
			set(w, "llama.attention.sliding_window", uint32(8))
			set(w, "llama.attention.sliding_window_pattern", []bool{false, true, true})
		}, []int{0, 8, 8}, []float64{e4, e4, e4}, nil, nil},
		{"llama pattern as ints", swaConfig("llama", 3), func(w *GGUFWriter) {
			set(w, "llama.attention.sliding_window", uint32(8))
			set(w, "llama.attention.sliding_window_pattern", []int32{1, 0, 2})
		}, []int{8, 0, 8}, []float64{e4, e4, e4}, nil, nil},
		{"llama period 0 is all local, as in llama.cpp", swaConfig("llama", 2), func(w *GGUFWriter) {
			set(w, "llama.attention.sliding_window", uint32(8))
			set(w, "llama.attention.sliding_window_pattern", uint8(0))
		}, []int{8, 8}, []float64{e4, e4}, nil, nil},
		{"llama period 1 is all global", swaConfig("llama", 2), func(w *GGUFWriter) {
			set(w, "llama.attention.sliding_window", uint32(8))
			set(w, "llama.attention.sliding_window_pattern", uint32(1))
		}, []int{0, 0}, []float64{e4, e4}, nil, nil},
		{"llama window without a pattern: all local", swaConfig("llama", 2), func(w *GGUFWriter) {
			set(w, "llama.attention.sliding_window", uint32(8))
		}, []int{8, 8}, []float64{e4, e4}, nil, nil},
		{"gemma2 period overridden", swaConfig("gemma2", 3), func(w *GGUFWriter) {
			set(w, "gemma2.attention.sliding_window_pattern", uint32(3))
		}, []int{4096, 4096, 0}, []float64{e4, e4, e4}, nil, nil},
		{"cohere2 pattern as bools", func() Config { c := swaConfig("cohere2", 2); c.Window = 4; return c }(), func(w *GGUFWriter) {
			set(w, "cohere2.attention.sliding_window_pattern", []bool{false, true})
		}, []int{0, 4}, []float64{0, e4}, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := checkEdited(t, c.cfg, c.edit)
			require.NoError(t, err)
			scales := c.scales
			if scales == nil {
				scales = make([]float64, len(c.windows))
				for i := range scales {
					scales[i] = 1
				}
			}
			assert.Equal(t, layerSpecs(c.windows, c.thetas, scales...), got.Layers)
			if c.check != nil {
				c.check(t, got)
			}
		})
	}
}

// TestArchRejects: missing keys and tensors are named, malformed values
// explained.
func TestArchRejects(t *testing.T) {
	gemma2, gemma3, cohere2 := swaConfig("gemma2", 2), swaConfig("gemma3", 2), swaConfig("cohere2", 2)
	gemma3.Window = 8
	cases := []struct {
		name string
		cfg  Config
		edit func(w *GGUFWriter)
		want string
	}{
		{"cohere2 logit_scale", cohere2, func(w *GGUFWriter) { deleteKey(w, "cohere2.logit_scale") }, "metadata cohere2.logit_scale is missing"},
		{"cohere2 eps", cohere2, func(w *GGUFWriter) { deleteKey(w, "cohere2.attention.layer_norm_epsilon") },
			"metadata cohere2.attention.layer_norm_epsilon is missing"},
		{"cohere2 window", cohere2, func(w *GGUFWriter) { deleteKey(w, "cohere2.attention.sliding_window") },
			"metadata cohere2.attention.sliding_window is missing"},
		{"gemma2 eps", gemma2, func(w *GGUFWriter) { deleteKey(w, "gemma2.attention.layer_norm_rms_epsilon") },
			"metadata gemma2.attention.layer_norm_rms_epsilon is missing"},
		{"gemma3 eps", gemma3, func(w *GGUFWriter) { deleteKey(w, "gemma3.attention.layer_norm_rms_epsilon") },
			"metadata gemma3.attention.layer_norm_rms_epsilon is missing"},
		{"gemma2 post_ffw_norm", gemma2, func(w *GGUFWriter) { deleteTensor(w, "blk.1.post_ffw_norm.weight") },
			"tensor blk.1.post_ffw_norm.weight is missing"},
		{"gemma3 post_attention_norm", gemma3, func(w *GGUFWriter) { deleteTensor(w, "blk.0.post_attention_norm.weight") },
			"tensor blk.0.post_attention_norm.weight is missing"},
		{"gemma3 attn_q_norm", gemma3, func(w *GGUFWriter) { deleteTensor(w, "blk.0.attn_q_norm.weight") },
			"tensor blk.0.attn_q_norm.weight is missing"},
		{"gemma3 attn_k_norm shape", gemma3, func(w *GGUFWriter) { replaceTensor(w, "blk.1.attn_k_norm.weight", F32, 32) },
			"tensor blk.1.attn_k_norm.weight has shape [32], want [16]"},
		{"gemma3 attn_q_norm type", gemma3, func(w *GGUFWriter) { replaceTensor(w, "blk.0.attn_q_norm.weight", F16, 16) },
			"tensor blk.0.attn_q_norm.weight has type F16, want F32"},
		{"gemma2 untied output", gemma2, func(w *GGUFWriter) { addZeros(w, "output.weight", F32, 32, 40) },
			"tensor output.weight is present, but gemma2 ties its output to token_embd.weight"},
		{"cohere2 untied output", cohere2, func(w *GGUFWriter) { addZeros(w, "output.weight", F32, 32, 40) },
			"tensor output.weight is present, but cohere2 ties its output to token_embd.weight"},
		{"cohere2 rope scaling", cohere2, func(w *GGUFWriter) { set(w, "cohere2.rope.scaling.factor", float32(4)) },
			"metadata cohere2.rope.scaling.factor = 4 is not supported (plain RoPE only)"},
		{"gemma2 rope scaling", gemma2, func(w *GGUFWriter) { set(w, "gemma2.rope.scaling.type", "linear") },
			"metadata gemma2.rope.scaling.type = linear is not supported"},
		{"llama old linear key", smallConfig, func(w *GGUFWriter) { set(w, "llama.rope.scale_linear", float32(4)) },
			"metadata llama.rope.scale_linear = 4 is not supported"},
		{"gemma3 yarn", gemma3, func(w *GGUFWriter) { set(w, "gemma3.rope.scaling.type", "yarn") },
			"metadata gemma3.rope.scaling.type = yarn is not supported (linear or none only)"},
		{"gemma3 scaling keys disagree", gemma3, func(w *GGUFWriter) {
			set(w, "gemma3.rope.scaling.factor", float32(8))
			set(w, "gemma3.rope.freq_scale", float32(0.5))
		}, "give different RoPE scaling factors (8 and 2)"},
		{"gemma3 scaling none with a factor", gemma3, func(w *GGUFWriter) {
			set(w, "gemma3.rope.scaling.type", "none")
			set(w, "gemma3.rope.scaling.factor", float32(8))
		}, "rope.scaling.type is none, but gemma3.rope.scaling.factor gives a factor of 8"},
		{"gemma3 negative factor", gemma3, func(w *GGUFWriter) { set(w, "gemma3.rope.scaling.factor", float32(-2)) },
			"metadata gemma3.rope.scaling.factor = -2, want a positive finite factor"},
		{"pattern of the wrong length", smallConfig, func(w *GGUFWriter) { set(w, "llama.attention.sliding_window_pattern", []bool{true}) },
			"metadata llama.attention.sliding_window_pattern has 1 entries, want one per layer (block_count 2)"},
		{"pattern of strings", smallConfig, func(w *GGUFWriter) { set(w, "llama.attention.sliding_window_pattern", []string{"a", "b"}) },
			"metadata llama.attention.sliding_window_pattern has type []string, want a period or one bool per layer"},
		{"pattern as a float", cohere2, func(w *GGUFWriter) { set(w, "cohere2.attention.sliding_window_pattern", float32(4)) },
			"metadata cohere2.attention.sliding_window_pattern has type float32, want a period"},
		{"negative period", gemma2, func(w *GGUFWriter) { set(w, "gemma2.attention.sliding_window_pattern", int32(-2)) },
			"metadata gemma2.attention.sliding_window_pattern has type int32"},
		{"implausible layer count", smallConfig, func(w *GGUFWriter) { set(w, "llama.block_count", uint32(1<<20)) },
			"metadata llama.block_count = 1048576 is implausibly large (more than 65536 layers)"},
		{"softcap wrong type", gemma2, func(w *GGUFWriter) { set(w, "gemma2.attn_logit_softcapping", "50") },
			"metadata gemma2.attn_logit_softcapping has type string, want a number"},
		{"negative logit scale", cohere2, func(w *GGUFWriter) { set(w, "cohere2.logit_scale", float32(-1)) },
			"logit scale -1, want a finite number >= 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := checkEdited(t, c.cfg, c.edit)
			require.ErrorContains(t, err, c.want)
			require.NotContains(t, err.Error(), "\n", "errors print on one line")
		})
	}
}

// addZeros adds a tensor of zeros.
func addZeros(w *GGUFWriter, name string, typ DType, shape ...uint64) {
	n, _ := shapeElements(shape)
	size, _ := typ.RowBytes(n)
	if err := w.AddTensorBytes(name, typ, shape, make([]byte, size)); err != nil {
		panic(err)
	}
}

func TestValidateLayers(t *testing.T) {
	good := syntheticDefaults(swaConfig("gemma3", 2))
	good.VocabSize = 40
	require.NoError(t, good.Validate())
	cases := []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"too few specs", func(c *Config) { c.Layers = c.Layers[:1] }, "1 layer specs for 2 layers"},
		{"negative window", func(c *Config) { c.Layers[1].Window = -3 }, "layer 1: window -3, want >= 0"},
		{"NaN theta", func(c *Config) { c.Layers[0].RopeTheta = math.NaN() }, "layer 0: rope theta NaN"},
		{"infinite theta", func(c *Config) { c.Layers[0].RopeTheta = math.Inf(1) }, "layer 0: rope theta +Inf"},
		{"zero scale", func(c *Config) { c.Layers[1].RopeScale = 0 }, "layer 1: rope scale 0, want a positive finite number"},
		{"negative softcap", func(c *Config) { c.AttnSoftcap = -1 }, "attention softcap -1"},
		{"infinite final softcap", func(c *Config) { c.FinalSoftcap = math.Inf(1) }, "final softcap +Inf"},
		{"NaN embed scale", func(c *Config) { c.EmbedScale = math.NaN() }, "embed scale NaN"},
		{"negative attention scale", func(c *Config) { c.AttnScale = -0.5 }, "attention scale -0.5"},
		{"unknown norm", func(c *Config) { c.Norm = NormKind(9) }, "unknown norm kind 9"},
		{"unknown activation", func(c *Config) { c.Act = Activation(9) }, "unknown activation 9"},
		{"unknown arch", func(c *Config) { c.Arch = "gemma" }, `unsupported architecture "gemma"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			cfg.Layers = append([]LayerSpec(nil), good.Layers...)
			c.edit(&cfg)
			require.ErrorContains(t, cfg.Validate(), c.want)
		})
	}
	// A zero theta is a layer without RoPE, which is valid.
	noRope := good
	noRope.Layers = []LayerSpec{{Window: 4, RopeTheta: 0, RopeScale: 1}, {RopeTheta: 1e4, RopeScale: 1}}
	require.NoError(t, noRope.Validate())
}

// TestWithWindow: the override replaces local layers' windows; a model
// without local layers becomes all local; 0 makes every layer global.
func TestWithWindow(t *testing.T) {
	interleaved := swaConfig("llama", 4)
	interleaved.Layers = layerSpecs([]int{8, 0, 8, 0}, []float64{1e4, 1e4, 1e4, 1e4})
	window := func(c Config, w int) Config { c.Window = w; return c }
	cases := []struct {
		name string
		cfg  Config
		w    int
		want []int
	}{
		{"no window declared: all local", swaConfig("llama", 2), 16, []int{16, 16}},
		{"all local: replaced", window(swaConfig("mistral", 2), 8), 16, []int{16, 16}},
		{"all local: to global", window(swaConfig("mistral", 2), 8), 0, []int{0, 0}},
		{"interleaved: local layers only", interleaved, 16, []int{16, 0, 16, 0}},
		{"interleaved: to global", interleaved, 0, []int{0, 0, 0, 0}},
		{"gemma2", swaConfig("gemma2", 4), 32, []int{32, 0, 32, 0}},
		{"gemma3 without SWA: all local", swaConfig("gemma3", 2), 32, []int{32, 32}},
		{"cohere2", window(swaConfig("cohere2", 4), 8), 3, []int{3, 3, 3, 0}},
		{"cohere2 to global", window(swaConfig("cohere2", 4), 8), 0, []int{0, 0, 0, 0}},
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, string(rune('a'+i))+".gguf")
			require.NoError(t, WriteSynthetic(path, c.cfg, F32, 1, nil))
			m, err := Open(path, WithWindow(c.w), WithoutTokenizer())
			require.NoError(t, err)
			defer m.Close()
			assert.Equal(t, c.want, windowsOf(m.Config))
			assert.Equal(t, c.w, m.Config.Window)
			// RoPE stays as the file says.
			want := syntheticDefaults(c.cfg)
			for l, s := range m.Config.Layers {
				assert.Equal(t, want.Layers[l].RopeTheta, s.RopeTheta, "layer %d theta", l)
				assert.Equal(t, want.Layers[l].RopeScale, s.RopeScale, "layer %d scale", l)
			}
		})
	}
	_, err := Open(filepath.Join(dir, "a.gguf"), WithWindow(-2))
	require.ErrorContains(t, err, "window -2, want >= 0")
}

// TestSafetensorsLayers: HF layer_types fill Layers, and WithWindow treats
// them as it does a GGUF file's.
func TestSafetensorsLayers(t *testing.T) {
	cases := []struct {
		name  string
		arch  string
		extra map[string]any
		opts  []Option
		want  []int
	}{
		{"mistral window, no pattern", "mistral", nil, nil, []int{8, 8}},
		{"layer_types", "mistral", map[string]any{"layer_types": []string{"full_attention", "sliding_attention"}}, nil, []int{0, 8}},
		{"sliding_window_pattern", "mistral", map[string]any{"sliding_window_pattern": 2}, nil, []int{8, 0}},
		{"layer_types, override", "mistral", map[string]any{"layer_types": []string{"full_attention", "sliding_attention"}},
			[]Option{WithWindow(3)}, []int{0, 3}},
		{"llama without a window, override", "llama", nil, []Option{WithWindow(5)}, []int{5, 5}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := stTinyConfig(c.arch)
			if c.arch == "llama" {
				cfg.Window = 0
			}
			dir := t.TempDir()
			files := stCheckpointFiles(t, "hf", cfg, stRandomWeights(1, cfg, "F32", false))
			files[hfConfigFile] = stHFConfigJSON(cfg, c.extra)
			stWriteFiles(t, dir, files)
			m, err := stOpen(t, dir, c.opts...)
			require.NoError(t, err)
			assert.Equal(t, c.want, windowsOf(m.Config))
			for _, s := range m.Config.Layers {
				assert.Equal(t, LayerSpec{Window: s.Window, RopeTheta: 10000, RopeScale: 1}, s)
			}
		})
	}
}

// TestSyntheticMixArchs: a quant mix of a tied-output arch gives
// token_embd the output matrix's type, as llama.cpp's quantizer does.
func TestSyntheticMixArchs(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		cfg   Config
		embed DType
	}{
		{swaConfig("gemma2", 2), Q8_0},
		{func() Config { c := swaConfig("gemma3", 2); c.Window = 8; return c }(), Q5_0},
		{swaConfig("cohere2", 2), Q8_0},
	} {
		t.Run(c.cfg.Arch, func(t *testing.T) {
			path := filepath.Join(dir, c.cfg.Arch+".gguf")
			require.NoError(t, WriteSyntheticMix(path, c.cfg, "Q4_K_M", 1, nil))
			m, err := Open(path, WithoutTokenizer())
			require.NoError(t, err)
			defer m.Close()
			assert.Equal(t, SyntheticConfig(c.cfg), m.Config)
			assert.Equal(t, c.embed, m.Tensor("token_embd.weight").Type)
		})
	}
}

// TestSyntheticWriterRefuses: layers that the arch's metadata cannot say
// are an error, not a file that reads back differently.
func TestSyntheticWriterRefuses(t *testing.T) {
	cases := []struct {
		name   string
		cfg    Config
		layers []LayerSpec
	}{
		{"two local windows", swaConfig("llama", 2), layerSpecs([]int{4, 8}, []float64{1e4, 1e4})},
		{"llama with a per-layer theta", swaConfig("llama", 2), layerSpecs([]int{0, 0}, []float64{1e4, 5e4})},
		{"cohere2 global layer with RoPE", swaConfig("cohere2", 2), layerSpecs([]int{4, 0}, []float64{1e4, 1e4})},
		{"gemma2 global layer scaled", swaConfig("gemma2", 2), layerSpecs([]int{4, 0}, []float64{1e4, 1e4}, 1, 2)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.Layers = c.layers
			_, err := SyntheticWriter(cfg, F32, 1, nil)
			require.ErrorContains(t, err, "metadata cannot express the layers")
		})
	}
}
