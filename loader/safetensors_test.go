package loader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// stRaw builds a file from a literal header and data section.
func stRaw(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func TestWriteSafetensorsRoundTrip(t *testing.T) {
	ts := []SafetensorsTensor{
		{Name: "a", DType: "F32", Shape: []uint64{2, 3}, Data: bytes.Repeat([]byte{1}, 24)},
		{Name: "scalar", DType: "F32", Shape: []uint64{}, Data: []byte{1, 2, 3, 4}},
		{Name: "empty", DType: "BF16", Shape: []uint64{0, 5}, Data: nil},
		{Name: "h", DType: "F16", Shape: []uint64{3}, Data: []byte{1, 2, 3, 4, 5, 6}},
		{Name: `odd "name" ✓`, DType: "I64", Shape: []uint64{1}, Data: []byte{9, 8, 7, 6, 5, 4, 3, 2}},
	}
	meta := map[string]string{"format": "pt", "note": "x"}
	b := stBytes(t, ts, meta)
	n := binary.LittleEndian.Uint64(b)
	require.Zero(t, n%8, "header is padded to 8 bytes")

	f, err := parseSafetensors("rt.safetensors", b)
	require.NoError(t, err)
	require.Equal(t, meta, f.metadata)
	require.Len(t, f.tensors, len(ts))
	off := 8 + n
	for i, want := range ts {
		got := f.tensors[i]
		require.Equal(t, want.Name, got.name, "header order is kept")
		require.Equal(t, want.DType, got.dtype)
		require.Equal(t, want.Shape, got.shape)
		require.Equal(t, off, got.offset, "%s: tensors are packed in order", want.Name)
		require.True(t, bytes.Equal(want.Data, got.data), want.Name)
		require.Equal(t, len(got.data), cap(got.data), "%s: a view cannot be appended into its neighbour", want.Name)
		require.Equal(t, i, f.byName[want.Name])
		off += uint64(len(want.Data))
	}
	require.Equal(t, uint64(len(b)), off)
}

func TestWriteSafetensorsRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		ts   []SafetensorsTensor
		want string
	}{
		{"empty name", []SafetensorsTensor{{Name: "", DType: "F32", Shape: []uint64{1}, Data: make([]byte, 4)}}, "invalid tensor name"},
		{"reserved name", []SafetensorsTensor{{Name: "__metadata__", DType: "F32", Shape: []uint64{1}, Data: make([]byte, 4)}}, "invalid tensor name"},
		{"bad utf-8", []SafetensorsTensor{{Name: "a\xff", DType: "F32", Shape: []uint64{1}, Data: make([]byte, 4)}}, "invalid tensor name"},
		{"duplicate", []SafetensorsTensor{
			{Name: "a", DType: "F32", Shape: []uint64{1}, Data: make([]byte, 4)},
			{Name: "a", DType: "F32", Shape: []uint64{1}, Data: make([]byte, 4)}}, "given twice"},
		{"dtype", []SafetensorsTensor{{Name: "a", DType: "Q4_0", Shape: []uint64{1}, Data: make([]byte, 4)}}, "unknown dtype"},
		{"size", []SafetensorsTensor{{Name: "a", DType: "F16", Shape: []uint64{3}, Data: make([]byte, 4)}}, "needs 6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteSafetensors(&bytes.Buffer{}, tc.ts, nil)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// stHostile are malformed files and what the parser must say.
// Each is also a fuzz seed (testdata/safetensors/hostile, written by -update).
var stHostile = []struct {
	name  string
	file  []byte
	field string // FormatError.Field
	want  string // in the message
}{
	{"empty-file", []byte{}, "header length", "too short"},
	{"seven-bytes", []byte{1, 0, 0, 0, 0, 0, 0}, "header length", "too short"},
	{"huge-header-length", binary.LittleEndian.AppendUint64(nil, 1<<62), "header length", "exceeds the 100000000-byte limit"},
	{"header-over-cap", binary.LittleEndian.AppendUint64(nil, maxSafetensorsHeader+1), "header length", "exceeds"},
	{"header-past-eof", append(binary.LittleEndian.AppendUint64(nil, 100), `{"a":1}`...), "header length", "runs past the end of the 15-byte file"},
	{"truncated-header", stRaw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, nil)[:40], "header length", "runs past the end"},
	{"empty-header", stRaw("", nil), "header", "empty"},
	{"blank-header", stRaw("        ", nil), "header", "empty"},
	{"bad-json", stRaw(`{"a":`, nil), "header", "not valid JSON"},
	{"bad-json-key", stRaw(`{a:1}`, nil), "header", "not valid JSON"},
	{"not-object", stRaw(`[1,2]`, nil), "header", "not a JSON object"},
	{"trailing-bytes", stRaw(`{}  x`, nil), "header", "stray bytes"},
	{"two-objects", stRaw(`{}{}`, nil), "header", "stray bytes"},
	{"nul-padding", stRaw("{}\x00\x00", nil), "header", "stray bytes"},
	{"empty-name", stRaw(`{"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), "header", "empty name"},
	{"duplicate-tensor", stRaw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), `tensor "a"`, "listed twice"},
	{"duplicate-metadata", stRaw(`{"__metadata__":{},"__metadata__":{}}`, nil), "__metadata__", "appears twice"},
	{"metadata-not-strings", stRaw(`{"__metadata__":{"a":1}}`, nil), "__metadata__", "not an object of strings"},
	{"entry-not-object", stRaw(`{"a":5}`, nil), `tensor "a"`, "not a {dtype, shape, data_offsets} object"},
	{"entry-null", stRaw(`{"a":null}`, nil), `tensor "a"`, "no dtype"},
	{"no-dtype", stRaw(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a"`, "no dtype"},
	{"unknown-dtype", stRaw(`{"a":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a"`, `unknown dtype "F99"`},
	{"lowercase-dtype", stRaw(`{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a"`, `unknown dtype "f32"`},
	{"dtype-not-string", stRaw(`{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a"`, "not a {dtype"},
	{"no-shape", stRaw(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a"`, "no shape"},
	{"negative-dim", stRaw(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a"`, "shape: not an array of unsigned integers"},
	{"fractional-dim", stRaw(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a"`, "shape: not an array"},
	{"dim-too-big", stRaw(`{"a":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a"`, "shape: not an array"},
	{"too-many-dims", stRaw(`{"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a"`, "more than 8 values"},
	{"million-dims", stRaw(`{"a":{"dtype":"F32","shape":[`+strings.Repeat("0,", 1<<20)+`0],"data_offsets":[0,0]}}`, nil), `tensor "a"`, "more than 8 values"},
	{"no-offsets", stRaw(`{"a":{"dtype":"F32","shape":[1]}}`, make([]byte, 4)), `tensor "a"`, "no data_offsets"},
	{"one-offset", stRaw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4]}}`, make([]byte, 4)), `tensor "a"`, "has 1 values"},
	{"three-offsets", stRaw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, make([]byte, 8)), `tensor "a"`, "more than 2 values"},
	{"offsets-reversed", stRaw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, make([]byte, 4)), `tensor "a"`, "end before they begin"},
	{"offsets-past-eof", stRaw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 4)), `tensor "a"`, "run past the 4-byte data section"},
	{"offsets-huge", stRaw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551615]}}`, make([]byte, 4)), `tensor "a"`, "run past"},
	{"shape-offset-mismatch", stRaw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 8)), `tensor "a"`, "hold 4 bytes, but shape [2] of F32 needs 8"},
	{"shape-overflow", stRaw(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, nil), `tensor "a"`, "overflows a 64-bit size"},
	{"overlap", stRaw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)), `tensor "b"`, `overlap tensor "a"'s [0, 8]`},
	{"overlap-nested", stRaw(`{"big":{"dtype":"U8","shape":[16],"data_offsets":[0,16]},"x":{"dtype":"U8","shape":[2],"data_offsets":[8,10]},"y":{"dtype":"U8","shape":[2],"data_offsets":[12,14]}}`, make([]byte, 16)), `tensor "x"`, `overlap tensor "big"`},
	{"alias", stRaw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor`, "overlap"},
}

func TestParseSafetensorsHostile(t *testing.T) {
	for _, tc := range stHostile {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseSafetensors("bad.safetensors", tc.file)
			require.Error(t, err)
			var fe *FormatError
			require.True(t, errors.As(err, &fe), "want a *FormatError, got %T: %v", err, err)
			require.Equal(t, "bad.safetensors", fe.File)
			require.Contains(t, fe.Field, tc.field)
			require.Contains(t, err.Error(), tc.want)
			require.Contains(t, err.Error(), "bad.safetensors", "the error names the file")
			require.LessOrEqual(t, fe.Offset, uint64(len(tc.file)))
			if strings.HasPrefix(fe.Field, "tensor ") {
				require.Equal(t, byte('"'), tc.file[fe.Offset], "a tensor error points at the tensor's key")
			}
		})
	}
}

// TestParseSafetensorsAccepts covers valid but unusual files.
func TestParseSafetensorsAccepts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		file  []byte
		names []string
	}{
		{"empty object", stRaw(`{}`, nil), nil},
		{"whitespace around", stRaw(" \n{ }\t\r\n  ", nil), nil},
		{"metadata only", stRaw(`{"__metadata__":{"format":"pt"}}`, nil), nil},
		{"null metadata", stRaw(`{"__metadata__":null}`, nil), nil},
		{"gap between tensors", stRaw(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}}`, make([]byte, 10)), []string{"a", "b"}},
		{"out of order", stRaw(`{"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, make([]byte, 4)), []string{"b", "a"}},
		{"empty tensors share offsets", stRaw(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"c":{"dtype":"F32","shape":[3,0],"data_offsets":[2,2]}}`, make([]byte, 4)), []string{"a", "b", "c"}},
		{"scalar", stRaw(`{"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]}}`, make([]byte, 8)), []string{"s"}},
		{"unknown fields ignored", stRaw(`{"a":{"dtype":"BF16","shape":[1],"data_offsets":[0,2],"extra":[1]}}`, make([]byte, 2)), []string{"a"}},
		{"unicode name", stRaw(`{"\u00e9t\u00e9":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)), []string{"été"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parseSafetensors("ok.safetensors", tc.file)
			require.NoError(t, err)
			var names []string
			for _, tt := range f.tensors {
				names = append(names, tt.name)
			}
			require.Equal(t, tc.names, names)
		})
	}
}

const stHostileDir = "testdata/safetensors/hostile"

// TestSafetensorsHostileTestdata keeps the committed hostile files (fuzz
// seeds) in step with the table; -update rewrites them. The million-dims
// case is left out of testdata for its size.
func TestSafetensorsHostileTestdata(t *testing.T) {
	if stUpdating() {
		require.NoError(t, os.RemoveAll(stHostileDir))
		require.NoError(t, os.MkdirAll(stHostileDir, 0o755))
	}
	want := map[string]bool{}
	for _, tc := range stHostile {
		if len(tc.file) > 1<<16 {
			continue
		}
		name := tc.name + ".safetensors"
		want[name] = true
		p := filepath.Join(stHostileDir, name)
		if stUpdating() {
			require.NoError(t, os.WriteFile(p, tc.file, 0o644))
			continue
		}
		got, err := os.ReadFile(p)
		require.NoError(t, err, "run go test ./loader -run TestSafetensorsHostileTestdata -update")
		require.True(t, bytes.Equal(tc.file, got), "%s is stale: run with -update", p)
		_, err = parseSafetensors(p, got)
		require.ErrorContains(t, err, tc.want)
	}
	ents, err := os.ReadDir(stHostileDir)
	require.NoError(t, err)
	for _, e := range ents {
		require.True(t, want[e.Name()], "%s/%s is not in the table: run with -update", stHostileDir, e.Name())
	}
}

// FuzzSafetensorsHeader feeds arbitrary files to the parser. It must never
// panic, and whatever it accepts must be consistent: views inside the file,
// sizes that match shapes, no overlaps, and a file that WriteSafetensors
// reproduces tensor for tensor.
func FuzzSafetensorsHeader(f *testing.F) {
	seeds, err := filepath.Glob("testdata/safetensors/*/*.safetensors")
	require.NoError(f, err)
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(b)
	}
	for _, tc := range stHostile {
		if len(tc.file) <= 1<<16 {
			f.Add(tc.file)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sf, err := parseSafetensors("fuzz.safetensors", b)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) || fe.File != "fuzz.safetensors" {
				t.Fatalf("error is not a FormatError naming the file: %v", err)
			}
			return
		}
		type span struct{ lo, hi uint64 }
		var spans []span
		var out []SafetensorsTensor
		for _, tt := range sf.tensors {
			n, ok := safetensorsByteSize(tt.shape, safetensorsDTypes[tt.dtype].size)
			if !ok || n != uint64(len(tt.data)) {
				t.Fatalf("tensor %q: %d bytes for shape %v of %s", tt.name, len(tt.data), tt.shape, tt.dtype)
			}
			if tt.offset+n > uint64(len(b)) || tt.offset < 8 {
				t.Fatalf("tensor %q: view [%d, %d) outside the %d-byte file", tt.name, tt.offset, tt.offset+n, len(b))
			}
			if n > 0 && &tt.data[0] != &b[tt.offset] {
				t.Fatalf("tensor %q: data is not a view of the file at its offset", tt.name)
			}
			if n > 0 {
				spans = append(spans, span{tt.offset, tt.offset + n})
			}
			out = append(out, SafetensorsTensor{Name: tt.name, DType: tt.dtype, Shape: tt.shape, Data: tt.data})
		}
		sort.Slice(spans, func(i, j int) bool { return spans[i].lo < spans[j].lo })
		for i := 1; i < len(spans); i++ {
			if spans[i].lo < spans[i-1].hi {
				t.Fatalf("accepted overlapping tensors %v and %v", spans[i-1], spans[i])
			}
		}
		var w bytes.Buffer
		if err := WriteSafetensors(&w, out, sf.metadata); err != nil {
			if strings.Contains(err.Error(), "invalid tensor name") {
				return // names with invalid UTF-8 are not written
			}
			t.Fatalf("rewriting an accepted file: %v", err)
		}
		again, err := parseSafetensors("rewrite.safetensors", w.Bytes())
		if err != nil {
			t.Fatalf("rewritten file does not parse: %v", err)
		}
		if len(again.tensors) != len(sf.tensors) {
			t.Fatalf("rewrite has %d tensors, want %d", len(again.tensors), len(sf.tensors))
		}
		for i, tt := range again.tensors {
			o := sf.tensors[i]
			if tt.name != o.name || tt.dtype != o.dtype || !slices.Equal(tt.shape, o.shape) || !bytes.Equal(tt.data, o.data) {
				t.Fatalf("rewrite changed tensor %d (%q)", i, o.name)
			}
		}
	})
}
