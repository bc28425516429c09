package loader

// safetensors_checkpoint.go opens a checkpoint directory: Hugging Face's
// config.json with model.safetensors or a sharded model.safetensors.index.json,
// or Mistral's params.json with consolidated.safetensors. Tensor names are
// mapped to the GGUF names the engine binds, and Hugging Face's rotate-half
// Q and K rows are permuted (lazily) to the pairwise RoPE layout.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Files of a checkpoint directory.
const (
	stIndexFile        = "model.safetensors.index.json"
	stSingleFile       = "model.safetensors"
	stConsolidatedFile = "consolidated.safetensors"
	hfConfigFile       = "config.json"
	mistralParamsFile  = "params.json"
	hfTokenizerFile    = "tokenizer.json"

	// maxIndexJSON bounds model.safetensors.index.json (about 100 bytes a
	// tensor: a few hundred kilobytes for the largest models).
	maxIndexJSON = 64 << 20
)

// stLayout is the kind of checkpoint a directory holds.
type stLayout int

const (
	layoutHFSingle stLayout = iota
	layoutHFSharded
	layoutMistral
)

// stSource is one tensor of the checkpoint with the file it lives in.
type stSource struct {
	t     *stTensor
	file  *stFile
	shard int // which file, in load order
}

// openSafetensors opens the safetensors checkpoint in dir.
func openSafetensors(dir string, o *openOptions) (_ *Model, err error) {
	if o == nil {
		o = &openOptions{window: -1}
	}
	layout, err := detectSafetensorsLayout(dir)
	if err != nil {
		return nil, err
	}

	var closers []func() error
	defer func() {
		if err != nil {
			for _, c := range closers {
				_ = c()
			}
		}
	}()
	// openFile maps and parses one safetensors file of dir.
	openFile := func(name string) (*stFile, error) {
		p := filepath.Join(dir, name)
		b, closeFn, err := mapFile(p)
		if err != nil {
			return nil, err
		}
		closers = append(closers, closeFn)
		return parseSafetensors(p, b)
	}

	var (
		cfg     Config
		sources []stSource
		mapName func(string) (string, int, bool)
	)
	switch layout {
	case layoutHFSingle, layoutHFSharded:
		p := filepath.Join(dir, hfConfigFile)
		data, err := readBoundedFile(p, maxConfigJSON)
		if err != nil {
			return nil, err
		}
		if cfg, err = parseHFConfig(p, data); err != nil {
			return nil, err
		}
		mapName = hfTensorName
		if layout == layoutHFSingle {
			f, err := openFile(stSingleFile)
			if err != nil {
				return nil, err
			}
			sources = allSources(f, 0)
		} else if sources, err = loadShards(dir, openFile); err != nil {
			return nil, err
		}
	case layoutMistral:
		p := filepath.Join(dir, mistralParamsFile)
		data, err := readBoundedFile(p, maxConfigJSON)
		if err != nil {
			return nil, err
		}
		if cfg, err = parseMistralParams(p, data); err != nil {
			return nil, err
		}
		mapName = mistralTensorName
		f, err := openFile(stConsolidatedFile)
		if err != nil {
			return nil, err
		}
		sources = allSources(f, 0)
	}
	cfg = cfg.filledLayers()
	if o.window >= 0 {
		applyWindow(&cfg, o.window)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("loader: %s: %w", dir, err)
	}

	m := &Model{Path: dir, Format: "safetensors", Config: cfg, byName: map[string]*Tensor{}}
	if err := m.addSafetensors(sources, mapName, layout != layoutMistral); err != nil {
		return nil, err
	}

	if !o.noTokens {
		p := filepath.Join(dir, hfTokenizerFile)
		if _, statErr := os.Stat(p); !errors.Is(statErr, os.ErrNotExist) {
			tok, err := tokenizerFromHFJSON(p)
			if err != nil {
				return nil, fmt.Errorf("loader: %s: %w: %w", p, ErrTokenizer, err)
			}
			m.Tokenizer = tok
		}
	}
	m.closers = append(m.closers, closers...)
	return m, nil
}

// detectSafetensorsLayout says which checkpoint dir holds. A Hugging Face
// checkpoint wins when a directory holds both kinds (Mistral's repositories
// often do).
func detectSafetensorsLayout(dir string) (stLayout, error) {
	has := func(name string) bool {
		st, err := os.Stat(filepath.Join(dir, name))
		return err == nil && st.Mode().IsRegular()
	}
	switch {
	case has(hfConfigFile) && has(stIndexFile):
		return layoutHFSharded, nil
	case has(hfConfigFile) && has(stSingleFile):
		return layoutHFSingle, nil
	case has(mistralParamsFile) && has(stConsolidatedFile):
		return layoutMistral, nil
	case has(stIndexFile) || has(stSingleFile):
		return 0, fmt.Errorf("loader: %s: has weights but no %s", dir, hfConfigFile)
	case has(stConsolidatedFile):
		return 0, fmt.Errorf("loader: %s: has %s but no %s", dir, stConsolidatedFile, mistralParamsFile)
	}
	return 0, fmt.Errorf("loader: %s: not a model directory: want %s with %s or %s, or %s with %s",
		dir, hfConfigFile, stSingleFile, stIndexFile, mistralParamsFile, stConsolidatedFile)
}

// allSources lists every tensor of f in file order (by offset; the header
// may list them in any order).
func allSources(f *stFile, shard int) []stSource {
	out := make([]stSource, len(f.tensors))
	for i := range f.tensors {
		out[i] = stSource{t: &f.tensors[i], file: f, shard: shard}
	}
	sortSources(out)
	return out
}

// sortSources puts sources in physical order: shard by shard, by offset,
// like the tensors of a GGUF file.
func sortSources(s []stSource) {
	sort.SliceStable(s, func(a, b int) bool {
		if s[a].shard != s[b].shard {
			return s[a].shard < s[b].shard
		}
		return s[a].t.offset < s[b].t.offset
	})
}

// loadShards reads model.safetensors.index.json and maps each shard it names
// once. Every tensor of the weight map must be in its shard.
func loadShards(dir string, openFile func(string) (*stFile, error)) ([]stSource, error) {
	p := filepath.Join(dir, stIndexFile)
	data, err := readBoundedFile(p, maxIndexJSON)
	if err != nil {
		return nil, err
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := decodeConfigJSON(data, &idx); err != nil {
		return nil, fmt.Errorf("loader: %s: %v", p, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("loader: %s: weight_map is missing or empty", p)
	}
	names := make([]string, 0, len(idx.WeightMap))
	shardSet := map[string]bool{}
	for name, shard := range idx.WeightMap {
		// A shard is a file in dir and nothing else: no paths, no escapes.
		if shard == "" || shard == "." || shard == ".." || strings.ContainsAny(shard, `/\`) || filepath.Base(shard) != shard {
			return nil, fmt.Errorf("loader: %s: tensor %q: shard %q is not a plain file name", p, name, shard)
		}
		names = append(names, name)
		shardSet[shard] = true
	}
	sort.Strings(names)
	shards := make([]string, 0, len(shardSet))
	for s := range shardSet {
		shards = append(shards, s)
	}
	sort.Strings(shards) // model-00001-of-00003… sorts into file order
	files := map[string]*stFile{}
	order := map[string]int{}
	for i, s := range shards {
		f, err := openFile(s)
		if err != nil {
			return nil, err
		}
		files[s], order[s] = f, i
	}
	out := make([]stSource, 0, len(names))
	for _, name := range names {
		shard := idx.WeightMap[name]
		f := files[shard]
		i, ok := f.byName[name]
		if !ok {
			return nil, fmt.Errorf("loader: %s: tensor %q is mapped to shard %s, which has no such tensor", p, name, f.path)
		}
		out = append(out, stSource{t: &f.tensors[i], file: f, shard: order[shard]})
	}
	sortSources(out)
	return out, nil
}

// addSafetensors maps the checkpoint's tensors to engine names and checks
// them against the config (checkTensors: presence, shapes, types). With
// ropeHalf, Q and K get the RoPE row permutation; F16 and BF16 norm vectors
// are widened to F32, the type the engine takes for norms (as in GGUF files).
// Both happen lazily, in Bytes. A float tensor without an engine name (a
// bias, say) is listed in m.Unmapped, except rotary inv_freq buffers, which
// the engine derives from the config; tensors of other dtypes (position_ids)
// are ignored.
func (m *Model) addSafetensors(sources []stSource, mapName func(string) (string, int, bool), ropeHalf bool) error {
	cfg := &m.Config
	for _, s := range sources {
		name, layer, ok := mapName(s.t.name)
		if !ok {
			if safetensorsDTypes[s.t.dtype].supported && !strings.HasSuffix(s.t.name, "rotary_emb.inv_freq") {
				m.Unmapped = append(m.Unmapped, s.t.name)
			}
			continue
		}
		path := s.file.path
		if layer >= cfg.NumLayers {
			return s.t.errAt(path, nil, "is for layer %d, but the config has %d layers", layer, cfg.NumLayers)
		}
		dt := safetensorsDTypes[s.t.dtype]
		if !dt.supported {
			return s.t.errAt(path, ErrUnsupportedType, "%v %s (want F32, F16 or BF16)", ErrUnsupportedType, s.t.dtype)
		}
		t := &Tensor{
			Name:   name,
			Type:   dt.dtype,
			Shape:  reverseShape(s.t.shape),
			Offset: s.t.offset,
			data:   s.t.data,
		}
		isQ := strings.HasSuffix(name, ".attn_q.weight")
		isK := strings.HasSuffix(name, ".attn_k.weight")
		switch {
		case ropeHalf && (isQ || isK) && len(t.Shape) == 2:
			heads := cfg.NumHeads
			if isK {
				heads = cfg.NumKVHeads
			}
			// A shape that does not fit the config fails checkTensors below,
			// before anyone can ask for the bytes.
			t.transform = ropeHalfToPairwise(s.t.name, heads, cfg.HeadDim, int(t.Shape[0]*dt.size))
		case isNormWeight(name) && t.Type != F32:
			t.transform = widenToF32(s.t.name, t.Type)
			t.Type = F32
		}
		m.Tensors = append(m.Tensors, t)
		m.byName[name] = t
	}
	if err := checkTensors(*cfg, m.Tensor); err != nil {
		return fmt.Errorf("loader: %s: %w", m.Path, err)
	}
	return nil
}

// isNormWeight reports whether name is an RMSNorm weight vector.
func isNormWeight(name string) bool {
	return name == "output_norm.weight" || strings.HasSuffix(name, ".attn_norm.weight") || strings.HasSuffix(name, ".ffn_norm.weight")
}

// widenToF32 returns the transform that converts a vector of t (F16 or BF16)
// to little-endian F32. Norm vectors are a few KiB, so the copy is cheap.
func widenToF32(name string, t DType) func(raw []byte) ([]byte, error) {
	return func(raw []byte) ([]byte, error) {
		n := uint64(len(raw)) / t.BlockBytes()
		f := make([]float32, n)
		if err := Dequantize(t, raw, f); err != nil {
			return nil, fmt.Errorf("widening %q to F32: %w", name, err)
		}
		out := make([]byte, 4*n)
		for i, v := range f {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
		return out, nil
	}
}

// reverseShape turns a torch shape (outermost first) into ours (innermost
// first): a torch (out, in) matrix becomes {in, out} over the same bytes.
func reverseShape(s []uint64) []uint64 {
	out := make([]uint64, len(s))
	for i, d := range s {
		out[len(s)-1-i] = d
	}
	return out
}

// hfTensorNames maps Hugging Face per-layer suffixes to engine names.
var hfLayerNames = map[string]string{
	"self_attn.q_proj.weight":         "attn_q.weight",
	"self_attn.k_proj.weight":         "attn_k.weight",
	"self_attn.v_proj.weight":         "attn_v.weight",
	"self_attn.o_proj.weight":         "attn_output.weight",
	"mlp.gate_proj.weight":            "ffn_gate.weight",
	"mlp.up_proj.weight":              "ffn_up.weight",
	"mlp.down_proj.weight":            "ffn_down.weight",
	"input_layernorm.weight":          "attn_norm.weight",
	"post_attention_layernorm.weight": "ffn_norm.weight",
}

// hfTensorName maps a Hugging Face tensor name to the engine's (GGUF) name.
// layer is the block index, or -1 for a global tensor; ok is false for a
// tensor the engine does not use.
func hfTensorName(name string) (engine string, layer int, ok bool) {
	switch name {
	case "model.embed_tokens.weight":
		return "token_embd.weight", -1, true
	case "model.norm.weight":
		return "output_norm.weight", -1, true
	case "lm_head.weight":
		return "output.weight", -1, true
	}
	return layerTensorName(name, "model.layers.", hfLayerNames)
}

// mistralLayerNames maps Mistral's per-layer suffixes to engine names. In
// mistral-src's FeedForward, w2(silu(w1(x)) * w3(x)): w1 is the gate, w3 the
// up projection and w2 the down projection.
var mistralLayerNames = map[string]string{
	"attention.wq.weight":    "attn_q.weight",
	"attention.wk.weight":    "attn_k.weight",
	"attention.wv.weight":    "attn_v.weight",
	"attention.wo.weight":    "attn_output.weight",
	"feed_forward.w1.weight": "ffn_gate.weight",
	"feed_forward.w3.weight": "ffn_up.weight",
	"feed_forward.w2.weight": "ffn_down.weight",
	"attention_norm.weight":  "attn_norm.weight",
	"ffn_norm.weight":        "ffn_norm.weight",
}

// mistralTensorName maps a name of Mistral's consolidated format to the
// engine's name.
//
// No RoPE permutation is needed for this format. mistral-src applies RoPE by
// viewing each head as complex numbers over consecutive pairs
// (view_as_complex on a (…, hd/2, 2) reshape) and multiplying pair i by
// e^(i·pos·θ^(−2i/hd)): that is exactly the pairwise rotation of
// (x[2i], x[2i+1]) the engine does. (Meta's original Llama checkpoints are
// the same; the rotate-half layout exists only because Hugging Face's
// conversion script permutes the rows, which ropeHalfToPairwise undoes.)
func mistralTensorName(name string) (engine string, layer int, ok bool) {
	switch name {
	case "tok_embeddings.weight":
		return "token_embd.weight", -1, true
	case "norm.weight":
		return "output_norm.weight", -1, true
	case "output.weight":
		return "output.weight", -1, true
	}
	return layerTensorName(name, "layers.", mistralLayerNames)
}

// layerTensorName maps prefix+"N."+suffix through suffixes to "blk.N."+engine.
// N must be a canonical decimal (no sign, no leading zeros).
func layerTensorName(name, prefix string, suffixes map[string]string) (string, int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return "", 0, false
	}
	num, suffix, ok := strings.Cut(rest, ".")
	if !ok {
		return "", 0, false
	}
	engine, ok := suffixes[suffix]
	if !ok {
		return "", 0, false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || strconv.Itoa(n) != num {
		return "", 0, false
	}
	return "blk." + num + "." + engine, n, true
}

// ropeHalfToPairwise returns the transform that turns a Hugging Face Q or K
// projection (heads·headDim rows of rowBytes bytes, RoPE pairing rows i and
// i+headDim/2 of each head: rotate_half) into the engine's layout (pairing
// rows 2i and 2i+1). Within each head, new row 2i is old row i and new row
// 2i+1 is old row i+headDim/2. Rotate-half turns dims (i, i+hd/2) by
// pos·θ^(−2i/hd) and pairwise turns dims (2i, 2i+1) by the same angle, so
// the pairwise rotation of the permuted output is the permuted rotate-half
// rotation of the original; Q and K get the same permutation, so every q·k
// score is unchanged (TestRopePermutationProof checks this numerically).
//
// It runs when the engine asks for the tensor's bytes, so only one Q or K
// matrix is ever copied at a time.
func ropeHalfToPairwise(name string, heads, headDim, rowBytes int) func(raw []byte) ([]byte, error) {
	return func(raw []byte) ([]byte, error) {
		if headDim <= 0 || headDim%2 != 0 || heads <= 0 || rowBytes <= 0 {
			return nil, fmt.Errorf("RoPE permutation of %q: bad geometry: %d heads of %d rows of %d bytes", name, heads, headDim, rowBytes)
		}
		if len(raw) != heads*headDim*rowBytes {
			return nil, fmt.Errorf("RoPE permutation of %q: %d bytes, want %d heads × %d rows × %d bytes", name, len(raw), heads, headDim, rowBytes)
		}
		out := make([]byte, len(raw))
		permuteRopeRows(out, raw, heads, headDim, rowBytes)
		return out, nil
	}
}

// permuteRopeRows writes src's rows to dst in pairwise order (see
// ropeHalfToPairwise). dst and src must not overlap.
func permuteRopeRows(dst, src []byte, heads, headDim, rowBytes int) {
	half := headDim / 2
	for h := 0; h < heads; h++ {
		base := h * headDim
		for i := 0; i < half; i++ {
			lo := (base + i) * rowBytes
			hi := (base + i + half) * rowBytes
			copy(dst[(base+2*i)*rowBytes:(base+2*i+1)*rowBytes], src[lo:lo+rowBytes])
			copy(dst[(base+2*i+1)*rowBytes:(base+2*i+2)*rowBytes], src[hi:hi+rowBytes])
		}
	}
}
