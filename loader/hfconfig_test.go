package loader

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// mistral7BConfig is Mistral-7B-v0.1's config.json (values per design §3).
const mistral7BConfig = `{
  "architectures": ["MistralForCausalLM"],
  "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
  "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
  "max_position_embeddings": 32768, "model_type": "mistral",
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.34.0", "use_cache": true, "vocab_size": 32000
}`

var mistral7B = Config{
	Arch: "mistral", Dim: 4096, NumLayers: 32, NumHeads: 32, NumKVHeads: 8, HeadDim: 128,
	FFNDim: 14336, VocabSize: 32000, RopeTheta: 10000, RopeDim: 128, Rope: RopePairwise,
	NormEps: 1e-5, ContextLength: 32768, Window: 4096,
}

// withKeys edits mistral7BConfig: each pair is a key and its new raw JSON
// value, or "" to delete the key.
func withKeys(kv ...string) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(mistral7BConfig), &m); err != nil {
		panic(err)
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(m, kv[i])
		} else {
			m[kv[i]] = json.RawMessage(kv[i+1])
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestParseHFConfig(t *testing.T) {
	mod := func(f func(*Config)) Config {
		c := mistral7B
		f(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		json string
		want Config
		err  string
	}{
		{"mistral 7b v0.1", mistral7BConfig, mistral7B, ""},
		{"v0.2: null window, theta 1e6", withKeys("sliding_window", "null", "rope_theta", "1000000.0"),
			mod(func(c *Config) { c.Window, c.RopeTheta = 0, 1e6 }), ""},
		{"missing window defaults to 4096 for mistral", withKeys("sliding_window", ""), mistral7B, ""},
		{"llama", withKeys("architectures", `["LlamaForCausalLM"]`, "model_type", `"llama"`, "sliding_window", ""),
			mod(func(c *Config) { c.Arch, c.Window = "llama", 0 }), ""},
		{"llama with a window key", withKeys("architectures", `["LlamaForCausalLM"]`, "sliding_window", "16"),
			mod(func(c *Config) { c.Arch, c.Window = "llama", 16 }), ""},
		{"model_type without architectures", withKeys("architectures", ""), mistral7B, ""},
		{"explicit head_dim (Nemo-style)", withKeys("hidden_size", "5120", "head_dim", "128"),
			mod(func(c *Config) { c.Dim = 5120 }), ""},
		{"null head_dim", withKeys("head_dim", "null"), mistral7B, ""},
		{"kv heads null means MHA", withKeys("num_key_value_heads", "null"), mod(func(c *Config) { c.NumKVHeads = 32 }), ""},
		{"kv heads missing: mistral default 8", withKeys("num_key_value_heads", ""), mistral7B, ""},
		{"kv heads missing: llama means MHA", withKeys("architectures", `["LlamaForCausalLM"]`, "num_key_value_heads", ""),
			mod(func(c *Config) { c.Arch, c.NumKVHeads = "llama", 32 }), ""},
		{"eps default", withKeys("rms_norm_eps", ""), mod(func(c *Config) { c.NormEps = 1e-6 }), ""},
		{"theta default", withKeys("rope_theta", ""), mistral7B, ""},
		{"rope_parameters (transformers 5)", withKeys("rope_theta", "", "rope_parameters", `{"rope_type": "default", "rope_theta": 1000000.0}`),
			mod(func(c *Config) { c.RopeTheta = 1e6 }), ""},
		{"null rope_scaling", withKeys("rope_scaling", "null"), mistral7B, ""},
		{"no max_position_embeddings", withKeys("max_position_embeddings", ""), mod(func(c *Config) { c.ContextLength = 0 }), ""},
		{"biases false", withKeys("attention_bias", "false", "mlp_bias", "false"), mistral7B, ""},
		{"layer_types", withKeys("layer_types", hfLayerTypes(32, 4)), mod(func(c *Config) { c.Layers = hfLayers(32, 4, 4096) }), ""},
		{"sliding_window_pattern", withKeys("sliding_window_pattern", "4"), mod(func(c *Config) { c.Layers = hfLayers(32, 4, 4096) }), ""},
		{"both, agreeing", withKeys("layer_types", hfLayerTypes(32, 2), "sliding_window_pattern", "2"),
			mod(func(c *Config) { c.Layers = hfLayers(32, 2, 4096) }), ""},
		{"null layer_types", withKeys("layer_types", "null", "sliding_window_pattern", "null"), mistral7B, ""},
		{"layer_types without a window", withKeys("layer_types", hfLayerTypes(32, 2), "sliding_window", "null"),
			mod(func(c *Config) { c.Window, c.Layers = 0, hfLayers(32, 2, 0) }), ""},

		{"unsupported architecture", withKeys("architectures", `["Qwen2ForCausalLM"]`), Config{}, `unsupported architecture "Qwen2ForCausalLM"`},
		{"mixed architectures", withKeys("architectures", `["MistralForCausalLM", "LlamaForCausalLM"]`), Config{}, "mix model families"},
		{"unsupported model_type", withKeys("architectures", "", "model_type", `"gemma"`), Config{}, `unsupported model_type "gemma"`},
		{"nothing says what it is", withKeys("architectures", "", "model_type", ""), Config{}, "cannot tell what model this is"},
		{"missing hidden_size", withKeys("hidden_size", ""), Config{}, "hidden_size is missing"},
		{"missing vocab", withKeys("vocab_size", ""), Config{}, "vocab_size is missing"},
		{"zero layers", withKeys("num_hidden_layers", "0"), Config{}, "num_hidden_layers is 0"},
		{"negative heads", withKeys("num_attention_heads", "-4"), Config{}, "num_attention_heads is -4"},
		{"fractional width", withKeys("hidden_size", "4096.5"), Config{}, "not a valid JSON object"},
		{"width as string", withKeys("hidden_size", `"4096"`), Config{}, "not a valid JSON object"},
		{"heads do not divide width", withKeys("num_attention_heads", "31"), Config{}, "not a multiple of num_attention_heads"},
		{"bad kv heads", withKeys("num_key_value_heads", `"8"`), Config{}, "num_key_value_heads"},
		{"negative window", withKeys("sliding_window", "-1"), Config{}, "sliding_window is -1"},
		{"window as string", withKeys("sliding_window", `"4096"`), Config{}, "sliding_window"},
		{"rope scaling", withKeys("rope_scaling", `{"type": "linear", "factor": 2.0}`), Config{}, `rope_scaling {"type":"linear","factor":2.0} is not supported`},
		{"rope_parameters llama3", withKeys("rope_parameters", `{"rope_type": "llama3", "factor": 8.0}`), Config{}, `rope_type "llama3" is not supported`},
		{"per-layer-type rope_parameters", withKeys("rope_theta", "", "rope_parameters", `{"full_attention": {"rope_theta": 1e6}}`), Config{}, "per-layer-type RoPE is not supported"},
		{"rope_parameters not an object", withKeys("rope_parameters", `[1]`), Config{}, "rope_parameters"},
		{"rope thetas disagree", withKeys("rope_parameters", `{"rope_theta": 5.0}`), Config{}, "disagree"},
		{"theta too small", withKeys("rope_theta", "1.0"), Config{}, "rope_theta is 1"},
		{"gelu", withKeys("hidden_act", `"gelu"`), Config{}, `hidden_act "gelu"`},
		{"attention bias", withKeys("attention_bias", "true"), Config{}, "attention_bias is true"},
		{"mlp bias", withKeys("mlp_bias", "true"), Config{}, "mlp_bias is true"},
		{"layer_types too short", withKeys("layer_types", `["full_attention"]`), Config{}, "layer_types has 1 entries, want one per layer (num_hidden_layers 32)"},
		{"layer_types unknown kind", withKeys("layer_types", strings.Replace(hfLayerTypes(32, 2), `"full_attention"`, `"chunked_attention"`, 1)),
			Config{}, `layer_types[1] is "chunked_attention", want "sliding_attention" or "full_attention"`},
		{"layer_types not strings", withKeys("layer_types", "[1, 2]"), Config{}, "layer_types [1,2]: want an array of strings"},
		{"pattern zero", withKeys("sliding_window_pattern", "0"), Config{}, "sliding_window_pattern is 0, want a positive integer period"},
		{"pattern as string", withKeys("sliding_window_pattern", `"4"`), Config{}, `sliding_window_pattern "4": want a positive integer period`},
		{"both, disagreeing", withKeys("layer_types", hfLayerTypes(32, 2), "sliding_window_pattern", "4"), Config{},
			"layer_types and sliding_window_pattern disagree about layer 1"},
		{"implausible layer count", withKeys("num_hidden_layers", "100000000"), Config{}, "num_hidden_layers 100000000 is implausibly large"},
		{"not json", "{", Config{}, "not a valid JSON object"},
		{"array", "[]", Config{}, "not a valid JSON object"},
		{"trailing data", mistral7BConfig + " {}", Config{}, "data after the object"},
		{"huge number", withKeys("hidden_size", "1e400"), Config{}, "not a valid JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseHFConfig("dir/config.json", []byte(tc.json))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.ErrorContains(t, err, "dir/config.json")
				return
			}
			require.NoError(t, err, tc.json)
			require.Equal(t, tc.want.filledLayers(), got)
		})
	}
}

// hfLayerTypes is a layer_types array of n layers where every period-th
// layer is "full_attention".
func hfLayerTypes(n, period int) string {
	types := make([]string, n)
	for l := range types {
		types[l] = "sliding_attention"
		if l%period == period-1 {
			types[l] = "full_attention"
		}
	}
	b, err := json.Marshal(types)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// hfLayers is what hfLayerTypes(n, period) means with window w and θ 10000.
func hfLayers(n, period, w int) []LayerSpec {
	out := make([]LayerSpec, n)
	for l := range out {
		out[l] = LayerSpec{Window: w, RopeTheta: 10000, RopeScale: 1}
		if l%period == period-1 {
			out[l].Window = 0
		}
	}
	return out
}

func TestParseMistralParams(t *testing.T) {
	const v01 = `{"dim": 4096, "n_layers": 32, "head_dim": 128, "hidden_dim": 14336, "n_heads": 32, "n_kv_heads": 8, "norm_eps": 1e-05, "sliding_window": 4096, "vocab_size": 32000}`
	want := mistral7B
	want.ContextLength = 0
	for _, tc := range []struct {
		name string
		json string
		want Config
		err  string
	}{
		{"mistral 7b v0.1", v01, want, ""},
		{"v0.3 style", `{"dim": 4096, "n_layers": 32, "head_dim": 128, "hidden_dim": 14336, "n_heads": 32, "n_kv_heads": 8, "norm_eps": 1e-05, "vocab_size": 32768, "rope_theta": 1000000.0}`,
			func() Config { c := want; c.VocabSize, c.RopeTheta, c.Window = 32768, 1e6, 0; return c }(), ""},
		{"null window", strings.Replace(v01, `"sliding_window": 4096`, `"sliding_window": null`, 1), func() Config { c := want; c.Window = 0; return c }(), ""},
		{"no head_dim", strings.Replace(v01, `"head_dim": 128, `, "", 1), want, ""},
		{"max_seq_len", strings.Replace(v01, "{", `{"max_seq_len": 8192, `, 1), func() Config { c := want; c.ContextLength = 8192; return c }(), ""},
		{"missing n_kv_heads", strings.Replace(v01, `"n_kv_heads": 8, `, "", 1), Config{}, "n_kv_heads is missing"},
		{"missing norm_eps", strings.Replace(v01, `"norm_eps": 1e-05, `, "", 1), Config{}, "norm_eps is missing"},
		{"zero dim", strings.Replace(v01, `"dim": 4096`, `"dim": 0`, 1), Config{}, "dim is 0"},
		{"moe", strings.Replace(v01, "{", `{"moe": {"num_experts": 8, "num_experts_per_tok": 2}, `, 1), Config{}, "mixture-of-experts"},
		{"null moe is fine", strings.Replace(v01, "{", `{"moe": null, `, 1), want, ""},
		{"bad window", strings.Replace(v01, `"sliding_window": 4096`, `"sliding_window": -5`, 1), Config{}, "sliding_window is -5"},
		{"not json", `{"dim":`, Config{}, "not a valid JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMistralParams("dir/params.json", []byte(tc.json))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.ErrorContains(t, err, "dir/params.json")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want.filledLayers(), got)
		})
	}
}

func TestReadBoundedFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	require.NoError(t, os.WriteFile(p, make([]byte, 11), 0o644))
	b, err := readBoundedFile(p, 11)
	require.NoError(t, err)
	require.Len(t, b, 11)
	_, err = readBoundedFile(p, 10)
	require.ErrorContains(t, err, "larger than the 10-byte limit")
	require.ErrorContains(t, err, p)
	_, err = readBoundedFile(filepath.Join(dir, "nope.json"), 10)
	require.ErrorIs(t, err, os.ErrNotExist)
}
