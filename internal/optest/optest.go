// Package optest is the op-test harness: deterministic inputs, and the
// normalised mean squared error that compares a GPU result with a CPU
// reference, NMSE = mse(got, want) / mse(want, 0), as llama.cpp's
// test-backend-ops does.
package optest

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// NMSE returns Σ(got−want)² / Σwant². It is +Inf when lengths differ or a
// value is not finite, and 0 when both are all zeros.
func NMSE(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) || math.IsInf(g, 0) || math.IsNaN(w) || math.IsInf(w, 0) {
			return math.Inf(1)
		}
		num += (g - w) * (g - w)
		den += w * w
	}
	if den == 0 {
		if num == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return num / den
}

// Check fails t when NMSE(got, want) exceeds max, naming the op and shape,
// and the worst element.
func Check(t testing.TB, op string, got, want []float32, max float64) {
	t.Helper()
	e := NMSE(got, want)
	if e <= max {
		return
	}
	worst, at := 0.0, -1
	for i := range got {
		if i < len(want) {
			if d := math.Abs(float64(got[i]) - float64(want[i])); d > worst || math.IsNaN(d) {
				worst, at = d, i
			}
		}
	}
	if at >= 0 {
		t.Errorf("%s: NMSE %.3g > %.3g; worst element %d: got %g want %g", op, e, max, at, got[at], want[at])
	} else {
		t.Errorf("%s: NMSE %.3g > %.3g (len %d vs %d)", op, e, max, len(got), len(want))
	}
}

// Rand returns n values uniform in [-1, 1) from a generator seeded by seed.
func Rand(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	out := make([]float32, n)
	for i := range out {
		out[i] = r.Float32()*2 - 1
	}
	return out
}

// Bytes encodes f32 values little-endian.
func Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// Floats decodes little-endian f32 values.
func Floats(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}
