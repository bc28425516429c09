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

// ScaleCap is a product, a quotient, exp and a few f32 operations against
// float64. Measured on lavapipe: at most 5.3e-14.
const nmseScaleCap = 1e-12

// scaleCapRef is x·scale, or cap·tanh(x·scale/cap) when cap > 0, in float64.
func scaleCapRef(x []float32, scale, cap float32) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		s := float64(v) * float64(scale)
		if cap > 0 {
			s = float64(cap) * math.Tanh(s/float64(cap))
		}
		y[i] = float32(s)
	}
	return y
}

func TestScaleCap(t *testing.T) {
	cases := []struct {
		scale, cap float32
		spread     float32 // x in [−spread, spread)
	}{
		{1, 30, 200},    // Gemma 2's final cap over logits beyond it
		{1, 50, 0.5},    // small logits: tanh's polynomial range
		{0.0625, 0, 40}, // Cohere2's logit scale, no cap
		{0.5, 30, 100},  // scale and cap together
		{1, 30, 4},      // both branches of tanh
	}
	variants(t, func(t *testing.T, e *env) {
		for i, c := range cases {
			for _, n := range []int{1, 37, 4097} {
				t.Run(fmt.Sprintf("scale=%g/cap=%g/spread=%g/n=%d", c.scale, c.cap, c.spread, n), func(t *testing.T) {
					x := optest.Rand(uint64(110+i), n)
					for k := range x {
						x[k] *= c.spread
					}
					b := e.upload(t, "x", append(make([]float32, 3), x...)) // x at element 3
					e.run(t, func(p *ops.Plan) { p.ScaleCap(ops.F32(b).Sub(3, uint64(n)), c.scale, c.cap) })
					got := e.download(t, b)
					check(t, "scale_cap", got[3:], scaleCapRef(x, c.scale, c.cap), nmseScaleCap)
					require.Equal(t, []float32{0, 0, 0}, got[:3], "elements before x")
				})
			}
		}
		// Extremes, where tanh from e^x overflows: every result is finite,
		// within [−cap, cap], and within a relative 1e-6 of float64's.
		t.Run("extremes", func(t *testing.T) {
			const cap = 30
			x := []float32{-3e38, 3e38, -1e30, 1e30, -1000, 1000, -89, 89, 0, float32(math.Copysign(0, -1)), 1e-30, -1e-3, 3.75, 3.76, 29.9}
			b := e.upload(t, "x", x)
			e.run(t, func(p *ops.Plan) { p.ScaleCap(ops.F32(b), 1, cap) })
			got, want := e.download(t, b), scaleCapRef(x, 1, cap)
			for k := range x {
				g := float64(got[k])
				require.False(t, math.IsNaN(g) || math.IsInf(g, 0) || math.Abs(g) > cap, "cap(%g) = %g", x[k], got[k])
				require.InDelta(t, 0, (g-float64(want[k]))/max(math.Abs(float64(want[k])), 1e-30), 1e-6, "cap(%g) = %g, want %g", x[k], got[k], want[k])
			}
		})
	})
}

func TestScaleCapErrors(t *testing.T) {
	e := newEnv(t, vk.DeviceOptions{}, 0)
	x := ops.F32(e.upload(t, "x", []float32{1, -2, 3}))
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, c := range []struct {
		name       string
		x          ops.Tensor
		scale, cap float32
		want       string
	}{
		{"empty", x.Sub(0, 0), 1, 30, "shape mismatch"},
		{"negative cap", x, 1, -30, "cap -30"},
		{"NaN scale", x, nan, 0, "scale NaN"},
		{"infinite cap", x, 1, inf, "cap +Inf"},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.ScaleCap(c.x, c.scale, c.cap) }), c.want)
		})
	}
	// Scale 1 without a cap records nothing.
	p := e.plan(t)
	p.ScaleCap(x, 1, 0)
	require.NoError(t, p.Err())
	require.Zero(t, p.Seq.Dispatches())
}
