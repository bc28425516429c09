package loader

// hfconfig.go turns a checkpoint's JSON configuration into a Config: Hugging
// Face's config.json, or the params.json that Mistral ships next to its own
// consolidated.safetensors.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxConfigJSON bounds config.json and params.json (real ones are a few
// kilobytes).
const maxConfigJSON = 1 << 20

// hfArchitectures maps the supported Hugging Face architecture names to
// Config.Arch.
var hfArchitectures = map[string]string{
	"MistralForCausalLM": "mistral",
	"LlamaForCausalLM":   "llama",
}

// hfConfigJSON is the part of config.json we read. Pointers tell a missing key
// from a zero; json.RawMessage fields may be null.
type hfConfigJSON struct {
	Architectures         []string        `json:"architectures"`
	ModelType             string          `json:"model_type"`
	HiddenSize            *int            `json:"hidden_size"`
	NumHiddenLayers       *int            `json:"num_hidden_layers"`
	NumAttentionHeads     *int            `json:"num_attention_heads"`
	NumKeyValueHeads      json.RawMessage `json:"num_key_value_heads"`
	HeadDim               *int            `json:"head_dim"`
	IntermediateSize      *int            `json:"intermediate_size"`
	VocabSize             *int            `json:"vocab_size"`
	RMSNormEps            *float64        `json:"rms_norm_eps"`
	RopeTheta             *float64        `json:"rope_theta"`
	RopeScaling           json.RawMessage `json:"rope_scaling"`
	RopeParameters        json.RawMessage `json:"rope_parameters"`
	SlidingWindow         json.RawMessage `json:"sliding_window"`
	LayerTypes            json.RawMessage `json:"layer_types"`
	SlidingWindowPattern  json.RawMessage `json:"sliding_window_pattern"`
	MaxPositionEmbeddings *int            `json:"max_position_embeddings"`
	HiddenAct             *string         `json:"hidden_act"`
	AttentionBias         *bool           `json:"attention_bias"`
	MLPBias               *bool           `json:"mlp_bias"`
}

// parseHFConfig reads a Hugging Face config.json. Keys that transformers
// treats as optional get transformers' defaults for the architecture, so the
// file means here what it means there; a wrong head count then shows up as a
// tensor shape mismatch rather than going unnoticed.
func parseHFConfig(path string, data []byte) (Config, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("loader: %s: %s", path, fmt.Sprintf(format, args...))
	}
	var j hfConfigJSON
	if err := decodeConfigJSON(data, &j); err != nil {
		return Config{}, bad("%v", err)
	}
	var cfg Config
	switch {
	case len(j.Architectures) > 0:
		for _, a := range j.Architectures {
			arch, ok := hfArchitectures[a]
			if !ok {
				return Config{}, bad("unsupported architecture %q (want MistralForCausalLM or LlamaForCausalLM)", a)
			}
			if cfg.Arch != "" && cfg.Arch != arch {
				return Config{}, bad("architectures %q mix model families", j.Architectures)
			}
			cfg.Arch = arch
		}
	case j.ModelType == "mistral" || j.ModelType == "llama":
		cfg.Arch = j.ModelType
	case j.ModelType != "":
		return Config{}, bad("unsupported model_type %q and no architectures (want mistral or llama)", j.ModelType)
	default:
		return Config{}, bad("no architectures or model_type: cannot tell what model this is")
	}

	required := []requiredInt{
		{"hidden_size", j.HiddenSize, &cfg.Dim},
		{"num_hidden_layers", j.NumHiddenLayers, &cfg.NumLayers},
		{"num_attention_heads", j.NumAttentionHeads, &cfg.NumHeads},
		{"intermediate_size", j.IntermediateSize, &cfg.FFNDim},
		{"vocab_size", j.VocabSize, &cfg.VocabSize},
	}
	if err := setRequired(required, bad); err != nil {
		return Config{}, err
	}
	if cfg.NumLayers > maxLayers {
		return Config{}, bad("num_hidden_layers %d is implausibly large (more than %d)", cfg.NumLayers, maxLayers)
	}

	// num_key_value_heads: transformers' MistralConfig defaults a missing key
	// to 8 and LlamaConfig to num_attention_heads; an explicit null means
	// num_attention_heads for both.
	switch {
	case isJSONNull(j.NumKeyValueHeads):
		cfg.NumKVHeads = cfg.NumHeads
		if j.NumKeyValueHeads == nil && cfg.Arch == "mistral" {
			cfg.NumKVHeads = 8
		}
	default:
		if err := json.Unmarshal(j.NumKeyValueHeads, &cfg.NumKVHeads); err != nil {
			return Config{}, bad("num_key_value_heads: %v", err)
		}
	}

	if j.HeadDim != nil {
		cfg.HeadDim = *j.HeadDim
	} else {
		if cfg.Dim%cfg.NumHeads != 0 {
			return Config{}, bad("hidden_size %d is not a multiple of num_attention_heads %d and head_dim is not given", cfg.Dim, cfg.NumHeads)
		}
		cfg.HeadDim = cfg.Dim / cfg.NumHeads
	}
	cfg.RopeDim = cfg.HeadDim
	cfg.Rope = RopePairwise // the loader permutes Q and K (see ropeHalfToPairwise)

	cfg.NormEps = 1e-6 // transformers' default for both families
	if j.RMSNormEps != nil {
		cfg.NormEps = *j.RMSNormEps
	}

	theta, err := hfRopeTheta(&j)
	if err != nil {
		return Config{}, bad("%v", err)
	}
	cfg.RopeTheta = theta

	if j.MaxPositionEmbeddings != nil {
		cfg.ContextLength = *j.MaxPositionEmbeddings
	}

	// sliding_window: MistralConfig defaults a missing key to 4096; null means
	// full attention. Llama has no window.
	switch {
	case j.SlidingWindow == nil:
		if cfg.Arch == "mistral" {
			cfg.Window = 4096
		}
	case isJSONNull(j.SlidingWindow):
		cfg.Window = 0
	default:
		if err := json.Unmarshal(j.SlidingWindow, &cfg.Window); err != nil {
			return Config{}, bad("sliding_window: %v", err)
		}
		if cfg.Window < 0 {
			return Config{}, bad("sliding_window is %d, want >= 0 or null", cfg.Window)
		}
	}

	local, err := hfLayerPattern(&j, cfg.NumLayers)
	if err != nil {
		return Config{}, bad("%v", err)
	}
	cfg = cfg.filledLayers()
	for l, isLocal := range local {
		if !isLocal {
			cfg.Layers[l].Window = 0
		}
	}

	if j.HiddenAct != nil && *j.HiddenAct != "silu" {
		return Config{}, bad("hidden_act %q is not supported (want silu)", *j.HiddenAct)
	}
	if j.AttentionBias != nil && *j.AttentionBias {
		return Config{}, bad("attention_bias is true: biased attention projections are not supported")
	}
	if j.MLPBias != nil && *j.MLPBias {
		return Config{}, bad("mlp_bias is true: biased MLP projections are not supported")
	}
	return cfg, nil
}

// hfLayerPattern reads which layers are local (sliding-window) from
// layer_types (one "sliding_attention" or "full_attention" per layer) or
// sliding_window_pattern (a period n: layer l is local when l % n < n−1, so
// every n-th layer is global). Both may be given if they agree. nil means
// neither is: every layer has the window.
func hfLayerPattern(j *hfConfigJSON, layers int) ([]bool, error) {
	var fromTypes, fromPeriod []bool
	if !isJSONNull(j.LayerTypes) {
		var types []string
		if err := json.Unmarshal(j.LayerTypes, &types); err != nil {
			return nil, fmt.Errorf("layer_types %s: want an array of strings", compactJSON(j.LayerTypes))
		}
		if len(types) != layers {
			return nil, fmt.Errorf("layer_types has %d entries, want one per layer (num_hidden_layers %d)", len(types), layers)
		}
		fromTypes = make([]bool, layers)
		for l, t := range types {
			switch t {
			case "sliding_attention":
				fromTypes[l] = true
			case "full_attention":
			default:
				return nil, fmt.Errorf("layer_types[%d] is %q, want \"sliding_attention\" or \"full_attention\"", l, t)
			}
		}
	}
	if !isJSONNull(j.SlidingWindowPattern) {
		var n int
		if err := json.Unmarshal(j.SlidingWindowPattern, &n); err != nil {
			return nil, fmt.Errorf("sliding_window_pattern %s: want a positive integer period", compactJSON(j.SlidingWindowPattern))
		}
		if n <= 0 {
			return nil, fmt.Errorf("sliding_window_pattern is %d, want a positive integer period", n)
		}
		fromPeriod = swaPattern(n, layers)
	}
	if fromTypes != nil && fromPeriod != nil {
		for l := range fromTypes {
			if fromTypes[l] != fromPeriod[l] {
				return nil, fmt.Errorf("layer_types and sliding_window_pattern disagree about layer %d", l)
			}
		}
	}
	if fromTypes != nil {
		return fromTypes, nil
	}
	return fromPeriod, nil
}

// hfRopeTheta finds θ in rope_theta (transformers 4.x) or rope_parameters
// (5.x). Any RoPE scaling is refused: the engine implements plain RoPE only,
// and ignoring the scaling would give wrong logits without a word.
func hfRopeTheta(j *hfConfigJSON) (float64, error) {
	if !isJSONNull(j.RopeScaling) {
		return 0, fmt.Errorf("rope_scaling %s is not supported (plain RoPE only)", compactJSON(j.RopeScaling))
	}
	theta := 10000.0 // transformers' default
	if j.RopeTheta != nil {
		theta = *j.RopeTheta
	}
	if !isJSONNull(j.RopeParameters) {
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(j.RopeParameters, &keys); err != nil {
			return 0, fmt.Errorf("rope_parameters: %v", err)
		}
		if keys["rope_type"] == nil && keys["rope_theta"] == nil {
			// transformers also allows one set per layer type; those
			// models mix attention kinds, which the engine does not.
			return 0, fmt.Errorf("rope_parameters %s has neither rope_type nor rope_theta (per-layer-type RoPE is not supported)", compactJSON(j.RopeParameters))
		}
		var p struct {
			RopeType  *string  `json:"rope_type"`
			RopeTheta *float64 `json:"rope_theta"`
		}
		if err := json.Unmarshal(j.RopeParameters, &p); err != nil {
			return 0, fmt.Errorf("rope_parameters: %v", err)
		}
		if p.RopeType != nil && *p.RopeType != "default" {
			return 0, fmt.Errorf("rope_parameters.rope_type %q is not supported (plain RoPE only)", *p.RopeType)
		}
		if p.RopeTheta != nil {
			if j.RopeTheta != nil && *j.RopeTheta != *p.RopeTheta {
				return 0, fmt.Errorf("rope_theta %g and rope_parameters.rope_theta %g disagree", *j.RopeTheta, *p.RopeTheta)
			}
			theta = *p.RopeTheta
		}
	}
	if !(theta > 1) {
		return 0, fmt.Errorf("rope_theta is %g, want > 1", theta)
	}
	return theta, nil
}

// mistralParamsJSON is Mistral's own params.json, as mistral-src's ModelArgs
// reads it.
type mistralParamsJSON struct {
	Dim           *int            `json:"dim"`
	NLayers       *int            `json:"n_layers"`
	HeadDim       *int            `json:"head_dim"`
	HiddenDim     *int            `json:"hidden_dim"`
	NHeads        *int            `json:"n_heads"`
	NKVHeads      *int            `json:"n_kv_heads"`
	NormEps       *float64        `json:"norm_eps"`
	VocabSize     *int            `json:"vocab_size"`
	RopeTheta     *float64        `json:"rope_theta"`
	SlidingWindow json.RawMessage `json:"sliding_window"`
	MaxSeqLen     *int            `json:"max_seq_len"`
	MoE           json.RawMessage `json:"moe"`
}

// parseMistralParams reads Mistral's params.json. Its checkpoints already use
// pairwise RoPE (see mistralTensorName), so Rope is RopePairwise as stored.
func parseMistralParams(path string, data []byte) (Config, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("loader: %s: %s", path, fmt.Sprintf(format, args...))
	}
	var j mistralParamsJSON
	if err := decodeConfigJSON(data, &j); err != nil {
		return Config{}, bad("%v", err)
	}
	if !isJSONNull(j.MoE) {
		return Config{}, bad("mixture-of-experts models (the moe key) are not supported")
	}
	cfg := Config{Arch: "mistral", Rope: RopePairwise}
	required := []requiredInt{
		{"dim", j.Dim, &cfg.Dim},
		{"n_layers", j.NLayers, &cfg.NumLayers},
		{"n_heads", j.NHeads, &cfg.NumHeads},
		{"n_kv_heads", j.NKVHeads, &cfg.NumKVHeads},
		{"hidden_dim", j.HiddenDim, &cfg.FFNDim},
		{"vocab_size", j.VocabSize, &cfg.VocabSize},
	}
	if err := setRequired(required, bad); err != nil {
		return Config{}, err
	}
	if cfg.NumLayers > maxLayers {
		return Config{}, bad("n_layers %d is implausibly large (more than %d)", cfg.NumLayers, maxLayers)
	}
	if j.HeadDim != nil {
		cfg.HeadDim = *j.HeadDim
	} else {
		if cfg.Dim%cfg.NumHeads != 0 {
			return Config{}, bad("dim %d is not a multiple of n_heads %d and head_dim is not given", cfg.Dim, cfg.NumHeads)
		}
		cfg.HeadDim = cfg.Dim / cfg.NumHeads
	}
	cfg.RopeDim = cfg.HeadDim
	if j.NormEps == nil {
		return Config{}, bad("norm_eps is missing")
	}
	cfg.NormEps = *j.NormEps
	cfg.RopeTheta = 10000 // mistral-src's default when params.json has none (v0.1)
	if j.RopeTheta != nil {
		cfg.RopeTheta = *j.RopeTheta
	}
	if !(cfg.RopeTheta > 1) {
		return Config{}, bad("rope_theta is %g, want > 1", cfg.RopeTheta)
	}
	if j.MaxSeqLen != nil {
		cfg.ContextLength = *j.MaxSeqLen
	}
	if !isJSONNull(j.SlidingWindow) {
		if err := json.Unmarshal(j.SlidingWindow, &cfg.Window); err != nil {
			return Config{}, bad("sliding_window: %v", err)
		}
		if cfg.Window < 0 {
			return Config{}, bad("sliding_window is %d, want >= 0 or null", cfg.Window)
		}
	}
	return cfg.filledLayers(), nil
}

// decodeConfigJSON decodes one JSON object into v and refuses trailing data.
func decodeConfigJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("not a valid JSON object: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("not a valid JSON object: data after the object")
	}
	return nil
}

// readBoundedFile reads a small file whole, refusing one larger than max.
func readBoundedFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("loader: %s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("loader: %s: larger than the %d-byte limit for this file", path, max)
	}
	return data, nil
}

func isJSONNull(raw json.RawMessage) bool {
	return raw == nil || string(bytes.TrimSpace(raw)) == "null"
}

func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return strings.TrimSpace(b.String())
}

// requiredInt is a config key that must be present and positive, and where
// its value goes.
type requiredInt struct {
	key string
	v   *int
	dst *int
}

// setRequired copies each required value to its destination, or reports the
// first one missing or not positive.
func setRequired(rs []requiredInt, bad func(format string, args ...any) error) error {
	for _, r := range rs {
		if r.v == nil {
			return bad("%s is missing", r.key)
		}
		if *r.v <= 0 {
			return bad("%s is %d, want > 0", r.key, *r.v)
		}
		*r.dst = *r.v
	}
	return nil
}
