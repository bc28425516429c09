package optest

import "math"

// SiluMul returns g·sigmoid(g)·u elementwise, in float64.
func SiluMul(g, u []float32) []float32 {
	h := make([]float32, len(g))
	for i, v := range g {
		x := float64(v)
		h[i] = float32(x / (1 + math.Exp(-x)) * float64(u[i]))
	}
	return h
}
