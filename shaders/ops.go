package shaders

import (
	"errors"
	"fmt"
	"sync"

	"github.com/vkrun/vkrun/vk"
)

// Library holds a pipeline for every kernel on one device.
type Library struct {
	Device *vk.Device
	// WG is the workgroup width of every kernel, except on a CPU device
	// when no width was forced: there a kernel's OnCPU may pick another.
	WG uint32
	// Layout picks the kernels of MatMul and Attention: CPULayout on CPU
	// devices, GPULayout otherwise. It may be changed between plans (tests
	// run both).
	Layout Layout

	narrow bool       // CPU device, no forced width: OnCPU applies
	mu     sync.Mutex // guards pipes (variants are built on first use)
	pipes  map[string]*vk.Pipeline
}

// Layout is a family of kernels for one kind of device. Both families
// compute the same results up to f32 rounding, and each is bit-exact
// across batch and chunk sizes on its own.
type Layout int

const (
	// GPULayout spreads each product over many invocations that read
	// neighbouring words (coalesced loads), with shared-memory reductions.
	GPULayout Layout = iota
	// CPULayout is for devices that run a workgroup as SIMD fibres and pay
	// scalar work per lane for every load that is not a constant address
	// (lavapipe): it maximises the arithmetic per load. MatMul takes whole
	// 32-column blocks of sixteen rows per invocation (each x value loaded
	// serves sixteen rows); Attention gives one subgroup a (query, KV head),
	// each invocation a slice of the head dims for all its query heads. An
	// op whose shapes or offsets do not suit its 16-byte loads, or a device
	// without what it needs, runs in GPULayout instead.
	CPULayout
)

func (l Layout) String() string {
	if l == CPULayout {
		return "cpu"
	}
	return "gpu"
}

// DefaultWG is the workgroup width: a multiple of every common subgroup size
// (8 on lavapipe, 32 on NVIDIA, 32/64 on AMD, 8–32 on Intel).
const DefaultWG = 128

// CPUWG is the width of CPUNarrow kernels on CPU devices. Measured on
// lavapipe (Mesa 22.3, 2 cores), decode of a 0.5B Q4_0 model at short
// context: 2.66 tok/s with 32-wide matmul workgroups, 2.07 at 64, 1.42 at
// 128. lavapipe runs a workgroup's invocations as SIMD8 fibers, so idle
// lanes and the reduction's barriers cost real time; attention, which
// spreads the band over the lanes, is faster wide and keeps WG.
const CPUWG = 32

// NewLibrary creates every kernel's pipeline (through the device's pipeline
// cache). wg = 0 picks DefaultWG (and each kernel's OnCPU width on CPU
// devices); a non-zero wg, a power of two, is used for every kernel except
// those with a fixed Width.
func NewLibrary(d *vk.Device, wg uint32) (*Library, error) {
	narrow := wg == 0 && d.Info.Type == vk.DeviceCPU
	if wg == 0 {
		wg = DefaultWG
	}
	if wg&(wg-1) != 0 || wg > d.Info.MaxWorkgroupSize[0] || wg > d.Info.MaxWorkgroupInvocations {
		return nil, fmt.Errorf("shaders: workgroup width %d is not a power of two within the device's limits", wg)
	}
	l := &Library{Device: d, WG: wg, narrow: narrow, pipes: map[string]*vk.Pipeline{}}
	if d.Info.Type == vk.DeviceCPU {
		l.Layout = CPULayout
	}
	for _, k := range Kernels {
		kwg, ok := l.width(k)
		if !ok {
			continue
		}
		desc, err := k.Desc(kwg)
		if err != nil {
			l.Close()
			return nil, err
		}
		p, err := d.NewPipeline(desc)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.pipes[k.Name] = p
	}
	return l, nil
}

// width is k's workgroup width on this library's device, and whether the
// device can run k at all.
func (l *Library) width(k Kernel) (uint32, bool) {
	info := l.Device.Info
	switch {
	case k.Subgroup:
		s := info.SubgroupSize
		ok := l.Device.Features.SubgroupArithmetic && s != 0 && s&(s-1) == 0 &&
			s <= info.MaxWorkgroupSize[0] && s <= info.MaxWorkgroupInvocations
		return s, ok
	case k.Width != 0:
		return k.Width, true
	case l.narrow && k.OnCPU == CPUNarrow:
		return CPUWG, true
	}
	return l.WG, true
}

// Has reports whether the device runs k (see Kernel.Subgroup).
func (l *Library) Has(k Kernel) bool {
	_, ok := l.width(k)
	return ok
}

// Pipeline returns k's pipeline.
func (l *Library) Pipeline(k Kernel) *vk.Pipeline {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pipes[k.Name]
}

// variant returns k's pipeline with its specialization constants replaced
// by spec, building it on first use (through the pipeline cache), with the
// width k has in this library.
func (l *Library) variant(k Kernel, spec []vk.SpecConstant) (*vk.Pipeline, error) {
	wg, ok := l.width(k)
	if !ok {
		return nil, fmt.Errorf("shaders: %s: %s lacks subgroup arithmetic in compute shaders", k.Name, l.Device.Info.Name)
	}
	k.File, k.Spec = k.Source(), spec
	for _, c := range spec {
		k.Name += fmt.Sprintf("/%d=%d", c.ID, c.Value)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.pipes[k.Name]; p != nil {
		return p, nil
	}
	desc, err := k.Desc(wg)
	if err != nil {
		return nil, err
	}
	p, err := l.Device.NewPipeline(desc)
	if err != nil {
		return nil, err
	}
	l.pipes[k.Name] = p
	return p, nil
}

// Close destroys the pipelines. Idempotent.
func (l *Library) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for n, p := range l.pipes {
		p.Close()
		delete(l.pipes, n)
	}
}

// Plan records ops into a Sequence and owns the descriptor sets they bind.
// Build it once and submit the sequence as often as needed; Close frees the
// sets once the GPU is done with them.
type Plan struct {
	lib  *Library
	Seq  *vk.Sequence
	sets []*vk.DescriptorSet
}

// NewPlan records into seq, which must be between Begin and End.
func (l *Library) NewPlan(seq *vk.Sequence) *Plan { return &Plan{lib: l, Seq: seq} }

// Close frees the plan's descriptor sets.
func (p *Plan) Close() {
	for _, s := range p.sets {
		s.Close()
	}
	p.sets = nil
}

// Tensor names f32 elements [Off, Off+Len) of a buffer.
type Tensor struct {
	Buf      *vk.Buffer
	Off, Len uint64 // in elements
}

// F32 is all of b as f32 elements.
func F32(b *vk.Buffer) Tensor { return Tensor{Buf: b, Len: b.Size / 4} }

// Sub is elements [off, off+n) of t.
func (t Tensor) Sub(off, n uint64) Tensor { return Tensor{Buf: t.Buf, Off: t.Off + off, Len: n} }

var errShape = errors.New("shape mismatch")

// binding binds elements [start, start+n) of t (element size es bytes): the
// range starts at the aligned-down byte offset and the shader adds the
// returned element offset, so any element can start a binding.
func (p *Plan) binding(t Tensor, start, n, es uint64) (vk.Range, uint32, error) {
	info := &p.lib.Device.Info
	if t.Buf == nil {
		return vk.Range{}, 0, fmt.Errorf("nil buffer")
	}
	if start+n > t.Len || (t.Off+t.Len)*es > t.Buf.Size {
		return vk.Range{}, 0, fmt.Errorf("elements [%d, %d) of a %d-element tensor in %s (%d bytes)", start, start+n, t.Len, t.Buf.Name, t.Buf.Size)
	}
	byteOff := (t.Off + start) * es
	align := max(info.MinStorageBufferOffsetAlignment, 1)
	base := byteOff / align * align
	rem := byteOff - base
	if rem%es != 0 {
		return vk.Range{}, 0, fmt.Errorf("offset %d of %s cannot be bound with alignment %d", byteOff, t.Buf.Name, align)
	}
	size := rem + n*es
	if size > info.MaxStorageBufferRange {
		return vk.Range{}, 0, fmt.Errorf("%d bytes of %s exceed maxStorageBufferRange %d: %w", size, t.Buf.Name, info.MaxStorageBufferRange, vk.ErrTooLarge)
	}
	if rem/es > 1<<31 {
		return vk.Range{}, 0, fmt.Errorf("element offset %d too large", rem/es)
	}
	return t.Buf.Slice(base, size), uint32(rem / es), nil
}

// dispatch binds ranges to k and records it over n workgroups, folding a grid
// larger than maxComputeWorkGroupCount[0] into y (kernels use group_index()).
func (p *Plan) dispatch(k Kernel, n uint64, push []byte, ranges ...vk.Range) error {
	return p.dispatchPipe(p.lib.Pipeline(k), n, push, ranges...)
}

// dispatchPipe is dispatch with a pipeline (a kernel's variant).
func (p *Plan) dispatchPipe(pipe *vk.Pipeline, n uint64, push []byte, ranges ...vk.Range) error {
	set, err := p.lib.Device.NewDescriptorSet(pipe, ranges...)
	if err != nil {
		return err
	}
	p.sets = append(p.sets, set)
	p.Seq.Dispatch(pipe, set, grid(n, p.lib.Device.Info.MaxWorkgroupCount), push)
	return nil
}

func grid(n uint64, limit [3]uint32) [3]uint32 {
	x := min(n, uint64(limit[0]), 65535)
	x = max(x, 1)
	return [3]uint32{uint32(x), uint32((n + x - 1) / x), 1}
}

// maxRows is how many rows of rowElems elements (es bytes each) fit one binding.
func (p *Plan) maxRows(rowElems, es uint64) uint64 {
	info := &p.lib.Device.Info
	slack := max(info.MinStorageBufferOffsetAlignment, 1)
	budget := info.MaxStorageBufferRange - slack
	return max(budget/(rowElems*es), 1)
}

// MatVec records y (rows,) = W (rows, cols) @ x (cols,). A W larger than one
// binding is split into row blocks, one dispatch each.
func (p *Plan) MatVec(w, x, y Tensor, rows, cols int) error {
	r, c := uint64(rows), uint64(cols)
	if rows <= 0 || cols <= 0 || w.Len != r*c || x.Len != c || y.Len != r {
		return fmt.Errorf("shaders: MatVec: W %d, x %d, y %d elements for (%d, %d): %w", w.Len, x.Len, y.Len, rows, cols, errShape)
	}
	xr, xo, err := p.binding(x, 0, c, 4)
	if err != nil {
		return fmt.Errorf("shaders: MatVec x: %w", err)
	}
	step := p.maxRows(c, 4)
	for r0 := uint64(0); r0 < r; r0 += step {
		n := min(step, r-r0)
		wr, wo, err := p.binding(w, r0*c, n*c, 4)
		if err != nil {
			return fmt.Errorf("shaders: MatVec W rows [%d, %d): %w", r0, r0+n, err)
		}
		yr, yo, err := p.binding(y, r0, n, 4)
		if err != nil {
			return fmt.Errorf("shaders: MatVec y: %w", err)
		}
		pc := MatVecParams{Rows: uint32(n), Cols: uint32(c), WOff: wo, XOff: xo, YOff: yo}
		if err := p.dispatch(MatVecF32, n, Push(&pc), wr, xr, yr); err != nil {
			return err
		}
	}
	return nil
}

// Add records z = x + y elementwise over n elements. z may be x or y.
func (p *Plan) Add(x, y, z Tensor) error {
	n := z.Len
	if x.Len != n || y.Len != n || n == 0 {
		return fmt.Errorf("shaders: Add: x %d, y %d, z %d elements: %w", x.Len, y.Len, z.Len, errShape)
	}
	wg := uint64(p.lib.WG)
	step := p.maxRows(1, 4) / wg * wg
	for o := uint64(0); o < n; o += step {
		m := min(step, n-o)
		xr, xo, err := p.binding(x, o, m, 4)
		if err != nil {
			return fmt.Errorf("shaders: Add x: %w", err)
		}
		yr, yo, err := p.binding(y, o, m, 4)
		if err != nil {
			return fmt.Errorf("shaders: Add y: %w", err)
		}
		zr, zo, err := p.binding(z, o, m, 4)
		if err != nil {
			return fmt.Errorf("shaders: Add z: %w", err)
		}
		pc := AddParams{N: uint32(m), XOff: xo, YOff: yo, ZOff: zo}
		if err := p.dispatch(Add, (m+wg-1)/wg, Push(&pc), xr, yr, zr); err != nil {
			return err
		}
	}
	return nil
}

// RMSNorm records y (rows, n) = x (rows, n) / sqrt(mean(x²)+eps) * w (n,).
func (p *Plan) RMSNorm(x, w, y Tensor, rows, n int, eps float32) error {
	r, c := uint64(rows), uint64(n)
	if rows <= 0 || n <= 0 || x.Len != r*c || y.Len != r*c || w.Len != c {
		return fmt.Errorf("shaders: RMSNorm: x %d, w %d, y %d elements for (%d, %d): %w", x.Len, w.Len, y.Len, rows, n, errShape)
	}
	wr, wo, err := p.binding(w, 0, c, 4)
	if err != nil {
		return fmt.Errorf("shaders: RMSNorm w: %w", err)
	}
	step := p.maxRows(c, 4)
	for r0 := uint64(0); r0 < r; r0 += step {
		m := min(step, r-r0)
		xr, xo, err := p.binding(x, r0*c, m*c, 4)
		if err != nil {
			return fmt.Errorf("shaders: RMSNorm x: %w", err)
		}
		yr, yo, err := p.binding(y, r0*c, m*c, 4)
		if err != nil {
			return fmt.Errorf("shaders: RMSNorm y: %w", err)
		}
		pc := RMSNormParams{N: uint32(c), Rows: uint32(m), Eps: eps, XOff: xo, WOff: wo, YOff: yo}
		if err := p.dispatch(RMSNorm, m, Push(&pc), xr, wr, yr); err != nil {
			return err
		}
	}
	return nil
}
