package ops_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/vk"
)

// NMSE thresholds, per op. f32 everywhere: the GPU sums in a different order
// from the float64 reference, so matvec and RMSNorm differ by rounding
// (measured ~1e-14 on lavapipe); add is one f32 addition and must be exact.
const (
	nmseMatVec  = 1e-10
	nmseRMSNorm = 1e-10
	nmseAdd     = 0
)

// env is a device with the kernel library, on the full or baseline feature set.
type env struct {
	d   *vk.Device
	lib *ops.Library
	wg  uint32
	// types are the weight types the weight-op tests run on this env:
	// all of them, or a few that stand for the rest where a second set of
	// pipelines would cost lavapipe's JIT more than it shows (see variants).
	types []loader.DType
}

// fewTypes stand for every weight type on the baseline device and at other
// workgroup widths: the plain types, the two legacy quants, and one tiled
// type of each kind (32-element blocks with a minimum, K-quant tiles of 64
// with a minimum, of 128 without).
var fewTypes = []loader.DType{loader.F32, loader.F16, loader.Q8_0, loader.Q4_0, loader.Q5_1, loader.Q4_K, loader.Q6_K}

func newEnv(t *testing.T, opts vk.DeviceOptions, wg uint32) *env {
	d := vktest.Device(t, opts)
	return newEnvOn(t, d, ops.Options{WG: wg})
}

// newEnvOn is an env with a library of its own on d.
func newEnvOn(t testing.TB, d *vk.Device, opts ops.Options) *env {
	lib, err := ops.NewLibrary(d, opts)
	require.NoError(t, err)
	t.Cleanup(lib.Close)
	return &env{d: d, lib: lib, wg: opts.WG, types: weightTypes}
}

// layouts runs f once per kernel layout the device can run, each with a
// library of its own, so a CPU device tests the GPUs' kernels too (and a
// GPU the CPUs'). A device without subgroup arithmetic (the baseline
// feature set) runs the GPU layout alone: the CPU layout needs it.
func layouts(t *testing.T, e *env, f func(t *testing.T, e *env)) {
	for _, c := range []ops.LayoutChoice{ops.ForceGPU, ops.ForceCPU} {
		if c == ops.ForceCPU && !e.d.Features.SubgroupArithmetic {
			continue
		}
		le := newEnvOn(t, e.d, ops.Options{WG: e.wg, Layout: c})
		le.types = e.types
		t.Run(le.lib.Layout().String(), func(t *testing.T) { f(t, le) })
	}
}

func (e *env) upload(t *testing.T, name string, v []float32) *vk.Buffer {
	b, err := e.d.NewBuffer(name, uint64(4*len(v)), vk.DeviceMemory)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	require.NoError(t, e.d.Upload(b, 0, optest.Bytes(v)))
	return b
}

func (e *env) zeros(t *testing.T, name string, n int) *vk.Buffer {
	b, err := e.d.NewBuffer(name, uint64(4*n), vk.DeviceMemory)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

func (e *env) download(t *testing.T, b *vk.Buffer) []float32 {
	out := make([]byte, b.Size)
	require.NoError(t, e.d.Download(b, 0, out))
	return optest.Floats(out)
}

// plan returns a plan recording into a fresh sequence, for tests of
// recording errors; both are closed at cleanup.
func (e *env) plan(t *testing.T) *ops.Plan {
	seq, err := e.d.NewSequence(vk.SequenceOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { seq.Close() })
	require.NoError(t, seq.Begin())
	p := e.lib.NewPlan(seq)
	t.Cleanup(p.Close)
	return p
}

// try records ops into a fresh plan and returns the plan's first error.
func (e *env) try(t *testing.T, record func(p *ops.Plan)) error {
	p := e.plan(t)
	record(p)
	return p.Err()
}

// run records ops through a plan and runs them once.
func (e *env) run(t *testing.T, record func(p *ops.Plan)) {
	t.Helper()
	seq, err := e.d.NewSequence(vk.SequenceOptions{OneTime: true})
	require.NoError(t, err)
	defer seq.Close()
	require.NoError(t, seq.Begin())
	plan := e.lib.NewPlan(seq)
	defer plan.Close()
	record(plan)
	require.NoError(t, plan.Err())
	require.NoError(t, seq.End())
	require.NoError(t, seq.Run(2*time.Minute))
}

// variants runs f on the full feature set and on the baseline with no
// optional feature, at two workgroup widths. The baseline runs the weight
// ops on fewTypes: every type's kernels are built the same way and need no
// optional feature, and each new pipeline costs lavapipe seconds of JIT.
func variants(t *testing.T, f func(t *testing.T, e *env)) {
	for _, v := range []struct {
		name  string
		opts  vk.DeviceOptions
		wg    uint32
		types []loader.DType
	}{
		{"full/wg128", vk.DeviceOptions{}, 128, weightTypes},
		{"baseline/wg64", vk.DeviceOptions{NoOptionalFeatures: true}, 64, fewTypes},
	} {
		t.Run(v.name, func(t *testing.T) {
			e := newEnv(t, v.opts, v.wg)
			e.types = v.types
			f(t, e)
		})
	}
}

func TestMatVec(t *testing.T) {
	shapes := [][2]int{{1, 1}, {7, 7}, {1, 4097}, {4097, 1}, {33, 4095}, {4095, 33}, {64, 128}, {3, 4096}}
	variants(t, func(t *testing.T, e *env) {
		for i, s := range shapes {
			rows, cols := s[0], s[1]
			t.Run(fmt.Sprintf("%dx%d", rows, cols), func(t *testing.T) {
				w, x := optest.Rand(uint64(10+i), rows*cols), optest.Rand(uint64(100+i), cols)
				wb, xb, yb := e.upload(t, "W", w), e.upload(t, "x", x), e.zeros(t, "y", rows)
				e.run(t, func(p *ops.Plan) {
					p.MatVec(ops.F32(wb), ops.F32(xb), ops.F32(yb), rows, cols)
				})
				optest.Check(t, "matvec", e.download(t, yb), optest.MatVec(w, x, rows, cols), nmseMatVec)
			})
		}
	})
}

// TestMatVecOffsets binds tensors that start at unaligned element offsets
// inside larger buffers, as the engine does with packed weights.
func TestMatVecOffsets(t *testing.T) {
	e := newEnv(t, vk.DeviceOptions{}, 0)
	const rows, cols = 37, 101
	all := optest.Rand(7, 5+rows*cols+3+cols+9+rows)
	buf := e.upload(t, "packed", all)
	whole := ops.F32(buf)
	w := whole.Sub(5, rows*cols)
	x := whole.Sub(5+rows*cols+3, cols)
	y := whole.Sub(5+rows*cols+3+cols+9, rows)
	e.run(t, func(p *ops.Plan) { p.MatVec(w, x, y, rows, cols) })
	got := e.download(t, buf)
	want := optest.MatVec(all[5:5+rows*cols], all[5+rows*cols+3:5+rows*cols+3+cols], rows, cols)
	optest.Check(t, "matvec at offsets", got[y.Off:y.Off+rows], want, nmseMatVec)
	optest.Check(t, "bytes around y untouched", got[:y.Off], all[:y.Off], 0)
}

// TestMatVecLargerThanOneBinding multiplies a W larger than
// maxStorageBufferRange (128 MiB on lavapipe), which must be bound in parts.
func TestMatVecLargerThanOneBinding(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates and multiplies a >128 MiB matrix")
	}
	e := newEnv(t, vk.DeviceOptions{}, 0)
	cols := 4097
	rows := int(e.d.Info.MaxStorageBufferRange/uint64(4*cols)) + 9
	if uint64(rows*cols*4) > e.d.Info.MaxMemoryAllocationSize {
		t.Skipf("maxStorageBufferRange %d is too close to maxMemoryAllocationSize on %s", e.d.Info.MaxStorageBufferRange, e.d.Info.Name)
	}
	w, x := optest.Rand(1, rows*cols), optest.Rand(2, cols)
	wb, xb, yb := e.upload(t, "W", w), e.upload(t, "x", x), e.zeros(t, "y", rows)
	require.Greater(t, wb.Size, e.d.Info.MaxStorageBufferRange)
	e.run(t, func(p *ops.Plan) {
		p.MatVec(ops.F32(wb), ops.F32(xb), ops.F32(yb), rows, cols)
	})
	optest.Check(t, "matvec >1 binding", e.download(t, yb), optest.MatVec(w, x, rows, cols), nmseMatVec)
}

func TestAdd(t *testing.T) {
	variants(t, func(t *testing.T, e *env) {
		for i, n := range []int{1, 7, 127, 128, 129, 4095, 4097, 300_001} {
			t.Run(fmt.Sprint(n), func(t *testing.T) {
				x, y := optest.Rand(uint64(i), n), optest.Rand(uint64(1000+i), n)
				xb, yb, zb := e.upload(t, "x", x), e.upload(t, "y", y), e.zeros(t, "z", n)
				e.run(t, func(p *ops.Plan) { p.Add(ops.F32(xb), ops.F32(yb), ops.F32(zb)) })
				optest.Check(t, "add", e.download(t, zb), optest.Add(x, y), nmseAdd)
				// In place: x += y, as the residual stream does.
				e.run(t, func(p *ops.Plan) { p.Add(ops.F32(xb), ops.F32(yb), ops.F32(xb)) })
				optest.Check(t, "add in place", e.download(t, xb), optest.Add(x, y), nmseAdd)
			})
		}
	})
}

// TestAddBias adds a bias row to every row in place, on awkward shapes,
// against the plain sum.
func TestAddBias(t *testing.T) {
	variants(t, func(t *testing.T, e *env) {
		for i, s := range [][2]int{{1, 1}, {3, 37}, {5, 96}, {2, 4097}} {
			rows, n := s[0], s[1]
			t.Run(fmt.Sprintf("%dx%d", rows, n), func(t *testing.T) {
				x, b := optest.Rand(uint64(40+i), rows*n), optest.Rand(uint64(400+i), n)
				want := make([]float32, len(x))
				for r := range rows {
					copy(want[r*n:], optest.Add(x[r*n:(r+1)*n], b))
				}
				xb, bb := e.upload(t, "x", x), e.upload(t, "b", b)
				e.run(t, func(p *ops.Plan) { p.AddBias(ops.F32(xb), ops.F32(bb), rows, n) })
				require.Equal(t, want, e.download(t, xb), "an f32 sum per element is exact")
			})
		}
	})
	e := newEnv(t, vk.DeviceOptions{}, 0)
	b := e.zeros(t, "b", 64)
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.AddBias(ops.F32(b), ops.F32(b).Sub(0, 7), 8, 8) }), "shape mismatch")
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.AddBias(ops.F32(b).Sub(0, 0), ops.F32(b).Sub(0, 8), 0, 8) }), "shape mismatch")
}

// TestAddLargerThanOneBinding adds vectors larger than one binding, and more
// workgroups than maxComputeWorkGroupCount[0], folded into a 2-D grid.
func TestAddLargerThanOneBinding(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates three >128 MiB vectors")
	}
	e := newEnv(t, vk.DeviceOptions{}, 64)
	n := int(e.d.Info.MaxStorageBufferRange/4) + 4097
	x, y := optest.Rand(3, n), optest.Rand(4, n)
	xb, yb, zb := e.upload(t, "x", x), e.upload(t, "y", y), e.zeros(t, "z", n)
	e.run(t, func(p *ops.Plan) { p.Add(ops.F32(xb), ops.F32(yb), ops.F32(zb)) })
	optest.Check(t, "add >1 binding", e.download(t, zb), optest.Add(x, y), nmseAdd)
}

func TestRMSNorm(t *testing.T) {
	shapes := [][2]int{{1, 1}, {1, 7}, {3, 4095}, {2, 4097}, {5, 64}, {17, 128}}
	variants(t, func(t *testing.T, e *env) {
		for i, s := range shapes {
			rows, n := s[0], s[1]
			t.Run(fmt.Sprintf("%dx%d", rows, n), func(t *testing.T) {
				x, w := optest.Rand(uint64(20+i), rows*n), optest.Rand(uint64(200+i), n)
				xb, wb, yb := e.upload(t, "x", x), e.upload(t, "w", w), e.zeros(t, "y", rows*n)
				e.run(t, func(p *ops.Plan) {
					p.RMSNorm(ops.F32(xb), ops.F32(wb), ops.F32(yb), rows, n, 1e-5)
				})
				optest.Check(t, "rmsnorm", e.download(t, yb), optest.RMSNorm(x, w, rows, n, 1e-5), nmseRMSNorm)
			})
		}
	})
}

func TestOpShapeErrors(t *testing.T) {
	e := newEnv(t, vk.DeviceOptions{}, 0)
	b := e.zeros(t, "b", 64)
	t8 := ops.F32(b).Sub(0, 8)
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.MatVec(ops.F32(b), t8, t8, 8, 9) }), "shape mismatch")
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.MatVec(ops.F32(b), t8, t8, 0, 8) }), "shape mismatch")
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.Add(t8, t8, ops.F32(b)) }), "shape mismatch")
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.RMSNorm(t8, t8, t8, 2, 4, 1e-5) }), "shape mismatch")
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.Add(ops.F32(b).Sub(60, 8), t8, t8) }), "elements [0, 8) of a 8-element tensor")
	_, err := ops.NewLibrary(e.d, ops.Options{WG: 100})
	require.ErrorContains(t, err, "power of two")
}
