package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Writer streams a GGUF file: declare metadata and tensors first, then hand
// over each tensor's data in declaration order. Nothing model-sized is
// buffered. Output is byte-compatible with llama.cpp's writer: offsets are
// cumulative sizes rounded up to the alignment and every tensor, the last
// included, is followed by zero padding to the alignment.
type Writer struct {
	w         *bufio.Writer
	Version   uint32 // 3 unless changed (to 2) before the first WriteTensorData
	kv        []KV
	tensors   []TensorInfo
	keys      map[string]bool
	names     map[string]bool
	alignment uint64
	size      uint64 // data section size so far (declared)
	started   bool
	next      int
	err       error
}

// NewWriter returns a Writer for GGUF version 3 writing to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, 1<<20), Version: 3, alignment: DefaultAlignment,
		keys: map[string]bool{}, names: map[string]bool{}}
}

// AddKV appends a metadata pair. general.alignment (u32, a power of two)
// also sets the data alignment. It fails on a duplicate key and on a value
// that Parse could not read back: one not built by this package's
// constructors, or arrays nested deeper than 8.
func (w *Writer) AddKV(key string, v Value) error {
	if w.started {
		return errors.New("gguf: AddKV after data was written")
	}
	if w.keys[key] {
		return fmt.Errorf("gguf: duplicate metadata key %q", key)
	}
	if err := checkValue(v, 0); err != nil {
		return fmt.Errorf("gguf: metadata %q: %w", key, err)
	}
	if key == "general.alignment" {
		a, ok := v.data.(uint32)
		if !ok || a == 0 || a&(a-1) != 0 {
			return fmt.Errorf("gguf: general.alignment must be a u32 power of two")
		}
		if len(w.tensors) > 0 {
			return errors.New("gguf: general.alignment must be set before tensors are added")
		}
		w.alignment = uint64(a)
	}
	w.keys[key] = true
	w.kv = append(w.kv, KV{Key: key, Value: v})
	return nil
}

// checkValue reports whether v is encodable and readable back: its Go value
// matches its type tag and arrays nest at most maxArrayDepth deep. depth is
// the number of arrays enclosing v.
func checkValue(v Value, depth int) error {
	if v.Type != ValueArray {
		var got ValueType
		switch v.data.(type) {
		case uint8:
			got = ValueUint8
		case int8:
			got = ValueInt8
		case uint16:
			got = ValueUint16
		case int16:
			got = ValueInt16
		case uint32:
			got = ValueUint32
		case int32:
			got = ValueInt32
		case float32:
			got = ValueFloat32
		case bool:
			got = ValueBool
		case string:
			got = ValueString
		case uint64:
			got = ValueUint64
		case int64:
			got = ValueInt64
		case float64:
			got = ValueFloat64
		default:
			return fmt.Errorf("value of type %s holds %T, which GGUF cannot encode (use the gguf value constructors)", v.Type, v.data)
		}
		if got != v.Type {
			return fmt.Errorf("value tagged %s holds a %T", v.Type, v.data)
		}
		return nil
	}
	if depth+1 > maxArrayDepth {
		return fmt.Errorf("arrays nested deeper than %d", maxArrayDepth)
	}
	if et, ok := elemTypeOf(v.data); !ok || et != v.ElemType {
		return fmt.Errorf("array tagged arr[%s] holds a %T (use gguf.Array)", v.ElemType, v.data)
	}
	if s, ok := v.data.([]Value); ok {
		for i, e := range s {
			if e.Type != ValueArray {
				return fmt.Errorf("element %d of an array of arrays is a %s", i, e.Type)
			}
			if err := checkValue(e, depth+1); err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
		}
	}
	return nil
}

// AddTensor declares a tensor with dims in ggml order (fastest first) and
// returns its data offset.
func (w *Writer) AddTensor(name string, t TensorType, dims ...uint64) (uint64, error) {
	if w.started {
		return 0, errors.New("gguf: AddTensor after data was written")
	}
	if w.names[name] {
		return 0, fmt.Errorf("gguf: duplicate tensor name %q", name)
	}
	size, err := checkShape(name, t, dims)
	if err != nil {
		return 0, fmt.Errorf("gguf: %w", err)
	}
	if w.size > math.MaxInt64-w.alignment || size > math.MaxInt64-w.alignment-w.size {
		return 0, fmt.Errorf("gguf: tensor %q: data section would exceed 2^63 bytes", name)
	}
	ti := TensorInfo{Name: name, Type: t, Dims: append([]uint64(nil), dims...), Offset: w.size}
	w.names[name] = true
	w.tensors = append(w.tensors, ti)
	w.size = alignUp(w.size+size, w.alignment)
	return ti.Offset, nil
}

// WriteTensorData writes the data of the next declared tensor; len(data)
// must equal its size. The header is written on the first call.
func (w *Writer) WriteTensorData(data []byte) error {
	if err := w.start(); err != nil {
		return err
	}
	if w.next >= len(w.tensors) {
		return errors.New("gguf: more tensor data than declared tensors")
	}
	t := &w.tensors[w.next]
	if uint64(len(data)) != t.NumBytes() {
		return fmt.Errorf("gguf: tensor %q: got %d bytes, want %d", t.Name, len(data), t.NumBytes())
	}
	w.next++
	if _, err := w.w.Write(data); err != nil {
		return w.fail(err)
	}
	return w.pad(uint64(len(data)))
}

// Close writes the header if needed and flushes; it fails if some declared
// tensor got no data. It does not close the underlying writer.
func (w *Writer) Close() error {
	if err := w.start(); err != nil {
		return err
	}
	if w.next != len(w.tensors) {
		return fmt.Errorf("gguf: %d of %d tensors have no data", len(w.tensors)-w.next, len(w.tensors))
	}
	return w.fail(w.w.Flush())
}

func (w *Writer) fail(err error) error {
	if err != nil && w.err == nil {
		w.err = err
	}
	return err
}

func (w *Writer) pad(n uint64) error {
	var zeros [64]byte
	p := alignUp(n, w.alignment) - n
	for p > 0 {
		k := min(p, uint64(len(zeros)))
		if _, err := w.w.Write(zeros[:k]); err != nil {
			return w.fail(err)
		}
		p -= k
	}
	return nil
}

func (w *Writer) start() error {
	if w.err != nil {
		return w.err
	}
	if w.started {
		return nil
	}
	w.started = true
	if w.Version != 2 && w.Version != 3 {
		return w.fail(fmt.Errorf("gguf: cannot write version %d (only 2 and 3)", w.Version))
	}
	e := &encoder{}
	e.b = append(e.b, Magic...)
	e.u32(w.Version)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(w.kv)))
	for _, kv := range w.kv {
		e.str(kv.Key)
		e.u32(uint32(kv.Value.Type))
		if err := e.value(kv.Value); err != nil {
			return w.fail(fmt.Errorf("gguf: metadata %q: %w", kv.Key, err))
		}
	}
	for _, t := range w.tensors {
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(t.Offset)
	}
	if _, err := w.w.Write(e.b); err != nil {
		return w.fail(err)
	}
	return w.pad(uint64(len(e.b)))
}

type encoder struct{ b []byte }

func (e *encoder) u32(x uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, x) }
func (e *encoder) u64(x uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, x) }
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.b = append(e.b, s...) }

func (e *encoder) value(v Value) error {
	le := binary.LittleEndian
	switch x := v.data.(type) {
	case uint8:
		e.b = append(e.b, x)
	case int8:
		e.b = append(e.b, byte(x))
	case uint16:
		e.b = le.AppendUint16(e.b, x)
	case int16:
		e.b = le.AppendUint16(e.b, uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		if x {
			e.b = append(e.b, 1)
		} else {
			e.b = append(e.b, 0)
		}
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	default:
		if v.Type != ValueArray {
			return fmt.Errorf("value of type %T cannot be encoded", v.data)
		}
		return e.array(v)
	}
	return nil
}

func (e *encoder) array(v Value) error {
	e.u32(uint32(v.ElemType))
	e.u64(uint64(v.Len()))
	switch s := v.data.(type) {
	case []Value:
		for _, el := range s {
			if err := e.value(el); err != nil {
				return err
			}
		}
		return nil
	case []string:
		for _, x := range s {
			e.str(x)
		}
		return nil
	}
	// Fixed-size elements: encode each via the scalar path.
	n := v.Len()
	for i := 0; i < n; i++ {
		if err := e.value(Value{Type: v.ElemType, data: index(v.data, i)}); err != nil {
			return err
		}
	}
	return nil
}

func index(slice any, i int) any {
	switch s := slice.(type) {
	case []uint8:
		return s[i]
	case []int8:
		return s[i]
	case []uint16:
		return s[i]
	case []int16:
		return s[i]
	case []uint32:
		return s[i]
	case []int32:
		return s[i]
	case []float32:
		return s[i]
	case []bool:
		return s[i]
	case []uint64:
		return s[i]
	case []int64:
		return s[i]
	case []float64:
		return s[i]
	}
	return nil
}

// WriteFile writes a copy of f (metadata, tensor infos and data, in file
// order) to w.
func WriteFile(w io.Writer, f *File) error {
	gw := NewWriter(w)
	gw.Version = f.Version
	for _, kv := range f.KV {
		if err := gw.AddKV(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		off, err := gw.AddTensor(t.Name, t.Type, t.Dims...)
		if err != nil {
			return err
		}
		if off != t.Offset {
			return fmt.Errorf("gguf: tensor %q: file offset %d is not the packed offset %d; the copy would differ", t.Name, t.Offset, off)
		}
	}
	for i := range f.Tensors {
		if err := gw.WriteTensorData(f.TensorData(&f.Tensors[i])); err != nil {
			return err
		}
	}
	return gw.Close()
}
