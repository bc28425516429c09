package optest

import "math"

// RoPETable returns the (len(pos), ropeDim/2, 2) cos/sin table for
// positions pos: pair i of position p turns by p·θ^(−2i/headDim), computed
// in float64.
func RoPETable(pos []int, ropeDim, headDim int, theta float64) []float32 {
	half := ropeDim / 2
	out := make([]float32, len(pos)*ropeDim)
	for t, p := range pos {
		for i := range half {
			a := float64(p) * math.Pow(theta, -2*float64(i)/float64(headDim))
			out[(t*half+i)*2] = float32(math.Cos(a))
			out[(t*half+i)*2+1] = float32(math.Sin(a))
		}
	}
	return out
}

// RoPE returns x (ntok, nHeads·headDim) with each head's pairs (x[2i],
// x[2i+1]), i < ropeDim/2, rotated by rope[tok, i] = (cos, sin), in float64.
func RoPE(x, rope []float32, ntok, nHeads, headDim, ropeDim int) []float32 {
	y := append([]float32(nil), x...)
	half := ropeDim / 2
	for t := range ntok {
		for h := range nHeads {
			b := (t*nHeads + h) * headDim
			for i := range half {
				c, s := float64(rope[(t*half+i)*2]), float64(rope[(t*half+i)*2+1])
				x0, x1 := float64(x[b+2*i]), float64(x[b+2*i+1])
				y[b+2*i] = float32(x0*c - x1*s)
				y[b+2*i+1] = float32(x0*s + x1*c)
			}
		}
	}
	return y
}
