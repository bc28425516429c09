package loader

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"unicode/utf8"
)

// SafetensorsTensor is one tensor for WriteSafetensors.
type SafetensorsTensor struct {
	Name string
	// DType is the safetensors dtype string: "F32", "F16" or "BF16" (the
	// ones Open reads), or another the format defines, such as "I64".
	DType string
	// Shape lists dimensions outermost first, as torch and the file do: a
	// (out, in) matrix is {out, in}.
	Shape []uint64
	// Data holds the little-endian elements, product(Shape)·size bytes.
	Data []byte
}

// WriteSafetensors writes a safetensors file to w: the tensors in the order
// given, packed back to back, and metadata (which may be nil) as
// __metadata__. The header is padded with spaces to a multiple of 8 bytes so
// that the data section starts aligned. It is meant for tests and small
// tools: everything is written in one pass from memory.
func WriteSafetensors(w io.Writer, tensors []SafetensorsTensor, metadata map[string]string) error {
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			hdr.WriteByte(',')
		}
		first = false
	}
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		sep()
		hdr.WriteString(`"__metadata__":{`)
		for i, k := range keys {
			if i > 0 {
				hdr.WriteByte(',')
			}
			writeJSONString(&hdr, k)
			hdr.WriteByte(':')
			writeJSONString(&hdr, metadata[k])
		}
		hdr.WriteByte('}')
	}
	seen := map[string]bool{}
	var off uint64
	for _, t := range tensors {
		if t.Name == "" || t.Name == "__metadata__" || !utf8.ValidString(t.Name) {
			return fmt.Errorf("loader: WriteSafetensors: invalid tensor name %q", t.Name)
		}
		if seen[t.Name] {
			return fmt.Errorf("loader: WriteSafetensors: tensor %q given twice", t.Name)
		}
		seen[t.Name] = true
		dt, ok := safetensorsDTypes[t.DType]
		if !ok {
			return fmt.Errorf("loader: WriteSafetensors: tensor %q: unknown dtype %q", t.Name, t.DType)
		}
		n, ok := safetensorsByteSize(t.Shape, dt.size)
		if !ok || n != uint64(len(t.Data)) {
			return fmt.Errorf("loader: WriteSafetensors: tensor %q: %d bytes of data, but shape %v of %s needs %d",
				t.Name, len(t.Data), t.Shape, t.DType, n)
		}
		sep()
		writeJSONString(&hdr, t.Name)
		fmt.Fprintf(&hdr, `:{"dtype":%q,"shape":[`, t.DType)
		for i, d := range t.Shape {
			if i > 0 {
				hdr.WriteByte(',')
			}
			fmt.Fprintf(&hdr, "%d", d)
		}
		fmt.Fprintf(&hdr, `],"data_offsets":[%d,%d]}`, off, off+n)
		off += n
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(hdr.Len()))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return err
	}
	if _, err := w.Write(hdr.Bytes()); err != nil {
		return err
	}
	for _, t := range tensors {
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
	}
	return nil
}

// writeJSONString writes s as a JSON string.
func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // a string always marshals
	b.Write(enc)
}
