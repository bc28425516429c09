package optest

import "math"

// Q8Tiny is the block maximum under which QuantizeQ8 gives a block q zero.
var Q8Tiny = math.Float32frombits(0x0d800000) // 2^-100

// QuantizeQ8 rounds x (rows of a multiple of 32 columns) to q8 rows as
// shaders.QuantizeQ8 does: per 32 columns, m = max |x_j| (a NaN counting as
// +Inf), the scale d = m/127 and q_j = roundEven(x_j·(127/m)) clamped to
// ±127, all zero where m is under Q8Tiny or infinite. It returns the words
// the kernel writes (12 a block: the values as bytes, d's bits, Σ q_j, two
// zeros) and x as the integer-dot matmul sees it, d·q_j (NaN where d is
// infinite, as 0·∞).
func QuantizeQ8(x []float32) (words []uint32, deq []float32) {
	deq = make([]float32, len(x))
	for b := 0; b < len(x)/32; b++ {
		blk := x[32*b : 32*b+32]
		var m float32
		for _, v := range blk {
			a := float32(math.Abs(float64(v)))
			if v != v {
				a = float32(math.Inf(1))
			}
			m = max(m, a)
		}
		d := m / 127
		var id float32
		if m >= Q8Tiny && !math.IsInf(float64(m), 0) {
			id = 127 / m
		}
		var w [12]uint32
		var sum int32
		for j, v := range blk {
			var q int32
			if id != 0 {
				q = int32(max(-127, min(127, math.RoundToEven(float64(v*id)))))
			}
			sum += q
			w[j/4] |= uint32(uint8(int8(q))) << (8 * (j % 4))
			deq[32*b+j] = float32(float64(d) * float64(q))
			if math.IsInf(float64(d), 0) {
				deq[32*b+j] = float32(math.NaN())
			}
		}
		w[8], w[9] = math.Float32bits(d), uint32(sum)
		words = append(words, w[:]...)
	}
	return words, deq
}
