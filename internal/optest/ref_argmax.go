package optest

import "math"

// Argmax returns the first index of the maximum of x. NaN never wins unless
// every element is NaN (then 0); −0 and +0 are equal. An empty x gives 0.
func Argmax(x []float32) int {
	best := 0
	for i, v := range x {
		b := x[best]
		if math.IsNaN(float64(b)) && !math.IsNaN(float64(v)) || v > b {
			best = i
		}
	}
	return best
}
