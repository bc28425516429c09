package shaders_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/vk"
)

var weightTypes = []shaders.WeightType{shaders.WeightF32, shaders.WeightF16, shaders.WeightQ8_0, shaders.WeightQ4_0}

// dtypeOf is each weight type's GGUF type.
var dtypeOf = map[shaders.WeightType]loader.DType{
	shaders.WeightF32: loader.F32, shaders.WeightF16: loader.F16,
	shaders.WeightQ8_0: loader.Q8_0, shaders.WeightQ4_0: loader.Q4_0,
}

func isQuant(t shaders.WeightType) bool { return t == shaders.WeightQ8_0 || t == shaders.WeightQ4_0 }

// uploadGGUF packs GGUF bytes of a (rows, cols) matrix, uploads them, and
// returns the weight with its values as ggml's reference dequantises them.
func (e *env) uploadGGUF(t testing.TB, typ shaders.WeightType, gguf []byte, rows, cols int) (shaders.Weight, []float32) {
	t.Helper()
	deq := make([]float32, rows*cols)
	require.NoError(t, loader.Dequantize(dtypeOf[typ], gguf, deq))
	packed, err := shaders.Pack(typ, gguf, rows, cols)
	require.NoError(t, err)
	size, err := shaders.PackedSize(typ, rows, cols)
	require.NoError(t, err)
	require.EqualValues(t, size, len(packed))
	b, err := e.d.NewBuffer(fmt.Sprintf("W %s %dx%d", typ, rows, cols), size, vk.DeviceMemory)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	require.NoError(t, e.d.Upload(b, 0, packed))
	return shaders.Weight{Buf: b, Type: typ, Rows: rows, Cols: cols}, deq
}

// uploadWeight quantises w (rows, cols) to typ with ggml's reference
// quantiser and uploads it (see uploadGGUF).
func (e *env) uploadWeight(t testing.TB, typ shaders.WeightType, w []float32, rows, cols int) (shaders.Weight, []float32) {
	t.Helper()
	gguf, err := loader.Quantize(dtypeOf[typ], w)
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

// randGGUF makes random GGUF data for a (rows, cols) matrix directly, far
// faster than quantising random floats: random quants with scales in
// [0.001, 0.02), or random halves in [-1, 1).
func randGGUF(typ shaders.WeightType, rows, cols int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	n := rows * cols
	switch typ {
	case shaders.WeightF16:
		b := make([]byte, 2*n)
		for i := range n {
			binary.LittleEndian.PutUint16(b[2*i:], loader.Float32ToFloat16(r.Float32()*2-1))
		}
		return b
	case shaders.WeightQ8_0, shaders.WeightQ4_0:
		bb := 18
		if typ == shaders.WeightQ8_0 {
			bb = 34
		}
		b := make([]byte, n/32*bb)
		i := 0
		for ; i+8 <= len(b); i += 8 {
			binary.LittleEndian.PutUint64(b[i:], r.Uint64())
		}
		for ; i < len(b); i++ {
			b[i] = byte(r.Uint32())
		}
		for k := 0; k < n/32; k++ {
			binary.LittleEndian.PutUint16(b[k*bb:], loader.Float32ToFloat16(0.001+0.019*r.Float32()))
		}
		return b
	}
	return optest.Bytes(optest.Rand(seed, n))
}

func TestPackedSize(t *testing.T) {
	for _, c := range []struct {
		typ        shaders.WeightType
		rows, cols int
		want       uint64
	}{
		{shaders.WeightF32, 3, 7, 84},
		{shaders.WeightF16, 3, 7, 48}, // rows padded to 4 halves
		{shaders.WeightF16, 2, 8, 32},
		{shaders.WeightQ8_0, 3, 96, 3*3*32 + 20}, // 9 scales: 18 bytes, padded to 20
		{shaders.WeightQ4_0, 3, 96, 3*3*16 + 20},
		{shaders.WeightQ4_0, 1, 32, 16 + 4},
		{shaders.WeightQ4_0, 2, 32, 32 + 4},
		{shaders.WeightQ4_0, 14336, 4096, 14336 * 128 * 18},
	} {
		got, err := shaders.PackedSize(c.typ, c.rows, c.cols)
		require.NoError(t, err)
		require.Equal(t, c.want, got, "%s %dx%d", c.typ, c.rows, c.cols)
	}
	for _, c := range []struct {
		typ        shaders.WeightType
		rows, cols int
	}{{shaders.WeightQ4_0, 2, 48}, {shaders.WeightQ8_0, 1, 31}, {shaders.WeightF32, 0, 4}, {shaders.WeightF16, 4, -1}, {shaders.WeightType(9), 1, 32}} {
		_, err := shaders.PackedSize(c.typ, c.rows, c.cols)
		require.Error(t, err, "%s %dx%d", c.typ, c.rows, c.cols)
	}
	require.Equal(t, "q4_0", shaders.WeightQ4_0.String())
	require.Equal(t, "WeightType(9)", shaders.WeightType(9).String())
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
	got, err := shaders.Pack(shaders.WeightQ4_0, src, 2, 64)
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
	got, err = shaders.Pack(shaders.WeightQ8_0, src, 1, 32)
	require.NoError(t, err)
	require.Equal(t, append(append([]byte(nil), src[2:]...), 0x34, 0x12, 0, 0), got)
	// F16 with odd rows: each row ends with a zero half.
	src = []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	got, err = shaders.Pack(shaders.WeightF16, src, 2, 3)
	require.NoError(t, err)
	require.Equal(t, []byte{1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0}, got)
	// Wrong sizes are errors.
	_, err = shaders.Pack(shaders.WeightQ4_0, src, 1, 32)
	require.ErrorContains(t, err, "12 bytes, want 18")
	_, err = shaders.Pack(shaders.WeightQ4_0, make([]byte, 27), 1, 48)
	require.ErrorContains(t, err, "multiple of 32")
}

// TestPackRoundTrip packs GGUF data, embeds every row on the GPU, and
// requires the rows to equal ggml's reference dequantisation bit for bit.
func TestPackRoundTrip(t *testing.T) {
	shapes := map[bool][][2]int{
		false: {{1, 1}, {3, 7}, {5, 33}, {2, 4097}, {4, 64}},
		true:  {{1, 32}, {3, 96}, {7, 4128}},
	}
	variants(t, func(t *testing.T, e *env) {
		for _, typ := range weightTypes {
			for i, s := range shapes[isQuant(typ)] {
				rows, cols := s[0], s[1]
				t.Run(fmt.Sprintf("%s/%dx%d", typ, rows, cols), func(t *testing.T) {
					gguf, err := loader.Quantize(dtypeOf[typ], optest.Rand(uint64(40+i), rows*cols))
					require.NoError(t, err)
					w, deq := e.uploadGGUF(t, typ, gguf, rows, cols)
					ids := []uint32{uint32(rows), math.MaxUint32}
					for r := rows - 1; r >= 0; r-- {
						ids = append(ids, uint32(r))
					}
					tok := e.uploadU32(t, "tokens", ids)
					x := e.zeros(t, "x", len(ids)*cols)
					e.run(t, func(p *shaders.Plan) error { return p.Embed(w, shaders.F32(tok), shaders.F32(x), len(ids)) })
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
