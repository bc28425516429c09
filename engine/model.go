package engine

import (
	"errors"
	"fmt"
	"math"
	"runtime"

	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/vk"
)

// Options configure Load.
type Options struct {
	// KV is the element type of the ring cache (default f16).
	KV shaders.KVType
	// Chunk is the most prompt tokens one prefill step takes (default and
	// maximum: the window).
	Chunk int
	// Context is the ring size, and so the longest sequence, of a model
	// without a sliding window (Config.Window == 0). Default: the model's
	// context length, at most 4096.
	Context int
	// Progress, when set, is called as weights are uploaded.
	Progress func(done, total uint64)
	// WG is the kernels' workgroup width (0: shaders.DefaultWG).
	WG uint32
	// Profile records GPU timestamps around every dispatch (see Session.Profile).
	Profile bool
}

// Model is a transformer resident on one device: its weights, uploaded once,
// and the kernels. Sessions share it. Its methods are safe for concurrent use.
type Model struct {
	Config loader.Config
	// Window is the ring size W: the sliding window, or Options.Context for a
	// model with full attention (which then cannot run past W positions).
	Window int
	// SlidingWindow reports whether the model itself has a window, so that
	// sequences may run past Window positions.
	SlidingWindow bool
	// Notes lists load-time conversions the user should know about.
	Notes []string

	dev       *vk.Device
	lib       *shaders.Library
	opts      Options
	w         weights
	bufs      []*vk.Buffer
	ropeFreqs []float64 // θ^(−2i/ropeDim) for i < ropeDim/2
}

// weights are the model's tensors on the device.
type weights struct {
	tokenEmbd  shaders.Weight // (vocab, dim)
	outputNorm shaders.Tensor // (dim,) f32
	output     shaders.Weight // (vocab, dim), token_embd when tied
	layers     []layerWeights
}

type layerWeights struct {
	attnNorm shaders.Tensor // (dim,) f32
	wq       shaders.Weight // (heads*headDim, dim)
	wk, wv   shaders.Weight // (kvHeads*headDim, dim)
	wo       shaders.Weight // (dim, heads*headDim)
	ffnNorm  shaders.Tensor // (dim,) f32
	wGate    shaders.Weight // (ffn, dim)
	wUp      shaders.Weight // (ffn, dim)
	wDown    shaders.Weight // (dim, ffn)
}

// Load uploads m's weights to d and builds the kernels. m may be closed
// afterwards. Running out of device memory returns an error matching
// vk.ErrOutOfDeviceMemory that names the tensor, the bytes needed and free,
// and the device.
func Load(d *vk.Device, m *loader.Model, opts Options) (*Model, error) {
	cfg := m.Config
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if cfg.RopeDim%2 != 0 || cfg.RopeDim > cfg.HeadDim || cfg.HeadDim%2 != 0 {
		return nil, fmt.Errorf("engine: head dim %d with RoPE dim %d is not supported (both must be even, rope ≤ head)", cfg.HeadDim, cfg.RopeDim)
	}
	if cfg.HeadDim > 256 {
		return nil, fmt.Errorf("engine: head dim %d exceeds the attention kernel's 256", cfg.HeadDim)
	}
	mod := &Model{Config: cfg, dev: d, opts: opts}
	for i := range cfg.RopeDim / 2 {
		mod.ropeFreqs = append(mod.ropeFreqs, math.Pow(cfg.RopeTheta, -2*float64(i)/float64(cfg.RopeDim)))
	}
	switch {
	case cfg.Window > 0:
		mod.Window, mod.SlidingWindow = cfg.Window, true
	case opts.Context > 0:
		mod.Window = opts.Context
	default:
		mod.Window = min(max(cfg.ContextLength, 1), 4096)
	}
	if opts.Chunk < 0 {
		return nil, fmt.Errorf("engine: chunk size %d", opts.Chunk)
	}
	if opts.Chunk == 0 || opts.Chunk > mod.Window {
		mod.opts.Chunk = mod.Window
	}
	mod.opts.Chunk = min(mod.opts.Chunk, maxChunk)

	lib, err := shaders.NewLibrary(d, opts.WG)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	mod.lib = lib
	if err := mod.upload(m); err != nil {
		mod.Close()
		return nil, err
	}
	return mod, nil
}

// maxChunk caps one prefill step, bounding activation memory (a chunk of C
// tokens needs C·(3·dim + 2·ffn + …) floats).
const maxChunk = 512

// Device is the device the model lives on.
func (m *Model) Device() *vk.Device { return m.dev }

// Chunk is the prefill chunk size in use.
func (m *Model) Chunk() int { return m.opts.Chunk }

// Close frees the model's device memory and kernels. Sessions must be
// closed first. Idempotent.
func (m *Model) Close() error {
	for _, b := range m.bufs {
		b.Close()
	}
	m.bufs = nil
	if m.lib != nil {
		m.lib.Close()
		m.lib = nil
	}
	return nil
}

// weightType maps a file's tensor type to the device layout it is kept in;
// ok is false when the engine has no kernel for it and converts it to F16.
func weightType(t loader.DType) (shaders.WeightType, bool) {
	switch t {
	case loader.F32:
		return shaders.WeightF32, true
	case loader.F16:
		return shaders.WeightF16, true
	case loader.Q8_0:
		return shaders.WeightQ8_0, true
	case loader.Q4_0:
		return shaders.WeightQ4_0, true
	}
	return shaders.WeightF16, false
}

type uploadJob struct {
	name       string
	t          *loader.Tensor
	rows, cols int
	vector     bool // an f32 vector (norm weight), not a matrix
	into       any  // *shaders.Weight or *shaders.Tensor
}

func (m *Model) upload(src *loader.Model) error {
	cfg := m.Config
	var jobs []uploadJob
	matrix := func(name string, rows, cols int, into *shaders.Weight) {
		jobs = append(jobs, uploadJob{name: name, t: src.Tensor(name), rows: rows, cols: cols, into: into})
	}
	vector := func(name string, n int, into *shaders.Tensor) {
		jobs = append(jobs, uploadJob{name: name, t: src.Tensor(name), rows: 1, cols: n, vector: true, into: into})
	}
	qDim, kvDim := cfg.NumHeads*cfg.HeadDim, cfg.NumKVHeads*cfg.HeadDim
	matrix("token_embd.weight", cfg.VocabSize, cfg.Dim, &m.w.tokenEmbd)
	vector("output_norm.weight", cfg.Dim, &m.w.outputNorm)
	tied := src.Tensor("output.weight") == nil
	if !tied {
		matrix("output.weight", cfg.VocabSize, cfg.Dim, &m.w.output)
	}
	m.w.layers = make([]layerWeights, cfg.NumLayers)
	for l := range m.w.layers {
		lw := &m.w.layers[l]
		p := fmt.Sprintf("blk.%d.", l)
		vector(p+"attn_norm.weight", cfg.Dim, &lw.attnNorm)
		matrix(p+"attn_q.weight", qDim, cfg.Dim, &lw.wq)
		matrix(p+"attn_k.weight", kvDim, cfg.Dim, &lw.wk)
		matrix(p+"attn_v.weight", kvDim, cfg.Dim, &lw.wv)
		matrix(p+"attn_output.weight", cfg.Dim, qDim, &lw.wo)
		vector(p+"ffn_norm.weight", cfg.Dim, &lw.ffnNorm)
		matrix(p+"ffn_gate.weight", cfg.FFNDim, cfg.Dim, &lw.wGate)
		matrix(p+"ffn_up.weight", cfg.FFNDim, cfg.Dim, &lw.wUp)
		matrix(p+"ffn_down.weight", cfg.Dim, cfg.FFNDim, &lw.wDown)
	}

	// Sizes first: fail before uploading anything if the model cannot fit.
	var total uint64
	converted := map[string]int{}
	for i := range jobs {
		j := &jobs[i]
		if j.t == nil {
			return fmt.Errorf("engine: tensor %s is missing", j.name)
		}
		n, err := m.deviceBytes(j)
		if err != nil {
			return err
		}
		total += n
		if _, ok := weightType(j.t.Type); !ok && !j.vector {
			converted[j.t.Type.String()]++
		}
	}
	for t, n := range converted {
		m.Notes = append(m.Notes, fmt.Sprintf("%d tensors of type %s have no GPU kernel yet; they are converted to F16 at load", n, t))
	}
	var done uint64
	for i := range jobs {
		j := &jobs[i]
		if err := m.uploadOne(j); err != nil {
			return err
		}
		n, _ := m.deviceBytes(j)
		done += n
		if m.opts.Progress != nil {
			m.opts.Progress(done, total)
		}
	}
	if tied {
		m.w.output = m.w.tokenEmbd
	}
	return nil
}

func (m *Model) deviceBytes(j *uploadJob) (uint64, error) {
	if j.vector {
		return uint64(4 * j.cols), nil
	}
	wt, _ := weightType(j.t.Type)
	n, err := shaders.PackedSize(wt, j.rows, j.cols)
	if err != nil {
		return 0, fmt.Errorf("engine: %s: %w", j.name, err)
	}
	return n, nil
}

// uploadOne converts one tensor to its device layout and uploads it. Only
// this tensor's converted bytes are ever in the Go heap.
func (m *Model) uploadOne(j *uploadJob) error {
	raw, err := j.t.Bytes()
	if err != nil {
		return fmt.Errorf("engine: %s: %w", j.name, err)
	}
	if j.vector {
		data := raw
		if j.t.Type != loader.F32 {
			f := make([]float32, j.cols)
			if err := loader.Dequantize(j.t.Type, raw, f); err != nil {
				return fmt.Errorf("engine: %s: %w", j.name, err)
			}
			if data, err = loader.Quantize(loader.F32, f); err != nil {
				return fmt.Errorf("engine: %s: %w", j.name, err)
			}
		}
		buf, err := m.newBuffer(j.name, uint64(len(data)))
		if err != nil {
			return err
		}
		if err := m.dev.Upload(buf, 0, data); err != nil {
			return fmt.Errorf("engine: uploading %s: %w", j.name, err)
		}
		*j.into.(*shaders.Tensor) = shaders.F32(buf)
		return nil
	}
	wt, native := weightType(j.t.Type)
	src := raw
	if !native {
		f := make([]float32, j.rows*j.cols)
		if err := loader.Dequantize(j.t.Type, raw, f); err != nil {
			return fmt.Errorf("engine: %s: %w", j.name, err)
		}
		if src, err = loader.Quantize(loader.F16, f); err != nil {
			return fmt.Errorf("engine: %s: %w", j.name, err)
		}
	}
	packed, err := shaders.Pack(wt, src, j.rows, j.cols)
	if err != nil {
		return fmt.Errorf("engine: %s: %w", j.name, err)
	}
	buf, err := m.newBuffer(j.name, uint64(len(packed)))
	if err != nil {
		return err
	}
	if err := m.dev.Upload(buf, 0, packed); err != nil {
		return fmt.Errorf("engine: uploading %s: %w", j.name, err)
	}
	*j.into.(*shaders.Weight) = shaders.Weight{Buf: buf, Type: wt, Rows: j.rows, Cols: j.cols}
	if !native {
		runtime.GC() // converted tensors can be large; don't let them pile up
	}
	return nil
}

func (m *Model) newBuffer(name string, size uint64) (*vk.Buffer, error) {
	b, err := m.dev.NewBuffer(name, size, vk.DeviceMemory)
	if err != nil {
		if errors.Is(err, vk.ErrOutOfDeviceMemory) {
			return nil, fmt.Errorf("engine: loading the model: %w", err)
		}
		return nil, fmt.Errorf("engine: %w", err)
	}
	m.bufs = append(m.bufs, b)
	return b, nil
}
