package ref

import (
	"math"

	"github.com/vkrun/vkrun/loader"
)

// The kernels of the reference. Each reads float32 inputs, computes in
// float64 and rounds every output to float32 once, when it is stored.

// matmul: W (d,n) @ x (n,) -> out (d,), with d = len(out), n = len(x).
func matmul(out, x, w []float32) { matmulBias(out, x, w, nil) }

// matmulBias: W (d,n) @ x (n,) + b (d,) -> out (d,). The bias is added to
// each float64 sum before its one rounding; a nil b adds nothing, and a
// zero b gives matmul's result bit for bit.
func matmulBias(out, x, w, b []float32) {
	n := len(x)
	for i := range out {
		row := w[i*n : (i+1)*n]
		var acc float64
		for j, v := range row {
			acc += float64(v) * float64(x[j])
		}
		if b != nil {
			acc += float64(b[i])
		}
		out[i] = float32(acc)
	}
}

// add: x += y, elementwise (a float32 add, as the GPU's residual add).
func add(x, y []float32) {
	for i := range x {
		x[i] += y[i]
	}
}

// norm applies the model's norm kind: out (n,) = norm(x)·w, for x, w (n,).
// out may be x.
func norm(kind loader.NormKind, out, x, w []float32, eps float64) {
	switch kind {
	case loader.NormLayer:
		layernorm(out, x, w, eps)
	default: // NormRMS; Config.Validate refuses any other kind
		rmsnorm(out, x, w, eps)
	}
}

// rmsnorm: out (n,) = x / sqrt(mean(x²) + eps) · w, for x, w (n,). out may
// be x.
func rmsnorm(out, x, w []float32, eps float64) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	inv := 1 / math.Sqrt(ss/float64(len(x))+eps)
	for i, v := range x {
		out[i] = float32(float64(v) * inv * float64(w[i]))
	}
}

// layernorm is LayerNorm without bias: out (n,) = (x − mean) / sqrt(var +
// eps) · w, var = mean((x − mean)²), for x, w (n,). out may be x.
func layernorm(out, x, w []float32, eps float64) {
	n := float64(len(x))
	var sum float64
	for _, v := range x {
		sum += float64(v)
	}
	mean := sum / n
	var ss float64
	for _, v := range x {
		d := float64(v) - mean
		ss += d * d
	}
	inv := 1 / math.Sqrt(ss/n+eps)
	for i, v := range x {
		out[i] = float32((float64(v) - mean) * inv * float64(w[i]))
	}
}

// activate is the FFN gate's activation of g.
func activate(act loader.Activation, g float64) float64 {
	switch act {
	case loader.ActGELUTanh:
		return geluTanh(g)
	default: // ActSiLU; Config.Validate refuses any other kind
		return silu(g)
	}
}

// silu(x) = x·σ(x) = x / (1 + e^(−x)).
func silu(x float64) float64 { return x / (1 + math.Exp(-x)) }

// geluTanh is GELU's tanh approximation, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
func geluTanh(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

// softcap(s, c) = c·tanh(s/c): s squashed into (−c, c), near s for |s| ≪ c.
func softcap(s, c float64) float64 { return c * math.Tanh(s/c) }

// ropeFreqs returns θ^(−2i/ropeDim) / factors[i] for each pair i <
// ropeDim/2: the angle per position of pair i. factors (len ropeDim/2) are
// Llama 3.1's frequency divisors; nil divides by nothing, and factors of 1
// give the same angles bit for bit.
func ropeFreqs(theta float64, ropeDim int, factors []float64) []float64 {
	f := make([]float64, ropeDim/2)
	for i := range f {
		f[i] = math.Pow(theta, -float64(2*i)/float64(ropeDim))
		if factors != nil {
			f[i] /= factors[i]
		}
	}
	return f
}

// rope rotates, within every head of v (heads*headDim,), pair i of the first
// ropeDim = 2·len(invFreq) dims by the angle p·invFreq[i], p being the
// (scaled) position. The pairs are (x[2i], x[2i+1]) for RopePairwise and
// (x[i], x[i+ropeDim/2]) for RopeHalf; the dims from ropeDim on are left as
// they are.
func rope(v []float32, headDim int, style loader.RopeStyle, invFreq []float64, p float64) {
	half := len(invFreq)
	for h := 0; h < len(v)/headDim; h++ {
		head := v[h*headDim : (h+1)*headDim]
		for i, f := range invFreq {
			a, b := 2*i, 2*i+1 // RopePairwise
			if style == loader.RopeHalf {
				a, b = i, i+half
			}
			sin, cos := math.Sincos(p * f)
			x, y := float64(head[a]), float64(head[b])
			head[a] = float32(x*cos - y*sin)
			head[b] = float32(x*sin + y*cos)
		}
	}
}
