package loader

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// How the known-answer vectors below are made: each test builds blocks from
// logical values (a scale, per-element integers q, sub-block scales and
// minimums) with a packer written from the layout comments in quant.go and
// quant_k.go, then checks Dequantize against the defining formula, e.g.
// Q4_K's y[i] = d·sc[i/32]·q[i] − dmin·m[i/32]. Scales are powers of two and
// q are small integers, so every expected value is exact in float32 and the
// formula's evaluation order does not matter. A few literal byte blocks with
// hand-computed outputs pin the packers themselves.

// f16bits is the binary16 encoding of a value that has one.
func f16bits(t *testing.T, v float32) uint16 {
	t.Helper()
	h := Float32ToFloat16(v)
	require.Equal(t, v, Float16ToFloat32(h), "%v is not exact in f16", v)
	return h
}

func putF16(b []byte, h uint16) { binary.LittleEndian.PutUint16(b, h) }

func TestDequantizeLiteralBlocks(t *testing.T) {
	rep := func(b []byte, n int) []byte {
		out := make([]byte, 0, n*len(b))
		for i := 0; i < n; i++ {
			out = append(out, b...)
		}
		return out
	}
	cases := []struct {
		name string
		t    DType
		blk  []byte
		want map[int]float32 // element index -> value
	}{
		{"F32 one", F32, []byte{0x00, 0x00, 0x80, 0x3f}, map[int]float32{0: 1}},
		{"F16 -2", F16, []byte{0x00, 0xc0}, map[int]float32{0: -2}},
		{"F16 smallest subnormal", F16, []byte{0x01, 0x00}, map[int]float32{0: 0x1p-24}},
		{"BF16 1.5", BF16, []byte{0xc0, 0x3f}, map[int]float32{0: 1.5}},
		// d = 0.5 (0x3800), q[0] = -128, q[1] = 127, q[2..] = 1
		{"Q8_0", Q8_0, append([]byte{0x00, 0x38, 0x80, 0x7f}, rep([]byte{1}, 30)...),
			map[int]float32{0: -64, 1: 63.5, 2: 0.5, 31: 0.5}},
		// d = 2 (0x4000); byte 0 = 0xF0: element 0 = (0-8)·2, element 16 = (15-8)·2;
		// other bytes 0x98: low 8 -> 0, high 9 -> 2.
		{"Q4_0", Q4_0, append([]byte{0x00, 0x40, 0xf0}, rep([]byte{0x98}, 15)...),
			map[int]float32{0: -16, 16: 14, 1: 0, 17: 2, 15: 0, 31: 2}},
		// d = 0.5, m = -1 (0xbc00); byte 0 = 0x3f: element 0 = 15·0.5-1, element 16 = 3·0.5-1.
		{"Q4_1", Q4_1, append([]byte{0x00, 0x38, 0x00, 0xbc, 0x3f}, rep([]byte{0}, 15)...),
			map[int]float32{0: 6.5, 16: 0.5, 1: -1, 31: -1}},
		// d = 1; qh bit 0 and bit 31 set; qs[0] = 0x21, qs[15] = 0xf0, others 0.
		// element 0 = (1|16)-16 = 1, element 16 = 2-16, element 15 = 0-16, element 31 = (15|16)-16.
		{"Q5_0", Q5_0, append(append([]byte{0x00, 0x3c, 0x01, 0x00, 0x00, 0x80, 0x21}, rep([]byte{0}, 14)...), 0xf0),
			map[int]float32{0: 1, 16: -14, 15: -16, 31: 15, 1: -16}},
		// d = 0.25, m = 10 (0x4900); qh = 0x00010000 (element 16 high bit); qs[0] = 0x1f.
		// element 0 = 15·0.25+10, element 16 = (1|16)·0.25+10.
		{"Q5_1", Q5_1, append([]byte{0x00, 0x34, 0x00, 0x49, 0x00, 0x00, 0x01, 0x00, 0x1f}, rep([]byte{0}, 15)...),
			map[int]float32{0: 13.75, 16: 14.25, 1: 10, 31: 10}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := int(c.t.BlockSize())
			require.Len(t, c.blk, int(c.t.BlockBytes()))
			got := make([]float32, n)
			require.NoError(t, Dequantize(c.t, c.blk, got))
			for i, w := range c.want {
				assert.Equal(t, w, got[i], "element %d", i)
			}
		})
	}
}

// Packers: logical values -> block bytes, following the layout comments.

func packQ8_0(d uint16, q []int8) []byte {
	b := make([]byte, 34)
	putF16(b, d)
	for j := range 32 {
		b[2+j] = byte(q[j])
	}
	return b
}

// packNibbles puts q[j] (0..15) in the low nibble of byte j and q[j+16] in
// the high nibble.
func packNibbles(dst []byte, q []uint8) {
	for j := range 16 {
		dst[j] = q[j]&15 | (q[j+16]&15)<<4
	}
}

func packQ4_0(d uint16, q []uint8) []byte {
	b := make([]byte, 18)
	putF16(b, d)
	packNibbles(b[2:], q)
	return b
}

func packQ4_1(d, m uint16, q []uint8) []byte {
	b := make([]byte, 20)
	putF16(b, d)
	putF16(b[2:], m)
	packNibbles(b[4:], q)
	return b
}

func qhBits(q []uint8) uint32 {
	var qh uint32
	for j := range 32 {
		qh |= uint32(q[j]>>4&1) << j
	}
	return qh
}

func packQ5_0(d uint16, q []uint8) []byte {
	b := make([]byte, 22)
	putF16(b, d)
	binary.LittleEndian.PutUint32(b[2:], qhBits(q))
	packNibbles(b[6:], q)
	return b
}

func packQ5_1(d, m uint16, q []uint8) []byte {
	b := make([]byte, 24)
	putF16(b, d)
	putF16(b[2:], m)
	binary.LittleEndian.PutUint32(b[4:], qhBits(q))
	packNibbles(b[8:], q)
	return b
}

// packScalesK4 packs 8 six-bit scales and mins into 12 bytes.
func packScalesK4(sc, m []uint8) []byte {
	b := make([]byte, 12)
	for j := range 4 {
		b[j] = sc[j]&63 | (sc[j+4]>>4)<<6
		b[j+4] = m[j]&63 | (m[j+4]>>4)<<6
		b[j+8] = sc[j+4]&15 | (m[j+4]&15)<<4
	}
	return b
}

func packQ4_K(d, dmin uint16, sc, m []uint8, q []uint8) []byte {
	b := make([]byte, 144)
	putF16(b, d)
	putF16(b[2:], dmin)
	copy(b[4:], packScalesK4(sc, m))
	for i := range 256 {
		s, l := i/32, i%32
		b[16+32*(s/2)+l] |= (q[i] & 15) << (4 * (s % 2))
	}
	return b
}

func packQ5_K(d, dmin uint16, sc, m []uint8, q []uint8) []byte {
	b := make([]byte, 176)
	putF16(b, d)
	putF16(b[2:], dmin)
	copy(b[4:], packScalesK4(sc, m))
	for i := range 256 {
		s, l := i/32, i%32
		b[16+l] |= (q[i] >> 4 & 1) << s
		b[48+32*(s/2)+l] |= (q[i] & 15) << (4 * (s % 2))
	}
	return b
}

func packQ6_K(d uint16, sc []int8, q []uint8) []byte {
	b := make([]byte, 210)
	for i := range 256 {
		h, e := i/128, i%128
		quarter, l := e/32, e%32
		ql := 64*h + l + 32*(quarter%2)
		b[ql] |= (q[i] & 15) << (4 * (quarter / 2))
		b[128+32*h+l] |= (q[i] >> 4 & 3) << (2 * quarter)
	}
	for j := range 16 {
		b[192+j] = byte(sc[j])
	}
	putF16(b[208:], d)
	return b
}

// pattern returns n values cycling through 0..mod-1 with a stride, so
// neighbouring elements differ and every value occurs.
func pattern(n, mod, stride, off int) []uint8 {
	q := make([]uint8, n)
	for i := range q {
		q[i] = uint8((i*stride + off) % mod)
	}
	return q
}

func TestDequantizeKnownAnswers(t *testing.T) {
	type tc struct {
		name string
		t    DType
		blk  []byte
		want []float32
	}
	var cases []tc
	{ // Q8_0: y = q·d
		d := f16bits(t, 0.25)
		q := make([]int8, 32)
		want := make([]float32, 32)
		for j := range q {
			q[j] = int8(j*9 - 128 + j%3) // spans −128 … 151 wrapped: covers sign
			want[j] = float32(q[j]) * 0.25
		}
		cases = append(cases, tc{"Q8_0", Q8_0, packQ8_0(d, q), want})
	}
	{ // Q4_0: y = (q−8)·d
		q := pattern(32, 16, 5, 3)
		want := make([]float32, 32)
		for j := range q {
			want[j] = float32(int(q[j])-8) * 4
		}
		cases = append(cases, tc{"Q4_0", Q4_0, packQ4_0(f16bits(t, 4), q), want})
	}
	{ // Q4_1: y = q·d + m
		q := pattern(32, 16, 7, 1)
		want := make([]float32, 32)
		for j := range q {
			want[j] = float32(q[j])*0.5 - 3
		}
		cases = append(cases, tc{"Q4_1", Q4_1, packQ4_1(f16bits(t, 0.5), f16bits(t, -3), q), want})
	}
	{ // Q5_0: y = (q−16)·d
		q := pattern(32, 32, 11, 5)
		want := make([]float32, 32)
		for j := range q {
			want[j] = float32(int(q[j])-16) * 0.125
		}
		cases = append(cases, tc{"Q5_0", Q5_0, packQ5_0(f16bits(t, 0.125), q), want})
	}
	{ // Q5_1: y = q·d + m
		q := pattern(32, 32, 13, 2)
		want := make([]float32, 32)
		for j := range q {
			want[j] = float32(q[j])*2 + 1
		}
		cases = append(cases, tc{"Q5_1", Q5_1, packQ5_1(f16bits(t, 2), f16bits(t, 1), q), want})
	}
	// K-quant sub-block scales exercising all six bits (the high two bits
	// of scales and mins 4..7 live in bytes 0..7; they differ between sc
	// and mins so that mixing them up shows).
	sc := []uint8{1, 2, 3, 63, 17, 33, 48, 62}
	mins := []uint8{0, 5, 63, 20, 47, 2, 16, 61}
	{ // Q4_K: y = d·sc[s]·q − dmin·m[s], s = i/32
		q := pattern(256, 16, 7, 0)
		want := make([]float32, 256)
		for i := range q {
			want[i] = 0.5*float32(sc[i/32])*float32(q[i]) - 0.25*float32(mins[i/32])
		}
		cases = append(cases, tc{"Q4_K", Q4_K, packQ4_K(f16bits(t, 0.5), f16bits(t, 0.25), sc, mins, q), want})
	}
	{ // Q5_K: as Q4_K with 5-bit q
		q := pattern(256, 32, 13, 4)
		want := make([]float32, 256)
		for i := range q {
			want[i] = 0.25*float32(sc[i/32])*float32(q[i]) - 2*float32(mins[i/32])
		}
		cases = append(cases, tc{"Q5_K", Q5_K, packQ5_K(f16bits(t, 0.25), f16bits(t, 2), sc, mins, q), want})
	}
	{ // Q6_K: y = d·sc[i/16]·(q−32), sc int8
		q := pattern(256, 64, 23, 9)
		sc6 := []int8{1, -2, 3, -4, 127, -128, 7, 8, 9, 10, -11, 12, 13, 14, 15, -16}
		want := make([]float32, 256)
		for i := range q {
			want[i] = 0.5 * float32(sc6[i/16]) * float32(int(q[i])-32)
		}
		cases = append(cases, tc{"Q6_K", Q6_K, packQ6_K(f16bits(t, 0.5), sc6, q), want})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Two blocks: the second is the first with its bytes shifted in
			// by one block, checking block indexing.
			src := append(append([]byte{}, c.blk...), c.blk...)
			got := make([]float32, 2*len(c.want))
			require.NoError(t, Dequantize(c.t, src, got))
			require.Equal(t, c.want, got[:len(c.want)])
			require.Equal(t, c.want, got[len(c.want):])
		})
	}
}

// A Q6_K literal: every ql/qh byte zero gives q = 0 → (0−32)·d·sc.
func TestDequantizeQ6KZeroQuants(t *testing.T) {
	b := make([]byte, 210)
	for j := range 16 {
		b[192+j] = byte(int8(j - 8))
	}
	putF16(b[208:], 0x3c00) // d = 1
	got := make([]float32, 256)
	require.NoError(t, Dequantize(Q6_K, b, got))
	for i, v := range got {
		require.Equal(t, float32(-32*(i/16-8)), v, "element %d", i)
	}
}

func TestDequantizeErrors(t *testing.T) {
	cases := []struct {
		name string
		t    DType
		src  int
		dst  int
		want string
	}{
		{"partial block", Q4_0, 18, 31, "not a whole number"},
		{"short source", Q4_0, 17, 32, "take 18 bytes, got 17"},
		{"long source", Q8_0, 35, 32, "take 34 bytes, got 35"},
		{"unsupported", Q2_K, 84, 256, "unsupported tensor type Q2_K (id 10)"},
		{"unknown", DType(99), 4, 1, "unsupported tensor type id 99"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Dequantize(c.t, make([]byte, c.src), make([]float32, c.dst))
			require.ErrorContains(t, err, c.want)
		})
	}
	require.ErrorIs(t, Dequantize(IQ2_XXS, nil, nil), ErrUnsupportedType)
	require.NoError(t, Dequantize(Q4_K, nil, nil), "zero elements is fine")
}

func TestFloat16Exhaustive(t *testing.T) {
	// Every binary16 value widens exactly and narrows back to itself; the
	// widened value matches an independent computation from the fields.
	for h := 0; h < 1<<16; h++ {
		f := Float16ToFloat32(uint16(h))
		exp, mant := h>>10&0x1f, h&0x3ff
		sign := 1.0
		if h&0x8000 != 0 {
			sign = -1
		}
		var want float64
		switch {
		case exp == 0x1f && mant == 0:
			want = math.Inf(int(sign))
		case exp == 0x1f:
			require.True(t, math.IsNaN(float64(f)), "%#04x", h)
			require.Equal(t, uint16(h)|0x200, Float32ToFloat16(f), "NaN %#04x keeps payload, made quiet", h)
			continue
		case exp == 0:
			want = sign * float64(mant) * 0x1p-24
		default:
			want = sign * (1 + float64(mant)/1024) * math.Ldexp(1, exp-15)
		}
		require.Equal(t, want, float64(f), "%#04x", h)
		require.Equal(t, uint16(h), Float32ToFloat16(f), "%#04x round trip", h)
	}
}

func TestFloat32ToFloat16Rounding(t *testing.T) {
	cases := []struct {
		in   float32
		want uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{65504, 0x7bff},                       // largest finite
		{65519.996, 0x7bff},                   // just below the rounding boundary
		{65520, 0x7c00},                       // halfway to 2^16 rounds to even: Inf
		{1e10, 0x7c00},                        // overflow
		{-1e10, 0xfc00},                       // overflow
		{float32(math.Inf(1)), 0x7c00},        //
		{1 + 0x1p-11, 0x3c00},                 // tie between 1 and 1+2^-10: even (1)
		{1 + 3*0x1p-11, 0x3c02},               // tie between 1+2^-10 and 1+2^-9: even
		{1 + 0x1p-11 + 0x1p-20, 0x3c01},       // just above the tie
		{0x1p-24, 0x0001},                     // smallest subnormal
		{0x1p-25, 0x0000},                     // tie with 0: even
		{0x1p-25 + 0x1p-35, 0x0001},           // above the tie
		{3 * 0x1p-25, 0x0002},                 // 1.5 ulp: tie rounds to even 2
		{0x1p-14 - 0x1p-25, 0x0400},           // rounds up into the smallest normal
		{0x1p-14, 0x0400},                     // smallest normal
		{1e-30, 0x0000},                       // far below
		{-0x1p-24, 0x8001},                    //
		{float32(math.Float32frombits(1)), 0}, // float32 subnormal
	}
	for _, c := range cases {
		assert.Equal(t, c.want, Float32ToFloat16(c.in), "%g", c.in)
	}
	nan := Float32ToFloat16(float32(math.NaN()))
	assert.Equal(t, uint16(0x7c00), nan&0x7c00)
	assert.NotZero(t, nan&0x3ff)
	// A NaN whose payload is only in the low bits must stay NaN.
	assert.True(t, math.IsNaN(float64(Float16ToFloat32(Float32ToFloat16(math.Float32frombits(0x7f800001))))))
}

func TestFloat32ToFloat16MatchesRounding(t *testing.T) {
	// Property: the result is the nearest f16 (by float64 distance), ties to
	// even, for many values around every exponent.
	var r pcg = *newPCG(1, 2)
	for i := 0; i < 200000; i++ {
		bits := r.next()
		f := math.Float32frombits(bits&0x8fffffff | 0x30000000) // exponents near the f16 range
		if i%2 == 0 {
			f = math.Float32frombits(bits)
		}
		if math.IsNaN(float64(f)) {
			continue
		}
		h := Float32ToFloat16(f)
		got := float64(Float16ToFloat32(h))
		if math.IsInf(got, 0) {
			require.GreaterOrEqual(t, math.Abs(float64(f)), 65520.0, "%g", f)
			continue
		}
		// neighbours
		for _, nb := range []uint16{h - 1, h + 1} {
			if nb&0x7c00 == 0x7c00 || (nb^h)&0x8000 != 0 {
				continue
			}
			alt := float64(Float16ToFloat32(nb))
			dGot, dAlt := math.Abs(got-float64(f)), math.Abs(alt-float64(f))
			require.True(t, dGot < dAlt || (dGot == dAlt && h&1 == 0), "%g -> %#04x (%g), neighbour %#04x (%g) is nearer", f, h, got, nb, alt)
		}
	}
}

func TestBFloat16(t *testing.T) {
	cases := []struct {
		in   float32
		want uint16
	}{
		{1, 0x3f80},
		{-2, 0xc000},
		{math.Float32frombits(0x3f808000), 0x3f80}, // tie: even
		{math.Float32frombits(0x3f818000), 0x3f82}, // tie: even (up)
		{math.Float32frombits(0x3f808001), 0x3f81}, // above tie
		{math.Float32frombits(0x7f7fffff), 0x7f80}, // max float32 rounds to Inf
		{math.Float32frombits(0x00018000), 0x0002}, // subnormal, rounded not flushed
		{float32(math.Inf(-1)), 0xff80},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, Float32ToBFloat16(c.in), "%#08x", math.Float32bits(c.in))
	}
	assert.Equal(t, uint16(0x7fc1), Float32ToBFloat16(math.Float32frombits(0x7f810000)), "NaN made quiet")
	for h := 0; h < 1<<16; h++ {
		f := BFloat16ToFloat32(uint16(h))
		require.Equal(t, uint32(h)<<16, math.Float32bits(f))
		if !math.IsNaN(float64(f)) {
			require.Equal(t, uint16(h), Float32ToBFloat16(f))
		}
	}
}

// testValues returns n deterministic values with a spread of magnitudes and
// some blocks that are all zero or constant.
func testValues(n int, seed uint64) []float32 {
	r := newPCG(seed, 7)
	x := make([]float32, n)
	for i := range x {
		x[i] = (2*r.float() - 1) * float32(math.Exp2(float64(int(r.next()%12)-6)))
	}
	if n >= 96 {
		clear(x[32:64])
		for i := 64; i < 96; i++ {
			x[i] = -1.5
		}
	}
	return x
}

func TestQuantizeRoundTripBounds(t *testing.T) {
	x := testValues(32*64, 42)
	for _, c := range []struct {
		t DType
		// bound returns the largest allowed |error| for element j of a
		// block whose largest magnitude is amax.
		bound func(amax, v float32) float64
	}{
		{F32, func(amax, v float32) float64 { return 0 }},
		{F16, func(amax, v float32) float64 { return math.Max(math.Abs(float64(v))*0x1p-11, 0x1p-25) }},
		{BF16, func(amax, v float32) float64 { return math.Abs(float64(v)) * 0x1p-8 }},
		// half a step of d = amax/127, plus the f16 rounding of d (2^-11
		// relative) times the largest |q| = 127.
		{Q8_0, func(amax, v float32) float64 { return float64(amax)/127*0.5 + float64(amax)*(0x1p-11+1e-6) }},
		// a step is |d| = amax/8; rounding to nearest gives half a step,
		// except the clamp at q = 15 costs up to one step on the side
		// opposite the maximum, plus f16 error in d times |q−8| ≤ 8.
		{Q4_0, func(amax, v float32) float64 { return float64(amax)/8 + float64(amax)*(0x1p-11+1e-6) }},
	} {
		t.Run(c.t.String(), func(t *testing.T) {
			q, err := Quantize(c.t, x)
			require.NoError(t, err)
			n, _ := c.t.RowBytes(uint64(len(x)))
			require.Len(t, q, int(n))
			y := make([]float32, len(x))
			require.NoError(t, Dequantize(c.t, q, y))
			for b := 0; b < len(x); b += 32 {
				var amax float32
				for _, v := range x[b : b+32] {
					amax = max(amax, float32(math.Abs(float64(v))))
				}
				for j := b; j < b+32; j++ {
					err := math.Abs(float64(y[j] - x[j]))
					require.LessOrEqual(t, err, c.bound(amax, x[j]), "element %d: %g -> %g", j, x[j], y[j])
				}
			}
			// An all-zero block stays exactly zero.
			for j := 32; j < 64; j++ {
				require.Zero(t, y[j])
			}
			// Quantizing the dequantized values again stays within the
			// same bound of them.
			q2, err := Quantize(c.t, y)
			require.NoError(t, err)
			y2 := make([]float32, len(y))
			require.NoError(t, Dequantize(c.t, q2, y2))
			for b := 0; b < len(y); b += 32 {
				var amax float32
				for _, v := range y[b : b+32] {
					amax = max(amax, float32(math.Abs(float64(v))))
				}
				for j := b; j < b+32; j++ {
					require.LessOrEqual(t, math.Abs(float64(y2[j]-y[j])), c.bound(amax, y[j]), "requantized element %d", j)
				}
			}
		})
	}
}

func TestQuantizeBitExact(t *testing.T) {
	// Hand-worked blocks against ggml's reference algorithms.
	t.Run("Q8_0", func(t *testing.T) {
		x := make([]float32, 32)
		x[0], x[1], x[2], x[3] = 127, -63.5, 0.5, -0.5 // d = 1
		x[4] = 1.5                                     // round half away: 2
		x[5] = -2.5                                    // -3
		q, err := Quantize(Q8_0, x)
		require.NoError(t, err)
		assert.Equal(t, uint16(0x3c00), binary.LittleEndian.Uint16(q))
		assert.Equal(t, []int8{127, -64, 1, -1, 2, -3, 0}, bytesToInt8(q[2:9]))
	})
	t.Run("Q4_0", func(t *testing.T) {
		x := make([]float32, 32)
		x[0] = -16 // max by magnitude, negative: d = -16/-8 = 2
		x[1] = 14  // 14/2+8.5 = 15.5 -> 15
		x[2] = 15  // 16 -> clamped 15
		x[3] = 1   // 0.5+8.5 = 9 -> 9
		x[4] = -1  // 8 -> 8 ... (-0.5+8.5 = 8)
		x[16] = 3  // 1.5+8.5 = 10
		q, err := Quantize(Q4_0, x)
		require.NoError(t, err)
		assert.Equal(t, uint16(0x4000), binary.LittleEndian.Uint16(q), "d = 2")
		lo := func(j int) byte { return q[2+j] & 15 }
		hi := func(j int) byte { return q[2+j] >> 4 }
		assert.Equal(t, []byte{0, 15, 15, 9, 8, 8}, []byte{lo(0), lo(1), lo(2), lo(3), lo(4), lo(5)})
		assert.Equal(t, byte(10), hi(0))

		// Positive maximum: d = 16/-8 = -2, so the maximum maps to q = 0.
		x[0] = 16
		q, err = Quantize(Q4_0, x)
		require.NoError(t, err)
		assert.Equal(t, uint16(0xc000), binary.LittleEndian.Uint16(q), "d = -2")
		assert.Equal(t, byte(0), lo(0))
		y := make([]float32, 32)
		require.NoError(t, Dequantize(Q4_0, q, y))
		assert.Equal(t, float32(16), y[0])
		// Ties in magnitude keep the first element's sign.
		x2 := make([]float32, 32)
		x2[3], x2[7] = -4, 4
		q, err = Quantize(Q4_0, x2)
		require.NoError(t, err)
		assert.Equal(t, uint16(0x3800), binary.LittleEndian.Uint16(q), "d = -4/-8 = 0.5")
	})
	t.Run("F16 and BF16", func(t *testing.T) {
		q, err := Quantize(F16, []float32{1, -2})
		require.NoError(t, err)
		assert.Equal(t, []byte{0x00, 0x3c, 0x00, 0xc0}, q)
		q, err = Quantize(BF16, []float32{1, -2})
		require.NoError(t, err)
		assert.Equal(t, []byte{0x80, 0x3f, 0x00, 0xc0}, q)
	})
}

func bytesToInt8(b []byte) []int8 {
	out := make([]int8, len(b))
	for i, v := range b {
		out[i] = int8(v)
	}
	return out
}

func TestQuantizeErrors(t *testing.T) {
	_, err := Quantize(Q4_K, make([]float32, 256))
	require.ErrorIs(t, err, ErrUnsupportedType)
	_, err = Quantize(Q8_0, make([]float32, 33))
	require.ErrorContains(t, err, "not a whole number of 32-element blocks")
	_, err = Quantize(DType(4), make([]float32, 32))
	require.ErrorIs(t, err, ErrUnsupportedType)
	// NaN input must not panic and must produce a full block.
	x := make([]float32, 32)
	x[5] = float32(math.NaN())
	for _, dt := range []DType{Q8_0, Q4_0, F16, BF16} {
		q, err := Quantize(dt, x)
		require.NoError(t, err, dt.String())
		n, _ := dt.RowBytes(32)
		require.Len(t, q, int(n))
	}
}

func BenchmarkDequantize(b *testing.B) {
	for _, dt := range []DType{F16, Q8_0, Q4_0, Q4_K, Q6_K} {
		n := 4096 * 16
		size, _ := dt.RowBytes(uint64(n))
		src := make([]byte, size)
		dst := make([]float32, n)
		b.Run(dt.String(), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if err := Dequantize(dt, src, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func ExampleQuantize() {
	x := make([]float32, 32)
	for i := range x {
		x[i] = float32(i) - 16
	}
	q, _ := Quantize(Q4_0, x)
	y := make([]float32, 32)
	_ = Dequantize(Q4_0, q, y)
	fmt.Println(len(q), y[0], y[1], y[31])
	// Output: 18 -16 -14 14
}
