package loader

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// smallConfig is a valid model small enough to build in memory per case.
var smallConfig = Config{Dim: 64, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, FFNDim: 96, VocabSize: 40, ContextLength: 128}

// checkEdited builds cfg as a synthetic F32 GGUF image, lets edit change
// the writer (metadata or tensors), parses the image and runs Open's config
// checks on it.
func checkEdited(t *testing.T, cfg Config, edit func(w *GGUFWriter)) (Config, error) {
	t.Helper()
	w, err := newSyntheticWriter(cfg, F32, 1, SyntheticVocab(cfg.VocabSize))
	require.NoError(t, err)
	if edit != nil {
		edit(w)
	}
	var buf bytes.Buffer
	_, err = w.WriteTo(&buf)
	require.NoError(t, err)
	f, err := ParseGGUF("m.gguf", buf.Bytes())
	require.NoError(t, err)
	c, err := configFromGGUF(f)
	if err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, checkTensors(c, f.tensor)
}

func deleteKey(w *GGUFWriter, key string) {
	for i, kv := range w.meta {
		if kv.Key == key {
			w.meta = append(w.meta[:i], w.meta[i+1:]...)
			return
		}
	}
	panic("no key " + key)
}

func deleteTensor(w *GGUFWriter, name string) {
	for i, t := range w.tensors {
		if t.name == name {
			w.tensors = append(w.tensors[:i], w.tensors[i+1:]...)
			delete(w.names, name)
			return
		}
	}
	panic("no tensor " + name)
}

// replaceTensor swaps a tensor for zeros of another type and shape.
func replaceTensor(w *GGUFWriter, name string, typ DType, shape ...uint64) {
	deleteTensor(w, name)
	n, _ := shapeElements(shape)
	size, _ := typ.RowBytes(n)
	if err := w.AddTensorBytes(name, typ, shape, make([]byte, size)); err != nil {
		panic(err)
	}
}

func set(w *GGUFWriter, key string, v any) {
	if err := w.SetValue(key, v); err != nil {
		panic(err)
	}
}

func TestConfigFromGGUF(t *testing.T) {
	base := func(c Config) Config { // what smallConfig reads back as
		c.Arch, c.HeadDim, c.RopeDim, c.RopeTheta, c.NormEps = "llama", 16, 16, 10000, 1e-5
		return c
	}
	cases := []struct {
		name string
		cfg  Config
		edit func(w *GGUFWriter)
		want Config
	}{
		{"as written", smallConfig, nil, base(smallConfig)},
		{"defaults", smallConfig, func(w *GGUFWriter) {
			for _, k := range []string{"attention.head_count_kv", "rope.freq_base", "attention.layer_norm_rms_epsilon",
				"rope.dimension_count", "attention.key_length", "attention.value_length", "context_length"} {
				deleteKey(w, "llama."+k)
			}
			// Without head_count_kv, KV heads = heads: resize K and V.
			for l := range 2 {
				replaceTensor(w, blk(l, "attn_k"), F32, 64, 64)
				replaceTensor(w, blk(l, "attn_v"), F32, 64, 64)
			}
		}, func() Config { c := base(smallConfig); c.NumKVHeads, c.ContextLength = 4, 0; return c }()},
		{"window, theta, eps, mistral", func() Config {
			c := smallConfig
			c.Arch, c.Window, c.RopeTheta, c.NormEps = "mistral", 4096, 1e6, 1e-6
			return c
		}(), nil, func() Config {
			c := base(smallConfig)
			c.Arch, c.Window, c.RopeTheta, c.NormEps = "mistral", 4096, 1e6, 1e-6
			return c
		}()},
		{"partial rope", func() Config { c := smallConfig; c.RopeDim = 8; return c }(), nil,
			func() Config { c := base(smallConfig); c.RopeDim = 8; return c }()},
		{"head dim not dim/heads", func() Config { c := smallConfig; c.HeadDim = 32; return c }(), nil,
			func() Config { c := base(smallConfig); c.HeadDim, c.RopeDim = 32, 32; return c }()},
		{"tied output", smallConfig, func(w *GGUFWriter) { deleteTensor(w, "output.weight") }, base(smallConfig)},
		{"integer-typed theta, u64 counts", smallConfig, func(w *GGUFWriter) {
			set(w, "llama.rope.freq_base", uint32(10000))
			set(w, "llama.block_count", uint64(2))
		}, base(smallConfig)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := checkEdited(t, c.cfg, c.edit)
			require.NoError(t, err)
			assert.Equal(t, c.want.filledLayers(), got)
		})
	}
}

func blk(l int, name string) string { return fmt.Sprintf("blk.%d.%s.weight", l, name) }

func TestConfigRejects(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		edit func(w *GGUFWriter)
		want string
	}{
		{"unsupported arch", smallConfig, func(w *GGUFWriter) { set(w, "general.architecture", "gpt2") },
			`unsupported architecture "gpt2" (want llama, mistral, qwen2, qwen3, gemma2, gemma3 or cohere2)`},
		{"no arch", smallConfig, func(w *GGUFWriter) { deleteKey(w, "general.architecture") }, "general.architecture is missing"},
		{"arch not a string", smallConfig, func(w *GGUFWriter) { set(w, "general.architecture", uint8(1)) }, "general.architecture is not a string"},
		{"missing block_count", smallConfig, func(w *GGUFWriter) { deleteKey(w, "llama.block_count") }, "metadata llama.block_count is missing"},
		{"block_count wrong type", smallConfig, func(w *GGUFWriter) { set(w, "llama.block_count", "2") },
			"metadata llama.block_count has type string, want a non-negative integer"},
		{"negative heads", smallConfig, func(w *GGUFWriter) { set(w, "llama.attention.head_count", int32(-4)) },
			"llama.attention.head_count has type int32, want a non-negative integer"},
		{"huge dim", smallConfig, func(w *GGUFWriter) { set(w, "llama.embedding_length", uint64(1)<<40) }, "implausibly large"},
		{"theta wrong type", smallConfig, func(w *GGUFWriter) { set(w, "llama.rope.freq_base", "1e4") }, "rope.freq_base has type string, want a number"},
		{"heads not a multiple of kv heads", smallConfig, func(w *GGUFWriter) { set(w, "llama.attention.head_count_kv", uint32(3)) },
			"4 heads are not a multiple of 3 kv heads"},
		{"zero layers", smallConfig, func(w *GGUFWriter) { set(w, "llama.block_count", uint32(0)) }, "layers is 0, want > 0"},
		{"zero ffn", smallConfig, func(w *GGUFWriter) { set(w, "llama.feed_forward_length", uint32(0)) }, "ffn dim is 0"},
		{"odd head dim", smallConfig, func(w *GGUFWriter) {
			set(w, "llama.attention.key_length", uint32(15))
			set(w, "llama.attention.value_length", uint32(15))
		},
			"head dim 15 is odd"},
		{"rope dim > head dim", smallConfig, func(w *GGUFWriter) { set(w, "llama.rope.dimension_count", uint32(32)) }, "rope dim 32 must be even and at most head dim 16"},
		{"value length differs", smallConfig, func(w *GGUFWriter) { set(w, "llama.attention.value_length", uint32(8)) }, "value_length 8 differs from key_length 16"},
		{"dim not divisible, no key_length", smallConfig, func(w *GGUFWriter) {
			set(w, "llama.attention.head_count", uint32(3))
			set(w, "llama.attention.head_count_kv", uint32(3))
			deleteKey(w, "llama.attention.key_length")
			deleteKey(w, "llama.attention.value_length")
		}, "embedding_length 64 is not a multiple of head_count 3"},
		{"zero eps", smallConfig, func(w *GGUFWriter) { set(w, "llama.attention.layer_norm_rms_epsilon", float32(0)) }, "norm epsilon 0"},
		{"nan theta", smallConfig, func(w *GGUFWriter) { set(w, "llama.rope.freq_base", float32(0)/zero32()) }, "rope theta NaN"},
		{"missing token_embd", smallConfig, func(w *GGUFWriter) { deleteTensor(w, "token_embd.weight") }, "tensor token_embd.weight is missing"},
		{"1-D token_embd", smallConfig, func(w *GGUFWriter) { replaceTensor(w, "token_embd.weight", F32, 64) }, "token_embd.weight has shape [64], want {dim, vocab}"},
		{"missing layer tensor", smallConfig, func(w *GGUFWriter) { deleteTensor(w, "blk.1.ffn_up.weight") }, "tensor blk.1.ffn_up.weight is missing"},
		{"missing output_norm", smallConfig, func(w *GGUFWriter) { deleteTensor(w, "output_norm.weight") }, "tensor output_norm.weight is missing"},
		{"wrong attn_k shape", smallConfig, func(w *GGUFWriter) { replaceTensor(w, "blk.0.attn_k.weight", F32, 64, 64) },
			"tensor blk.0.attn_k.weight has shape [64 64], want [64 32]"},
		{"transposed ffn_down", smallConfig, func(w *GGUFWriter) { replaceTensor(w, "blk.1.ffn_down.weight", F32, 64, 96) },
			"tensor blk.1.ffn_down.weight has shape [64 96], want [96 64]"},
		{"wrong output shape", smallConfig, func(w *GGUFWriter) { replaceTensor(w, "output.weight", F32, 64, 41) }, "output.weight has shape [64 41], want [64 40]"},
		{"norm not F32", smallConfig, func(w *GGUFWriter) { replaceTensor(w, "blk.0.attn_norm.weight", F16, 64) },
			"tensor blk.0.attn_norm.weight has type F16, want F32"},
		{"yarn rope scaling", smallConfig, func(w *GGUFWriter) { set(w, "llama.rope.scaling.type", "yarn") },
			"llama.rope.scaling.type = yarn is not supported (plain RoPE only)"},
		{"linear rope factor", smallConfig, func(w *GGUFWriter) { set(w, "llama.rope.scaling.factor", float32(4)) },
			"llama.rope.scaling.factor = 4 is not supported"},
		{"freq_scale", smallConfig, func(w *GGUFWriter) { set(w, "llama.rope.freq_scale", float32(0.25)) },
			"llama.rope.freq_scale = 0.25 is not supported"},
		{"rope factor wrong type", smallConfig, func(w *GGUFWriter) { set(w, "llama.rope.scaling.factor", "4") },
			"rope.scaling.factor has type string, want a number"},
		{"extra layer count", smallConfig, func(w *GGUFWriter) { set(w, "llama.block_count", uint32(3)) }, "tensor blk.2.attn_norm.weight is missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := checkEdited(t, c.cfg, c.edit)
			require.ErrorContains(t, err, c.want)
			require.NotContains(t, err.Error(), "\n", "errors print on one line")
		})
	}
}

func zero32() float32 { return 0 }

func TestConfigUnsupportedTensorType(t *testing.T) {
	// Same shape, type the engine cannot read: the error says which type.
	cfg := smallConfig
	cfg.Dim, cfg.NumHeads, cfg.NumKVHeads = 256, 4, 4
	_, err := checkEdited(t, cfg, func(w *GGUFWriter) { replaceTensor(w, "blk.0.attn_q.weight", IQ2_XXS, 256, 256) })
	require.ErrorIs(t, err, ErrUnsupportedType)
	require.ErrorContains(t, err, "tensor blk.0.attn_q.weight: unsupported tensor type IQ2_XXS (id 16)")
}

func TestConfigValidate(t *testing.T) {
	good := syntheticDefaults(smallConfig)
	require.NoError(t, good.Validate())
	bad := good
	bad.Window = -1
	bad.Rope = RopeStyle(7)
	bad.Arch = "falcon"
	err := bad.Validate()
	require.ErrorContains(t, err, "window -1")
	require.ErrorContains(t, err, "unknown rope style 7")
	require.ErrorContains(t, err, `unsupported architecture "falcon"`)
}

func TestConfigTooManyErrorsAreCut(t *testing.T) {
	cfg := smallConfig
	cfg.NumLayers = 20
	_, err := checkEdited(t, cfg, func(w *GGUFWriter) {
		for l := 0; l < 20; l++ {
			deleteTensor(w, blk(l, "attn_q"))
		}
	})
	require.ErrorContains(t, err, "…")
}

// TestConfigPlainRopeKeys: scaling keys that say "no scaling" are accepted.
func TestConfigPlainRopeKeys(t *testing.T) {
	_, err := checkEdited(t, smallConfig, func(w *GGUFWriter) {
		set(w, "llama.rope.scaling.type", "none")
		set(w, "llama.rope.scaling.factor", float32(1))
		set(w, "llama.rope.freq_scale", float32(1))
	})
	require.NoError(t, err)
}
