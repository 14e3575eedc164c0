// Package gguf reads and writes GGUF v2/v3 model files: typed metadata,
// tensor-info records, and tensor data handed out as read-only slices of a
// memory mapping (no copies).
//
// Layout of a file (all integers little-endian):
//
//	u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//	n_kv     x { string key | u32 value_type | value }
//	n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 type | u64 offset }
//	zero padding to general.alignment (default 32)
//	tensor data; each tensor at data_start+offset, offsets aligned
//
// A string is u64 length + bytes; an array is u32 element type + u64 count +
// elements. Every count and length read from a file is checked against the
// bytes that remain before anything is allocated, so a hostile header cannot
// make the reader allocate more than the file's own size.
package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"sort"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the data alignment when general.alignment is absent.
const DefaultAlignment = 32

// MaxDims is the largest number of dimensions a tensor may have (ggml's
// GGML_MAX_DIMS).
const MaxDims = 4

// ErrFormat is wrapped by every error about a malformed file.
var ErrFormat = errors.New("gguf: malformed file")

// TensorInfo describes one tensor. Dims is ggml's ne: the fastest-varying
// (contiguous) dimension first, so a matrix {in, out} has out rows of in
// elements. Offset is relative to the start of the data section.
type TensorInfo struct {
	Name   string
	Dims   []uint64
	Type   TensorType
	Offset uint64
}

// NumElements is the product of Dims (1 for zero dims).
func (t *TensorInfo) NumElements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// NumBytes is the size of the tensor's data. Dims and Type must have been
// validated (as Parse does).
func (t *TensorInfo) NumBytes() uint64 {
	if len(t.Dims) == 0 {
		return uint64(t.Type.TypeSize())
	}
	row, _ := t.Type.RowBytes(t.Dims[0])
	n := row
	for _, d := range t.Dims[1:] {
		n *= d
	}
	return n
}

// File is a parsed GGUF file. KV and Tensors keep file order.
type File struct {
	Version    uint32
	KV         []KV
	Tensors    []TensorInfo
	Alignment  uint64 // data alignment (general.alignment or 32)
	DataOffset uint64 // absolute file offset of the data section

	data    []byte // the whole file (mapping or caller's buffer)
	unmap   func() error
	kvIndex map[string]int
	tIndex  map[string]int
}

// Open memory-maps path read-only and parses it. Close releases the mapping;
// slices returned by TensorData are invalid after Close.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	data, unmap, err := mapFile(fh, st.Size())
	if err != nil {
		return nil, fmt.Errorf("gguf: map %s: %w", path, err)
	}
	f, err := Parse(data)
	if err != nil {
		_ = unmap()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.unmap = unmap
	return f, nil
}

// Close releases the file mapping (a no-op for files from Parse).
func (f *File) Close() error {
	if f.unmap == nil {
		return nil
	}
	err := f.unmap()
	f.unmap = nil
	f.data = nil
	return err
}

// Size returns the total size of the underlying file in bytes.
func (f *File) Size() int64 { return int64(len(f.data)) }

// TensorData returns the NumBytes() bytes of t, which must be one of
// f.Tensors (Parse has checked those lie inside the file), without copying.
// The slice aliases a read-only mapping: writing to it faults. It must not be
// called after Close.
func (f *File) TensorData(t *TensorInfo) []byte {
	start := f.DataOffset + t.Offset
	return f.data[start : start+t.NumBytes() : start+t.NumBytes()]
}

// Tensor returns the tensor named name.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := f.tIndex[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// Lookup returns the metadata value for key.
func (f *File) Lookup(key string) (Value, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return Value{}, false
	}
	return f.KV[i].Value, true
}

// Has reports whether key is present.
func (f *File) Has(key string) bool { _, ok := f.kvIndex[key]; return ok }

// Parse parses a GGUF file held in data. The returned File aliases data.
//
// Every error about the bytes themselves wraps ErrFormat and names the field
// or tensor at fault. Counts and lengths read from the header are checked
// against the bytes that remain before anything is allocated from them, and
// preallocation is capped, so memory use follows the bytes actually parsed,
// never a claimed count.
func Parse(data []byte) (*File, error) {
	r := &reader{b: data}
	magic, err := r.bytes(4, "magic")
	if err != nil {
		return nil, err
	}
	if string(magic) != Magic {
		return nil, fmt.Errorf("%w: bad magic %q (want %q)", ErrFormat, magic, Magic)
	}
	f := &File{kvIndex: map[string]int{}, tIndex: map[string]int{}, data: data}
	if f.Version, err = r.u32("version"); err != nil {
		return nil, err
	}
	if f.Version != 2 && f.Version != 3 {
		if sw := bits.ReverseBytes32(f.Version); sw == 2 || sw == 3 {
			return nil, fmt.Errorf("%w: version field reads %d: a big-endian GGUF v%d, which is not supported", ErrFormat, f.Version, sw)
		}
		return nil, fmt.Errorf("%w: unsupported version %d (want 2 or 3)", ErrFormat, f.Version)
	}
	nTensors, err := r.u64("tensor count")
	if err != nil {
		return nil, err
	}
	nKV, err := r.u64("metadata count")
	if err != nil {
		return nil, err
	}
	// Each KV needs at least 8+4+1 bytes, each tensor info 8+4+4+8.
	if nKV > uint64(r.remaining())/minKVBytes {
		return nil, fmt.Errorf("%w: metadata count %d exceeds what %d remaining bytes can hold", ErrFormat, nKV, r.remaining())
	}
	if nTensors > uint64(r.remaining())/minTensorInfoBytes {
		return nil, fmt.Errorf("%w: tensor count %d exceeds what %d remaining bytes can hold", ErrFormat, nTensors, r.remaining())
	}
	f.KV = make([]KV, 0, min(nKV, maxPrealloc))
	for i := range nKV {
		key, err := r.str(fmt.Sprintf("metadata key #%d", i))
		if err != nil {
			return nil, err
		}
		if _, dup := f.kvIndex[key]; dup {
			return nil, fmt.Errorf("%w: duplicate metadata key %q", ErrFormat, key)
		}
		vt, err := r.u32(fmt.Sprintf("type of metadata %q", key))
		if err != nil {
			return nil, err
		}
		v, err := r.value(ValueType(vt), key, 0)
		if err != nil {
			return nil, err
		}
		f.kvIndex[key] = len(f.KV)
		f.KV = append(f.KV, KV{Key: key, Value: v})
	}

	f.Alignment = DefaultAlignment
	if v, ok := f.Lookup("general.alignment"); ok {
		a, isU32 := v.data.(uint32)
		if !isU32 {
			return nil, fmt.Errorf("%w: general.alignment has type %s, want u32", ErrFormat, typeName(v))
		}
		if a == 0 || a&(a-1) != 0 {
			return nil, fmt.Errorf("%w: general.alignment %d is not a power of two", ErrFormat, a)
		}
		f.Alignment = uint64(a)
	}

	f.Tensors = make([]TensorInfo, 0, min(nTensors, maxPrealloc))
	for i := range nTensors {
		t, err := r.tensorInfo(i, f.Alignment)
		if err != nil {
			return nil, err
		}
		if _, dup := f.tIndex[t.Name]; dup {
			return nil, fmt.Errorf("%w: duplicate tensor name %q", ErrFormat, t.Name)
		}
		f.tIndex[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}

	f.DataOffset = alignUp(uint64(r.off), f.Alignment)
	if len(f.Tensors) > 0 && f.DataOffset > uint64(len(data)) {
		return nil, fmt.Errorf("%w: file truncated: data section starts at %d but the file has %d bytes", ErrFormat, f.DataOffset, len(data))
	}
	if err := f.checkTensorBounds(); err != nil {
		return nil, err
	}
	return f, nil
}

const (
	minKVBytes         = 8 + 4 + 1     // empty key, type, 1-byte value
	minTensorInfoBytes = 8 + 4 + 4 + 8 // empty name, n_dims 0, type, offset
	// maxPrealloc caps slice capacity taken from a count in the file; longer
	// lists grow by append as their elements are actually read.
	maxPrealloc = 1 << 12
)

// typeName is a value's type as the dump and errors print it: "u32",
// "arr[str]", "arr[arr]".
func typeName(v Value) string {
	if v.Type == ValueArray {
		return "arr[" + v.ElemType.String() + "]"
	}
	return v.Type.String()
}

// checkTensorBounds verifies every tensor lies inside the file and that no
// two tensors of non-zero size overlap.
func (f *File) checkTensorBounds() error {
	var dataLen uint64
	if uint64(len(f.data)) > f.DataOffset {
		dataLen = uint64(len(f.data)) - f.DataOffset
	}
	order := make([]int, 0, len(f.Tensors))
	for i := range f.Tensors {
		t := &f.Tensors[i]
		size := t.NumBytes()
		// Offset <= dataLen first, so dataLen-Offset cannot wrap.
		if t.Offset > dataLen || size > dataLen-t.Offset {
			return fmt.Errorf("%w: tensor %q: data [%d, +%d) relative to the data section at %d lies past its end (%d bytes; file truncated?)", ErrFormat, t.Name, t.Offset, size, f.DataOffset, dataLen)
		}
		if size > 0 {
			order = append(order, i)
		}
	}
	sort.Slice(order, func(a, b int) bool { return f.Tensors[order[a]].Offset < f.Tensors[order[b]].Offset })
	for k := 1; k < len(order); k++ {
		prev, cur := &f.Tensors[order[k-1]], &f.Tensors[order[k]]
		// Both ends are <= dataLen, so the sum cannot wrap.
		if prev.Offset+prev.NumBytes() > cur.Offset {
			return fmt.Errorf("%w: tensor %q (data [%d, +%d)) overlaps tensor %q (data [%d, +%d))", ErrFormat, cur.Name, cur.Offset, cur.NumBytes(), prev.Name, prev.Offset, prev.NumBytes())
		}
	}
	return nil
}

// alignUp rounds x up to a multiple of a (a power of two). x is a file
// offset and a at most 2^31, so the sum cannot wrap.
func alignUp(x, a uint64) uint64 { return (x + a - 1) / a * a }

// checkShape validates a tensor's type and ggml dims (fastest first) and
// returns its data size in bytes. A tensor with no dims holds one element.
// The element count and the byte size must each fit in an int64, as in ggml.
func checkShape(name string, t TensorType, dims []uint64) (uint64, error) {
	if !t.Known() {
		return 0, fmt.Errorf("tensor %q has unknown tensor type %d", name, uint32(t))
	}
	if len(dims) > MaxDims {
		return 0, fmt.Errorf("tensor %q has %d dimensions (max %d)", name, len(dims), MaxDims)
	}
	n := uint64(1)
	for d, x := range dims {
		if x > math.MaxInt64 {
			return 0, fmt.Errorf("tensor %q: dimension %d = %d overflows int64", name, d, x)
		}
		hi, lo := bits.Mul64(n, x)
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("tensor %q: shape %v overflows the element count", name, dims)
		}
		n = lo
	}
	ne0 := uint64(1)
	if len(dims) > 0 {
		ne0 = dims[0]
	}
	size, err := t.RowBytes(ne0)
	if err != nil {
		return 0, fmt.Errorf("tensor %q: ne0: %v", name, err)
	}
	for _, x := range dims[min(1, len(dims)):] {
		hi, lo := bits.Mul64(size, x)
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("tensor %q: byte size of shape %v (%s) overflows", name, dims, t)
		}
		size = lo
	}
	return size, nil
}

type reader struct {
	b   []byte
	off int
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) bytes(n uint64, what string) ([]byte, error) {
	if n > uint64(r.remaining()) {
		return nil, fmt.Errorf("%w: truncated reading %s at offset %d: need %d bytes, %d remain", ErrFormat, what, r.off, n, r.remaining())
	}
	s := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return s, nil
}

func (r *reader) u32(what string) (uint32, error) {
	b, err := r.bytes(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (r *reader) u64(what string) (uint64, error) {
	b, err := r.bytes(8, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (r *reader) str(what string) (string, error) {
	n, err := r.u64("length of " + what)
	if err != nil {
		return "", err
	}
	if n > uint64(r.remaining()) {
		r.off -= 8
		return "", fmt.Errorf("%w: %s at offset %d: string length %d exceeds the %d bytes that remain", ErrFormat, what, r.off, n, r.remaining()-8)
	}
	b, _ := r.bytes(n, what)
	return string(b), nil
}

// rawStr is str without an error message, for long arrays: on failure it
// reads nothing and the caller calls str to describe the fault.
func (r *reader) rawStr() (string, bool) {
	if r.remaining() < 8 {
		return "", false
	}
	n := binary.LittleEndian.Uint64(r.b[r.off:])
	if n > uint64(r.remaining()-8) {
		return "", false
	}
	start := r.off + 8
	r.off = start + int(n)
	return string(r.b[start:r.off]), true
}

// maxArrayDepth bounds nesting of arrays of arrays: a top-level array is at
// depth 1, so arrays may be nested maxArrayDepth deep.
const maxArrayDepth = 8

// value reads a value of type t for metadata key; depth is the number of
// arrays enclosing it.
func (r *reader) value(t ValueType, key string, depth int) (Value, error) {
	if t == ValueArray {
		if depth >= maxArrayDepth {
			return Value{}, fmt.Errorf("%w: metadata %q: arrays nested deeper than %d", ErrFormat, key, maxArrayDepth)
		}
		what := fmt.Sprintf("value of %q", key)
		et32, err := r.u32("array element type of " + what)
		if err != nil {
			return Value{}, err
		}
		et := ValueType(et32)
		n, err := r.u64("array length of " + what)
		if err != nil {
			return Value{}, err
		}
		minElem := uint64(et.scalarSize())
		switch et {
		case ValueString:
			minElem = 8
		case ValueArray:
			minElem = 12
		}
		if minElem == 0 {
			return Value{}, fmt.Errorf("%w: metadata %q: unknown array element type %d", ErrFormat, key, et32)
		}
		if n > uint64(r.remaining())/minElem {
			return Value{}, fmt.Errorf("%w: metadata %q: array length %d exceeds what %d remaining bytes can hold", ErrFormat, key, n, r.remaining())
		}
		return r.array(et, int(n), key, depth+1)
	}
	if t == ValueString {
		s, err := r.str(fmt.Sprintf("value of %q", key))
		return String(s), err
	}
	size := t.scalarSize()
	if size == 0 {
		return Value{}, fmt.Errorf("%w: metadata %q: unknown value type %d", ErrFormat, key, uint32(t))
	}
	b, err := r.bytes(uint64(size), fmt.Sprintf("value of %q", key))
	if err != nil {
		return Value{}, err
	}
	return scalarFromBytes(t, b, key)
}

func scalarFromBytes(t ValueType, b []byte, key string) (Value, error) {
	le := binary.LittleEndian
	switch t {
	case ValueUint8:
		return Uint8(b[0]), nil
	case ValueInt8:
		return Int8(int8(b[0])), nil
	case ValueUint16:
		return Uint16(le.Uint16(b)), nil
	case ValueInt16:
		return Int16(int16(le.Uint16(b))), nil
	case ValueUint32:
		return Uint32(le.Uint32(b)), nil
	case ValueInt32:
		return Int32(int32(le.Uint32(b))), nil
	case ValueFloat32:
		return Float32(math.Float32frombits(le.Uint32(b))), nil
	case ValueBool:
		if b[0] > 1 {
			return Value{}, fmt.Errorf("%w: metadata %q: bool byte %d is neither 0 nor 1", ErrFormat, key, b[0])
		}
		return Bool(b[0] == 1), nil
	case ValueUint64:
		return Uint64(le.Uint64(b)), nil
	case ValueInt64:
		return Int64(int64(le.Uint64(b))), nil
	case ValueFloat64:
		return Float64(math.Float64frombits(le.Uint64(b))), nil
	}
	return Value{}, fmt.Errorf("%w: metadata %q: unknown value type %d", ErrFormat, key, uint32(t))
}

// array reads n elements of type et; n has been checked against the bytes
// that remain. depth counts the enclosing arrays, this one included.
func (r *reader) array(et ValueType, n int, key string, depth int) (Value, error) {
	le := binary.LittleEndian
	switch et {
	case ValueString:
		s := make([]string, 0, min(n, maxPrealloc))
		for i := range n {
			x, ok := r.rawStr()
			if !ok {
				_, err := r.str(fmt.Sprintf("element %d of array %q", i, key))
				return Value{}, err
			}
			s = append(s, x)
		}
		return Array(s), nil
	case ValueArray:
		s := make([]Value, 0, min(n, maxPrealloc))
		for range n {
			v, err := r.value(ValueArray, key, depth)
			if err != nil {
				return Value{}, err
			}
			s = append(s, v)
		}
		return Value{Type: ValueArray, ElemType: ValueArray, data: s}, nil
	}
	size := et.scalarSize()
	b, err := r.bytes(uint64(n)*uint64(size), fmt.Sprintf("elements of array %q", key))
	if err != nil {
		return Value{}, err
	}
	switch et {
	case ValueUint8:
		return Array(append([]uint8(nil), b...)), nil
	case ValueInt8:
		s := make([]int8, n)
		for i := range s {
			s[i] = int8(b[i])
		}
		return Array(s), nil
	case ValueBool:
		s := make([]bool, n)
		for i := range s {
			if b[i] > 1 {
				return Value{}, fmt.Errorf("%w: array %q: element %d: bool byte %d is neither 0 nor 1", ErrFormat, key, i, b[i])
			}
			s[i] = b[i] == 1
		}
		return Array(s), nil
	case ValueUint16:
		s := make([]uint16, n)
		for i := range s {
			s[i] = le.Uint16(b[2*i:])
		}
		return Array(s), nil
	case ValueInt16:
		s := make([]int16, n)
		for i := range s {
			s[i] = int16(le.Uint16(b[2*i:]))
		}
		return Array(s), nil
	case ValueUint32:
		s := make([]uint32, n)
		for i := range s {
			s[i] = le.Uint32(b[4*i:])
		}
		return Array(s), nil
	case ValueInt32:
		s := make([]int32, n)
		for i := range s {
			s[i] = int32(le.Uint32(b[4*i:]))
		}
		return Array(s), nil
	case ValueFloat32:
		s := make([]float32, n)
		for i := range s {
			s[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
		return Array(s), nil
	case ValueUint64:
		s := make([]uint64, n)
		for i := range s {
			s[i] = le.Uint64(b[8*i:])
		}
		return Array(s), nil
	case ValueInt64:
		s := make([]int64, n)
		for i := range s {
			s[i] = int64(le.Uint64(b[8*i:]))
		}
		return Array(s), nil
	case ValueFloat64:
		s := make([]float64, n)
		for i := range s {
			s[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
		return Array(s), nil
	}
	return Value{}, fmt.Errorf("%w: array %q: unknown element type %d", ErrFormat, key, uint32(et))
}

func (r *reader) tensorInfo(i uint64, align uint64) (TensorInfo, error) {
	name, err := r.str(fmt.Sprintf("name of tensor #%d", i))
	if err != nil {
		return TensorInfo{}, err
	}
	nd, err := r.u32(fmt.Sprintf("dimension count of tensor %q", name))
	if err != nil {
		return TensorInfo{}, err
	}
	if nd > MaxDims {
		return TensorInfo{}, fmt.Errorf("%w: tensor %q has %d dimensions (max %d)", ErrFormat, name, nd, MaxDims)
	}
	t := TensorInfo{Name: name, Dims: make([]uint64, nd)}
	for d := range t.Dims {
		if t.Dims[d], err = r.u64(fmt.Sprintf("dimension %d of tensor %q", d, name)); err != nil {
			return TensorInfo{}, err
		}
	}
	ty, err := r.u32(fmt.Sprintf("type of tensor %q", name))
	if err != nil {
		return TensorInfo{}, err
	}
	t.Type = TensorType(ty)
	if _, err := checkShape(name, t.Type, t.Dims); err != nil {
		return TensorInfo{}, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if t.Offset, err = r.u64(fmt.Sprintf("offset of tensor %q", name)); err != nil {
		return TensorInfo{}, err
	}
	if t.Offset%align != 0 {
		return TensorInfo{}, fmt.Errorf("%w: tensor %q: offset %d is not a multiple of the alignment %d", ErrFormat, name, t.Offset, align)
	}
	return t, nil
}
