package loader

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Reference (de)quantisation in plain Go. These are the CPU ground truth the
// GPU kernels are tested against, so they follow ggml's reference code's
// arithmetic order exactly. Go may fuse x*y+z into one FMA on some
// architectures; every product that feeds an addition is therefore wrapped in
// an explicit float32() conversion, which the spec says forces rounding.
//
// All block formats are little-endian. "f16" below is IEEE binary16.

// Dequantize converts len(dst) elements of type t, stored in src, to float32.
// len(dst) must be a whole number of blocks and src must hold exactly that
// many blocks.
func Dequantize(t DType, src []byte, dst []float32) error {
	info, ok := dtypes[t]
	if !ok || !info.supported {
		return fmt.Errorf("loader: dequantize: %w", t.unsupported())
	}
	n := uint64(len(dst))
	want, err := t.RowBytes(n)
	if err != nil {
		return fmt.Errorf("loader: dequantize: %w", err)
	}
	if uint64(len(src)) != want {
		return fmt.Errorf("loader: dequantize: %d elements of %s take %d bytes, got %d", n, t, want, len(src))
	}
	bs, bb := int(info.blockSize), int(info.blockBytes)
	for i := 0; i < len(dst); i += bs {
		blk := src[i/bs*bb : (i/bs+1)*bb]
		out := dst[i : i+bs]
		switch t {
		case F32:
			out[0] = math.Float32frombits(binary.LittleEndian.Uint32(blk))
		case F16:
			out[0] = Float16ToFloat32(binary.LittleEndian.Uint16(blk))
		case BF16:
			out[0] = BFloat16ToFloat32(binary.LittleEndian.Uint16(blk))
		case Q8_0:
			dequantQ8_0(blk, out)
		case Q4_0:
			dequantQ4_0(blk, out)
		case Q4_1:
			dequantQ4_1(blk, out)
		case Q5_0:
			dequantQ5_0(blk, out)
		case Q5_1:
			dequantQ5_1(blk, out)
		case Q4_K:
			dequantQ4_K(blk, out)
		case Q5_K:
			dequantQ5_K(blk, out)
		case Q6_K:
			dequantQ6_K(blk, out)
		}
	}
	return nil
}

// f16 reads the little-endian binary16 at b[0:2] as a float32.
func f16(b []byte) float32 { return Float16ToFloat32(binary.LittleEndian.Uint16(b)) }

// Q8_0, 34 bytes per 32 elements:
//
//	[0:2]   d  f16 scale
//	[2:34]  qs int8[32]; element j = qs[j]·d
func dequantQ8_0(b []byte, y []float32) {
	d := f16(b)
	for j := 0; j < 32; j++ {
		y[j] = float32(int8(b[2+j])) * d
	}
}

// Q4_0, 18 bytes per 32 elements:
//
//	[0:2]   d  f16 scale
//	[2:18]  qs [16]byte; byte j holds element j in its low nibble and
//	        element j+16 in its high nibble; value = (q−8)·d
func dequantQ4_0(b []byte, y []float32) {
	d := f16(b)
	for j := 0; j < 16; j++ {
		q := b[2+j]
		y[j] = float32(int(q&0xf)-8) * d
		y[j+16] = float32(int(q>>4)-8) * d
	}
}

// Q4_1, 20 bytes per 32 elements:
//
//	[0:2]   d  f16 scale
//	[2:4]   m  f16 minimum
//	[4:20]  qs as in Q4_0; value = q·d + m (q unsigned, 0..15)
func dequantQ4_1(b []byte, y []float32) {
	d, m := f16(b), f16(b[2:])
	for j := 0; j < 16; j++ {
		q := b[4+j]
		y[j] = float32(float32(q&0xf)*d) + m
		y[j+16] = float32(float32(q>>4)*d) + m
	}
}

// Q5_0, 22 bytes per 32 elements:
//
//	[0:2]   d  f16 scale
//	[2:6]   qh uint32; bit j is the 5th (high) bit of element j
//	[6:22]  qs low 4 bits, nibble layout as in Q4_0; value = (q−16)·d
func dequantQ5_0(b []byte, y []float32) {
	d := f16(b)
	qh := binary.LittleEndian.Uint32(b[2:])
	for j := 0; j < 16; j++ {
		q := b[6+j]
		lo := int(q&0xf) | int(qh>>j&1)<<4
		hi := int(q>>4) | int(qh>>(j+16)&1)<<4
		y[j] = float32(lo-16) * d
		y[j+16] = float32(hi-16) * d
	}
}

// Q5_1, 24 bytes per 32 elements:
//
//	[0:2]   d  f16 scale
//	[2:4]   m  f16 minimum
//	[4:8]   qh uint32, as in Q5_0
//	[8:24]  qs, as in Q5_0; value = q·d + m (q unsigned, 0..31)
func dequantQ5_1(b []byte, y []float32) {
	d, m := f16(b), f16(b[2:])
	qh := binary.LittleEndian.Uint32(b[4:])
	for j := 0; j < 16; j++ {
		q := b[8+j]
		lo := uint32(q&0xf) | (qh>>j&1)<<4
		hi := uint32(q>>4) | (qh>>(j+16)&1)<<4
		y[j] = float32(float32(lo)*d) + m
		y[j+16] = float32(float32(hi)*d) + m
	}
}

// Quantize converts src to type t. len(src) must be a whole number of blocks.
// It writes F32, F16, BF16, Q8_0 and Q4_0, bit-exactly as ggml's reference
// quantisers do.
func Quantize(t DType, src []float32) ([]byte, error) {
	n, err := t.RowBytes(uint64(len(src)))
	if err != nil {
		return nil, fmt.Errorf("loader: quantize: %w", err)
	}
	if !canQuantize(t) {
		return nil, fmt.Errorf("loader: quantize: %w", t.unsupported())
	}
	dst := make([]byte, n)
	quantizeInto(t, src, dst)
	return dst, nil
}

// canQuantize reports whether Quantize can produce type t.
func canQuantize(t DType) bool {
	switch t {
	case F32, F16, BF16, Q8_0, Q4_0:
		return true
	}
	return false
}

// quantizeInto is Quantize into a caller's buffer; the caller has checked
// that canQuantize(t) and that dst has exactly the right length.
func quantizeInto(t DType, src []float32, dst []byte) {
	switch t {
	case F32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case F16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], Float32ToFloat16(v))
		}
	case BF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], Float32ToBFloat16(v))
		}
	case Q8_0:
		for i := 0; i < len(src); i += 32 {
			quantQ8_0(src[i:i+32], dst[i/32*34:(i/32+1)*34])
		}
	case Q4_0:
		for i := 0; i < len(src); i += 32 {
			quantQ4_0(src[i:i+32], dst[i/32*18:(i/32+1)*18])
		}
	default:
		panic("loader: quantizeInto: " + t.String()) // callers check canQuantize
	}
}

// quantQ8_0 follows ggml's quantize_row_q8_0_ref: d = amax/127, and each
// element is round(x·(1/d)) with halves away from zero.
func quantQ8_0(x []float32, b []byte) {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	binary.LittleEndian.PutUint16(b, Float32ToFloat16(d))
	for j, v := range x {
		b[2+j] = byte(int8(math.Round(float64(v * id))))
	}
}

// quantQ4_0 follows ggml's quantize_row_q4_0_ref: m is the element of largest
// magnitude (the first one on ties) with its sign, d = m/−8, and each element
// is min(15, trunc(x·(1/d) + 8.5)).
func quantQ4_0(x []float32, b []byte) {
	var amax, m float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); amax < a {
			amax, m = a, v
		}
	}
	d := m / -8
	var id float32
	if d != 0 {
		id = 1 / d
	}
	binary.LittleEndian.PutUint16(b, Float32ToFloat16(d))
	for j := 0; j < 16; j++ {
		lo := min(15, truncNibble(float32(x[j]*id)+8.5))
		hi := min(15, truncNibble(float32(x[j+16]*id)+8.5))
		b[2+j] = byte(lo) | byte(hi)<<4
	}
}

// truncNibble truncates v toward zero, as C's (int8_t) cast does for the
// in-range values a Q4_0 block produces (0.5 ≤ v ≤ 16.5). Non-finite or
// out-of-range inputs (NaN in the source) give 0 or 15 instead of
// implementation-defined garbage.
func truncNibble(v float32) int {
	switch {
	case !(v >= 0): // also NaN
		return 0
	case v >= 16:
		return 16
	}
	return int(v)
}
