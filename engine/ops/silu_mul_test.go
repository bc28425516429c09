package ops_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
)

// SiluMul uses the GPU's exp (a few ulps on lavapipe and GPUs) and three
// f32 operations, against float64. Measured on lavapipe: at most 5.6e-15.
const nmseSiluMul = 1e-12

func TestSiluMul(t *testing.T) {
	variants(t, func(t *testing.T, e *env) {
		for i, n := range []int{1, 7, 127, 4097, 300_001} {
			t.Run(fmt.Sprint(n), func(t *testing.T) {
				g, u := optest.Rand(uint64(80+i), n), optest.Rand(uint64(90+i), n)
				for k := range g {
					g[k] *= 30 // sigmoid's tails: exp(30) and exp(-30)
				}
				gb, ub, hb := e.upload(t, "g", g), e.upload(t, "u", u), e.zeros(t, "h", n)
				e.run(t, func(p *ops.Plan) { p.SiluMul(ops.F32(gb), ops.F32(ub), ops.F32(hb)) })
				want := optest.SiluMul(g, u)
				check(t, "silu_mul", e.download(t, hb), want, nmseSiluMul)
				// In place: h = g, as the FFN does.
				e.run(t, func(p *ops.Plan) { p.SiluMul(ops.F32(gb), ops.F32(ub), ops.F32(gb)) })
				check(t, "silu_mul in place", e.download(t, gb), want, nmseSiluMul)
			})
		}
		// Extremes, where a naive g/(1+exp(−g)) overflows exp: every result is
		// finite and within a relative 1e-6 of float64's (silu(−1000) is −0).
		t.Run("extremes", func(t *testing.T) {
			g := []float32{-1000, 1000, -88.8, 88.8, -3e38, 3e38, 0, float32(math.Copysign(0, -1)), -20, 20, 1e-30}
			u := make([]float32, len(g))
			for k := range u {
				u[k] = 0.5
			}
			gb, ub, hb := e.upload(t, "g", g), e.upload(t, "u", u), e.zeros(t, "h", len(g))
			e.run(t, func(p *ops.Plan) { p.SiluMul(ops.F32(gb), ops.F32(ub), ops.F32(hb)) })
			got, want := e.download(t, hb), optest.SiluMul(g, u)
			for k := range g {
				require.False(t, math.IsNaN(float64(got[k])) || math.IsInf(float64(got[k]), 0), "silu(%g) = %g", g[k], got[k])
				require.InDelta(t, 0, (float64(got[k])-float64(want[k]))/max(math.Abs(float64(want[k])), 1e-30), 1e-6,
					"silu(%g)·0.5 = %g, want %g", g[k], got[k], want[k])
			}
		})
	})
}

// TestSiluMulRows: the fused FFN gate, silu(g)·u with g and u side by side
// in one (ntok, 2·ffn) product, equals SiluMul on separate g and u bit for
// bit, on rows of an odd length.
func TestSiluMulRows(t *testing.T) {
	variants(t, func(t *testing.T, e *env) {
		const ntok, ffn = 3, 37
		g, u := optest.Rand(61, ntok*ffn), optest.Rand(62, ntok*ffn)
		gu := make([]float32, 0, 2*ntok*ffn)
		for r := range ntok {
			gu = append(append(gu, g[r*ffn:(r+1)*ffn]...), u[r*ffn:(r+1)*ffn]...)
		}
		gb, ub, gub := e.upload(t, "g", g), e.upload(t, "u", u), e.upload(t, "gu", gu)
		want, got := e.zeros(t, "want", ntok*ffn), e.zeros(t, "got", ntok*ffn)
		e.run(t, func(p *ops.Plan) {
			p.SiluMul(ops.F32(gb), ops.F32(ub), ops.F32(want))
			p.SiluMulRows(ops.F32(gub), ops.F32(got), ntok, ffn)
		})
		w := e.download(t, want)
		require.Equal(t, w, e.download(t, got))
		check(t, "silu_mul rows", w, optest.SiluMul(g, u), nmseSiluMul)
		require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.SiluMulRows(ops.F32(gub), ops.F32(got), ntok, ffn+1) }), "shape mismatch")
	})
}
