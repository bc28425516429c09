package ops_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/vk"
)

var benchShapes = [][2]int{{4096, 4096}, {14336, 4096}, {4096, 14336}}

// BenchmarkMatVecF32 reports GB/s of weights read (b.SetBytes is W's size)
// for the GPU kernel, 16 back-to-back matvecs per submit as in a decode step.
func BenchmarkMatVecF32(b *testing.B) {
	for _, s := range benchShapes {
		rows, cols := s[0], s[1]
		b.Run(fmt.Sprintf("gpu/%dx%d", rows, cols), func(b *testing.B) {
			e := newBenchEnv(b)
			w, err := e.d.NewBuffer("W", uint64(4*rows*cols), vk.DeviceMemory)
			require.NoError(b, err)
			defer w.Close()
			x, err := e.d.NewBuffer("x", uint64(4*cols), vk.DeviceMemory)
			require.NoError(b, err)
			defer x.Close()
			y, err := e.d.NewBuffer("y", uint64(4*rows*16), vk.DeviceMemory)
			require.NoError(b, err)
			defer y.Close()
			require.NoError(b, e.d.Upload(w, 0, optest.Bytes(optest.Rand(1, rows*cols))))
			seq, err := e.d.NewSequence(vk.SequenceOptions{})
			require.NoError(b, err)
			defer seq.Close()
			require.NoError(b, seq.Begin())
			plan := e.lib.NewPlan(seq)
			defer plan.Close()
			const reps = 16
			for i := range reps {
				plan.MatVec(ops.F32(w), ops.F32(x), ops.F32(y).Sub(uint64(i*rows), uint64(rows)), rows, cols)
			}
			require.NoError(b, plan.Err())
			require.NoError(b, seq.End())
			b.SetBytes(int64(4 * rows * cols * reps))
			b.ResetTimer()
			for b.Loop() {
				if err := seq.Run(time.Minute); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(4*rows*cols*reps)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
		b.Run(fmt.Sprintf("go/%dx%d", rows, cols), func(b *testing.B) {
			w, x := optest.Rand(1, rows*cols), optest.Rand(2, cols)
			y := make([]float32, rows)
			b.SetBytes(int64(4 * rows * cols))
			for b.Loop() {
				goMatVec(y, w, x, cols)
			}
			b.ReportMetric(float64(4*rows*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}

// goMatVec is the plain Go f32 matvec the GPU is compared with: a single
// goroutine, four accumulators.
func goMatVec(y, w, x []float32, cols int) {
	for r := range y {
		row := w[r*cols : (r+1)*cols]
		var a0, a1, a2, a3 float32
		c := 0
		for ; c+4 <= cols; c += 4 {
			a0 += row[c] * x[c]
			a1 += row[c+1] * x[c+1]
			a2 += row[c+2] * x[c+2]
			a3 += row[c+3] * x[c+3]
		}
		for ; c < cols; c++ {
			a0 += row[c] * x[c]
		}
		y[r] = a0 + a1 + a2 + a3
	}
}

func newBenchEnv(b *testing.B) *env {
	d := vktest.Device(b, vk.DeviceOptions{})
	lib, err := ops.NewLibrary(d, ops.Options{})
	require.NoError(b, err)
	b.Cleanup(lib.Close)
	return &env{d: d, lib: lib}
}

// BenchmarkCopy reports the device's buffer-to-buffer copy bandwidth
// (vkCmdCopyBuffer of 256 MiB), the yardstick for the matmul kernels' GB/s:
// bytes copied per second, each byte read once and written once.
func BenchmarkCopy(b *testing.B) {
	const size = 256 << 20
	e := newBenchEnv(b)
	src, err := e.d.NewBuffer("src", size, vk.DeviceMemory)
	require.NoError(b, err)
	defer src.Close()
	dst, err := e.d.NewBuffer("dst", size, vk.DeviceMemory)
	require.NoError(b, err)
	defer dst.Close()
	seq, err := e.d.NewSequence(vk.SequenceOptions{})
	require.NoError(b, err)
	defer seq.Close()
	require.NoError(b, seq.Begin())
	seq.Fill(src.Slice(0, size), 0x3f800000)
	require.NoError(b, seq.End())
	require.NoError(b, seq.Run(time.Minute))
	require.NoError(b, seq.Begin())
	seq.Copy(src.Slice(0, size), dst.Slice(0, size))
	require.NoError(b, seq.End())
	require.NoError(b, seq.Run(time.Minute)) // first touch of dst's pages
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		if err := seq.Run(time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
}
