//go:build ignore

// Command main is gen-swa-golden.sh's Go half (run it through that script):
//
//	go run scripts/gen-swa-golden/main.go write DIR [NAME...]
//
// writes DIR/<variant>.gguf for every variant below (or only the named
// ones) with loader.WriteSynthetic, and DIR/variants.json: each variant's
// Config, weight type, seed, the sha256 and size of the file's bytes, and
// the prompt. Before writing variants.json it reads every file back and
// works out what llama.cpp will compute from it (its defaults for absent
// keys, its layer pattern, its fixed per-arch choices), and fails when that
// is not what the Config says: a golden made from such a file would test the
// wrong model.
//
// Tests regenerate each file with the same WriteSynthetic call and check
// its sha256 before they compare logits.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vkrun/vkrun/loader"
)

// variant is one synthetic model llama.cpp runs.
type variant struct {
	Name   string
	Why    string
	Config loader.Config
	Type   loader.DType
	Seed   int64
}

// Six layers each; windows small enough that every layer kind shapes the
// 40-token prompt's logits (a local layer of window W forgets what lies more
// than W−1 positions back).
var (
	// Gemma 2: alternating local/global, the first local; both soft-caps,
	// small enough to bend the scores (q·k/√16 is about ±1 here, the logits
	// about ±5).
	gemma2 = loader.Config{
		Arch: "gemma2", Dim: 64, NumLayers: 6, NumHeads: 4, NumKVHeads: 2, HeadDim: 16, FFNDim: 128,
		VocabSize: 256, RopeTheta: 10000, RopeDim: 16, Rope: loader.RopeHalf, NormEps: 1e-6,
		ContextLength: 8192, Window: 4,
		Layers:     alternate(6, 2, loader.LayerSpec{Window: 4, RopeTheta: 10000, RopeScale: 1}, loader.LayerSpec{RopeTheta: 10000, RopeScale: 1}),
		Norm:       loader.NormRMS,
		Act:        loader.ActGELUTanh,
		EmbedScale: 8, // √64
		PostNorms:  true,
		// AttnScale 0: 1/√HeadDim, which llama.cpp uses for every size but 27B.
		AttnSoftcap:  2,
		FinalSoftcap: 5,
	}
	// Gemma 3: five local layers then one global; two RoPE bases, linear
	// RoPE scaling on the global layer only; per-head q/k RMSNorm; 4 query
	// heads of 32 on a width of 64 (so HeadDim ≠ Dim/NumHeads, as in Gemma 3
	// 1B: 4 × 256 on 1152) sharing one K/V head, as 1B does.
	gemma3 = loader.Config{
		Arch: "gemma3", Dim: 64, NumLayers: 6, NumHeads: 4, NumKVHeads: 1, HeadDim: 32, FFNDim: 96,
		VocabSize: 256, RopeTheta: 1e6, RopeDim: 32, Rope: loader.RopeHalf, NormEps: 1e-6,
		ContextLength: 32768, Window: 3,
		Layers:     alternate(6, 6, loader.LayerSpec{Window: 3, RopeTheta: 1e4, RopeScale: 1}, loader.LayerSpec{RopeTheta: 1e6, RopeScale: 8}),
		Norm:       loader.NormRMS,
		Act:        loader.ActGELUTanh,
		EmbedScale: 8, // √64
		PostNorms:  true,
		QKNorm:     true,
	}
	// Cohere2 (Command R7B): three local layers then one global; RoPE on the
	// local layers only; LayerNorm without bias; attention and FFN in
	// parallel; scaled logits.
	cohere2 = loader.Config{
		Arch: "cohere2", Dim: 64, NumLayers: 6, NumHeads: 4, NumKVHeads: 2, HeadDim: 16, FFNDim: 128,
		VocabSize: 256, RopeTheta: 50000, RopeDim: 16, Rope: loader.RopePairwise, NormEps: 1e-5,
		ContextLength: 8192, Window: 5,
		Layers:     alternate(6, 4, loader.LayerSpec{Window: 5, RopeTheta: 50000, RopeScale: 1}, loader.LayerSpec{RopeScale: 1}),
		Norm:       loader.NormLayer,
		Act:        loader.ActSiLU,
		Parallel:   true,
		LogitScale: 0.25,
	}
	// A llama file with no window: llama.cpp's plain path, which our engine
	// already matches. It checks this harness (every position's logits, the
	// greedy loop) independently of the SWA families.
	llama = loader.Config{
		Arch: "llama", Dim: 64, NumLayers: 6, NumHeads: 4, NumKVHeads: 2, HeadDim: 16, FFNDim: 128,
		VocabSize: 256, RopeTheta: 10000, RopeDim: 16, NormEps: 1e-5, ContextLength: 2048,
	}
	// Qwen 2.5: Q, K and V biases, NEOX RoPE, θ 1e6, GQA 2:1. llama.cpp's
	// qwen2 makes attn_q and attn_output {dim, dim}, so heads·HeadDim = Dim.
	qwen2 = loader.Config{
		Arch: "qwen2", Dim: 64, NumLayers: 6, NumHeads: 4, NumKVHeads: 2, HeadDim: 16, FFNDim: 128,
		VocabSize: 256, RopeTheta: 1e6, RopeDim: 16, Rope: loader.RopeHalf, NormEps: 1e-6,
		ContextLength: 32768, QKVBias: true,
	}
	// Qwen 3: per-head q/k RMSNorm before RoPE, no biases, NEOX RoPE; 4
	// query heads of 32 on a width of 64 (Qwen3-0.6B: 16 × 128 on 1024),
	// two K/V heads.
	qwen3 = loader.Config{
		Arch: "qwen3", Dim: 64, NumLayers: 6, NumHeads: 4, NumKVHeads: 2, HeadDim: 32, FFNDim: 128,
		VocabSize: 256, RopeTheta: 1e6, RopeDim: 32, Rope: loader.RopeHalf, NormEps: 1e-6,
		ContextLength: 40960, QKNorm: true,
	}
	// Llama 3.1's RoPE scaling as its GGUFs carry it: rope_freqs.weight,
	// one divisor per pair, θ 5e5. The shape is Llama 3.1's (1 on the fast
	// pairs, 8 on the slow ones, a smooth band between), squeezed onto the 8
	// pairs of a 16-wide head so that the band falls on pairs that turn
	// noticeably over the 40 prompt positions (pair 2 by 0.037 rad a
	// position before its divisor, pair 3 by 0.0072).
	llama3Rope = loader.Config{
		Arch: "llama", Dim: 64, NumLayers: 6, NumHeads: 4, NumKVHeads: 2, HeadDim: 16, FFNDim: 128,
		VocabSize: 256, RopeTheta: 5e5, RopeDim: 16, NormEps: 1e-5, ContextLength: 131072,
		RopeFreqFactors: []float64{1, 1, 1.25, 4, 8, 8, 8, 8},
	}
	// Mistral Nemo's trait on the llama arch: attention.key_length 32 with
	// 4 heads on a width of 64 (Nemo: 32 × 128 on 5120), θ 1e6.
	llamaHeadDim = loader.Config{
		Arch: "llama", Dim: 64, NumLayers: 6, NumHeads: 4, NumKVHeads: 2, HeadDim: 32, FFNDim: 128,
		VocabSize: 256, RopeTheta: 1e6, RopeDim: 32, NormEps: 1e-5, ContextLength: 1024000,
	}
)

var variants = []variant{
	{"gemma2-f32", "Gemma 2: W=4, pattern 2 (local, global, …), attention and final soft-caps", gemma2, loader.F32, 21},
	{"gemma2-q8_0", "the same in Q8_0", gemma2, loader.Q8_0, 21},
	{"gemma3-f32", "Gemma 3: W=3, pattern 6, θ 1e4 local / 1e6 global, global RoPE scale 8, q/k norm, head dim 32 ≠ 64/4, MQA", gemma3, loader.F32, 31},
	{"gemma3-q8_0", "the same in Q8_0", gemma3, loader.Q8_0, 31},
	{"cohere2-f32", "Cohere2: W=5, pattern 4, no RoPE on the global layer, LayerNorm, parallel block, logit scale", cohere2, loader.F32, 41},
	{"cohere2-q8_0", "the same in Q8_0", cohere2, loader.Q8_0, 41},
	{"llama-f32", "control: a llama file without a window (full attention everywhere)", llama, loader.F32, 11},
	{"qwen2-f32", "Qwen 2.5: Q/K/V biases, NEOX RoPE, θ 1e6, GQA 2:1", qwen2, loader.F32, 51},
	{"qwen2-q8_0", "the same in Q8_0", qwen2, loader.Q8_0, 51},
	{"qwen3-f32", "Qwen 3: per-head q/k RMSNorm, NEOX RoPE, no biases, head dim 32 ≠ 64/4, GQA 2:1", qwen3, loader.F32, 61},
	{"llama3-rope-f32", "Llama 3.1 RoPE: rope_freqs.weight divides pair i's frequency by 1, 1, 1.25, 4, 8, 8, 8, 8; θ 5e5", llama3Rope, loader.F32, 71},
	{"llama-headdim-f32", "llama with attention.key_length 32 ≠ 64/4 (Mistral Nemo's trait), θ 1e6", llamaHeadDim, loader.F32, 81},
}

// alternate is n layers where layer l is local when l % period < period−1
// (llama.cpp's set_swa_pattern).
func alternate(n, period int, local, global loader.LayerSpec) []loader.LayerSpec {
	ls := make([]loader.LayerSpec, n)
	for l := range ls {
		if l%period < period-1 {
			ls[l] = local
		} else {
			ls[l] = global
		}
	}
	return ls
}

const (
	promptLen   = 40
	greedySteps = 16
	promptRule  = "ids[0] = 1 (BOS); x = 0x5357415f474f4c44; for i = 1…39: x = x·6364136223846793005 + 1442695040888963407 mod 2^64, ids[i] = 3 + (x>>33) mod 253"
)

// prompt is BOS then ids in 3…255 from a 64-bit LCG (promptRule).
func prompt() []int {
	ids := []int{1}
	x := uint64(0x5357415f474f4c44) // "SWA_GOLD"
	for len(ids) < promptLen {
		x = x*6364136223846793005 + 1442695040888963407
		ids = append(ids, 3+int((x>>33)%253))
	}
	return ids
}

// entry is one variant in variants.json (and, completed with llama.cpp's
// outputs, in llamacpp.json.gz).
type entry struct {
	Name        string        `json:"name"`
	Why         string        `json:"why"`
	File        string        `json:"file"`
	Config      loader.Config `json:"config"`
	Type        string        `json:"type"`
	Seed        int64         `json:"seed"`
	SHA256      string        `json:"sha256"`
	Size        int64         `json:"size"`
	Prompt      []int         `json:"prompt"`
	GreedySteps int           `json:"greedy_steps"`
}

func main() {
	if len(os.Args) < 3 || os.Args[1] != "write" {
		fail("usage: main.go write DIR [NAME...]")
	}
	if err := write(os.Args[2], os.Args[3:]); err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "gen-swa-golden:", msg)
	os.Exit(1)
}

func write(dir string, only []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range only {
		if !slices.ContainsFunc(variants, func(v variant) bool { return v.Name == name }) {
			return fmt.Errorf("no variant %q", name)
		}
	}
	var entries []entry
	var errs []error
	for _, v := range variants {
		if len(only) > 0 && !slices.Contains(only, v.Name) {
			continue
		}
		e, err := v.write(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("variant %s: %w", v.Name, err))
			continue
		}
		entries = append(entries, e)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(struct {
		PromptRule string  `json:"prompt_rule"`
		Variants   []entry `json:"variants"`
	}{promptRule, entries}); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "variants.json"), []byte(b.String()), 0o644)
}

func (v variant) write(dir string) (entry, error) {
	file := v.Name + ".gguf"
	path := filepath.Join(dir, file)
	if err := loader.WriteSynthetic(path, v.Config, v.Type, v.Seed, nil); err != nil {
		return entry{}, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return entry{}, err
	}
	sum := sha256.Sum256(b)
	f, err := loader.OpenGGUF(path)
	if err != nil {
		return entry{}, err
	}
	defer f.Close()
	if problems := llamaView(v.Config, f); len(problems) > 0 {
		return entry{}, fmt.Errorf("llama.cpp would not compute this Config from %s:\n  %s", file, strings.Join(problems, "\n  "))
	}
	return entry{
		Name: v.Name, Why: v.Why, File: file, Config: v.Config, Type: v.Type.String(), Seed: v.Seed,
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b)), Prompt: prompt(), GreedySteps: greedySteps,
	}, nil
}

// llamaView lists where what llama.cpp (the commit gen-swa-golden.sh pins)
// computes from f differs from c. It follows llama.cpp's src/llama-model.cpp
// and src/models/{llama,qwen2,qwen3,gemma2,gemma3,cohere2}.cpp: the keys
// each arch reads, the defaults it takes for absent ones, the optional
// tensors it adds when a file has them (Q/K/V biases, rope_freqs.weight),
// and what it fixes per arch whatever the file says (embedding scale,
// norms, activation, RoPE style, q scale).
func llamaView(c loader.Config, f *loader.GGUFFile) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	a := c.Arch + "."
	arch, _ := f.String("general.architecture")
	if arch != c.Arch {
		bad("general.architecture is %q, Config.Arch %q", arch, c.Arch)
		return problems
	}
	u := func(key string, def uint64) uint64 {
		if x, ok := f.Uint(a + key); ok {
			return x
		}
		return def
	}
	fl := func(key string, def float64) (float64, bool) {
		if x, ok := f.Float(a + key); ok {
			return x, true
		}
		return def, false
	}
	same := func(x, y float64) bool { return float32(x) == float32(y) }

	// Shapes every arch reads the same way.
	dim := u("embedding_length", 0)
	heads := u("attention.head_count", 0)
	for _, k := range []struct {
		key  string
		got  uint64
		want int
	}{
		{"embedding_length", dim, c.Dim},
		{"block_count", u("block_count", 0), c.NumLayers},
		{"feed_forward_length", u("feed_forward_length", 0), c.FFNDim},
		{"attention.head_count", heads, c.NumHeads},
		{"attention.head_count_kv", u("attention.head_count_kv", heads), c.NumKVHeads},
	} {
		if k.got != uint64(k.want) {
			bad("%s%s is %d, Config says %d", a, k.key, k.got, k.want)
		}
	}
	if heads == 0 {
		return append(problems, "no attention.head_count")
	}
	headK := u("attention.key_length", dim/heads)
	headV := u("attention.value_length", dim/heads)
	rot := u("rope.dimension_count", headK)
	if headK != uint64(c.HeadDim) || headV != uint64(c.HeadDim) {
		bad("head dims k %d, v %d (attention.key_length / value_length, default dim/heads), Config.HeadDim %d", headK, headV, c.HeadDim)
	}
	ropeDim := c.RopeDim
	if ropeDim == 0 {
		ropeDim = c.HeadDim
	}
	if rot != uint64(ropeDim) {
		bad("rope.dimension_count is %d, Config.RopeDim %d", rot, ropeDim)
	}
	if t, ok := f.String(a + "rope.scaling.type"); ok && t != "linear" && t != "none" {
		bad("rope.scaling.type %q: only linear scaling is modelled", t)
	}
	factor, hasFactor := fl("rope.scaling.factor", 0)
	if !hasFactor {
		factor, _ = fl("rope.scale_linear", 0)
	}
	trainScale := 1.0 // rope_freq_scale_train is 1/factor
	if factor != 0 {
		trainScale = 1 / factor
	}
	freqBase, _ := fl("rope.freq_base", 10000)

	// The per-layer view: is_swa, and each layer's RoPE base and scale.
	type layerView struct {
		swa          bool
		theta, scale float64 // theta 0: no RoPE
	}
	n := c.NumLayers
	view := make([]layerView, n)
	pattern := func(def uint64) {
		key := a + "attention.sliding_window_pattern"
		v, ok := f.Get(key)
		if ok && v.Type == loader.TypeArray {
			var flags []bool
			switch x := v.Data.(type) {
			case []bool:
				flags = x
			case []int32:
				for _, y := range x {
					flags = append(flags, y != 0)
				}
			case []uint32:
				for _, y := range x {
					flags = append(flags, y != 0)
				}
			default:
				bad("%s is an array of %s: llama.cpp refuses it", key, v.Elem)
			}
			for l := range view {
				view[l].swa = l < len(flags) && flags[l]
			}
			return
		}
		period := def
		if x, ok := v.Uint(); ok {
			period = x
		}
		for l := range view {
			view[l].swa = period == 0 || uint64(l)%period < period-1
		}
	}
	window := uint64(0)
	var attnScale, attnCap, finalCap, logitScale, embedScale float64
	var want struct {
		norm                     loader.NormKind
		act                      loader.Activation
		rope                     loader.RopeStyle
		postNorms, qkNorm, paral bool
		qkvBias                  bool
	}
	epsKey := "attention.layer_norm_rms_epsilon"
	headScale := 1 / math.Sqrt(float64(headK))
	tensors := map[string]bool{}
	byName := map[string]*loader.Tensor{}
	for _, t := range f.Tensors {
		tensors[t.Name] = true
		byName[t.Name] = t
	}
	// Q/K/V biases: every arch here creates its Q, K and V through
	// create_tensor_qkv, which takes attn_{q,k,v}.bias as optional tensors,
	// and build_qkv adds each one a layer has.
	biases := 0
	for l := 0; l < n; l++ {
		for _, b := range []string{"attn_q", "attn_k", "attn_v"} {
			if tensors[fmt.Sprintf("blk.%d.%s.bias", l, b)] {
				biases++
			}
		}
	}
	want.qkvBias = biases > 0 // the tensor list below reports a partial set as missing
	// rope_freqs.weight: only the llama arch creates it (optional, shared by
	// every layer through TENSOR_DUPLICATED), and get_rope_factors hands it
	// to every layer's RoPE, which divides pair i's frequency by element i.
	// The other archs here do not create it and refuse a file that has it.
	var factors []float32
	readsRopeFreqs := c.Arch == "llama"
	if t := byName["rope_freqs.weight"]; t != nil && readsRopeFreqs {
		switch v, err := t.Float32s(); {
		case err != nil:
			bad("rope_freqs.weight: %v", err)
		case t.Type != loader.F32 || !slices.Equal(t.Shape, []uint64{rot / 2}):
			bad("rope_freqs.weight is %s %v; llama.cpp creates it F32 {n_rot/2 = %d}", t.Type, t.Shape, rot/2)
		default:
			factors = v
		}
	}
	// The archs without sliding windows in llama.cpp: neither the window
	// key nor a pattern is read; one RoPE base and linear scale for all.
	plain := func(rope loader.RopeStyle) {
		for l := range view {
			view[l] = layerView{theta: freqBase, scale: trainScale}
		}
		attnScale, embedScale = headScale, 1 // 1/√n_embd_head_v, = 1/√key_length here
		want.act, want.rope, want.norm = loader.ActSiLU, rope, loader.NormRMS
		// llama's hparams loader throws "invalid n_rot" and the qwen graphs
		// assert n_embd_head == n_rot.
		if rot != headK {
			bad("rope.dimension_count %d ≠ key_length %d: llama.cpp's %s needs them equal", rot, headK, c.Arch)
		}
	}
	switch c.Arch {
	case "mistral":
		bad(`llama.cpp has no arch "mistral": Mistral GGUFs are "llama" files`)
		return problems
	case "llama":
		// No SWA for this arch in llama.cpp: the window key is ignored.
		// f_attention_scale is never read for llama, so q·k is scaled by
		// 1/√head dim; use_kq_norm is Llama 4's alone.
		plain(loader.RopePairwise)
	case "qwen2":
		plain(loader.RopeHalf) // llama_model_rope_type: NEOX
		if headK*heads != dim {
			bad("heads × head dim = %d ≠ dim %d: qwen2's attn_q and attn_output are {dim, dim} in llama.cpp", headK*heads, dim)
		}
		if tensors["output.bias"] {
			bad("output.bias is present: llama.cpp's qwen2 adds it to the logits, which Config cannot say")
			delete(tensors, "output.bias")
		}
	case "qwen3":
		plain(loader.RopeHalf)
		want.qkNorm = true // attn_q_norm / attn_k_norm: per-head RMSNorm before RoPE
	case "gemma2":
		window = u("attention.sliding_window", 4096)
		pattern(2)
		swaBase, _ := fl("rope.freq_base_swa", freqBase)
		for l := range view {
			view[l].theta, view[l].scale = freqBase, trainScale
			if view[l].swa {
				view[l].theta = swaBase // rope_freq_scale_train_swa = rope_freq_scale_train
			}
		}
		attnCap, _ = fl("attn_logit_softcapping", 50)
		finalCap, _ = fl("final_logit_softcapping", 30) // always applied
		attnScale = headScale
		if n == 46 { // LLM_TYPE_27B
			attnScale = 1 / math.Sqrt(float64(dim/heads))
		}
		embedScale = math.Sqrt(float64(dim))
		want.act, want.rope, want.norm, want.postNorms = loader.ActGELUTanh, loader.RopeHalf, loader.NormRMS, true
		if tensors["output.weight"] {
			bad("output.weight is present: gemma2 always uses token_embd and refuses a file with an extra tensor")
		}
	case "gemma3":
		if w, ok := f.Uint(a + "attention.sliding_window"); ok && w > 0 {
			window = w
			pattern(6)
		}
		swaBase, _ := fl("rope.freq_base_swa", 10000) // llama.cpp's default, not freq_base
		for l := range view {
			view[l].theta, view[l].scale = freqBase, trainScale
			if view[l].swa {
				view[l].theta, view[l].scale = swaBase, 1
			}
		}
		finalCap, _ = fl("final_logit_softcapping", 0)
		attnScale = headScale
		if n == 62 { // LLM_TYPE_27B
			attnScale = 1 / math.Sqrt(float64(dim/heads))
		}
		embedScale = math.Sqrt(float64(dim))
		want.act, want.rope, want.norm, want.postNorms, want.qkNorm = loader.ActGELUTanh, loader.RopeHalf, loader.NormRMS, true, true
	case "cohere2":
		w, ok := f.Uint(a + "attention.sliding_window")
		if !ok {
			bad("%sattention.sliding_window is absent: llama.cpp requires it", a)
		}
		window = w
		pattern(4)
		for l := range view {
			if view[l].swa { // the graph ropes local layers only, with freq_base (not freq_base_swa)
				view[l].theta, view[l].scale = freqBase, trainScale
			}
		}
		ls, ok := fl("logit_scale", 0)
		if !ok {
			bad("%slogit_scale is absent: llama.cpp requires it", a)
		}
		logitScale = ls
		attnScale, embedScale = headScale, 1
		epsKey = "attention.layer_norm_epsilon"
		want.act, want.rope, want.norm, want.paral = loader.ActSiLU, loader.RopePairwise, loader.NormLayer, true
		if headK*heads != dim {
			bad("heads × head dim = %d ≠ dim %d: cohere2's attn_q is {dim, dim} in llama.cpp", headK*heads, dim)
		}
		for _, name := range []string{"output.weight", "blk.0.ffn_norm.weight"} {
			if tensors[name] {
				bad("%s is present: cohere2 has none, and llama.cpp refuses a file with an extra tensor", name)
			}
		}
	default:
		bad("arch %q: llama.cpp's behaviour for it is not modelled here", c.Arch)
		return problems
	}
	if eps, ok := fl(epsKey, 0); !ok {
		bad("%s%s is absent: llama.cpp requires it", a, epsKey)
	} else if !same(eps, c.NormEps) {
		bad("%s%s is %g, Config.NormEps %g", a, epsKey, eps, c.NormEps)
	}
	for l := range view {
		s := c.Layer(l)
		cw, cs := 0, s.RopeScale
		if cs == 0 {
			cs = 1
		}
		if view[l].swa {
			cw = int(window)
		}
		if cw != s.Window {
			bad("layer %d: llama.cpp applies window %d (0 = global), Config %d", l, cw, s.Window)
		}
		if !same(view[l].theta, s.RopeTheta) {
			bad("layer %d: llama.cpp's RoPE base is %g (0 = no RoPE), Config %g", l, view[l].theta, s.RopeTheta)
		}
		if view[l].theta != 0 && !same(1/view[l].scale, cs) {
			bad("layer %d: llama.cpp's linear RoPE scale is %g, Config.RopeScale %g", l, 1/view[l].scale, cs)
		}
	}
	orOne := func(x float64) float64 {
		if x == 0 {
			return 1
		}
		return x
	}
	for _, k := range []struct {
		what       string
		got, wantC float64
	}{
		{"q·k scale", attnScale, c.QueryScale()},
		{"attention soft-cap (0 none)", attnCap, c.AttnSoftcap},
		{"final soft-cap (0 none)", finalCap, c.FinalSoftcap},
		{"logit scale", orOne(logitScale), orOne(c.LogitScale)},
		{"embedding scale", embedScale, orOne(c.EmbedScale)},
	} {
		if !same(k.got, k.wantC) {
			bad("%s: llama.cpp uses %g, Config %g", k.what, k.got, k.wantC)
		}
	}
	if c.Norm != want.norm || c.Act != want.act || c.Rope != want.rope || c.PostNorms != want.postNorms ||
		c.QKNorm != want.qkNorm || c.Parallel != want.paral {
		bad("llama.cpp's %s block is norm %s, act %s, rope %s, post norms %v, qk norm %v, parallel %v; Config has %s, %s, %s, %v, %v, %v",
			c.Arch, want.norm, want.act, want.rope, want.postNorms, want.qkNorm, want.paral,
			c.Norm, c.Act, c.Rope, c.PostNorms, c.QKNorm, c.Parallel)
	}
	if c.QKVBias != want.qkvBias {
		bad("Q/K/V biases: llama.cpp adds them when the file has them (%d of %d bias tensors here), Config.QKVBias %v", biases, 3*n, c.QKVBias)
	}
	switch {
	case c.RopeFreqFactors != nil && !readsRopeFreqs:
		bad("Config.RopeFreqFactors is set, but llama.cpp's %s reads no rope_freqs.weight", c.Arch)
	case len(factors) != len(c.RopeFreqFactors):
		bad("llama.cpp's RoPE divides by %d frequency factors (rope_freqs.weight), Config has %d", len(factors), len(c.RopeFreqFactors))
	default:
		for i, x := range factors {
			if x != float32(c.RopeFreqFactors[i]) {
				bad("RoPE pair %d: llama.cpp divides its frequency by %g, Config.RopeFreqFactors %g", i, x, c.RopeFreqFactors[i])
			}
		}
	}
	// The tensors llama.cpp creates for this arch (it refuses missing and
	// extra ones alike; output.weight is optional for llama, qwen2, qwen3
	// and gemma3, rope_freqs.weight for llama).
	need := []string{"token_embd.weight", "output_norm.weight"}
	for l := 0; l < n; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		need = append(need, p+"attn_norm.weight", p+"attn_q.weight", p+"attn_k.weight", p+"attn_v.weight",
			p+"attn_output.weight", p+"ffn_gate.weight", p+"ffn_up.weight", p+"ffn_down.weight")
		if c.Arch != "cohere2" {
			need = append(need, p+"ffn_norm.weight")
		}
		if want.postNorms {
			need = append(need, p+"post_attention_norm.weight", p+"post_ffw_norm.weight")
		}
		if want.qkNorm {
			need = append(need, p+"attn_q_norm.weight", p+"attn_k_norm.weight")
		}
		if want.qkvBias {
			need = append(need, p+"attn_q.bias", p+"attn_k.bias", p+"attn_v.bias")
		}
	}
	for _, name := range need {
		if !tensors[name] {
			bad("tensor %s is missing", name)
		}
		delete(tensors, name)
	}
	switch c.Arch {
	case "llama", "qwen2", "qwen3", "gemma3":
		delete(tensors, "output.weight")
	}
	if readsRopeFreqs {
		delete(tensors, "rope_freqs.weight")
	}
	for name := range tensors {
		if !strings.HasSuffix(name, "ffn_norm.weight") && name != "output.weight" { // reported above
			bad("tensor %s is one llama.cpp does not read: it refuses the file", name)
		}
	}
	slices.Sort(problems)
	return problems
}
