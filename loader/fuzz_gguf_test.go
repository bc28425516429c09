package loader

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzGGUF feeds arbitrary bytes to the GGUF parser. Seeds are the files
// under testdata/gguf (written by GGUFWriter); crashers found are kept under
// testdata/fuzz/FuzzGGUF and rerun by plain go test.
//
// Properties checked on every input:
//   - ParseGGUF returns a *FormatError or a file, never panics;
//   - every tensor's data lies inside the input and has its computed size;
//   - the config and tensor checks Open runs do not panic;
//   - supported tensors dequantise without error;
//   - writing a parsed file back out and parsing that is a fixed point:
//     encode(parse(encode(parse(x)))) == encode(parse(x)).
func FuzzGGUF(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "gguf", "*.gguf"))
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("GGUF\x03\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := ParseGGUF("fuzz.gguf", data)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a *FormatError: %v", err)
			}
			return
		}
		for _, tn := range g.Tensors {
			b, err := tn.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if uint64(len(b)) != tn.Size() || tn.Offset+tn.Size() > uint64(len(data)) || tn.Offset < g.DataOffset {
				t.Fatalf("tensor %q: %d bytes at %d, size %d, file %d", tn.Name, len(b), tn.Offset, tn.Size(), len(data))
			}
			if tn.Type.Supported() && tn.NumElements() <= 1<<16 {
				if _, err := tn.Float32s(); err != nil {
					t.Fatalf("tensor %q: %v", tn.Name, err)
				}
			}
		}
		if c, err := configFromGGUF(g); err == nil {
			if c.Validate() == nil {
				_ = checkTensors(c, g.tensor)
			}
		}
		for _, kv := range g.Metadata {
			_ = kv.Value.Summary()
			_ = kv.Value.TypeName()
		}

		once := reencodeGGUF(t, g)
		g2, err := ParseGGUF("again.gguf", once)
		if err != nil {
			t.Fatalf("re-encoded file does not parse: %v", err)
		}
		if len(g2.Metadata) != len(g.Metadata) || len(g2.Tensors) != len(g.Tensors) {
			t.Fatalf("re-encoding changed counts: %d/%d kv, %d/%d tensors", len(g2.Metadata), len(g.Metadata), len(g2.Tensors), len(g.Tensors))
		}
		for i, tn := range g.Tensors {
			a, _ := tn.Bytes()
			b, _ := g2.Tensors[i].Bytes()
			if tn.Name != g2.Tensors[i].Name || tn.Type != g2.Tensors[i].Type || !bytes.Equal(a, b) {
				t.Fatalf("tensor %d changed in re-encoding", i)
			}
		}
		if twice := reencodeGGUF(t, g2); !bytes.Equal(once, twice) {
			t.Fatalf("re-encoding is not a fixed point")
		}
	})
}

// reencodeGGUF writes a parsed file back out with GGUFWriter.
func reencodeGGUF(t *testing.T, g *GGUFFile) []byte {
	w := NewGGUFWriter()
	w.Version = g.Version
	for _, kv := range g.Metadata {
		if err := w.Set(kv.Key, kv.Value); err != nil {
			t.Fatalf("metadata %q read back is not writable: %v", kv.Key, err)
		}
	}
	for _, tn := range g.Tensors {
		b, _ := tn.Bytes()
		if err := w.AddTensorBytes(tn.Name, tn.Type, tn.Shape, b); err != nil {
			t.Fatalf("tensor %q read back is not writable: %v", tn.Name, err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
