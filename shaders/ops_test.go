package shaders_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/shaders"
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
	lib *shaders.Library
}

func newEnv(t *testing.T, opts vk.DeviceOptions, wg uint32) *env {
	d := vktest.Device(t, opts)
	lib, err := shaders.NewLibrary(d, wg)
	require.NoError(t, err)
	t.Cleanup(lib.Close)
	return &env{d: d, lib: lib}
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
func (e *env) plan(t *testing.T) *shaders.Plan {
	seq, err := e.d.NewSequence(vk.SequenceOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { seq.Close() })
	require.NoError(t, seq.Begin())
	p := e.lib.NewPlan(seq)
	t.Cleanup(p.Close)
	return p
}

// run records ops through a plan and runs them once.
func (e *env) run(t *testing.T, record func(p *shaders.Plan) error) {
	seq, err := e.d.NewSequence(vk.SequenceOptions{OneTime: true})
	require.NoError(t, err)
	defer seq.Close()
	require.NoError(t, seq.Begin())
	plan := e.lib.NewPlan(seq)
	defer plan.Close()
	require.NoError(t, record(plan))
	require.NoError(t, seq.End())
	require.NoError(t, seq.Run(2*time.Minute))
}

// variants runs f on the full feature set and on the baseline with no
// optional feature, at two workgroup widths.
func variants(t *testing.T, f func(t *testing.T, e *env)) {
	for _, v := range []struct {
		name string
		opts vk.DeviceOptions
		wg   uint32
	}{
		{"full/wg128", vk.DeviceOptions{}, 128},
		{"baseline/wg64", vk.DeviceOptions{NoOptionalFeatures: true}, 64},
	} {
		t.Run(v.name, func(t *testing.T) { f(t, newEnv(t, v.opts, v.wg)) })
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
				e.run(t, func(p *shaders.Plan) error {
					return p.MatVec(shaders.F32(wb), shaders.F32(xb), shaders.F32(yb), rows, cols)
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
	whole := shaders.F32(buf)
	w := whole.Sub(5, rows*cols)
	x := whole.Sub(5+rows*cols+3, cols)
	y := whole.Sub(5+rows*cols+3+cols+9, rows)
	e.run(t, func(p *shaders.Plan) error { return p.MatVec(w, x, y, rows, cols) })
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
	e.run(t, func(p *shaders.Plan) error {
		return p.MatVec(shaders.F32(wb), shaders.F32(xb), shaders.F32(yb), rows, cols)
	})
	optest.Check(t, "matvec >1 binding", e.download(t, yb), optest.MatVec(w, x, rows, cols), nmseMatVec)
}

func TestAdd(t *testing.T) {
	variants(t, func(t *testing.T, e *env) {
		for i, n := range []int{1, 7, 127, 128, 129, 4095, 4097, 300_001} {
			t.Run(fmt.Sprint(n), func(t *testing.T) {
				x, y := optest.Rand(uint64(i), n), optest.Rand(uint64(1000+i), n)
				xb, yb, zb := e.upload(t, "x", x), e.upload(t, "y", y), e.zeros(t, "z", n)
				e.run(t, func(p *shaders.Plan) error { return p.Add(shaders.F32(xb), shaders.F32(yb), shaders.F32(zb)) })
				optest.Check(t, "add", e.download(t, zb), optest.Add(x, y), nmseAdd)
				// In place: x += y, as the residual stream does.
				e.run(t, func(p *shaders.Plan) error { return p.Add(shaders.F32(xb), shaders.F32(yb), shaders.F32(xb)) })
				optest.Check(t, "add in place", e.download(t, xb), optest.Add(x, y), nmseAdd)
			})
		}
	})
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
	e.run(t, func(p *shaders.Plan) error { return p.Add(shaders.F32(xb), shaders.F32(yb), shaders.F32(zb)) })
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
				e.run(t, func(p *shaders.Plan) error {
					return p.RMSNorm(shaders.F32(xb), shaders.F32(wb), shaders.F32(yb), rows, n, 1e-5)
				})
				optest.Check(t, "rmsnorm", e.download(t, yb), optest.RMSNorm(x, w, rows, n, 1e-5), nmseRMSNorm)
			})
		}
	})
}

func TestOpShapeErrors(t *testing.T) {
	e := newEnv(t, vk.DeviceOptions{}, 0)
	b := e.zeros(t, "b", 64)
	p := e.plan(t)
	t8 := shaders.F32(b).Sub(0, 8)
	require.ErrorContains(t, p.MatVec(shaders.F32(b), t8, t8, 8, 9), "shape mismatch")
	require.ErrorContains(t, p.MatVec(shaders.F32(b), t8, t8, 0, 8), "shape mismatch")
	require.ErrorContains(t, p.Add(t8, t8, shaders.F32(b)), "shape mismatch")
	require.ErrorContains(t, p.RMSNorm(t8, t8, t8, 2, 4, 1e-5), "shape mismatch")
	require.ErrorContains(t, p.Add(shaders.F32(b).Sub(60, 8), t8, t8), "elements [0, 8) of a 8-element tensor")
	_, err := shaders.NewLibrary(e.d, 100)
	require.ErrorContains(t, err, "power of two")
}
