package loader

// safetensors.go reads safetensors files: an 8-byte little-endian header
// length, a JSON header that maps each tensor name to its dtype, shape
// (outermost first) and data_offsets (relative to the end of the header), then
// the raw little-endian data. Files are memory-mapped and tensors are
// zero-copy views into the mapping. Every size and offset is checked against
// the file before it is used, because files are hostile.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"sort"
	"strings"
)

const (
	// maxSafetensorsHeader bounds the JSON header. Real headers take about
	// 100–150 bytes a tensor (tens of kilobytes for a 7B model); 100 MB is the
	// limit the reference implementation enforces too.
	maxSafetensorsHeader = 100_000_000
	// maxSafetensorsDims bounds a tensor's rank. Weights are 1-D or 2-D; the
	// bound keeps a hostile shape from costing more than a few words.
	maxSafetensorsDims = 8
)

// safetensorsDType describes one dtype string of the safetensors format.
type safetensorsDType struct {
	size      uint64 // bytes per element
	dtype     DType  // the loader's type, when supported
	supported bool   // whether the engine can read it
}

// safetensorsDTypes lists the dtypes whose element size we know. Only F32,
// F16 and BF16 are supported, but the others are still size-checked so that
// a checkpoint may carry tensors we ignore (int64 position buffers, say).
var safetensorsDTypes = map[string]safetensorsDType{
	"F32":         {size: 4, dtype: F32, supported: true},
	"F16":         {size: 2, dtype: F16, supported: true},
	"BF16":        {size: 2, dtype: BF16, supported: true},
	"F64":         {size: 8},
	"I64":         {size: 8},
	"U64":         {size: 8},
	"I32":         {size: 4},
	"U32":         {size: 4},
	"I16":         {size: 2},
	"U16":         {size: 2},
	"I8":          {size: 1},
	"U8":          {size: 1},
	"BOOL":        {size: 1},
	"F8_E4M3":     {size: 1},
	"F8_E5M2":     {size: 1},
	"F8_E8M0":     {size: 1},
	"F8_E4M3FNUZ": {size: 1},
	"F8_E5M2FNUZ": {size: 1},
}

// stTensor is one tensor of a safetensors file, as the file describes it.
type stTensor struct {
	name   string
	dtype  string   // safetensors dtype string, a key of safetensorsDTypes
	shape  []uint64 // as stored: outermost first (torch order)
	offset uint64   // absolute offset of the data in the file
	data   []byte   // view into the file bytes
	at     uint64   // absolute offset of the tensor's header entry (for errors)
}

// stFile is a parsed safetensors file.
type stFile struct {
	path     string
	tensors  []stTensor // in header order
	byName   map[string]int
	metadata map[string]string
}

// errAt is a FormatError about the tensor's header entry.
func (t *stTensor) errAt(path string, err error, format string, args ...any) *FormatError {
	return &FormatError{File: path, Offset: t.at, Field: fmt.Sprintf("tensor %q", t.name), Msg: fmt.Sprintf(format, args...), Err: err}
}

// stEntry is a tensor's header entry. The fields stay raw so that their
// sizes can be bounded before they are decoded.
type stEntry struct {
	DType   *string         `json:"dtype"`
	Shape   json.RawMessage `json:"shape"`
	Offsets json.RawMessage `json:"data_offsets"`
}

// parseSafetensors parses the safetensors file whose bytes are b (usually a
// memory mapping). The returned tensors are views into b. path names the file
// in errors, which are *FormatError.
func parseSafetensors(path string, b []byte) (*stFile, error) {
	fail := func(off uint64, field, format string, args ...any) error {
		return &FormatError{File: path, Offset: off, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if len(b) < 8 {
		return nil, fail(0, "header length", "file is %d bytes, too short for the 8-byte header length", len(b))
	}
	size := uint64(len(b))
	n := binary.LittleEndian.Uint64(b)
	if n > maxSafetensorsHeader {
		return nil, fail(0, "header length", "%d exceeds the %d-byte limit", n, maxSafetensorsHeader)
	}
	if n > size-8 {
		return nil, fail(0, "header length", "%d runs past the end of the %d-byte file", n, size)
	}
	hdr := b[8 : 8+n]
	dataStart := 8 + n
	if len(bytes.TrimLeft(hdr, jsonSpace)) == 0 {
		return nil, fail(8, "header", "empty (want a JSON object)")
	}

	f := &stFile{path: path, byName: map[string]int{}}
	// A streaming decode keeps the header's order and catches duplicate
	// names, which decoding into a map would silently merge.
	dec := json.NewDecoder(bytes.NewReader(hdr))
	syntax := func(err error) error {
		return fail(8+uint64(dec.InputOffset()), "header", "not valid JSON: %v", err)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, syntax(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fail(8, "header", "not a JSON object")
	}
	sawMetadata := false
	for dec.More() {
		// The entry starts at its key, after any comma and spaces.
		at := uint64(dec.InputOffset())
		for at < n && (hdr[at] == ',' || strings.IndexByte(jsonSpace, hdr[at]) >= 0) {
			at++
		}
		at += 8
		tok, err := dec.Token()
		if err != nil {
			return nil, syntax(err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fail(at, "header", "not valid JSON: unexpected %v", tok)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntax(err)
		}
		if name == "__metadata__" {
			if sawMetadata {
				return nil, fail(at, "__metadata__", "appears twice")
			}
			sawMetadata = true
			if err := json.Unmarshal(raw, &f.metadata); err != nil {
				return nil, fail(at, "__metadata__", "not an object of strings: %v", err)
			}
			continue
		}
		if name == "" {
			return nil, fail(at, "header", "a tensor has an empty name")
		}
		if _, dup := f.byName[name]; dup {
			return nil, fail(at, fmt.Sprintf("tensor %q", name), "listed twice")
		}
		t := stTensor{name: name, at: at}
		if msg := t.parseEntry(raw, b, dataStart); msg != "" {
			return nil, t.errAt(path, nil, "%s", msg)
		}
		f.byName[name] = len(f.tensors)
		f.tensors = append(f.tensors, t)
	}
	if _, err := dec.Token(); err != nil {
		return nil, syntax(err)
	}
	// The reference writer pads the header with spaces to a multiple of 8;
	// anything else after the object is an error.
	if off := dec.InputOffset(); len(bytes.TrimLeft(hdr[off:], jsonSpace)) != 0 {
		return nil, fail(8+uint64(off), "header", "%d stray bytes after the JSON object", n-uint64(off))
	}
	if err := checkSafetensorsOverlap(path, f.tensors, dataStart); err != nil {
		return nil, err
	}
	return f, nil
}

// jsonSpace is JSON's insignificant whitespace.
const jsonSpace = " \t\r\n"

// parseEntry fills t from its header entry raw, checked against the data
// section of the file b, which starts at dataStart; data becomes a view into
// b. It returns what is wrong, or "".
func (t *stTensor) parseEntry(raw json.RawMessage, b []byte, dataStart uint64) string {
	var e stEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		return fmt.Sprintf("entry is not a {dtype, shape, data_offsets} object: %v", err)
	}
	if e.DType == nil {
		return "no dtype"
	}
	dt, ok := safetensorsDTypes[*e.DType]
	if !ok {
		return fmt.Sprintf("unknown dtype %q", *e.DType)
	}
	t.dtype = *e.DType
	if isJSONNull(e.Shape) {
		return "no shape"
	}
	shape, err := decodeBoundedUints(e.Shape, maxSafetensorsDims)
	if err != nil {
		return fmt.Sprintf("shape: %v", err)
	}
	t.shape = shape
	if isJSONNull(e.Offsets) {
		return "no data_offsets"
	}
	offs, err := decodeBoundedUints(e.Offsets, 2)
	if err != nil {
		return fmt.Sprintf("data_offsets: %v", err)
	}
	if len(offs) != 2 {
		return fmt.Sprintf("data_offsets has %d values, want [begin, end]", len(offs))
	}
	begin, end := offs[0], offs[1]
	dataLen := uint64(len(b)) - dataStart
	if begin > end {
		return fmt.Sprintf("data_offsets [%d, %d] end before they begin", begin, end)
	}
	if end > dataLen {
		return fmt.Sprintf("data_offsets [%d, %d] run past the %d-byte data section", begin, end, dataLen)
	}
	want, ok := safetensorsByteSize(shape, dt.size)
	if !ok {
		return fmt.Sprintf("shape %v of %s overflows a 64-bit size", shape, t.dtype)
	}
	if end-begin != want {
		return fmt.Sprintf("data_offsets [%d, %d] hold %d bytes, but shape %v of %s needs %d", begin, end, end-begin, shape, t.dtype, want)
	}
	lo, hi := dataStart+begin, dataStart+end
	t.offset, t.data = lo, b[lo:hi:hi]
	return ""
}

// decodeBoundedUints decodes a JSON array of unsigned integers of at most max
// elements. The bound is checked on the raw text first, so a hostile array of
// millions of zeros costs nothing.
func decodeBoundedUints(raw json.RawMessage, max int) ([]uint64, error) {
	if bytes.Count(raw, []byte(",")) >= max {
		return nil, fmt.Errorf("more than %d values", max)
	}
	var v []uint64
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("not an array of unsigned integers: %v", err)
	}
	if v == nil {
		return nil, fmt.Errorf("null")
	}
	return v, nil
}

// safetensorsByteSize returns product(shape)·elemSize, and false when that
// overflows uint64.
func safetensorsByteSize(shape []uint64, elemSize uint64) (uint64, bool) {
	n := elemSize
	for _, d := range shape {
		hi, lo := bits.Mul64(n, d)
		if hi != 0 {
			return 0, false
		}
		n = lo
	}
	return n, true
}

// checkSafetensorsOverlap reports two tensors whose bytes overlap. Empty
// tensors overlap nothing. Gaps are allowed: they waste space but harm no one.
func checkSafetensorsOverlap(path string, ts []stTensor, dataStart uint64) error {
	idx := make([]int, len(ts))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool {
		ta, tb := &ts[idx[a]], &ts[idx[b]]
		if ta.offset != tb.offset {
			return ta.offset < tb.offset
		}
		return len(ta.data) < len(tb.data)
	})
	last := -1 // the non-empty tensor that reaches furthest so far
	var reach uint64
	for _, i := range idx {
		t := &ts[i]
		if len(t.data) == 0 {
			continue
		}
		if last >= 0 && t.offset < reach {
			p := &ts[last]
			return t.errAt(path, nil, "data_offsets [%d, %d] overlap tensor %q's [%d, %d]",
				t.offset-dataStart, t.offset-dataStart+uint64(len(t.data)),
				p.name, p.offset-dataStart, reach-dataStart)
		}
		if end := t.offset + uint64(len(t.data)); last < 0 || end > reach {
			last, reach = i, end
		}
	}
	return nil
}
