package ops_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/vk"
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

// ActMul with GELU's tanh approximation: the kernel computes it as
// g·σ(2u), the test from the textbook 0.5·g·(1 + tanh(u)) in float64.
// Measured on lavapipe: at most 3.6e-15.
const nmseGELU = 1e-12

// geluTanhRef is act(g)·u with GELU's tanh approximation, in float64.
func geluTanhRef(g, u []float32) []float32 {
	h := make([]float32, len(g))
	for i, v := range g {
		x := float64(v)
		h[i] = float32(0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x))) * float64(u[i]))
	}
	return h
}

func TestActMulGELU(t *testing.T) {
	variants(t, func(t *testing.T, e *env) {
		for i, n := range []int{1, 7, 127, 4097} {
			t.Run(fmt.Sprint(n), func(t *testing.T) {
				g, u := optest.Rand(uint64(180+i), n), optest.Rand(uint64(190+i), n)
				for k := range g {
					g[k] *= 6 // both tails: gelu(−6) is −6·e^−28
				}
				gb, ub, hb := e.upload(t, "g", g), e.upload(t, "u", u), e.zeros(t, "h", n)
				e.run(t, func(p *ops.Plan) { p.ActMul(loader.ActGELUTanh, ops.F32(gb), ops.F32(ub), ops.F32(hb)) })
				want := geluTanhRef(g, u)
				check(t, "gelu_tanh_mul", e.download(t, hb), want, nmseGELU)
				e.run(t, func(p *ops.Plan) { p.ActMul(loader.ActGELUTanh, ops.F32(gb), ops.F32(ub), ops.F32(gb)) })
				check(t, "gelu_tanh_mul in place", e.download(t, gb), want, nmseGELU)
			})
		}
		// Extremes, where tanh computed from e^u overflows and g³ does:
		// every result is finite and within a relative 1e-6·max(1, |2u|)
		// of float64's (below 1e-30 absolute for the vanishing negative
		// tail). In the negative tail the result is about g·e^2u, so the f32
		// rounding of u alone moves it by |2u| ulps: at g = −5, 1.4e-6.
		t.Run("extremes", func(t *testing.T) {
			g := []float32{-1000, 1000, -3e38, 3e38, -1e13, 1e13, -44.5, 44.5, -10, -5, -3, 3, 0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, 0.01}
			u := make([]float32, len(g))
			for k := range u {
				u[k] = 0.5
			}
			gb, ub, hb := e.upload(t, "g", g), e.upload(t, "u", u), e.zeros(t, "h", len(g))
			e.run(t, func(p *ops.Plan) { p.ActMul(loader.ActGELUTanh, ops.F32(gb), ops.F32(ub), ops.F32(hb)) })
			got, want := e.download(t, hb), geluTanhRef(g, u)
			for k := range g {
				require.False(t, math.IsNaN(float64(got[k])) || math.IsInf(float64(got[k]), 0), "gelu(%g) = %g", g[k], got[k])
				x := float64(g[k])
				z := math.Abs(2 * math.Sqrt(2/math.Pi) * (x + 0.044715*x*x*x))
				require.InDelta(t, 0, (float64(got[k])-float64(want[k]))/max(math.Abs(float64(want[k])), 1e-30), 1e-6*max(1, z),
					"gelu(%g)·0.5 = %g, want %g", g[k], got[k], want[k])
			}
		})
	})
}

// TestActMulRows: the gated activation on g|u rows equals ActMul on
// separate g and u bit for bit, for each activation, and an activation
// without a kernel is an error.
func TestActMulRows(t *testing.T) {
	const ntok, ffn = 3, 37
	e := newEnv(t, vk.DeviceOptions{}, 0)
	g, u := optest.Rand(63, ntok*ffn), optest.Rand(64, ntok*ffn)
	for k := range g {
		g[k] *= 4
	}
	gu := make([]float32, 0, 2*ntok*ffn)
	for r := range ntok {
		gu = append(append(gu, g[r*ffn:(r+1)*ffn]...), u[r*ffn:(r+1)*ffn]...)
	}
	gb, ub, gub := e.upload(t, "g", g), e.upload(t, "u", u), e.upload(t, "gu", gu)
	refs := map[loader.Activation]func(g, u []float32) []float32{loader.ActSiLU: optest.SiluMul, loader.ActGELUTanh: geluTanhRef}
	for _, act := range []loader.Activation{loader.ActSiLU, loader.ActGELUTanh} {
		t.Run(act.String(), func(t *testing.T) {
			want, got := e.zeros(t, "want", ntok*ffn), e.zeros(t, "got", ntok*ffn)
			e.run(t, func(p *ops.Plan) {
				p.ActMul(act, ops.F32(gb), ops.F32(ub), ops.F32(want))
				p.ActMulRows(act, ops.F32(gub), ops.F32(got), ntok, ffn)
			})
			w := e.download(t, want)
			require.Equal(t, w, e.download(t, got))
			check(t, act.String()+" rows", w, refs[act](g, u), nmseGELU)
		})
	}
	bad := loader.Activation(9)
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.ActMul(bad, ops.F32(gb), ops.F32(ub), ops.F32(gb)) }), "no kernel for activation Activation(9)")
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.ActMulRows(bad, ops.F32(gub), ops.F32(gb), ntok, ffn) }), "no kernel for activation")
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.ActMul(loader.ActGELUTanh, ops.F32(gb), ops.F32(gub), ops.F32(gb)) }), "shape mismatch")
}
