package optest

import (
	"fmt"
	"math"
)

// AttnShape is the shape of an attention op: query heads, KV heads (query head
// h reads KV head h/(Heads/KVHeads)), the head dimension, and the sliding
// window W (the query at position i attends keys max(0, i−W+1) … i; 0 means
// full causal attention).
type AttnShape struct {
	Heads, KVHeads, HeadDim, Window int
}

// QDim is the row length of queries and outputs.
func (s AttnShape) QDim() int { return s.Heads * s.HeadDim }

// KVDim is the row length of keys and values.
func (s AttnShape) KVDim() int { return s.KVHeads * s.HeadDim }

// firstKey is the first key the query at pos attends to.
func (s AttnShape) firstKey(pos int) int {
	if s.Window <= 0 {
		return 0
	}
	return max(0, pos-s.Window+1)
}

// SWA is naive banded attention over a whole history, accumulating in
// float64: k, v (≥ to, KVDim) hold the keys and values of positions 0, 1, …,
// and q (to−from, QDim) the queries of positions from … to−1. It returns their
// outputs (to−from, QDim): per head, softmax(q·kⱼ/√HeadDim)·vⱼ over the band.
// Keys outside the band are not read.
func SWA(q, k, v []float32, from, to int, s AttnShape) []float32 {
	if len(q) != (to-from)*s.QDim() || len(k) < to*s.KVDim() || len(v) < to*s.KVDim() {
		panic(fmt.Sprintf("optest.SWA: q %d, k %d, v %d values for positions [%d, %d) of %+v", len(q), len(k), len(v), from, to, s))
	}
	out := make([]float32, len(q))
	for pos := from; pos < to; pos++ {
		i := pos - from
		attend(out[i*s.QDim():(i+1)*s.QDim()], q[i*s.QDim():(i+1)*s.QDim()], s, s.firstKey(pos), pos,
			func(j int) ([]float32, []float32) {
				return k[j*s.KVDim() : (j+1)*s.KVDim()], v[j*s.KVDim() : (j+1)*s.KVDim()]
			})
	}
	return out
}

// attend writes one query's output over keys lo … hi, which kv returns by
// position (the whole row of every KV head).
func attend(out, q []float32, s AttnShape, lo, hi int, kv func(j int) (k, v []float32)) {
	hd, group := s.HeadDim, s.Heads/s.KVHeads
	scale := 1 / math.Sqrt(float64(hd))
	scores := make([]float64, hi-lo+1)
	acc := make([]float64, hd)
	for h := range s.Heads {
		qh := q[h*hd : (h+1)*hd]
		col := (h / group) * hd
		m := math.Inf(-1)
		for j := lo; j <= hi; j++ {
			kr, _ := kv(j)
			var dot float64
			for d, x := range qh {
				dot += float64(x) * float64(kr[col+d])
			}
			scores[j-lo] = dot * scale
			m = max(m, scores[j-lo])
		}
		var sum float64
		clear(acc)
		for j := lo; j <= hi; j++ {
			e := math.Exp(scores[j-lo] - m)
			sum += e
			_, vr := kv(j)
			for d := range acc {
				acc[d] += e * float64(vr[col+d])
			}
		}
		for d, a := range acc {
			out[h*hd+d] = float32(a / sum)
		}
	}
}

// Ring simulates a rolling KV cache on the CPU, as the GPU keeps it: the keys
// and values of position p in slot p mod Window, each (Window, KVDim). With
// F16 set, values are rounded to f16 (round to nearest even) on the way in.
type Ring struct {
	K, V []float32
	S    AttnShape
	F16  bool
}

// NewRing is an empty ring for s (s.Window > 0). Unwritten slots hold NaN, so
// a read of a slot outside the band poisons the result.
func NewRing(s AttnShape, f16 bool) *Ring {
	if s.Window <= 0 {
		panic("optest.NewRing: a ring needs a window")
	}
	n := s.Window * s.KVDim()
	r := &Ring{K: make([]float32, n), V: make([]float32, n), S: s, F16: f16}
	nan := float32(math.NaN())
	for i := range r.K {
		r.K[i], r.V[i] = nan, nan
	}
	return r
}

func (r *Ring) conv(v []float32) []float32 {
	if r.F16 {
		return RoundF16(v)
	}
	return v
}

// Attend is the attention of a chunk computed before the chunk is stored, as
// swa.comp defines it: q (ntok, QDim) at positions pos0 …, the chunk's own k,
// v (ntok, KVDim) for keys ≥ pos0 (rounded like the ring), the ring for
// keys < pos0.
func (r *Ring) Attend(q, k, v []float32, pos0 int) []float32 {
	s := r.S
	ntok := len(q) / s.QDim()
	if ntok > s.Window || len(k) != ntok*s.KVDim() || len(v) != ntok*s.KVDim() {
		panic(fmt.Sprintf("optest.Ring.Attend: %d queries, k %d, v %d values for %+v", ntok, len(k), len(v), s))
	}
	kc, vc := r.conv(k), r.conv(v)
	kd := s.KVDim()
	out := make([]float32, len(q))
	for i := range ntok {
		pos := pos0 + i
		attend(out[i*s.QDim():(i+1)*s.QDim()], q[i*s.QDim():(i+1)*s.QDim()], s, s.firstKey(pos), pos,
			func(j int) ([]float32, []float32) {
				if j >= pos0 {
					c := j - pos0
					return kc[c*kd : (c+1)*kd], vc[c*kd : (c+1)*kd]
				}
				slot := j % s.Window
				return r.K[slot*kd : (slot+1)*kd], r.V[slot*kd : (slot+1)*kd]
			})
	}
	return out
}

// Store writes the chunk's k, v (ntok, KVDim) into slots (pos0+i) mod Window.
func (r *Ring) Store(k, v []float32, pos0 int) {
	kd := r.S.KVDim()
	kc, vc := r.conv(k), r.conv(v)
	for i := range len(k) / kd {
		slot := (pos0 + i) % r.S.Window
		copy(r.K[slot*kd:(slot+1)*kd], kc[i*kd:(i+1)*kd])
		copy(r.V[slot*kd:(slot+1)*kd], vc[i*kd:(i+1)*kd])
	}
}

// RoundF16 returns v rounded to f16 (to nearest, ties to even) and back.
func RoundF16(v []float32) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = FromF16(ToF16(x))
	}
	return out
}

// ToF16 converts f to IEEE half precision, rounding to nearest, ties to even;
// out-of-range values become ±Inf and NaN stays NaN.
func ToF16(f float32) uint16 { return toF16(f, false) }

// ToF16RTZ converts f to half precision rounding toward zero, as some
// devices' packHalf2x16 does (Vulkan leaves that rounding to the device).
func ToF16RTZ(f float32) uint16 { return toF16(f, true) }

func toF16(f float32, rtz bool) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // the half's biased exponent
	var h, rem, halfway uint32
	if e >= 1 {
		h = uint32(e)<<10 | mant>>13
		rem, halfway = mant&0x1fff, 0x1000
	} else {
		shift := uint32(14 - e) // in units of the half's smallest subnormal, 2^-24
		if exp == 0 || shift > 24 {
			return sign // f32 subnormals and anything below 2^-25 round to zero
		}
		m := mant | 0x800000
		h = m >> shift
		rem, halfway = m&(1<<shift-1), 1<<(shift-1)
	}
	if !rtz && (rem > halfway || rem == halfway && h&1 == 1) {
		h++ // a carry into the exponent is right, up to Inf
	}
	if h >= 0x7c00 {
		if rtz {
			return sign | 0x7bff
		}
		return sign | 0x7c00
	}
	return sign | uint16(h)
}

// FromF16 converts a half to float32 exactly.
func FromF16(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		x := float32(math.Ldexp(float64(mant), -24)) // zero or subnormal: exact in f32
		if sign != 0 {
			return -x
		}
		return x
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}
