package loader

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vkrun/vkrun/internal/testmodel"
)

// -update rewrites golden files. Registered in init (after every package
// variable), and only if another test file has not already defined it.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files under testdata/")
	}
}

func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// kitchenSink is a small GGUF file with every metadata value type, nested
// arrays, and a tensor of each type the writer can produce, plus
// pre-quantised K-quant tensors. Deterministic.
func kitchenSink(t testing.TB, version uint32, align uint64) []byte {
	t.Helper()
	w := NewGGUFWriter()
	w.Version = version
	if align != 0 {
		require.NoError(t, w.SetValue("general.alignment", uint32(align)))
	}
	for _, kv := range []struct {
		k string
		v any
	}{
		{"general.architecture", "test"},
		{"t.u8", uint8(200)}, {"t.i8", int8(-100)}, {"t.u16", uint16(60000)}, {"t.i16", int16(-30000)},
		{"t.u32", uint32(4000000000)}, {"t.i32", int32(-2000000000)}, {"t.f32", float32(-1.5)},
		{"t.bool", true}, {"t.bool0", false}, {"t.string", "héllo ▁wörld"}, {"t.empty", ""},
		{"t.u64", uint64(1) << 63}, {"t.i64", int64(-1) << 62}, {"t.f64", math.Pi},
		{"t.f32.nan", float32(math.NaN())},
		{"t.a.u8", []uint8{1, 2, 255}}, {"t.a.i8", []int8{-1, 0, 1}}, {"t.a.u16", []uint16{1, 65535}},
		{"t.a.i16", []int16{-2, 2}}, {"t.a.u32", []uint32{7}}, {"t.a.i32", []int32{-7, 0, 7}},
		{"t.a.f32", []float32{0.5, -0.25}}, {"t.a.bool", []bool{true, false, true}},
		{"t.a.string", []string{"a", "", "ccc"}}, {"t.a.u64", []uint64{1 << 40}}, {"t.a.i64", []int64{-1 << 40}},
		{"t.a.f64", []float64{1e300}}, {"t.a.empty", []string{}},
		{"t.a.nested", []Value{MustValue([]int32{1, 2}), MustValue([]string{"x"}), MustValue([]Value{MustValue([]bool{true})})}},
	} {
		require.NoError(t, w.SetValue(kv.k, kv.v), kv.k)
	}
	vals := testValues(256*3, 9)
	for _, c := range []struct {
		name  string
		t     DType
		shape []uint64
	}{
		{"f32.1d", F32, []uint64{5}},
		{"f32.4d", F32, []uint64{2, 3, 1, 2}},
		{"f16", F16, []uint64{3, 7}},
		{"bf16", BF16, []uint64{33}},
		{"q8_0", Q8_0, []uint64{64, 3}},
		{"q4_0", Q4_0, []uint64{32, 2}},
		{"empty", F32, []uint64{0, 4}},
	} {
		n, _ := shapeElements(c.shape)
		require.NoError(t, w.AddTensor(c.name, c.t, c.shape, vals[:n]))
	}
	for _, c := range []struct {
		name string
		t    DType
	}{{"q4_k", Q4_K}, {"q5_k", Q5_K}, {"q6_k", Q6_K}, {"q4_1", Q4_1}, {"q5_0", Q5_0}, {"q5_1", Q5_1}, {"iq2_xxs", IQ2_XXS}} {
		size, _ := c.t.RowBytes(256)
		raw := make([]byte, size)
		r := newPCG(uint64(c.t), 3)
		for i := range raw {
			raw[i] = byte(r.next())
		}
		// Random bytes: only the layout and size matter here (the f16
		// scales may even be NaN).
		require.NoError(t, w.AddTensorBytes(c.name, c.t, []uint64{256}, raw))
	}
	var buf bytes.Buffer
	n, err := w.WriteTo(&buf)
	require.NoError(t, err)
	require.Equal(t, int64(buf.Len()), n)
	return buf.Bytes()
}

func TestGGUFRoundTrip(t *testing.T) {
	for _, c := range []struct {
		version uint32
		align   uint64
	}{{3, 0}, {2, 0}, {3, 64}, {3, 1}, {3, 4096}} {
		t.Run("", func(t *testing.T) {
			data := kitchenSink(t, c.version, c.align)
			f, err := ParseGGUF("sink.gguf", data)
			require.NoError(t, err)
			assert.Equal(t, c.version, f.Version)
			wantAlign := c.align
			if wantAlign == 0 {
				wantAlign = 32
			}
			assert.Equal(t, wantAlign, f.Alignment)
			assert.Zero(t, f.DataOffset%wantAlign)

			// Scalars of every type, read back with their Go types.
			for key, want := range map[string]any{
				"t.u8": uint8(200), "t.i8": int8(-100), "t.u16": uint16(60000), "t.i16": int16(-30000),
				"t.u32": uint32(4000000000), "t.i32": int32(-2000000000), "t.f32": float32(-1.5), "t.bool": true,
				"t.bool0": false, "t.string": "héllo ▁wörld", "t.empty": "", "t.u64": uint64(1) << 63,
				"t.i64": int64(-1) << 62, "t.f64": math.Pi,
			} {
				v, ok := f.Get(key)
				require.True(t, ok, key)
				assert.Equal(t, want, v.Data, key)
			}
			nan, _ := f.Get("t.f32.nan")
			assert.True(t, math.IsNaN(float64(nan.Data.(float32))))
			strs, ok := f.Strings("t.a.string")
			require.True(t, ok)
			assert.Equal(t, []string{"a", "", "ccc"}, strs)
			i32s, ok := f.Int32s("t.a.i32")
			require.True(t, ok)
			assert.Equal(t, []int32{-7, 0, 7}, i32s)
			f32s, ok := f.Float32s("t.a.f32")
			require.True(t, ok)
			assert.Equal(t, []float32{0.5, -0.25}, f32s)
			for key, want := range map[string]any{
				"t.a.u8": []uint8{1, 2, 255}, "t.a.i8": []int8{-1, 0, 1}, "t.a.u16": []uint16{1, 65535},
				"t.a.i16": []int16{-2, 2}, "t.a.u32": []uint32{7}, "t.a.bool": []bool{true, false, true},
				"t.a.u64": []uint64{1 << 40}, "t.a.i64": []int64{-1 << 40}, "t.a.f64": []float64{1e300},
				"t.a.empty": []string{},
			} {
				v, _ := f.Get(key)
				assert.Equal(t, want, v.Data, key)
			}
			nested, _ := f.Get("t.a.nested")
			assert.Equal(t, "[][]int32", nested.TypeName())
			require.Len(t, nested.Data, 3)
			assert.Equal(t, []bool{true}, nested.Data.([]Value)[2].Data.([]Value)[0].Data)

			// Accessors are typed: a string key is not a Uint.
			_, ok = f.Uint("t.string")
			assert.False(t, ok)
			u, ok := f.Uint("t.u16")
			assert.True(t, ok)
			assert.Equal(t, uint64(60000), u)
			_, ok = f.Uint("t.i8")
			assert.False(t, ok, "negative is not a Uint")

			// Tensors: exactly the bytes Quantize produces.
			vals := testValues(256*3, 9)
			require.Len(t, f.Tensors, 14)
			for _, tn := range f.Tensors {
				b, err := tn.Bytes()
				require.NoError(t, err)
				require.Equal(t, int(tn.Size()), len(b), tn.Name)
				assert.Zero(t, (tn.Offset-f.DataOffset)%wantAlign, tn.Name)
				if rawTensor[tn.Name] || tn.Name == "empty" {
					continue // random bytes, not Quantize output
				}
				want, err := Quantize(tn.Type, vals[:tn.NumElements()])
				require.NoError(t, err)
				assert.Equal(t, want, b, tn.Name)
			}
			// F32 survives bit-exactly.
			f32 := tensorByName(f, "f32.4d")
			got, err := f32.Float32s()
			require.NoError(t, err)
			assert.Equal(t, vals[:12], got)
		})
	}
}

func tensorByName(f *GGUFFile, name string) *Tensor { return f.tensor(name) }

// rawTensor names the kitchen-sink tensors written as random bytes with
// AddTensorBytes rather than quantized from values.
var rawTensor = map[string]bool{"q4_k": true, "q5_k": true, "q6_k": true, "q4_1": true, "q5_0": true, "q5_1": true, "iq2_xxs": true}

// TestGGUFTestdata regenerates (with -update) or checks the committed tiny
// files: the writer must keep producing them byte for byte, and they seed
// FuzzGGUF.
func TestGGUFTestdata(t *testing.T) {
	dir := filepath.Join("testdata", "gguf")
	tiny := Config{Dim: 32, NumLayers: 1, NumHeads: 2, NumKVHeads: 1, FFNDim: 32, VocabSize: 16, ContextLength: 64, Window: 8}
	files := map[string]func(path string) error{
		"kitchen-sink.gguf": func(p string) error { return os.WriteFile(p, kitchenSink(t, 3, 0), 0o644) },
		"kitchen-sink-v2-align64.gguf": func(p string) error {
			return os.WriteFile(p, kitchenSink(t, 2, 64), 0o644)
		},
		"tiny-llama-q8_0.gguf": func(p string) error { return WriteSynthetic(p, tiny, Q8_0, 1, nil) },
		"tiny-llama-f16.gguf": func(p string) error {
			c := tiny
			c.Window = 0
			c.Arch = "mistral"
			return WriteSynthetic(p, c, F16, 2, nil)
		},
	}
	if updateGolden() {
		require.NoError(t, os.MkdirAll(dir, 0o755))
	}
	for name, gen := range files {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if updateGolden() {
				require.NoError(t, gen(path))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run go test -update to create it")
			fresh := filepath.Join(t.TempDir(), name)
			require.NoError(t, gen(fresh))
			got, err := os.ReadFile(fresh)
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, got), "writer output changed; if intended, run go test -update")
			f, err := OpenGGUF(path)
			require.NoError(t, err)
			require.NoError(t, f.Close())
		})
	}
}

func TestGGUFStories260K(t *testing.T) {
	path := testmodel.Stories260K(t)
	f, err := OpenGGUF(path)
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, uint32(3), f.Version)
	assert.Equal(t, uint64(1185376), f.Size)
	assert.Len(t, f.Tensors, 48)
	arch, _ := f.String("general.architecture")
	assert.Equal(t, "llama", arch)
	toks, ok := f.Strings("tokenizer.ggml.tokens")
	require.True(t, ok)
	assert.Len(t, toks, 512)
	var total uint64
	for _, tn := range f.Tensors {
		assert.Equal(t, F32, tn.Type, tn.Name)
		total += tn.Size()
	}
	// The data section holds exactly the tensors (F32 sizes are multiples
	// of 32 bytes here, so there is no padding between them).
	assert.Equal(t, f.Size-f.DataOffset, total)
	emb := f.tensor("token_embd.weight")
	require.NotNil(t, emb)
	assert.Equal(t, []uint64{64, 512}, emb.Shape)
	assert.Equal(t, f.DataOffset, emb.Offset)
}

func TestGGUFTruncated(t *testing.T) {
	data := kitchenSink(t, 3, 0)
	f, err := ParseGGUF("sink.gguf", data)
	require.NoError(t, err)
	var end uint64 // end of the last tensor's data; the rest is padding
	for _, tn := range f.Tensors {
		end = max(end, tn.Offset+tn.Size())
	}
	for n := 0; n < len(data); n++ {
		_, err := ParseGGUF("sink.gguf", data[:n])
		if uint64(n) >= end {
			require.NoError(t, err, "truncated at %d, within the final padding", n)
			continue
		}
		require.Error(t, err, "truncated at %d", n)
		var fe *FormatError
		require.ErrorAs(t, err, &fe, "truncated at %d", n)
		require.Equal(t, "sink.gguf", fe.File)
	}
}

// ggufBytes builds a raw GGUF image field by field, for hostile inputs.
type ggufBytes struct {
	buf bytes.Buffer
	e   ggufEncoder
}

func newGGUFBytes(version uint32, nTensors, nKV uint64) *ggufBytes {
	g := &ggufBytes{}
	g.e.w = &g.buf
	g.e.raw([]byte("GGUF"))
	g.e.u32(version)
	g.e.u64(nTensors)
	g.e.u64(nKV)
	return g
}

func (g *ggufBytes) kv(key string, v any) *ggufBytes {
	val := MustValue(v)
	g.e.str(key)
	g.e.u32(uint32(val.Type))
	g.e.value(val)
	return g
}

func (g *ggufBytes) tensor(name string, typ DType, off uint64, dims ...uint64) *ggufBytes {
	g.e.str(name)
	g.e.u32(uint32(len(dims)))
	for _, d := range dims {
		g.e.u64(d)
	}
	g.e.u32(uint32(typ))
	g.e.u64(off)
	return g
}

// data pads to 32 and appends n bytes of tensor data.
func (g *ggufBytes) data(n int) []byte {
	pad, _ := alignUp(uint64(g.buf.Len()), 32)
	g.buf.Write(make([]byte, int(pad)-g.buf.Len()+n))
	return g.buf.Bytes()
}

func (g *ggufBytes) raw(b ...byte) *ggufBytes { g.buf.Write(b); return g }
func (g *ggufBytes) u32(v uint32) *ggufBytes  { g.e.u32(v); return g }
func (g *ggufBytes) u64(v uint64) *ggufBytes  { g.e.u64(v); return g }

func TestGGUFHostile(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		want string // substring of the error
	}{
		{"empty file", nil, "offset 0: magic: needs 4 bytes, only 0 left"},
		{"bad magic", []byte("GGML\x03\x00\x00\x00"), `not a GGUF file`},
		{"version 1", newGGUFBytes(1, 0, 0).data(0), "GGUF version 1 is not supported"},
		{"version 4", newGGUFBytes(4, 0, 0).data(0), "GGUF version 4 is not supported"},
		{"big endian", newGGUFBytes(3<<24, 0, 0).data(0), "big-endian GGUF is not supported"},
		{"2^60 tensors", newGGUFBytes(3, 1<<60, 0).data(0), "tensor count: 1152921504606846976 tensors need at least"},
		{"2^64-1 metadata", newGGUFBytes(3, 0, math.MaxUint64).data(0), "metadata count: 18446744073709551615 items need"},
		{"truncated count", newGGUFBytes(3, 0, 0).buf.Bytes()[:20], "metadata count: needs 8 bytes, only 4 left"},
		{"2^40-byte key", newGGUFBytes(3, 0, 1).u64(1 << 40).data(16), `metadata key #0: string length 1099511627776 exceeds`},
		{"2^40-byte string value", func() []byte {
			g := newGGUFBytes(3, 0, 1)
			g.e.str("k")
			return g.u32(uint32(TypeString)).u64(1 << 40).data(32)
		}(), `metadata "k": string length 1099511627776 exceeds`},
		{"empty key", newGGUFBytes(3, 0, 1).kv("", uint8(1)).data(0), "metadata key #0: empty key"},
		{"duplicate key", newGGUFBytes(3, 0, 2).kv("a", uint8(1)).kv("a", uint8(2)).data(0), `metadata "a": duplicate key`},
		{"unknown value type", func() []byte {
			g := newGGUFBytes(3, 0, 1)
			g.e.str("k")
			return g.u32(13).u64(0).data(0)
		}(), `metadata "k": unknown value type 13`},
		{"bad bool", func() []byte {
			g := newGGUFBytes(3, 0, 1)
			g.e.str("k")
			return g.u32(uint32(TypeBool)).raw(7).data(0)
		}(), "bool byte 7 is neither 0 nor 1"},
		{"2^62-element array", func() []byte {
			g := newGGUFBytes(3, 0, 1)
			g.e.str("k")
			return g.u32(uint32(TypeArray)).u32(uint32(TypeUint32)).u64(1 << 62).data(64)
		}(), `metadata "k" array length: 4611686018427387904 items need at least 4 bytes each`},
		{"2^40 strings", func() []byte {
			g := newGGUFBytes(3, 0, 1)
			g.e.str("k")
			return g.u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(1 << 40).data(64)
		}(), "items need at least 8 bytes each"},
		{"2^40-byte string in an array", func() []byte {
			g := newGGUFBytes(3, 0, 1)
			g.e.str("k")
			g.u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(2)
			g.e.str("ok")
			return g.u64(1 << 40).data(32)
		}(), `metadata "k"[1]: string length 1099511627776 exceeds`},
		{"unknown array element type", func() []byte {
			g := newGGUFBytes(3, 0, 1)
			g.e.str("k")
			return g.u32(uint32(TypeArray)).u32(99).u64(0).data(0)
		}(), "unknown array element type 99"},
		{"arrays nested too deep", func() []byte {
			g := newGGUFBytes(3, 0, 1)
			g.e.str("k")
			g.u32(uint32(TypeArray))
			for range 20 {
				g.u32(uint32(TypeArray)).u64(1)
			}
			return g.data(64)
		}(), "arrays nested deeper than 16"},
		{"alignment 0", newGGUFBytes(3, 0, 1).kv("general.alignment", uint32(0)).data(0), "alignment 0 is not a power of two"},
		{"alignment 48", newGGUFBytes(3, 0, 1).kv("general.alignment", uint32(48)).data(0), "alignment 48 is not a power of two"},
		{"alignment 2^40", newGGUFBytes(3, 0, 1).kv("general.alignment", uint64(1<<40)).data(0), "is not a power of two from 1 to"},
		{"alignment is a string", newGGUFBytes(3, 0, 1).kv("general.alignment", "32").data(0), "has type string, want an unsigned integer"},
		{"empty tensor name", newGGUFBytes(3, 1, 0).tensor("", F32, 0, 1).data(4), "tensor #0: empty name"},
		{"duplicate tensor", newGGUFBytes(3, 2, 0).tensor("w", F32, 0, 1).tensor("w", F32, 32, 1).data(64), `tensor "w": duplicate tensor name`},
		{"0 dims", newGGUFBytes(3, 1, 0).tensor("w", F32, 0).u64(0).data(4), "0 dimensions, want 1 to 4"},
		{"5 dims", newGGUFBytes(3, 1, 0).tensor("w", F32, 0, 1, 1, 1, 1, 1).data(4), "5 dimensions, want 1 to 4"},
		{"type id 99", newGGUFBytes(3, 1, 0).tensor("w", 99, 0, 1).data(4), `tensor "w" (type id 99, shape [1]): unsupported tensor type id 99`},
		{"removed type id 4", newGGUFBytes(3, 1, 0).tensor("w", 4, 0, 32).data(32), "unsupported tensor type id 4"},
		{"row not whole blocks", newGGUFBytes(3, 1, 0).tensor("w", Q4_0, 0, 31, 2).data(64), `tensor "w" (Q4_0, shape [31 2]): row length 31 is not a multiple of the 32-element block`},
		{"shape product overflow", newGGUFBytes(3, 1, 0).tensor("w", F32, 0, 1<<32, 1<<32).data(64), "element count overflows"},
		{"shape over int64", newGGUFBytes(3, 1, 0).tensor("w", I8, 0, 1<<63).data(64), "element count overflows"},
		{"byte size overflow", newGGUFBytes(3, 1, 0).tensor("w", F32, 0, 1<<62).data(64), "overflow"},
		{"unaligned offset", newGGUFBytes(3, 1, 0).tensor("w", F32, 4, 1).data(64), "data offset 4 is not a multiple of the alignment 32"},
		{"data past end", newGGUFBytes(3, 1, 0).tensor("blk.3.attn_q.weight", F32, 0, 16).data(60), `tensor "blk.3.attn_q.weight" (F32, shape [16]): data [96, 160) lies beyond end of file (size 156)`},
		{"offset overflow", newGGUFBytes(3, 1, 0).tensor("w", F32, math.MaxUint64-31, 1).data(4), "overflows a 64-bit file offset"},
		{"overlap", newGGUFBytes(3, 2, 0).tensor("a", F32, 0, 16).tensor("b", F32, 32, 16).data(128), `tensor "b" (F32, shape [16]): data [`},
		{"data section past end", newGGUFBytes(3, 1, 0).tensor("w", F32, 0, 0).buf.Bytes(), "data section: aligned start"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseGGUF("bad.gguf", c.data)
			require.Error(t, err)
			require.ErrorContains(t, err, c.want)
			require.Contains(t, err.Error(), "loader: bad.gguf: offset ")
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
		})
	}
	// Unknown type ids are also ErrUnsupportedType.
	_, err := ParseGGUF("bad.gguf", newGGUFBytes(3, 1, 0).tensor("w", 99, 0, 1).data(4))
	require.ErrorIs(t, err, ErrUnsupportedType)
}

// TestGGUFTensorInfoErrors checks that every error about one tensor's info
// names the tensor, its type and its shape, both from ParseGGUF and from
// OpenGGUF on a file (where the data is a read-only mapping: a range past
// the end must be caught before it is sliced, not fault).
func TestGGUFTensorInfoErrors(t *testing.T) {
	// A valid two-tensor file to truncate: the second tensor's data is last.
	w := NewGGUFWriter()
	require.NoError(t, w.AddTensor("token_embd.weight", Q8_0, []uint64{64, 2}, testValues(128, 1)))
	require.NoError(t, w.AddTensor("blk.0.ffn_down.weight", Q4_K, []uint64{256, 3}, testValues(768, 2)))
	var buf bytes.Buffer
	_, err := w.WriteTo(&buf)
	require.NoError(t, err)
	whole := buf.Bytes()
	ok, err := ParseGGUF("ok.gguf", whole)
	require.NoError(t, err)
	last := ok.tensor("blk.0.ffn_down.weight")
	cut := whole[:last.Offset+last.Size()-1] // one byte short of the last tensor

	cases := []struct {
		name        string
		data        []byte
		tensor, typ string
		shape       string
		want        string
	}{
		{"K-quant row of 100", newGGUFBytes(3, 1, 0).tensor("blk.0.attn_q.weight", Q4_K, 0, 100, 64).data(4096),
			"blk.0.attn_q.weight", "Q4_K", "[100 64]", "row length 100 is not a multiple of the 256-element block"},
		{"Q6_K row of 255", newGGUFBytes(3, 1, 0).tensor("output.weight", Q6_K, 0, 255, 1).data(256),
			"output.weight", "Q6_K", "[255 1]", "row length 255 is not a multiple of the 256-element block"},
		{"Q2_K row of 128", newGGUFBytes(3, 1, 0).tensor("x", Q2_K, 0, 128).data(256), "x", "Q2_K", "[128]", "256-element block"},
		{"IQ4_XS row of 32", newGGUFBytes(3, 1, 0).tensor("x", IQ4_XS, 0, 32, 8).data(256), "x", "IQ4_XS", "[32 8]", "256-element block"},
		{"Q4_0 row of 48", newGGUFBytes(3, 1, 0).tensor("blk.1.ffn_up.weight", Q4_0, 0, 48, 2, 1).data(64),
			"blk.1.ffn_up.weight", "Q4_0", "[48 2 1]", "row length 48 is not a multiple of the 32-element block"},
		{"IQ4_NL row of 16", newGGUFBytes(3, 1, 0).tensor("x", IQ4_NL, 0, 16).data(64), "x", "IQ4_NL", "[16]", "32-element block"},
		{"unknown type id 99", newGGUFBytes(3, 1, 0).tensor("blk.2.attn_k.weight", 99, 0, 64, 8).data(64),
			"blk.2.attn_k.weight", "type id 99", "[64 8]", "unsupported tensor type id 99"},
		{"removed type id 5", newGGUFBytes(3, 1, 0).tensor("y", 5, 0, 32).data(64), "y", "type id 5", "[32]", "unsupported tensor type id 5"},
		{"data past end", cut, "blk.0.ffn_down.weight", "Q4_K", "[256 3]", "lies beyond end of file"},
		{"data all past end", newGGUFBytes(3, 1, 0).tensor("z", Q8_0, 1<<20, 32, 4).data(136), "z", "Q8_0", "[32 4]", "lies beyond end of file"},
		{"offset overflow", newGGUFBytes(3, 1, 0).tensor("z", Q5_K, math.MaxUint64-31, 256).data(176), "z", "Q5_K", "[256]", "overflows a 64-bit file offset"},
		{"element count overflow", newGGUFBytes(3, 1, 0).tensor("z", Q3_K, 0, 1<<40, 1<<40).data(110), "z", "Q3_K", "[1099511627776 1099511627776]", "element count overflows"},
		{"unaligned offset", newGGUFBytes(3, 1, 0).tensor("z", BF16, 2, 4).data(64), "z", "BF16", "[4]", "not a multiple of the alignment"},
		{"overlap", newGGUFBytes(3, 2, 0).tensor("a", Q5_0, 0, 64).tensor("b", Q5_1, 32, 32).data(128), "b", "Q5_1", "[32]", "overlaps tensor \"a\""},
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			check := func(err error) {
				t.Helper()
				require.Error(t, err)
				msg := err.Error()
				assert.Contains(t, msg, fmt.Sprintf("tensor %q (%s, shape %s): ", c.tensor, c.typ, c.shape))
				assert.Contains(t, msg, c.want)
				var fe *FormatError
				require.ErrorAs(t, err, &fe)
			}
			_, err := ParseGGUF("bad.gguf", c.data)
			check(err)
			path := filepath.Join(dir, fmt.Sprintf("bad%d.gguf", i))
			require.NoError(t, os.WriteFile(path, c.data, 0o644))
			f, err := OpenGGUF(path)
			if f != nil {
				_ = f.Close()
			}
			check(err)
			assert.Contains(t, err.Error(), path)
		})
	}
	// The untruncated file is fine, and its Q4_K tensor reads back.
	got, err := last.Float32s()
	require.NoError(t, err)
	assert.Less(t, nmse(testValues(768, 2), got), 0.02)
}

func TestGGUFHostileAllocations(t *testing.T) {
	// A 100-byte file claiming huge counts must fail without allocating
	// anything near the claimed size.
	inputs := [][]byte{
		newGGUFBytes(3, 1<<60, 0).data(64),
		newGGUFBytes(3, 0, 1<<60).data(64),
		func() []byte {
			g := newGGUFBytes(3, 0, 1)
			g.e.str("k")
			return g.u32(uint32(TypeArray)).u32(uint32(TypeFloat64)).u64(1 << 40).data(64)
		}(),
	}
	for i, in := range inputs {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := ParseGGUF("bad.gguf", in)
		runtime.ReadMemStats(&after)
		require.Error(t, err, "input %d", i)
		require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "input %d allocated too much", i)
	}
}

func TestGGUFValidEdgeCases(t *testing.T) {
	// Zero tensors, no data section at all.
	f, err := ParseGGUF("x.gguf", newGGUFBytes(3, 0, 1).kv("a", "b").buf.Bytes())
	require.NoError(t, err)
	assert.Empty(t, f.Tensors)
	// A known but unsupported type parses (inspect can list it).
	f, err = ParseGGUF("x.gguf", newGGUFBytes(3, 1, 0).tensor("w", IQ2_XXS, 0, 256).data(66))
	require.NoError(t, err)
	assert.Equal(t, IQ2_XXS, f.Tensors[0].Type)
	assert.Equal(t, uint64(66), f.Tensors[0].Size())
	// Zero-size tensors may share an offset.
	_, err = ParseGGUF("x.gguf", newGGUFBytes(3, 2, 0).tensor("a", F32, 0, 0).tensor("b", F32, 0, 8).data(32))
	require.NoError(t, err)
	// Tensors need not be in offset order.
	f, err = ParseGGUF("x.gguf", newGGUFBytes(3, 2, 0).tensor("a", F32, 32, 8).tensor("b", F32, 0, 8).data(64))
	require.NoError(t, err)
	assert.Less(t, f.Tensors[1].Offset, f.Tensors[0].Offset)
}

func TestGGUFWriterErrors(t *testing.T) {
	w := NewGGUFWriter()
	require.ErrorContains(t, w.AddTensor("a", Q4_0, []uint64{31}, make([]float32, 31)), "not whole Q4_0 blocks")
	require.ErrorContains(t, w.AddTensor("a", F32, []uint64{4}, make([]float32, 3)), "holds 4 elements, got 3")
	require.ErrorContains(t, w.AddTensor("a", IQ2_XXS, []uint64{256}, make([]float32, 256)), "cannot quantize")
	require.ErrorContains(t, w.AddTensor("a", Q4_K, []uint64{100}, make([]float32, 100)), "not whole Q4_K blocks")
	require.ErrorContains(t, w.AddTensor("", F32, []uint64{1}, []float32{1}), "empty tensor name")
	require.ErrorContains(t, w.AddTensor("a", F32, nil, nil), "0 dimensions")
	require.ErrorContains(t, w.AddTensorBytes("a", Q8_0, []uint64{32}, make([]byte, 33)), "takes 34 bytes, got 33")
	require.ErrorIs(t, w.AddTensorBytes("a", DType(4), []uint64{32}, nil), ErrUnsupportedType)
	require.NoError(t, w.AddTensor("a", F32, []uint64{1}, []float32{1}))
	require.ErrorContains(t, w.AddTensor("a", F32, []uint64{1}, []float32{1}), "duplicate tensor")
	require.ErrorContains(t, w.SetValue("general.alignment", uint32(3)), "not a power of two")
	require.ErrorContains(t, w.SetValue("k", struct{}{}), "no GGUF metadata type")
	require.ErrorContains(t, w.Set("k", Value{Type: TypeUint32, Data: "x"}), "does not match")
	require.ErrorContains(t, w.SetValue("k", []Value{MustValue(uint8(1))}), "element 0 is a uint8")
	require.ErrorContains(t, w.Set("", MustValue(uint8(1))), "empty metadata key")

	// A stream that writes the wrong number of bytes fails the write.
	w = NewGGUFWriter()
	require.NoError(t, w.AddTensorStream("s", F32, []uint64{4}, func(out io.Writer) error {
		_, err := out.Write(make([]byte, 12))
		return err
	}))
	_, err := w.WriteTo(&bytes.Buffer{})
	require.ErrorContains(t, err, `tensor "s": wrote 12 bytes, want 16`)

	// Write errors propagate.
	w = NewGGUFWriter()
	require.NoError(t, w.AddTensor("a", F32, []uint64{1 << 16}, make([]float32, 1<<16)))
	_, err = w.WriteTo(failAfter{n: 100})
	require.ErrorContains(t, err, "disk full")
	w.Version = 1
	_, err = w.WriteTo(&bytes.Buffer{})
	require.ErrorContains(t, err, "version 1")

	// Set replaces in place, keeping the order.
	w = NewGGUFWriter()
	require.NoError(t, w.SetValue("a", uint8(1)))
	require.NoError(t, w.SetValue("b", uint8(2)))
	require.NoError(t, w.SetValue("a", "x"))
	var buf bytes.Buffer
	_, err = w.WriteTo(&buf)
	require.NoError(t, err)
	f, err := ParseGGUF("x", buf.Bytes())
	require.NoError(t, err)
	require.Equal(t, "a", f.Metadata[0].Key)
	require.Equal(t, "x", f.Metadata[0].Value.Data)
}

type failAfter struct{ n int }

func (f failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestGGUFWriterStreaming(t *testing.T) {
	// A 64 MiB tensor generated row by row and written to disk must not be
	// held in memory: allocation stays at a few MiB (one batch of rows).
	const rows, cols = 4096, 4096
	w := NewGGUFWriter()
	require.NoError(t, w.AddTensorRows("big", F32, []uint64{cols, rows}, func(row int, dst []float32) {
		for i := range dst {
			dst[i] = float32(row) + float32(i)/cols
		}
	}))
	path := filepath.Join(t.TempDir(), "big.gguf")
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	require.NoError(t, w.WriteFile(path))
	runtime.ReadMemStats(&after)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "writer allocated %d bytes", after.TotalAlloc-before.TotalAlloc)

	f, err := OpenGGUF(path)
	require.NoError(t, err)
	defer f.Close()
	b, err := f.Tensors[0].Bytes()
	require.NoError(t, err)
	require.Len(t, b, rows*cols*4)
	// Spot-check a few rows: each was generated by its own fill call.
	for _, row := range []int{0, 1, 2047, 4095} {
		got := make([]float32, cols)
		require.NoError(t, Dequantize(F32, b[row*cols*4:(row+1)*cols*4], got))
		assert.Equal(t, float32(row), got[0])
		assert.Equal(t, float32(row)+float32(cols-1)/cols, got[cols-1])
	}
}

func TestValueSummary(t *testing.T) {
	long := make([]rune, 70)
	for i := range long {
		long[i] = 'é'
	}
	cases := []struct {
		v        any
		typeName string
		summary  string
	}{
		{uint32(7), "uint32", "7"},
		{float32(1e-5), "float32", "1e-05"},
		{true, "bool", "true"},
		{"a\"b", "string", `"a\"b"`},
		{string(long), "string", `"` + string(long[:64]) + `…"`},
		{[]int32{1, 2, 3}, "[]int32", "[3] {1, 2, 3}"},
		{[]float32{1, 2, 3, 4, 5}, "[]float32", "[5] {1, 2, 3, 4, …}"},
		{[]string{"x", "y"}, "[]string", `[2] {"x", "y"}`},
		{[]string{}, "[]string", "[0] {}"},
		{[]Value{MustValue([]uint8{1}), MustValue([]uint8{2, 3})}, "[][]uint8", "[2] {[1] {1}, [2] {2, 3}}"},
		{[]Value{}, "[]array", "[0] {}"},
	}
	for _, c := range cases {
		v := MustValue(c.v)
		assert.Equal(t, c.typeName, v.TypeName())
		assert.Equal(t, c.summary, v.Summary())
	}
	assert.Panics(t, func() { MustValue(3) }, "int has no GGUF type")
	assert.Equal(t, "ValueType(99)", ValueType(99).String())
}

func TestGGUFWriterNoTensors(t *testing.T) {
	// A file without tensors has no data section, so a large alignment
	// costs nothing (found by FuzzGGUF: the writer used to pad 1 GiB).
	w := NewGGUFWriter()
	require.NoError(t, w.SetValue("general.alignment", uint32(1<<30)))
	var buf bytes.Buffer
	_, err := w.WriteTo(&buf)
	require.NoError(t, err)
	require.Less(t, buf.Len(), 100)
	f, err := ParseGGUF("x", buf.Bytes())
	require.NoError(t, err)
	assert.Equal(t, uint64(1<<30), f.Alignment)
}
