package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/vkrun/vkrun/engine"
	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/shaders"
)

func init() {
	register("inspect", "print a model's config, tokenizer and tensors", cmdInspect)
}

// cmdInspect implements `vkrun inspect [--json] FILE`. FILE is a GGUF file
// or a safetensors checkpoint directory. A GGUF file that parses but is not
// a model vkrun can run is still listed (metadata and tensors), with the
// reason on stderr and exit status 1.
func cmdInspect(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	context := fs.Int("c", 0, "context for the KV cache size of models with global layers (0: the model's, at most 4096)")
	window := fs.Int("window", -1, "override the sliding window of every local layer (0: every layer global; -1: the file's)")
	kv := fs.String("kv", "f16", "KV cache precision for the KV cache size: f16 or f32")
	keep := fs.Int("keep", 0, "sink tokens kept beside every local layer's window")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vkrun inspect [--json] [-c N] [--window W] [--kv f16|f32] FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	path := fs.Arg(0)
	if *context < 0 || *window < -1 || *keep < 0 || (*kv != "f16" && *kv != "f32") {
		fmt.Fprintf(stderr, "vkrun inspect: -c %d, --window %d, --keep %d, --kv %q: want -c ≥ 0, --window ≥ -1, --keep ≥ 0, --kv f16 or f32\n", *context, *window, *keep, *kv)
		return 2
	}
	kvType := ops.KVF16
	if *kv == "f32" {
		kvType = ops.KVF32
	}

	r, err := inspectModel(path, inspectOptions{context: *context, window: *window, keep: *keep, kv: kvType})
	if err != nil {
		fmt.Fprintf(stderr, "vkrun inspect: %s\n", oneLine(err))
		if r == nil {
			return 1
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if e := enc.Encode(r); e != nil {
			fmt.Fprintf(stderr, "vkrun inspect: %s\n", oneLine(e))
			return 1
		}
	} else {
		printReport(stdout, r)
	}
	if err != nil {
		return 1
	}
	return 0
}

// inspectReport is what inspect prints; its JSON form is the --json output.
type inspectReport struct {
	Path           string            `json:"path"`
	Format         string            `json:"format"`
	Version        uint32            `json:"version,omitempty"` // GGUF version
	Size           uint64            `json:"size,omitempty"`    // file size in bytes (GGUF)
	Architecture   string            `json:"architecture,omitempty"`
	Error          string            `json:"error,omitempty"` // why the file is not a runnable model
	Config         *inspectConfig    `json:"config,omitempty"`
	Tokenizer      *inspectTokenizer `json:"tokenizer"`
	TokenizerError string            `json:"tokenizer_error,omitempty"`
	Metadata       []inspectKV       `json:"metadata,omitempty"`
	Tensors        []inspectTensor   `json:"tensors"`
	TensorBytes    uint64            `json:"tensor_bytes"`
}

type inspectConfig struct {
	Arch          string  `json:"arch"`
	Dim           int     `json:"dim"`
	Layers        int     `json:"layers"`
	Heads         int     `json:"heads"`
	KVHeads       int     `json:"kv_heads"`
	HeadDim       int     `json:"head_dim"`
	FFNDim        int     `json:"ffn_dim"`
	Vocab         int     `json:"vocab"`
	RopeTheta     float64 `json:"rope_theta"`
	RopeDim       int     `json:"rope_dim"`
	NormEps       float64 `json:"norm_eps"`
	ContextLength int     `json:"context_length"`
	Window        int     `json:"window"` // of the local layers; 0: full attention
	TiedOutput    bool    `json:"tied_output"`

	// The family's differences from llama (zero values: llama's).
	Rope         string  `json:"rope"` // "pairwise" or "half" (NEOX)
	Norm         string  `json:"norm"` // "rmsnorm" or "layernorm"
	Act          string  `json:"act"`  // "silu" or "gelu-tanh"
	EmbedScale   float64 `json:"embed_scale,omitempty"`
	PostNorms    bool    `json:"post_norms,omitempty"`
	QKNorm       bool    `json:"qk_norm,omitempty"`
	Parallel     bool    `json:"parallel,omitempty"`
	QueryScale   float64 `json:"query_scale"`
	AttnSoftcap  float64 `json:"attn_softcap,omitempty"`
	FinalSoftcap float64 `json:"final_softcap,omitempty"`
	LogitScale   float64 `json:"logit_scale,omitempty"`

	// LayerLayout is each layer's window, RoPE and KV cache: the cache
	// every session allocates, at KVContext positions for the global
	// layers (0: none, every layer slides a window).
	LayerLayout []inspectLayer `json:"layer_layout"`
	KVContext   int            `json:"kv_context"`
	KVType      string         `json:"kv_type"`
	KVBytes     uint64         `json:"kv_bytes"` // Σ_l slots_l·kvDim·2·elem
	KVNotes     []string       `json:"kv_notes,omitempty"`
}

// inspectLayer is one layer's attention and cache.
type inspectLayer struct {
	Window    int     `json:"window"` // 0: global
	Slots     int     `json:"slots"`
	Sinks     int     `json:"sinks,omitempty"`
	RopeTheta float64 `json:"rope_theta"` // 0: no RoPE
	RopeScale float64 `json:"rope_scale"`
}

// inspectOptions are the flags that shape the reported KV cache.
type inspectOptions struct {
	context, window, keep int
	kv                    ops.KVType
}

type inspectTokenizer struct {
	Model     string `json:"model"`
	VocabSize int    `json:"vocab_size"`
	BOS       int    `json:"bos"`
	BOSPiece  string `json:"bos_piece,omitempty"`
	EOS       int    `json:"eos"`
	EOSPiece  string `json:"eos_piece,omitempty"`
	AddBOS    bool   `json:"add_bos"`
}

type inspectKV struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value,omitempty"` // scalars
	Len   *int   `json:"len,omitempty"`   // arrays
	text  string // the text form
}

type inspectTensor struct {
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	Shape  []uint64 `json:"shape"` // innermost first
	Bytes  uint64   `json:"bytes"`
	Offset uint64   `json:"offset"`
	// KernelGPU and KernelCPU name the decode (one-token) matmul kernel the
	// kernel table gives a matrix of this type in the GPU and the CPU
	// layout (at run time the library may take a variant of it for some
	// shapes: see the kernels of vkrun run --json); empty
	// for vectors (norm weights, converted to f32 at load), for a
	// token_embd.weight that only serves the embedding lookup, and for
	// types the loader cannot read.
	KernelGPU string `json:"kernel_gpu,omitempty"`
	KernelCPU string `json:"kernel_cpu,omitempty"`
	// KernelEmbed is the embedding lookup's kernel (token_embd.weight).
	KernelEmbed string `json:"kernel_embed,omitempty"`
	// KernelNote is "no kernel (converted to F16 at load)" for a type the
	// loader reads but no kernel serves (the kernels named are then F16's),
	// "unsupported" for a type the loader cannot read, or empty.
	KernelNote string `json:"kernel_note,omitempty"`
}

// Kernel notes (inspectTensor.KernelNote).
const (
	noteConverted   = "no kernel (converted to F16 at load)"
	noteUnsupported = "unsupported"
)

// hasKernels is shaders.HasKernels; a test swaps it for a type without
// kernels, which no readable type is today.
var hasKernels = shaders.HasKernels

// setKernels fills t's kernel fields for a tensor of type dt. tied says
// that token_embd.weight is also the output matrix.
func (t *inspectTensor) setKernels(dt loader.DType, tied bool) {
	if !dt.Supported() {
		t.KernelNote = noteUnsupported
		return
	}
	if len(t.Shape) != 2 {
		return // a vector: uploaded as f32, read by the norm kernels
	}
	if !hasKernels(dt) {
		t.KernelNote, dt = noteConverted, loader.F16
	}
	embd := t.Name == "token_embd.weight"
	if embd {
		if k, ok := shaders.WeightKernel(shaders.OpEmbed, dt, shaders.GPULayout); ok {
			t.KernelEmbed = k.Name
		}
		if !tied {
			return
		}
	}
	if k, ok := shaders.WeightKernel(shaders.OpMatMul1, dt, shaders.GPULayout); ok {
		t.KernelGPU = k.Name
	}
	if k, ok := shaders.WeightKernel(shaders.OpMatMul1, dt, shaders.CPULayout); ok {
		t.KernelCPU = k.Name
	}
}

// kernelText is t's KERNEL column: "matmul_q4_k_1tok / matmul_blocks_q4_k_1tok"
// (GPU / CPU layout), led by the embedding kernel for token_embd.weight, or
// the note.
func (t inspectTensor) kernelText() string {
	if t.KernelNote != "" {
		return t.KernelNote
	}
	var parts []string
	if t.KernelEmbed != "" {
		parts = append(parts, t.KernelEmbed)
	}
	if t.KernelGPU != "" || t.KernelCPU != "" {
		parts = append(parts, t.KernelGPU+" / "+t.KernelCPU)
	}
	return strings.Join(parts, ", ")
}

// inspectModel opens path as a model. When that fails but the file is
// still a readable GGUF, it returns the partial report together with the
// error; a nil report means nothing could be read.
func inspectModel(path string, o inspectOptions) (*inspectReport, error) {
	r := &inspectReport{Path: path}
	var lopts []loader.Option
	if o.window >= 0 {
		lopts = append(lopts, loader.WithWindow(o.window))
	}
	m, err := loader.Open(path, lopts...)
	if errors.Is(err, loader.ErrTokenizer) {
		r.TokenizerError = oneLine(err)
		m, err = loader.Open(path, append(lopts, loader.WithoutTokenizer())...)
	}
	if err != nil {
		f, gerr := loader.OpenGGUF(path)
		if gerr != nil {
			return nil, err
		}
		defer f.Close()
		r.Error = oneLine(err)
		r.Format = "gguf"
		r.fillGGUF(f)
		r.fillTensors(f.Tensors, false)
		return r, err
	}
	defer m.Close()
	r.Format = m.Format
	r.Architecture = m.Config.Arch
	c := m.Config
	r.Config = &inspectConfig{
		Arch: c.Arch, Dim: c.Dim, Layers: c.NumLayers, Heads: c.NumHeads, KVHeads: c.NumKVHeads,
		HeadDim: c.HeadDim, FFNDim: c.FFNDim, Vocab: c.VocabSize, RopeTheta: c.RopeTheta, RopeDim: c.RopeDim,
		NormEps: c.NormEps, ContextLength: c.ContextLength, Window: c.Window,
		TiedOutput: m.Tensor("output.weight") == nil,
		Rope:       c.Rope.String(), Norm: c.Norm.String(), Act: c.Act.String(), EmbedScale: c.EmbedScale,
		PostNorms: c.PostNorms, QKNorm: c.QKNorm, Parallel: c.Parallel, QueryScale: c.QueryScale(),
		AttnSoftcap: c.AttnSoftcap, FinalSoftcap: c.FinalSoftcap, LogitScale: c.LogitScale,
		KVType: o.kv.String(),
	}
	layout, kvContext, notes := engine.CacheLayout(c, o.context, o.keep)
	r.Config.KVContext, r.Config.KVNotes = kvContext, notes
	r.Config.KVBytes = engine.KVBytes(layout, c.NumKVHeads*c.HeadDim, o.kv)
	for l, lc := range layout {
		spec := c.Layer(l)
		r.Config.LayerLayout = append(r.Config.LayerLayout, inspectLayer{Window: lc.Window, Slots: lc.Slots, Sinks: lc.Sinks, RopeTheta: spec.RopeTheta, RopeScale: spec.RopeScale})
	}
	if t := m.Tokenizer; t != nil {
		r.Tokenizer = &inspectTokenizer{
			Model: t.Model(), VocabSize: t.VocabSize(), BOS: t.BOS(), EOS: t.EOS(), AddBOS: t.AddBOS(),
		}
		if t.BOS() >= 0 {
			r.Tokenizer.BOSPiece = t.Piece(t.BOS())
		}
		if t.EOS() >= 0 {
			r.Tokenizer.EOSPiece = t.Piece(t.EOS())
		}
	}
	if m.GGUF != nil {
		r.fillGGUF(m.GGUF)
	}
	r.fillTensors(m.Tensors, r.Config.TiedOutput)
	return r, nil
}

func (r *inspectReport) fillGGUF(f *loader.GGUFFile) {
	r.Version = f.Version
	r.Size = f.Size
	if a, ok := f.String("general.architecture"); ok && r.Architecture == "" {
		r.Architecture = a
	}
	for _, kv := range f.Metadata {
		e := inspectKV{Key: kv.Key, Type: kv.Value.TypeName(), text: kv.Value.Summary()}
		if kv.Value.Type == loader.TypeArray {
			n := kv.Value.Len()
			e.Len = &n
		} else {
			e.Value = jsonScalar(kv.Value.Data)
		}
		r.Metadata = append(r.Metadata, e)
	}
}

// jsonScalar makes a metadata scalar JSON-encodable: NaN and ±Inf, which
// JSON cannot hold, become strings.
func jsonScalar(v any) any {
	var f float64
	switch x := v.(type) {
	case float32:
		f = float64(x)
	case float64:
		f = x
	default:
		return v
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Sprint(f)
	}
	return v
}

func (r *inspectReport) fillTensors(ts []*loader.Tensor, tied bool) {
	r.Tensors = make([]inspectTensor, 0, len(ts))
	for _, t := range ts {
		it := inspectTensor{Name: t.Name, Type: t.Type.String(), Shape: t.Shape, Bytes: t.Size(), Offset: t.Offset}
		it.setKernels(t.Type, tied)
		r.Tensors = append(r.Tensors, it)
		r.TensorBytes += t.Size()
	}
}

func printReport(w io.Writer, r *inspectReport) {
	head := r.Path + ": " + r.Format
	if r.Format == "gguf" {
		head += fmt.Sprintf(" v%d, %d bytes", r.Version, r.Size)
	}
	fmt.Fprintln(w, head)
	if r.Architecture != "" {
		fmt.Fprintf(w, "architecture: %s\n", r.Architecture)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "not runnable: %s\n", r.Error)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if c := r.Config; c != nil {
		fmt.Fprintln(w, "\nconfig:")
		window := strconv.Itoa(c.Window)
		if c.Window == 0 {
			window = "0 (full attention)"
		}
		for _, row := range [][2]string{
			{"dim", strconv.Itoa(c.Dim)},
			{"layers", strconv.Itoa(c.Layers)},
			{"heads", strconv.Itoa(c.Heads)},
			{"kv heads", strconv.Itoa(c.KVHeads)},
			{"head dim", strconv.Itoa(c.HeadDim)},
			{"ffn dim", strconv.Itoa(c.FFNDim)},
			{"vocab", strconv.Itoa(c.Vocab)},
			{"rope theta", strconv.FormatFloat(c.RopeTheta, 'g', -1, 64)},
			{"rope dim", strconv.Itoa(c.RopeDim)},
			{"norm eps", strconv.FormatFloat(c.NormEps, 'g', -1, 64)},
			{"context", strconv.Itoa(c.ContextLength)},
			{"window", window},
			{"tied output", strconv.FormatBool(c.TiedOutput)},
			{"rope", c.Rope},
			{"norm", c.Norm},
			{"activation", c.Act},
			{"query scale", strconv.FormatFloat(c.QueryScale, 'g', 6, 64)},
			{"block", c.blockText()},
		} {
			fmt.Fprintf(tw, "  %s\t%s\n", row[0], row[1])
		}
		tw.Flush()
		printLayers(w, c)
	}
	if r.Config != nil || r.TokenizerError != "" {
		fmt.Fprintln(w, "\ntokenizer:")
		switch t := r.Tokenizer; {
		case t != nil:
			fmt.Fprintf(tw, "  model\t%s\n", t.Model)
			fmt.Fprintf(tw, "  vocab\t%d\n", t.VocabSize)
			fmt.Fprintf(tw, "  bos\t%d %q\n", t.BOS, t.BOSPiece)
			fmt.Fprintf(tw, "  eos\t%d %q\n", t.EOS, t.EOSPiece)
			fmt.Fprintf(tw, "  add bos\t%t\n", t.AddBOS)
			tw.Flush()
		case r.TokenizerError != "":
			fmt.Fprintf(w, "  not usable: %s\n", r.TokenizerError)
		default:
			fmt.Fprintln(w, "  none")
		}
	}
	if len(r.Metadata) > 0 {
		fmt.Fprintf(w, "\nmetadata (%d keys):\n", len(r.Metadata))
		for _, kv := range r.Metadata {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", kv.Key, kv.Type, kv.text)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\ntensors (%d, %s):\n", len(r.Tensors), fmtSize(r.TensorBytes))
	// Vectors have no kernel: their rows end in padding, trimmed here.
	var table bytes.Buffer
	tw = tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tTYPE\tSHAPE\tSIZE\tOFFSET\tKERNEL (GPU / CPU layout)")
	for _, t := range r.Tensors {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%s\n", t.Name, t.Type, shapeString(t.Shape), fmtSize(t.Bytes), t.Offset, t.kernelText())
	}
	tw.Flush()
	for line := range strings.Lines(table.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
}

// shapeString writes a shape innermost first, as GGUF lists it: "64×512".
func shapeString(s []uint64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.FormatUint(d, 10)
	}
	return strings.Join(parts, "×")
}

func fmtSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// oneLine keeps an error on a single line (joined errors carry newlines).
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

// blockText lists the block's departures from llama's: "post norms, qk
// norm, attention softcap 50, final softcap 30", or "llama".
func (c *inspectConfig) blockText() string {
	var parts []string
	g := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	if c.EmbedScale != 0 && c.EmbedScale != 1 {
		parts = append(parts, "embeddings ×"+strconv.FormatFloat(c.EmbedScale, 'g', 6, 64))
	}
	if c.PostNorms {
		parts = append(parts, "post norms")
	}
	if c.QKNorm {
		parts = append(parts, "q/k norm")
	}
	if c.Parallel {
		parts = append(parts, "parallel attention and FFN")
	}
	if c.AttnSoftcap != 0 {
		parts = append(parts, "attention softcap "+g(c.AttnSoftcap))
	}
	if c.FinalSoftcap != 0 {
		parts = append(parts, "final softcap "+g(c.FinalSoftcap))
	}
	if c.LogitScale != 0 && c.LogitScale != 1 {
		parts = append(parts, "logit scale "+g(c.LogitScale))
	}
	if len(parts) == 0 {
		return "llama"
	}
	return strings.Join(parts, ", ")
}

// printLayers prints the per-layer layout, runs of equal layers on one
// line ("layers 0-4, 6-10: local W=1024 ring of 1024, rope 10000"), and
// the KV cache size.
func printLayers(w io.Writer, c *inspectConfig) {
	if len(c.LayerLayout) == 0 {
		return
	}
	fmt.Fprintln(w, "\nlayers:")
	type kind struct {
		text string
		ls   []int
	}
	var kinds []*kind
	for l, ly := range c.LayerLayout {
		text := "global, linear cache of " + strconv.Itoa(ly.Slots)
		if ly.Window > 0 {
			text = fmt.Sprintf("local W=%d, ring of %d", ly.Window, ly.Slots)
			if ly.Sinks > 0 {
				text += fmt.Sprintf(" and %d sinks", ly.Sinks)
			}
		}
		switch {
		case ly.RopeTheta == 0:
			text += ", no rope"
		case ly.RopeScale != 1 && ly.RopeScale != 0:
			text += fmt.Sprintf(", rope %s scaled 1/%s", strconv.FormatFloat(ly.RopeTheta, 'g', -1, 64), strconv.FormatFloat(ly.RopeScale, 'g', -1, 64))
		default:
			text += ", rope " + strconv.FormatFloat(ly.RopeTheta, 'g', -1, 64)
		}
		i := slices.IndexFunc(kinds, func(k *kind) bool { return k.text == text })
		if i < 0 {
			kinds = append(kinds, &kind{text: text})
			i = len(kinds) - 1
		}
		kinds[i].ls = append(kinds[i].ls, l)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, k := range kinds {
		fmt.Fprintf(tw, "  %s\t%s\n", layerRanges(k.ls), k.text)
	}
	tw.Flush()
	ctx := "every layer slides a window: any length"
	if c.KVContext > 0 {
		ctx = fmt.Sprintf("%d positions", c.KVContext)
	}
	fmt.Fprintf(w, "kv cache: %d bytes (%s, %s)\n", c.KVBytes, c.KVType, ctx)
	for _, n := range c.KVNotes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// layerRanges writes sorted layer indices as ranges: "0-4, 6-10".
func layerRanges(ls []int) string {
	var parts []string
	for i := 0; i < len(ls); {
		j := i
		for j+1 < len(ls) && ls[j+1] == ls[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(ls[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", ls[i], ls[j]))
		}
		i = j + 1
	}
	word := "layer "
	if len(ls) > 1 {
		word = "layers "
	}
	return word + strings.Join(parts, ", ")
}
