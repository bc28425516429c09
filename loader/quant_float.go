package loader

import "math"

// Exact conversions between float32 and the two 16-bit float formats.
//
// IEEE binary16 (F16): 1 sign bit, 5 exponent bits (bias 15), 10 mantissa
// bits. bfloat16 (BF16): the top 16 bits of a float32 (8 exponent bits, 7
// mantissa bits). Every F16 and BF16 value is exactly representable as a
// float32, so widening is exact; narrowing rounds to nearest, ties to even,
// as ggml's reference conversions and the F16C instruction do.

// Float16ToFloat32 widens an IEEE binary16 value exactly, including
// subnormals, ±Inf and NaN (the payload is kept in the top mantissa bits).
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal: rebias 15 -> 127
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0: // ±0
		return math.Float32frombits(sign)
	}
	// Subnormal: mant·2^-24, a normal float32. Shift the leading one up to
	// the implicit bit position and lower the exponent to match.
	e := uint32(113) // exponent of 2^-14 in float32 bias, before shifting
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// Float32ToFloat16 narrows to IEEE binary16, rounding to nearest with ties to
// even. Values beyond the F16 range become ±Inf; values below half the
// smallest subnormal become ±0. NaN stays NaN (quiet, top payload bits kept).
func Float32ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00
		}
		return sign | 0x7e00 | uint16(mant>>13)
	}
	e := exp - 127 + 15 // F16 biased exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Result is subnormal (or zero): value = m·2^-24 with m < 1024.
		if e < -10 {
			return sign // below half of 2^-24 even after rounding
		}
		m := mant | 0x800000 // explicit leading one; value = m·2^(exp-150)
		shift := uint32(14 - e)
		return sign | uint16(roundShiftEven(m, shift))
	}
	// Normal: drop 13 mantissa bits with rounding; a carry out of the
	// mantissa correctly bumps the exponent (and may reach Inf).
	v := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && v&1 == 1) {
		v++
	}
	return sign | uint16(v)
}

// roundShiftEven returns m >> s rounded to nearest, ties to even (s >= 1).
func roundShiftEven(m, s uint32) uint32 {
	if s >= 32 {
		return 0
	}
	q := m >> s
	rem := m & (1<<s - 1)
	half := uint32(1) << (s - 1)
	if rem > half || (rem == half && q&1 == 1) {
		q++
	}
	return q
}

// BFloat16ToFloat32 widens a bfloat16 value exactly.
func BFloat16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBFloat16 narrows to bfloat16 with round-to-nearest-even, as ggml's
// reference does: subnormals are rounded (not flushed), overflow gives ±Inf,
// and a NaN is kept NaN by forcing the quiet bit.
func Float32ToBFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}
