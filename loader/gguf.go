package loader

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"sort"
	"strings"
)

// GGUF layout (little-endian; versions 2 and 3 differ only in that v3 may
// also be big-endian, which we reject):
//
//	magic "GGUF", version u32, tensor count u64, metadata count u64
//	metadata: key string, value type u32, value
//	tensor infos: name string, n_dims u32, dims u64[n_dims] (innermost
//	    first), type u32, offset u64 (relative to the data section)
//	padding to general.alignment, then the data section
//
// A string is a u64 byte length and the bytes; an array is an element type
// u32, a u64 count and the elements.
//
// The parser works on the whole file as one []byte (a read-only mapping).
// Before it allocates anything sized by the file, it checks that the bytes
// that many items need are present, so a hostile header cannot make it
// allocate more than a small multiple of the file's own size.

const (
	ggufMagic        = "GGUF"
	defaultAlignment = 32
	maxDims          = 4  // GGML_MAX_DIMS
	maxArrayDepth    = 16 // nested metadata arrays
	maxAlignment     = 1 << 30
	// Smallest possible encodings, used to bound counts before allocating.
	minKVBytes     = 8 + 1 + 4 + 1         // key length, 1-byte key, type, 1-byte value
	minTensorBytes = 8 + 1 + 4 + 8 + 4 + 8 // name length, 1-byte name, n_dims, 1 dim, type, offset
	minArrayBytes  = 4 + 8                 // element type, count
)

// GGUFFile is a parsed GGUF file. Tensors' data are views into the file's
// mapping, valid until Close.
type GGUFFile struct {
	Path    string
	Version uint32
	// Metadata is the key/value list in file order; its accessors are
	// promoted, so f.String("general.architecture") works.
	Metadata
	Tensors    []*Tensor // file order
	Alignment  uint64    // general.alignment, or 32
	DataOffset uint64    // absolute offset of the data section
	Size       uint64    // file size in bytes

	data  []byte
	close func() error
}

// FormatError reports a malformed file: which file, at what byte offset,
// in which field, and what is wrong.
type FormatError struct {
	File   string
	Offset uint64
	Field  string // e.g. `metadata "general.alignment"`, `tensor "output.weight"`
	Msg    string
	Err    error // an underlying sentinel such as ErrUnsupportedType, or nil
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("loader: %s: offset %d: %s: %s", e.File, e.Offset, e.Field, e.Msg)
}

func (e *FormatError) Unwrap() error { return e.Err }

// OpenGGUF maps and parses a GGUF file without interpreting it as a model
// (use Open for that). Close the result to unmap it.
func OpenGGUF(path string) (*GGUFFile, error) {
	data, closer, err := mapFile(path)
	if err != nil {
		return nil, err
	}
	f, err := ParseGGUF(path, data)
	if err != nil {
		_ = closer()
		return nil, err
	}
	f.close = closer
	return f, nil
}

// Close releases the file's mapping; tensor data must not be used after it.
// It is safe to call more than once.
func (f *GGUFFile) Close() error {
	for _, t := range f.Tensors {
		t.data = nil
	}
	c := f.close
	f.close, f.data = nil, nil
	if c == nil {
		return nil
	}
	return c()
}

// ParseGGUF parses a GGUF image held in memory; name is used in errors. The
// returned file's tensors are views into data, which must stay unchanged.
func ParseGGUF(name string, data []byte) (*GGUFFile, error) {
	p := &ggufParser{name: name, data: data, size: uint64(len(data))}
	return p.parse()
}

type ggufParser struct {
	name string
	data []byte
	size uint64
	off  uint64
}

func (p *ggufParser) errAt(off uint64, field, format string, args ...any) *FormatError {
	return &FormatError{File: p.name, Offset: off, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// need checks that n more bytes are present at the cursor.
func (p *ggufParser) need(n uint64, field string) error {
	if left := p.size - p.off; n > left {
		return p.errAt(p.off, field, "needs %d bytes, only %d left in the file (size %d)", n, left, p.size)
	}
	return nil
}

func (p *ggufParser) bytes(n uint64, field string) ([]byte, error) {
	if err := p.need(n, field); err != nil {
		return nil, err
	}
	b := p.data[p.off : p.off+n]
	p.off += n
	return b, nil
}

func (p *ggufParser) u32(field string) (uint32, error) {
	b, err := p.bytes(4, field)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (p *ggufParser) u64(field string) (uint64, error) {
	b, err := p.bytes(8, field)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (p *ggufParser) str(field string) (string, error) {
	at := p.off
	if p.size-p.off < 8 {
		return "", p.need(8, field+" length")
	}
	n := binary.LittleEndian.Uint64(p.data[p.off:])
	p.off += 8
	if left := p.size - p.off; n > left {
		return "", p.errAt(at, field, "string length %d exceeds the %d bytes left in the file", n, left)
	}
	b, _ := p.bytes(n, field)
	return string(b), nil
}

// count reads an item count and checks that count items of at least minSize
// bytes each fit in the rest of the file.
func (p *ggufParser) count(field string, minSize uint64) (uint64, error) {
	at := p.off
	n, err := p.u64(field)
	if err != nil {
		return 0, err
	}
	if left := p.size - p.off; n > left/minSize {
		return 0, p.errAt(at, field, "%d items need at least %d bytes each, only %d bytes left in the file", n, minSize, left)
	}
	return n, nil
}

func (p *ggufParser) parse() (*GGUFFile, error) {
	magic, err := p.bytes(4, "magic")
	if err != nil {
		return nil, err
	}
	if string(magic) != ggufMagic {
		return nil, p.errAt(0, "magic", "got %q, want %q: not a GGUF file", magic, ggufMagic)
	}
	version, err := p.u32("version")
	if err != nil {
		return nil, err
	}
	switch {
	case version == 2 || version == 3:
	case bits.ReverseBytes32(version) == 2 || bits.ReverseBytes32(version) == 3:
		return nil, p.errAt(4, "version", "big-endian GGUF is not supported")
	default:
		return nil, p.errAt(4, "version", "GGUF version %d is not supported (only 2 and 3)", version)
	}
	// Read both counts first; bound each against the bytes left once both
	// headers are consumed.
	nTensorsAt := p.off
	nTensors, err := p.u64("tensor count")
	if err != nil {
		return nil, err
	}
	nKV, err := p.count("metadata count", minKVBytes)
	if err != nil {
		return nil, err
	}
	if left := p.size - p.off; nTensors > left/minTensorBytes {
		return nil, p.errAt(nTensorsAt, "tensor count", "%d tensors need at least %d bytes each, only %d bytes left in the file", nTensors, minTensorBytes, left)
	}

	f := &GGUFFile{Path: p.name, Version: version, Alignment: defaultAlignment, Size: p.size, data: p.data}
	f.Metadata = make(Metadata, 0, nKV)
	seenKey := make(map[string]bool, nKV)
	for i := uint64(0); i < nKV; i++ {
		at := p.off
		key, err := p.str(fmt.Sprintf("metadata key #%d", i))
		if err != nil {
			return nil, err
		}
		if key == "" {
			return nil, p.errAt(at, fmt.Sprintf("metadata key #%d", i), "empty key")
		}
		field := fmt.Sprintf("metadata %q", key)
		if seenKey[key] {
			return nil, p.errAt(at, field, "duplicate key")
		}
		seenKey[key] = true
		typeAt := p.off
		t, err := p.u32(field + " type")
		if err != nil {
			return nil, err
		}
		v, err := p.value(ValueType(t), typeAt, field, 0)
		if err != nil {
			return nil, err
		}
		f.Metadata = append(f.Metadata, KV{Key: key, Value: v})
	}

	if v, ok := f.Get("general.alignment"); ok {
		a, isInt := v.Uint()
		switch {
		case !isInt:
			return nil, p.errAt(p.off, `metadata "general.alignment"`, "has type %s, want an unsigned integer", v.TypeName())
		case a == 0 || a&(a-1) != 0 || a > maxAlignment:
			return nil, p.errAt(p.off, `metadata "general.alignment"`, "alignment %d is not a power of two from 1 to %d", a, maxAlignment)
		}
		f.Alignment = a
	}

	type span struct {
		start, end uint64
		t          *Tensor
	}
	spans := make([]span, 0, nTensors)
	f.Tensors = make([]*Tensor, 0, nTensors)
	rel := make([]uint64, 0, nTensors)
	infoAt := make([]uint64, 0, nTensors)
	seenName := make(map[string]bool, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		at := p.off
		name, err := p.str(fmt.Sprintf("tensor #%d name", i))
		if err != nil {
			return nil, err
		}
		if name == "" {
			return nil, p.errAt(at, fmt.Sprintf("tensor #%d", i), "empty name")
		}
		field := fmt.Sprintf("tensor %q", name)
		if seenName[name] {
			return nil, p.errAt(at, field, "duplicate tensor name")
		}
		seenName[name] = true
		nDims, err := p.u32(field + " n_dims")
		if err != nil {
			return nil, err
		}
		if nDims == 0 || nDims > maxDims {
			return nil, p.errAt(at, field, "%d dimensions, want 1 to %d", nDims, maxDims)
		}
		shape := make([]uint64, nDims)
		for d := range shape {
			if shape[d], err = p.u64(fmt.Sprintf("%s dim %d", field, d)); err != nil {
				return nil, err
			}
		}
		typeID, err := p.u32(field + " type")
		if err != nil {
			return nil, err
		}
		off, err := p.u64(field + " offset")
		if err != nil {
			return nil, err
		}
		t := &Tensor{Name: name, Type: DType(typeID), Shape: shape}
		if !t.Type.Known() {
			e := p.errAt(at, t.describe(), "%v", t.Type.unsupported())
			e.Err = ErrUnsupportedType
			return nil, e
		}
		f.Tensors = append(f.Tensors, t)
		rel = append(rel, off)
		infoAt = append(infoAt, at)
	}

	f.DataOffset, err = alignUp(p.off, f.Alignment)
	if err != nil {
		return nil, p.errAt(p.off, "data section", "%v", err)
	}
	if len(f.Tensors) > 0 && f.DataOffset > p.size {
		return nil, p.errAt(p.off, "data section", "aligned start %d lies beyond end of file (size %d)", f.DataOffset, p.size)
	}

	for i, t := range f.Tensors {
		field := t.describe()
		n, err := shapeElements(t.Shape)
		if err != nil {
			return nil, p.errAt(infoAt[i], field, "%v", err)
		}
		if bs := t.Type.BlockSize(); t.Shape[0]%bs != 0 {
			return nil, p.errAt(infoAt[i], field, "row length %d is not a multiple of the %d-element block", t.Shape[0], bs)
		}
		size, err := t.Type.RowBytes(n)
		if err != nil {
			return nil, p.errAt(infoAt[i], field, "%v", err)
		}
		if rel[i]%f.Alignment != 0 {
			return nil, p.errAt(infoAt[i], field, "data offset %d is not a multiple of the alignment %d", rel[i], f.Alignment)
		}
		start, c1 := bits.Add64(f.DataOffset, rel[i], 0)
		end, c2 := bits.Add64(start, size, 0)
		if c1 != 0 || c2 != 0 {
			return nil, p.errAt(infoAt[i], field, "data offset %d + %d bytes overflows a 64-bit file offset", rel[i], size)
		}
		if end > p.size {
			return nil, p.errAt(infoAt[i], field, "data [%d, %d) lies beyond end of file (size %d)", start, end, p.size)
		}
		t.Offset = start
		t.data = p.data[start:end:end]
		if size > 0 {
			spans = append(spans, span{start, end, t})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	for i := 1; i < len(spans); i++ {
		a, b := spans[i-1], spans[i]
		if b.start < a.end {
			return nil, p.errAt(b.start, b.t.describe(), "data [%d, %d) overlaps tensor %q at [%d, %d)", b.start, b.end, a.t.Name, a.start, a.end)
		}
	}
	return f, nil
}

// value reads one metadata value of type t. at is the offset of its type
// tag, for errors.
func (p *ggufParser) value(t ValueType, at uint64, field string, depth int) (Value, error) {
	if t == TypeArray {
		return p.array(at, field, depth)
	}
	if t == TypeString {
		s, err := p.str(field)
		return Value{Type: t, Data: s}, err
	}
	size := t.fixedSize()
	if size == 0 {
		return Value{}, p.errAt(at, field, "unknown value type %d", uint32(t))
	}
	b, err := p.bytes(size, field)
	if err != nil {
		return Value{}, err
	}
	v := Value{Type: t}
	switch t {
	case TypeUint8:
		v.Data = b[0]
	case TypeInt8:
		v.Data = int8(b[0])
	case TypeBool:
		if b[0] > 1 {
			return Value{}, p.errAt(p.off-1, field, "bool byte %d is neither 0 nor 1", b[0])
		}
		v.Data = b[0] == 1
	case TypeUint16:
		v.Data = binary.LittleEndian.Uint16(b)
	case TypeInt16:
		v.Data = int16(binary.LittleEndian.Uint16(b))
	case TypeUint32:
		v.Data = binary.LittleEndian.Uint32(b)
	case TypeInt32:
		v.Data = int32(binary.LittleEndian.Uint32(b))
	case TypeFloat32:
		v.Data = math.Float32frombits(binary.LittleEndian.Uint32(b))
	case TypeUint64:
		v.Data = binary.LittleEndian.Uint64(b)
	case TypeInt64:
		v.Data = int64(binary.LittleEndian.Uint64(b))
	case TypeFloat64:
		v.Data = math.Float64frombits(binary.LittleEndian.Uint64(b))
	}
	return v, nil
}

func (p *ggufParser) array(at uint64, field string, depth int) (Value, error) {
	if depth >= maxArrayDepth {
		return Value{}, p.errAt(at, field, "arrays nested deeper than %d", maxArrayDepth)
	}
	et, err := p.u32(field + " element type")
	if err != nil {
		return Value{}, err
	}
	elem := ValueType(et)
	var minSize uint64
	switch elem {
	case TypeString:
		minSize = 8
	case TypeArray:
		minSize = minArrayBytes
	default:
		minSize = elem.fixedSize()
		if minSize == 0 {
			return Value{}, p.errAt(at, field, "unknown array element type %d", et)
		}
	}
	n, err := p.count(field+" array length", minSize)
	if err != nil {
		return Value{}, err
	}
	v := Value{Type: TypeArray, Elem: elem}
	switch elem {
	case TypeString:
		s := make([]string, n)
		for i := range s {
			if s[i], err = p.str(field); err != nil {
				if fe, ok := err.(*FormatError); ok {
					fe.Field = fmt.Sprintf("%s[%d]", field, i) // formatted only on error
				}
				return Value{}, err
			}
		}
		v.Data = s
	case TypeArray:
		s := make([]Value, n)
		for i := range s {
			ef := fmt.Sprintf("%s[%d]", field, i)
			if s[i], err = p.array(p.off, ef, depth+1); err != nil {
				return Value{}, err
			}
		}
		v.Data = s
	default:
		b, _ := p.bytes(n*minSize, field) // count checked the length
		if v.Data, err = decodeArray(elem, b, n); err != nil {
			return Value{}, p.errAt(at, field, "%v", err)
		}
	}
	return v, nil
}

// decodeArray converts n little-endian fixed-size elements.
func decodeArray(t ValueType, b []byte, n uint64) (any, error) {
	le := binary.LittleEndian
	switch t {
	case TypeUint8:
		return append([]uint8(nil), b...), nil
	case TypeInt8:
		s := make([]int8, n)
		for i := range s {
			s[i] = int8(b[i])
		}
		return s, nil
	case TypeBool:
		s := make([]bool, n)
		for i := range s {
			if b[i] > 1 {
				return nil, fmt.Errorf("bool element %d is %d, neither 0 nor 1", i, b[i])
			}
			s[i] = b[i] == 1
		}
		return s, nil
	case TypeUint16:
		s := make([]uint16, n)
		for i := range s {
			s[i] = le.Uint16(b[2*i:])
		}
		return s, nil
	case TypeInt16:
		s := make([]int16, n)
		for i := range s {
			s[i] = int16(le.Uint16(b[2*i:]))
		}
		return s, nil
	case TypeUint32:
		s := make([]uint32, n)
		for i := range s {
			s[i] = le.Uint32(b[4*i:])
		}
		return s, nil
	case TypeInt32:
		s := make([]int32, n)
		for i := range s {
			s[i] = int32(le.Uint32(b[4*i:]))
		}
		return s, nil
	case TypeFloat32:
		s := make([]float32, n)
		for i := range s {
			s[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
		return s, nil
	case TypeUint64:
		s := make([]uint64, n)
		for i := range s {
			s[i] = le.Uint64(b[8*i:])
		}
		return s, nil
	case TypeInt64:
		s := make([]int64, n)
		for i := range s {
			s[i] = int64(le.Uint64(b[8*i:]))
		}
		return s, nil
	case TypeFloat64:
		s := make([]float64, n)
		for i := range s {
			s[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
		return s, nil
	}
	return nil, fmt.Errorf("unknown array element type %d", uint32(t))
}

// shapeElements is the product of the dimensions, checked to fit in an
// int64 (ggml's element count type).
func shapeElements(shape []uint64) (uint64, error) {
	n := uint64(1)
	for _, d := range shape {
		hi, lo := bits.Mul64(n, d)
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("element count overflows int64")
		}
		n = lo
	}
	return n, nil
}

// alignUp rounds off up to a multiple of a (a power of two).
func alignUp(off, a uint64) (uint64, error) {
	r, c := bits.Add64(off, a-1, 0)
	if c != 0 {
		return 0, fmt.Errorf("offset %d aligned to %d overflows", off, a)
	}
	return r &^ (a - 1), nil
}

// ---- metadata values ----

// ValueType is a GGUF metadata value type, as stored in the file.
type ValueType uint32

// The GGUF metadata value types.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("ValueType(%d)", uint32(t))
}

// fixedSize is the encoded size of a scalar of type t, or 0 for strings,
// arrays and unknown types.
func (t ValueType) fixedSize() uint64 {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// Value is one typed metadata value. Data holds, by Type:
//
//	uint8 int8 uint16 int16 uint32 int32 uint64 int64 float32 float64 bool string
//
// as the Go type of the same name, and for TypeArray a slice of the element
// type (Elem): []uint8 … []string, or []Value when Elem is TypeArray (each
// element itself an array value).
type Value struct {
	Type ValueType
	Elem ValueType // element type when Type == TypeArray
	Data any
}

// KV is one metadata entry.
type KV struct {
	Key   string
	Value Value
}

// Metadata is a GGUF file's key/value list in file order. Keys are unique.
// The typed accessors report ok == false both when the key is missing and
// when its value has another type.
type Metadata []KV

// Get returns the value stored under key.
func (m Metadata) Get(key string) (Value, bool) {
	for i := range m {
		if m[i].Key == key {
			return m[i].Value, true
		}
	}
	return Value{}, false
}

// Has reports whether key is present.
func (m Metadata) Has(key string) bool {
	_, ok := m.Get(key)
	return ok
}

// String returns a string value.
func (m Metadata) String(key string) (string, bool) {
	v, _ := m.Get(key)
	s, ok := v.Data.(string)
	return s, ok
}

// Uint returns an integer value of any width that is non-negative.
func (m Metadata) Uint(key string) (uint64, bool) {
	v, _ := m.Get(key)
	return v.Uint()
}

// Int returns an integer value of any width that fits in an int64.
func (m Metadata) Int(key string) (int64, bool) {
	v, _ := m.Get(key)
	return v.Int()
}

// Float returns a float32 or float64 value as a float64.
func (m Metadata) Float(key string) (float64, bool) {
	v, _ := m.Get(key)
	return v.Float()
}

// Bool returns a bool value.
func (m Metadata) Bool(key string) (bool, bool) {
	v, _ := m.Get(key)
	b, ok := v.Data.(bool)
	return b, ok
}

// Strings returns an array of strings.
func (m Metadata) Strings(key string) ([]string, bool) {
	v, _ := m.Get(key)
	s, ok := v.Data.([]string)
	return s, ok
}

// Float32s returns an array of float32.
func (m Metadata) Float32s(key string) ([]float32, bool) {
	v, _ := m.Get(key)
	s, ok := v.Data.([]float32)
	return s, ok
}

// Int32s returns an array of int32.
func (m Metadata) Int32s(key string) ([]int32, bool) {
	v, _ := m.Get(key)
	s, ok := v.Data.([]int32)
	return s, ok
}

// Uint32s returns an array of uint32.
func (m Metadata) Uint32s(key string) ([]uint32, bool) {
	v, _ := m.Get(key)
	s, ok := v.Data.([]uint32)
	return s, ok
}

// Uint returns v as a uint64 when it is a non-negative integer of any width.
func (v Value) Uint() (uint64, bool) {
	switch x := v.Data.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	}
	if i, ok := v.Int(); ok && i >= 0 {
		return uint64(i), true
	}
	return 0, false
}

// Int returns v as an int64 when it is an integer of any width that fits.
func (v Value) Int() (int64, bool) {
	switch x := v.Data.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

// Float returns v as a float64 when it is a float32 or float64.
func (v Value) Float() (float64, bool) {
	switch x := v.Data.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// Len is the element count of an array value (0 for scalars).
func (v Value) Len() int {
	if v.Type != TypeArray {
		return 0
	}
	switch x := v.Data.(type) {
	case []uint8:
		return len(x)
	case []int8:
		return len(x)
	case []uint16:
		return len(x)
	case []int16:
		return len(x)
	case []uint32:
		return len(x)
	case []int32:
		return len(x)
	case []uint64:
		return len(x)
	case []int64:
		return len(x)
	case []float32:
		return len(x)
	case []float64:
		return len(x)
	case []bool:
		return len(x)
	case []string:
		return len(x)
	case []Value:
		return len(x)
	}
	return 0
}

// TypeName is the value's type as inspect shows it: "uint32", "[]string",
// "[][]int32".
func (v Value) TypeName() string {
	if v.Type != TypeArray {
		return v.Type.String()
	}
	if v.Elem == TypeArray {
		if vs, ok := v.Data.([]Value); ok && len(vs) > 0 {
			return "[]" + vs[0].TypeName()
		}
		return "[]array"
	}
	return "[]" + v.Elem.String()
}

// Summary formats the value for humans: scalars in full (long strings
// clipped), arrays as their type and length with the first few elements.
func (v Value) Summary() string {
	const maxString = 64
	const maxElems = 4
	switch x := v.Data.(type) {
	case string:
		if r := []rune(x); len(r) > maxString {
			x = string(r[:maxString]) + "…"
		}
		return fmt.Sprintf("%q", x)
	case []Value:
		parts := make([]string, 0, maxElems)
		for i := 0; i < len(x) && i < maxElems; i++ {
			parts = append(parts, x[i].Summary())
		}
		return fmt.Sprintf("[%d] {%s%s}", len(x), strings.Join(parts, ", "), more(len(x), maxElems))
	case []string:
		parts := make([]string, 0, maxElems)
		for i := 0; i < len(x) && i < maxElems; i++ {
			parts = append(parts, Value{Type: TypeString, Data: x[i]}.Summary())
		}
		return fmt.Sprintf("[%d] {%s%s}", len(x), strings.Join(parts, ", "), more(len(x), maxElems))
	}
	if v.Type == TypeArray {
		n := v.Len()
		s := fmt.Sprint(v.Data) // "[a b c ...]"
		if n > maxElems {
			s = fmt.Sprint(sliceHead(v.Data, maxElems))
		}
		s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		return fmt.Sprintf("[%d] {%s%s}", n, strings.ReplaceAll(s, " ", ", "), more(n, maxElems))
	}
	return fmt.Sprint(v.Data)
}

func more(n, shown int) string {
	if n > shown {
		return ", …"
	}
	return ""
}

// sliceHead returns the first n elements of a typed numeric or bool slice.
func sliceHead(data any, n int) any {
	switch x := data.(type) {
	case []uint8:
		return x[:n]
	case []int8:
		return x[:n]
	case []uint16:
		return x[:n]
	case []int16:
		return x[:n]
	case []uint32:
		return x[:n]
	case []int32:
		return x[:n]
	case []uint64:
		return x[:n]
	case []int64:
		return x[:n]
	case []float32:
		return x[:n]
	case []float64:
		return x[:n]
	case []bool:
		return x[:n]
	}
	return data
}

// NewValue wraps a Go value as a metadata Value. It accepts the scalar types
// listed on Value, slices of them, and []Value for arrays of arrays (every
// element must itself be an array).
func NewValue(x any) (Value, error) {
	scalar := func(t ValueType) (Value, error) { return Value{Type: t, Data: x}, nil }
	array := func(t ValueType) (Value, error) { return Value{Type: TypeArray, Elem: t, Data: x}, nil }
	switch x := x.(type) {
	case uint8:
		return scalar(TypeUint8)
	case int8:
		return scalar(TypeInt8)
	case uint16:
		return scalar(TypeUint16)
	case int16:
		return scalar(TypeInt16)
	case uint32:
		return scalar(TypeUint32)
	case int32:
		return scalar(TypeInt32)
	case uint64:
		return scalar(TypeUint64)
	case int64:
		return scalar(TypeInt64)
	case float32:
		return scalar(TypeFloat32)
	case float64:
		return scalar(TypeFloat64)
	case bool:
		return scalar(TypeBool)
	case string:
		return scalar(TypeString)
	case []uint8:
		return array(TypeUint8)
	case []int8:
		return array(TypeInt8)
	case []uint16:
		return array(TypeUint16)
	case []int16:
		return array(TypeInt16)
	case []uint32:
		return array(TypeUint32)
	case []int32:
		return array(TypeInt32)
	case []uint64:
		return array(TypeUint64)
	case []int64:
		return array(TypeInt64)
	case []float32:
		return array(TypeFloat32)
	case []float64:
		return array(TypeFloat64)
	case []bool:
		return array(TypeBool)
	case []string:
		return array(TypeString)
	case []Value:
		for i, e := range x {
			if e.Type != TypeArray {
				return Value{}, fmt.Errorf("loader: array of arrays: element %d is a %s", i, e.Type)
			}
		}
		return array(TypeArray)
	}
	return Value{}, fmt.Errorf("loader: no GGUF metadata type for Go type %T", x)
}

// MustValue is NewValue for values known to be valid; it panics otherwise.
func MustValue(x any) Value {
	v, err := NewValue(x)
	if err != nil {
		panic(err)
	}
	return v
}
