package ops_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
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
