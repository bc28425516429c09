package loader

import (
	"errors"
	"fmt"
	"os"
)

// ErrTokenizer is wrapped by Open's error when the file's tokenizer
// metadata cannot be turned into a Tokenizer; everything else loaded. A
// caller that does not need the tokenizer can retry with WithoutTokenizer.
var ErrTokenizer = errors.New("tokenizer")

// Open opens a model: a GGUF file, or a directory holding a Hugging Face
// safetensors checkpoint (config.json, *.safetensors, tokenizer files). The
// tensors are zero-copy views into the mapped files; Close the model when
// done. Config.Layers is always filled, one spec per layer.
//
// WithWindow(w) overrides the window of every local (sliding-window) layer;
// in a model without local layers, w > 0 makes every layer local with w,
// and w == 0 makes every layer global.
func Open(path string, opts ...Option) (*Model, error) {
	o := openOptions{window: -1}
	for _, opt := range opts {
		opt(&o)
	}
	if o.window < -1 {
		return nil, fmt.Errorf("loader: %s: window %d, want >= 0 (0 = full attention)", path, o.window)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	var m *Model
	if st.IsDir() {
		m, err = openSafetensors(path, &o)
	} else {
		m, err = openGGUFModel(path, &o)
	}
	if err != nil {
		return nil, err
	}
	// Each opener applies o.window itself, before validating the config.
	if m.byName == nil {
		m.byName = make(map[string]*Tensor, len(m.Tensors))
		for _, t := range m.Tensors {
			m.byName[t.Name] = t
		}
	}
	return m, nil
}

// openGGUFModel maps a GGUF file and checks that it is a complete model of
// a supported arch.
func openGGUFModel(path string, o *openOptions) (_ *Model, err error) {
	f, err := OpenGGUF(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
		}
	}()
	m := &Model{Path: path, Format: "gguf", GGUF: f, Tensors: f.Tensors, closers: []func() error{f.Close}}
	m.byName = make(map[string]*Tensor, len(f.Tensors))
	for _, t := range f.Tensors {
		m.byName[t.Name] = t
	}
	if m.Config, err = configFromGGUF(f); err != nil {
		return nil, fmt.Errorf("loader: %s: %w", path, err)
	}
	if o.window >= 0 {
		applyWindow(&m.Config, o.window)
	}
	if err := m.Config.Validate(); err != nil {
		return nil, fmt.Errorf("loader: %s: %w", path, err)
	}
	if err := checkTensors(m.Config, m.Tensor); err != nil {
		return nil, fmt.Errorf("loader: %s: %w", path, err)
	}
	if !o.noTokens && f.Has("tokenizer.ggml.tokens") {
		tok, err := tokenizerFromGGUF(f)
		if err != nil {
			return nil, fmt.Errorf("loader: %s: %w: %w", path, ErrTokenizer, err)
		}
		m.Tokenizer = tok
	}
	return m, nil
}

// describe names a tensor for errors: `tensor "blk.0.attn_q.weight" (Q4_K,
// shape [4096 4096])`, or `(type id 99, shape [...])` for a type id ggml
// does not define.
func (t *Tensor) describe() string {
	typ := t.Type.String()
	if !t.Type.Known() {
		typ = fmt.Sprintf("type id %d", uint32(t.Type))
	}
	return fmt.Sprintf("tensor %q (%s, shape %v)", t.Name, typ, t.Shape)
}

// Tensor returns the tensor with the given name, or nil.
func (m *Model) Tensor(name string) *Tensor {
	return m.byName[name]
}

// Close releases the model's file mappings. Tensor data (Bytes) must not be
// used afterwards; it reports an error instead of faulting. Close is
// idempotent.
func (m *Model) Close() error {
	var errs []error
	for _, c := range m.closers {
		if err := c(); err != nil {
			errs = append(errs, err)
		}
	}
	m.closers = nil
	for _, t := range m.Tensors {
		t.data = nil
	}
	return errors.Join(errs...)
}

// NumElements is the product of the dimensions.
func (t *Tensor) NumElements() uint64 {
	n := uint64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Size is the tensor's storage size in bytes (0 for an unknown type).
func (t *Tensor) Size() uint64 {
	n, err := t.Type.RowBytes(t.NumElements())
	if err != nil {
		return 0
	}
	return n
}

// Bytes returns the tensor's raw data in the engine's convention: a
// zero-copy view into the mapped file, or, for tensors that need
// rearranging (RoPE-permuted Q/K of Hugging Face checkpoints), a freshly
// converted copy. The view must not be modified.
func (t *Tensor) Bytes() ([]byte, error) {
	if t.data == nil && t.Size() > 0 {
		return nil, fmt.Errorf("loader: %s: no data (model closed)", t.describe())
	}
	if t.transform != nil {
		b, err := t.transform(t.data)
		if err != nil {
			return nil, fmt.Errorf("loader: %s: %w", t.describe(), err)
		}
		return b, nil
	}
	return t.data, nil
}

// Float32s dequantises the whole tensor into a new slice (the CPU
// reference's weights). Shape is unchanged: element (i, j) of a {cols, rows}
// tensor is at j*cols + i.
func (t *Tensor) Float32s() ([]float32, error) {
	b, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	n := t.NumElements()
	if uint64(int(n)) != n || n > uint64(len(b))*8 {
		return nil, fmt.Errorf("loader: %s: %d elements do not fit in memory", t.describe(), n)
	}
	dst := make([]float32, n)
	if err := Dequantize(t.Type, b, dst); err != nil {
		return nil, fmt.Errorf("loader: %s: %w", t.describe(), err)
	}
	return dst, nil
}
