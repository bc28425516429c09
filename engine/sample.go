package engine

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Sampling chooses the next token from logits.
type Sampling struct {
	Temperature float64 // 0: greedy
	TopK        int     // keep the k most likely (0: all)
	TopP        float64 // keep the smallest set whose probability reaches p (0 or 1: all)
	MinP        float64 // drop tokens below MinP × the top probability (0: none)
	Seed        uint64
}

// Validate reports settings that make no sense.
func (o Sampling) Validate() error {
	switch {
	case o.Temperature < 0 || math.IsNaN(o.Temperature) || math.IsInf(o.Temperature, 0):
		return fmt.Errorf("engine: temperature %v must be a finite number ≥ 0", o.Temperature)
	case o.TopK < 0:
		return fmt.Errorf("engine: top-k %d must be ≥ 0", o.TopK)
	case o.TopP < 0 || o.TopP > 1 || math.IsNaN(o.TopP):
		return fmt.Errorf("engine: top-p %v must be in [0, 1]", o.TopP)
	case o.MinP < 0 || o.MinP > 1 || math.IsNaN(o.MinP):
		return fmt.Errorf("engine: min-p %v must be in [0, 1]", o.MinP)
	}
	return nil
}

// Greedy reports whether sampling reduces to the argmax.
func (o Sampling) Greedy() bool { return o.Temperature == 0 }

// Sampler draws tokens with a seeded generator: the same seed and logits
// give the same tokens. Not safe for concurrent use.
type Sampler struct {
	o   Sampling
	rng *rand.Rand
	idx []int     // scratch: candidate ids
	p   []float64 // scratch: their probabilities
}

// NewSampler makes a sampler; o must be valid.
func NewSampler(o Sampling) (*Sampler, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Sampler{o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x5851f42d4c957f2d))}, nil
}

// Argmax is the first index of the largest logit (NaN never wins).
func Argmax(logits []float32) int {
	best := -1
	for i, v := range logits {
		if v != v {
			continue
		}
		if best < 0 || v > logits[best] {
			best = i
		}
	}
	return best
}

// LogProb is log softmax(logits)[id].
func LogProb(logits []float32, id int) float64 {
	m := math.Inf(-1)
	for _, v := range logits {
		m = math.Max(m, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - m)
	}
	return float64(logits[id]) - m - math.Log(sum)
}

// Sample draws the next token id from logits.
func (s *Sampler) Sample(logits []float32) int {
	if s.o.Greedy() {
		return Argmax(logits)
	}
	s.idx = s.idx[:0]
	for i, v := range logits {
		if v == v { // skip NaN
			s.idx = append(s.idx, i)
		}
	}
	if len(s.idx) == 0 {
		return 0
	}
	slices.SortStableFunc(s.idx, func(a, b int) int { return cmp.Compare(logits[b], logits[a]) })
	if k := s.o.TopK; k > 0 && k < len(s.idx) {
		s.idx = s.idx[:k]
	}
	// Softmax with temperature over the candidates, in descending order.
	top := float64(logits[s.idx[0]])
	s.p = s.p[:0]
	var sum float64
	for _, i := range s.idx {
		e := math.Exp((float64(logits[i]) - top) / s.o.Temperature)
		s.p = append(s.p, e)
		sum += e
	}
	for i := range s.p {
		s.p[i] /= sum
	}
	keep := len(s.p)
	if mp := s.o.MinP; mp > 0 {
		for keep > 1 && s.p[keep-1] < mp*s.p[0] {
			keep--
		}
	}
	if tp := s.o.TopP; tp > 0 && tp < 1 {
		var c float64
		for i := range keep {
			c += s.p[i]
			if c >= tp {
				keep = i + 1
				break
			}
		}
	}
	var total float64
	for _, p := range s.p[:keep] {
		total += p
	}
	u := s.rng.Float64() * total
	for i, p := range s.p[:keep] {
		u -= p
		if u < 0 {
			return s.idx[i]
		}
	}
	return s.idx[keep-1]
}
