package loader

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"
)

// Reference (de)quantisation in plain Go. The dequantisers are the CPU
// ground truth the GPU kernels are tested against, so they follow ggml's
// dequantize_row_* arithmetic order exactly (every type, bit for bit). Go may
// fuse x*y+z into one FMA on some architectures; every product that feeds an
// addition is therefore wrapped in an explicit float32() conversion, which
// the spec says forces rounding. The quantisers for the 32-element formats
// follow ggml's reference ones just as exactly; the K-quant and IQ4
// quantisers are this package's own searches (quant_kenc.go, quant_iq.go).
//
// Block layouts: Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 here; Q2_K … Q6_K in
// quant_k.go; IQ4_NL and IQ4_XS in quant_iq.go. All are little-endian.
// "f16" below is IEEE binary16.

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
	switch t {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = Float16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BFloat16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	default:
		bs, bb := int(info.blockSize), int(info.blockBytes)
		for i := 0; i < len(dst); i += bs {
			k := i / bs
			dequantBlock(t, src[k*bb:(k+1)*bb], dst[i:i+bs])
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

// Quantize converts src to type t (any type for which t.Quantizable()).
// len(src) must be a whole number of blocks.
//
// F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 are written bit-exactly as
// ggml's reference quantisers (quantize_row_*_ref) write them. The K-quants
// (Q2_K … Q6_K) and IQ4_NL / IQ4_XS come from this package's own searches
// (quant_kenc.go, quant_iq.go): the blocks are valid ggml blocks of
// comparable error, but not byte-identical to llama-quantize's.
//
// The input is assumed finite. NaN or ±Inf elements never make Quantize
// panic or write out of range, but the blocks that hold them (and, for
// F16/BF16, only those elements) are garbage.
func Quantize(t DType, src []float32) ([]byte, error) {
	n, err := t.RowBytes(uint64(len(src)))
	if err != nil {
		return nil, fmt.Errorf("loader: quantize: %w", err)
	}
	if !canQuantize(t) {
		return nil, fmt.Errorf("loader: quantize: %w", t.unsupported())
	}
	dst := make([]byte, n)
	quantizeParallel(t, src, dst)
	return dst, nil
}

// quantizeParallel is quantizeInto split over GOMAXPROCS goroutines, each
// taking a run of whole blocks. Blocks are independent, so the bytes are
// the same as a serial run's.
func quantizeParallel(t DType, src []float32, dst []byte) {
	const minChunk = 1 << 15 // elements; below this one goroutine is cheaper
	bs, bb := int(t.BlockSize()), int(t.BlockBytes())
	workers := min(runtime.GOMAXPROCS(0), len(src)/minChunk)
	if workers <= 1 {
		quantizeInto(t, src, dst)
		return
	}
	blocks := len(src) / bs
	per := (blocks + workers - 1) / workers
	var wg sync.WaitGroup
	for b0 := 0; b0 < blocks; b0 += per {
		b1 := min(blocks, b0+per)
		wg.Go(func() { quantizeInto(t, src[b0*bs:b1*bs], dst[b0*bb:b1*bb]) })
	}
	wg.Wait()
}

// canQuantize reports whether Quantize can produce type t.
func canQuantize(t DType) bool { return t.Quantizable() }

// quantizeInto is Quantize into a caller's buffer; the caller has checked
// that canQuantize(t) and that dst has exactly the right length.
func quantizeInto(t DType, src []float32, dst []byte) {
	switch t {
	case F32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
		return
	case F16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], Float32ToFloat16(v))
		}
		return
	case BF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], Float32ToBFloat16(v))
		}
		return
	}
	var enc func(x []float32, b []byte)
	switch t {
	case Q8_0:
		enc = quantQ8_0
	case Q4_0:
		enc = quantQ4_0
	case Q4_1:
		enc = quantQ4_1
	case Q5_0:
		enc = quantQ5_0
	case Q5_1:
		enc = quantQ5_1
	case Q2_K:
		enc = quantQ2_K
	case Q3_K:
		enc = quantQ3_K
	case Q4_K:
		enc = quantQ4_K
	case Q5_K:
		enc = quantQ5_K
	case Q6_K:
		enc = quantQ6_K
	case IQ4_NL:
		enc = quantIQ4_NL
	case IQ4_XS:
		enc = quantIQ4_XS
	default:
		panic("loader: quantizeInto: " + t.String()) // callers check canQuantize
	}
	info := dtypes[t]
	bs, bb := int(info.blockSize), int(info.blockBytes)
	for i := 0; i < len(src); i += bs {
		k := i / bs
		enc(src[i:i+bs], dst[k*bb:(k+1)*bb])
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

// truncQ truncates v toward zero and clamps it to [0, hi], as the C
// reference's (int8_t)/(uint8_t) cast followed by MIN(hi, ·) does for the
// non-negative values a block produces. NaN gives 0.
func truncQ(v float32, hi int) int {
	switch {
	case !(v >= 0): // also NaN
		return 0
	case v >= float32(hi):
		return hi
	}
	return int(v)
}

// minMax is the smallest and largest element of x, skipping NaNs as the C
// reference's `if (v < min)` comparisons do; an all-NaN x gives
// (+MaxFloat32, −MaxFloat32).
func minMax(x []float32) (lo, hi float32) {
	lo, hi = math.MaxFloat32, -math.MaxFloat32
	for _, v := range x {
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	return lo, hi
}

// signedAbsMax is the element of largest magnitude, with its sign (the
// first one on ties), and that magnitude.
func signedAbsMax(x []float32) (m, amax float32) {
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); amax < a {
			amax, m = a, v
		}
	}
	return m, amax
}

// quantQ4_1 follows ggml's quantize_row_q4_1_ref: d = (max−min)/15, m = min,
// and each element is min(15, trunc((x−min)·(1/d) + 0.5)).
func quantQ4_1(x []float32, b []byte) {
	lo, hi := minMax(x)
	d := (hi - lo) / 15
	var id float32
	if d != 0 {
		id = 1 / d
	}
	binary.LittleEndian.PutUint16(b, Float32ToFloat16(d))
	binary.LittleEndian.PutUint16(b[2:], Float32ToFloat16(lo))
	for j := 0; j < 16; j++ {
		q0 := truncQ(float32((x[j]-lo)*id)+0.5, 15)
		q1 := truncQ(float32((x[j+16]-lo)*id)+0.5, 15)
		b[4+j] = byte(q0) | byte(q1)<<4
	}
}

// quantQ5_0 follows ggml's quantize_row_q5_0_ref: as Q4_0 with d = m/−16 and
// q = min(31, trunc(x·(1/d) + 16.5)), the fifth bits going to qh.
func quantQ5_0(x []float32, b []byte) {
	m, _ := signedAbsMax(x)
	d := m / -16
	var id float32
	if d != 0 {
		id = 1 / d
	}
	binary.LittleEndian.PutUint16(b, Float32ToFloat16(d))
	var qh uint32
	for j := 0; j < 16; j++ {
		q0 := truncQ(float32(x[j]*id)+16.5, 31)
		q1 := truncQ(float32(x[j+16]*id)+16.5, 31)
		b[6+j] = byte(q0&15) | byte(q1&15)<<4
		qh |= uint32(q0>>4)<<j | uint32(q1>>4)<<(j+16)
	}
	binary.LittleEndian.PutUint32(b[2:], qh)
}

// quantQ5_1 follows ggml's quantize_row_q5_1_ref: d = (max−min)/31, m = min,
// q = trunc((x−min)·(1/d) + 0.5) (at most 31 for finite input).
func quantQ5_1(x []float32, b []byte) {
	lo, hi := minMax(x)
	d := (hi - lo) / 31
	var id float32
	if d != 0 {
		id = 1 / d
	}
	binary.LittleEndian.PutUint16(b, Float32ToFloat16(d))
	binary.LittleEndian.PutUint16(b[2:], Float32ToFloat16(lo))
	var qh uint32
	for j := 0; j < 16; j++ {
		q0 := truncQ(float32((x[j]-lo)*id)+0.5, 31)
		q1 := truncQ(float32((x[j+16]-lo)*id)+0.5, 31)
		b[8+j] = byte(q0&15) | byte(q1&15)<<4
		qh |= uint32(q0>>4)<<j | uint32(q1>>4)<<(j+16)
	}
	binary.LittleEndian.PutUint32(b[4:], qh)
}
