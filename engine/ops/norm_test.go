package ops_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/vk"
)

// LayerNorm sums twice (the mean, then the squared deviations) in a
// different order from float64. Measured on lavapipe: at most 6.2e-15,
// rows near 100 included, which is what the kernel's shift by the row's
// first element buys: unshifted, those rows measured 5.5e-11, which this
// bound rejects.
const nmseLayerNorm = 1e-12

// layerNormRef is LayerNorm without bias in float64: y = (x − mean) /
// √(var + eps) · w per row, var = mean((x − mean)²).
func layerNormRef(x, w []float32, rows, n int, eps float32) []float32 {
	y := make([]float32, rows*n)
	for r := range rows {
		row := x[r*n : (r+1)*n]
		var sum float64
		for _, v := range row {
			sum += float64(v)
		}
		mean := sum / float64(n)
		var ss float64
		for _, v := range row {
			d := float64(v) - mean
			ss += d * d
		}
		scale := 1 / math.Sqrt(ss/float64(n)+float64(eps))
		for i, v := range row {
			y[r*n+i] = float32((float64(v) - mean) * scale * float64(w[i]))
		}
	}
	return y
}

func TestLayerNorm(t *testing.T) {
	cases := []struct {
		rows, n int
		offset  float32 // added to every x: a mean far from 0
	}{{1, 1, 0}, {1, 7, 0}, {3, 37, 0}, {3, 37, 100}, {2, 4097, 0}, {5, 64, -3}}
	variants(t, func(t *testing.T, e *env) {
		for i, c := range cases {
			t.Run(fmt.Sprintf("%dx%d/offset=%g", c.rows, c.n, c.offset), func(t *testing.T) {
				x, w := optest.Rand(uint64(30+i), c.rows*c.n), optest.Rand(uint64(300+i), c.n)
				for k := range x {
					x[k] += c.offset
				}
				xb, wb, yb := e.upload(t, "x", x), e.upload(t, "w", w), e.zeros(t, "y", c.rows*c.n)
				e.run(t, func(p *ops.Plan) {
					p.LayerNorm(ops.F32(xb), ops.F32(wb), ops.F32(yb), c.rows, c.n, 1e-5)
				})
				want := layerNormRef(x, w, c.rows, c.n, 1e-5)
				check(t, "layernorm", e.download(t, yb), want, nmseLayerNorm)
				// In place, as a norm of the residual stream into itself.
				e.run(t, func(p *ops.Plan) {
					p.LayerNorm(ops.F32(xb), ops.F32(wb), ops.F32(xb), c.rows, c.n, 1e-5)
				})
				check(t, "layernorm in place", e.download(t, xb), want, nmseLayerNorm)
			})
		}
	})
}

// TestRMSNormAdd: y += rmsnorm(x)·w equals y0 + RMSNorm(x) to the
// RMSNorm bound, on rows at unaligned offsets of one shared buffer.
func TestRMSNormAdd(t *testing.T) {
	shapes := [][2]int{{1, 1}, {3, 37}, {2, 4097}, {17, 128}}
	variants(t, func(t *testing.T, e *env) {
		for i, s := range shapes {
			rows, n := s[0], s[1]
			t.Run(fmt.Sprintf("%dx%d", rows, n), func(t *testing.T) {
				x, w, y0 := optest.Rand(uint64(40+i), rows*n), optest.Rand(uint64(400+i), n), optest.Rand(uint64(500+i), rows*n)
				// One buffer: 3 pad, x, 1 pad, y.
				all := append(append(append(make([]float32, 3), x...), 0), y0...)
				buf, wb := e.upload(t, "x|y", all), e.upload(t, "w", w)
				xt := ops.F32(buf).Sub(3, uint64(rows*n))
				yt := ops.F32(buf).Sub(uint64(4+rows*n), uint64(rows*n))
				e.run(t, func(p *ops.Plan) { p.RMSNormAdd(xt, ops.F32(wb), yt, rows, n, 1e-6) })
				got := e.download(t, buf)
				want := optest.Add(y0, optest.RMSNorm(x, w, rows, n, 1e-6))
				check(t, "rmsnorm add", got[yt.Off:], want, nmseRMSNorm)
				require.Equal(t, all[:yt.Off], got[:yt.Off], "x and the padding are untouched")
			})
		}
	})
}

// headNormRef is HeadNormQK in float64 on qkv (ntok, (heads+2·kvHeads)·hd).
func headNormRef(qkv, qNorm, kNorm []float32, ntok, heads, kvHeads, hd int, eps float32) []float32 {
	out := append([]float32(nil), qkv...)
	row := (heads + 2*kvHeads) * hd
	for t := range ntok {
		for h := range heads + kvHeads {
			w := qNorm
			if h >= heads {
				w = kNorm
			}
			b := t*row + h*hd
			copy(out[b:b+hd], optest.RMSNorm(qkv[b:b+hd], w, 1, hd, eps))
		}
	}
	return out
}

// TestHeadNormQK normalises each q head with qNorm and each k head with
// kNorm in place, leaving the v heads bit for bit, for several tokens and
// GQA head counts, with qkv at an odd offset of its buffer.
func TestHeadNormQK(t *testing.T) {
	cases := []struct{ ntok, heads, kvHeads, headDim int }{{1, 1, 1, 1}, {3, 4, 2, 37}, {2, 3, 1, 256}, {5, 2, 2, 8}}
	variants(t, func(t *testing.T, e *env) {
		for i, c := range cases {
			t.Run(fmt.Sprintf("ntok=%d/%d+%dx%d", c.ntok, c.heads, c.kvHeads, c.headDim), func(t *testing.T) {
				n := c.ntok * (c.heads + 2*c.kvHeads) * c.headDim
				qkv := optest.Rand(uint64(50+i), n)
				norms := optest.Rand(uint64(600+i), 2*c.headDim)
				qb := e.upload(t, "qkv", append(make([]float32, 5), qkv...))
				nb := e.upload(t, "norms", norms)
				qn, kn := ops.F32(nb).Sub(0, uint64(c.headDim)), ops.F32(nb).Sub(uint64(c.headDim), uint64(c.headDim))
				e.run(t, func(p *ops.Plan) {
					p.HeadNormQK(ops.F32(qb).Sub(5, uint64(n)), qn, kn, c.ntok, c.heads, c.kvHeads, c.headDim, 1e-6)
				})
				got := e.download(t, qb)[5:]
				want := headNormRef(qkv, norms[:c.headDim], norms[c.headDim:], c.ntok, c.heads, c.kvHeads, c.headDim, 1e-6)
				check(t, "head norm qk", got, want, nmseRMSNorm)
				row := (c.heads + 2*c.kvHeads) * c.headDim
				for r := range c.ntok {
					v := r*row + (c.heads+c.kvHeads)*c.headDim
					require.Equal(t, qkv[v:(r+1)*row], got[v:(r+1)*row], "v heads of row %d", r)
				}
			})
		}
	})
}

func TestNormErrors(t *testing.T) {
	e := newEnv(t, vk.DeviceOptions{}, 0)
	b := ops.F32(e.zeros(t, "b", 256))
	for _, c := range []struct {
		name   string
		record func(p *ops.Plan)
		want   string
	}{
		{"layernorm w too long", func(p *ops.Plan) { p.LayerNorm(b.Sub(0, 8), b.Sub(8, 8), b.Sub(16, 8), 2, 4, 1e-5) }, "shape mismatch"},
		{"layernorm no rows", func(p *ops.Plan) { p.LayerNorm(b.Sub(0, 0), b.Sub(8, 4), b.Sub(16, 0), 0, 4, 1e-5) }, "shape mismatch"},
		{"rmsnorm negative eps", func(p *ops.Plan) { p.RMSNorm(b.Sub(0, 8), b.Sub(8, 4), b.Sub(16, 8), 2, 4, -1) }, "epsilon -1"},
		{"layernorm NaN eps", func(p *ops.Plan) { p.LayerNorm(b.Sub(0, 8), b.Sub(8, 4), b.Sub(16, 8), 2, 4, float32(math.NaN())) }, "epsilon NaN"},
		{"add in place", func(p *ops.Plan) { p.RMSNormAdd(b.Sub(0, 8), b.Sub(8, 4), b.Sub(0, 8), 2, 4, 1e-5) }, "overlap"},
		{"add overlapping", func(p *ops.Plan) { p.RMSNormAdd(b.Sub(0, 8), b.Sub(8, 4), b.Sub(7, 8), 2, 4, 1e-5) }, "overlap"},
		{"add y short", func(p *ops.Plan) { p.RMSNormAdd(b.Sub(0, 8), b.Sub(8, 4), b.Sub(16, 7), 2, 4, 1e-5) }, "shape mismatch"},
		{"head norm qkv short", func(p *ops.Plan) { p.HeadNormQK(b.Sub(0, 31), b.Sub(32, 8), b.Sub(40, 8), 1, 2, 1, 8, 1e-6) }, "shape mismatch"},
		{"head norm k norm short", func(p *ops.Plan) { p.HeadNormQK(b.Sub(0, 32), b.Sub(32, 8), b.Sub(40, 7), 1, 2, 1, 8, 1e-6) }, "shape mismatch"},
		{"head norm no kv heads", func(p *ops.Plan) { p.HeadNormQK(b.Sub(0, 16), b.Sub(32, 8), b.Sub(40, 8), 1, 2, 0, 8, 1e-6) }, "shape mismatch"},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.ErrorContains(t, e.try(t, c.record), c.want)
		})
	}
	// Distinct x and y side by side in one buffer are fine.
	require.NoError(t, e.try(t, func(p *ops.Plan) { p.RMSNormAdd(b.Sub(0, 8), b.Sub(16, 4), b.Sub(8, 8), 2, 4, 1e-5) }))
}
