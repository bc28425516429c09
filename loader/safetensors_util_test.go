package loader

// Test helpers for the safetensors tests: a tiny random model in the engine's
// layout, and writers for it in Hugging Face and Mistral form. The name
// tables and the RoPE un-permutation here are written independently of the
// loader's, so the tests check the loader against a second account.

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func init() {
	// Other test files of the package may register -update too; share it.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files and generated testdata")
	}
}

// stUpdating reports whether the test run was given -update.
func stUpdating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// stTinyConfig is a small GQA model: 4 query heads sharing 2 KV heads of width 4.
func stTinyConfig(arch string) Config {
	return Config{
		Arch: arch, Dim: 16, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, HeadDim: 4,
		FFNDim: 24, VocabSize: 32, RopeTheta: 10000, RopeDim: 4, Rope: RopePairwise,
		NormEps: 1e-5, ContextLength: 64, Window: 8,
	}
}

// stWeights is a model's weights in the engine's layout (GGUF names,
// pairwise RoPE rows), each with its torch shape (outermost first).
type stWeights struct {
	dtype string
	names []string // engine names, in order
	shape map[string][]uint64
	data  map[string][]byte
}

// stRandomWeights makes random weights for cfg in dtype. With tied there
// is no output.weight.
func stRandomWeights(seed uint64, cfg Config, dtype string, tied bool) *stWeights {
	rng := rand.New(rand.NewPCG(seed, 0x5afe))
	w := &stWeights{dtype: dtype, shape: map[string][]uint64{}, data: map[string][]byte{}}
	d, q, kv, ffn, v := uint64(cfg.Dim), uint64(cfg.NumHeads*cfg.HeadDim), uint64(cfg.NumKVHeads*cfg.HeadDim), uint64(cfg.FFNDim), uint64(cfg.VocabSize)
	add := func(name string, shape ...uint64) {
		n := uint64(1)
		for _, s := range shape {
			n *= s
		}
		w.names = append(w.names, name)
		w.shape[name] = shape
		w.data[name] = stRandomElements(rng, dtype, int(n))
	}
	add("token_embd.weight", v, d)
	for i := 0; i < cfg.NumLayers; i++ {
		b := "blk." + strconv.Itoa(i) + "."
		add(b+"attn_norm.weight", d)
		add(b+"attn_q.weight", q, d)
		add(b+"attn_k.weight", kv, d)
		add(b+"attn_v.weight", kv, d)
		add(b+"attn_output.weight", d, q)
		add(b+"ffn_norm.weight", d)
		add(b+"ffn_gate.weight", ffn, d)
		add(b+"ffn_up.weight", ffn, d)
		add(b+"ffn_down.weight", d, ffn)
	}
	add("output_norm.weight", d)
	if !tied {
		add("output.weight", v, d)
	}
	return w
}

// stRandomElements returns n random finite elements of dtype, little-endian.
func stRandomElements(rng *rand.Rand, dtype string, n int) []byte {
	switch dtype {
	case "F32":
		b := make([]byte, 4*n)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(rng.NormFloat64())))
		}
		return b
	case "BF16":
		b := make([]byte, 2*n)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(math.Float32bits(float32(rng.NormFloat64()))>>16))
		}
		return b
	case "F16":
		b := make([]byte, 2*n)
		for i := 0; i < n; i++ {
			h := uint16(rng.Uint32())
			if h>>10&0x1f == 0x1f { // keep clear of Inf and NaN
				h &^= 0x4000
			}
			binary.LittleEndian.PutUint16(b[2*i:], h)
		}
		return b
	}
	panic("stRandomElements: dtype " + dtype)
}

// stHalfRows is the inverse of the loader's permutation, written from the
// other side: Hugging Face's conversion script takes Meta's pairwise rows to
// rotate-half by putting the even rows of each head first, then the odd ones.
func stHalfRows(pairwise []byte, heads, headDim, rowBytes int) []byte {
	out := make([]byte, len(pairwise))
	for h := 0; h < heads; h++ {
		for r := 0; r < headDim; r++ {
			// Row r of the pairwise head is (pair r/2, member r%2); in
			// rotate-half order it goes to member·headDim/2 + pair.
			dst := h*headDim + (r%2)*(headDim/2) + r/2
			copy(out[dst*rowBytes:(dst+1)*rowBytes], pairwise[(h*headDim+r)*rowBytes:])
		}
	}
	return out
}

// hfNames and mistralNames map engine names to checkpoint names, for writing.
func stHFName(engine string) string {
	switch engine {
	case "token_embd.weight":
		return "model.embed_tokens.weight"
	case "output_norm.weight":
		return "model.norm.weight"
	case "output.weight":
		return "lm_head.weight"
	}
	var n int
	var kind string
	if _, err := fmt.Sscanf(engine, "blk.%d.%s", &n, &kind); err != nil {
		panic(engine)
	}
	m := map[string]string{
		"attn_norm.weight": "input_layernorm.weight", "ffn_norm.weight": "post_attention_layernorm.weight",
		"attn_q.weight": "self_attn.q_proj.weight", "attn_k.weight": "self_attn.k_proj.weight",
		"attn_v.weight": "self_attn.v_proj.weight", "attn_output.weight": "self_attn.o_proj.weight",
		"ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight", "ffn_down.weight": "mlp.down_proj.weight",
	}
	return fmt.Sprintf("model.layers.%d.%s", n, m[kind])
}

func stMistralName(engine string) string {
	switch engine {
	case "token_embd.weight":
		return "tok_embeddings.weight"
	case "output_norm.weight":
		return "norm.weight"
	case "output.weight":
		return "output.weight"
	}
	var n int
	var kind string
	if _, err := fmt.Sscanf(engine, "blk.%d.%s", &n, &kind); err != nil {
		panic(engine)
	}
	m := map[string]string{
		"attn_norm.weight": "attention_norm.weight", "ffn_norm.weight": "ffn_norm.weight",
		"attn_q.weight": "attention.wq.weight", "attn_k.weight": "attention.wk.weight",
		"attn_v.weight": "attention.wv.weight", "attn_output.weight": "attention.wo.weight",
		"ffn_gate.weight": "feed_forward.w1.weight", "ffn_up.weight": "feed_forward.w3.weight", "ffn_down.weight": "feed_forward.w2.weight",
	}
	return fmt.Sprintf("layers.%d.%s", n, m[kind])
}

// hfTensors is w in Hugging Face form: HF names, rotate-half Q and K rows.
func (w *stWeights) hfTensors(cfg Config) []SafetensorsTensor {
	var out []SafetensorsTensor
	size := int(safetensorsDTypes[w.dtype].size)
	for _, name := range w.names {
		data := w.data[name]
		switch {
		case strings.HasSuffix(name, ".attn_q.weight"):
			data = stHalfRows(data, cfg.NumHeads, cfg.HeadDim, cfg.Dim*size)
		case strings.HasSuffix(name, ".attn_k.weight"):
			data = stHalfRows(data, cfg.NumKVHeads, cfg.HeadDim, cfg.Dim*size)
		}
		out = append(out, SafetensorsTensor{Name: stHFName(name), DType: w.dtype, Shape: w.shape[name], Data: data})
	}
	return out
}

// mistralTensors is w in Mistral's consolidated form (pairwise already).
func (w *stWeights) mistralTensors() []SafetensorsTensor {
	var out []SafetensorsTensor
	for _, name := range w.names {
		out = append(out, SafetensorsTensor{Name: stMistralName(name), DType: w.dtype, Shape: w.shape[name], Data: w.data[name]})
	}
	return out
}

// stHFConfigJSON renders cfg as a config.json, plus extra keys.
func stHFConfigJSON(cfg Config, extra map[string]any) []byte {
	arch := map[string]string{"mistral": "MistralForCausalLM", "llama": "LlamaForCausalLM"}[cfg.Arch]
	m := map[string]any{
		"architectures": []string{arch}, "model_type": cfg.Arch, "hidden_act": "silu",
		"hidden_size": cfg.Dim, "num_hidden_layers": cfg.NumLayers, "num_attention_heads": cfg.NumHeads,
		"num_key_value_heads": cfg.NumKVHeads, "intermediate_size": cfg.FFNDim, "vocab_size": cfg.VocabSize,
		"rms_norm_eps": cfg.NormEps, "rope_theta": cfg.RopeTheta, "max_position_embeddings": cfg.ContextLength,
		"torch_dtype": "float32", "tie_word_embeddings": false,
	}
	if cfg.Arch == "mistral" {
		m["sliding_window"] = nil
		if cfg.Window > 0 {
			m["sliding_window"] = cfg.Window
		}
	}
	if cfg.HeadDim != cfg.Dim/cfg.NumHeads {
		m["head_dim"] = cfg.HeadDim
	}
	for k, v := range extra {
		if v == stDeleteKey {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

// stDeleteKey, as a value in extra, removes the key.
var stDeleteKey = &struct{}{}

// stMistralParams renders cfg as Mistral's params.json.
func stMistralParams(cfg Config) []byte {
	m := map[string]any{
		"dim": cfg.Dim, "n_layers": cfg.NumLayers, "head_dim": cfg.HeadDim, "hidden_dim": cfg.FFNDim,
		"n_heads": cfg.NumHeads, "n_kv_heads": cfg.NumKVHeads, "norm_eps": cfg.NormEps,
		"vocab_size": cfg.VocabSize, "rope_theta": cfg.RopeTheta,
	}
	if cfg.Window > 0 {
		m["sliding_window"] = cfg.Window
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

// stBytes is WriteSafetensors into memory.
func stBytes(t testing.TB, ts []SafetensorsTensor, meta map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, WriteSafetensors(&b, ts, meta))
	return b.Bytes()
}

// stCheckpointFiles builds the files of a checkpoint directory for w.
// layout is "hf", "hf-sharded" or "mistral".
func stCheckpointFiles(t testing.TB, layout string, cfg Config, w *stWeights) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	switch layout {
	case "hf":
		ts := w.hfTensors(cfg)
		// An extra buffer older checkpoints carry; the loader ignores it.
		ts = append(ts, SafetensorsTensor{Name: "model.layers.0.self_attn.rotary_emb.inv_freq", DType: "F32",
			Shape: []uint64{uint64(cfg.HeadDim / 2)}, Data: make([]byte, 4*cfg.HeadDim/2)})
		files[hfConfigFile] = stHFConfigJSON(cfg, nil)
		files[stSingleFile] = stBytes(t, ts, map[string]string{"format": "pt"})
	case "hf-sharded":
		ts := w.hfTensors(cfg)
		files[hfConfigFile] = stHFConfigJSON(cfg, nil)
		weightMap := map[string]string{}
		shards := [][]SafetensorsTensor{nil, nil}
		total := 0
		for i, tt := range ts {
			total += len(tt.Data)
			// Alternate, so that both shards hold tensors of every layer.
			s := i % 2
			shards[s] = append(shards[s], tt)
			weightMap[tt.Name] = fmt.Sprintf("model-%05d-of-00002.safetensors", s+1)
		}
		for s, st := range shards {
			files[fmt.Sprintf("model-%05d-of-00002.safetensors", s+1)] = stBytes(t, st, map[string]string{"format": "pt"})
		}
		idx, err := json.MarshalIndent(map[string]any{"metadata": map[string]any{"total_size": total}, "weight_map": weightMap}, "", "  ")
		require.NoError(t, err)
		files[stIndexFile] = append(idx, '\n')
	case "mistral":
		files[mistralParamsFile] = stMistralParams(cfg)
		files[stConsolidatedFile] = stBytes(t, w.mistralTensors(), nil)
	default:
		t.Fatalf("stCheckpointFiles: layout %q", layout)
	}
	return files
}

// stWriteFiles writes files into dir.
func stWriteFiles(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for name, b := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
}

// stGunzip reads a gzip-compressed file whole.
func stGunzip(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	b, err := io.ReadAll(zr)
	require.NoError(t, err)
	return b
}

// stOpen opens dir with default options.
func stOpen(t testing.TB, dir string, opts ...Option) (*Model, error) {
	t.Helper()
	o := &openOptions{window: -1}
	for _, f := range opts {
		f(o)
	}
	m, err := openSafetensors(dir, o)
	if err == nil {
		t.Cleanup(func() { _ = m.Close() })
	}
	return m, err
}

// stRequireWeights checks that m's tensors are exactly w: same names,
// types, shapes (innermost first) and bytes.
func stRequireWeights(t *testing.T, m *Model, w *stWeights) {
	t.Helper()
	got := make([]string, 0, len(m.Tensors))
	for _, tt := range m.Tensors {
		got = append(got, tt.Name)
	}
	want := append([]string(nil), w.names...)
	sort.Strings(got)
	sort.Strings(want)
	require.Equal(t, want, got, "tensor names")
	for _, name := range w.names {
		tt := m.byName[name]
		require.NotNil(t, tt, name)
		want := w.data[name]
		wantType := map[string]DType{"F32": F32, "F16": F16, "BF16": BF16}[w.dtype]
		if strings.HasSuffix(name, "_norm.weight") && w.dtype != "F32" {
			// Norm vectors reach the engine as F32.
			want, wantType = stWidenToF32(w.dtype, want), F32
		}
		require.Equal(t, wantType, tt.Type, name)
		ts := w.shape[name]
		wantShape := []uint64{ts[0]}
		if len(ts) == 2 {
			wantShape = []uint64{ts[1], ts[0]} // torch (out, in) is GGUF {in, out}
		}
		require.Equal(t, wantShape, tt.Shape, name)
		b, err := tt.Bytes()
		require.NoError(t, err, name)
		require.True(t, bytes.Equal(want, b), "%s: bytes differ from the engine layout", name)
	}
}

// stWidenToF32 converts little-endian F16 or BF16 elements to F32, written
// from the formats' definitions rather than with the loader's code.
func stWidenToF32(dtype string, b []byte) []byte {
	out := make([]byte, 0, 2*len(b))
	for i := 0; i < len(b); i += 2 {
		h := binary.LittleEndian.Uint16(b[i:])
		var f float32
		switch dtype {
		case "BF16":
			f = math.Float32frombits(uint32(h) << 16)
		case "F16":
			sign, exp, frac := h>>15, int(h>>10&0x1f), float64(h&0x3ff)
			var v float64
			switch exp {
			case 0: // subnormal
				v = math.Ldexp(frac, -24)
			case 0x1f:
				v = math.Inf(1)
				if frac != 0 {
					v = math.NaN()
				}
			default:
				v = math.Ldexp(1+frac/1024, exp-15)
			}
			if sign != 0 {
				v = -v
			}
			f = float32(v)
		}
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(f))
	}
	return out
}
