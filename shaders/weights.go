package shaders

import (
	"encoding/binary"
	"fmt"

	"github.com/vkrun/vkrun/vk"
)

// WeightType is the element type of a weight matrix on the device.
type WeightType int

const (
	WeightF32  WeightType = iota // IEEE binary32
	WeightF16                    // IEEE binary16
	WeightQ8_0                   // ggml Q8_0: blocks of 32 int8 with an f16 scale
	WeightQ4_0                   // ggml Q4_0: blocks of 32 4-bit values with an f16 scale
)

var weightNames = [...]string{"f32", "f16", "q8_0", "q4_0"}

func (t WeightType) String() string {
	if t < 0 || int(t) >= len(weightNames) {
		return fmt.Sprintf("WeightType(%d)", int(t))
	}
	return weightNames[t]
}

// Weight is a (Rows, Cols) row-major matrix on the device in its packed
// layout (see Pack), starting at byte 0 of Buf.
type Weight struct {
	Buf        *vk.Buffer
	Type       WeightType
	Rows, Cols int
}

// layout is where a matrix's data lies in its device layout, in 4-byte
// words. Every type has a main array, row-major with rowWords words per row;
// the Q types add an array of f16 block scales (one per 32 elements,
// row-major), starting at word scaleStart, that holds rowScales halves per row.
type layout struct {
	rowWords   uint64
	rowScales  uint64 // 0 for F32 and F16
	scaleStart uint64 // in words
	words      uint64 // the whole matrix
}

func weightLayout(t WeightType, rows, cols int) (layout, error) {
	if rows <= 0 || cols <= 0 {
		return layout{}, fmt.Errorf("shaders: %s weight of %d×%d: %w", t, rows, cols, errShape)
	}
	r, c := uint64(rows), uint64(cols)
	var l layout
	switch t {
	case WeightF32:
		l.rowWords = c
	case WeightF16:
		l.rowWords = (c + 1) / 2 // an odd row ends with one zero half
	case WeightQ8_0, WeightQ4_0:
		if c%32 != 0 {
			return layout{}, fmt.Errorf("shaders: %s weight of %d×%d: columns must be a multiple of 32: %w", t, rows, cols, errShape)
		}
		l.rowScales = c / 32
		l.rowWords = c / 32 * 8 // 32 bytes of int8 per block
		if t == WeightQ4_0 {
			l.rowWords = c / 32 * 4 // 16 bytes of nibbles per block
		}
	default:
		return layout{}, fmt.Errorf("shaders: unknown weight type %d", int(t))
	}
	l.scaleStart = r * l.rowWords
	l.words = l.scaleStart + (r*l.rowScales+1)/2
	return l, nil
}

// PackedSize is the device bytes of a (rows, cols) matrix of type t.
func PackedSize(t WeightType, rows, cols int) (uint64, error) {
	l, err := weightLayout(t, rows, cols)
	if err != nil {
		return 0, err
	}
	return 4 * l.words, nil
}

// ggufSize is the bytes of a (rows, cols) matrix in GGUF (ggml block layout).
func ggufSize(t WeightType, rows, cols int) uint64 {
	n := uint64(rows) * uint64(cols)
	switch t {
	case WeightF32:
		return 4 * n
	case WeightF16:
		return 2 * n
	case WeightQ8_0:
		return n / 32 * 34
	default:
		return n / 32 * 18
	}
}

// Pack converts GGUF data (ggml block layout, rows×cols, row-major,
// innermost = cols) to the device layout, which needs no optional Vulkan
// feature (every array is read as 32-bit words) and keeps any block of rows
// [r0, r1) a contiguous range of each array, so that a matrix larger than
// maxStorageBufferRange can be bound in row blocks:
//
//	F32:  the raw floats, rows×cols words.
//	F16:  the raw halves, each row padded with one zero half when cols is
//	      odd, so that every row starts on a word: rows×⌈cols/2⌉ words.
//	Q8_0: all quants first, row-major, 32 int8 (8 words) per 32-element
//	      block in ggml's order; then all block scales, f16, row-major
//	      (block b of row r is half r·cols/32+b), padded to a whole word.
//	Q4_0: as Q8_0 with 16 bytes (4 words) of nibbles per block, in ggml's
//	      order: byte j holds element j in its low nibble and element j+16
//	      in its high nibble; the value is (q−8)·d.
//
// Words are little-endian. Q types need cols to be a multiple of 32.
func Pack(t WeightType, src []byte, rows, cols int) ([]byte, error) {
	l, err := weightLayout(t, rows, cols)
	if err != nil {
		return nil, err
	}
	if want := ggufSize(t, rows, cols); uint64(len(src)) != want {
		return nil, fmt.Errorf("shaders: packing a %d×%d %s matrix: %d bytes, want %d", rows, cols, t, len(src), want)
	}
	dst := make([]byte, 4*l.words)
	switch t {
	case WeightF32:
		copy(dst, src)
	case WeightF16:
		rowBytes := 2 * cols
		for r := range rows {
			copy(dst[4*uint64(r)*l.rowWords:], src[r*rowBytes:(r+1)*rowBytes])
		}
	case WeightQ8_0, WeightQ4_0:
		blockBytes, quantBytes := 34, 32
		if t == WeightQ4_0 {
			blockBytes, quantBytes = 18, 16
		}
		nblocks := len(src) / blockBytes
		scales := dst[4*l.scaleStart:]
		for b := range nblocks {
			blk := src[b*blockBytes : (b+1)*blockBytes]
			binary.LittleEndian.PutUint16(scales[2*b:], binary.LittleEndian.Uint16(blk))
			copy(dst[b*quantBytes:], blk[2:])
		}
	}
	return dst, nil
}

// words is the weight's buffer as a tensor of 4-byte words, and its layout.
func (w Weight) words() (Tensor, layout, error) {
	l, err := weightLayout(w.Type, w.Rows, w.Cols)
	if err != nil {
		return Tensor{}, l, err
	}
	if w.Buf == nil {
		return Tensor{}, l, fmt.Errorf("shaders: %s weight with a nil buffer", w.Type)
	}
	if w.Buf.Size < 4*l.words {
		return Tensor{}, l, fmt.Errorf("shaders: %d×%d %s weight needs %d bytes, buffer %s has %d: %w", w.Rows, w.Cols, w.Type, 4*l.words, w.Buf.Name, w.Buf.Size, errShape)
	}
	return Tensor{Buf: w.Buf, Len: l.words}, l, nil
}

// weightRanges binds rows [r0, r0+n) of w: the main array's words, and for
// the Q types the scales' words. It returns the word offset of row r0 in the
// first range and the f16 index of row r0's first scale in the second (which
// is the first again, with a 0 index, for F32 and F16).
func (p *Plan) weightRanges(wt Tensor, l layout, r0, n uint64) (ranges []vk.Range, wOff, sOff uint32, err error) {
	wr, wo, err := p.binding(wt, r0*l.rowWords, n*l.rowWords, 4)
	if err != nil {
		return nil, 0, 0, err
	}
	if l.rowScales == 0 {
		return []vk.Range{wr}, wo, 0, nil
	}
	h0, h1 := r0*l.rowScales, (r0+n)*l.rowScales // halves
	w0 := h0 / 2
	sr, so, err := p.binding(wt, l.scaleStart+w0, (h1+1)/2-w0, 4)
	if err != nil {
		return nil, 0, 0, err
	}
	return []vk.Range{wr, sr}, wo, 2*so + uint32(h0%2), nil
}

// weightRowStep is how many rows of a matrix one binding can hold. The main
// array's rows are the longer: a row's scales take a quarter (Q8_0: a
// sixteenth) of its quants' words, plus at most one word of rounding.
func (p *Plan) weightRowStep(l layout) uint64 {
	return p.maxRows(l.rowWords, 4)
}

// weightKernel picks the variant of an op for weight type t.
func weightKernel(ks [4]Kernel, t WeightType) (Kernel, error) {
	if t < 0 || int(t) >= len(ks) {
		return Kernel{}, fmt.Errorf("shaders: unknown weight type %d", int(t))
	}
	return ks[t], nil
}
