package optest

import "math"

// Plain Go references for the kernels, accumulating in float64.

// MatVec returns y (rows,) = W (rows, cols) @ x (cols,).
func MatVec(w, x []float32, rows, cols int) []float32 {
	y := make([]float32, rows)
	for r := range rows {
		var acc float64
		row := w[r*cols : (r+1)*cols]
		for c, v := range row {
			acc += float64(v) * float64(x[c])
		}
		y[r] = float32(acc)
	}
	return y
}

// Add returns x + y elementwise, in f32 as the GPU does.
func Add(x, y []float32) []float32 {
	z := make([]float32, len(x))
	for i := range x {
		z[i] = x[i] + y[i]
	}
	return z
}

// RMSNorm returns x (rows, n) scaled per row by 1/sqrt(mean(x²)+eps), times w (n,).
func RMSNorm(x, w []float32, rows, n int, eps float32) []float32 {
	y := make([]float32, rows*n)
	for r := range rows {
		row := x[r*n : (r+1)*n]
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		scale := 1 / math.Sqrt(ss/float64(n)+float64(eps))
		for i, v := range row {
			y[r*n+i] = float32(float64(v) * scale * float64(w[i]))
		}
	}
	return y
}
