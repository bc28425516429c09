package engine

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestArgmaxAndLogProb(t *testing.T) {
	nan := float32(math.NaN())
	for _, tt := range []struct {
		logits []float32
		want   int
	}{
		{[]float32{1, 3, 2}, 1},
		{[]float32{5, 5, 1}, 0}, // first of equals
		{[]float32{nan, 2, 7}, 2},
		{[]float32{-1, nan, -3}, 0},
		{[]float32{nan}, -1},
		{nil, -1},
	} {
		assert.Equal(t, tt.want, Argmax(tt.logits), "%v", tt.logits)
	}
	// log softmax of (0, ln 3): probabilities 1/4, 3/4.
	l := []float32{0, float32(math.Log(3))}
	assert.InDelta(t, math.Log(0.25), LogProb(l, 0), 1e-6)
	assert.InDelta(t, math.Log(0.75), LogProb(l, 1), 1e-6)
}

func TestSamplerFilters(t *testing.T) {
	logits := []float32{0, 3, 2, 1, -5} // by rank: 1, 2, 3, 0, 4
	draw := func(o Sampling, n int) map[int]int {
		s, err := NewSampler(o)
		require.NoError(t, err)
		seen := map[int]int{}
		for range n {
			seen[s.Sample(logits)]++
		}
		return seen
	}
	assert.Equal(t, map[int]int{1: 50}, draw(Sampling{}, 50), "temperature 0 is greedy")
	assert.Equal(t, map[int]int{1: 50}, draw(Sampling{Temperature: 1, TopK: 1}, 50), "top-k 1 is greedy")
	assert.ElementsMatch(t, []int{1, 2}, keys(draw(Sampling{Temperature: 1, TopK: 2, Seed: 1}, 2000)))
	// min-p 0.3 keeps tokens with p ≥ 0.3·p(top): e^(l−3) ≥ 0.3 → l ≥ 1.8, so ids 1 and 2.
	assert.ElementsMatch(t, []int{1, 2}, keys(draw(Sampling{Temperature: 1, MinP: 0.3, Seed: 2}, 2000)))
	// top-p 0.6: p(1) ≈ 0.64 alone reaches it.
	assert.Equal(t, []int{1}, keys(draw(Sampling{Temperature: 1, TopP: 0.6, Seed: 3}, 500)))
	// With no filter every finite-probability token appears.
	assert.Len(t, keys(draw(Sampling{Temperature: 2, Seed: 4}, 20000)), 5)
}

func TestSamplerMatchesSoftmax(t *testing.T) {
	// Probabilities 1/3 and 2/3 at temperature 1.
	logits := []float32{0, float32(math.Log(2))}
	s, err := NewSampler(Sampling{Temperature: 1, Seed: 7})
	require.NoError(t, err)
	const n = 30000
	ones := 0
	for range n {
		ones += s.Sample(logits)
	}
	// Binomial sd = sqrt(n·p·(1−p)) ≈ 82; allow 5 sd.
	assert.InDelta(t, 2*n/3, ones, 5*82)
	// Temperature 0.5 squares the odds: 1/5 and 4/5.
	s, _ = NewSampler(Sampling{Temperature: 0.5, Seed: 8})
	ones = 0
	for range n {
		ones += s.Sample(logits)
	}
	assert.InDelta(t, 4*n/5, ones, 5*70)
}

func TestSamplerSeedIsReproducible(t *testing.T) {
	logits := make([]float32, 100)
	for i := range logits {
		logits[i] = float32(math.Sin(float64(i)))
	}
	run := func(seed uint64) []int {
		s, err := NewSampler(Sampling{Temperature: 1.3, TopK: 50, TopP: 0.9, Seed: seed})
		require.NoError(t, err)
		var out []int
		for range 64 {
			out = append(out, s.Sample(logits))
		}
		return out
	}
	assert.Equal(t, run(5), run(5))
	assert.NotEqual(t, run(5), run(6))
}

func TestSamplingValidate(t *testing.T) {
	for _, o := range []Sampling{
		{Temperature: -0.1}, {Temperature: math.Inf(1)}, {Temperature: math.NaN()},
		{TopK: -1}, {TopP: 1.5}, {TopP: -0.1}, {MinP: 2}, {MinP: math.NaN()},
	} {
		assert.Error(t, o.Validate(), "%+v", o)
	}
	assert.NoError(t, Sampling{Temperature: 0.7, TopK: 40, TopP: 0.9, MinP: 0.05}.Validate())
}

func keys(m map[int]int) []int {
	var k []int
	for x := range m {
		k = append(k, x)
	}
	return k
}
