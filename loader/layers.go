package loader

// layers.go works out each layer's window and RoPE (Config.Layers) from a
// file's metadata, as llama.cpp does for each arch, and applies the
// WithWindow override.

import (
	"fmt"
	"math"
)

// maxLayers bounds NumLayers before anything per layer is allocated. Real
// models have at most a few hundred layers.
const maxLayers = 1 << 16

// archDefaults is what an arch fixes and what its keys default to.
type archDefaults struct {
	// period is the default sliding-window pattern (see swaPattern); 0
	// means the arch has none: every layer gets Config.Window.
	period int
	// window is attention.sliding_window's default; -1 makes it required.
	window int
	// tiedOutput: llama.cpp always takes the output matrix from
	// token_embd.weight and refuses a file that also has output.weight.
	tiedOutput bool
	// ropeFreqs: the arch takes RoPE frequency factors (Llama 3.1's
	// scaling) from rope_freqs.weight or the llama3 rope.scaling keys.
	// llama.cpp's llama arch loads rope_freqs.weight; its qwen2, qwen3,
	// gemma2, gemma3 and cohere2 archs do not (and refuse a file that has
	// it, as a tensor they did not create).
	ropeFreqs bool
	// windowKey: attention.sliding_window is read. llama.cpp's qwen2 and
	// qwen3 ignore the key (full attention on every layer).
	windowKey bool
}

// archs lists the supported general.architecture values (llama.cpp's
// llama_model_*::load_arch_hparams for all but mistral, which is read as
// llama is).
var archs = map[string]archDefaults{
	"llama":   {window: 0, ropeFreqs: true, windowKey: true},
	"mistral": {window: 0, ropeFreqs: true, windowKey: true},
	"qwen2":   {window: 0},
	"qwen3":   {window: 0},
	"gemma2":  {period: 2, window: 4096, tiedOutput: true, windowKey: true},
	"gemma3":  {period: 6, window: 0, windowKey: true},
	"cohere2": {period: 4, window: -1, tiedOutput: true, windowKey: true},
}

// archList is the archs for error messages.
const archList = "llama, mistral, qwen2, qwen3, gemma2, gemma3 or cohere2"

// tiedOutput reports whether the arch takes its output matrix from
// token_embd.weight, with no output.weight allowed.
func (c Config) tiedOutput() bool { return archs[c.Arch].tiedOutput }

// swaPattern is llama.cpp's llama_hparams::set_swa_pattern: with period n,
// layer l is local (sliding-window) when l % n < n−1, so the last layer of
// each period is global: n = 2 gives local, global, local, …; n = 1 makes
// every layer global. n = 0 makes every layer local, as in llama.cpp.
func swaPattern(n, layers int) []bool {
	local := make([]bool, layers)
	for l := range local {
		local[l] = n == 0 || l%n < n-1
	}
	return local
}

// pattern reads <arch>.attention.sliding_window_pattern: an integer period
// (see swaPattern), or one flag per layer (bools, or integers with non-zero
// meaning local). ok is false when the key is absent.
func (r *metaReader) pattern(layers int) (local []bool, ok bool) {
	if r.err != nil {
		return nil, false
	}
	key := r.prefix + "attention.sliding_window_pattern"
	v, ok := r.m.Get(key)
	if !ok {
		return nil, false
	}
	if v.Type != TypeArray {
		n, ok := v.Uint()
		switch {
		case !ok:
			r.err = fmt.Errorf("metadata %s has type %s, want a period (non-negative integer) or one bool per layer", key, v.TypeName())
			return nil, false
		case n > maxLayers:
			r.err = fmt.Errorf("metadata %s = %d is implausibly large", key, n)
			return nil, false
		}
		return swaPattern(int(n), layers), true
	}
	flags, ok := arrayFlags(v)
	switch {
	case !ok:
		r.err = fmt.Errorf("metadata %s has type %s, want a period or one bool per layer", key, v.TypeName())
		return nil, false
	case len(flags) != layers:
		r.err = fmt.Errorf("metadata %s has %d entries, want one per layer (block_count %d)", key, len(flags), layers)
		return nil, false
	}
	return flags, true
}

// arrayFlags turns a bool or integer array into flags (non-zero is true).
func arrayFlags(v Value) ([]bool, bool) {
	var out []bool
	each := func(n int, nonzero func(i int) bool) {
		out = make([]bool, n)
		for i := range out {
			out[i] = nonzero(i)
		}
	}
	switch x := v.Data.(type) {
	case []bool:
		out = append([]bool(nil), x...)
	case []uint8:
		each(len(x), func(i int) bool { return x[i] != 0 })
	case []int8:
		each(len(x), func(i int) bool { return x[i] != 0 })
	case []uint16:
		each(len(x), func(i int) bool { return x[i] != 0 })
	case []int16:
		each(len(x), func(i int) bool { return x[i] != 0 })
	case []uint32:
		each(len(x), func(i int) bool { return x[i] != 0 })
	case []int32:
		each(len(x), func(i int) bool { return x[i] != 0 })
	case []uint64:
		each(len(x), func(i int) bool { return x[i] != 0 })
	case []int64:
		each(len(x), func(i int) bool { return x[i] != 0 })
	default:
		return nil, false
	}
	return out, true
}

// readLayers fills c.Layers from the metadata, for c's arch, after the
// common fields (NumLayers, Window, RopeTheta) are read. ropeScale is the
// linear RoPE scaling factor of the global layers (gemma3; 1 elsewhere).
func (r *metaReader) readLayers(c *Config, ropeScale float64) {
	def := archs[c.Arch]
	var local []bool
	if def.windowKey { // qwen2 and qwen3 read neither window nor pattern
		var ok bool
		local, ok = r.pattern(c.NumLayers)
		if r.err != nil {
			return
		}
		if !ok && def.period > 0 {
			local = swaPattern(def.period, c.NumLayers)
		}
	}
	localSpec := LayerSpec{Window: c.Window, RopeTheta: c.RopeTheta, RopeScale: 1}
	globalSpec := LayerSpec{RopeTheta: c.RopeTheta, RopeScale: 1}
	switch c.Arch {
	case "gemma2":
		// llama.cpp: the local layers' base is rope.freq_base_swa,
		// defaulting to rope.freq_base.
		localSpec.RopeTheta = r.float("rope.freq_base_swa", c.RopeTheta)
	case "gemma3":
		globalSpec.RopeScale = ropeScale
		if c.Window == 0 {
			// llama.cpp applies SWA (and the local RoPE base) only when
			// attention.sliding_window is present and > 0.
			local = make([]bool, c.NumLayers)
			break
		}
		localSpec.RopeTheta = r.float("rope.freq_base_swa", 10000)
	case "cohere2":
		globalSpec.RopeTheta = 0 // NoPE: RoPE runs on the local layers only
	}
	if r.err != nil {
		return
	}
	c.Layers = make([]LayerSpec, c.NumLayers)
	for l := range c.Layers {
		if local == nil || local[l] {
			c.Layers[l] = localSpec
		} else {
			c.Layers[l] = globalSpec
		}
	}
}

// gemmaQueryScale is llama.cpp's Gemma 2 / Gemma 3 query scale (set in its
// load_arch_hparams, after gemma_pytorch's config): the 27B models scale q
// by 1/√(n_embd/n_head), with the integer quotient, and every other size by
// 1/√key_length. A GGUF carries no query_pre_attn_scalar, so llama.cpp
// recognises the 27B by its block count: 46 for gemma2, 62 for gemma3.
func gemmaQueryScale(c Config) float64 {
	is27B := (c.Arch == "gemma2" && c.NumLayers == 46) || (c.Arch == "gemma3" && c.NumLayers == 62)
	if is27B && c.NumHeads > 0 {
		return 1 / math.Sqrt(float64(c.Dim/c.NumHeads))
	}
	return 1 / math.Sqrt(float64(c.HeadDim))
}

// filledLayers returns c with Layers set: a copy of them, or every layer
// {Window, RopeTheta, 1} when nil.
func (c Config) filledLayers() Config {
	if c.Layers != nil {
		c.Layers = append([]LayerSpec(nil), c.Layers...)
		return c
	}
	if c.NumLayers <= 0 || c.NumLayers > maxLayers {
		return c // Validate reports it
	}
	c.Layers = make([]LayerSpec, c.NumLayers)
	for l := range c.Layers {
		c.Layers[l] = LayerSpec{Window: c.Window, RopeTheta: c.RopeTheta, RopeScale: 1}
	}
	return c
}

// applyWindow is the WithWindow(w) override. With w > 0 every local layer
// gets window w; in a model without local layers (none declared) every layer
// becomes local with w, which is what Mistral v0.1 files without the window
// key need. w == 0 makes every layer global. Config.Window becomes w. RoPE
// is left as the file says.
func applyWindow(c *Config, w int) {
	*c = c.filledLayers()
	anyLocal := false
	for _, s := range c.Layers {
		anyLocal = anyLocal || s.Window > 0
	}
	for l := range c.Layers {
		if w == 0 || !anyLocal || c.Layers[l].Window > 0 {
			c.Layers[l].Window = w
		}
	}
	c.Window = w
}
