package loader

import (
	"encoding/binary"
	"math"
)

// Non-linear 4-bit quants. IQ4_NL and IQ4_XS store 4-bit indices into one
// fixed table of 16 signed levels (denser near zero, matching the bell shape
// of weight distributions) instead of evenly spaced integers.

// kvaluesIQ4 is ggml's kvalues_iq4nl: the level an index q (0..15) stands
// for. The table is sorted and not symmetric (−127 … 113).
var kvaluesIQ4 = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// nearestIQ4Table maps ⌊2v⌋ + 256, for 2v in [−256, 256), to the index of
// the level nearest v. Every midpoint between two neighbouring levels is a
// multiple of ½, so it falls on an interval's edge and the nearest level is
// the same over the whole interval (except at the edge itself, a tie,
// where either neighbour is as near).
var nearestIQ4Table = func() (t [512]uint8) {
	for k := range t {
		v := (float64(k-256) + 0.5) / 2 // the interval's centre
		best := 0
		for i, l := range kvaluesIQ4 {
			if math.Abs(v-float64(l)) < math.Abs(v-float64(kvaluesIQ4[best])) {
				best = i
			}
		}
		t[k] = uint8(best)
	}
	return t
}()

// nearestIQ4 is the index of the level nearest v (at a tie, either). Values
// beyond the table's ends give index 0 or 15; NaN gives 0.
func nearestIQ4(v float32) int {
	t := 2*v + 256
	switch {
	case !(t > 0): // also NaN
		return 0
	case t >= 512:
		return 15
	}
	return int(nearestIQ4Table[int(t)])
}

// IQ4_NL, 18 bytes per 32 elements:
//
//	[0:2]   d  f16 scale
//	[2:18]  qs [16]byte, nibble layout as in Q4_0 (byte j: element j low,
//	        element j+16 high)
//
// Element j is d·kvalues[q] (kvaluesIQ4).
func dequantIQ4_NL(b []byte, y []float32) {
	d := f16(b)
	for j := 0; j < 16; j++ {
		q := b[2+j]
		y[j] = d * float32(kvaluesIQ4[q&0xf])
		y[j+16] = d * float32(kvaluesIQ4[q>>4])
	}
}

// scaleIQ4XS is the 6-bit scale of sub-block ib (0..7) of an IQ4_XS block
// with scales_h h and scales_l l, as a signed value −32..31: its low four
// bits are nibble ib%2 of l[ib/2] (low nibble first), its top two bits are
// bits 2ib..2ib+1 of h.
func scaleIQ4XS(ib int, h uint16, l []byte) int {
	lo := int(l[ib/2]>>(4*(ib%2))) & 0xf
	hi := int(h>>(2*ib)) & 3
	return lo | hi<<4 - 32
}

// IQ4_XS, 136 bytes per 256 elements (8 sub-blocks of 32):
//
//	[0:2]     d  f16 super-block scale
//	[2:4]     scales_h uint16: the top two bits of each sub-block's scale
//	[4:8]     scales_l: the low four bits, two sub-blocks a byte
//	          (see scaleIQ4XS)
//	[8:136]   qs: eight 16-byte groups, group ib for sub-block ib, each
//	          laid out as IQ4_NL's qs
//
// Element l of sub-block ib is d·sc[ib]·kvalues[q], sc in −32..31.
func dequantIQ4_XS(b []byte, y []float32) {
	d := f16(b)
	h := binary.LittleEndian.Uint16(b[2:])
	for ib := 0; ib < 8; ib++ {
		dl := d * float32(scaleIQ4XS(ib, h, b[4:8]))
		qs := b[8+16*ib:][:16]
		out := y[32*ib : 32*ib+32]
		for j := 0; j < 16; j++ {
			out[j] = dl * float32(kvaluesIQ4[qs[j]&0xf])
			out[j+16] = dl * float32(kvaluesIQ4[qs[j]>>4])
		}
	}
}

// iq4Tries is how many candidate scales fitIQ4 tries on each side of each
// of its two starting points.
const iq4Tries = 7

// fitIQ4 chooses the scale s for which s·kvalues[q[i]] best approximates
// x[i] in the least-squares sense, writing the indices to q. The search
// starts from the two inverse scales that map the element of largest
// magnitude onto the lowest level (−127) or onto the highest (113), tries
// iq4Tries steps of one level either side of each, assigns every element
// its nearest level, and keeps the candidate whose least-squares scale
// removes the most error. An all-zero (or non-finite) x gives s = 0 and
// q = 0.
func fitIQ4(x []float32, q []uint8) float32 {
	m, amax := signedAbsMax(x)
	if !(amax > groupEps) || !finite(amax) {
		clear(q)
		return 0
	}
	var tmp [32]uint8
	bestNum, bestDen := 0.0, 1.0 // score = num²/den, larger is better
	scale := float32(0)
	ends := [2]float32{float32(kvaluesIQ4[0]), float32(kvaluesIQ4[15])}
	for _, end := range ends {
		for t := -iq4Tries; t <= iq4Tries; t++ {
			id := (end + float32(t)) / m
			var sqx, sq2 float64
			for i, v := range x {
				k := nearestIQ4(float32(id * v))
				tmp[i] = uint8(k)
				l := float64(kvaluesIQ4[k])
				sqx += float64(l * float64(v))
				sq2 += float64(l * l)
			}
			if sq2 > 0 && sqx*sqx*bestDen > bestNum*bestNum*sq2 {
				bestNum, bestDen = sqx, sq2
				scale = float32(sqx / sq2)
				copy(q, tmp[:len(x)])
			}
		}
	}
	if scale == 0 {
		clear(q)
	}
	return scale
}

// quantIQ4_NL writes one IQ4_NL block: the scale from fitIQ4, stored as
// f16, then every element re-assigned to its nearest level under that
// rounded scale.
func quantIQ4_NL(x []float32, b []byte) {
	var q [32]uint8
	s := fitIQ4(x, q[:])
	h := Float32ToFloat16(s)
	binary.LittleEndian.PutUint16(b, h)
	if d := Float16ToFloat32(h); d != 0 {
		id := 1 / d
		for i, v := range x {
			q[i] = uint8(nearestIQ4(float32(v * id)))
		}
	}
	for j := 0; j < 16; j++ {
		b[2+j] = q[j] | q[j+16]<<4
	}
}

// quantIQ4_XS writes one IQ4_XS block. Each sub-block of 32 gets its own
// float scale from fitIQ4; the super-block scale d maps the largest of them
// (by magnitude) to −32, the others round to the nearest of −32..31 steps of
// d; a least-squares pass then refits d to the chosen steps and levels, and
// the elements are re-assigned under the final f16 d. The refit is kept
// only if it lowers the block's squared error.
func quantIQ4_XS(x []float32, b []byte) {
	var q [256]uint8
	var scales [8]float32
	var sm, samax float32
	for ib := 0; ib < 8; ib++ {
		scales[ib] = fitIQ4(x[32*ib:32*ib+32], q[32*ib:32*ib+32])
		if a := float32(math.Abs(float64(scales[ib]))); a > samax {
			samax, sm = a, scales[ib]
		}
	}
	clear(b)
	if !(samax > 0) || samax > math.MaxFloat32 {
		return // all zero: d = 0, every value 0
	}
	// Codes against the stored f16 d, as in quantAffineK.
	d := Float16ToFloat32(f16AwayFromZero(sm / -32))
	var ls [8]int
	for ib := range ls {
		ls[ib] = roundClamp(scales[ib]/d, -32, 31)
	}
	encode := func(d float32, out []byte) {
		h := Float32ToFloat16(d)
		binary.LittleEndian.PutUint16(out, h)
		dh := Float16ToFloat32(h)
		var sh uint16
		for ib := 0; ib < 8; ib++ {
			u := uint8(ls[ib] + 32)
			out[4+ib/2] |= (u & 0xf) << (4 * (ib % 2))
			sh |= uint16(u>>4) << (2 * ib)
			dl := dh * float32(ls[ib])
			qs := out[8+16*ib:][:16]
			for j := 0; j < 16; j++ {
				var q0, q1 uint8
				if dl != 0 {
					q0 = uint8(nearestIQ4(x[32*ib+j] / dl))
					q1 = uint8(nearestIQ4(x[32*ib+j+16] / dl))
				} else {
					q0, q1 = q[32*ib+j], q[32*ib+j+16]
				}
				qs[j] = q0 | q1<<4
			}
		}
		binary.LittleEndian.PutUint16(out[2:], sh)
	}
	encode(d, b)
	// Refit d: minimise Σ (d·ls·k − x)² over the levels just chosen.
	var num, den float64
	for ib := 0; ib < 8; ib++ {
		qs := b[8+16*ib:][:16]
		for j := 0; j < 16; j++ {
			for k, v := range [2]float32{x[32*ib+j], x[32*ib+j+16]} {
				u := float64(ls[ib]) * float64(kvaluesIQ4[qs[j]>>(4*k)&0xf])
				num += float64(u * float64(v))
				den += float64(u * u)
			}
		}
	}
	if den > 0 {
		var alt [136]byte
		encode(float32(num/den), alt[:])
		keepBetter(IQ4_XS, x, b, alt[:])
	}
}
