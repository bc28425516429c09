package loader

import (
	"encoding/binary"
	"math"
)

// K-quant encoders. These are this package's own, not ports of ggml's
// quantize_row_*_ref: they produce valid ggml blocks (the layouts in
// quant_k.go) whose error is comparable to llama-quantize's without an
// importance matrix, but the bytes differ. Each works in three steps:
//
//  1. fit every sub-block on its own: a float scale (and, for the types
//     with a minimum, a float minimum) found by trying a few candidate
//     inverse scales and solving the least-squares problem for the integers
//     each candidate gives (fitScaleMin, fitScaleSym);
//  2. quantise the sub-block scales (and minimums) to the type's small
//     integers against one super-block f16 scale, then re-assign every
//     element to its nearest integer under the scales as the dequantiser
//     will see them (f16-rounded d times the integer scale);
//  3. refit the super-block f16 scale(s) to the integers chosen, by least
//     squares, re-assign the elements once more, and keep whichever block
//     dequantises closer to the input (keepBetter).
//
// Every element weighs the same: the searches minimise plain squared error
// (ggml weighs elements by magnitude when it has no importance matrix; on
// Gaussian test data uniform weights measured equal or lower error). The
// per-element cost is a few hundred float operations at most. Sums run
// in float64; products that feed a sum are explicit conversions, so the
// result does not depend on whether the architecture fuses multiply-adds.

// groupEps is the magnitude below which a sub-block counts as all zero.
const groupEps = 1e-15

// roundClamp rounds v to the nearest integer (halves to even) and clamps
// it to [lo, hi]. NaN gives lo.
func roundClamp(v float32, lo, hi int) int {
	switch {
	case !(v > float32(lo)): // also NaN
		return lo
	case v >= float32(hi):
		return hi
	}
	return int(math.RoundToEven(float64(v)))
}

// f16AwayFromZero is v as binary16, rounded away from zero instead of to
// nearest, so that its magnitude is at least |v| (or Inf).
func f16AwayFromZero(v float32) uint16 {
	h := Float32ToFloat16(v)
	if a := math.Abs(float64(Float16ToFloat32(h))); a < math.Abs(float64(v)) && h&0x7fff < 0x7c00 {
		h++ // the next binary16 of the same sign, one step larger
	}
	return h
}

// finite reports whether v is neither NaN nor ±Inf.
func finite(v float32) bool { return v-v == 0 }

// fitScaleMin fits x[i] ≈ s·q[i] − m with integers q[i] in 0..qmax, s ≥ 0
// and m ≥ 0 (the minimum is never above zero, as in ggml, so that a block of
// positive values still has an exact zero), minimising the squared error.
// Candidate inverse scales are qmax/(max − min) and (qmax + rmin +
// rdelta·k)/(max − min) for k = 0..nstep; for each, the integers are the
// rounded (x − min)·iscale and (s, −m) is their least-squares line, with m
// clamped to 0 if it comes out negative. The best candidate's integers are
// left in q. tmp is scratch of len(x). A constant block gives s = 0 and
// m = −x[0] (or 0 when x[0] > 0).
func fitScaleMin(x []float32, qmax int, q, tmp []uint8, rmin, rdelta float32, nstep int) (s, m float32) {
	lo, hi := x[0], x[0]
	var sx, sxx float64
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
		sx += float64(v)
		sxx += float64(float64(v) * float64(v))
	}
	lo = min(lo, 0)
	clear(q)
	if !(hi > lo) || !finite(hi-lo) { // constant ≤ 0, NaN or Inf
		if !finite(lo) {
			return 0, 0
		}
		return 0, -lo
	}
	n := float64(len(x))
	rng := hi - lo
	bestErr := math.Inf(1)
	var bs, bm float64
	for k := -1; k <= nstep; k++ {
		iscale := float32(qmax) / rng // k = −1: the plain min–max grid
		if k >= 0 {
			iscale = (float32(qmax) + rmin + float32(rdelta*float32(k))) / rng
		}
		var sl, sll, slx float64
		for i, v := range x {
			// v − lo ≥ 0, so adding ½ and truncating rounds.
			l := min(int(float32(iscale*(v-lo))+0.5), qmax)
			tmp[i] = uint8(l)
			fl := float64(l)
			sl += fl
			sll += float64(fl * fl)
			slx += float64(fl * float64(v))
		}
		var cs, cm float64 // scale and offset (−m)
		if det := float64(n*sll) - float64(sl*sl); det > 0 {
			cs = (float64(n*slx) - float64(sx*sl)) / det
			cm = (float64(sll*sx) - float64(sl*slx)) / det
		}
		if cm > 0 || cs == 0 { // offset above zero, or all integers equal
			if !(sll > 0) {
				continue
			}
			cm, cs = 0, slx/sll
		}
		// Σ (cs·l + cm − x)², expanded over the sums above.
		e := sxx + float64(cs*cs*sll) + float64(cm*cm*n) +
			float64(2*(float64(cs*cm*sl)-float64(cs*slx)-float64(cm*sx)))
		if e < bestErr {
			bestErr, bs, bm = e, cs, cm
			copy(q, tmp)
		}
	}
	return float32(bs), float32(-bm)
}

// fitScaleSym fits x[i] ≈ s·q[i] with integers q[i] in qlo..qhi (qlo =
// −(qhi+1)), minimising the squared error. The element of largest
// magnitude maps to about qlo (the end with the extra level), and 2·ntry+1
// inverse scales −(|qlo| + 0.1·k)/max, k = −ntry..ntry, are tried; for each
// the least-squares s of the rounded integers is computed and the candidate
// that explains the most of Σ x² is kept. s is negative when the largest
// element is positive. An all-zero x gives s = 0 and q = 0.
func fitScaleSym(x []float32, qlo, qhi int, q []int8, ntry int) float32 {
	m, amax := signedAbsMax(x)
	clear(q)
	if !(amax > groupEps) || !finite(amax) {
		return 0
	}
	var tmp [32]int8
	bestNum, bestDen := 0.0, 1.0 // maximise num²/den
	var s float32
	for k := -ntry; k <= ntry; k++ {
		iscale := -(float32(-qlo) + float32(0.1*float32(k))) / m
		var sxl, sll float64
		for i, v := range x {
			l := roundClamp(float32(iscale*v), qlo, qhi)
			tmp[i] = int8(l)
			fl := float64(l)
			sxl += float64(fl * float64(v))
			sll += float64(fl * fl)
		}
		if sll > 0 && float64(sxl*sxl)*bestDen > float64(bestNum*bestNum)*sll {
			bestNum, bestDen = sxl, sll
			s = float32(sxl / sll)
			copy(q, tmp[:len(x)])
		}
	}
	return s
}

// dequantBlock dequantises one block of type t (a block-quantised,
// supported type).
func dequantBlock(t DType, b []byte, y []float32) {
	switch t {
	case Q8_0:
		dequantQ8_0(b, y)
	case Q4_0:
		dequantQ4_0(b, y)
	case Q4_1:
		dequantQ4_1(b, y)
	case Q5_0:
		dequantQ5_0(b, y)
	case Q5_1:
		dequantQ5_1(b, y)
	case Q2_K:
		dequantQ2_K(b, y)
	case Q3_K:
		dequantQ3_K(b, y)
	case Q4_K:
		dequantQ4_K(b, y)
	case Q5_K:
		dequantQ5_K(b, y)
	case Q6_K:
		dequantQ6_K(b, y)
	case IQ4_NL:
		dequantIQ4_NL(b, y)
	case IQ4_XS:
		dequantIQ4_XS(b, y)
	default:
		panic("loader: dequantBlock: " + t.String())
	}
}

// keepBetter replaces block b (of type t, encoding x) by alt when alt
// dequantises strictly closer to x in squared error.
func keepBetter(t DType, x []float32, b, alt []byte) {
	var y0, y1 [256]float32
	n := len(x)
	dequantBlock(t, b, y0[:n])
	dequantBlock(t, alt, y1[:n])
	var e0, e1 float64
	for i, v := range x {
		d0, d1 := float64(y0[i]-v), float64(y1[i]-v)
		e0 += float64(d0 * d0)
		e1 += float64(d1 * d1)
	}
	if e1 < e0 {
		copy(b, alt)
	}
}

// affineK describes a K-quant whose elements are d·sc·q − dmin·m (Q2_K,
// Q4_K, Q5_K): sub-blocks of sub elements, quants 0..qmax, sub-block scale
// and minimum codes 0..smax, the fitScaleMin search parameters, and put,
// which writes a block from f16 d and dmin, the codes and the quants.
type affineK struct {
	t            DType
	sub          int
	qmax, smax   int
	rmin, rdelta float32
	nstep        int
	put          func(b []byte, d, dmin uint16, sc, m, q []uint8)
}

var (
	fmtQ2_K = affineK{Q2_K, 16, 3, 15, -0.5, 0.1, 15, putQ2_K}
	fmtQ4_K = affineK{Q4_K, 32, 15, 63, -1, 0.1, 20, putQ4_K}
	fmtQ5_K = affineK{Q5_K, 32, 31, 63, -0.5, 0.1, 15, putQ5_K}
)

func quantQ2_K(x []float32, b []byte) { quantAffineK(&fmtQ2_K, x, b) }
func quantQ4_K(x []float32, b []byte) { quantAffineK(&fmtQ4_K, x, b) }
func quantQ5_K(x []float32, b []byte) { quantAffineK(&fmtQ5_K, x, b) }

// quantAffineK encodes one 256-element super-block of format f.
func quantAffineK(f *affineK, x []float32, b []byte) {
	nsub := 256 / f.sub
	var q [256]uint8
	var tmp [32]uint8
	var sc, mn [16]float32
	var maxS, maxM float32
	for j := 0; j < nsub; j++ {
		xs := x[j*f.sub : (j+1)*f.sub]
		sc[j], mn[j] = fitScaleMin(xs, f.qmax, q[j*f.sub:(j+1)*f.sub], tmp[:f.sub], f.rmin, f.rdelta, f.nstep)
		maxS, maxM = max(maxS, sc[j]), max(maxM, mn[j])
	}
	// The codes are chosen against the super-block scales as stored (f16,
	// rounded away from zero so that the largest code fits): with small
	// weights d is an f16 subnormal, far from the float it stands for.
	var isc, imn [16]uint8
	var d, dmin float32
	smax := float32(f.smax)
	if maxS > 0 && finite(maxS) {
		d = Float16ToFloat32(f16AwayFromZero(maxS / smax))
		for j := 0; j < nsub; j++ {
			isc[j] = uint8(roundClamp(sc[j]/d, 0, f.smax))
		}
	}
	if maxM > 0 && finite(maxM) {
		dmin = Float16ToFloat32(f16AwayFromZero(maxM / smax))
		for j := 0; j < nsub; j++ {
			imn[j] = uint8(roundClamp(mn[j]/dmin, 0, f.smax))
		}
	}
	// encode writes the block for super-block scales d and dmin, with every
	// element re-assigned under the rounded scales.
	encode := func(d, dmin float32, out []byte) {
		hd, hm := Float32ToFloat16(d), Float32ToFloat16(dmin)
		dd, dm := Float16ToFloat32(hd), Float16ToFloat32(hm)
		for j := 0; j < nsub; j++ {
			dl, ml := dd*float32(isc[j]), dm*float32(imn[j])
			if dl == 0 {
				continue // every element is −ml whatever q is
			}
			for i := j * f.sub; i < (j+1)*f.sub; i++ {
				q[i] = uint8(roundClamp((x[i]+ml)/dl, 0, f.qmax))
			}
		}
		f.put(out, hd, hm, isc[:nsub], imn[:nsub], q[:])
	}
	encode(d, dmin, b)
	// Least-squares refit of (d, dmin) to the codes and quants now in q:
	// x ≈ d·u − dmin·v with u = sc·q, v = m.
	var suu, suv, svv, sux, svx float64
	for i, v := range x {
		j := i / f.sub
		u := float64(isc[j]) * float64(q[i])
		c := float64(imn[j])
		suu += float64(u * u)
		suv += float64(u * c)
		svv += float64(c * c)
		sux += float64(u * float64(v))
		svx += float64(c * float64(v))
	}
	nd, nm := d, dmin
	switch det := float64(suu*svv) - float64(suv*suv); {
	case svv == 0 && suu > 0:
		nd = float32(sux / suu)
	case det > 0:
		nd = float32((float64(sux*svv) - float64(svx*suv)) / det)
		nm = float32((float64(sux*suv) - float64(svx*suu)) / det)
	default:
		return
	}
	var alt [176]byte
	encode(nd, nm, alt[:len(b)])
	keepBetter(f.t, x, b, alt[:len(b)])
}

// putScalesK4 packs 8 six-bit scales and minimums into the 12 bytes of a
// Q4_K or Q5_K block, the inverse of scaleMinK4.
func putScalesK4(dst []byte, sc, m []uint8) {
	for j := 0; j < 4; j++ {
		dst[j] = sc[j]&63 | (sc[j+4]>>4)<<6
		dst[j+4] = m[j]&63 | (m[j+4]>>4)<<6
		dst[j+8] = sc[j+4]&15 | (m[j+4]&15)<<4
	}
}

// putQ2_K writes a Q2_K block (layout at dequantQ2_K); q holds 0..3.
func putQ2_K(b []byte, d, dmin uint16, sc, m, q []uint8) {
	for s := 0; s < 16; s++ {
		b[s] = sc[s]&15 | m[s]<<4
	}
	for h := 0; h < 2; h++ {
		e := q[128*h:]
		for l := 0; l < 32; l++ {
			b[16+32*h+l] = e[l] | e[l+32]<<2 | e[l+64]<<4 | e[l+96]<<6
		}
	}
	binary.LittleEndian.PutUint16(b[80:], d)
	binary.LittleEndian.PutUint16(b[82:], dmin)
}

// putQ4_K writes a Q4_K block (layout at dequantQ4_K); q holds 0..15.
func putQ4_K(b []byte, d, dmin uint16, sc, m, q []uint8) {
	binary.LittleEndian.PutUint16(b, d)
	binary.LittleEndian.PutUint16(b[2:], dmin)
	putScalesK4(b[4:16], sc, m)
	for g := 0; g < 4; g++ {
		e := q[64*g:]
		for l := 0; l < 32; l++ {
			b[16+32*g+l] = e[l] | e[l+32]<<4
		}
	}
}

// putQ5_K writes a Q5_K block (layout at dequantQ5_K); q holds 0..31.
func putQ5_K(b []byte, d, dmin uint16, sc, m, q []uint8) {
	binary.LittleEndian.PutUint16(b, d)
	binary.LittleEndian.PutUint16(b[2:], dmin)
	putScalesK4(b[4:16], sc, m)
	for l := 0; l < 32; l++ {
		var h byte
		for s := 0; s < 8; s++ {
			h |= (q[32*s+l] >> 4 & 1) << s
		}
		b[16+l] = h
	}
	for g := 0; g < 4; g++ {
		e := q[64*g:]
		for l := 0; l < 32; l++ {
			b[48+32*g+l] = e[l]&15 | (e[l+32]&15)<<4
		}
	}
}

// symK describes a K-quant whose elements are d·sc·q (Q3_K, Q6_K): 16
// sub-blocks of 16, quants qlo..qhi, signed sub-block scale codes slo..shi,
// and put, which writes a block from f16 d, the codes and the quants
// (stored offset by −qlo, so 0..qhi−qlo).
type symK struct {
	t        DType
	qlo, qhi int
	slo, shi int
	put      func(b []byte, d uint16, sc []int8, q []uint8)
}

var (
	fmtQ3_K = symK{Q3_K, -4, 3, -32, 31, putQ3_K}
	fmtQ6_K = symK{Q6_K, -32, 31, -128, 127, putQ6_K}
)

func quantQ3_K(x []float32, b []byte) { quantSymK(&fmtQ3_K, x, b) }
func quantQ6_K(x []float32, b []byte) { quantSymK(&fmtQ6_K, x, b) }

// symTries is how many candidate scales fitScaleSym tries on each side.
const symTries = 9

// quantSymK encodes one 256-element super-block of format f. The signed
// sub-block scale of largest magnitude maps to the code slo (−32 or −128),
// so d = that scale / slo.
func quantSymK(f *symK, x []float32, b []byte) {
	var q [256]int8
	var sc [16]float32
	var sm, samax float32
	for j := 0; j < 16; j++ {
		sc[j] = fitScaleSym(x[16*j:16*j+16], f.qlo, f.qhi, q[16*j:16*j+16], symTries)
		if a := float32(math.Abs(float64(sc[j]))); a > samax {
			samax, sm = a, sc[j]
		}
	}
	var codes [16]int8
	var d float32
	if samax > 0 && finite(samax) {
		// As in quantAffineK: codes against the stored f16 d.
		d = Float16ToFloat32(f16AwayFromZero(sm / float32(f.slo)))
		for j := range codes {
			codes[j] = int8(roundClamp(sc[j]/d, f.slo, f.shi))
		}
	}
	var uq [256]uint8
	encode := func(d float32, out []byte) {
		h := Float32ToFloat16(d)
		dd := Float16ToFloat32(h)
		for j := 0; j < 16; j++ {
			if dl := dd * float32(codes[j]); dl != 0 {
				for i := 16 * j; i < 16*j+16; i++ {
					q[i] = int8(roundClamp(x[i]/dl, f.qlo, f.qhi))
				}
			}
		}
		for i, v := range q {
			uq[i] = uint8(int(v) - f.qlo)
		}
		f.put(out, h, codes[:], uq[:])
	}
	encode(d, b)
	var suu, sux float64
	for i, v := range x {
		u := float64(codes[i/16]) * float64(q[i])
		suu += float64(u * u)
		sux += float64(u * float64(v))
	}
	if !(suu > 0) {
		return
	}
	var alt [210]byte
	encode(float32(sux/suu), alt[:len(b)])
	keepBetter(f.t, x, b, alt[:len(b)])
}

// putQ3_K writes a Q3_K block (layout at dequantQ3_K); q holds 0..7 (the
// quant plus 4), sc −32..31.
func putQ3_K(b []byte, d uint16, sc []int8, q []uint8) {
	clear(b)
	for i := 0; i < 256; i++ {
		b[i%32] |= (q[i] >> 2 & 1) << (i / 32)
	}
	for h := 0; h < 2; h++ {
		e := q[128*h:]
		for l := 0; l < 32; l++ {
			b[32+32*h+l] = e[l]&3 | (e[l+32]&3)<<2 | (e[l+64]&3)<<4 | (e[l+96]&3)<<6
		}
	}
	s := b[96:108]
	for j := 0; j < 16; j++ {
		u := uint8(int(sc[j]) + 32)
		if j < 8 {
			s[j] |= u & 15
		} else {
			s[j-8] |= (u & 15) << 4
		}
		s[8+j%4] |= (u >> 4) << (2 * (j / 4))
	}
	binary.LittleEndian.PutUint16(b[108:], d)
}

// putQ6_K writes a Q6_K block (layout at dequantQ6_K); q holds 0..63 (the
// quant plus 32), sc −128..127.
func putQ6_K(b []byte, d uint16, sc []int8, q []uint8) {
	for h := 0; h < 2; h++ {
		e := q[128*h:]
		for l := 0; l < 32; l++ {
			b[64*h+l] = e[l]&15 | (e[l+64]&15)<<4
			b[64*h+32+l] = e[l+32]&15 | (e[l+96]&15)<<4
			b[128+32*h+l] = e[l]>>4 | (e[l+32]>>4)<<2 | (e[l+64]>>4)<<4 | (e[l+96]>>4)<<6
		}
	}
	for j := 0; j < 16; j++ {
		b[192+j] = byte(sc[j])
	}
	binary.LittleEndian.PutUint16(b[208:], d)
}
