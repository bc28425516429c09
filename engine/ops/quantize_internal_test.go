package ops

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/loader"
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

// dotLib is a GPU-layout library with the integer-dot products of choice
// (ForceDot or AllDot) at workgroup width wg, or a skip naming what the
// device lacks.
func dotLib(t *testing.T, d *vk.Device, wg uint32, choice DotChoice) *Library {
	t.Helper()
	if !d.Features.IntegerDotProduct {
		t.Skipf("%s has no shaderIntegerDotProduct", d.Info.Name)
	}
	lib, err := NewLibrary(d, Options{WG: wg, Layout: ForceGPU, Dot: choice})
	if err != nil {
		t.Skipf("the integer-dot matmul needs subgroup shuffles too: %v", err)
	}
	t.Cleanup(lib.Close)
	return lib
}

// recordRun records ops into a fresh plan over q8 (SetQ8Scratch), runs
// them and returns the plan's dispatch count.
func recordRun(t *testing.T, lib *Library, q8 Tensor, record func(p *Plan)) int {
	t.Helper()
	seq, err := lib.Device.NewSequence(vk.SequenceOptions{OneTime: true})
	require.NoError(t, err)
	defer seq.Close()
	require.NoError(t, seq.Begin())
	p := lib.NewPlan(seq)
	defer p.Close()
	p.SetQ8Scratch(q8)
	record(p)
	require.NoError(t, p.Err())
	require.Empty(t, p.own, "the plan's q8 rows fit its scratch")
	n := seq.Dispatches()
	require.NoError(t, seq.End())
	require.NoError(t, seq.Run(time.Minute))
	return n
}

func (l *Library) upload(t *testing.T, name string, v []float32) Tensor {
	b, err := l.Device.NewBuffer(name, uint64(4*max(len(v), 1)), vk.DeviceMemory)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	if len(v) > 0 {
		require.NoError(t, l.Device.Upload(b, 0, optest.Bytes(v)))
	}
	return F32(b).Sub(0, uint64(len(v)))
}

func (l *Library) words(t *testing.T, x Tensor) []uint32 {
	raw := make([]byte, 4*x.Len)
	require.NoError(t, l.Device.Download(x.Buf, 4*x.Off, raw))
	out := make([]uint32, x.Len)
	for i := range out {
		out[i] = uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24
	}
	return out
}

// TestNormQ8: where the library takes integer-dot products, RMSNorm and
// LayerNorm of plain rows also write their output as q8 rows, which must
// be the bits quantize_q8 makes of that output (same y, same q8 words), at
// two workgroup widths and with rows shorter than, equal to and longer
// than a workgroup's run (96, 128, 4128 columns); and y must be the plain
// norm's, bit for bit.
func TestNormQ8(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	for _, wg := range []uint32{128, 64} {
		lib := dotLib(t, d, wg, ForceDot)
		plain, err := NewLibrary(d, Options{WG: wg, Layout: ForceGPU, Dot: NoDot})
		require.NoError(t, err)
		defer plain.Close()
		for _, kind := range []loader.NormKind{loader.NormRMS, loader.NormLayer} {
			for _, cols := range []int{96, 128, 4128} {
				t.Run(fmt.Sprintf("wg%d/%s/%d", wg, kind, cols), func(t *testing.T) {
					const rows = 3
					x := optest.Rand(uint64(cols), rows*cols)
					for i := range x {
						x[i] = x[i]*float32(1+i%9*30) + 5
					}
					xt, wt := lib.upload(t, "x", x), lib.upload(t, "w", optest.Rand(7, cols))
					y, yPlain := lib.upload(t, "y", make([]float32, rows*cols)), lib.upload(t, "y plain", make([]float32, rows*cols))
					n := lib.Q8Scratch(rows, cols)
					fused, again := lib.upload(t, "q8 fused", make([]float32, n)), lib.upload(t, "q8 again", make([]float32, n))
					norm := func(p *Plan, y Tensor) {
						if kind == loader.NormLayer {
							p.LayerNorm(xt, wt, y, rows, cols, 1e-5)
						} else {
							p.RMSNorm(xt, wt, y, rows, cols, 1e-5)
						}
					}
					require.Equal(t, 1, recordRun(t, lib, fused, func(p *Plan) {
						norm(p, y)
						_, ok := p.q8Of(y, uint64(cols))
						require.True(t, ok, "the norm's q8 rows are y's")
					}))
					recordRun(t, lib, again, func(p *Plan) {
						_, err := p.quantizeQ8(y, rows, uint64(cols), rows)
						require.NoError(t, err)
					})
					seq, err := d.NewSequence(vk.SequenceOptions{OneTime: true})
					require.NoError(t, err)
					defer seq.Close()
					require.NoError(t, seq.Begin())
					pp := plain.NewPlan(seq)
					defer pp.Close()
					norm(pp, yPlain)
					require.NoError(t, pp.Err())
					require.NoError(t, seq.End())
					require.NoError(t, seq.Run(time.Minute))
					requireWordsEqual(t, "y against the plain norm's", lib.words(t, y), lib.words(t, yPlain))
					requireWordsEqual(t, "the norm's q8 rows against quantize_q8 of its y", lib.words(t, fused), lib.words(t, again))
				})
			}
		}
	}
}

// TestQ8Reuse (AllDot): a product whose x is the q8 rows the plan holds (a
// norm's output, or an x already rounded for an earlier product) rounds
// nothing again, and any op that writes x in between makes the next
// product round it afresh. Dispatch counts say which ran; the results must equal a plan
// that rounds x for every product.
func TestQ8Reuse(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	lib := dotLib(t, d, 0, AllDot)
	const rows, cols = 40, 64
	gguf := make([]float32, rows*cols)
	copy(gguf, optest.Rand(3, rows*cols))
	packed, err := loader.Quantize(loader.Q8_0, gguf)
	require.NoError(t, err)
	dev, err := Pack(loader.Q8_0, packed, rows, cols)
	require.NoError(t, err)
	wb, err := d.NewBuffer("W", uint64(len(dev)), vk.DeviceMemory)
	require.NoError(t, err)
	defer wb.Close()
	require.NoError(t, d.Upload(wb, 0, dev))
	w := Weight{Buf: wb, Type: loader.Q8_0, Rows: rows, Cols: cols}
	x, nw := lib.upload(t, "x", optest.Rand(4, 2*cols)), lib.upload(t, "norm w", optest.Rand(5, cols))
	h, y1, y2, y3 := lib.upload(t, "h", make([]float32, 2*cols)), lib.upload(t, "y1", make([]float32, 2*rows)), lib.upload(t, "y2", make([]float32, 2*rows)), lib.upload(t, "y3", make([]float32, 2*rows))
	q8 := lib.upload(t, "q8", make([]float32, lib.Q8Scratch(2, cols)))
	n := recordRun(t, lib, q8, func(p *Plan) {
		p.RMSNorm(x, nw, h, 2, cols, 1e-5) // h and its q8 rows
		p.MatMul(w, h, y1, 2, false)       // reads them
		p.MatMul(w, h, y2, 2, false)       // and again
		p.Add(h, h, h)                     // h = 2h: its q8 rows are stale
		p.MatMul(w, h, y3, 2, false)       // rounds h afresh
	})
	require.Equal(t, 6, n, "norm, 2 products, add, then quantize and product")
	// The same products, x rounded for each: a product at a time.
	z1, z3 := lib.upload(t, "z1", make([]float32, 2*rows)), lib.upload(t, "z3", make([]float32, 2*rows))
	recordRun(t, lib, q8, func(p *Plan) { p.RMSNorm(x, nw, h, 2, cols, 1e-5) })
	recordRun(t, lib, q8, func(p *Plan) { p.q8src = q8Source{}; p.MatMul(w, h, z1, 2, false) })
	recordRun(t, lib, q8, func(p *Plan) { p.Add(h, h, h) })
	require.Equal(t, 2, recordRun(t, lib, q8, func(p *Plan) { p.MatMul(w, h, z3, 2, false) }), "quantize and product")
	requireWordsEqual(t, "a product of the norm's q8 rows", lib.words(t, y1), lib.words(t, z1))
	requireWordsEqual(t, "a second product of them", lib.words(t, y2), lib.words(t, z1))
	requireWordsEqual(t, "a product after x was written", lib.words(t, y3), lib.words(t, z3))
}

// requireWordsEqual fails at the first word where got and want differ.
func requireWordsEqual(t *testing.T, what string, got, want []uint32) {
	t.Helper()
	require.Equal(t, len(want), len(got), what)
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: word %d of %d: %#x, want %#x", what, i, len(got), got[i], want[i])
		}
	}
}
