package ops_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/vk"
)

// RoPE is two products and a sum per output, in f32 against float64: a few
// ulps. Measured on lavapipe: at most 1.8e-15.
const nmseRoPE = 1e-12

func TestRoPE(t *testing.T) {
	cases := []struct{ ntok, heads, headDim, ropeDim int }{
		{1, 1, 2, 2}, {3, 8, 64, 64}, {17, 4, 128, 128}, {9, 3, 128, 64}, {8, 5, 6, 2}, {1, 32, 128, 128},
	}
	variants(t, func(t *testing.T, e *env) {
		for i, c := range cases {
			t.Run(fmt.Sprintf("ntok=%d/%dx%d/rope=%d", c.ntok, c.heads, c.headDim, c.ropeDim), func(t *testing.T) {
				pos := make([]int, c.ntok)
				for k := range pos {
					pos[k] = 100_000 + 4093*k // large angles: the host's float64 table is what keeps them exact
				}
				table := optest.RoPETable(pos, c.ropeDim, c.headDim, 1e6)
				n := c.ntok * c.heads * c.headDim
				x := optest.Rand(uint64(70+i), n)
				// x lies at element 3 of its buffer, the table at element 1.
				xb := e.upload(t, "x", append(make([]float32, 3), x...))
				rb := e.upload(t, "rope", append([]float32{0}, table...))
				xt := ops.F32(xb).Sub(3, uint64(n))
				e.run(t, func(p *ops.Plan) {
					p.RoPE(xt, ops.F32(rb).Sub(1, uint64(len(table))), c.ntok, c.heads, c.headDim, c.ropeDim)
				})
				got := e.download(t, xb)[3:]
				want := optest.RoPE(x, table, c.ntok, c.heads, c.headDim, c.ropeDim)
				check(t, "rope", got, want, nmseRoPE)
				// Dims ≥ ropeDim are untouched, bit for bit.
				for k := range got {
					if k%c.headDim >= c.ropeDim {
						require.Equal(t, x[k], got[k], "element %d", k)
					}
				}
			})
		}
	})
}

// TestRoPELargerThanOneBinding rotates an x larger than one binding, split
// into blocks of tokens.
func TestRoPELargerThanOneBinding(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates >128 MiB activations")
	}
	e := newEnv(t, vk.DeviceOptions{}, 0)
	const heads, headDim, ropeDim = 1, 4, 2
	ntok := int(e.d.Info.MaxStorageBufferRange/(4*heads*headDim)) + 7
	x := optest.Rand(13, ntok*heads*headDim)
	table := optest.Rand(14, ntok*ropeDim) // any numbers will do as cos and sin
	xb, rb := e.upload(t, "x", x), e.upload(t, "rope", table)
	e.run(t, func(p *ops.Plan) {
		p.RoPE(ops.F32(xb), ops.F32(rb), ntok, heads, headDim, ropeDim)
	})
	check(t, "rope >1 binding", e.download(t, xb), optest.RoPE(x, table, ntok, heads, headDim, ropeDim), nmseRoPE)
}

func TestRoPEShapeErrors(t *testing.T) {
	e := newEnv(t, vk.DeviceOptions{}, 0)
	b := ops.F32(e.zeros(t, "b", 256))
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.RoPE(b.Sub(0, 16), b.Sub(16, 4), 1, 2, 8, 3) }), "shape mismatch")   // odd ropeDim
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.RoPE(b.Sub(0, 16), b.Sub(16, 20), 1, 2, 8, 10) }), "shape mismatch") // ropeDim > headDim
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.RoPE(b.Sub(0, 16), b.Sub(16, 4), 2, 2, 8, 4) }), "shape mismatch")   // x too short
	require.NoError(t, e.try(t, func(p *ops.Plan) { p.RoPE(b.Sub(0, 16), b.Sub(16, 0), 1, 2, 8, 0) }))                           // nothing to rotate
}
