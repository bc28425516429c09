package ops_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/vk"
)

func TestArgmax(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	negZero := float32(math.Copysign(0, -1))
	cases := map[string][]float32{
		"one":             {-5},
		"all NaN":         {nan, nan, nan},
		"NaN first":       {nan, -inf, -7, nan},
		"NaN last":        {1, 2, nan},
		"all -Inf":        {-inf, -inf, -inf},
		"ties":            {1, 3, 3, 2, 3},
		"zeros":           {negZero, 0, negZero},
		"+Inf":            {1, inf, nan, inf},
		"neg then -0":     {-1, negZero, -2},
		"descending 4097": nil,
	}
	desc := make([]float32, 4097)
	for i := range desc {
		desc[i] = float32(-i)
	}
	cases["descending 4097"] = desc
	for i, n := range []int{7, 128, 129, 4097, 32000, 256_000} {
		x := optest.Rand(uint64(30+i), n)
		x[n/3] = 2 // a unique maximum
		cases[fmt.Sprintf("rand %d", n)] = x
		y := append([]float32(nil), x...)
		y[n-1], y[n/2] = 2, nan // ties: the first (n/3) wins unless n is tiny
		cases[fmt.Sprintf("tie %d", n)] = y
	}
	variants(t, func(t *testing.T, e *env) {
		for name, x := range cases {
			t.Run(name, func(t *testing.T) {
				xb := e.upload(t, "x", append([]float32{99}, x...)) // x starts at element 1
				out := e.uploadU32(t, "out", []uint32{7, 7, 7})
				e.run(t, func(p *ops.Plan) {
					p.Argmax(ops.F32(xb).Sub(1, uint64(len(x))), ops.F32(out).Sub(1, 1))
				})
				b := make([]byte, 12)
				require.NoError(t, e.d.Download(out, 0, b))
				require.EqualValues(t, 7, binary.LittleEndian.Uint32(b[0:]), "element before out")
				require.EqualValues(t, optest.Argmax(x), binary.LittleEndian.Uint32(b[4:]))
				require.EqualValues(t, 7, binary.LittleEndian.Uint32(b[8:]), "element after out")
			})
		}
	})
}

// TestArgmaxReference pins the CPU reference's rules.
func TestArgmaxReference(t *testing.T) {
	nan := float32(math.NaN())
	require.Equal(t, 0, optest.Argmax([]float32{nan, nan}))
	require.Equal(t, 1, optest.Argmax([]float32{nan, -1, nan, 0, nan}[:3]))
	require.Equal(t, 1, optest.Argmax([]float32{0, 5, 5}))
	require.Equal(t, 0, optest.Argmax([]float32{float32(math.Copysign(0, -1)), 0}))
}

// TestArgmaxRows takes the argmax of every row of x in one dispatch: rows
// with their maxima in different places, ties and NaN, at an odd offset,
// each row's id the reference's for that row alone; and the shape errors.
func TestArgmaxRows(t *testing.T) {
	const rows, n = 9, 1001
	x := optest.Rand(40, rows*n)
	for r := range rows {
		x[r*n+(r*137)%n] = 3 // each row's unique maximum
	}
	x[4*n+5] = float32(math.NaN())
	x[6*n+n-1] = 3 // a tie: the earlier one wins
	e := newEnv(t, vk.DeviceOptions{}, 0)
	xb := e.upload(t, "x", append([]float32{99, 99, 99}, x...))
	out := e.uploadU32(t, "out", make([]uint32, rows+2))
	p := e.plan(t)
	p.ArgmaxRows(ops.F32(xb).Sub(3, rows*n), ops.F32(out).Sub(1, rows), rows)
	require.NoError(t, p.Err())
	require.Equal(t, 1, p.Seq.Dispatches(), "one dispatch for all rows")
	e.run(t, func(p *ops.Plan) {
		p.ArgmaxRows(ops.F32(xb).Sub(3, rows*n), ops.F32(out).Sub(1, rows), rows)
	})
	b := make([]byte, 4*(rows+2))
	require.NoError(t, e.d.Download(out, 0, b))
	require.Zero(t, binary.LittleEndian.Uint32(b), "element before out")
	require.Zero(t, binary.LittleEndian.Uint32(b[4*(rows+1):]), "element after out")
	for r := range rows {
		require.EqualValues(t, optest.Argmax(x[r*n:(r+1)*n]), binary.LittleEndian.Uint32(b[4*(r+1):]), "row %d", r)
	}
	for _, c := range []struct {
		name string
		rows int
		x, o uint64
	}{{"no rows", 0, 10, 0}, {"rows do not divide x", 3, 10, 3}, {"out not one per row", 2, 10, 3}} {
		require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.ArgmaxRows(ops.F32(xb).Sub(0, c.x), ops.F32(out).Sub(0, c.o), c.rows) }), "shape mismatch", c.name)
	}
}
