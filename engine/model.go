package engine

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"strings"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/vk"
)

// Options configure Load.
type Options struct {
	// KV is the element type of the ring cache (default f16).
	KV ops.KVType
	// Chunk is the most prompt tokens one prefill step takes (default and
	// maximum: the smallest layer cache, so the smallest window).
	Chunk int
	// Keep is the sink tokens: the first Keep positions of a sequence stay
	// in every local layer's keys beside its band (StreamingLLM's attention
	// sinks), in Keep rows beside the ring. 0: none.
	Keep int
	// Context is the slots of each global layer's linear cache, and so the
	// longest sequence, of a model with global layers. Default: the model's
	// context length, at most 4096. A model whose layers all slide a
	// window has no such limit and ignores it.
	Context int
	// Progress, when set, is called as weights are uploaded.
	Progress func(done, total uint64)
	// Cancelled, when set, is asked before each tensor is uploaded; an
	// error stops the load, which frees what it made and returns the
	// error (a context's Err).
	Cancelled func() error
	// WG is the kernels' workgroup width (0: ops.DefaultWG).
	WG uint32
	// Layout forces a kernel layout (default: by device type).
	Layout ops.LayoutChoice
	// Dot is where the GPU layout's Q4_0 and Q8_0 products take the
	// integer-dot kernels (ops.DotChoice; default: the products of a norm's
	// output, where the device accelerates them and the file has a Q4_0 or
	// Q8_0 matrix).
	Dot ops.DotChoice
	// CoopMat is whether prefill tiles run on cooperative matrices
	// (ops.CoopMatChoice; default off: prefill equals decode bit for bit).
	CoopMat ops.CoopMatChoice
	// Profile records GPU timestamps around every dispatch (see Session.Profile).
	Profile bool
}

// Model is a transformer resident on one device: its weights, uploaded once,
// and the kernels. Sessions share it. Its methods are safe for concurrent use.
type Model struct {
	Config loader.Config
	// Cache is the KV cache layout of every session: each layer's window
	// and slots.
	Cache []LayerCache
	// Context is the longest sequence: the slots of the global layers, or 0
	// when every layer slides a window, so that sequences run on for ever.
	Context int
	// Notes lists what the user should know about the load: conversions
	// of types without kernels, a kernel layout the device cannot run.
	Notes []string
	// WeightBytes is the device memory of the weights (matrices and norm
	// vectors), in bytes.
	WeightBytes uint64

	dev       *vk.Device
	lib       *ops.Library
	opts      Options
	w         weights
	bufs      []*vk.Buffer
	ropes     []ropeTable // the distinct RoPEs of the layers, then those of their sinks' queries
	layerRope []int       // per layer: its index in ropes, or −1 for none
	// sinkRope is per layer the index in ropes of the table that rotates
	// its sinks' queries (RoPEQTo) at their cache positions, or −1: a
	// local layer with sinks and RoPE has one (RATIONALE.md, "Sinks sit
	// at their cache positions").
	sinkRope []int
}

// ropeTable is one RoPE of a model's layers: each step writes the cos and
// sin of its angles, (pos/scale)·freqs[i], for the step's positions, or,
// for the queries of a layer's sinks, for min(pos, last).
type ropeTable struct {
	theta, scale float64
	freqs        []float64 // θ^(−2i/ropeDim) for i < ropeDim/2
	// last > 0 caps the positions: a query at pos sits at min(pos, last),
	// last = sinks + window − 1, its index among the keys it attends (the
	// sinks, then the band), which is where StreamingLLM puts it.
	last int
}

// weights are the model's tensors on the device.
type weights struct {
	tokenEmbd  ops.Weight // (vocab, dim)
	outputNorm ops.Tensor // (dim,) f32
	output     ops.Weight // (vocab, dim), token_embd when tied
	layers     []layerWeights
}

type layerWeights struct {
	attnNorm ops.Tensor // (dim,) f32
	// qNorm and kNorm are the per-head norms of queries and keys, (headDim,)
	// f32 each, with Config.QKNorm.
	qNorm, kNorm ops.Tensor
	// bQKV is the Q, K and V biases side by side, (heads·headDim +
	// 2·kvHeads·headDim,) f32, with Config.QKVBias: one add over q|k|v rows.
	bQKV ops.Tensor
	// wQKV is the Q, K and V rows stacked, (heads·headDim + 2·kvHeads·headDim,
	// dim), packed at load when the file stores the three in one type, so
	// that one product makes q|k|v; otherwise wq, wk and wv.
	wQKV   ops.Weight
	wq     ops.Weight // (heads*headDim, dim)
	wk, wv ops.Weight // (kvHeads*headDim, dim)
	wo     ops.Weight // (dim, heads*headDim)
	// postAttnNorm and postFFNNorm normalise the attention and FFN outputs
	// before the residual add, (dim,) f32 each, with Config.PostNorms.
	postAttnNorm, postFFNNorm ops.Tensor
	ffnNorm                   ops.Tensor // (dim,) f32; none with Config.Parallel
	// wGateUp is the gate rows then the up rows, (2·ffn, dim), one matrix
	// packed at load when the file stores both in one type, so that one
	// product makes both; otherwise wGate and wUp. With gateUpGLU (the GPU
	// layout) the two are interleaved instead, gate row i and up row i at
	// rows 2i and 2i+1 (ops.PackGLU), for MatMulGLU.
	wGateUp   ops.Weight
	gateUpGLU bool
	wGate     ops.Weight // (ffn, dim)
	wUp       ops.Weight // (ffn, dim)
	wDown     ops.Weight // (dim, ffn)
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
	if cfg.Parallel && cfg.PostNorms {
		return nil, fmt.Errorf("engine: a parallel block with post norms is not supported")
	}
	if cfg.HeadDim > 256 {
		return nil, fmt.Errorf("engine: head dim %d exceeds the attention kernel's 256", cfg.HeadDim)
	}
	mod := &Model{Config: cfg, dev: d, opts: opts}
	if opts.Context < 0 || opts.Keep < 0 {
		return nil, fmt.Errorf("engine: context %d, keep %d: want ≥ 0", opts.Context, opts.Keep)
	}
	mod.Cache, mod.Context, mod.Notes = CacheLayout(cfg, opts.Context, opts.Keep)
	if mod.Context > 0 && cfg.ContextLength > 0 && mod.Context > cfg.ContextLength {
		mod.Notes = append(mod.Notes, fmt.Sprintf("the context %d is beyond the model's training context of %d positions: later positions are outside what it was trained on", mod.Context, cfg.ContextLength))
	}
	mod.ropes, mod.layerRope = ropeTables(cfg)
	mod.ropes, mod.sinkRope = sinkRopes(mod.ropes, mod.layerRope, mod.Cache)
	if opts.Chunk < 0 {
		return nil, fmt.Errorf("engine: chunk size %d", opts.Chunk)
	}
	// Attention runs before a chunk is stored, so a chunk may be as long
	// as the smallest cache (see RATIONALE.md, "Chunks bounded by the
	// smallest window").
	smallest := maxChunk
	for _, c := range mod.Cache {
		smallest = min(smallest, c.Slots)
	}
	if opts.Chunk == 0 || opts.Chunk > smallest {
		mod.opts.Chunk = smallest
	}

	dot := opts.Dot
	if dot == ops.AutoDot && !hasMatrixOf(m, shaders.DotTypes) {
		dot = ops.NoDot // no product would take them: no norm needs to write q8 rows
	}
	lib, err := ops.NewLibrary(d, ops.Options{WG: opts.WG, Layout: opts.Layout, Dot: dot, CoopMat: opts.CoopMat})
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	mod.lib = lib
	mod.Notes = append(mod.Notes, lib.Notes()...)
	if err := mod.upload(m); err != nil {
		mod.Close()
		return nil, err
	}
	return mod, nil
}

// hasMatrixOf reports whether one of m's matrices is of one of types.
func hasMatrixOf(m *loader.Model, types []loader.DType) bool {
	for _, t := range m.Tensors {
		if len(t.Shape) == 2 && slices.Contains(types, t.Type) {
			return true
		}
	}
	return false
}

// CacheLayout is each layer's cache for cfg: a ring of W slots, with keep
// sink rows beside it, for a local layer, a linear cache of the context
// for a global one. With global layers the context bounds the sequence, so
// a window beyond it is clamped (with a note); with none the context is 0,
// unbounded.
func CacheLayout(cfg loader.Config, context, keep int) ([]LayerCache, int, []string) {
	var notes []string
	if keep > 0 && !cfg.Local() {
		notes = append(notes, fmt.Sprintf("keeping %d sink tokens changes nothing: every layer attends to every key", keep))
	}
	if !cfg.Global() {
		layout := make([]LayerCache, cfg.NumLayers)
		for l := range layout {
			w := cfg.Layer(l).Window
			layout[l] = LayerCache{Window: w, Slots: w, Sinks: keep}
		}
		return layout, 0, notes
	}
	if context == 0 {
		context = min(max(cfg.ContextLength, 1), 4096)
	}
	clamped := 0
	layout := make([]LayerCache, cfg.NumLayers)
	for l := range layout {
		switch w := cfg.Layer(l).Window; {
		case w == 0:
			layout[l] = LayerCache{Window: 0, Slots: context}
		case w > context:
			// Every position the sequence can reach is in the window.
			layout[l] = LayerCache{Window: context, Slots: context}
			clamped = w
		default:
			layout[l] = LayerCache{Window: w, Slots: w, Sinks: keep}
		}
	}
	if clamped > 0 {
		notes = append(notes, fmt.Sprintf("the sliding window %d is larger than the context %d: clamped to %d (raise the context to run longer sequences)", clamped, context, context))
	}
	return layout, context, notes
}

// ropeTables finds the distinct RoPEs (base and scale) of cfg's layers;
// Config.RopeFreqFactors (Llama 3.1's scaling) divides every table's
// frequencies.
func ropeTables(cfg loader.Config) (tables []ropeTable, layerRope []int) {
	layerRope = make([]int, cfg.NumLayers)
	for l := range layerRope {
		spec := cfg.Layer(l)
		layerRope[l] = -1
		if spec.RopeTheta == 0 {
			continue
		}
		scale := spec.RopeScale
		if scale == 0 {
			scale = 1
		}
		i := slices.IndexFunc(tables, func(t ropeTable) bool { return t.theta == spec.RopeTheta && t.scale == scale })
		if i < 0 {
			t := ropeTable{theta: spec.RopeTheta, scale: scale}
			for j := range cfg.RopeDim / 2 {
				f := math.Pow(spec.RopeTheta, -2*float64(j)/float64(cfg.RopeDim))
				if cfg.RopeFreqFactors != nil {
					f /= cfg.RopeFreqFactors[j]
				}
				t.freqs = append(t.freqs, f)
			}
			i = len(tables)
			tables = append(tables, t)
		}
		layerRope[l] = i
	}
	return tables, layerRope
}

// sinkRopes appends to tables the RoPEs of the sinks' queries: for each
// local layer with sinks and a RoPE (layerRope), its table capped at the
// query's cache position, sinks + window − 1, shared by the layers of the
// same RoPE, window and sinks. It returns the tables and each layer's index
// in them, or −1.
func sinkRopes(tables []ropeTable, layerRope []int, cache []LayerCache) ([]ropeTable, []int) {
	sinkRope := make([]int, len(layerRope))
	for l, r := range layerRope {
		sinkRope[l] = -1
		lc := cache[l]
		if r < 0 || !lc.Local() || lc.Sinks == 0 {
			continue
		}
		t := tables[r]
		t.last = lc.Sinks + lc.Window - 1
		i := slices.IndexFunc(tables, func(u ropeTable) bool { return u.theta == t.theta && u.scale == t.scale && u.last == t.last })
		if i < 0 {
			i = len(tables)
			tables = append(tables, t)
		}
		sinkRope[l] = i
	}
	return tables, sinkRope
}

// maxChunk caps one prefill step, bounding activation memory (a chunk of C
// tokens needs C·(3·dim + 2·ffn + …) floats).
const maxChunk = 512

// Library is the model's kernel set (its layout and the kernel picks).
func (m *Model) Library() *ops.Library { return m.lib }

// AttentionWorkgroups is the workgroups that attend for one decode query
// after depth tokens in the layer that has the fewest: its band holds
// min(depth+1, its window) keys.
func (m *Model) AttentionWorkgroups(depth int) int {
	c := m.Config
	least := 0
	for i, lc := range m.Cache {
		band := lc.band()
		n := m.lib.AttentionWorkgroups(min(depth+1, band), c.NumHeads, c.NumKVHeads, c.HeadDim, band)
		if i == 0 || n < least {
			least = n
		}
	}
	return least
}

// KVBytes is the device memory of one session's KV cache (KVBytes of
// Cache in the model's KV type).
func (m *Model) KVBytes() uint64 {
	return KVBytes(m.Cache, m.Config.NumKVHeads*m.Config.HeadDim, m.opts.KV)
}

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

// weightType is the type a file's tensor type is kept in on the device:
// itself, or F16 (converted at load, with a note) for a type the loader
// reads but no kernel serves.
func weightType(t loader.DType) (dev loader.DType, native bool) {
	if shaders.HasKernels(t) {
		return t, true
	}
	return loader.F16, false
}

type uploadJob struct {
	name       string
	t          *loader.Tensor
	also       []*loader.Tensor // stacked under t's rows in one matrix (same type and columns)
	rows, cols int
	vector     bool // an f32 vector (norm weight), not a matrix
	glu        bool // t's rows and also[0]'s interleaved (ops.PackGLU)
	into       any  // *ops.Weight or *ops.Tensor
}

func (m *Model) upload(src *loader.Model) error {
	cfg := m.Config
	var jobs []uploadJob
	matrix := func(name string, rows, cols int, into *ops.Weight) {
		jobs = append(jobs, uploadJob{name: name, t: src.Tensor(name), rows: rows, cols: cols, into: into})
	}
	vector := func(name string, n int, into *ops.Tensor) {
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
		if cfg.QKVBias {
			bq, bk, bv := src.Tensor(p+"attn_q.bias"), src.Tensor(p+"attn_k.bias"), src.Tensor(p+"attn_v.bias")
			for _, b := range []struct {
				name string
				t    *loader.Tensor
			}{{p + "attn_q.bias", bq}, {p + "attn_k.bias", bk}, {p + "attn_v.bias", bv}} {
				if b.t == nil {
					return fmt.Errorf("engine: tensor %s is missing", b.name)
				}
				if b.t.Type != loader.F32 {
					return fmt.Errorf("engine: tensor %s has type %s, want F32", b.name, b.t.Type)
				}
			}
			jobs = append(jobs, uploadJob{name: bq.Name, t: bq, also: []*loader.Tensor{bk, bv}, rows: 1, cols: qDim + 2*kvDim, vector: true, into: &lw.bQKV})
		}
		if cfg.QKNorm {
			vector(p+"attn_q_norm.weight", cfg.HeadDim, &lw.qNorm)
			vector(p+"attn_k_norm.weight", cfg.HeadDim, &lw.kNorm)
		}
		if cfg.PostNorms {
			vector(p+"post_attention_norm.weight", cfg.Dim, &lw.postAttnNorm)
			vector(p+"post_ffw_norm.weight", cfg.Dim, &lw.postFFNNorm)
		}
		wq, wk, wv := src.Tensor(p+"attn_q.weight"), src.Tensor(p+"attn_k.weight"), src.Tensor(p+"attn_v.weight")
		if wq != nil && wk != nil && wv != nil && wq.Type == wk.Type && wq.Type == wv.Type &&
			len(wq.Shape) == 2 && len(wk.Shape) == 2 && len(wv.Shape) == 2 && wq.Shape[0] == wk.Shape[0] && wq.Shape[0] == wv.Shape[0] {
			jobs = append(jobs, uploadJob{name: wq.Name, t: wq, also: []*loader.Tensor{wk, wv}, rows: qDim + 2*kvDim, cols: cfg.Dim, into: &lw.wQKV})
		} else {
			matrix(p+"attn_q.weight", qDim, cfg.Dim, &lw.wq)
			matrix(p+"attn_k.weight", kvDim, cfg.Dim, &lw.wk)
			matrix(p+"attn_v.weight", kvDim, cfg.Dim, &lw.wv)
		}
		matrix(p+"attn_output.weight", cfg.Dim, qDim, &lw.wo)
		if !cfg.Parallel {
			vector(p+"ffn_norm.weight", cfg.Dim, &lw.ffnNorm)
		}
		gate, up := src.Tensor(p+"ffn_gate.weight"), src.Tensor(p+"ffn_up.weight")
		if gate != nil && up != nil && gate.Type == up.Type && slices.Equal(gate.Shape, up.Shape) {
			glu := m.gluPacked()
			lw.gateUpGLU = glu
			jobs = append(jobs, uploadJob{name: gate.Name, t: gate, also: []*loader.Tensor{up}, rows: 2 * cfg.FFNDim, cols: cfg.Dim, glu: glu, into: &lw.wGateUp})
		} else {
			matrix(p+"ffn_gate.weight", cfg.FFNDim, cfg.Dim, &lw.wGate)
			matrix(p+"ffn_up.weight", cfg.FFNDim, cfg.Dim, &lw.wUp)
		}
		matrix(p+"ffn_down.weight", cfg.Dim, cfg.FFNDim, &lw.wDown)
	}

	if err := checkUnused(src, jobs); err != nil {
		return err
	}

	// Sizes first: fail before uploading anything if the model cannot fit.
	var total uint64
	type conversion struct {
		tensors     int
		file, extra uint64 // bytes
	}
	converted := map[loader.DType]*conversion{}
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
		if j.vector {
			m.WeightBytes += n
			continue
		}
		m.WeightBytes += n
		if _, ok := weightType(j.t.Type); !ok {
			c := converted[j.t.Type]
			if c == nil {
				c = &conversion{}
				converted[j.t.Type] = c
			}
			c.tensors++
			size := j.t.Size()
			for _, a := range j.also {
				c.tensors++
				size += a.Size()
			}
			c.file += size
			c.extra += n - min(n, size)
		}
	}
	for _, t := range slices.Sorted(maps.Keys(converted)) {
		c := converted[t]
		m.Notes = append(m.Notes, fmt.Sprintf("%d tensors of type %s have no GPU kernel: they are converted to F16 at load, %d bytes on the device instead of %d (%d more)",
			c.tensors, t, c.file+c.extra, c.file, c.extra))
	}
	var done uint64
	for i := range jobs {
		j := &jobs[i]
		if m.opts.Cancelled != nil {
			if err := m.opts.Cancelled(); err != nil {
				return fmt.Errorf("engine: loading stopped after %d of %d tensors: %w", i, len(jobs), err)
			}
		}
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

// gluPacked reports whether a stacked gate-up matrix is packed for
// MatMulGLU, the product with act(gate)·up in its epilogue: in the GPU
// layout, which has those kernels, for an activation that has one. The
// CPU layout keeps the plain product and ActMulRows.
func (m *Model) gluPacked() bool {
	_, ok := shaders.GLUOp(m.Config.Act, shaders.OpMatMul)
	return ok && m.lib.Layout() == shaders.GPULayout
}

func (m *Model) deviceBytes(j *uploadJob) (uint64, error) {
	if j.vector {
		return uint64(4 * j.cols), nil
	}
	wt, _ := weightType(j.t.Type)
	n, err := ops.PackedSize(wt, j.rows, j.cols)
	if err != nil {
		return 0, fmt.Errorf("engine: tensor %q (%s, %d×%d): %w", j.name, j.t.Type, j.rows, j.cols, err)
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
	for _, a := range j.also {
		more, err := a.Bytes()
		if err != nil {
			return fmt.Errorf("engine: %s: %w", a.Name, err)
		}
		raw = append(slices.Clip(raw), more...)
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
		*j.into.(*ops.Tensor) = ops.F32(buf)
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
	var packed []byte
	if j.glu {
		packed, err = ops.PackGLU(wt, src, j.rows/2, j.cols)
	} else {
		packed, err = ops.Pack(wt, src, j.rows, j.cols)
	}
	if err != nil {
		return fmt.Errorf("engine: tensor %q (%s, %d×%d): %w", j.name, j.t.Type, j.rows, j.cols, err)
	}
	buf, err := m.newBuffer(j.name, uint64(len(packed)))
	if err != nil {
		return err
	}
	if err := m.dev.Upload(buf, 0, packed); err != nil {
		return fmt.Errorf("engine: uploading %s: %w", j.name, err)
	}
	*j.into.(*ops.Weight) = ops.Weight{Buf: buf, Type: wt, Rows: j.rows, Cols: j.cols}
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

// checkUnused refuses a model with tensors the forward pass would not read
// (rope_freqs.weight, Q/K/V biases, Q/K norms, …): ignoring one silently
// would give other tokens than the file's own runtime. GGUF's old per-layer
// attn_rot_embd (inverse RoPE frequencies that the config already gives) is
// the one exception.
func checkUnused(src *loader.Model, jobs []uploadJob) error {
	used := map[string]bool{}
	if src.Config.RopeFreqFactors != nil {
		used["rope_freqs.weight"] = true // read into the config by the loader
	}
	for _, j := range jobs {
		used[j.name] = true
		for _, a := range j.also {
			used[a.Name] = true
		}
	}
	unused := slices.Clone(src.Unmapped)
	for _, t := range src.Tensors {
		if !used[t.Name] && !strings.HasSuffix(t.Name, ".attn_rot_embd") {
			unused = append(unused, t.Name)
		}
	}
	if len(unused) == 0 {
		return nil
	}
	list := unused
	if len(list) > 8 {
		list = list[:8]
	}
	more := ""
	if len(unused) > len(list) {
		more = fmt.Sprintf(" and %d more", len(unused)-len(list))
	}
	return fmt.Errorf("engine: %s: %d tensors that the %s forward pass does not use, and ignoring them would change the result: %s%s",
		src.Path, len(unused), src.Config.Arch, strings.Join(list, ", "), more)
}
