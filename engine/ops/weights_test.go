package ops_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/vk"
)

// weightTypes are the types with kernels: every test runs each.
var weightTypes = shaders.WeightTypes

// blockSize is t's elements per block: rows of the shapes a test gives t
// are a multiple of it (1, 32 or 256).
func blockSize(t loader.DType) int { return int(t.BlockSize()) }

// uploadGGUF packs GGUF bytes of a (rows, cols) matrix, uploads them, and
// returns the weight with its values as ggml's reference dequantises them.
func (e *env) uploadGGUF(t testing.TB, typ loader.DType, gguf []byte, rows, cols int) (ops.Weight, []float32) {
	t.Helper()
	deq := make([]float32, rows*cols)
	require.NoError(t, loader.Dequantize(typ, gguf, deq))
	packed, err := ops.Pack(typ, gguf, rows, cols)
	require.NoError(t, err)
	size, err := ops.PackedSize(typ, rows, cols)
	require.NoError(t, err)
	require.EqualValues(t, size, len(packed))
	b, err := e.d.NewBuffer(fmt.Sprintf("W %s %dx%d", typ, rows, cols), size, vk.DeviceMemory)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	require.NoError(t, e.d.Upload(b, 0, packed))
	return ops.Weight{Buf: b, Type: typ, Rows: rows, Cols: cols}, deq
}

// uploadWeight quantises w (rows, cols) to typ with ggml's reference
// quantiser and uploads it (see uploadGGUF).
func (e *env) uploadWeight(t testing.TB, typ loader.DType, w []float32, rows, cols int) (ops.Weight, []float32) {
	t.Helper()
	gguf, err := loader.Quantize(typ, w)
	require.NoError(t, err)
	return e.uploadGGUF(t, typ, gguf, rows, cols)
}

func (e *env) uploadU32(t testing.TB, name string, v []uint32) *vk.Buffer {
	t.Helper()
	b, err := e.d.NewBuffer(name, uint64(4*max(len(v), 1)), vk.DeviceMemory)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	buf := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(buf[4*i:], x)
	}
	require.NoError(t, e.d.Upload(b, 0, buf))
	return b
}

// halfFields are the byte offsets of each block type's f16 fields (its
// scales and minimums), which randGGUF sets to small positive values.
var halfFields = map[loader.DType][]int{
	loader.Q8_0: {0}, loader.Q4_0: {0}, loader.Q4_1: {0, 2}, loader.Q5_0: {0}, loader.Q5_1: {0, 2},
	loader.IQ4_NL: {0}, loader.Q2_K: {80, 82}, loader.Q3_K: {108}, loader.Q4_K: {0, 2}, loader.Q5_K: {0, 2},
	loader.Q6_K: {208}, loader.IQ4_XS: {0},
}

// randGGUF makes random GGUF data for a (rows, cols) matrix directly, far
// faster than quantising random floats, and covering every bit pattern of
// the quants and sub-block scales: random bytes with f16 fields in [0.001,
// 0.02), or random halves (f16, bf16) or floats in [-1, 1).
func randGGUF(typ loader.DType, rows, cols int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	n := rows * cols
	switch typ {
	case loader.F32:
		return optest.Bytes(optest.Rand(seed, n))
	case loader.F16, loader.BF16:
		b := make([]byte, 2*n)
		for i := range n {
			v := r.Float32()*2 - 1
			h := loader.Float32ToFloat16(v)
			if typ == loader.BF16 {
				h = loader.Float32ToBFloat16(v)
			}
			binary.LittleEndian.PutUint16(b[2*i:], h)
		}
		return b
	}
	bb, bs := int(typ.BlockBytes()), int(typ.BlockSize())
	b := make([]byte, n/bs*bb)
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	for ; i < len(b); i++ {
		b[i] = byte(r.Uint32())
	}
	for k := 0; k < n/bs; k++ {
		for _, f := range halfFields[typ] {
			binary.LittleEndian.PutUint16(b[k*bb+f:], loader.Float32ToFloat16(0.001+0.019*r.Float32()))
		}
	}
	return b
}

// uploadRand uploads randGGUF data (see uploadGGUF).
func (e *env) uploadRand(t testing.TB, typ loader.DType, rows, cols int, seed uint64) (ops.Weight, []float32) {
	t.Helper()
	return e.uploadGGUF(t, typ, randGGUF(typ, rows, cols, seed), rows, cols)
}

func TestPackedSize(t *testing.T) {
	for _, c := range []struct {
		typ        loader.DType
		rows, cols int
		want       uint64
	}{
		{loader.F32, 3, 7, 84},
		{loader.F16, 3, 7, 48}, // rows padded to 4 halves
		{loader.F16, 2, 8, 32},
		{loader.Q8_0, 3, 96, 3*3*32 + 20}, // 9 scales: 18 bytes, padded to 20
		{loader.Q4_0, 3, 96, 3*3*16 + 20},
		{loader.Q4_0, 1, 32, 16 + 4},
		{loader.Q4_0, 2, 32, 32 + 4},
		{loader.Q4_0, 14336, 4096, 14336 * 128 * 18},
		{loader.BF16, 3, 7, 48},
		{loader.Q4_K, 3, 512, 3 * 2 * 144},
		{loader.Q6_K, 3, 256, 3*192 + 56}, // 3 sides of 18 bytes, padded to 56
		{loader.Q5_0, 1, 32, 16 + 8},      // a side of 6 bytes, padded to 8
		{loader.IQ4_XS, 2, 256, 2 * 136},
		{loader.Q3_K, 4096, 4096, 4096 * 16 * 110},
	} {
		got, err := ops.PackedSize(c.typ, c.rows, c.cols)
		require.NoError(t, err)
		require.Equal(t, c.want, got, "%s %dx%d", c.typ, c.rows, c.cols)
	}
	for _, c := range []struct {
		typ        loader.DType
		rows, cols int
	}{{loader.Q4_0, 2, 48}, {loader.Q8_0, 1, 31}, {loader.F32, 0, 4}, {loader.F16, 4, -1}, {loader.DType(9), 1, 32},
		{loader.Q4_K, 1, 4096 + 32}, {loader.IQ2_XXS, 1, 256}, {loader.DType(99), 1, 32}} {
		_, err := ops.PackedSize(c.typ, c.rows, c.cols)
		require.Error(t, err, "%s %dx%d", c.typ, c.rows, c.cols)
	}
}

// TestPackLayout checks the documented device layouts byte by byte.
func TestPackLayout(t *testing.T) {
	// Q4_0, 2 rows of 2 blocks: quants of all 4 blocks, then 4 scales.
	var src []byte
	for b := range 4 {
		src = binary.LittleEndian.AppendUint16(src, uint16(0x3c00+b)) // d
		for j := range 16 {
			src = append(src, byte(16*b+j))
		}
	}
	got, err := ops.Pack(loader.Q4_0, src, 2, 64)
	require.NoError(t, err)
	require.Len(t, got, 4*16+4*2)
	for b := range 4 {
		require.Equal(t, src[b*18+2:b*18+18], got[b*16:b*16+16], "block %d quants", b)
		require.EqualValues(t, 0x3c00+b, binary.LittleEndian.Uint16(got[64+2*b:]), "block %d scale", b)
	}
	// Q8_0, 1 row of 1 block: 32 quants, then the scale padded to a word.
	src = binary.LittleEndian.AppendUint16(nil, 0x1234)
	for j := range 32 {
		src = append(src, byte(j))
	}
	got, err = ops.Pack(loader.Q8_0, src, 1, 32)
	require.NoError(t, err)
	require.Equal(t, append(append([]byte(nil), src[2:]...), 0x34, 0x12, 0, 0), got)
	// F16 with odd rows: each row ends with a zero half.
	src = []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	got, err = ops.Pack(loader.F16, src, 2, 3)
	require.NoError(t, err)
	require.Equal(t, []byte{1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0}, got)
	// K-quants: every block's body (its quants), then every block's side
	// (its other bytes in ggml order). Q2_K: scales[16] qs[64] d dmin; the
	// body is qs, the side scales, d, dmin. Two blocks of bytes 0…83, 100…183.
	src = nil
	for b := range 2 {
		for j := range 84 {
			src = append(src, byte(100*b+j))
		}
	}
	got, err = ops.Pack(loader.Q2_K, src, 1, 512)
	require.NoError(t, err)
	var want []byte
	want = append(want, src[16:80]...)
	want = append(want, src[84+16:84+80]...)
	want = append(want, src[0:16]...)
	want = append(want, src[80:84]...)
	want = append(want, src[84:84+16]...)
	want = append(want, src[84+80:168]...)
	require.Equal(t, want, got)
	// Q6_K: ql[128] qh[64] scales[16] d; body ql, qh; side scales, d; one
	// block's 18-byte side padded to a word.
	src = make([]byte, 210)
	for j := range src {
		src[j] = byte(j)
	}
	got, err = ops.Pack(loader.Q6_K, src, 1, 256)
	require.NoError(t, err)
	require.Equal(t, append(append([]byte(nil), src...), 0, 0), got)
	// Wrong sizes are errors.
	src = make([]byte, 12)
	_, err = ops.Pack(loader.Q4_0, src, 1, 32)
	require.ErrorContains(t, err, "12 bytes, want 18")
	_, err = ops.Pack(loader.Q4_0, make([]byte, 27), 1, 48)
	require.ErrorContains(t, err, "not a multiple of the 32-element block")
}

// TestPackRoundTrip packs GGUF data, embeds every row on the GPU, and
// requires the rows to equal ggml's reference dequantisation bit for bit.
func TestPackRoundTrip(t *testing.T) {
	shapes := map[int][][2]int{
		1:   {{1, 1}, {3, 7}, {5, 33}, {2, 4097}, {4, 64}},
		32:  {{1, 32}, {3, 96}, {7, 4128}},
		256: {{1, 256}, {3, 768}, {7, 4096}},
	}
	variants(t, func(t *testing.T, e *env) {
		for _, typ := range weightTypes {
			for i, s := range shapes[blockSize(typ)] {
				rows, cols := s[0], s[1]
				t.Run(fmt.Sprintf("%s/%dx%d", typ, rows, cols), func(t *testing.T) {
					gguf, err := randGGUF(typ, rows, cols, uint64(40+i)), error(nil)
					require.NoError(t, err)
					w, deq := e.uploadGGUF(t, typ, gguf, rows, cols)
					ids := []uint32{uint32(rows), math.MaxUint32}
					for r := rows - 1; r >= 0; r-- {
						ids = append(ids, uint32(r))
					}
					tok := e.uploadU32(t, "tokens", ids)
					x := e.zeros(t, "x", len(ids)*cols)
					e.run(t, func(p *ops.Plan) { p.Embed(w, ops.F32(tok), ops.F32(x), len(ids)) })
					got := e.download(t, x)
					want := optest.Embed(deq, ids, rows, cols)
					for k := range want {
						if math.Float32bits(got[k]) != math.Float32bits(want[k]) {
							t.Fatalf("element %d (token %d, col %d): got %g (%#x) want %g (%#x)", k, k/cols, k%cols,
								got[k], math.Float32bits(got[k]), want[k], math.Float32bits(want[k]))
						}
					}
				})
			}
		}
	})
}

// check is optest.Check that also logs the NMSE, so that `go test -v`
// shows the measured values behind the thresholds.
func check(t testing.TB, op string, got, want []float32, max float64) {
	t.Helper()
	t.Logf("%s: NMSE %.3g", op, optest.NMSE(got, want))
	optest.Check(t, op, got, want, max)
}
