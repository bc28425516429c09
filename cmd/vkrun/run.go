package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/vkrun/vkrun"
	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/modeldir"
)

func init() {
	register("run", "generate text from a prompt", cmdRun)
}

// runFlags are the flags of `vkrun run`, named as llama.cpp names them where
// the meaning matches.
type runFlags struct {
	model, prompt, file, promptTokens string
	n                                 int
	temp, topP, minP                  float64
	topK                              int
	seed                              uint64
	window, chunk, context, keep      int
	kv, device, layout, intDot        string
	coopmat                           string
	json, validate                    bool
}

func (f *runFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.model, "m", "", "model: a GGUF file or a safetensors directory (default: stories260K)")
	fs.StringVar(&f.model, "model", "", "same as -m")
	fs.StringVar(&f.prompt, "p", "", "prompt text")
	fs.StringVar(&f.prompt, "prompt", "", "same as -p")
	fs.StringVar(&f.file, "f", "", "read the prompt from a file")
	fs.StringVar(&f.file, "file", "", "same as -f")
	fs.StringVar(&f.promptTokens, "prompt-tokens", "", "prompt as comma-separated token ids, e.g. 1,415,2933")
	fs.IntVar(&f.n, "n", 256, "tokens to generate")
	fs.IntVar(&f.n, "n-predict", 256, "same as -n")
	fs.Float64Var(&f.temp, "temp", 0.8, "temperature (0: greedy)")
	fs.IntVar(&f.topK, "top-k", 40, "keep the k most likely tokens (0: all)")
	fs.Float64Var(&f.topP, "top-p", 0.95, "nucleus sampling threshold (1: off)")
	fs.Float64Var(&f.minP, "min-p", 0.05, "drop tokens below min-p × the top probability (0: off)")
	fs.Uint64Var(&f.seed, "s", 0, "random seed (0: from the clock)")
	fs.Uint64Var(&f.seed, "seed", 0, "same as -s")
	fs.IntVar(&f.window, "window", -1, "sliding window W of every local layer (default: the file's; 0: full attention)")
	fs.IntVar(&f.chunk, "chunk", 0, "prefill chunk size (default and maximum: the smallest window)")
	fs.IntVar(&f.context, "c", 0, "positions held by the global layers, the longest sequence (default: the model's context, ≤ 4096; up to its training context)")
	fs.IntVar(&f.keep, "keep", 0, "sink tokens: the first N positions stay in every local layer's keys beside its window")
	fs.StringVar(&f.kv, "kv", "f16", "KV cache precision: f16 or f32")
	fs.StringVar(&f.device, "device", os.Getenv("VKRUN_DEVICE"), "device index or name substring (see 'vkrun devices')")
	fs.StringVar(&f.layout, "layout", "auto", layoutUsage)
	fs.StringVar(&f.intDot, "int-dot", "auto", intDotUsage)
	fs.StringVar(&f.coopmat, "coopmat", "off", coopmatUsage)
	fs.BoolVar(&f.json, "json", false, "print one JSON object: ids, text, logprobs, timings, device")
	fs.BoolVar(&f.validate, "validate", false, "turn on the Vulkan validation layer")
}

func (f *runFlags) loadOptions() []vkrun.Option {
	opts := []vkrun.Option{vkrun.WithKV(f.kv), vkrun.WithDevice(f.device), vkrun.WithChunk(f.chunk), vkrun.WithContext(f.context),
		vkrun.WithKeep(f.keep), vkrun.WithLayout(f.layout), vkrun.WithIntegerDot(f.intDot),
		vkrun.WithCoopMat(f.coopmat)}
	if f.window >= 0 {
		opts = append(opts, vkrun.WithWindow(f.window))
	}
	if f.validate {
		opts = append(opts, vkrun.WithValidation())
	}
	return opts
}

// generateOptions are the sampling flags as Generate options.
func (f *runFlags) generateOptions() []vkrun.GenerateOption {
	return []vkrun.GenerateOption{vkrun.WithMaxTokens(f.n), vkrun.WithTemperature(f.temp), vkrun.WithTopK(f.topK),
		vkrun.WithTopP(f.topP), vkrun.WithMinP(f.minP), vkrun.WithSeed(f.seed)}
}

func (f *runFlags) check() error {
	switch {
	case f.kv != "f16" && f.kv != "f32":
		return fmt.Errorf("--kv must be f16 or f32, not %q", f.kv)
	case checkLayout(f.layout) != nil:
		return checkLayout(f.layout)
	case checkIntDot(f.intDot) != nil:
		return checkIntDot(f.intDot)
	case checkCoopMat(f.coopmat) != nil:
		return checkCoopMat(f.coopmat)
	case f.n < 0:
		return fmt.Errorf("-n must not be negative")
	case f.window < -1:
		return fmt.Errorf("--window must not be negative")
	case f.chunk < 0 || f.context < 0 || f.keep < 0:
		return fmt.Errorf("--chunk, -c and --keep must not be negative")
	}
	return nil
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f runFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vkrun run: unexpected argument %q (the prompt goes after -p)\n", fs.Arg(0))
		return 2
	}
	if err := f.check(); err != nil {
		fmt.Fprintf(stderr, "vkrun run: %v\n", err)
		return 2
	}
	prompt, ids, err := f.readPrompt()
	if err != nil {
		fmt.Fprintf(stderr, "vkrun run: %v\n", err)
		return 2
	}
	if f.seed == 0 {
		f.seed = uint64(time.Now().UnixNano())
	}
	return generate(f, prompt, ids, stdout, stderr, "vkrun run")
}

// readPrompt takes the prompt from -p, -f, --prompt-tokens or, when stdin
// is not a terminal, stdin.
func (f *runFlags) readPrompt() (string, []int, error) {
	set := 0
	for _, s := range []string{f.prompt, f.file, f.promptTokens} {
		if s != "" {
			set++
		}
	}
	if set > 1 {
		return "", nil, errors.New("give only one of -p, -f and --prompt-tokens")
	}
	switch {
	case f.prompt != "":
		return f.prompt, nil, nil
	case f.file != "":
		b, err := os.ReadFile(f.file)
		if err != nil {
			return "", nil, err
		}
		return string(b), nil, nil
	case f.promptTokens != "":
		var ids []int
		for _, s := range strings.Split(f.promptTokens, ",") {
			id, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || id < 0 {
				return "", nil, fmt.Errorf("--prompt-tokens: %q is not a token id", s)
			}
			ids = append(ids, id)
		}
		return "", ids, nil
	}
	if st, err := os.Stdin.Stat(); err == nil && st.Mode()&os.ModeCharDevice == 0 {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return "", nil, err
		}
		return string(b), nil, nil
	}
	return "", nil, nil
}

// runJSON is the object `vkrun run --json` prints.
type runJSON struct {
	Model     string    `json:"model"`
	Device    string    `json:"device"`
	PromptIDs []int     `json:"prompt_ids,omitempty"`
	Prompt    string    `json:"prompt"`
	IDs       []int     `json:"ids"`
	Text      string    `json:"text"`
	LogProbs  []float64 `json:"logprobs"`
	// WeightBytes is the device memory of the weights, KVBytes that of the
	// session's KV cache.
	WeightBytes uint64 `json:"weight_bytes"`
	KVBytes     uint64 `json:"kv_bytes"`
	// Layout is the kernel layout, "gpu" or "cpu"; Kernels the kernel
	// choices the run made.
	Layout  string       `json:"layout"`
	Kernels []kernelJSON `json:"kernels"`
	// IntegerDot is where the Q4_0 and Q8_0 products take integer dot
	// products (--int-dot): "off", "on" or "all".
	IntegerDot string `json:"integer_dot"`
	// CoopMat is how prefill tiles run (--coopmat): "off", "khr", "nv"
	// or "emulated".
	CoopMat string `json:"coopmat"`
	Timings struct {
		LoadMS       float64 `json:"load_ms"`
		PromptTokens int     `json:"prompt_tokens"`
		PrefillMS    float64 `json:"prefill_ms"`
		PrefillTokS  float64 `json:"prefill_tok_s"`
		Generated    int     `json:"generated_tokens"`
		DecodeMS     float64 `json:"decode_ms"`
		DecodeTokS   float64 `json:"decode_tok_s"`
	} `json:"timings"`
}

// generate loads the model, streams the generation to stdout (or collects
// it for --json) and reports speeds on stderr. Ctrl-C stops the generation.
func generate(f runFlags, prompt string, ids []int, stdout, stderr io.Writer, who string) int {
	path := f.model
	if path == "" {
		path = modeldir.Stories260K()
		if _, err := os.Stat(path); err != nil {
			fmt.Fprintf(stderr, "%s: the default model %s is missing: run scripts/setup.sh, or pass -m FILE\n", who, path)
			return 1
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts := append(f.loadOptions(), vkrun.WithProgress(progressPrinter(stderr, f.json)))
	m, err := vkrun.Load(ctx, path, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", who, oneLine(err))
		return 1
	}
	defer m.Close()
	if !f.json {
		fmt.Fprintf(stderr, "device: %s (%s, %s), %s\n", m.Device.Name, m.Device.Type, m.Device.DriverName, kernelLayout(m))
		if m.Notice != "" {
			fmt.Fprintln(stderr, m.Notice)
		}
	}
	printNotes(stderr, m)
	if !f.json {
		printKVCache(stderr, m)
	}
	s, err := m.NewSession()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", who, oneLine(err))
		return 1
	}
	gen := f.generateOptions()
	if ids != nil {
		gen = append(gen, vkrun.WithPromptTokens(ids))
	}
	var out runJSON
	if f.json {
		gen = append(gen, vkrun.WithLogProbs())
		out.Model, out.Device, out.Prompt, out.PromptIDs = path, m.Device.Name, prompt, ids
		if tok := m.Tokenizer(); ids == nil && prompt != "" && tok != nil {
			// The ids the session feeds for a text prompt: a new session
			// starts with BOS when the vocabulary asks for it.
			out.PromptIDs = tok.EncodeWith(prompt, tok.AddBOS())
		}
		out.IDs, out.LogProbs = []int{}, []float64{}
	} else if prompt != "" {
		fmt.Fprint(stdout, prompt)
	}
	code := 0
	for tok, err := range s.Generate(ctx, prompt, gen...) {
		if err != nil {
			if errors.Is(err, context.Canceled) {
				fmt.Fprintf(stderr, "\n%s: interrupted\n", who)
			} else {
				fmt.Fprintf(stderr, "\n%s: %s\n", who, oneLine(err))
				code = 1
			}
			break
		}
		if f.json {
			if tok.ID >= 0 {
				out.IDs = append(out.IDs, tok.ID)
				out.LogProbs = append(out.LogProbs, tok.LogProb)
			}
			out.Text += tok.Text
		} else {
			fmt.Fprint(stdout, tok.Text)
		}
	}
	st := s.Stats()
	if f.json {
		t := &out.Timings
		t.LoadMS = ms(m.LoadTime)
		t.PromptTokens, t.PrefillMS, t.PrefillTokS = st.PromptTokens, ms(st.PrefillTime), st.PrefillRate()
		t.Generated, t.DecodeMS, t.DecodeTokS = st.Generated, ms(st.DecodeTime), st.DecodeRate()
		out.WeightBytes, out.KVBytes, out.Layout, out.Kernels, out.IntegerDot = m.WeightBytes(), s.KVBytes(), m.Layout(), kernelsJSON(m.Kernels()), m.IntegerDot()
		out.CoopMat = m.CoopMat()
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", who, err)
			return 1
		}
		return code
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stderr, "load %.2f s | prefill %d tokens, %.1f tok/s | decode %d tokens, %.1f tok/s\n",
		m.LoadTime.Seconds(), st.PromptTokens, st.PrefillRate(), st.Generated, st.DecodeRate())
	return code
}

const layoutUsage = "kernel layout: auto (by device type), gpu or cpu (the layout for CPU devices such as lavapipe)"

// kernelLayout names m's kernel layout for a status line, and its
// integer-dot products and cooperative-matrix prefill where it takes them.
func kernelLayout(m *vkrun.Model) string {
	s := m.Layout() + " kernel layout"
	switch m.IntegerDot() {
	case "on":
		s += " with integer-dot products"
	case "all":
		s += " with integer-dot products for all"
	}
	switch m.CoopMat() {
	case "khr", "nv":
		s += ", cooperative-matrix prefill (" + m.CoopMat() + ")"
	case "emulated":
		s += ", emulated cooperative-matrix prefill"
	}
	return s
}

const intDotUsage = "integer-dot products for Q4_0 and Q8_0 weights, x rounded to 8 bits a block: auto (on where the device accelerates them), on (the products of a norm's output), all (every product, a dispatch more for each other x) or off"

const coopmatUsage = "prefill products and attention on cooperative matrices (tensor cores, matrix units; VK_KHR_cooperative_matrix, else VK_NV_cooperative_matrix), operands in f16: off (prefill bit-identical to decode), auto (where the device offers them), on (an error elsewhere), khr or nv (on, with that extension) or emulate (the same kernels without the extension, slowly)"

// checkCoopMat validates a --coopmat value.
func checkCoopMat(s string) error {
	if _, err := ops.ParseCoopMat(s); err != nil || s == "" {
		return fmt.Errorf("--coopmat must be off, auto, on, khr, nv or emulate, not %q", s)
	}
	return nil
}

// checkIntDot validates an --int-dot value.
func checkIntDot(s string) error {
	if _, err := ops.ParseDot(s); err != nil || s == "" {
		return fmt.Errorf("--int-dot must be auto, on, all or off, not %q", s)
	}
	return nil
}

// checkLayout validates a --layout value.
func checkLayout(s string) error {
	if _, err := ops.ParseLayout(s); err != nil || s == "" {
		return fmt.Errorf("--layout must be auto, gpu or cpu, not %q", s)
	}
	return nil
}

// kernelJSON is one kernel choice in --json output.
type kernelJSON struct {
	Op     string `json:"op"`
	Type   string `json:"type"`
	Kernel string `json:"kernel"`
	// Table is the kernel the table names, when Kernel is a variant of it.
	Table  string `json:"table,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func kernelsJSON(picks []vkrun.KernelPick) []kernelJSON {
	out := make([]kernelJSON, 0, len(picks))
	for _, p := range picks {
		k := kernelJSON{Op: p.Op, Type: p.Type, Kernel: p.Kernel, Reason: p.Reason}
		if p.Table != p.Kernel {
			k.Table = p.Table
		}
		out = append(out, k)
	}
	return out
}

// printNotes tells the user what the load changed or could not do (types
// converted at load, a layout the device cannot run): never silently.
func printNotes(w io.Writer, m *vkrun.Model) {
	for _, n := range m.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// printKVCache says, before the session allocates it, how much device
// memory the KV cache takes and how many positions it holds.
func printKVCache(w io.Writer, m *vkrun.Model) {
	limit := "any length: every layer slides a window"
	if ctx := m.Context(); ctx > 0 {
		limit = fmt.Sprintf("%d positions", ctx)
	}
	fmt.Fprintf(w, "kv cache: %s (%s)\n", fmtSize(m.KVBytes()), limit)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// progressPrinter reports weight upload: a bar redrawn in place when stderr
// is a terminal, a few plain lines otherwise, nothing for --json.
func progressPrinter(w io.Writer, quiet bool) func(done, total uint64) {
	if quiet {
		return nil
	}
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	lastTenth := -1
	return func(done, total uint64) {
		if total == 0 {
			return
		}
		frac := float64(done) / float64(total)
		if tty {
			const width = 30
			n := int(frac * width)
			fmt.Fprintf(w, "\rloading [%s%s] %3.0f%% %s", strings.Repeat("=", n), strings.Repeat(" ", width-n), 100*frac, humanBytes(total))
			if done == total {
				fmt.Fprintln(w)
			}
			return
		}
		if tenth := int(frac * 10); tenth != lastTenth && (tenth%5 == 0 || done == total) {
			lastTenth = tenth
			fmt.Fprintf(w, "loading: %3.0f%% of %s\n", 100*frac, humanBytes(total))
		}
	}
}
