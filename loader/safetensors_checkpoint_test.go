package loader

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOpenSafetensorsLayouts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layout string
		arch   string
		dtype  string
		tied   bool
		window int
	}{
		{"hf single f32", "hf", "mistral", "F32", false, 8},
		{"hf single bf16 llama", "hf", "llama", "BF16", false, 0},
		{"hf single f16 tied", "hf", "mistral", "F16", true, 0},
		{"hf sharded bf16", "hf-sharded", "mistral", "BF16", false, 8},
		{"hf sharded f32 tied", "hf-sharded", "llama", "F32", true, 0},
		{"mistral consolidated f16", "mistral", "mistral", "F16", false, 8},
		{"mistral consolidated bf16 no window", "mistral", "mistral", "BF16", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := stTinyConfig(tc.arch)
			cfg.Window = tc.window
			w := stRandomWeights(7, cfg, tc.dtype, tc.tied)
			dir := t.TempDir()
			stWriteFiles(t, dir, stCheckpointFiles(t, tc.layout, cfg, w))

			m, err := stOpen(t, dir)
			require.NoError(t, err)
			want := cfg
			if tc.layout == "mistral" {
				want.ContextLength = 0 // params.json has no context length
			}
			require.Equal(t, want.filledLayers(), m.Config)
			require.Equal(t, RopePairwise, m.Config.Rope)
			require.Equal(t, "safetensors", m.Format)
			require.Equal(t, dir, m.Path)
			require.Nil(t, m.Tokenizer, "no tokenizer.json")
			stRequireWeights(t, m, w)
		})
	}
}

// TestOpenSafetensorsZeroCopy checks that only Q and K are transformed, and
// that every other tensor's bytes are a view of the mapped file.
func TestOpenSafetensorsZeroCopy(t *testing.T) {
	cfg := stTinyConfig("mistral")
	w := stRandomWeights(3, cfg, "F32", false)
	dir := t.TempDir()
	stWriteFiles(t, dir, stCheckpointFiles(t, "hf", cfg, w))
	m, err := stOpen(t, dir)
	require.NoError(t, err)
	for _, tt := range m.Tensors {
		rope := strings.HasSuffix(tt.Name, ".attn_q.weight") || strings.HasSuffix(tt.Name, ".attn_k.weight")
		require.Equal(t, rope, tt.transform != nil, tt.Name)
		b, err := tt.Bytes()
		require.NoError(t, err)
		if !rope {
			require.Same(t, &tt.data[0], &b[0], "%s: Bytes must be the file view", tt.Name)
		}
	}
	// Tensors come in file order, whatever the header's order.
	for i := 1; i < len(m.Tensors); i++ {
		require.Less(t, m.Tensors[i-1].Offset, m.Tensors[i].Offset, "tensor order")
	}
	// Offset is where the (untransformed) data sits in the file.
	raw, err := os.ReadFile(filepath.Join(dir, stSingleFile))
	require.NoError(t, err)
	v := m.byName["blk.1.attn_v.weight"]
	require.Equal(t, w.data["blk.1.attn_v.weight"], raw[v.Offset:v.Offset+uint64(len(v.data))])
}

// TestOpenSafetensorsWindow checks the window sources and that WithWindow wins.
func TestOpenSafetensorsWindow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layout string
		window int // in the file
		opts   []Option
		want   int
	}{
		{"hf from file", "hf", 8, nil, 8},
		{"hf null", "hf", 0, nil, 0},
		{"hf override", "hf", 8, []Option{WithWindow(3)}, 3},
		{"hf override to full", "hf", 8, []Option{WithWindow(0)}, 0},
		{"hf override adds", "hf", 0, []Option{WithWindow(5)}, 5},
		{"mistral from file", "mistral", 6, nil, 6},
		{"mistral override", "mistral", 6, []Option{WithWindow(2)}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := stTinyConfig("mistral")
			cfg.Window = tc.window
			dir := t.TempDir()
			stWriteFiles(t, dir, stCheckpointFiles(t, tc.layout, cfg, stRandomWeights(1, cfg, "F32", false)))
			m, err := stOpen(t, dir, tc.opts...)
			require.NoError(t, err)
			require.Equal(t, tc.want, m.Config.Window)
		})
	}
}

// TestOpenSafetensorsPrefersHF: Mistral's repositories ship both layouts.
func TestOpenSafetensorsPrefersHF(t *testing.T) {
	cfg := stTinyConfig("mistral")
	w := stRandomWeights(5, cfg, "F32", false)
	dir := t.TempDir()
	stWriteFiles(t, dir, stCheckpointFiles(t, "mistral", cfg, stRandomWeights(6, cfg, "F32", false)))
	stWriteFiles(t, dir, stCheckpointFiles(t, "hf", cfg, w))
	m, err := stOpen(t, dir)
	require.NoError(t, err)
	stRequireWeights(t, m, w)
}

func TestOpenSafetensorsTokenizer(t *testing.T) {
	src := filepath.Join("testdata", "tokenizer", "mistral.tokenizer.json.gz")
	tokJSON := stGunzip(t, src)
	cfg := stTinyConfig("mistral")
	dir := t.TempDir()
	files := stCheckpointFiles(t, "hf", cfg, stRandomWeights(1, cfg, "F32", false))
	files[hfTokenizerFile] = tokJSON
	stWriteFiles(t, dir, files)

	m, err := stOpen(t, dir)
	require.NoError(t, err)
	require.NotNil(t, m.Tokenizer)

	m, err = stOpen(t, dir, WithoutTokenizer())
	require.NoError(t, err)
	require.Nil(t, m.Tokenizer)

	require.NoError(t, os.WriteFile(filepath.Join(dir, hfTokenizerFile), []byte(`{"model":`), 0o644))
	_, err = stOpen(t, dir)
	require.ErrorContains(t, err, hfTokenizerFile)
}

// TestOpenSafetensorsErrors breaks a good checkpoint in one way at a time.
func TestOpenSafetensorsErrors(t *testing.T) {
	cfg := stTinyConfig("mistral")
	w := stRandomWeights(11, cfg, "F32", false)
	hf := func(t *testing.T) map[string][]byte { return stCheckpointFiles(t, "hf", cfg, w) }
	sharded := func(t *testing.T) map[string][]byte { return stCheckpointFiles(t, "hf-sharded", cfg, w) }
	mistral := func(t *testing.T) map[string][]byte { return stCheckpointFiles(t, "mistral", cfg, w) }
	// withTensors rewrites model.safetensors after edit changes its tensors.
	withTensors := func(t *testing.T, edit func([]SafetensorsTensor) []SafetensorsTensor) map[string][]byte {
		files := hf(t)
		files[stSingleFile] = stBytes(t, edit(w.hfTensors(cfg)), nil)
		return files
	}
	drop := func(name string) func([]SafetensorsTensor) []SafetensorsTensor {
		return func(ts []SafetensorsTensor) []SafetensorsTensor {
			var out []SafetensorsTensor
			for _, tt := range ts {
				if tt.Name != name {
					out = append(out, tt)
				}
			}
			return out
		}
	}
	for _, tc := range []struct {
		name  string
		files func(t *testing.T) map[string][]byte
		want  []string // all in the error
		is    error
	}{
		{"empty dir", func(t *testing.T) map[string][]byte { return nil }, []string{"not a model directory"}, nil},
		{"weights without config", func(t *testing.T) map[string][]byte {
			f := hf(t)
			delete(f, hfConfigFile)
			return f
		}, []string{"has weights but no config.json"}, nil},
		{"consolidated without params", func(t *testing.T) map[string][]byte {
			f := mistral(t)
			delete(f, mistralParamsFile)
			return f
		}, []string{"consolidated.safetensors but no params.json"}, nil},
		{"bad config json", func(t *testing.T) map[string][]byte {
			f := hf(t)
			f[hfConfigFile] = []byte(`{"hidden_size": 16,`)
			return f
		}, []string{hfConfigFile, "not a valid JSON object"}, nil},
		{"unsupported architecture", func(t *testing.T) map[string][]byte {
			f := hf(t)
			f[hfConfigFile] = stHFConfigJSON(cfg, map[string]any{"architectures": []string{"GPT2LMHeadModel"}})
			return f
		}, []string{hfConfigFile, `unsupported architecture "GPT2LMHeadModel"`}, nil},
		{"config disagrees with tensors", func(t *testing.T) map[string][]byte {
			f := hf(t)
			f[hfConfigFile] = stHFConfigJSON(cfg, map[string]any{"intermediate_size": 20})
			return f
		}, []string{"tensor blk.0.ffn_gate.weight has shape [16 24], want [16 20]"}, nil},
		{"kv heads disagree", func(t *testing.T) map[string][]byte {
			f := hf(t)
			f[hfConfigFile] = stHFConfigJSON(cfg, map[string]any{"num_key_value_heads": stDeleteKey})
			return f // MistralConfig's default of 8 KV heads does not fit
		}, []string{"invalid config", "4 heads are not a multiple of 8 kv heads"}, nil},
		{"missing tensor", func(t *testing.T) map[string][]byte {
			return withTensors(t, drop("model.layers.1.mlp.up_proj.weight"))
		}, []string{"tensor blk.1.ffn_up.weight is missing"}, nil},
		{"missing embeddings", func(t *testing.T) map[string][]byte {
			return withTensors(t, drop("model.embed_tokens.weight"))
		}, []string{"tensor token_embd.weight is missing"}, nil},
		{"extra layer", func(t *testing.T) map[string][]byte {
			return withTensors(t, func(ts []SafetensorsTensor) []SafetensorsTensor {
				return append(ts, SafetensorsTensor{Name: "model.layers.2.input_layernorm.weight", DType: "F32", Shape: []uint64{16}, Data: make([]byte, 64)})
			})
		}, []string{`"model.layers.2.input_layernorm.weight"`, "is for layer 2, but the config has 2 layers"}, nil},
		{"unsupported dtype on a used tensor", func(t *testing.T) map[string][]byte {
			return withTensors(t, func(ts []SafetensorsTensor) []SafetensorsTensor {
				for i := range ts {
					if ts[i].Name == "model.norm.weight" {
						ts[i] = SafetensorsTensor{Name: ts[i].Name, DType: "F64", Shape: ts[i].Shape, Data: make([]byte, 8*16)}
					}
				}
				return ts
			})
		}, []string{`"model.norm.weight"`, "unsupported tensor type F64"}, ErrUnsupportedType},
		{"mixed dtypes in Q", func(t *testing.T) map[string][]byte {
			return withTensors(t, func(ts []SafetensorsTensor) []SafetensorsTensor {
				for i := range ts {
					if ts[i].Name == "model.layers.0.self_attn.q_proj.weight" {
						ts[i] = SafetensorsTensor{Name: ts[i].Name, DType: "I8", Shape: ts[i].Shape, Data: make([]byte, 16*16)}
					}
				}
				return ts
			})
		}, []string{"unsupported tensor type I8"}, ErrUnsupportedType},
		{"truncated shard", func(t *testing.T) map[string][]byte {
			f := hf(t)
			f[stSingleFile] = f[stSingleFile][:len(f[stSingleFile])-1]
			return f
		}, []string{stSingleFile, "run past"}, nil},
		{"index not json", func(t *testing.T) map[string][]byte {
			f := sharded(t)
			f[stIndexFile] = []byte("weight_map")
			return f
		}, []string{stIndexFile, "not a valid JSON object"}, nil},
		{"index without weight map", func(t *testing.T) map[string][]byte {
			f := sharded(t)
			f[stIndexFile] = []byte(`{"metadata":{}}`)
			return f
		}, []string{stIndexFile, "weight_map is missing or empty"}, nil},
		{"index escapes the directory", func(t *testing.T) map[string][]byte {
			f := sharded(t)
			f[stIndexFile] = []byte(`{"weight_map":{"model.norm.weight":"../model-00001-of-00002.safetensors"}}`)
			return f
		}, []string{stIndexFile, `"../model-00001-of-00002.safetensors" is not a plain file name`}, nil},
		{"index absolute path", func(t *testing.T) map[string][]byte {
			f := sharded(t)
			f[stIndexFile] = []byte(`{"weight_map":{"model.norm.weight":"/etc/passwd"}}`)
			return f
		}, []string{"not a plain file name"}, nil},
		{"index names a missing shard", func(t *testing.T) map[string][]byte {
			f := sharded(t)
			delete(f, "model-00002-of-00002.safetensors")
			return f
		}, []string{"model-00002-of-00002.safetensors", "no such file"}, os.ErrNotExist},
		{"tensor missing from its shard", func(t *testing.T) map[string][]byte {
			f := sharded(t)
			var idx struct {
				WeightMap map[string]string `json:"weight_map"`
			}
			require.NoError(t, json.Unmarshal(f[stIndexFile], &idx))
			wm := idx.WeightMap
			// Point a tensor at the shard that does not hold it.
			if wm["model.norm.weight"] == "model-00001-of-00002.safetensors" {
				wm["model.norm.weight"] = "model-00002-of-00002.safetensors"
			} else {
				wm["model.norm.weight"] = "model-00001-of-00002.safetensors"
			}
			b, _ := json.Marshal(map[string]any{"weight_map": wm})
			f[stIndexFile] = b
			return f
		}, []string{stIndexFile, `"model.norm.weight" is mapped to shard`, "which has no such tensor"}, nil},
		{"params moe", func(t *testing.T) map[string][]byte {
			f := mistral(t)
			f[mistralParamsFile] = []byte(`{"dim":16,"n_layers":2,"head_dim":4,"hidden_dim":24,"n_heads":4,"n_kv_heads":2,"norm_eps":1e-5,"vocab_size":32,"moe":{"num_experts":8}}`)
			return f
		}, []string{mistralParamsFile, "mixture-of-experts"}, nil},
		{"odd head width", func(t *testing.T) map[string][]byte {
			f := mistral(t)
			f[mistralParamsFile] = []byte(`{"dim":15,"n_layers":2,"head_dim":3,"hidden_dim":24,"n_heads":5,"n_kv_heads":5,"norm_eps":1e-5,"vocab_size":32}`)
			return f
		}, []string{"head dim 3 is odd"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			stWriteFiles(t, dir, tc.files(t))
			_, err := stOpen(t, dir)
			require.Error(t, err)
			for _, s := range tc.want {
				require.ErrorContains(t, err, s)
			}
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
		})
	}
}

// TestOpenSafetensorsIgnoresUnknown: tensors the engine does not use may have
// any supported-by-the-format dtype.
func TestOpenSafetensorsIgnoresUnknown(t *testing.T) {
	cfg := stTinyConfig("llama")
	w := stRandomWeights(2, cfg, "BF16", false)
	ts := append(w.hfTensors(cfg),
		SafetensorsTensor{Name: "model.layers.0.self_attn.rotary_emb.inv_freq", DType: "F32", Shape: []uint64{2}, Data: make([]byte, 8)},
		SafetensorsTensor{Name: "position_ids", DType: "I64", Shape: []uint64{1, 3}, Data: make([]byte, 24)},
		SafetensorsTensor{Name: "model.layers.00.mlp.up_proj.weight", DType: "U8", Shape: []uint64{1}, Data: []byte{1}},
		SafetensorsTensor{Name: "model.layers.-1.mlp.up_proj.weight", DType: "U8", Shape: []uint64{1}, Data: []byte{1}},
	)
	dir := t.TempDir()
	stWriteFiles(t, dir, map[string][]byte{hfConfigFile: stHFConfigJSON(cfg, nil), stSingleFile: stBytes(t, ts, nil)})
	m, err := stOpen(t, dir)
	require.NoError(t, err)
	stRequireWeights(t, m, w)
	require.Empty(t, m.Unmapped)
}

// TestOpenSafetensorsListsUnmapped: a float tensor without an engine name
// (Qwen's Q bias) is listed, for the engine to refuse.
func TestOpenSafetensorsListsUnmapped(t *testing.T) {
	cfg := stTinyConfig("llama")
	w := stRandomWeights(2, cfg, "F16", false)
	ts := append(w.hfTensors(cfg),
		SafetensorsTensor{Name: "model.layers.0.self_attn.q_proj.bias", DType: "F16", Shape: []uint64{uint64(cfg.NumHeads * cfg.HeadDim)},
			Data: make([]byte, 2*cfg.NumHeads*cfg.HeadDim)})
	dir := t.TempDir()
	stWriteFiles(t, dir, map[string][]byte{hfConfigFile: stHFConfigJSON(cfg, nil), stSingleFile: stBytes(t, ts, nil)})
	m, err := stOpen(t, dir)
	require.NoError(t, err)
	require.Equal(t, []string{"model.layers.0.self_attn.q_proj.bias"}, m.Unmapped)
}

func TestTensorNameMapping(t *testing.T) {
	for _, tc := range []struct {
		mapper func(string) (string, int, bool)
		in     string
		want   string
		layer  int
	}{
		{hfTensorName, "model.embed_tokens.weight", "token_embd.weight", -1},
		{hfTensorName, "model.norm.weight", "output_norm.weight", -1},
		{hfTensorName, "lm_head.weight", "output.weight", -1},
		{hfTensorName, "model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight", 0},
		{hfTensorName, "model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight", 1},
		{hfTensorName, "model.layers.2.self_attn.v_proj.weight", "blk.2.attn_v.weight", 2},
		{hfTensorName, "model.layers.31.self_attn.o_proj.weight", "blk.31.attn_output.weight", 31},
		{hfTensorName, "model.layers.4.mlp.gate_proj.weight", "blk.4.ffn_gate.weight", 4},
		{hfTensorName, "model.layers.5.mlp.up_proj.weight", "blk.5.ffn_up.weight", 5},
		{hfTensorName, "model.layers.6.mlp.down_proj.weight", "blk.6.ffn_down.weight", 6},
		{hfTensorName, "model.layers.7.input_layernorm.weight", "blk.7.attn_norm.weight", 7},
		{hfTensorName, "model.layers.100.post_attention_layernorm.weight", "blk.100.ffn_norm.weight", 100},
		{hfTensorName, "model.layers.0.self_attn.rotary_emb.inv_freq", "", 0},
		{hfTensorName, "model.layers.01.mlp.up_proj.weight", "", 0},
		{hfTensorName, "model.layers.+1.mlp.up_proj.weight", "", 0},
		{hfTensorName, "model.layers.1.mlp.up_proj.bias", "", 0},
		{hfTensorName, "model.layers.mlp.up_proj.weight", "", 0},
		{hfTensorName, "layers.0.attention.wq.weight", "", 0},
		{hfTensorName, "tok_embeddings.weight", "", 0},
		{mistralTensorName, "tok_embeddings.weight", "token_embd.weight", -1},
		{mistralTensorName, "norm.weight", "output_norm.weight", -1},
		{mistralTensorName, "output.weight", "output.weight", -1},
		{mistralTensorName, "layers.0.attention.wq.weight", "blk.0.attn_q.weight", 0},
		{mistralTensorName, "layers.0.attention.wk.weight", "blk.0.attn_k.weight", 0},
		{mistralTensorName, "layers.0.attention.wv.weight", "blk.0.attn_v.weight", 0},
		{mistralTensorName, "layers.0.attention.wo.weight", "blk.0.attn_output.weight", 0},
		{mistralTensorName, "layers.3.feed_forward.w1.weight", "blk.3.ffn_gate.weight", 3},
		{mistralTensorName, "layers.3.feed_forward.w2.weight", "blk.3.ffn_down.weight", 3},
		{mistralTensorName, "layers.3.feed_forward.w3.weight", "blk.3.ffn_up.weight", 3},
		{mistralTensorName, "layers.9.attention_norm.weight", "blk.9.attn_norm.weight", 9},
		{mistralTensorName, "layers.9.ffn_norm.weight", "blk.9.ffn_norm.weight", 9},
		{mistralTensorName, "model.embed_tokens.weight", "", 0},
		{mistralTensorName, "layers.9.feed_forward.w4.weight", "", 0},
	} {
		got, layer, ok := tc.mapper(tc.in)
		require.Equal(t, tc.want != "", ok, tc.in)
		require.Equal(t, tc.want, got, tc.in)
		if ok {
			require.Equal(t, tc.layer, layer, tc.in)
		}
	}
}

// TestRopePermutationProof shows numerically that the loader's row
// permutation turns rotate-half RoPE into pairwise RoPE. For random W and x,
// q = W·x rotated the Hugging Face way (rotate_half, as written in
// transformers) must equal, after mapping dims (2i ← i, 2i+1 ← i+hd/2
// within each head), q' = permute(W)·x rotated the pairwise way (complex
// multiplication over consecutive pairs, as written in mistral-src). Because
// Q and K get the same permutation, every attention score q·k is unchanged.
func TestRopePermutationProof(t *testing.T) {
	for _, tc := range []struct {
		heads, kvHeads, headDim, dim int
		theta                        float64
		posQ, posK                   int
	}{
		{1, 1, 2, 3, 10000, 0, 0},
		{1, 1, 4, 5, 10000, 1, 0},
		{4, 2, 8, 16, 10000, 37, 5},
		{3, 1, 16, 7, 1e6, 4095, 4000},
		{2, 2, 128, 9, 10000, 12345, 3},
	} {
		t.Run(fmt.Sprintf("h%d_kv%d_hd%d_pos%d", tc.heads, tc.kvHeads, tc.headDim, tc.posQ), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tc.headDim), uint64(tc.posQ)))
			x := make([]float64, tc.dim)
			for i := range x {
				x[i] = float64(float32(rng.NormFloat64()))
			}
			wq := stRandomF32Matrix(rng, tc.heads*tc.headDim, tc.dim)
			wk := stRandomF32Matrix(rng, tc.kvHeads*tc.headDim, tc.dim)
			permute := func(w []byte, heads int) []byte {
				out, err := ropeHalfToPairwise("w", heads, tc.headDim, tc.dim*4)(w)
				require.NoError(t, err)
				return out
			}
			qHalf := stRopeRotateHalf(stMatVec(wq, x), tc.headDim, tc.posQ, tc.theta)
			kHalf := stRopeRotateHalf(stMatVec(wk, x), tc.headDim, tc.posK, tc.theta)
			qPair := stRopePairwiseComplex(stMatVec(permute(wq, tc.heads), x), tc.headDim, tc.posQ, tc.theta)
			kPair := stRopePairwiseComplex(stMatVec(permute(wk, tc.kvHeads), x), tc.headDim, tc.posK, tc.theta)

			half := tc.headDim / 2
			for h := 0; h < tc.heads; h++ {
				for i := 0; i < half; i++ {
					b := h * tc.headDim
					require.InDelta(t, qHalf[b+i], qPair[b+2*i], 1e-9, "head %d pair %d (first)", h, i)
					require.InDelta(t, qHalf[b+i+half], qPair[b+2*i+1], 1e-9, "head %d pair %d (second)", h, i)
				}
			}
			// Attention scores of every query head against its KV head agree.
			group := tc.heads / tc.kvHeads
			for h := 0; h < tc.heads; h++ {
				kv := h / group
				sHalf := stDot(qHalf[h*tc.headDim:(h+1)*tc.headDim], kHalf[kv*tc.headDim:(kv+1)*tc.headDim])
				sPair := stDot(qPair[h*tc.headDim:(h+1)*tc.headDim], kPair[kv*tc.headDim:(kv+1)*tc.headDim])
				require.InDelta(t, sHalf, sPair, 1e-9*(1+math.Abs(sHalf)), "score of head %d", h)
			}
			// Control: without the permutation, pairwise RoPE gives other
			// values (so the check above can fail). A head of width 2 has
			// only one pair, which both conventions rotate alike.
			if tc.headDim > 2 && tc.posQ > 0 {
				wrong := stRopePairwiseComplex(stMatVec(wq, x), tc.headDim, tc.posQ, tc.theta)
				differs := false
				for i := range wrong {
					differs = differs || math.Abs(wrong[i]-qHalf[i]) > 1e-6
				}
				require.True(t, differs, "the unpermuted weights must not pass")
			}
		})
	}
}

// stRopeRotateHalf is transformers' apply_rotary_pos_emb on each head:
// x·cos + rotate_half(x)·sin, where rotate_half(x) = cat(−x2, x1) and
// cos, sin repeat the hd/2 frequencies θ^(−2i/hd) twice.
func stRopeRotateHalf(q []float64, hd, pos int, theta float64) []float64 {
	out := make([]float64, len(q))
	half := hd / 2
	for b := 0; b < len(q); b += hd {
		x := q[b : b+hd]
		rot := append(append([]float64{}, stNegate(x[half:])...), x[:half]...)
		for j := 0; j < hd; j++ {
			freq := math.Pow(theta, -float64(2*(j%half))/float64(hd))
			ang := float64(pos) * freq
			out[b+j] = x[j]*math.Cos(ang) + rot[j]*math.Sin(ang)
		}
	}
	return out
}

// stRopePairwiseComplex is mistral-src's apply_rotary_emb on each head: view
// consecutive pairs as complex numbers and multiply pair i by
// e^(i·pos·θ^(−2i/hd)).
func stRopePairwiseComplex(q []float64, hd, pos int, theta float64) []float64 {
	out := make([]float64, len(q))
	for b := 0; b < len(q); b += hd {
		for i := 0; i < hd/2; i++ {
			freq := math.Pow(theta, -float64(2*i)/float64(hd))
			ang := float64(pos) * freq
			z := complex(q[b+2*i], q[b+2*i+1]) * complex(math.Cos(ang), math.Sin(ang))
			out[b+2*i], out[b+2*i+1] = real(z), imag(z)
		}
	}
	return out
}

func stNegate(x []float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = -v
	}
	return out
}

func stDot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// stRandomF32Matrix is rows×cols float32s, little-endian, row-major (torch).
func stRandomF32Matrix(rng *rand.Rand, rows, cols int) []byte {
	b := make([]byte, 4*rows*cols)
	for i := 0; i < rows*cols; i++ {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(rng.NormFloat64())))
	}
	return b
}

// stMatVec is W (rows, len(x)) @ x -> (rows,), W as float32 bytes.
func stMatVec(w []byte, x []float64) []float64 {
	rows := len(w) / 4 / len(x)
	out := make([]float64, rows)
	for r := 0; r < rows; r++ {
		for c := range x {
			out[r] += float64(math.Float32frombits(binary.LittleEndian.Uint32(w[4*(r*len(x)+c):]))) * x[c]
		}
	}
	return out
}

func TestRopeHalfToPairwiseRejects(t *testing.T) {
	_, err := ropeHalfToPairwise("q", 2, 4, 8)(make([]byte, 63))
	require.ErrorContains(t, err, `RoPE permutation of "q"`)
	require.ErrorContains(t, err, "63 bytes")
	_, err = ropeHalfToPairwise("q", 2, 3, 8)(make([]byte, 48))
	require.ErrorContains(t, err, "bad geometry")
}

// stGolden are committed checkpoints (written by -update) and the
// summary the loader must give for each.
var stGolden = []struct {
	dir    string
	layout string
	arch   string
	dtype  string
	seed   uint64
}{
	{"tiny-hf-f32", "hf", "mistral", "F32", 1},
	{"tiny-hf-sharded-bf16", "hf-sharded", "llama", "BF16", 2},
	{"tiny-mistral-f16", "mistral", "mistral", "F16", 3},
}

func TestOpenSafetensorsGolden(t *testing.T) {
	for _, g := range stGolden {
		t.Run(g.dir, func(t *testing.T) {
			dir := filepath.Join("testdata", "safetensors", g.dir)
			cfg := stTinyConfig(g.arch)
			if g.arch == "llama" {
				cfg.Window = 0
			}
			w := stRandomWeights(g.seed, cfg, g.dtype, false)
			files := stCheckpointFiles(t, g.layout, cfg, w)
			if stUpdating() {
				require.NoError(t, os.RemoveAll(dir))
				stWriteFiles(t, dir, files)
			}
			// The committed files are what the generator makes today.
			ents, err := os.ReadDir(dir)
			require.NoError(t, err, "run with -update")
			require.Len(t, ents, len(files), "%s has stray files: run with -update", dir)
			for name, want := range files {
				got, err := os.ReadFile(filepath.Join(dir, name))
				require.NoError(t, err, "run with -update")
				require.True(t, bytes.Equal(want, got), "%s/%s is stale: run with -update", dir, name)
			}

			m, err := stOpen(t, dir)
			require.NoError(t, err)
			stRequireWeights(t, m, w)
			summary := stSummarize(t, m)
			golden := dir + ".golden"
			if stUpdating() {
				require.NoError(t, os.WriteFile(golden, []byte(summary), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run with -update")
			require.Equal(t, string(want), summary)
		})
	}
}

// stSummarize renders what the loader made of a checkpoint: config, then
// each tensor's name, type, shape, offset and a hash of its bytes.
func stSummarize(t *testing.T, m *Model) string {
	var b strings.Builder
	fmt.Fprintf(&b, "format %s\nconfig %+v\ntokenizer %v\n", m.Format, m.Config, m.Tokenizer != nil)
	for _, tt := range m.Tensors {
		data, err := tt.Bytes()
		require.NoError(t, err)
		fmt.Fprintf(&b, "%-26s %-4s %-9s offset=%-6d transformed=%-5v sha256=%x\n",
			tt.Name, tt.Type, fmt.Sprint(tt.Shape), tt.Offset, tt.transform != nil, sha256.Sum256(data))
	}
	return b.String()
}

// FuzzSafetensorsConfig feeds arbitrary config.json and params.json text to
// the parsers: they must not panic, and what they accept must pass the
// loader's own config check or be rejected by it cleanly.
func FuzzSafetensorsConfig(f *testing.F) {
	seeds, err := filepath.Glob("testdata/safetensors/*/*.json")
	require.NoError(f, err)
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte(`{"architectures":["MistralForCausalLM"],"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":4,"vocab_size":3,"sliding_window":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, parse := range []func(string, []byte) (Config, error){parseHFConfig, parseMistralParams} {
			cfg, err := parse("fuzz.json", b)
			if err != nil {
				if !strings.Contains(err.Error(), "fuzz.json") {
					t.Fatalf("error does not name the file: %v", err)
				}
				continue
			}
			if cfg.Arch != "mistral" && cfg.Arch != "llama" {
				t.Fatalf("accepted arch %q", cfg.Arch)
			}
			if cfg.Rope != RopePairwise || cfg.RopeDim != cfg.HeadDim {
				t.Fatalf("rope %v, rope dim %d, head dim %d", cfg.Rope, cfg.RopeDim, cfg.HeadDim)
			}
			_ = cfg.Validate() // must not panic on anything the parsers let through
		}
	})
}
