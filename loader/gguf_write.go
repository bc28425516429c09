package loader

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// GGUFWriter builds a GGUF file. Metadata and tensor descriptions are
// collected first; tensor data is produced only while WriteTo runs, tensor
// by tensor, so a model far larger than memory can be streamed to disk.
//
// The output is deterministic: the same calls give the same bytes.
type GGUFWriter struct {
	// Version is the GGUF version written: 3 (default) or 2.
	Version uint32

	meta    Metadata
	tensors []writerTensor
	names   map[string]bool
}

type writerTensor struct {
	name  string
	typ   DType
	shape []uint64
	size  uint64
	// write emits exactly size bytes of data.
	write func(w io.Writer) error
}

// NewGGUFWriter returns an empty version-3 writer.
func NewGGUFWriter() *GGUFWriter {
	return &GGUFWriter{Version: 3, names: map[string]bool{}}
}

// Set stores a metadata value; setting an existing key replaces its value
// in place. general.alignment, when set, must be a nonzero power of two and
// controls the data alignment (default 32).
func (w *GGUFWriter) Set(key string, v Value) error {
	if key == "" {
		return errors.New("loader: gguf writer: empty metadata key")
	}
	if err := checkValue(v, 0); err != nil {
		return fmt.Errorf("loader: gguf writer: metadata %q: %w", key, err)
	}
	if key == "general.alignment" {
		a, ok := v.Uint()
		if !ok || a == 0 || a&(a-1) != 0 || a > maxAlignment {
			return fmt.Errorf("loader: gguf writer: general.alignment %v is not a power of two from 1 to %d", v.Data, maxAlignment)
		}
	}
	for i := range w.meta {
		if w.meta[i].Key == key {
			w.meta[i].Value = v
			return nil
		}
	}
	w.meta = append(w.meta, KV{Key: key, Value: v})
	return nil
}

// SetValue is Set(key, NewValue(x)): w.SetValue("llama.block_count", uint32(32)).
func (w *GGUFWriter) SetValue(key string, x any) error {
	v, err := NewValue(x)
	if err != nil {
		return fmt.Errorf("loader: gguf writer: metadata %q: %w", key, err)
	}
	return w.Set(key, v)
}

// alignment is general.alignment or the default.
func (w *GGUFWriter) alignment() uint64 {
	if a, ok := w.meta.Uint("general.alignment"); ok {
		return a
	}
	return defaultAlignment
}

// addTensor checks a tensor description and computes its size.
func (w *GGUFWriter) addTensor(name string, t DType, shape []uint64) (writerTensor, error) {
	wt := writerTensor{name: name, typ: t, shape: append([]uint64(nil), shape...)}
	switch {
	case name == "":
		return wt, errors.New("loader: gguf writer: empty tensor name")
	case w.names[name]:
		return wt, fmt.Errorf("loader: gguf writer: duplicate tensor %q", name)
	case !t.Known():
		return wt, fmt.Errorf("loader: gguf writer: tensor %q: %w", name, t.unsupported())
	case len(shape) == 0 || len(shape) > maxDims:
		return wt, fmt.Errorf("loader: gguf writer: tensor %q: %d dimensions, want 1 to %d", name, len(shape), maxDims)
	case shape[0]%t.BlockSize() != 0:
		return wt, fmt.Errorf("loader: gguf writer: tensor %q: rows of %d elements are not whole %s blocks of %d", name, shape[0], t, t.BlockSize())
	}
	n, err := shapeElements(shape)
	if err != nil {
		return wt, fmt.Errorf("loader: gguf writer: tensor %q: shape %v: %w", name, shape, err)
	}
	if wt.size, err = t.RowBytes(n); err != nil {
		return wt, fmt.Errorf("loader: gguf writer: tensor %q: %w", name, err)
	}
	return wt, nil
}

func (w *GGUFWriter) push(wt writerTensor) {
	if w.names == nil {
		w.names = map[string]bool{}
	}
	w.names[wt.name] = true
	w.tensors = append(w.tensors, wt)
}

// AddTensor adds a tensor given as float32 values (len = product of shape),
// converted to t (F32, F16, BF16, Q8_0 or Q4_0) when written. The slice is
// kept until WriteTo and must not change before then.
func (w *GGUFWriter) AddTensor(name string, t DType, shape []uint64, data []float32) error {
	wt, err := w.addTensor(name, t, shape)
	if err != nil {
		return err
	}
	if !canQuantize(t) {
		return fmt.Errorf("loader: gguf writer: tensor %q: cannot quantize to %w", name, t.unsupported())
	}
	if n, _ := shapeElements(shape); uint64(len(data)) != n {
		return fmt.Errorf("loader: gguf writer: tensor %q: shape %v holds %d elements, got %d", name, shape, n, len(data))
	}
	rowLen := int(shape[0])
	wt.write = func(out io.Writer) error {
		return writeRows(out, t, rowLen, len(data)/max(rowLen, 1), func(row int, dst []float32) {
			copy(dst, data[row*rowLen:])
		})
	}
	w.push(wt)
	return nil
}

// AddTensorBytes adds a tensor whose data is already encoded as t; len(raw)
// must be exactly its storage size. Any known type may be written this way.
func (w *GGUFWriter) AddTensorBytes(name string, t DType, shape []uint64, raw []byte) error {
	wt, err := w.addTensor(name, t, shape)
	if err != nil {
		return err
	}
	if uint64(len(raw)) != wt.size {
		return fmt.Errorf("loader: gguf writer: tensor %q: %s %v takes %d bytes, got %d", name, t, shape, wt.size, len(raw))
	}
	wt.write = func(out io.Writer) error {
		_, err := out.Write(raw)
		return err
	}
	w.push(wt)
	return nil
}

// AddTensorRows adds a tensor whose float32 rows (shape[0] elements each)
// are generated at write time by fill, then converted to t (F32, F16, BF16,
// Q8_0 or Q4_0). fill is called once per row from several goroutines at
// once, so it must be safe for concurrent use and should depend only on its
// arguments for the output to be deterministic.
func (w *GGUFWriter) AddTensorRows(name string, t DType, shape []uint64, fill func(row int, dst []float32)) error {
	wt, err := w.addTensor(name, t, shape)
	if err != nil {
		return err
	}
	if !canQuantize(t) {
		return fmt.Errorf("loader: gguf writer: tensor %q: cannot quantize to %w", name, t.unsupported())
	}
	n, _ := shapeElements(shape)
	rowLen := shape[0]
	if rowLen > math.MaxInt32 || n/max(rowLen, 1) > math.MaxInt32 {
		return fmt.Errorf("loader: gguf writer: tensor %q: shape %v too large to generate", name, shape)
	}
	rows := 0
	if rowLen > 0 {
		rows = int(n / rowLen)
	}
	wt.write = func(out io.Writer) error { return writeRows(out, t, int(rowLen), rows, fill) }
	w.push(wt)
	return nil
}

// AddTensorStream adds a tensor of type t whose encoded bytes are written
// by write at write time; it must write exactly the tensor's storage size.
func (w *GGUFWriter) AddTensorStream(name string, t DType, shape []uint64, write func(io.Writer) error) error {
	wt, err := w.addTensor(name, t, shape)
	if err != nil {
		return err
	}
	size := wt.size
	wt.write = func(out io.Writer) error {
		cw := &countingWriter{w: out}
		if err := write(cw); err != nil {
			return err
		}
		if cw.n != int64(size) {
			return fmt.Errorf("wrote %d bytes, want %d", cw.n, size)
		}
		return nil
	}
	w.push(wt)
	return nil
}

// writeRows generates rows in parallel batches, converts them to t and
// writes them in order. Memory use is one batch (about 4 MiB of output).
func writeRows(out io.Writer, t DType, rowLen, rows int, fill func(row int, dst []float32)) error {
	if rows == 0 || rowLen == 0 {
		return nil
	}
	rb, _ := t.RowBytes(uint64(rowLen))
	rowBytes := int(rb)
	batch := max(1, min(rows, (4<<20)/max(rowBytes, 1)))
	buf := make([]byte, batch*rowBytes)
	workers := max(1, min(runtime.GOMAXPROCS(0), batch))
	scratch := make([][]float32, workers)
	for i := range scratch {
		scratch[i] = make([]float32, rowLen)
	}
	for r0 := 0; r0 < rows; r0 += batch {
		n := min(batch, rows-r0)
		var next atomic.Int64
		var wg sync.WaitGroup
		for wi := 0; wi < workers; wi++ {
			wg.Go(func() {
				dst := scratch[wi]
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					clear(dst)
					fill(r0+i, dst)
					quantizeInto(t, dst, buf[i*rowBytes:(i+1)*rowBytes])
				}
			})
		}
		wg.Wait()
		if _, err := out.Write(buf[:n*rowBytes]); err != nil {
			return err
		}
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// WriteTo writes the whole file: header, metadata, tensor infos, then each
// tensor's data aligned to general.alignment (default 32) and padded at the
// end, as llama.cpp's writer does.
func (w *GGUFWriter) WriteTo(dst io.Writer) (int64, error) {
	if w.Version != 2 && w.Version != 3 {
		return 0, fmt.Errorf("loader: gguf writer: version %d, want 2 or 3", w.Version)
	}
	align := w.alignment()
	cw := &countingWriter{w: dst}
	bw := bufio.NewWriterSize(cw, 1<<20)
	e := &ggufEncoder{w: bw}
	e.raw([]byte(ggufMagic))
	e.u32(w.Version)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(w.meta)))
	for _, kv := range w.meta {
		e.str(kv.Key)
		e.u32(uint32(kv.Value.Type))
		e.value(kv.Value)
	}
	var rel uint64
	offsets := make([]uint64, len(w.tensors))
	for i, t := range w.tensors {
		offsets[i] = rel
		e.str(t.name)
		e.u32(uint32(len(t.shape)))
		for _, d := range t.shape {
			e.u64(d)
		}
		e.u32(uint32(t.typ))
		e.u64(rel)
		next, err := alignUp(rel+t.size, align)
		if err != nil {
			return cw.n, fmt.Errorf("loader: gguf writer: tensor %q: %w", t.name, err)
		}
		rel = next
	}
	if e.err != nil {
		return cw.n, fmt.Errorf("loader: gguf writer: %w", e.err)
	}
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("loader: gguf writer: %w", err)
	}
	headerEnd := uint64(cw.n)
	dataStart, err := alignUp(headerEnd, align)
	if err != nil {
		return cw.n, fmt.Errorf("loader: gguf writer: %w", err)
	}
	if len(w.tensors) > 0 { // a file without tensors has no data section
		e.zeros(dataStart - headerEnd)
	}
	for i, t := range w.tensors {
		if e.err != nil {
			break
		}
		if err := t.write(bw); err != nil {
			return cw.n, fmt.Errorf("loader: gguf writer: tensor %q: %w", t.name, err)
		}
		end := offsets[i] + t.size
		pad, _ := alignUp(end, align)
		e.zeros(pad - end)
	}
	if e.err == nil {
		e.err = bw.Flush()
	}
	if e.err != nil {
		return cw.n, fmt.Errorf("loader: gguf writer: %w", e.err)
	}
	return cw.n, nil
}

// WriteFile writes the file to path via a temporary file in the same
// directory, renamed into place only when complete.
func (w *GGUFWriter) WriteFile(path string) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("loader: gguf writer: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = w.WriteTo(tmp); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil { // CreateTemp makes it 0600
		return fmt.Errorf("loader: gguf writer: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("loader: gguf writer: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("loader: gguf writer: %w", err)
	}
	return nil
}

// ggufEncoder writes little-endian GGUF primitives and keeps the first error.
type ggufEncoder struct {
	w   io.Writer
	err error
	buf [8]byte
}

func (e *ggufEncoder) raw(b []byte) {
	if e.err == nil && len(b) > 0 {
		_, e.err = e.w.Write(b)
	}
}

var zeroPage [4096]byte

// zeros writes n zero bytes (alignment padding).
func (e *ggufEncoder) zeros(n uint64) {
	for n > 0 && e.err == nil {
		k := min(n, uint64(len(zeroPage)))
		e.raw(zeroPage[:k])
		n -= k
	}
}

func (e *ggufEncoder) u8(v uint8) { e.buf[0] = v; e.raw(e.buf[:1]) }
func (e *ggufEncoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.buf[:], v)
	e.raw(e.buf[:2])
}
func (e *ggufEncoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:], v)
	e.raw(e.buf[:4])
}
func (e *ggufEncoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:], v)
	e.raw(e.buf[:8])
}
func (e *ggufEncoder) str(s string) {
	e.u64(uint64(len(s)))
	e.raw([]byte(s))
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// value encodes v's payload (its type tag is written by the caller). v has
// passed checkValue.
func (e *ggufEncoder) value(v Value) {
	switch x := v.Data.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case bool:
		e.u8(boolByte(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	case string:
		e.str(x)
	default:
		e.u32(uint32(v.Elem))
		e.u64(uint64(v.Len()))
		e.array(x)
	}
}

func (e *ggufEncoder) array(data any) {
	switch x := data.(type) {
	case []uint8:
		e.raw(x)
	case []int8:
		for _, v := range x {
			e.u8(uint8(v))
		}
	case []bool:
		for _, v := range x {
			e.u8(boolByte(v))
		}
	case []uint16:
		for _, v := range x {
			e.u16(v)
		}
	case []int16:
		for _, v := range x {
			e.u16(uint16(v))
		}
	case []uint32:
		for _, v := range x {
			e.u32(v)
		}
	case []int32:
		for _, v := range x {
			e.u32(uint32(v))
		}
	case []float32:
		for _, v := range x {
			e.u32(math.Float32bits(v))
		}
	case []uint64:
		for _, v := range x {
			e.u64(v)
		}
	case []int64:
		for _, v := range x {
			e.u64(uint64(v))
		}
	case []float64:
		for _, v := range x {
			e.u64(math.Float64bits(v))
		}
	case []string:
		for _, v := range x {
			e.str(v)
		}
	case []Value:
		for _, v := range x {
			e.value(v)
		}
	}
}

// checkValue verifies that v.Data's Go type matches v.Type (and v.Elem).
func checkValue(v Value, depth int) error {
	if depth >= maxArrayDepth {
		return fmt.Errorf("arrays nested deeper than %d", maxArrayDepth)
	}
	want, err := NewValue(v.Data)
	if err != nil {
		return err
	}
	if want.Type != v.Type || (v.Type == TypeArray && want.Elem != v.Elem) {
		return fmt.Errorf("value of Go type %T does not match GGUF type %s (elem %s)", v.Data, v.Type, v.Elem)
	}
	if vs, ok := v.Data.([]Value); ok {
		for i, e := range vs {
			if err := checkValue(e, depth+1); err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
		}
	}
	return nil
}

// WriteSynthetic writes a complete model of cfg.Arch (llama, mistral,
// qwen2, qwen3, gemma2, gemma3 or cohere2) with random weights to path:
// every tensor Open requires (plus an untied output.weight, except for
// gemma2 and cohere2, whose output is always token_embd), matrices in type
// t (F32, F16, BF16, Q8_0 or Q4_0; each matrix row length must then be a
// whole number of blocks), norms, biases and rope_freqs.weight in F32, and
// SentencePiece-style tokenizer metadata. The metadata keys are the ones
// llama.cpp reads for the arch. tokens is the vocabulary; nil gives a
// generated one (see SyntheticVocab) of cfg.VocabSize entries.
//
// RopeFreqFactors (llama and mistral) are written as rope_freqs.weight,
// never as llama3 rope.scaling keys: llama.cpp loads the tensor and aborts
// on rope.scaling.type "llama3". For llama.cpp's sake a qwen2 or qwen3
// model must have RopeDim = HeadDim, and a qwen2 one heads·HeadDim = Dim
// (its attn_q and attn_output are {dim, dim}); otherwise WriteSynthetic
// refuses it.
//
// Zero fields of cfg take defaults: Arch "llama", NumKVHeads = NumHeads,
// HeadDim = Dim/NumHeads, RopeDim = HeadDim, RopeTheta 10000, NormEps 1e-5,
// ContextLength 2048; for gemma2 Window 4096, AttnSoftcap 50 and
// FinalSoftcap 30; for cohere2 Window 4096 and LogitScale 1. qwen2 and
// qwen3 have no window (llama.cpp reads none): Window is 0. Nil Layers
// follow the arch's rule: llama/mistral give every layer Window; gemma2,
// gemma3 and cohere2 make every 2nd, 6th and 4th layer global (gemma3 only
// with Window > 0), with local RoPE base 10000 for gemma3 and no RoPE on
// cohere2's global layers. What the arch fixes (Rope, Norm, Act,
// EmbedScale, PostNorms, QKNorm, Parallel, AttnScale, QKVBias, and the
// soft-caps and logit scale an arch lacks) is set to the arch's value;
// RopeFreqFactors are rounded to float32, as the file stores them, and
// dropped on an arch that takes none. Layers that the
// arch's default rule does not give are written as
// <arch>.attention.sliding_window_pattern; layers the metadata cannot
// express (two local windows, say) are an error. Open then reads back
// exactly this Config.
//
// The weights depend only on (cfg, t, seed): the same arguments give the
// same file byte for byte. Values are scaled so activations stay near unit
// size: embeddings uniform in [−1, 1) (divided by EmbedScale for Gemma,
// which multiplies them by it), a matrix with rows of n elements
// uniform in ±√(3/n), norm weights 1 ± 0.1, biases uniform in ±0.5. The
// file is streamed, so even a
// Mistral-7B shape needs only a few MiB of memory.
func WriteSynthetic(path string, cfg Config, t DType, seed int64, tokens []string) error {
	w, err := newSyntheticWriter(cfg, t, seed, tokens)
	if err != nil {
		return err
	}
	return w.WriteFile(path)
}

// WriteSyntheticMix is WriteSynthetic with each matrix in the type that
// llama.cpp's quantizer gives it in mix (QuantMix.TensorType): a Q4_K_M
// file holds Q4_K, with Q6_K for output.weight and for attn_v and ffn_down
// in the layers llama.cpp picks.
func WriteSyntheticMix(path string, cfg Config, mix QuantMix, seed int64, tokens []string) error {
	w, err := newSyntheticMixWriter(cfg, mix, seed, tokens)
	if err != nil {
		return err
	}
	return w.WriteFile(path)
}

// SyntheticWriter prepares WriteSynthetic's file without writing it, for
// a test to add tensors or keys first.
func SyntheticWriter(cfg Config, t DType, seed int64, tokens []string) (*GGUFWriter, error) {
	return newSyntheticWriter(cfg, t, seed, tokens)
}

// newSyntheticWriter prepares WriteSynthetic's file without writing it
// (tests edit it first).
func newSyntheticWriter(cfg Config, t DType, seed int64, tokens []string) (*GGUFWriter, error) {
	if !canQuantize(t) {
		return nil, fmt.Errorf("loader: synthetic model: cannot quantize to %w", t.unsupported())
	}
	return newSyntheticTypedWriter(cfg, func(string, uint64) (DType, error) { return t, nil }, t.String(), seed, tokens)
}

// newSyntheticMixWriter prepares WriteSyntheticMix's file.
func newSyntheticMixWriter(cfg Config, mix QuantMix, seed int64, tokens []string) (*GGUFWriter, error) {
	if _, _, ok := mix.base(); !ok {
		return nil, fmt.Errorf("loader: synthetic model: unknown quant mix %q (known: %s)", mix, mixList())
	}
	c := syntheticDefaults(cfg)
	shape := MixShape{Layers: c.NumLayers, Heads: c.NumHeads, KVHeads: c.NumKVHeads, Tied: c.tiedOutput()}
	typeOf := func(name string, cols uint64) (DType, error) {
		t, err := mix.TensorType(name, cols, shape)
		if err == nil && !canQuantize(t) {
			err = fmt.Errorf("cannot quantize %s to %w", name, t.unsupported())
		}
		return t, err
	}
	return newSyntheticTypedWriter(cfg, typeOf, string(mix), seed, tokens)
}

// newSyntheticTypedWriter prepares a synthetic file whose matrices have the
// types typeOf gives (by tensor name and row length).
func newSyntheticTypedWriter(cfg Config, typeOf func(name string, cols uint64) (DType, error), desc string, seed int64, tokens []string) (*GGUFWriter, error) {
	cfg = syntheticDefaults(cfg)
	if tokens != nil {
		cfg.VocabSize = len(tokens)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("loader: synthetic model: %w", err)
	}
	if err := llamaCppShapes(cfg); err != nil {
		return nil, fmt.Errorf("loader: synthetic model: %w", err)
	}
	if tokens == nil {
		tokens = SyntheticVocab(cfg.VocabSize)
	}
	w := NewGGUFWriter()
	a := cfg.Arch + "."
	set := func(k string, x any) {
		if err := w.SetValue(k, x); err != nil {
			panic(err) // every value here has a valid Go type
		}
	}
	set("general.architecture", cfg.Arch)
	set("general.name", "vkrun synthetic")
	set("general.description", fmt.Sprintf("random weights, seed %d, %s", seed, desc))
	set(a+"context_length", uint32(cfg.ContextLength))
	set(a+"embedding_length", uint32(cfg.Dim))
	set(a+"block_count", uint32(cfg.NumLayers))
	set(a+"feed_forward_length", uint32(cfg.FFNDim))
	set(a+"attention.head_count", uint32(cfg.NumHeads))
	set(a+"attention.head_count_kv", uint32(cfg.NumKVHeads))
	set(a+"attention.key_length", uint32(cfg.HeadDim))
	set(a+"attention.value_length", uint32(cfg.HeadDim))
	set(a+"rope.dimension_count", uint32(cfg.RopeDim))
	set(a+"rope.freq_base", float32(cfg.RopeTheta))
	if err := setArchKeys(w, cfg); err != nil {
		return nil, fmt.Errorf("loader: synthetic model: %w", err)
	}
	scores := make([]float32, len(tokens))
	types := make([]int32, len(tokens))
	for i, tok := range tokens {
		types[i] = syntheticTokenType(i, tok)
		if types[i] == 1 {
			scores[i] = -float32(i)
		}
	}
	set("tokenizer.ggml.model", "llama")
	set("tokenizer.ggml.tokens", tokens)
	set("tokenizer.ggml.scores", scores)
	set("tokenizer.ggml.token_type", types)
	set("tokenizer.ggml.unknown_token_id", uint32(0))
	set("tokenizer.ggml.bos_token_id", uint32(1))
	set("tokenizer.ggml.eos_token_id", uint32(2))
	set("tokenizer.ggml.add_bos_token", true)
	set("tokenizer.ggml.add_eos_token", false)

	for i, s := range cfg.tensorSpecs() {
		if s.forbidden != "" {
			continue
		}
		if s.name == ropeFreqsTensor {
			factors := make([]float32, len(cfg.RopeFreqFactors))
			for j, f := range cfg.RopeFreqFactors {
				factors[j] = float32(f)
			}
			if err := w.AddTensor(s.name, F32, s.shape, factors); err != nil {
				return nil, fmt.Errorf("loader: synthetic model: %w", err)
			}
			continue
		}
		kind := weightMatrix
		switch {
		case strings.HasSuffix(s.name, ".bias"):
			kind = weightBias
		case s.f32:
			kind = weightNorm
		case s.name == "token_embd.weight":
			kind = weightEmbedding
		}
		dt := F32
		if !s.f32 {
			var err error
			if dt, err = typeOf(s.name, s.shape[0]); err != nil {
				return nil, fmt.Errorf("loader: synthetic model: %w", err)
			}
		}
		fill := syntheticFill(seed, i, s.shape[0], kind)
		if kind == weightEmbedding && cfg.EmbedScale != 0 {
			// Gemma multiplies its embeddings by √dim: store them that much
			// smaller, as real files do, so that the (tied) classifier's
			// logits stay near unit size instead of echoing the input token.
			fill = scaledFill(fill, float32(1/cfg.EmbedScale))
		}
		if err := w.AddTensorRows(s.name, dt, s.shape, fill); err != nil {
			return nil, fmt.Errorf("loader: synthetic model: %w", err)
		}
	}
	return w, nil
}

// llamaCppShapes refuses the shapes llama.cpp cannot load for cfg.Arch
// (checked for the qwen archs; the others keep what they allowed before):
// its qwen2 and qwen3 graphs assert RopeDim = HeadDim, and its qwen2 loader
// makes attn_q and attn_output {dim, dim}.
func llamaCppShapes(cfg Config) error {
	switch cfg.Arch {
	case "qwen2", "qwen3":
		if cfg.RopeDim != cfg.HeadDim {
			return fmt.Errorf("%s: rope dim %d differs from head dim %d, which llama.cpp's %s refuses", cfg.Arch, cfg.RopeDim, cfg.HeadDim, cfg.Arch)
		}
		if cfg.Arch == "qwen2" && cfg.NumHeads*cfg.HeadDim != cfg.Dim {
			return fmt.Errorf("qwen2: %d heads of %d are not dim %d, which llama.cpp's qwen2 needs", cfg.NumHeads, cfg.HeadDim, cfg.Dim)
		}
	}
	return nil
}

// SyntheticConfig is cfg with WriteSynthetic's defaults and the fields its
// arch fixes filled in: the Config that Open reads back from the file
// WriteSynthetic(path, cfg, …) writes (Layers included).
func SyntheticConfig(cfg Config) Config { return syntheticDefaults(cfg) }

// syntheticDefaults fills the zero fields of c as WriteSynthetic documents,
// and sets the fields c.Arch fixes, so that the result is the Config Open
// reads back from the file.
func syntheticDefaults(c Config) Config {
	if c.Arch == "" {
		c.Arch = "llama"
	}
	if c.NumKVHeads == 0 {
		c.NumKVHeads = c.NumHeads
	}
	if c.HeadDim == 0 && c.NumHeads > 0 {
		c.HeadDim = c.Dim / c.NumHeads
	}
	if c.RopeDim == 0 {
		c.RopeDim = c.HeadDim
	}
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
	if c.NormEps == 0 {
		c.NormEps = 1e-5
	}
	if c.ContextLength == 0 {
		c.ContextLength = 2048
	}
	if c.Window == 0 {
		for _, s := range c.Layers {
			if s.Window > 0 {
				c.Window = s.Window
				break
			}
		}
	}
	// What the arch fixes: the file cannot say otherwise.
	c.Rope, c.Norm, c.Act = RopePairwise, NormRMS, ActSiLU
	c.EmbedScale, c.AttnScale = 0, 0
	c.PostNorms, c.QKNorm, c.Parallel, c.QKVBias = false, false, false, false
	if c.RopeFreqFactors != nil && archs[c.Arch].ropeFreqs {
		f := make([]float64, len(c.RopeFreqFactors))
		for i, x := range c.RopeFreqFactors {
			f[i] = float64(float32(x))
		}
		c.RopeFreqFactors = f
	} else {
		c.RopeFreqFactors = nil
	}
	switch c.Arch {
	case "qwen2", "qwen3":
		c.Rope = RopeHalf
		c.QKVBias = c.Arch == "qwen2"
		c.QKNorm = c.Arch == "qwen3"
		c.Window = 0 // llama.cpp reads no window for these archs
		c.AttnSoftcap, c.FinalSoftcap, c.LogitScale = 0, 0, 0
	case "gemma2", "gemma3":
		c.Rope, c.Act = RopeHalf, ActGELUTanh
		c.EmbedScale = math.Sqrt(float64(c.Dim))
		c.PostNorms = true
		c.AttnScale = gemmaQueryScale(c)
		c.LogitScale = 0
		if c.Arch == "gemma2" {
			if c.Window == 0 {
				c.Window = 4096
			}
			if c.AttnSoftcap == 0 {
				c.AttnSoftcap = 50
			}
			if c.FinalSoftcap == 0 {
				c.FinalSoftcap = 30
			}
		} else {
			c.QKNorm = true
			c.AttnSoftcap = 0
		}
	case "cohere2":
		c.Norm, c.Parallel = NormLayer, true
		c.AttnSoftcap, c.FinalSoftcap = 0, 0
		if c.Window == 0 {
			c.Window = 4096
		}
		if c.LogitScale == 0 {
			c.LogitScale = 1
		}
	default:
		c.AttnSoftcap, c.FinalSoftcap, c.LogitScale = 0, 0, 0
	}
	if c.Layers != nil {
		c.Layers = append([]LayerSpec(nil), c.Layers...)
		return c
	}
	if c.NumLayers <= 0 || c.NumLayers > maxLayers {
		return c // Validate reports it
	}
	// The layers the arch's default pattern gives (see readLayers).
	def := archs[c.Arch]
	local := swaPattern(0, c.NumLayers)
	if def.period > 0 {
		local = swaPattern(def.period, c.NumLayers)
	}
	localSpec := LayerSpec{Window: c.Window, RopeTheta: c.RopeTheta, RopeScale: 1}
	globalSpec := LayerSpec{RopeTheta: c.RopeTheta, RopeScale: 1}
	switch c.Arch {
	case "gemma3":
		localSpec.RopeTheta = 10000
		if c.Window == 0 {
			local = make([]bool, c.NumLayers)
		}
	case "cohere2":
		globalSpec.RopeTheta = 0
	}
	c.Layers = make([]LayerSpec, c.NumLayers)
	for l := range c.Layers {
		if local[l] {
			c.Layers[l] = localSpec
		} else {
			c.Layers[l] = globalSpec
		}
	}
	return c
}

// setArchKeys writes the metadata keys llama.cpp reads for cfg.Arch beyond
// the ones every arch shares, and, when the layers differ from what the
// arch's default rule gives, <arch>.attention.sliding_window_pattern. It
// checks that the file reads back as cfg.Layers.
func setArchKeys(w *GGUFWriter, cfg Config) error {
	a := cfg.Arch + "."
	set := func(k string, x any) {
		if err := w.SetValue(k, x); err != nil {
			panic(err) // every value here has a valid Go type
		}
	}
	// The RoPE of the first local and the first global layer: the file has
	// one key for each.
	local, global := LayerSpec{RopeTheta: cfg.RopeTheta, RopeScale: 1}, LayerSpec{RopeTheta: cfg.RopeTheta, RopeScale: 1}
	hasLocal, hasGlobal := false, false
	for _, s := range cfg.Layers {
		if s.Window > 0 && !hasLocal {
			local, hasLocal = s, true
		}
		if s.Window == 0 && !hasGlobal {
			global, hasGlobal = s, true
		}
	}
	switch cfg.Arch {
	case "llama", "mistral":
		set(a+"attention.layer_norm_rms_epsilon", float32(cfg.NormEps))
		if cfg.Window > 0 {
			set(a+"attention.sliding_window", uint32(cfg.Window))
		}
	case "qwen2", "qwen3":
		set(a+"attention.layer_norm_rms_epsilon", float32(cfg.NormEps))
	case "gemma2":
		set(a+"attention.layer_norm_rms_epsilon", float32(cfg.NormEps))
		set(a+"attention.sliding_window", uint32(cfg.Window))
		set(a+"attn_logit_softcapping", float32(cfg.AttnSoftcap))
		set(a+"final_logit_softcapping", float32(cfg.FinalSoftcap))
		if hasLocal && float32(local.RopeTheta) != float32(cfg.RopeTheta) {
			set(a+"rope.freq_base_swa", float32(local.RopeTheta))
		}
	case "gemma3":
		set(a+"attention.layer_norm_rms_epsilon", float32(cfg.NormEps))
		if cfg.Window > 0 {
			set(a+"attention.sliding_window", uint32(cfg.Window))
			theta := 10000.0
			if hasLocal {
				theta = local.RopeTheta
			}
			set(a+"rope.freq_base_swa", float32(theta))
		}
		if cfg.FinalSoftcap > 0 {
			set(a+"final_logit_softcapping", float32(cfg.FinalSoftcap))
		}
		if hasGlobal && global.RopeScale != 1 {
			set(a+"rope.scaling.type", "linear")
			set(a+"rope.scaling.factor", float32(global.RopeScale))
		}
	case "cohere2":
		set(a+"attention.layer_norm_epsilon", float32(cfg.NormEps))
		set(a+"attention.sliding_window", uint32(cfg.Window))
		set(a+"logit_scale", float32(cfg.LogitScale))
	}
	if sameLayers(w.meta, cfg) {
		return nil
	}
	flags := make([]bool, cfg.NumLayers)
	for l, s := range cfg.Layers {
		flags[l] = s.Window > 0
	}
	key := a + "attention.sliding_window_pattern"
	if n, ok := patternPeriod(flags); ok && archs[cfg.Arch].period > 0 {
		// llama.cpp reads these archs' pattern as a period.
		set(key, uint32(n))
	} else {
		set(key, flags)
	}
	if !sameLayers(w.meta, cfg) {
		back, err := configFromMetadata(w.meta)
		if err != nil {
			return err
		}
		return fmt.Errorf("%s metadata cannot express the layers %v (the file would read back as %v)", cfg.Arch, cfg.Layers, back.Layers)
	}
	return nil
}

// sameLayers reports whether metadata m reads back as cfg's layers (RoPE
// compared in float32, as the file stores it).
func sameLayers(m Metadata, cfg Config) bool {
	back, err := configFromMetadata(m)
	if err != nil || len(back.Layers) != len(cfg.Layers) {
		return false
	}
	for l, s := range cfg.Layers {
		b := back.Layers[l]
		if b.Window != s.Window || float32(b.RopeTheta) != float32(s.RopeTheta) || float32(b.RopeScale) != float32(s.RopeScale) {
			return false
		}
	}
	return true
}

// patternPeriod finds a period n ≥ 1 whose swaPattern is local.
func patternPeriod(local []bool) (int, bool) {
	for n := 1; n <= len(local)+1; n++ {
		if slices.Equal(swaPattern(n, len(local)), local) {
			return n, true
		}
	}
	return 0, false
}

type weightKind int

const (
	weightMatrix weightKind = iota
	weightEmbedding
	weightNorm
	weightBias
)

// syntheticFill returns the row generator of tensor number index. Each row
// has its own PCG stream keyed by (seed, index, row), so rows can be made
// in any order and on any goroutine.
func syntheticFill(seed int64, index int, rowLen uint64, kind weightKind) func(row int, dst []float32) {
	scale := float32(math.Sqrt(3 / float64(max(rowLen, 1))))
	return func(row int, dst []float32) {
		r := newPCG(uint64(seed), uint64(index)<<32|uint64(row))
		for i := range dst {
			u := r.float() // [0, 1)
			switch kind {
			case weightNorm:
				dst[i] = 1 + 0.2*(u-0.5)
			case weightBias:
				dst[i] = u - 0.5
			case weightEmbedding:
				dst[i] = 2*u - 1
			default:
				dst[i] = scale * (2*u - 1)
			}
		}
	}
}

// scaledFill is fill with every value multiplied by k.
func scaledFill(fill func(row int, dst []float32), k float32) func(row int, dst []float32) {
	return func(row int, dst []float32) {
		fill(row, dst)
		for i := range dst {
			dst[i] *= k
		}
	}
}

// pcg is a small PCG-XSH-RR generator: fast, seedable per row, and fixed
// here so synthetic files never change with the Go release.
type pcg struct{ state, inc uint64 }

func newPCG(seed, stream uint64) *pcg {
	p := &pcg{inc: stream<<1 | 1}
	p.next()
	p.state += seed
	p.next()
	return p
}

func (p *pcg) next() uint32 {
	old := p.state
	p.state = old*6364136223846793005 + p.inc
	x := uint32(((old >> 18) ^ old) >> 27)
	rot := uint32(old >> 59)
	return x>>rot | x<<((-rot)&31)
}

// float returns a uniform float32 in [0, 1) with 24 random bits.
func (p *pcg) float() float32 { return float32(p.next()>>8) / (1 << 24) }

// SyntheticVocab returns a SentencePiece-style vocabulary of n tokens (n ≥ 3):
// "<unk>", "<s>", "</s>", then the 256 byte tokens "<0x00>"…"<0xFF>" (as
// many as fit), then "▁" and the printable ASCII characters, then
// lower-case letter strings "ab", "▁ab", … of growing length.
func SyntheticVocab(n int) []string {
	toks := make([]string, 0, n)
	add := func(s string) bool {
		if len(toks) < n {
			toks = append(toks, s)
		}
		return len(toks) < n
	}
	for _, s := range []string{"<unk>", "<s>", "</s>"} {
		add(s)
	}
	for b := 0; b < 256; b++ {
		add(fmt.Sprintf("<0x%02X>", b))
	}
	add("▁")
	for c := byte('!'); c <= '~'; c++ {
		add(string(c))
	}
	const letters = "abcdefghijklmnopqrstuvwxyz"
	for length := 2; len(toks) < n; length++ {
		idx := make([]int, length)
		for {
			b := make([]byte, length)
			for i, k := range idx {
				b[i] = letters[k]
			}
			if !add(string(b)) || !add("▁"+string(b)) {
				return toks
			}
			// odometer increment
			i := length - 1
			for i >= 0 {
				idx[i]++
				if idx[i] < len(letters) {
					break
				}
				idx[i] = 0
				i--
			}
			if i < 0 {
				break
			}
		}
	}
	return toks
}

// syntheticTokenType is the tokenizer.ggml.token_type of a SyntheticVocab
// entry: 2 unknown, 3 control, 6 byte, 1 normal.
func syntheticTokenType(i int, tok string) int32 {
	switch {
	case i == 0 && tok == "<unk>":
		return 2
	case (i == 1 && tok == "<s>") || (i == 2 && tok == "</s>"):
		return 3
	case len(tok) == 6 && tok[:3] == "<0x" && tok[5] == '>':
		return 6
	}
	return 1
}
