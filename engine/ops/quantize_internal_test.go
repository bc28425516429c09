package ops

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/vk"
)

// TestQuantizeQ8 runs the q8 quantisation of the integer-dot matmul
// (quantize_q8.comp) over rows in several dispatches and compares every
// block with optest.QuantizeQ8: the layout exactly, the scale within 3
// ulp and each value within one step, and a value only one step off where
// x·127/m lies within 1e-4 of a half (Vulkan lets m/127 and 127/m be 2.5
// ulp off); the sum must be the values' own. Zero, tiny, infinite and NaN
// blocks must quantise to zero values, and an infinite or NaN block to an
// infinite scale (every product with it NaN).
func TestQuantizeQ8(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	lib, err := NewLibrary(d, Options{})
	require.NoError(t, err)
	defer lib.Close()
	const rows, cols = 5, 96 // 3 blocks a row, 2 tokens a dispatch
	x := optest.Rand(1, rows*cols)
	for i := range x {
		x[i] *= float32(1 + i%5*1000)
	}
	special := map[int]float32{0: 0, 1: 1e-35, 2: float32(math.Inf(-1)), 3: float32(math.NaN())} // blocks 3·r: row r's first
	for r, v := range special {
		for j := range 32 {
			x[r*cols+j] = 0
		}
		x[r*cols+7] = v
		if r == 1 {
			x[r*cols+9] = -v / 2
		}
	}
	xb, err := d.NewBuffer("x", uint64(4*len(x)), vk.DeviceMemory)
	require.NoError(t, err)
	defer xb.Close()
	require.NoError(t, d.Upload(xb, 0, optest.Bytes(x)))
	seq, err := d.NewSequence(vk.SequenceOptions{OneTime: true})
	require.NoError(t, err)
	defer seq.Close()
	require.NoError(t, seq.Begin())
	p := lib.NewPlan(seq)
	defer p.Close()
	q, err := p.quantizeQ8(F32(xb), rows, cols, 2)
	require.NoError(t, err)
	require.NoError(t, seq.End())
	require.NoError(t, seq.Run(time.Minute))
	raw := make([]byte, 4*q.Len)
	require.NoError(t, d.Download(q.Buf, 4*q.Off, raw))
	got := make([]uint32, q.Len)
	for i := range got {
		got[i] = uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24
	}
	want, _ := optest.QuantizeQ8(x)
	require.Len(t, got, len(want))
	require.EqualValues(t, rows*shaders.Q8RowWords(cols), len(got))
	off := 0
	for b := range len(want) / shaders.Q8BlockWords {
		g, w := got[12*b:12*b+12], want[12*b:12*b+12]
		require.Zero(t, g[10]|g[11], "block %d: padding", b)
		gd, wd := math.Float32frombits(g[8]), math.Float32frombits(w[8])
		var sum int32
		for j := range 32 {
			gq, wq := int8(g[j/4]>>(8*(j%4))), int8(w[j/4]>>(8*(j%4)))
			sum += int32(gq)
			if gq == wq {
				continue
			}
			m := wd * 127
			exact := float64(x[32*b+j]) * 127 / float64(m)
			require.LessOrEqual(t, math.Abs(float64(gq)-float64(wq)), 1.0, "block %d value %d", b, j)
			require.Less(t, math.Abs(math.Abs(exact-math.Trunc(exact))-0.5), 1e-4, "block %d value %d: %d, want %d (x·127/m = %g)", b, j, gq, wq, exact)
			off++
		}
		require.Equal(t, sum, int32(g[9]), "block %d: the sum of its values", b)
		if r, ok := special[b/3]; ok && b%3 == 0 {
			require.Zero(t, sum, "block %d (max %g): values", b, r)
			for j := range 8 {
				require.Zero(t, g[j], "block %d (max %g): values", b, r)
			}
			if math.IsInf(float64(r), 0) || r != r {
				require.True(t, math.IsInf(float64(gd), 1), "block %d (max %g): scale %g, want +Inf", b, r, gd)
			}
			continue
		}
		require.InDelta(t, 0, float64(int32(g[8])-int32(w[8])), 3, "block %d: scale %g, want %g", b, gd, wd)
	}
	t.Logf("%d of %d values a step off the reference's rounding", off, rows*cols)
}

// TestQ8Scratch: a plan given Q8Scratch's words by SetQ8Scratch rounds x
// into them and allocates nothing; one given too few allocates its own.
func TestQ8Scratch(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	if !d.Features.IntegerDotProduct {
		t.Skipf("%s has no shaderIntegerDotProduct", d.Info.Name)
	}
	lib, err := NewLibrary(d, Options{Layout: ForceGPU, Dot: ForceDot})
	if err != nil {
		t.Skipf("the integer-dot matmul needs subgroup shuffles too: %v", err)
	}
	defer lib.Close()
	plain, err := NewLibrary(d, Options{Layout: ForceGPU, Dot: NoDot})
	require.NoError(t, err)
	defer plain.Close()
	require.Zero(t, plain.Q8Scratch(8, 4096), "no integer dot, no q8 rows")
	const rows, cols = 3, 64
	n := lib.Q8Scratch(rows, cols)
	require.EqualValues(t, rows*shaders.Q8RowWords(cols), n)
	require.Equal(t, n, lib.Q8Scratch(rows, cols-5), "columns rounded up to whole blocks")
	xb, err := d.NewBuffer("x", 4*rows*cols, vk.DeviceMemory)
	require.NoError(t, err)
	defer xb.Close()
	shared, err := d.NewBuffer("shared q8", 4*n, vk.DeviceMemory)
	require.NoError(t, err)
	defer shared.Close()
	for _, c := range []struct {
		scratch Tensor
		own     int
	}{{F32(shared), 0}, {F32(shared).Sub(0, n-1), 1}} {
		seq, err := d.NewSequence(vk.SequenceOptions{OneTime: true})
		require.NoError(t, err)
		require.NoError(t, seq.Begin())
		p := lib.NewPlan(seq)
		p.SetQ8Scratch(c.scratch)
		q, err := p.quantizeQ8(F32(xb), rows, cols, rows)
		require.NoError(t, err)
		require.Len(t, p.own, c.own)
		if c.own == 0 {
			require.Same(t, shared, q.Buf)
		}
		require.NoError(t, seq.End())
		p.Close()
		seq.Close()
	}
}
