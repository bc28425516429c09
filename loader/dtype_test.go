package loader

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDTypeLayout(t *testing.T) {
	// Block sizes and byte counts of ggml's block structs, summed by hand
	// from their fields.
	cases := []struct {
		t           DType
		id          uint32
		name        string
		block, size uint64
		supported   bool
	}{
		{F32, 0, "F32", 1, 4, true},
		{F16, 1, "F16", 1, 2, true},
		{Q4_0, 2, "Q4_0", 32, 2 + 16, true},
		{Q4_1, 3, "Q4_1", 32, 2 + 2 + 16, true},
		{Q5_0, 6, "Q5_0", 32, 2 + 4 + 16, true},
		{Q5_1, 7, "Q5_1", 32, 2 + 2 + 4 + 16, true},
		{Q8_0, 8, "Q8_0", 32, 2 + 32, true},
		{Q8_1, 9, "Q8_1", 32, 2 + 2 + 32, false},
		{Q2_K, 10, "Q2_K", 256, 16 + 64 + 2 + 2, true},
		{Q3_K, 11, "Q3_K", 256, 32 + 64 + 12 + 2, true},
		{Q4_K, 12, "Q4_K", 256, 2 + 2 + 12 + 128, true},
		{Q5_K, 13, "Q5_K", 256, 2 + 2 + 12 + 32 + 128, true},
		{Q6_K, 14, "Q6_K", 256, 128 + 64 + 16 + 2, true},
		{Q8_K, 15, "Q8_K", 256, 4 + 256 + 32, false},
		{IQ2_XXS, 16, "IQ2_XXS", 256, 2 + 64, false},
		{IQ4_NL, 20, "IQ4_NL", 32, 2 + 16, true},
		{IQ4_XS, 23, "IQ4_XS", 256, 2 + 2 + 4 + 128, true},
		{BF16, 30, "BF16", 1, 2, true},
		{MXFP4, 39, "MXFP4", 32, 1 + 16, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.id, uint32(c.t))
			assert.Equal(t, c.name, c.t.String())
			assert.Equal(t, c.block, c.t.BlockSize())
			assert.Equal(t, c.size, c.t.BlockBytes())
			assert.Equal(t, c.supported, c.t.Supported())
			assert.True(t, c.t.Known())
			n, err := c.t.RowBytes(3 * c.block)
			require.NoError(t, err)
			assert.Equal(t, 3*c.size, n)
		})
	}
}

func TestDTypeUnknown(t *testing.T) {
	for _, id := range []DType{4, 5, 31, 36, 40, 1 << 31} {
		assert.False(t, id.Known(), "id %d", id)
		assert.False(t, id.Supported())
		assert.Zero(t, id.BlockSize())
		_, err := id.RowBytes(1)
		require.ErrorIs(t, err, ErrUnsupportedType)
	}
	assert.Equal(t, "DType(4)", DType(4).String())
}

func TestRowBytesErrors(t *testing.T) {
	_, err := Q4_K.RowBytes(100)
	require.ErrorContains(t, err, "100 elements of Q4_K are not a whole number of 256-element blocks")
	_, err = F32.RowBytes(1 << 63)
	require.ErrorContains(t, err, "overflow")
	n, err := Q4_0.RowBytes(0)
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestUnsupportedMessage(t *testing.T) {
	require.EqualError(t, IQ2_XXS.unsupported(), "unsupported tensor type IQ2_XXS (id 16)")
	require.EqualError(t, DType(77).unsupported(), "unsupported tensor type id 77")
}
