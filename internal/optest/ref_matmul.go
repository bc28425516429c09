package optest

// MatMul returns y (ntok, rows) = x (ntok, cols) @ Wᵀ for W (rows, cols),
// accumulating in float64. With y0 non-nil it returns y0 + x @ Wᵀ (the
// residual add), the sum rounded to f32 first as the GPU does.
func MatMul(w, x, y0 []float32, rows, cols, ntok int) []float32 {
	y := make([]float32, ntok*rows)
	for t := range ntok {
		xr := x[t*cols : (t+1)*cols]
		for r := range rows {
			var acc float64
			for c, v := range w[r*cols : (r+1)*cols] {
				acc += float64(v) * float64(xr[c])
			}
			y[t*rows+r] = float32(acc)
			if y0 != nil {
				y[t*rows+r] += y0[t*rows+r]
			}
		}
	}
	return y
}
