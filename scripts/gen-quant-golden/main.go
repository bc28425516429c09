//go:build ignore

// Command main is gen-quant-golden.sh's Go half (run it through that
// script). It has two steps around the llama.cpp run:
//
//	go run scripts/gen-quant-golden/main.go write DIR
//	    writes DIR/<variant>.f32.gguf, small all-F32 llama models with
//	    deterministic pseudo-random weights, and DIR/variants.json;
//	go run scripts/gen-quant-golden/main.go collect DIR OUT
//	    reads DIR/run.json and the files llama.cpp's llama_model_quantize
//	    wrote (DIR/<variant>.<ftype>.gguf) and writes OUT/mixes.json.gz (every
//	    tensor's type, per variant and file type) and DIR/blocks.raw.json
//	    (the quantised bytes of one tensor slice per block type, with its
//	    f32 source), which gen-quant-golden.mjs completes into
//	    OUT/blocks.json.gz.
//
// It uses only the loader's public GGUF reader and writer.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/vkrun/vkrun/loader"
)

// variant is one synthetic model shape. Each exercises some of
// llama.cpp's type-selection rules.
type variant struct {
	Name    string `json:"name"`
	Why     string `json:"why"`
	Layers  int    `json:"layers"`
	Dim     int    `json:"dim"`
	FFN     int    `json:"ffn"`
	Heads   int    `json:"heads"`
	KVHeads int    `json:"kv_heads"`
	Vocab   int    `json:"vocab"`
	Output  bool   `json:"output"` // has output.weight (else tied to token_embd)
}

var variants = []variant{
	{"l8", "8 layers: use_more_bits picks layers 0, 3, 6, 7; GQA 2", 8, 256, 512, 4, 2, 256, true},
	{"l8-tied", "no output.weight: token_embd takes output's rule", 8, 256, 512, 4, 2, 256, false},
	{"l16-ffn320", "ffn_down rows of 320 (not a multiple of 256: fallback types); 16 layers (Q3_K_M's n/16 rule); no GQA", 16, 256, 320, 4, 4, 256, true},
	{"l6-dim288", "every row 288 long except ffn_down's 768: fallbacks everywhere, output falls back to Q8_0", 6, 288, 768, 6, 6, 256, true},
	{"l32-gqa4", "Mistral-7B's layer and head counts (32 layers, 32 heads, 8 KV heads: GQA 4) at a tiny width", 32, 256, 256, 32, 8, 256, true},
	{"l80-gqa4", "80 layers with GQA: llama.cpp calls it LLM_TYPE_70B (attn_v rule)", 80, 256, 256, 8, 2, 256, true},
}

// The block golden data: the first goldenRows rows of goldenTensor in
// variant goldenVariant, for every block type some file type gives it.
const (
	goldenVariant = "l8"
	goldenTensor  = "blk.0.attn_q.weight"
	goldenRows    = 32
)

func main() {
	if len(os.Args) < 3 {
		fail("usage: main.go write DIR | collect DIR OUT")
	}
	var err error
	switch os.Args[1] {
	case "write":
		err = write(os.Args[2])
	case "collect":
		if len(os.Args) != 4 {
			fail("usage: main.go collect DIR OUT")
		}
		err = collect(os.Args[2], os.Args[3])
	default:
		fail("unknown step " + os.Args[1])
	}
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "gen-quant-golden:", msg)
	os.Exit(1)
}

// rng is splitmix64: tiny, and fixed here so the files never change.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// uniform is in [0, 1) with 53 random bits.
func (r *rng) uniform() float64 { return float64(r.next()>>11) / (1 << 53) }

// normal is a standard normal deviate (Box–Muller, one of the pair).
func (r *rng) normal() float64 {
	u := 1 - r.uniform() // (0, 1]
	return math.Sqrt(-2*math.Log(u)) * math.Cos(2*math.Pi*r.uniform())
}

// fillRow makes row `row` of a weight matrix. Most rows are Gaussian with a
// per-row scale; rows 16k+3, 5, 7, 9, 11, 13, 15 are edge cases that
// quantisers treat specially (all zero, constant, outliers, tiny values
// with subnormal f16 scales, uniform, one-signed, large).
func fillRow(seed uint64, row int, dst []float32) {
	r := &rng{s: seed*0x100000001b3 + uint64(row)*0x9e3779b97f4a7c15}
	scale := 0.02 * (1 + float64(row%7))
	for i := range dst {
		var v float64
		switch row % 16 {
		case 3:
			v = 0
		case 5:
			v = 0.05
		case 7:
			v = scale * r.normal()
			if r.uniform() < 0.02 {
				v *= 12
			}
		case 9:
			v = 1e-3 * r.normal()
		case 11:
			v = 2*r.uniform() - 1
		case 13:
			v = math.Abs(scale * r.normal())
		case 15:
			v = 10 * r.normal()
		default:
			v = scale * r.normal()
		}
		dst[i] = float32(v)
	}
}

func tensorSeed(name string) uint64 {
	h := uint64(14695981039346656037) // FNV-1a
	for i := 0; i < len(name); i++ {
		h = (h ^ uint64(name[i])) * 1099511628211
	}
	return h
}

type spec struct {
	name  string
	shape []uint64 // innermost first: {cols, rows}
	norm  bool
}

func (v variant) specs() []spec {
	d, f := uint64(v.Dim), uint64(v.FFN)
	hd := uint64(v.Dim / v.Heads)
	q, kv := uint64(v.Heads)*hd, uint64(v.KVHeads)*hd
	s := []spec{{"token_embd.weight", []uint64{d, uint64(v.Vocab)}, false}}
	s = append(s, spec{"output_norm.weight", []uint64{d}, true})
	if v.Output {
		s = append(s, spec{"output.weight", []uint64{d, uint64(v.Vocab)}, false})
	}
	for l := 0; l < v.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		s = append(s,
			spec{p + "attn_norm.weight", []uint64{d}, true},
			spec{p + "attn_q.weight", []uint64{d, q}, false},
			spec{p + "attn_k.weight", []uint64{d, kv}, false},
			spec{p + "attn_v.weight", []uint64{d, kv}, false},
			spec{p + "attn_output.weight", []uint64{q, d}, false},
			spec{p + "ffn_norm.weight", []uint64{d}, true},
			spec{p + "ffn_gate.weight", []uint64{d, f}, false},
			spec{p + "ffn_up.weight", []uint64{d, f}, false},
			spec{p + "ffn_down.weight", []uint64{f, d}, false},
		)
	}
	return s
}

func (v variant) writeGGUF(path string) error {
	w := loader.NewGGUFWriter()
	hd := v.Dim / v.Heads
	kvs := []struct {
		k string
		x any
	}{
		{"general.architecture", "llama"},
		{"general.name", "vkrun quant golden " + v.Name},
		{"general.file_type", uint32(0)}, // LLAMA_FTYPE_ALL_F32
		{"llama.context_length", uint32(256)},
		{"llama.embedding_length", uint32(v.Dim)},
		{"llama.block_count", uint32(v.Layers)},
		{"llama.feed_forward_length", uint32(v.FFN)},
		{"llama.attention.head_count", uint32(v.Heads)},
		{"llama.attention.head_count_kv", uint32(v.KVHeads)},
		{"llama.rope.dimension_count", uint32(hd)},
		{"llama.rope.freq_base", float32(10000)},
		{"llama.attention.layer_norm_rms_epsilon", float32(1e-5)},
		{"llama.vocab_size", uint32(v.Vocab)},
	}
	for _, kv := range kvs {
		if err := w.SetValue(kv.k, kv.x); err != nil {
			return err
		}
	}
	toks := loader.SyntheticVocab(v.Vocab)
	scores := make([]float32, len(toks))
	types := make([]int32, len(toks))
	for i := range toks {
		types[i] = 1
		scores[i] = -float32(i)
	}
	types[0], types[1], types[2] = 2, 3, 3
	for _, kv := range []struct {
		k string
		x any
	}{
		{"tokenizer.ggml.model", "llama"},
		{"tokenizer.ggml.tokens", toks},
		{"tokenizer.ggml.scores", scores},
		{"tokenizer.ggml.token_type", types},
		{"tokenizer.ggml.bos_token_id", uint32(1)},
		{"tokenizer.ggml.eos_token_id", uint32(2)},
		{"tokenizer.ggml.unknown_token_id", uint32(0)},
	} {
		if err := w.SetValue(kv.k, kv.x); err != nil {
			return err
		}
	}
	for _, s := range v.specs() {
		seed := tensorSeed(s.name)
		fill := func(row int, dst []float32) { fillRow(seed, row, dst) }
		if s.norm {
			fill = func(row int, dst []float32) {
				r := &rng{s: seed}
				for i := range dst {
					dst[i] = float32(1 + 0.1*r.normal())
				}
			}
		}
		if err := w.AddTensorRows(s.name, loader.F32, s.shape, fill); err != nil {
			return err
		}
	}
	return w.WriteFile(path)
}

func write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, v := range variants {
		if err := v.writeGGUF(filepath.Join(dir, v.Name+".f32.gguf")); err != nil {
			return fmt.Errorf("variant %s: %w", v.Name, err)
		}
	}
	b, err := json.MarshalIndent(variants, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "variants.json"), b, 0o644)
}

// run.json, written by gen-quant-golden.mjs.
type runInfo struct {
	LlamaCpp map[string]any `json:"llama_cpp"`
	FTypes   []struct {
		Name  string `json:"name"`
		Value int    `json:"value"`
	} `json:"ftypes"`
}

// The output files' formats (documented in SOURCES.md too).
type mixTensor struct {
	Name  string   `json:"name"`
	Shape []uint64 `json:"shape"`
}

type mixVariant struct {
	variant
	Tensors []mixTensor `json:"tensors"`
	// Types maps a file type ("Q4_K_M") to the type llama.cpp wrote for
	// each tensor, in Tensors' order.
	Types map[string][]string `json:"types"`
}

type mixFile struct {
	LlamaCpp map[string]any `json:"llama_cpp"`
	Variants []mixVariant   `json:"variants"`
}

type block struct {
	Type  string `json:"type"`  // the block type ("Q4_K")
	FType string `json:"ftype"` // the file type whose file it came from
	Data  []byte `json:"data"`  // base64 in JSON: goldenRows rows as llama.cpp wrote them
}

type blockFile struct {
	LlamaCpp map[string]any `json:"llama_cpp"`
	Variant  string         `json:"variant"`
	Tensor   string         `json:"tensor"`
	Rows     int            `json:"rows"`
	Cols     int            `json:"cols"`
	F32      []byte         `json:"f32"` // little-endian float32, rows×cols
	Blocks   []block        `json:"blocks"`
}

func collect(dir, out string) error {
	var run runInfo
	b, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &run); err != nil {
		return err
	}
	mf := mixFile{LlamaCpp: run.LlamaCpp}
	bf := blockFile{LlamaCpp: run.LlamaCpp, Variant: goldenVariant, Tensor: goldenTensor, Rows: goldenRows}
	seen := map[string]bool{}
	for _, v := range variants {
		mv := mixVariant{variant: v, Types: map[string][]string{}}
		for _, s := range v.specs() {
			mv.Tensors = append(mv.Tensors, mixTensor{s.name, s.shape})
		}
		if v.Name == goldenVariant {
			f, err := loader.OpenGGUF(filepath.Join(dir, v.Name+".f32.gguf"))
			if err != nil {
				return err
			}
			raw, cols, err := goldenSlice(f, loader.F32)
			if err != nil {
				return err
			}
			bf.Cols = cols
			bf.F32 = bytes.Clone(raw)
			f.Close()
		}
		for _, ft := range run.FTypes {
			path := filepath.Join(dir, v.Name+"."+ft.Name+".gguf")
			f, err := loader.OpenGGUF(path)
			if err != nil {
				return err
			}
			byName := map[string]*loader.Tensor{}
			for _, t := range f.Tensors {
				byName[t.Name] = t
			}
			if len(byName) != len(mv.Tensors) {
				return fmt.Errorf("%s: %d tensors, want %d", path, len(byName), len(mv.Tensors))
			}
			types := make([]string, len(mv.Tensors))
			for i, mt := range mv.Tensors {
				t := byName[mt.Name]
				if t == nil {
					return fmt.Errorf("%s: no tensor %s", path, mt.Name)
				}
				types[i] = t.Type.String()
			}
			mv.Types[ft.Name] = types
			if v.Name == goldenVariant {
				t := byName[goldenTensor]
				if name := t.Type.String(); !seen[name] && t.Type != loader.F32 {
					raw, _, err := goldenSlice(f, t.Type)
					if err != nil {
						return err
					}
					seen[name] = true
					bf.Blocks = append(bf.Blocks, block{Type: name, FType: ft.Name, Data: bytes.Clone(raw)})
				}
			}
			f.Close()
		}
		mf.Variants = append(mf.Variants, mv)
	}
	sort.Slice(bf.Blocks, func(i, j int) bool { return bf.Blocks[i].Type < bf.Blocks[j].Type })
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := writeGz(filepath.Join(out, "mixes.json.gz"), mf); err != nil {
		return err
	}
	b, err = json.Marshal(bf)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "blocks.raw.json"), b, 0o644)
}

// goldenSlice is the first goldenRows rows of goldenTensor in f, which must
// have type t.
func goldenSlice(f *loader.GGUFFile, t loader.DType) ([]byte, int, error) {
	for _, tt := range f.Tensors {
		if tt.Name != goldenTensor {
			continue
		}
		if tt.Type != t {
			return nil, 0, fmt.Errorf("%s: %s is %s, want %s", f.Path, goldenTensor, tt.Type, t)
		}
		raw, err := tt.Bytes()
		if err != nil {
			return nil, 0, err
		}
		cols := tt.Shape[0]
		rowBytes, err := tt.Type.RowBytes(cols)
		if err != nil {
			return nil, 0, err
		}
		return raw[:goldenRows*rowBytes], int(cols), nil
	}
	return nil, 0, fmt.Errorf("%s: no tensor %s", f.Path, goldenTensor)
}

func writeGz(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(b); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
