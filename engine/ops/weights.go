package ops

import (
	"fmt"

	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/vk"
)

// Weight is a (Rows, Cols) row-major matrix on the device in its packed
// layout (see Pack), starting at byte 0 of Buf. Type is the file's tensor
// type, kept as it is: one of shaders.WeightTypes.
type Weight struct {
	Buf        *vk.Buffer
	Type       loader.DType
	Rows, Cols int
}

// layout is where a matrix's data lies in its device layout, in 4-byte
// words. Every type has a main array, row-major with rowWords words per row;
// the block types add the side array (each block's side: scales and other
// small fields, row-major, rowSide halves per row), starting at word
// sideStart.
type layout struct {
	rowWords  uint64
	rowSide   uint64 // halves; 0 for F32, F16, BF16
	sideStart uint64 // in words
	words     uint64 // the whole matrix
}

func weightLayout(t loader.DType, rows, cols int) (layout, error) {
	if rows <= 0 || cols <= 0 {
		return layout{}, fmt.Errorf("ops: %s weight of %d×%d: %w", t, rows, cols, errShape)
	}
	if !shaders.HasKernels(t) {
		return layout{}, fmt.Errorf("ops: %s weight of %d×%d: no kernels for the type: %w", t, rows, cols, loader.ErrUnsupportedType)
	}
	r, c := uint64(rows), uint64(cols)
	var l layout
	from, to, block := shaders.BlockBody(t)
	switch {
	case t == loader.F32:
		l.rowWords = c
	case !block: // F16, BF16
		l.rowWords = (c + 1) / 2 // an odd row ends with one zero half
	default:
		bs, bb := t.BlockSize(), t.BlockBytes()
		if c%bs != 0 {
			return layout{}, fmt.Errorf("ops: %s weight of %d×%d: the row length %d is not a multiple of the %d-element block: %w", t, rows, cols, c, bs, errShape)
		}
		l.rowWords = c / bs * (to - from) / 4
		l.rowSide = c / bs * (bb - (to - from)) / 2
	}
	l.sideStart = r * l.rowWords
	l.words = l.sideStart + (r*l.rowSide+1)/2
	return l, nil
}

// PackedSize is the device bytes of a (rows, cols) matrix of type t.
func PackedSize(t loader.DType, rows, cols int) (uint64, error) {
	l, err := weightLayout(t, rows, cols)
	if err != nil {
		return 0, err
	}
	return 4 * l.words, nil
}

// Pack converts GGUF data (ggml block layout, rows×cols, row-major,
// innermost = cols) to the device layout. The layout needs no optional
// Vulkan feature (every array is read as 32-bit words) and keeps any block
// of rows [r0, r1) a contiguous range of each array, so that a matrix larger
// than maxStorageBufferRange can be bound in row blocks:
//
//	F32:        the raw floats, rows×cols words.
//	F16, BF16:  the raw halves, each row padded with one zero half when cols
//	            is odd, so that every row starts on a word: rows×⌈cols/2⌉ words.
//	block types: each ggml block is split into its body, the bytes
//	            shaders.BlockBody names (its quants, a whole number of 16-byte
//	            units), and its side, its other bytes in their ggml order
//	            (before the body, then after it). All bodies come first,
//	            row-major, block after block; then all sides, row-major,
//	            padded to a whole word. Q4_0, for one: the 16 bytes of nibbles
//	            of every block, then every block's f16 scale.
//
// Words are little-endian. The device bytes equal the file's, plus at most
// two bytes (rows of F16 and BF16: a half each when cols is odd). Block
// types need cols to be a multiple of their block size.
func Pack(t loader.DType, src []byte, rows, cols int) ([]byte, error) {
	l, err := weightLayout(t, rows, cols)
	if err != nil {
		return nil, err
	}
	want, err := t.RowBytes(uint64(rows) * uint64(cols))
	if err != nil {
		return nil, fmt.Errorf("ops: packing a %d×%d %s matrix: %w", rows, cols, t, err)
	}
	if uint64(len(src)) != want {
		return nil, fmt.Errorf("ops: packing a %d×%d %s matrix: %d bytes, want %d", rows, cols, t, len(src), want)
	}
	dst := make([]byte, 4*l.words)
	from, to, block := shaders.BlockBody(t)
	switch {
	case t == loader.F32:
		copy(dst, src)
	case !block:
		rowBytes := 2 * cols
		for r := range rows {
			copy(dst[4*uint64(r)*l.rowWords:], src[r*rowBytes:(r+1)*rowBytes])
		}
	default:
		bb := int(t.BlockBytes())
		body := int(to - from)
		side := bb - body
		sides := dst[4*l.sideStart:]
		for b := range len(src) / bb {
			blk := src[b*bb : (b+1)*bb]
			copy(dst[b*body:], blk[from:to])
			s := sides[b*side:]
			n := copy(s, blk[:from])
			copy(s[n:], blk[to:])
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
		return Tensor{}, l, fmt.Errorf("ops: %s weight with a nil buffer", w.Type)
	}
	if w.Buf.Size < 4*l.words {
		return Tensor{}, l, fmt.Errorf("ops: %d×%d %s weight needs %d bytes, buffer %s has %d: %w", w.Rows, w.Cols, w.Type, 4*l.words, w.Buf.Name, w.Buf.Size, errShape)
	}
	return Tensor{Buf: w.Buf, Len: l.words}, l, nil
}

// weightRanges binds rows [r0, r0+n) of w: the main array's words, and for
// the block types the sides' words. It returns the word offset of row r0 in
// the first range and the half index of row r0's first side half in the
// second (which is the first again, with a 0 index, for F32, F16, BF16).
func (p *Plan) weightRanges(wt Tensor, l layout, r0, n uint64) (ranges []vk.Range, wOff, sOff uint32, err error) {
	wr, wo, err := p.binding(wt, r0*l.rowWords, n*l.rowWords, 4)
	if err != nil {
		return nil, 0, 0, err
	}
	if l.rowSide == 0 {
		return []vk.Range{wr}, wo, 0, nil
	}
	h0, h1 := r0*l.rowSide, (r0+n)*l.rowSide // halves
	w0 := h0 / 2
	sr, so, err := p.binding(wt, l.sideStart+w0, (h1+1)/2-w0, 4)
	if err != nil {
		return nil, 0, 0, err
	}
	return []vk.Range{wr, sr}, wo, 2*so + uint32(h0%2), nil
}

// weightRowStep is how many rows of a matrix one binding can hold. The main
// array's rows are the longer: a block's side is at most half its body
// (Q5_1: 8 bytes against 16), plus at most one word of rounding.
func (p *Plan) weightRowStep(l layout) uint64 {
	return p.maxRows(l.rowWords, 4)
}
