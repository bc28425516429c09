package loader

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
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

		// The blocks below are zero except for the listed bytes; each
		// expected value is worked out from ggml's dequantize_row_* by hand.
		//
		// Q2_K: d = 1 at [80], dmin = 0.5 at [82]. Element e = 128h+32j+l
		// is bits 2j of qs byte 16+32h+l, in sub-block e/16.
		//   scales[0] = 0x21 (sc 1, m 2), [1] = 0x13 (sc 3, m 1),
		//   [2] = 0x05 (sc 5, m 0), [13] = 0x4f (sc 15, m 4), [15] = 0xf2 (sc 2, m 15).
		//   byte 16 = 0x03: element 0 has q 3 → 1·3 − 0.5·2 = 2; element 1 q 0 → −1.
		//   byte 33 = 0x02: element 17 (l 17, sub-block 1) q 2 → 3·2 − 0.5 = 5.5.
		//   byte 21 = 0x0c: element 37 (j 1, l 5, sub-block 2) q 3 → 15; element 5 → −1.
		//   byte 64 = 0x20: element 208 (h 1, j 2, l 16, sub-block 13) q 2 → 30 − 2 = 28.
		//   byte 79 = 0x40: element 255 (h 1, j 3, l 31) q 1 → 2 − 7.5; element 240 q 0 → −7.5.
		//   element 32 (sub-block 2, q 0) → 0; element 159 (sub-block 9: sc 0, m 0) → 0.
		{"Q2_K", Q2_K, litBlock(84, 80, 0x00, 81, 0x3c, 82, 0x00, 83, 0x38,
			0, 0x21, 1, 0x13, 2, 0x05, 13, 0x4f, 15, 0xf2, 16, 0x03, 33, 0x02, 21, 0x0c, 64, 0x20, 79, 0x40),
			map[int]float32{0: 2, 1: -1, 17: 5.5, 37: 15, 5: -1, 208: 28, 255: -5.5, 240: -7.5, 32: 0, 159: 0}},
		// Q3_K: d = 0.5 at [108]. A zero scale byte means code 0, scale −32,
		// and a clear hmask bit subtracts 4: an untouched element is
		// 0.5·(−32)·(0−4) = 64.
		//   sub-block 0: code 33 (scale 1): low nibble 1 in byte 96, top bits 2 in byte 104 bits 0-1.
		//   sub-block 5: code 42 (scale 10): low nibble 10 in byte 101, top bits 2 in byte 105 bits 2-3.
		//   sub-block 15: code 63 (scale 31): low nibble 15 in byte 103's high nibble, top bits 3 in byte 107 bits 6-7.
		//   element 0: qs byte 32 = 0x03, hmask byte 0 bit 0 → q 7−4 = 3 → 0.5·1·3 = 1.5.
		//   element 1: hmask byte 1 bit 0 only → q 4−4 = 0 → 0.
		//   element 2: qs byte 34 = 0x02 → q 2−4 → −1.
		//   element 80 (h 0, j 2, l 16, sub-block 5): qs byte 48 = 0x30, hmask byte 16 bit 2 → 3 → 15.
		//   element 150 (h 1, j 0, l 22, sub-block 9, scale −32): qs byte 86 = 0x01, hmask byte 22 bit 4 → 1 → −16.
		//   element 255 (h 1, j 3, l 31): qs byte 95 = 0x80, hmask byte 31 bit 7 → 2 → 31.
		//   element 240 (h 1, j 3, l 16): nothing set → −4 → 0.5·31·(−4) = −62.
		//   element 3 (sub-block 0): nothing set → 0.5·1·(−4) = −2.
		{"Q3_K", Q3_K, litBlock(110, 108, 0x00, 109, 0x38,
			96, 0x01, 104, 0x02, 101, 0x0a, 105, 0x08, 103, 0xf0, 107, 0xc0,
			32, 0x03, 0, 0x01|0x04, 1, 0x01, 34, 0x02, 48, 0x30, 16, 0x04, 86, 0x01, 22, 0x10, 95, 0x80, 31, 0x80),
			map[int]float32{0: 1.5, 1: 0, 2: -1, 80: 15, 150: -16, 255: 31, 240: -62, 100: 64, 3: -2}},
		// Q4_K: d = 1, dmin = 1. Sub-block 0: scale byte 4 = 2, min byte 8 = 3.
		// Sub-block 5: scale = byte 13 low nibble 1 | (byte 5 >> 6) << 4 = 17,
		// min = byte 13 high nibble 2 | (byte 9 >> 6) << 4 = 50; byte 5 and
		// byte 9 also give sub-block 1 scale 0 and min 0.
		//   element 0 = low nibble of byte 16 (7) → 2·7 − 3 = 11; element 1 → −3.
		//   element 32 (sub-block 1) = high nibble of byte 16 → 0.
		//   element 161 = high nibble of byte 16+64+1 (10) → 17·10 − 50 = 120; element 191 → −50.
		{"Q4_K", Q4_K, litBlock(144, 0, 0x00, 1, 0x3c, 2, 0x00, 3, 0x3c,
			4, 0x02, 8, 0x03, 13, 0x21, 5, 0x40, 9, 0xc0, 16, 0x07, 81, 0xa0),
			map[int]float32{0: 11, 1: -3, 32: 0, 161: 120, 191: -50}},
		// Q5_K: the same scales; qh bit s of byte 16+l is element 32s+l's
		// fifth bit, qs start at byte 48.
		//   element 0: low nibble 7 of byte 48, bit 0 of byte 16 → 23 → 2·23 − 3 = 43.
		//   element 161: high nibble 10 of byte 48+64+1, bit 5 of byte 17 → 26 → 17·26 − 50 = 392.
		//   element 1: bit 0 of byte 17 clear → −3; element 160 → −50.
		{"Q5_K", Q5_K, litBlock(176, 0, 0x00, 1, 0x3c, 2, 0x00, 3, 0x3c,
			4, 0x02, 8, 0x03, 13, 0x21, 5, 0x40, 9, 0xc0, 48, 0x07, 16, 0x01, 113, 0xa0, 17, 0x20),
			map[int]float32{0: 43, 161: 392, 1: -3, 160: -50}},
		// Q6_K: d = 1 at [208]; scales[0] = 2, scales[10] = −3.
		//   element 0: low nibble 5 of ql byte 0, bits 0-1 of qh byte 128 = 2 → 37−32 = 5 → 10.
		//   element 160 (half 1, l 0, second quarter, scale 8+0+2 = 10): low nibble 15
		//   of ql byte 96, bits 2-3 of qh byte 160 = 3 → 63−32 = 31 → −93.
		//   element 161: q 0 → −32 → 96; element 64 (scale index 4, zero) → 0.
		{"Q6_K", Q6_K, litBlock(210, 208, 0x00, 209, 0x3c, 192, 0x02, 202, 0xfd,
			0, 0x05, 128, 0x02, 96, 0x0f, 160, 0x0c),
			map[int]float32{0: 10, 160: -93, 161: 96, 64: 0}},
		// IQ4_NL: d = 2. Byte 2 = 0xf0: element 0 = 2·kvalues[0] = −254,
		// element 16 = 2·kvalues[15] = 226; byte 3 = 0x78: element 1 =
		// 2·kvalues[8] = 2, element 17 = 2·kvalues[7] = −20; zero nibbles → −254.
		{"IQ4_NL", IQ4_NL, litBlock(18, 0, 0x00, 1, 0x40, 2, 0xf0, 3, 0x78),
			map[int]float32{0: -254, 16: 226, 1: 2, 17: -20, 31: -254}},
		// IQ4_XS: d = 0.5. scales_h = 0xc042: sub-block 0 top bits 2,
		// sub-block 3 top bits 1, sub-block 7 top bits 3. scales_l: byte 4
		// = 0x01 (sub-block 0 low nibble 1), byte 5 = 0xf0 (sub-block 3 low
		// nibble 15), byte 7 = 0xf0 (sub-block 7 low nibble 15). So the
		// scales are 33−32 = 1, 31−32 = −1 and 63−32 = 31, and −32 elsewhere.
		//   element 0: low nibble of byte 8 = 15 → 0.5·1·113 = 56.5; element 16 → 0.5·(−127) = −63.5.
		//   element 101 (sub-block 3, j 5): byte 8+48+5 = 0x09 → 0.5·(−1)·13 = −6.5.
		//   element 255 (sub-block 7, j 15 high): byte 135 = 0x80 → 0.5·31·1 = 15.5.
		//   element 32 (sub-block 1, zero nibble) → 0.5·(−32)·(−127) = 2032.
		{"IQ4_XS", IQ4_XS, litBlock(136, 0, 0x00, 1, 0x38, 2, 0x42, 3, 0xc0, 4, 0x01, 5, 0xf0, 7, 0xf0,
			8, 0x0f, 61, 0x09, 135, 0x80),
			map[int]float32{0: 56.5, 16: -63.5, 101: -6.5, 255: 15.5, 32: 2032}},
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

// litBlock is an n-byte block, zero except for the (index, value) pairs
// given; a later pair for the same index ORs into it.
func litBlock(n int, pairs ...int) []byte {
	b := make([]byte, n)
	for i := 0; i < len(pairs); i += 2 {
		b[pairs[i]] |= byte(pairs[i+1])
	}
	return b
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

// packQ2_K: sc and m are 16 four-bit codes, q 256 values 0..3.
func packQ2_K(d, dmin uint16, sc, m []uint8, q []uint8) []byte {
	b := make([]byte, 84)
	for s := range 16 {
		b[s] = sc[s]&15 | m[s]<<4
	}
	for i := range 256 {
		h, e := i/128, i%128
		b[16+32*h+e%32] |= (q[i] & 3) << (2 * (e / 32))
	}
	putF16(b[80:], d)
	putF16(b[82:], dmin)
	return b
}

// packQ3_K: sc are 16 scales −32..31, q 256 values 0..7 (value q−4).
func packQ3_K(d uint16, sc []int8, q []uint8) []byte {
	b := make([]byte, 110)
	for i := range 256 {
		b[i%32] |= (q[i] >> 2 & 1) << (i / 32)
		h, e := i/128, i%128
		b[32+32*h+e%32] |= (q[i] & 3) << (2 * (e / 32))
	}
	for j := range 16 {
		u := uint8(int(sc[j]) + 32)
		if j < 8 {
			b[96+j] |= u & 15
		} else {
			b[96+j-8] |= (u & 15) << 4
		}
		b[104+j%4] |= (u >> 4) << (2 * (j / 4))
	}
	putF16(b[108:], d)
	return b
}

func packIQ4_NL(d uint16, q []uint8) []byte {
	b := make([]byte, 18)
	putF16(b, d)
	packNibbles(b[2:], q)
	return b
}

// packIQ4_XS: sc are 8 scales −32..31, q 256 indices 0..15.
func packIQ4_XS(d uint16, sc []int8, q []uint8) []byte {
	b := make([]byte, 136)
	putF16(b, d)
	var h uint16
	for ib := range 8 {
		u := uint8(int(sc[ib]) + 32)
		b[4+ib/2] |= (u & 15) << (4 * (ib % 2))
		h |= uint16(u>>4) << (2 * ib)
		packNibbles(b[8+16*ib:], q[32*ib:])
	}
	binary.LittleEndian.PutUint16(b[2:], h)
	return b
}

// iq4Levels is the IQ4 level table as design.md §8 lists it, typed in
// independently of the package's copy.
var iq4Levels = [16]float32{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

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
	{ // Q2_K: y = d·sc[s]·q − dmin·m[s], s = i/16, 4-bit sc and m
		q := pattern(256, 4, 3, 1)
		sc2 := []uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
		m2 := []uint8{15, 3, 0, 9, 1, 14, 2, 13, 4, 12, 5, 11, 6, 10, 7, 8}
		want := make([]float32, 256)
		for i := range q {
			want[i] = 0.5*float32(sc2[i/16])*float32(q[i]) - 0.25*float32(m2[i/16])
		}
		cases = append(cases, tc{"Q2_K", Q2_K, packQ2_K(f16bits(t, 0.5), f16bits(t, 0.25), sc2, m2, q), want})
	}
	{ // Q3_K: y = d·sc[i/16]·(q−4), q = 0..7, sc −32..31
		q := pattern(256, 8, 5, 2)
		sc3 := []int8{-32, 31, 1, -1, 0, 17, -17, 16, -16, 15, -15, 2, 30, -31, 8, -8}
		want := make([]float32, 256)
		for i := range q {
			want[i] = 0.25 * float32(sc3[i/16]) * float32(int(q[i])-4)
		}
		cases = append(cases, tc{"Q3_K", Q3_K, packQ3_K(f16bits(t, 0.25), sc3, q), want})
	}
	{ // IQ4_NL: y = d·levels[q]
		q := pattern(32, 16, 7, 3)
		want := make([]float32, 32)
		for j := range q {
			want[j] = 0.5 * iq4Levels[q[j]]
		}
		cases = append(cases, tc{"IQ4_NL", IQ4_NL, packIQ4_NL(f16bits(t, 0.5), q), want})
	}
	{ // IQ4_XS: y = d·sc[i/32]·levels[q], sc −32..31
		q := pattern(256, 16, 11, 5)
		scx := []int8{-32, 31, 1, -1, 17, -17, 16, -15}
		want := make([]float32, 256)
		for i := range q {
			want[i] = 0.25 * float32(scx[i/32]) * iq4Levels[q[i]]
		}
		cases = append(cases, tc{"IQ4_XS", IQ4_XS, packIQ4_XS(f16bits(t, 0.25), scx, q), want})
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
		{"unsupported", IQ2_XXS, 66, 256, "unsupported tensor type IQ2_XXS (id 16)"},
		{"short K-quant", Q3_K, 109, 256, "take 110 bytes, got 109"},
		{"IQ4_XS partial block", IQ4_XS, 136, 255, "not a whole number of 256-element blocks"},
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
	_, err := Quantize(IQ2_XXS, make([]float32, 256))
	require.ErrorIs(t, err, ErrUnsupportedType)
	_, err = Quantize(Q8_1, make([]float32, 32))
	require.ErrorIs(t, err, ErrUnsupportedType)
	_, err = Quantize(Q4_K, make([]float32, 255))
	require.ErrorContains(t, err, "not a whole number of 256-element blocks")
	_, err = Quantize(Q8_0, make([]float32, 33))
	require.ErrorContains(t, err, "not a whole number of 32-element blocks")
	_, err = Quantize(DType(4), make([]float32, 32))
	require.ErrorIs(t, err, ErrUnsupportedType)
	// NaN input must not panic and must produce a full block.
	x := make([]float32, 32)
	x[5] = float32(math.NaN())
	for _, dt := range []DType{Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, F16, BF16} {
		q, err := Quantize(dt, x)
		require.NoError(t, err, dt.String())
		n, _ := dt.RowBytes(32)
		require.Len(t, q, int(n))
	}
}

func BenchmarkDequantize(b *testing.B) {
	for _, dt := range []DType{F16, Q8_0, Q4_0, Q2_K, Q3_K, Q4_K, Q6_K, IQ4_NL, IQ4_XS} {
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

// gaussValues returns n standard-normal values (Box–Muller over the
// package's PCG), deterministic for a seed.
func gaussValues(n int, seed uint64) []float32 {
	r := newPCG(seed, 11)
	x := make([]float32, n)
	for i := 0; i < n; i += 2 {
		u1 := (float64(r.next()>>8) + 0.5) / (1 << 24) // in (0, 1): log is finite
		u2 := float64(r.next()>>8) / (1 << 24)
		rad := math.Sqrt(-2 * math.Log(u1))
		x[i] = float32(rad * math.Cos(2*math.Pi*u2))
		if i+1 < n {
			x[i+1] = float32(rad * math.Sin(2*math.Pi*u2))
		}
	}
	return x
}

// outlierValues is gaussValues with about one element in 100 multiplied
// by 20, the heavy tail real weight matrices have.
func outlierValues(n int, seed uint64) []float32 {
	x := gaussValues(n, seed)
	r := newPCG(seed, 13)
	for i := range x {
		if r.next()%100 == 0 {
			x[i] *= 20
		}
	}
	return x
}

// nmse is Σ(a−b)²/Σa².
func nmse(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(a[i]) * float64(a[i])
	}
	return num / den
}

// roundTrip quantizes x to t and dequantizes the result.
func roundTrip(t testing.TB, dt DType, x []float32) []float32 {
	t.Helper()
	q, err := Quantize(dt, x)
	require.NoError(t, err, dt.String())
	n, _ := dt.RowBytes(uint64(len(x)))
	require.Len(t, q, int(n), dt.String())
	y := make([]float32, len(x))
	require.NoError(t, Dequantize(dt, q, y), dt.String())
	return y
}

// nmseCases bounds the error of every quantizable type on 65536 Gaussian
// values and on the same with outliers. The comment on each line is what
// was measured when the bound was set; the bounds are about 1.5 times
// that, so a regression in a quantizer's search shows while a harmless
// change of a last bit does not.
var nmseCases = []struct {
	t            DType
	gauss, outl  float64 // NMSE bounds
	bitsPerValue float64
}{
	{F32, 0, 0, 32},                  // measured 0, 0
	{F16, 6.5e-8, 7e-8, 16},          // measured 4.34e-8, 4.52e-8
	{BF16, 4.1e-6, 3.8e-6, 16},       // measured 2.73e-6, 2.50e-6
	{Q8_0, 4.3e-5, 1.9e-4, 8.5},      // measured 2.86e-5, 1.27e-4
	{Q4_0, 0.0111, 0.0314, 4.5},      // measured 0.00738, 0.0209
	{Q4_1, 0.0091, 0.0180, 5},        // measured 0.00608, 0.0120
	{Q5_0, 0.00275, 0.0115, 5.5},     // measured 0.00183, 0.00763
	{Q5_1, 0.00215, 0.00414, 6},      // measured 0.00143, 0.00276
	{Q2_K, 0.109, 0.0762, 2.625},     // measured 0.0723, 0.0508
	{Q3_K, 0.0310, 0.0333, 3.4375},   // measured 0.0207, 0.0222
	{Q4_K, 0.00756, 0.0152, 4.5},     // measured 0.00504, 0.0101
	{Q5_K, 0.00194, 0.00384, 5.5},    // measured 0.00129, 0.00256
	{Q6_K, 0.00045, 0.00158, 6.5625}, // measured 0.000300, 0.00105
	{IQ4_NL, 0.00816, 0.0209, 4.5},   // measured 0.00544, 0.0139
	{IQ4_XS, 0.00831, 0.0216, 4.25},  // measured 0.00554, 0.0144
}

func TestQuantizeNMSE(t *testing.T) {
	const n = 256 * 256
	gauss, outl := gaussValues(n, 1), outlierValues(n, 2)
	covered := map[DType]bool{}
	measured := map[DType]float64{}
	for _, c := range nmseCases {
		covered[c.t] = true
		t.Run(c.t.String(), func(t *testing.T) {
			require.True(t, c.t.Quantizable())
			bb, bs := c.t.BlockBytes(), c.t.BlockSize()
			assert.InDelta(t, c.bitsPerValue, float64(8*bb)/float64(bs), 1e-9, "storage cost")
			for _, d := range []struct {
				name  string
				x     []float32
				bound float64
			}{{"gaussian", gauss, c.gauss}, {"outliers", outl, c.outl}} {
				y := roundTrip(t, c.t, d.x)
				e := nmse(d.x, y)
				assert.LessOrEqual(t, e, d.bound, "%s: NMSE %.4g", d.name, e)
				if d.name == "gaussian" {
					measured[c.t] = e
				}
				if c.t == F32 {
					assert.Equal(t, d.x, y)
				}
			}
		})
	}
	for id := range dtypes {
		assert.Equal(t, id.Quantizable(), covered[id], "%s: quantizable types and the NMSE table must agree", id)
	}
	// More bits give less error, and the K-quants and IQ4 beat the older
	// formats of the same width (what "comparable to ggml" means in
	// practice: llama.cpp's K-quants are chosen over Q4_0 for the same
	// reason).
	m := measured
	worse := func(a, b DType) { assert.Greater(t, m[a], m[b], "NMSE(%s) > NMSE(%s)", a, b) }
	worse(Q2_K, Q3_K)
	for _, four := range []DType{Q4_0, Q4_1, Q4_K, IQ4_NL, IQ4_XS} {
		worse(Q3_K, four)
		for _, five := range []DType{Q5_0, Q5_1, Q5_K} {
			worse(four, five)
			worse(five, Q6_K)
		}
	}
	worse(Q6_K, Q8_0)
	worse(Q8_0, BF16)
	worse(BF16, F16)
	worse(F16, F32)
	for _, p := range [][2]DType{{Q4_0, Q4_K}, {Q4_1, Q4_K}, {Q5_0, Q5_K}, {Q5_1, Q5_K}, {Q4_0, IQ4_NL}, {Q4_0, IQ4_XS}} {
		worse(p[0], p[1])
	}
}

func TestQuantizeScaleInvariant(t *testing.T) {
	// Real weights are small (σ ≈ 0.02), which puts the f16 super-block
	// scales of the K-quants and IQ4_XS among the binary16 subnormals; the
	// codes are chosen against the stored scale, so the relative error
	// stays that of unit-scale data (measured: within 1.5%, Q5_K at
	// σ = 0.002).
	const n = 256 * 64
	g := gaussValues(n, 7)
	for _, c := range nmseCases {
		ref := nmse(g, roundTrip(t, c.t, g))
		for _, sigma := range []float32{0.02, 0.002, 300} {
			x := make([]float32, n)
			for i, v := range g {
				x[i] = v * sigma
			}
			e := nmse(x, roundTrip(t, c.t, x))
			assert.LessOrEqual(t, e, 1.1*ref+1e-12, "%s at σ = %g: NMSE %.4g, %.4g at σ = 1", c.t, sigma, e, ref)
		}
	}
}

func TestQuantizeRequantize(t *testing.T) {
	// Requantizing dequantized values: the formats whose quantizer is
	// ggml's closed-form reference land on the same bytes (their grid
	// reproduces itself); the searched formats land within a tenth of the
	// first round's error (measured: at most 0.048 of it, Q2_K with
	// outliers).
	const n = 256 * 256
	for _, x := range [][]float32{gaussValues(n, 3), outlierValues(n, 4)} {
		for _, c := range nmseCases {
			q1, err := Quantize(c.t, x)
			require.NoError(t, err)
			y := make([]float32, n)
			require.NoError(t, Dequantize(c.t, q1, y))
			q2, err := Quantize(c.t, y)
			require.NoError(t, err)
			switch c.t {
			case F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1:
				require.Equal(t, q1, q2, "%s is not a fixed point", c.t)
			default:
				y2 := make([]float32, n)
				require.NoError(t, Dequantize(c.t, q2, y2))
				require.LessOrEqual(t, nmse(y, y2), 0.1*nmse(x, y), c.t.String())
			}
		}
	}
}

// exactGrid returns 1024 values that type t represents exactly, with every
// sub-block holding the extreme codes its quantizer maps the largest
// element to, so that a correct search reproduces them bit for bit.
func exactGrid(t DType) []float32 {
	const n = 1024
	x := make([]float32, n)
	for i := range x {
		k := (i*7 + i/13) // varied, and every residue occurs in each sub-block
		switch t {
		case F32, F16, BF16, Q8_0:
			x[i] = float32(k%255-127) * 0x1p-4 // q in −127..127, d = 1/16
			if i%32 == 0 {
				x[i] = 127 * 0x1p-4
			}
		case Q4_0:
			x[i] = float32(k%16-8) * 0.5 // q−8 in −8..7
			if i%32 == 0 {
				x[i] = -4
			}
		case Q5_0:
			x[i] = float32(k%32-16) * 0.25
			if i%32 == 0 {
				x[i] = -4
			}
		case Q4_1:
			x[i] = float32(k%16)*0.5 - 3 // needs q 0 and 15 in each block
			if i%32 == 0 {
				x[i] = -3
			} else if i%32 == 1 {
				x[i] = 15*0.5 - 3
			}
		case Q5_1:
			x[i] = float32(k%32)*0.25 + 1
			if i%32 == 0 {
				x[i] = 1
			} else if i%32 == 1 {
				x[i] = 31*0.25 + 1
			}
		case Q2_K, Q4_K, Q5_K:
			// d·63·q − dmin·63 with d, dmin powers of two (Q2_K: codes
			// of 15), so the super-block scales are exact in f16.
			qmax, code, d, dmin := 15, float32(63), float32(0x1p-8), float32(0x1p-6)
			sub := 32
			switch t {
			case Q2_K:
				qmax, code, d, dmin, sub = 3, 15, 0x1p-4, 0x1p-3, 16
			case Q5_K:
				qmax, d, dmin = 31, 0x1p-9, 0x1p-5
			}
			q := k % (qmax + 1)
			switch i % sub {
			case 0:
				q = 0
			case 1:
				q = qmax
			}
			x[i] = float32(float32(d*code)*float32(q)) - dmin*code
		case Q3_K, Q6_K:
			// 0.25·(q) with the most negative q in each sub-block of 16.
			lo := -4
			if t == Q6_K {
				lo = -32
			}
			q := k%(-2*lo) + lo
			if i%16 == 0 {
				q = lo
			}
			x[i] = 0.25 * float32(q)
		case IQ4_NL, IQ4_XS:
			q := k % 16
			if i%32 == 0 {
				q = 0 // level −127, the largest magnitude
			}
			x[i] = 0.5 * iq4Levels[q]
		}
	}
	return x
}

func TestQuantizeExactGrid(t *testing.T) {
	for _, c := range nmseCases {
		t.Run(c.t.String(), func(t *testing.T) {
			x := exactGrid(c.t)
			require.Equal(t, x, roundTrip(t, c.t, x))
		})
	}
}

func TestQuantizeZeroAndConstant(t *testing.T) {
	for _, c := range nmseCases {
		t.Run(c.t.String(), func(t *testing.T) {
			zero := make([]float32, 512)
			y := roundTrip(t, c.t, zero)
			for i, v := range y {
				require.Zero(t, v, "element %d", i) // +0 or −0 (ggml's Q4_0 gives −0)
			}
			// Constant blocks come back almost exactly (measured at most
			// 4.9e-6), except a constant 0.001 in IQ4_XS (2.5e-4): its
			// super-block scale is then about 2.5e-7, a binary16
			// subnormal only four steps from zero.
			for _, k := range []float32{-1.5, 2, 1e-3, 300} {
				x := make([]float32, 512)
				for i := range x {
					x[i] = k
				}
				bound := 1e-5
				if c.t == IQ4_XS && k == 1e-3 {
					bound = 4e-4
				}
				assert.Less(t, nmse(x, roundTrip(t, c.t, x)), bound, "constant %g", k)
			}
		})
	}
}

func TestQuantizeBlocksIndependent(t *testing.T) {
	// Non-finite, huge and tiny values in one block: no panic, a full-size
	// result, and every other block the same bytes as without them.
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), math.MaxFloat32, -math.MaxFloat32, 1e30, 1e-30, math.SmallestNonzeroFloat32}
	for _, c := range nmseCases {
		t.Run(c.t.String(), func(t *testing.T) {
			bs := int(c.t.BlockSize())
			if bs == 1 {
				bs = 32
			}
			clean := gaussValues(3*bs, 5)
			want, err := Quantize(c.t, clean)
			require.NoError(t, err)
			per := len(want) / 3
			for _, sp := range specials {
				for _, pos := range []int{bs, bs + bs/2 + 1, 2*bs - 1} {
					x := append([]float32{}, clean...)
					x[pos] = sp
					got, err := Quantize(c.t, x)
					require.NoError(t, err)
					require.Len(t, got, len(want))
					if c.t.BlockSize() == 1 {
						continue
					}
					require.Equal(t, want[:per], got[:per], "%g at %d", sp, pos)
					require.Equal(t, want[2*per:], got[2*per:], "%g at %d", sp, pos)
					require.NoError(t, Dequantize(c.t, got, make([]float32, len(x))))
				}
				// A whole block of the special value.
				x := append([]float32{}, clean...)
				for i := bs; i < 2*bs; i++ {
					x[i] = sp
				}
				got, err := Quantize(c.t, x)
				require.NoError(t, err)
				require.Len(t, got, len(want))
			}
		})
	}
}

func TestQuantizeParallelMatchesSerial(t *testing.T) {
	x := outlierValues(256*1024+256*3, 6) // several workers, a ragged last chunk
	for _, c := range nmseCases {
		got, err := Quantize(c.t, x)
		require.NoError(t, err)
		want := make([]byte, len(got))
		quantizeInto(c.t, x, want)
		require.True(t, bytes.Equal(want, got), c.t.String())
	}
}

func TestDTypeSupportedAndQuantizable(t *testing.T) {
	want := []DType{F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS}
	for id := range dtypes {
		in := slices.Contains(want, id)
		assert.Equal(t, in, id.Supported(), "%s supported", id)
		assert.Equal(t, in, id.Quantizable(), "%s quantizable", id)
		n := id.BlockSize()
		if id.Quantizable() {
			_, err := Quantize(id, make([]float32, n))
			assert.NoError(t, err, id.String())
		} else {
			_, err := Quantize(id, make([]float32, n))
			assert.ErrorIs(t, err, ErrUnsupportedType, id.String())
		}
		size, _ := id.RowBytes(n)
		err := Dequantize(id, make([]byte, size), make([]float32, n))
		if id.Supported() {
			assert.NoError(t, err, id.String())
		} else {
			assert.ErrorIs(t, err, ErrUnsupportedType, id.String())
		}
	}
	assert.False(t, DType(99).Quantizable())
	assert.Equal(t, iq4Levels, func() (l [16]float32) {
		for i, v := range kvaluesIQ4 {
			l[i] = float32(v)
		}
		return l
	}())
}

// supportedTypes lists the supported types in id order, for the fuzzers.
func supportedTypes() []DType {
	var ts []DType
	for id := range dtypes {
		if id.Supported() {
			ts = append(ts, id)
		}
	}
	slices.Sort(ts)
	return ts
}

// FuzzDequantize feeds arbitrary bytes as every supported type: whole
// blocks dequantize without error (whatever the values, NaN included), and
// a source of the wrong length is an error, never a panic.
func FuzzDequantize(f *testing.F) {
	f.Add(uint8(0), []byte{})
	f.Add(uint8(3), make([]byte, 84))
	f.Add(uint8(9), bytes.Repeat([]byte{0xff}, 300))
	f.Add(uint8(14), bytes.Repeat([]byte{0x7c, 0x00, 0x01}, 100))
	ts := supportedTypes()
	f.Fuzz(func(t *testing.T, sel uint8, data []byte) {
		dt := ts[int(sel)%len(ts)]
		bs, bb := int(dt.BlockSize()), int(dt.BlockBytes())
		blocks := len(data) / bb
		dst := make([]float32, blocks*bs)
		if err := Dequantize(dt, data[:blocks*bb], dst); err != nil {
			t.Fatalf("%s, %d whole blocks: %v", dt, blocks, err)
		}
		if len(data)%bb != 0 {
			if err := Dequantize(dt, data, dst); err == nil {
				t.Fatalf("%s: %d bytes for %d elements accepted", dt, len(data), len(dst))
			}
		}
		if len(dst) > 0 {
			if err := Dequantize(dt, data[:blocks*bb], dst[:len(dst)-1]); err == nil && bs > 1 {
				t.Fatalf("%s: a partial block accepted", dt)
			}
		}
	})
}

// FuzzQuantize feeds arbitrary float32 bit patterns (NaN, ±Inf,
// subnormals) to every quantizable type: Quantize never panics and returns
// exactly the storage size, and the result dequantizes; for finite input of
// moderate range the dequantized values are finite too.
func FuzzQuantize(f *testing.F) {
	f.Add(uint8(0), []byte{})
	f.Add(uint8(8), bytes.Repeat([]byte{0x00, 0x00, 0xc0, 0x7f}, 64)) // NaN
	f.Add(uint8(10), bytes.Repeat([]byte{0x00, 0x00, 0x80, 0x7f, 1, 2, 3, 4}, 40))
	f.Add(uint8(12), bytes.Repeat([]byte{0x01, 0x00, 0x00, 0x00}, 300)) // subnormal
	ts := supportedTypes()
	f.Fuzz(func(t *testing.T, sel uint8, data []byte) {
		dt := ts[int(sel)%len(ts)]
		bs := int(dt.BlockSize())
		vals := len(data) / 4
		x := make([]float32, (vals+bs-1)/bs*bs)
		moderate := true
		for i := 0; i < vals; i++ {
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
			if !(math.Abs(float64(x[i])) < 1e4) {
				moderate = false
			}
		}
		q, err := Quantize(dt, x)
		if err != nil {
			t.Fatalf("%s: %v", dt, err)
		}
		if n, _ := dt.RowBytes(uint64(len(x))); uint64(len(q)) != n {
			t.Fatalf("%s: %d bytes, want %d", dt, len(q), n)
		}
		y := make([]float32, len(x))
		if err := Dequantize(dt, q, y); err != nil {
			t.Fatalf("%s: %v", dt, err)
		}
		if moderate {
			for i, v := range y {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("%s: element %d: %g -> %g", dt, i, x[i], v)
				}
			}
		}
	})
}
