package ops_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/vk"
)

// RoPE is two products and a sum per output, in f32 against float64: a few
// ulps. Measured on lavapipe: at most 1.8e-15.
const nmseRoPE = 1e-12

var ropeStyles = []loader.RopeStyle{loader.RopePairwise, loader.RopeHalf}

// ropeRef is RoPE in float64 on x (ntok, nHeads·headDim) in either
// pairing: optest.RoPE for pairwise, and here for rotate-half, where pair
// i of a head is (x[i], x[i+ropeDim/2]).
func ropeRef(x, table []float32, ntok, nHeads, headDim, ropeDim int, style loader.RopeStyle) []float32 {
	if style == loader.RopePairwise {
		return optest.RoPE(x, table, ntok, nHeads, headDim, ropeDim)
	}
	y := append([]float32(nil), x...)
	half := ropeDim / 2
	for t := range ntok {
		for h := range nHeads {
			b := (t*nHeads + h) * headDim
			for i := range half {
				c, s := float64(table[(t*half+i)*2]), float64(table[(t*half+i)*2+1])
				x0, x1 := float64(x[b+i]), float64(x[b+i+half])
				y[b+i] = float32(x0*c - x1*s)
				y[b+i+half] = float32(x0*s + x1*c)
			}
		}
	}
	return y
}

func TestRoPE(t *testing.T) {
	cases := []struct{ ntok, heads, headDim, ropeDim int }{
		{1, 1, 2, 2}, {3, 8, 64, 64}, {17, 4, 128, 128}, {9, 3, 128, 64}, {8, 5, 6, 2}, {3, 3, 10, 6}, {1, 32, 128, 128},
	}
	variants(t, func(t *testing.T, e *env) {
		for _, style := range ropeStyles {
			for i, c := range cases {
				t.Run(fmt.Sprintf("%s/ntok=%d/%dx%d/rope=%d", style, c.ntok, c.heads, c.headDim, c.ropeDim), func(t *testing.T) {
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
						p.RoPE(xt, ops.F32(rb).Sub(1, uint64(len(table))), c.ntok, c.heads, c.headDim, c.ropeDim, style)
					})
					got := e.download(t, xb)[3:]
					want := ropeRef(x, table, c.ntok, c.heads, c.headDim, c.ropeDim, style)
					check(t, "rope", got, want, nmseRoPE)
					// Dims ≥ ropeDim are untouched, bit for bit.
					for k := range got {
						if k%c.headDim >= c.ropeDim {
							require.Equal(t, x[k], got[k], "element %d", k)
						}
					}
				})
			}
		}
	})
}

// TestRoPEHalfIsPermutedPairwise: rotate-half RoPE equals pairwise RoPE
// on x with each head's rotated dims permuted (i → 2i, i+ropeDim/2 →
// 2i+1), bit for bit: the two pairings differ in addressing alone.
func TestRoPEHalfIsPermutedPairwise(t *testing.T) {
	const ntok, heads, headDim, ropeDim = 2, 3, 10, 6
	e := newEnv(t, vk.DeviceOptions{}, 0)
	table := optest.RoPETable([]int{5, 9}, ropeDim, headDim, 1e4)
	x := optest.Rand(75, ntok*heads*headDim)
	// perm moves rotate-half element i to pairwise element 2i and element
	// i+ropeDim/2 to 2i+1 within each head.
	perm := func(v []float32) []float32 {
		out := append([]float32(nil), v...)
		for b := 0; b < len(v); b += headDim {
			for i := range ropeDim / 2 {
				out[b+2*i], out[b+2*i+1] = v[b+i], v[b+i+ropeDim/2]
			}
		}
		return out
	}
	rb := e.upload(t, "rope", table)
	half, pair := e.upload(t, "x half", x), e.upload(t, "x pairwise", perm(x))
	e.run(t, func(p *ops.Plan) {
		p.RoPE(ops.F32(half), ops.F32(rb), ntok, heads, headDim, ropeDim, loader.RopeHalf)
		p.RoPE(ops.F32(pair), ops.F32(rb), ntok, heads, headDim, ropeDim, loader.RopePairwise)
	})
	h, pw := e.download(t, half), e.download(t, pair)
	require.Equal(t, pw, perm(h), "rotate-half is pairwise RoPE on permuted dims, bit for bit")
}

// TestRoPEQK rotates the q and k heads of q|k|v rows in place, in both
// pairings, and leaves the v heads bit for bit.
func TestRoPEQK(t *testing.T) {
	const ntok, heads, kvHeads, headDim, ropeDim = 3, 3, 2, 10, 6
	e := newEnv(t, vk.DeviceOptions{}, 0)
	row := (heads + 2*kvHeads) * headDim
	pos := []int{7, 4001, 65_537}
	table := optest.RoPETable(pos, ropeDim, headDim, 1e4)
	rb := e.upload(t, "rope", table)
	for _, style := range ropeStyles {
		t.Run(style.String(), func(t *testing.T) {
			qkv := optest.Rand(76, ntok*row)
			xb := e.upload(t, "qkv", qkv)
			e.run(t, func(p *ops.Plan) {
				p.RoPEQK(ops.F32(xb), ops.F32(rb), ntok, heads, kvHeads, headDim, ropeDim, style)
			})
			got := e.download(t, xb)
			qk := (heads + kvHeads) * headDim
			var in, out []float32
			for r := range ntok {
				in = append(in, qkv[r*row:r*row+qk]...)
				out = append(out, got[r*row:r*row+qk]...)
				require.Equal(t, qkv[r*row+qk:(r+1)*row], got[r*row+qk:(r+1)*row], "v heads of row %d", r)
			}
			check(t, "rope qk", out, ropeRef(in, table, ntok, heads+kvHeads, headDim, ropeDim, style), nmseRoPE)
		})
	}
}

// TestRoPEQTo rotates the query heads of q|k|v rows into a copy, in both
// pairings and with a partial rotary dim: the copy equals RoPE in place on
// the query heads bit for bit (the same kernel arithmetic), its dims ≥
// ropeDim are the input's, and qkv is left exactly as it was.
func TestRoPEQTo(t *testing.T) {
	const ntok, heads, kvHeads, headDim = 3, 4, 2, 10
	e := newEnv(t, vk.DeviceOptions{}, 0)
	row, qd := (heads+2*kvHeads)*headDim, heads*headDim
	pos := []int{7, 4001, 65_537}
	for _, ropeDim := range []int{6, 10} {
		table := optest.RoPETable(pos, ropeDim, headDim, 1e4)
		rb := e.upload(t, "rope", table)
		for _, style := range ropeStyles {
			t.Run(fmt.Sprintf("%s/rope=%d", style, ropeDim), func(t *testing.T) {
				qkv := optest.Rand(77, ntok*row)
				xb := e.upload(t, "qkv", qkv)
				inPlace := e.upload(t, "qkv in place", qkv)
				// The copy lies at element 5 of a buffer of NaN-free junk.
				qb := e.upload(t, "q", optest.Rand(78, 5+ntok*qd))
				e.run(t, func(p *ops.Plan) {
					p.RoPEQTo(ops.F32(xb), ops.F32(rb), ops.F32(qb).Sub(5, uint64(ntok*qd)), ntok, heads, kvHeads, headDim, ropeDim, style)
					p.RoPEQK(ops.F32(inPlace), ops.F32(rb), ntok, heads, kvHeads, headDim, ropeDim, style)
				})
				require.Equal(t, qkv, e.download(t, xb), "qkv is not changed")
				got, ref := e.download(t, qb)[5:], e.download(t, inPlace)
				var want, in []float32
				for r := range ntok {
					want = append(want, ref[r*row:r*row+qd]...)
					in = append(in, qkv[r*row:r*row+qd]...)
				}
				require.Equal(t, want, got, "the copy is RoPE in place, bit for bit")
				check(t, "rope q to", got, ropeRef(in, table, ntok, heads, headDim, ropeDim, style), nmseRoPE)
			})
		}
	}
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
		p.RoPE(ops.F32(xb), ops.F32(rb), ntok, heads, headDim, ropeDim, loader.RopePairwise)
	})
	check(t, "rope >1 binding", e.download(t, xb), optest.RoPE(x, table, ntok, heads, headDim, ropeDim), nmseRoPE)
}

func TestRoPEShapeErrors(t *testing.T) {
	e := newEnv(t, vk.DeviceOptions{}, 0)
	b := ops.F32(e.zeros(t, "b", 256))
	pw := loader.RopePairwise
	for _, c := range []struct {
		name   string
		record func(p *ops.Plan)
		want   string
	}{
		{"odd rope dim", func(p *ops.Plan) { p.RoPE(b.Sub(0, 16), b.Sub(16, 4), 1, 2, 8, 3, pw) }, "shape mismatch"},
		{"rope dim > head dim", func(p *ops.Plan) { p.RoPE(b.Sub(0, 16), b.Sub(16, 20), 1, 2, 8, 10, pw) }, "shape mismatch"},
		{"x too short", func(p *ops.Plan) { p.RoPE(b.Sub(0, 16), b.Sub(16, 4), 2, 2, 8, 4, pw) }, "shape mismatch"},
		{"qkv too short", func(p *ops.Plan) { p.RoPEQK(b.Sub(0, 31), b.Sub(32, 4), 1, 2, 1, 8, 4, pw) }, "shape mismatch"},
		{"q copy too short", func(p *ops.Plan) { p.RoPEQTo(b.Sub(0, 32), b.Sub(32, 4), b.Sub(40, 15), 1, 2, 1, 8, 4, pw) }, "shape mismatch"},
		{"q copy overlaps qkv", func(p *ops.Plan) { p.RoPEQTo(b.Sub(0, 32), b.Sub(32, 4), b.Sub(8, 16), 1, 2, 1, 8, 4, pw) }, "overlap"},
		{"unknown style", func(p *ops.Plan) { p.RoPE(b.Sub(0, 16), b.Sub(16, 4), 1, 2, 8, 4, loader.RopeStyle(7)) }, "unknown pairing RopeStyle(7)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.ErrorContains(t, e.try(t, c.record), c.want)
		})
	}
	// Nothing to rotate: no error, nothing recorded.
	p := e.plan(t)
	p.RoPE(b.Sub(0, 16), b.Sub(16, 0), 1, 2, 8, 0, loader.RopeHalf)
	require.NoError(t, p.Err())
	require.Zero(t, p.Seq.Dispatches())
}
