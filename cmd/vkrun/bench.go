package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/vkrun/vkrun"
	"github.com/vkrun/vkrun/internal/plot"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/shaders"
)

func init() {
	register("bench", "measure prompt and generation speed (tok/s), on a file or a synthetic model", cmdBench)
}

// shapes are the named synthetic model shapes for --synthetic NAME:QUANT.
var shapes = map[string]loader.Config{
	"mistral-7b": {Dim: 4096, NumLayers: 32, NumHeads: 32, NumKVHeads: 8, FFNDim: 14336, VocabSize: 32000, Window: 4096, RopeTheta: 10000},
	"0.5b":       {Dim: 2048, NumLayers: 8, NumHeads: 32, NumKVHeads: 8, FFNDim: 5632, VocabSize: 32000, Window: 4096, RopeTheta: 10000},
	"tiny":       {Dim: 256, NumLayers: 4, NumHeads: 8, NumKVHeads: 2, FFNDim: 768, VocabSize: 4096, Window: 256, RopeTheta: 10000},
	// Gemma 3 1B's layers (5 local of W = 512 : 1 global, 4 heads of 256,
	// one KV head), with a 32000-token vocabulary instead of 262144.
	"gemma3-1b": {Arch: "gemma3", Dim: 1152, NumLayers: 26, NumHeads: 4, NumKVHeads: 1, HeadDim: 256, FFNDim: 6912, VocabSize: 32000, Window: 512, RopeTheta: 1e6},
	// A Gemma 3-shaped model with W = 1024 (Gemma 3 4B and larger) at a
	// size lavapipe runs: 12 layers, pattern 6.
	"gemma3-small": {Arch: "gemma3", Dim: 512, NumLayers: 12, NumHeads: 4, NumKVHeads: 1, HeadDim: 128, FFNDim: 1536, VocabSize: 4096, Window: 1024, RopeTheta: 1e6},
}

// synthQuant is the QUANT of --synthetic SHAPE:QUANT: one weight type for
// every matrix, or a llama.cpp mix (a file type such as Q4_K_M, whose
// rules give some tensors another type).
type synthQuant struct {
	dtype loader.DType
	mix   loader.QuantMix // "" for a single type
}

// fileTag names the quant in the cached file's name: "Q4_K", or
// "mix-Q4_K_M" for a mix (a mix named like a type is not that type).
func (q synthQuant) fileTag() string {
	if q.mix != "" {
		return "mix-" + string(q.mix)
	}
	return q.dtype.String()
}

// synthTypes are the weight types --synthetic accepts: those with kernels
// that the loader can write.
func synthTypes() []loader.DType {
	var ts []loader.DType
	for _, t := range shaders.WeightTypes {
		if t.Quantizable() {
			ts = append(ts, t)
		}
	}
	return ts
}

// parseQuant reads QUANT, case-insensitively: a weight type's name (every
// matrix in it), a llama.cpp mix's name, or mix:NAME for the mix even where
// a type has its name (the Q4_0 mix keeps output.weight in Q6_K; the type
// q4_0 does not).
func parseQuant(quant string) (synthQuant, error) {
	name := strings.ToUpper(quant)
	name, forceMix := strings.CutPrefix(name, "MIX:")
	if !forceMix {
		for _, t := range synthTypes() {
			if t.String() == name {
				return synthQuant{dtype: t}, nil
			}
		}
	}
	for _, m := range loader.QuantMixes() {
		if string(m) == name {
			return synthQuant{mix: m}, nil
		}
	}
	return synthQuant{}, fmt.Errorf("--synthetic: quant %q is not one of %s", quant, strings.Join(quantNames(), ", "))
}

// quantNames lists what parseQuant accepts: the types, then the mixes that
// are not named like a type, then mix:NAME.
func quantNames() []string {
	var names []string
	types := map[string]bool{}
	for _, t := range synthTypes() {
		types[t.String()] = true
		names = append(names, strings.ToLower(t.String()))
	}
	for _, m := range loader.QuantMixes() {
		if !types[string(m)] {
			names = append(names, strings.ToLower(string(m)))
		}
	}
	return append(names, "mix:NAME (a llama.cpp mix named like a type)")
}

// parseSynthetic reads "NAME:QUANT" or "dim=…,layers=…,heads=…,kv=…,ffn=…,vocab=…,window=…[,arch=gemma3]:QUANT".
func parseSynthetic(spec string) (loader.Config, synthQuant, string, error) {
	shape, quant, ok := strings.Cut(spec, ":")
	if !ok {
		quant = "q4_0"
	}
	q, err := parseQuant(quant)
	if err != nil {
		return loader.Config{}, synthQuant{}, "", err
	}
	cfg, named := shapes[strings.ToLower(shape)]
	if !named {
		cfg = loader.Config{RopeTheta: 10000}
		fields := map[string]*int{"dim": &cfg.Dim, "layers": &cfg.NumLayers, "heads": &cfg.NumHeads, "kv": &cfg.NumKVHeads,
			"ffn": &cfg.FFNDim, "vocab": &cfg.VocabSize, "window": &cfg.Window, "headdim": &cfg.HeadDim}
		for _, kv := range strings.Split(shape, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if strings.TrimSpace(k) == "arch" && ok {
				cfg.Arch = strings.TrimSpace(v)
				continue
			}
			p, known := fields[strings.TrimSpace(k)]
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if !ok || !known || err != nil || n < 0 {
				names := make([]string, 0, len(shapes))
				for s := range shapes {
					names = append(names, s)
				}
				sort.Strings(names)
				return loader.Config{}, synthQuant{}, "", fmt.Errorf("--synthetic: %q is neither a shape (%s) nor dim=…,layers=…,heads=…,kv=…,ffn=…,vocab=…[,window=…][,headdim=…][,arch=…]", shape, strings.Join(names, ", "))
			}
			*p = n
		}
	}
	if cfg.Arch == "" {
		cfg.Arch = "llama"
	}
	cfg.NormEps = 1e-5
	cfg.ContextLength = max(cfg.Window, 4096)
	if cfg.Arch != "llama" { // the arch's own defaults (pattern, scales, norms)
		cfg = loader.SyntheticConfig(cfg)
	}
	if cfg.NumKVHeads == 0 {
		cfg.NumKVHeads = cfg.NumHeads
	}
	if cfg.HeadDim == 0 && cfg.NumHeads > 0 {
		cfg.HeadDim = cfg.Dim / cfg.NumHeads
	}
	cfg.RopeDim = cfg.HeadDim
	if err := cfg.Validate(); err != nil {
		return loader.Config{}, synthQuant{}, "", fmt.Errorf("--synthetic: %w", err)
	}
	name := fmt.Sprintf("%s:%s", shape, strings.ToLower(quant))
	return cfg, q, name, nil
}

// syntheticFile writes the model once into the user cache and reuses it.
// The file's name holds the shape and the type or mix.
func syntheticFile(cfg loader.Config, q synthQuant, stderr io.Writer) (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "vkrun", "synthetic")
	name := fmt.Sprintf("d%d-l%d-h%d-kv%d-hd%d-f%d-v%d-w%d-%s.gguf", cfg.Dim, cfg.NumLayers, cfg.NumHeads, cfg.NumKVHeads,
		cfg.HeadDim, cfg.FFNDim, cfg.VocabSize, cfg.Window, q.fileTag())
	if cfg.Arch != "llama" {
		name = cfg.Arch + "-" + name
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	fmt.Fprintf(stderr, "writing synthetic model %s …\n", path)
	// Written under a temporary name and renamed, so that an interrupted
	// write never leaves a broken file in the cache.
	tmp := fmt.Sprintf("%s.tmp%d", path, os.Getpid())
	var werr error
	if q.mix != "" {
		werr = loader.WriteSyntheticMix(tmp, cfg, q.mix, 1, nil)
	} else {
		werr = loader.WriteSynthetic(tmp, cfg, q.dtype, 1, nil)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return "", werr
	}
	return path, nil
}

type benchResult struct {
	Test   string    `json:"test"`
	Depth  int       `json:"depth"`
	Tokens int       `json:"tokens"`
	TokS   []float64 `json:"tok_s"`
	Mean   float64   `json:"mean_tok_s"`
	Stddev float64   `json:"stddev_tok_s"`
	// Kernels is GPU time per kernel over the measured steps of every
	// repetition (--profile only), most expensive first.
	Kernels []benchKernel `json:"kernels,omitempty"`
	// The decode step's structure (generation tests): what each token's
	// command buffer holds, and the workgroups one layer's attention gives
	// a query at this depth.
	DispatchesPerToken  int    `json:"dispatches_per_token,omitempty"`
	BarriersPerToken    int    `json:"barriers_per_token,omitempty"`
	HostBytesPerToken   uint64 `json:"host_bytes_per_token,omitempty"`
	AttentionWorkgroups int    `json:"attention_workgroups,omitempty"`
	// Streams tests (--streams): the concurrent streams, each stream's
	// time to first token (nearest-rank p50 and p99 over every stream of
	// every repetition, in ms), and the batch's steps over the measured
	// repetitions with the share of them that carried every stream.
	Streams   int     `json:"streams,omitempty"`
	TTFTp50   float64 `json:"ttft_ms_p50,omitempty"`
	TTFTp99   float64 `json:"ttft_ms_p99,omitempty"`
	Steps     int     `json:"steps,omitempty"`
	FullSteps float64 `json:"full_steps,omitempty"`
}

// benchKernel is one kernel's share of a test's GPU time.
type benchKernel struct {
	Name         string  `json:"name"`
	Calls        int     `json:"calls"`
	Milliseconds float64 `json:"ms"`
	PerToken     float64 `json:"us_per_token"`
}

// profileDelta adds after − before (per kernel name) into sum.
func profileDelta(sum map[string]*benchKernel, before, after []vkrun.KernelTime) {
	prev := map[string]vkrun.KernelTime{}
	for _, k := range before {
		prev[k.Name] = k
	}
	for _, k := range after {
		b := sum[k.Name]
		if b == nil {
			b = &benchKernel{Name: k.Name}
			sum[k.Name] = b
		}
		b.Calls += k.Calls - prev[k.Name].Calls
		b.Milliseconds += float64(k.Total-prev[k.Name].Total) / 1e6
	}
}

func cmdBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("m", "", "model file (or use --synthetic)")
	synth := fs.String("synthetic", "", "synthetic model SHAPE:QUANT: SHAPE is mistral-7b, 0.5b, tiny, gemma3-1b, gemma3-small or dim=…,layers=…,heads=…,kv=…,ffn=…,vocab=…,window=…[,headdim=…][,arch=…]; QUANT is "+strings.Join(quantNames(), ", "))
	pp := fs.Int("p", 512, "prompt tokens per prompt-processing test (0: skip)")
	tg := fs.Int("n", 128, "tokens per generation test (0: skip)")
	reps := fs.Int("r", 3, "repetitions")
	depths := fs.String("depth", "0", "comma-separated cache depths: tokens already in the cache before each test")
	asJSON := fs.Bool("json", false, "print JSON")
	kv := fs.String("kv", "f16", "KV cache precision: f16 or f32")
	window := fs.Int("window", -1, "sliding window override")
	ctxLen := fs.Int("c", 0, "context of the global layers (0: enough for the deepest test, at least 4096)")
	chunk := fs.Int("chunk", 0, "prefill chunk size")
	device := fs.String("device", os.Getenv("VKRUN_DEVICE"), "device index or name substring")
	profile := fs.Bool("profile", false, "time every kernel on the GPU and print where each test's time goes")
	layout := fs.String("layout", "auto", layoutUsage)
	intDot := fs.String("int-dot", "auto", intDotUsage)
	coopmat := fs.String("coopmat", "off", coopmatUsage)
	plotPath := fs.String("plot", "", "also write a PNG of tok/s against depth, a line per test, to this file")
	streamsFlag := fs.String("streams", "", streamsUsage)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "vkrun bench: "+format+"\n", a...)
		return code
	}
	if fs.NArg() > 0 {
		return fail(2, "unexpected argument %q", fs.Arg(0))
	}
	if (*model == "") == (*synth == "") {
		return fail(2, "give exactly one of -m FILE and --synthetic SPEC")
	}
	if *reps < 1 || *pp < 0 || *tg < 0 || (*pp == 0 && *tg == 0) {
		return fail(2, "-r must be ≥ 1, -p and -n ≥ 0 and not both 0")
	}
	streams, err := parseStreams(*streamsFlag)
	if err != nil {
		return fail(2, "%v", err)
	}
	if len(streams) > 0 && *tg < 2 {
		return fail(2, "--streams needs -n ≥ 2: a stream's decode rate is over the tokens after its first")
	}
	if *kv != "f16" && *kv != "f32" {
		return fail(2, "--kv must be f16 or f32, not %q", *kv)
	}
	if err := checkLayout(*layout); err != nil {
		return fail(2, "%v", err)
	}
	if err := checkIntDot(*intDot); err != nil {
		return fail(2, "%v", err)
	}
	if err := checkCoopMat(*coopmat); err != nil {
		return fail(2, "%v", err)
	}
	if *plotPath != "" { // before the tests run, not after
		if st, err := os.Stat(filepath.Dir(*plotPath)); err != nil || !st.IsDir() {
			return fail(2, "--plot %s: no directory %s", *plotPath, filepath.Dir(*plotPath))
		}
	}
	var ds []int
	for _, s := range strings.Split(*depths, ",") {
		d, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || d < 0 {
			return fail(2, "--depth: %q is not a token count", s)
		}
		ds = append(ds, d)
	}
	path, label := *model, filepath.Base(*model)
	if *synth != "" {
		cfg, q, name, err := parseSynthetic(*synth)
		if err != nil {
			return fail(2, "%v", err)
		}
		if path, err = syntheticFile(cfg, q, stderr); err != nil {
			return fail(1, "%s", oneLine(err))
		}
		label = name
	}
	if *ctxLen < 0 {
		return fail(2, "-c %d: want ≥ 0", *ctxLen)
	}
	if *ctxLen == 0 { // the global layers must hold the deepest test
		*ctxLen = max(slices.Max(ds)+max(*pp, *tg)+1, 4096)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts := []vkrun.Option{vkrun.WithKV(*kv), vkrun.WithDevice(*device), vkrun.WithChunk(*chunk), vkrun.WithContext(*ctxLen),
		vkrun.WithLayout(*layout), vkrun.WithIntegerDot(*intDot), vkrun.WithCoopMat(*coopmat), vkrun.WithProgress(progressPrinter(stderr, *asJSON))}
	if *window >= 0 {
		opts = append(opts, vkrun.WithWindow(*window))
	}
	if *profile {
		opts = append(opts, vkrun.WithProfile())
	}
	m, err := vkrun.Load(ctx, path, opts...)
	if err != nil {
		return fail(1, "%s", oneLine(err))
	}
	defer m.Close()
	if m.Notice != "" && !*asJSON {
		fmt.Fprintln(stderr, m.Notice)
	}
	printNotes(stderr, m)
	vocab := m.Config.VocabSize
	tokens := func(n, seed int) []int {
		t := make([]int, n)
		for i := range t {
			t[i] = 3 + (i*7919+seed*104729)%(vocab-3)
		}
		return t
	}
	var results []benchResult
	var kvBytes uint64 // every session's KV cache is the same size
	run := func(test string, depth, n int, measure func(s *vkrun.Session) (float64, error)) error {
		r := benchResult{Test: test, Depth: depth, Tokens: n}
		kernels := map[string]*benchKernel{}
		// Repetition −1 is untimed: the driver compiles each kernel on its
		// first run, and the session records each step shape on first use.
		for rep := -1; rep < *reps; rep++ {
			s, err := m.NewSession()
			if err != nil {
				return err
			}
			kvBytes = s.KVBytes()
			if depth > 0 {
				if err := s.Prefill(ctx, "", vkrun.WithPromptTokens(tokens(depth, max(rep, 0)))); err != nil {
					s.Close()
					return err
				}
			}
			before := s.Profile()
			v, err := measure(s)
			if rep >= 0 {
				profileDelta(kernels, before, s.Profile())
			}
			s.Close()
			if err != nil {
				return err
			}
			if rep >= 0 {
				r.TokS = append(r.TokS, v)
			}
		}
		r.Mean, r.Stddev = meanStd(r.TokS)
		for _, k := range kernels {
			k.PerToken = k.Milliseconds * 1e3 / float64(n**reps)
			r.Kernels = append(r.Kernels, *k)
		}
		sort.Slice(r.Kernels, func(i, j int) bool { return r.Kernels[i].Milliseconds > r.Kernels[j].Milliseconds })
		results = append(results, r)
		return nil
	}
	for _, d := range ds {
		if *pp > 0 {
			err := run(fmt.Sprintf("pp%d", *pp), d, *pp, func(s *vkrun.Session) (float64, error) {
				before := s.Stats()
				if err := s.Prefill(ctx, "", vkrun.WithPromptTokens(tokens(*pp, 99))); err != nil {
					return 0, err
				}
				after := s.Stats()
				return float64(*pp) / (after.PrefillTime - before.PrefillTime).Seconds(), nil
			})
			if err != nil {
				return fail(1, "%s", oneLine(err))
			}
		}
		if *tg > 0 {
			var step vkrun.StepStats
			err := run(fmt.Sprintf("tg%d", *tg), d, *tg, func(s *vkrun.Session) (float64, error) {
				before := s.Stats()
				for _, err := range s.Generate(ctx, "", vkrun.WithPromptTokens(tokens(1, 7)), vkrun.WithMaxTokens(*tg), vkrun.WithIgnoreEOS()) {
					if err != nil {
						return 0, err
					}
				}
				after := s.Stats()
				var err error
				if step, err = s.DecodeStats(); err != nil {
					return 0, err
				}
				// The first token comes from the prompt's logits: n−1 decode steps.
				return float64(after.Generated-before.Generated-1) / (after.DecodeTime - before.DecodeTime).Seconds(), nil
			})
			if err != nil {
				return fail(1, "%s", oneLine(err))
			}
			r := &results[len(results)-1]
			r.DispatchesPerToken, r.BarriersPerToken, r.HostBytesPerToken = step.Dispatches, step.Barriers, step.HostBytes
			r.AttentionWorkgroups = m.AttentionWorkgroups(d)
		}
	}
	for _, n := range streams {
		if err := benchStreams(ctx, m, n, *tg, *reps, tokens, &results); err != nil {
			return fail(1, "%s", oneLine(err))
		}
	}
	if *plotPath != "" {
		title := fmt.Sprintf("%s on %s", label, m.Device.Name)
		if m.Config.Window > 0 {
			title = fmt.Sprintf("%s, window %d, on %s", label, m.Config.Window, m.Device.Name)
		}
		c, err := benchChart(title, results)
		if err == nil {
			err = c.WritePNG(*plotPath)
		}
		if err != nil {
			return fail(1, "--plot: %s", oneLine(err))
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(struct {
			Model       string `json:"model"`
			Device      string `json:"device"`
			Window      int    `json:"window"`  // of the local layers (0: none)
			Context     int    `json:"context"` // the global layers' slots (0: every layer local, no limit)
			KV          string `json:"kv"`
			WeightBytes uint64 `json:"weight_bytes"` // the weights' device memory
			KVBytes     uint64 `json:"kv_bytes"`     // one session's KV cache
			Layout      string `json:"layout"`       // "gpu" or "cpu"
			IntegerDot  string `json:"integer_dot"`  // where Q4_0 and Q8_0 products take integer dot products (--int-dot): off, on or all
			CoopMat     string `json:"coopmat"`      // how prefill tiles run (--coopmat): off, khr, nv or emulated
			// Kernels are the kernel choices the tests made.
			Kernels []kernelJSON  `json:"kernels"`
			Results []benchResult `json:"results"`
		}{label, m.Device.Name, m.Config.Window, m.Context(), *kv, m.WeightBytes(), kvBytes, m.Layout(), m.IntegerDot(), m.CoopMat(), kernelsJSON(m.Kernels()), results})
		return 0
	}
	fmt.Fprintf(stdout, "model %s on %s (%s), %s, window %d, context %d, kv %s, %d reps\n", label, m.Device.Name, m.Device.Type, kernelLayout(m), m.Config.Window, m.Context(), *kv, *reps)
	fmt.Fprintf(stdout, "weights %s, KV cache %s\n\n", fmtSize(m.WeightBytes()), fmtSize(kvBytes))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "test\t")
	for _, d := range ds {
		fmt.Fprintf(tw, "t/s @ d%d\t", d)
	}
	fmt.Fprintln(tw)
	tests := []string{fmt.Sprintf("pp%d", *pp), fmt.Sprintf("tg%d", *tg)}
	for _, n := range streams {
		tests = append(tests, streamsTest(n))
	}
	for _, test := range tests {
		var cells []string
		found := false
		for _, d := range ds {
			cell := "-" // streams tests run at depth 0 only
			for _, r := range results {
				if r.Test == test && r.Depth == d {
					cell, found = fmt.Sprintf("%.2f ± %.2f", r.Mean, r.Stddev), true
				}
			}
			cells = append(cells, cell)
		}
		if found {
			label := test
			if strings.HasPrefix(test, "s") {
				label = fmt.Sprintf("%s (tg%d)", test, *tg)
			}
			fmt.Fprintf(tw, "%s\t%s\t\n", label, strings.Join(cells, "\t"))
		}
	}
	tw.Flush()
	for _, r := range results {
		if r.Streams == 0 {
			continue
		}
		fmt.Fprintf(stdout, "%s: %d streams of %d tokens: aggregate decode %.2f ± %.2f tok/s; TTFT p50 %.0f ms, p99 %.0f ms; %d steps, %.0f%% of them with all %d streams",
			r.Test, r.Streams, r.Tokens, r.Mean, r.Stddev, r.TTFTp50, r.TTFTp99, r.Steps, 100*r.FullSteps, r.Streams)
		for _, o := range results {
			if o.Depth == 0 && o.Streams == 0 && o.Mean > 0 {
				fmt.Fprintf(stdout, "; %.2f× %s", r.Mean/o.Mean, o.Test)
			}
		}
		fmt.Fprintln(stdout)
	}
	for _, r := range results {
		if r.DispatchesPerToken > 0 {
			layers := max(m.Config.NumLayers, 1)
			fmt.Fprintf(stdout, "%s @ d%d: decode step of %d dispatches (%.1f per layer), %d barriers, %d host bytes; %d attention workgroups per query and layer\n",
				r.Test, r.Depth, r.DispatchesPerToken, float64(r.DispatchesPerToken)/float64(layers), r.BarriersPerToken, r.HostBytesPerToken, r.AttentionWorkgroups)
		}
	}
	for _, r := range results {
		if len(r.Kernels) == 0 {
			continue
		}
		var total float64
		for _, k := range r.Kernels {
			total += k.Milliseconds
		}
		fmt.Fprintf(stdout, "\n%s @ d%d: GPU time per token by kernel (%.0f µs in all)\n", r.Test, r.Depth, total*1e3/float64(r.Tokens**reps))
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "kernel\tcalls/token\tµs/token\tshare\t")
		for _, k := range r.Kernels {
			fmt.Fprintf(tw, "%s\t%.1f\t%.0f\t%.1f%%\t\n", k.Name, float64(k.Calls)/float64(r.Tokens**reps), k.PerToken, 100*k.Milliseconds/total)
		}
		tw.Flush()
	}
	return 0
}

// benchChart is --plot's picture: each test's mean tok/s (± its standard
// deviation) against depth, one line per test, on a log scale so that
// prompt processing and generation both show.
func benchChart(title string, results []benchResult) (*plot.Canvas, error) {
	ax := plot.Axes{Title: title, TextScale: 2,
		X: plot.Axis{Label: "depth (tokens already in the cache)"},
		Y: plot.Axis{Label: "tok/s", Scale: plot.Log}}
	return plot.LineChart(800, 500, ax, benchLines(results))
}

// benchLines is a line per test, in the order the tests first ran, its
// points in order of depth.
func benchLines(results []benchResult) []plot.Line {
	rs := slices.Clone(results)
	slices.SortStableFunc(rs, func(a, b benchResult) int { return a.Depth - b.Depth })
	var lines []plot.Line
	for _, r := range results {
		if !slices.ContainsFunc(lines, func(l plot.Line) bool { return l.Name == r.Test }) {
			lines = append(lines, plot.Line{Name: r.Test})
		}
	}
	for i := range lines {
		l := &lines[i]
		for _, r := range rs {
			if r.Test == l.Name {
				l.X, l.Y, l.Err = append(l.X, float64(r.Depth)), append(l.Y, r.Mean), append(l.Err, r.Stddev)
			}
		}
	}
	return lines
}

func meanStd(v []float64) (float64, float64) {
	var s float64
	for _, x := range v {
		s += x
	}
	mean := s / float64(len(v))
	if len(v) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)-1))
}
