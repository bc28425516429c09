package loader

import (
	"errors"
	"fmt"
	"math/bits"
)

// DType is a tensor element type, numbered as GGML numbers them (the id stored
// in a GGUF tensor info). Block-quantised types pack BlockSize elements into
// BlockBytes bytes; plain types have a block size of 1.
type DType uint32

// The GGML type ids. Ids 4, 5 and 31–33, 36–38 were used by formats that
// ggml has since removed; they are unknown here.
const (
	F32     DType = 0
	F16     DType = 1
	Q4_0    DType = 2
	Q4_1    DType = 3
	Q5_0    DType = 6
	Q5_1    DType = 7
	Q8_0    DType = 8
	Q8_1    DType = 9
	Q2_K    DType = 10
	Q3_K    DType = 11
	Q4_K    DType = 12
	Q5_K    DType = 13
	Q6_K    DType = 14
	Q8_K    DType = 15
	IQ2_XXS DType = 16
	IQ2_XS  DType = 17
	IQ3_XXS DType = 18
	IQ1_S   DType = 19
	IQ4_NL  DType = 20
	IQ3_S   DType = 21
	IQ2_S   DType = 22
	IQ4_XS  DType = 23
	I8      DType = 24
	I16     DType = 25
	I32     DType = 26
	I64     DType = 27
	F64     DType = 28
	IQ1_M   DType = 29
	BF16    DType = 30
	TQ1_0   DType = 34
	TQ2_0   DType = 35
	MXFP4   DType = 39
)

// ErrUnsupportedType is wrapped by every error about a tensor type the loader
// cannot read or convert: test with errors.Is.
var ErrUnsupportedType = errors.New("unsupported tensor type")

// dtypeInfo is the storage layout of one type. supported marks the types
// that Dequantize handles; the rest can be listed (inspect) but not loaded.
// quantizable marks the types that Quantize can write (a subset of the
// supported ones).
type dtypeInfo struct {
	name        string
	blockSize   uint64 // elements per block
	blockBytes  uint64 // bytes per block
	supported   bool
	quantizable bool
}

// dtypes holds the layout of every type GGML defines. Block sizes and byte
// counts are those of ggml's block structs (e.g. block_q4_K: 2+2+12+128 bytes
// for 256 elements). It is the one table other packages read, through the
// DType methods.
var dtypes = map[DType]dtypeInfo{
	F32:     {"F32", 1, 4, true, true},
	F16:     {"F16", 1, 2, true, true},
	Q4_0:    {"Q4_0", 32, 18, true, true},
	Q4_1:    {"Q4_1", 32, 20, true, true},
	Q5_0:    {"Q5_0", 32, 22, true, true},
	Q5_1:    {"Q5_1", 32, 24, true, true},
	Q8_0:    {"Q8_0", 32, 34, true, true},
	Q8_1:    {"Q8_1", 32, 36, false, false},
	Q2_K:    {"Q2_K", 256, 84, true, true},
	Q3_K:    {"Q3_K", 256, 110, true, true},
	Q4_K:    {"Q4_K", 256, 144, true, true},
	Q5_K:    {"Q5_K", 256, 176, true, true},
	Q6_K:    {"Q6_K", 256, 210, true, true},
	Q8_K:    {"Q8_K", 256, 292, false, false},
	IQ2_XXS: {"IQ2_XXS", 256, 66, false, false},
	IQ2_XS:  {"IQ2_XS", 256, 74, false, false},
	IQ3_XXS: {"IQ3_XXS", 256, 98, false, false},
	IQ1_S:   {"IQ1_S", 256, 50, false, false},
	IQ4_NL:  {"IQ4_NL", 32, 18, true, true},
	IQ3_S:   {"IQ3_S", 256, 110, false, false},
	IQ2_S:   {"IQ2_S", 256, 82, false, false},
	IQ4_XS:  {"IQ4_XS", 256, 136, true, true},
	I8:      {"I8", 1, 1, false, false},
	I16:     {"I16", 1, 2, false, false},
	I32:     {"I32", 1, 4, false, false},
	I64:     {"I64", 1, 8, false, false},
	F64:     {"F64", 1, 8, false, false},
	IQ1_M:   {"IQ1_M", 256, 56, false, false},
	BF16:    {"BF16", 1, 2, true, true},
	TQ1_0:   {"TQ1_0", 256, 54, false, false},
	TQ2_0:   {"TQ2_0", 256, 66, false, false},
	MXFP4:   {"MXFP4", 32, 17, false, false},
}

// String is the GGML name ("Q4_K"), or "DType(n)" for an unknown id.
func (t DType) String() string {
	if i, ok := dtypes[t]; ok {
		return i.name
	}
	return fmt.Sprintf("DType(%d)", uint32(t))
}

// Known reports whether t is a type id GGML defines (its layout is known).
func (t DType) Known() bool {
	_, ok := dtypes[t]
	return ok
}

// Supported reports whether the loader can convert t to float32 (Dequantize),
// and therefore whether a model may use it: F32, F16, BF16, Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL and IQ4_XS.
func (t DType) Supported() bool { return dtypes[t].supported }

// Quantizable reports whether Quantize (and so the GGUF writer's AddTensor
// and AddTensorRows) can produce t from float32 values. Today that is every
// supported type.
func (t DType) Quantizable() bool { return dtypes[t].quantizable }

// BlockSize is the number of elements in one block (1 for plain types), or 0
// for an unknown type.
func (t DType) BlockSize() uint64 { return dtypes[t].blockSize }

// BlockBytes is the number of bytes in one block, or 0 for an unknown type.
func (t DType) BlockBytes() uint64 { return dtypes[t].blockBytes }

// RowBytes is the storage size of n consecutive elements. n must be a whole
// number of blocks, and the size must fit in a uint64.
func (t DType) RowBytes(n uint64) (uint64, error) {
	i, ok := dtypes[t]
	if !ok {
		return 0, t.unsupported()
	}
	if n%i.blockSize != 0 {
		return 0, fmt.Errorf("%d elements of %s are not a whole number of %d-element blocks", n, t, i.blockSize)
	}
	hi, lo := bits.Mul64(n/i.blockSize, i.blockBytes)
	if hi != 0 {
		return 0, fmt.Errorf("%d elements of %s overflow a 64-bit size", n, t)
	}
	return lo, nil
}

// unsupported is the ErrUnsupportedType error naming t, e.g.
// "unsupported tensor type IQ2_XXS (id 16)".
func (t DType) unsupported() error {
	if t.Known() {
		return fmt.Errorf("%w %s (id %d)", ErrUnsupportedType, t, uint32(t))
	}
	return fmt.Errorf("%w id %d", ErrUnsupportedType, uint32(t))
}
