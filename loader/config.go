package loader

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// maxConfigInt bounds every integer hyperparameter, so that products such as
// NumHeads*HeadDim cannot overflow an int on any platform we build for.
const maxConfigInt = 1<<31 - 1

// configFromGGUF reads a Config from GGUF metadata, applying the defaults
// llama.cpp applies. VocabSize comes from token_embd's shape. It does not
// validate; call Validate and checkTensors after any override.
func configFromGGUF(f *GGUFFile) (Config, error) {
	c, err := configFromMetadata(f.Metadata)
	if err != nil {
		return c, err
	}
	switch t := f.tensor("token_embd.weight"); {
	case t == nil:
		return c, fmt.Errorf("tensor token_embd.weight is missing")
	case len(t.Shape) != 2 || t.Shape[1] > maxConfigInt:
		return c, fmt.Errorf("tensor token_embd.weight has shape %v, want {dim, vocab}", t.Shape)
	default:
		c.VocabSize = int(t.Shape[1])
	}
	if t := f.tensor(ropeFreqsTensor); t != nil && archs[c.Arch].ropeFreqs {
		// The tensor wins over the llama3 rope.scaling keys when a file has
		// both: llama.cpp's graph takes a layer's frequency factors from
		// rope_freqs.weight before anything else (get_rope_factors), and
		// its loader knows no "llama3" scaling type at all (it aborts on
		// one), so the tensor is the only spelling llama.cpp runs.
		factors, err := ropeFreqsFromTensor(t, c.RopeDim)
		if err != nil {
			return c, err
		}
		c.RopeFreqFactors = factors
	}
	return c, nil
}

// ropeFreqsTensor holds Llama 3.1's RoPE frequency factors, (ropeDim/2,)
// f32: pair i's frequency θ^(−2i/ropeDim) is divided by element i.
const ropeFreqsTensor = "rope_freqs.weight"

// ropeFreqsFromTensor reads rope_freqs.weight, which must be F32 of shape
// {ropeDim/2} (llama.cpp's shape; ggml's RoPE reads the factors as f32).
func ropeFreqsFromTensor(t *Tensor, ropeDim int) ([]float64, error) {
	if want := []uint64{uint64(ropeDim / 2)}; !slices.Equal(t.Shape, want) {
		return nil, fmt.Errorf("tensor %s has shape %v, want %v (rope dimension %d / 2)", t.Name, t.Shape, want, ropeDim)
	}
	if t.Type != F32 {
		return nil, fmt.Errorf("tensor %s has type %s, want F32", t.Name, t.Type)
	}
	v, err := t.Float32s()
	if err != nil {
		return nil, err
	}
	factors := make([]float64, len(v))
	for i, x := range v {
		factors[i] = float64(x)
	}
	return factors, nil
}

// configFromMetadata reads every field but VocabSize from the keys of
// general.architecture (prefixed "<arch>."), with llama.cpp's names and
// defaults for that arch, and fills Layers.
func configFromMetadata(m Metadata) (Config, error) {
	var c Config
	arch, ok := m.String("general.architecture")
	if !ok {
		if m.Has("general.architecture") {
			return c, fmt.Errorf("metadata general.architecture is not a string")
		}
		return c, fmt.Errorf("metadata general.architecture is missing")
	}
	def, ok := archs[arch]
	if !ok {
		return c, fmt.Errorf("unsupported architecture %q (want %s)", arch, archList)
	}
	c.Arch = arch
	r := metaReader{m: m, prefix: arch + "."}
	c.NumLayers = r.int("block_count", -1)
	c.Dim = r.int("embedding_length", -1)
	c.NumHeads = r.int("attention.head_count", -1)
	c.NumKVHeads = r.int("attention.head_count_kv", c.NumHeads)
	c.FFNDim = r.int("feed_forward_length", -1)
	c.ContextLength = r.int("context_length", 0)
	if def.windowKey {
		c.Window = r.int("attention.sliding_window", def.window)
	}
	c.RopeTheta = r.float("rope.freq_base", 10000)
	switch arch {
	case "llama", "mistral":
		c.NormEps = r.float("attention.layer_norm_rms_epsilon", 1e-5)
	case "qwen2", "qwen3", "gemma2", "gemma3":
		r.need("attention.layer_norm_rms_epsilon")
		c.NormEps = r.float("attention.layer_norm_rms_epsilon", 0)
	case "cohere2":
		r.need("attention.layer_norm_epsilon")
		c.NormEps = r.float("attention.layer_norm_epsilon", 0)
	}
	if r.err != nil {
		return c, r.err
	}
	if c.NumLayers > maxLayers {
		return c, fmt.Errorf("metadata %sblock_count = %d is implausibly large (more than %d layers)", r.prefix, c.NumLayers, maxLayers)
	}
	ropeScale, llama3 := 1.0, false
	switch {
	case arch == "gemma3":
		// llama.cpp applies linear scaling to gemma3's global layers.
		ropeScale = r.linearRope()
	case def.ropeFreqs && r.scalingType() == "llama3":
		llama3 = true
		r.llama3Rope()
	default:
		r.plainRope()
	}
	if r.err != nil {
		return c, r.err
	}
	hd := 0
	if c.NumHeads > 0 && c.Dim%c.NumHeads == 0 {
		hd = c.Dim / c.NumHeads
	}
	keyLen := r.int("attention.key_length", hd)
	valLen := r.int("attention.value_length", keyLen)
	if r.err != nil {
		return c, r.err
	}
	if keyLen == 0 {
		return c, fmt.Errorf("embedding_length %d is not a multiple of head_count %d and %sattention.key_length is missing", c.Dim, c.NumHeads, r.prefix)
	}
	if valLen != keyLen {
		return c, fmt.Errorf("%sattention.value_length %d differs from key_length %d (not supported)", r.prefix, valLen, keyLen)
	}
	c.HeadDim = keyLen
	c.RopeDim = r.int("rope.dimension_count", c.HeadDim)
	if r.err != nil {
		return c, r.err
	}
	if llama3 {
		if c.RopeFreqFactors = r.llama3Factors(c.RopeTheta, c.RopeDim); r.err != nil {
			return c, r.err
		}
	}
	c.Rope = RopePairwise
	switch arch {
	case "qwen2":
		c.Rope = RopeHalf // llama.cpp's NEOX RoPE
		c.QKVBias = true
	case "qwen3":
		c.Rope = RopeHalf
		c.QKNorm = true
	case "gemma2", "gemma3":
		c.Rope = RopeHalf // llama.cpp's NEOX RoPE: Gemma's Q/K rows are not permuted
		c.Act = ActGELUTanh
		c.EmbedScale = math.Sqrt(float64(c.Dim))
		c.PostNorms = true
		c.AttnScale = gemmaQueryScale(c)
		if arch == "gemma2" {
			c.AttnSoftcap = r.float("attn_logit_softcapping", 50)
			c.FinalSoftcap = r.float("final_logit_softcapping", 30)
		} else {
			c.QKNorm = true
			c.FinalSoftcap = r.float("final_logit_softcapping", 0)
		}
	case "cohere2":
		c.Norm = NormLayer
		c.Parallel = true
		r.need("logit_scale")
		c.LogitScale = r.float("logit_scale", 0)
	}
	r.readLayers(&c, ropeScale)
	if r.err != nil {
		return c, r.err
	}
	return c, nil
}

// tensor finds a tensor by name (linear; used before the Model index exists).
func (f *GGUFFile) tensor(name string) *Tensor {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// metaReader reads typed hyperparameters and keeps the first error.
type metaReader struct {
	m      Metadata
	prefix string
	err    error
}

// int reads an integer key; def < 0 makes the key required.
func (r *metaReader) int(key string, def int) int {
	if r.err != nil {
		return 0
	}
	key = r.prefix + key
	v, ok := r.m.Get(key)
	if !ok {
		if def < 0 {
			r.err = fmt.Errorf("metadata %s is missing", key)
			return 0
		}
		return def
	}
	u, ok := v.Uint()
	if !ok {
		r.err = fmt.Errorf("metadata %s has type %s, want a non-negative integer", key, v.TypeName())
		return 0
	}
	if u > maxConfigInt {
		r.err = fmt.Errorf("metadata %s = %d is implausibly large", key, u)
		return 0
	}
	return int(u)
}

// need makes a key required: a missing one is the reader's error.
func (r *metaReader) need(key string) {
	if r.err == nil && !r.m.Has(r.prefix+key) {
		r.err = fmt.Errorf("metadata %s%s is missing", r.prefix, key)
	}
}

// ropeScaleKeys are the keys that give a linear RoPE scaling factor F:
// rope.scaling.factor and its old name rope.scale_linear hold F,
// rope.freq_scale holds 1/F. 0 (and a missing key) means unset.
var ropeScaleKeys = []struct {
	key     string
	inverse bool
}{{"rope.scaling.factor", false}, {"rope.scale_linear", false}, {"rope.freq_scale", true}}

// plainRope refuses the RoPE scaling keys (linear, YaRN, longrope, and
// llama3 on the archs that take no frequency factors): the engine
// implements plain RoPE for these archs, and ignoring a scaling would
// change every logit without a word. "none" and a factor of 1 (or 0, unset)
// are plain.
func (r *metaReader) plainRope() {
	if r.err != nil {
		return
	}
	if v, ok := r.m.Get(r.prefix + "rope.scaling.type"); ok {
		if t, _ := v.Data.(string); t != "none" {
			r.err = fmt.Errorf("metadata %srope.scaling.type = %v is not supported (plain RoPE only)", r.prefix, v.Data)
			return
		}
	}
	for _, k := range ropeScaleKeys {
		if _, ok := r.m.Get(r.prefix + k.key); !ok {
			continue
		}
		if x := r.float(k.key, 1); r.err != nil {
			return
		} else if x != 1 && x != 0 {
			r.err = fmt.Errorf("metadata %s%s = %g is not supported (plain RoPE only)", r.prefix, k.key, x)
			return
		}
	}
}

// scalingType is rope.scaling.type when it is a string, else "".
func (r *metaReader) scalingType() string {
	v, ok := r.m.Get(r.prefix + "rope.scaling.type")
	if !ok {
		return ""
	}
	s, _ := v.Data.(string)
	return s
}

// llama3Rope checks the keys beside rope.scaling.type = "llama3": there
// rope.scaling.factor is llama3's factor (llama3Factors reads it), but the
// linear scaling keys rope.scale_linear and rope.freq_scale would scale
// every position on top of it, which we do not implement.
func (r *metaReader) llama3Rope() {
	for _, k := range ropeScaleKeys {
		if k.key == "rope.scaling.factor" {
			continue
		}
		if _, ok := r.m.Get(r.prefix + k.key); !ok {
			continue
		}
		if x := r.float(k.key, 1); r.err != nil {
			return
		} else if x != 1 && x != 0 {
			r.err = fmt.Errorf("metadata %s%s = %g is not supported with rope.scaling.type llama3 (no linear scaling on top)", r.prefix, k.key, x)
			return
		}
	}
}

// maxRopeDim bounds rope.dimension_count before the llama3 factors are
// allocated (real heads have at most a few hundred dims).
const maxRopeDim = 1 << 16

// llama3Factors computes Llama 3.1's RoPE frequency factors from the keys
// rope.scaling.factor (s, default 8), rope.scaling.low_freq_factor (lo,
// default 1), rope.scaling.high_freq_factor (hi, default 4) and
// rope.scaling.original_context_length (L, default 8192), the defaults being
// those of llama.cpp's converter. This is Meta's rule, which the converter
// applies to write rope_freqs.weight: pair i of base frequency
// f = θ^(−2i/ropeDim) has the wavelength λ = 2π/f, and its frequency is
// divided by
//
//	1                          when λ < L/hi (high frequencies: unchanged)
//	s                          when λ > L/lo (low frequencies: interpolated s times)
//	1 / ((1−m)/s + m)          in between, m = (L/λ − lo) / (hi − lo)
//
// so the divisor runs smoothly from s down to 1 across the middle band.
// With lo = hi the band is empty: λ > L/lo gives s, anything else 1. Each
// factor is rounded to float32, the precision rope_freqs.weight stores, so
// the two spellings of one scaling give the same Config.
func (r *metaReader) llama3Factors(theta float64, ropeDim int) []float64 {
	s := r.float("rope.scaling.factor", 8)
	lo := r.float("rope.scaling.low_freq_factor", 1)
	hi := r.float("rope.scaling.high_freq_factor", 4)
	ctx := r.int("rope.scaling.original_context_length", 8192)
	if r.err != nil {
		return nil
	}
	for _, k := range []struct {
		key string
		v   float64
	}{{"rope.scaling.factor", s}, {"rope.scaling.low_freq_factor", lo}, {"rope.scaling.high_freq_factor", hi}} {
		if !(k.v > 0) || math.IsInf(k.v, 0) {
			r.err = fmt.Errorf("metadata %s%s = %g, want a positive finite number (rope.scaling.type llama3)", r.prefix, k.key, k.v)
			return nil
		}
	}
	switch {
	case hi < lo:
		r.err = fmt.Errorf("metadata %srope.scaling.high_freq_factor = %g is below low_freq_factor %g (llama3 scaling needs low ≤ high)", r.prefix, hi, lo)
		return nil
	case ctx == 0:
		r.err = fmt.Errorf("metadata %srope.scaling.original_context_length is 0, want > 0 (rope.scaling.type llama3)", r.prefix)
		return nil
	case ropeDim > maxRopeDim:
		r.err = fmt.Errorf("metadata %srope.dimension_count = %d is implausibly large", r.prefix, ropeDim)
		return nil
	case !(theta > 0) || math.IsInf(theta, 0):
		return nil // Validate reports the bad θ
	}
	factors := make([]float64, ropeDim/2)
	for i := range factors {
		factors[i] = float64(float32(llama3Factor(theta, ropeDim, i, s, lo, hi, float64(ctx))))
	}
	return factors
}

// llama3Factor is pair i's divisor under llama3Factors' rule.
func llama3Factor(theta float64, ropeDim, i int, s, lo, hi, ctx float64) float64 {
	wavelen := 2 * math.Pi * math.Pow(theta, float64(2*i)/float64(ropeDim))
	switch {
	case wavelen < ctx/hi:
		return 1
	case wavelen > ctx/lo:
		return s
	case hi == lo: // the band is the one wavelength ctx/lo: no interpolation
		return 1
	}
	m := (ctx/wavelen - lo) / (hi - lo)
	return 1 / ((1-m)/s + m)
}

// linearRope reads a linear RoPE scaling factor F (gemma3's global layers):
// rope.scaling.type absent, "none" or "linear", and F from the keys of
// ropeScaleKeys, which must agree. It returns 1 when unscaled.
func (r *metaReader) linearRope() float64 {
	if r.err != nil {
		return 0
	}
	typ := "linear"
	if v, ok := r.m.Get(r.prefix + "rope.scaling.type"); ok {
		typ, _ = v.Data.(string)
		if typ != "none" && typ != "linear" {
			r.err = fmt.Errorf("metadata %srope.scaling.type = %v is not supported (linear or none only)", r.prefix, v.Data)
			return 0
		}
	}
	f, from := 1.0, ""
	for _, k := range ropeScaleKeys {
		if _, ok := r.m.Get(r.prefix + k.key); !ok {
			continue
		}
		x := r.float(k.key, 0)
		switch {
		case r.err != nil:
			return 0
		case x == 0:
			continue
		case !(x > 0) || math.IsInf(x, 0):
			r.err = fmt.Errorf("metadata %s%s = %g, want a positive finite factor", r.prefix, k.key, x)
			return 0
		case k.inverse:
			x = 1 / x
		}
		if from != "" && float32(x) != float32(f) {
			r.err = fmt.Errorf("metadata %s%s and %s%s give different RoPE scaling factors (%g and %g)", r.prefix, from, r.prefix, k.key, f, x)
			return 0
		}
		f, from = x, k.key
	}
	if typ == "none" && f != 1 {
		r.err = fmt.Errorf("metadata %srope.scaling.type is none, but %s%s gives a factor of %g", r.prefix, r.prefix, from, f)
		return 0
	}
	return f
}

// float reads a float key (integers are accepted too), or returns def.
func (r *metaReader) float(key string, def float64) float64 {
	if r.err != nil {
		return 0
	}
	key = r.prefix + key
	v, ok := r.m.Get(key)
	if !ok {
		return def
	}
	if x, ok := v.Data.(float32); ok {
		// The decimal the writer meant (1e-5, not 9.99999974e-06); it
		// converts back to the same float32.
		d, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
		return d
	}
	if x, ok := v.Float(); ok {
		return x
	}
	if i, ok := v.Int(); ok {
		return float64(i)
	}
	r.err = fmt.Errorf("metadata %s has type %s, want a number", key, v.TypeName())
	return 0
}

// Validate checks that the hyperparameters describe a model the engine can
// run, and says what is wrong otherwise.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, ok := archs[c.Arch]; !ok {
		bad("unsupported architecture %q (want %s)", c.Arch, archList)
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"dim", c.Dim}, {"layers", c.NumLayers}, {"heads", c.NumHeads}, {"kv heads", c.NumKVHeads},
		{"head dim", c.HeadDim}, {"ffn dim", c.FFNDim}, {"vocab size", c.VocabSize}, {"rope dim", c.RopeDim},
	} {
		switch {
		case f.v <= 0:
			bad("%s is %d, want > 0", f.name, f.v)
		case f.v > maxConfigInt:
			bad("%s is %d, implausibly large", f.name, f.v)
		}
	}
	if c.NumHeads > 0 && c.NumKVHeads > 0 && c.NumHeads%c.NumKVHeads != 0 {
		bad("%d heads are not a multiple of %d kv heads", c.NumHeads, c.NumKVHeads)
	}
	if c.HeadDim > 0 && c.HeadDim%2 != 0 {
		bad("head dim %d is odd (RoPE rotates pairs)", c.HeadDim)
	}
	if c.RopeDim > 0 && (c.RopeDim%2 != 0 || c.RopeDim > c.HeadDim) {
		bad("rope dim %d must be even and at most head dim %d", c.RopeDim, c.HeadDim)
	}
	if !(c.RopeTheta > 0) || math.IsInf(c.RopeTheta, 0) {
		bad("rope theta %v, want a positive finite number", c.RopeTheta)
	}
	if !(c.NormEps > 0) || math.IsInf(c.NormEps, 0) {
		bad("norm epsilon %v, want a positive finite number", c.NormEps)
	}
	if c.Window < 0 {
		bad("window %d, want >= 0 (0 = full attention)", c.Window)
	}
	if c.ContextLength < 0 {
		bad("context length %d, want >= 0", c.ContextLength)
	}
	if c.Rope != RopePairwise && c.Rope != RopeHalf {
		bad("unknown rope style %d", c.Rope)
	}
	if c.Norm != NormRMS && c.Norm != NormLayer {
		bad("unknown norm kind %d", c.Norm)
	}
	if c.Act != ActSiLU && c.Act != ActGELUTanh {
		bad("unknown activation %d", c.Act)
	}
	if c.NumLayers > maxLayers {
		bad("%d layers, more than %d", c.NumLayers, maxLayers)
	}
	if c.Layers != nil && len(c.Layers) != c.NumLayers {
		bad("%d layer specs for %d layers", len(c.Layers), c.NumLayers)
	}
	// One message per kind of fault, for the first layer that has it: a
	// bad spec is usually repeated in every layer.
	var badWindow, badTheta, badScale bool
	for l, s := range c.Layers {
		if s.Window < 0 && !badWindow {
			badWindow = true
			bad("layer %d: window %d, want >= 0 (0 = global)", l, s.Window)
		}
		if (!(s.RopeTheta >= 0) || math.IsInf(s.RopeTheta, 0)) && !badTheta {
			badTheta = true
			bad("layer %d: rope theta %v, want a finite number >= 0 (0 = no RoPE)", l, s.RopeTheta)
		}
		if (!(s.RopeScale > 0) || math.IsInf(s.RopeScale, 0)) && !badScale {
			badScale = true
			bad("layer %d: rope scale %v, want a positive finite number (1 = none)", l, s.RopeScale)
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"embed scale", c.EmbedScale}, {"attention scale", c.AttnScale}, {"attention softcap", c.AttnSoftcap},
		{"final softcap", c.FinalSoftcap}, {"logit scale", c.LogitScale},
	} {
		if !(f.v >= 0) || math.IsInf(f.v, 0) {
			bad("%s %v, want a finite number >= 0 (0 = default)", f.name, f.v)
		}
	}
	if c.RopeFreqFactors != nil {
		if len(c.RopeFreqFactors) != c.RopeDim/2 {
			bad("%d rope frequency factors, want rope dim %d / 2 = %d", len(c.RopeFreqFactors), c.RopeDim, c.RopeDim/2)
		}
		for i, f := range c.RopeFreqFactors {
			if !(f > 0) || math.IsInf(f, 0) {
				bad("rope frequency factor %d is %v, want a positive finite number", i, f)
				break // one is enough to see the fault
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid config: %w", joinErrors(errs))
	}
	return nil
}

// tensorSpec is one weight a model needs: its name, expected shape
// (innermost first) and whether it must be F32. forbidden, when set, says
// why the tensor must be absent.
type tensorSpec struct {
	name      string
	shape     []uint64
	f32       bool
	optional  bool
	forbidden string
}

// tensorSpecs lists every weight of the model with its shape. With x a row
// vector of width dim, attn_q is a (dim → heads·hd) matrix, stored {dim,
// heads*hd}: each of its heads·hd rows has dim elements. QKVBias adds
// attn_q.bias ({heads·hd}), attn_k.bias and attn_v.bias ({kvHeads·hd}),
// QKNorm the per-head attn_q_norm and attn_k_norm ({hd} each), PostNorms
// the post_attention_norm and post_ffw_norm vectors, and Parallel drops
// ffn_norm (attention and FFN share attn_norm). rope_freqs.weight
// ({ropeDim/2}) comes last: listed when RopeFreqFactors is set (optional:
// the llama3 keys may give them instead), forbidden on the archs that take
// no factors. No other bias is listed: one in a file (attn_output.bias,
// output.bias …) is a tensor the engine refuses by name.
func (c Config) tensorSpecs() []tensorSpec {
	dim, q, kv, ffn := uint64(c.Dim), uint64(c.NumHeads*c.HeadDim), uint64(c.NumKVHeads*c.HeadDim), uint64(c.FFNDim)
	vocab, hd := uint64(c.VocabSize), uint64(c.HeadDim)
	output := tensorSpec{name: "output.weight", shape: []uint64{dim, vocab}, optional: true}
	if c.tiedOutput() {
		output = tensorSpec{name: "output.weight", forbidden: c.Arch + " ties its output to token_embd.weight, and llama.cpp refuses a file that has one"}
	}
	specs := []tensorSpec{
		{name: "token_embd.weight", shape: []uint64{dim, vocab}},
		{name: "output_norm.weight", shape: []uint64{dim}, f32: true},
		output,
	}
	norm := func(name string, n uint64) tensorSpec { return tensorSpec{name: name, shape: []uint64{n}, f32: true} }
	for l := 0; l < c.NumLayers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		specs = append(specs,
			norm(p+"attn_norm.weight", dim),
			tensorSpec{name: p + "attn_q.weight", shape: []uint64{dim, q}},
			tensorSpec{name: p + "attn_k.weight", shape: []uint64{dim, kv}},
			tensorSpec{name: p + "attn_v.weight", shape: []uint64{dim, kv}},
		)
		if c.QKVBias {
			specs = append(specs, norm(p+"attn_q.bias", q), norm(p+"attn_k.bias", kv), norm(p+"attn_v.bias", kv))
		}
		if c.QKNorm {
			specs = append(specs, norm(p+"attn_q_norm.weight", hd), norm(p+"attn_k_norm.weight", hd))
		}
		specs = append(specs, tensorSpec{name: p + "attn_output.weight", shape: []uint64{q, dim}})
		if c.PostNorms {
			specs = append(specs, norm(p+"post_attention_norm.weight", dim))
		}
		if !c.Parallel {
			specs = append(specs, norm(p+"ffn_norm.weight", dim))
		}
		specs = append(specs,
			tensorSpec{name: p + "ffn_gate.weight", shape: []uint64{dim, ffn}},
			tensorSpec{name: p + "ffn_up.weight", shape: []uint64{dim, ffn}},
			tensorSpec{name: p + "ffn_down.weight", shape: []uint64{ffn, dim}},
		)
		if c.PostNorms {
			specs = append(specs, norm(p+"post_ffw_norm.weight", dim))
		}
	}
	// Last, so that adding it leaves the synthetic writer's random streams
	// (numbered by position in this list) of every other tensor unchanged.
	switch {
	case !archs[c.Arch].ropeFreqs:
		specs = append(specs, tensorSpec{name: ropeFreqsTensor,
			forbidden: c.Arch + " takes no RoPE frequency factors, and llama.cpp refuses a file that has them"})
	case c.RopeFreqFactors != nil:
		specs = append(specs, tensorSpec{name: ropeFreqsTensor, shape: []uint64{uint64(c.RopeDim / 2)}, f32: true, optional: true})
	}
	return specs
}

// checkTensors verifies that every weight the config implies is present
// with the right shape and a supported type, and that no forbidden one is.
// Extra tensors (a bias the arch does not use, say) are allowed here; the
// engine refuses the ones its forward pass would not read.
func checkTensors(c Config, lookup func(name string) *Tensor) error {
	var errs []error
	for _, s := range c.tensorSpecs() {
		t := lookup(s.name)
		switch {
		case s.forbidden != "":
			if t != nil {
				errs = append(errs, fmt.Errorf("tensor %s is present, but %s", s.name, s.forbidden))
			}
		case t == nil && s.optional:
		case t == nil:
			errs = append(errs, fmt.Errorf("tensor %s is missing", s.name))
		case !slices.Equal(t.Shape, s.shape):
			errs = append(errs, fmt.Errorf("tensor %s has shape %v, want %v", s.name, t.Shape, s.shape))
		case !t.Type.Supported():
			errs = append(errs, fmt.Errorf("tensor %s: %w", s.name, t.Type.unsupported()))
		case s.f32 && t.Type != F32:
			errs = append(errs, fmt.Errorf("tensor %s has type %s, want F32", s.name, t.Type))
		}
		if len(errs) >= 8 { // enough to see the pattern
			errs = append(errs, errors.New("…"))
			break
		}
	}
	return joinErrors(errs)
}

// joinErrors is errors.Join on one line: CLI errors print as a single line.
func joinErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return joinedError(errs)
}

type joinedError []error

func (e joinedError) Error() string {
	var b strings.Builder
	for i, err := range e {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e joinedError) Unwrap() []error { return e }
