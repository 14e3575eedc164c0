package quantize

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// maxSafetensorsHeader bounds the JSON header a safetensors file may declare
// (safetensors itself limits it to 100 MB).
const maxSafetensorsHeader = 100 << 20

// SafeTensorInfo describes one tensor of a safetensors file: its dtype
// ("U32", "F16", "BF16", "F32", "I32", ...), its row-major shape (slowest
// dimension first, the PyTorch order) and its byte range inside the data
// section.
type SafeTensorInfo struct {
	Name       string
	DType      string
	Shape      []int64
	Begin, End int64
}

// Elements returns the number of elements (1 for a scalar).
func (t SafeTensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// safetensorsDTypeSize is the element size of each dtype the reader accepts.
var safetensorsDTypeSize = map[string]int64{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
	"U16": 2, "I16": 2, "F16": 2, "BF16": 2,
	"U32": 4, "I32": 4, "F32": 4,
	"U64": 8, "I64": 8, "F64": 8,
}

// Safetensors is an open safetensors file: an 8-byte little-endian header
// length N, N bytes of JSON ({name: {dtype, shape, data_offsets: [begin,
// end]}, "__metadata__": {string: string}}), then the raw little-endian
// tensor data. Tensor bytes are read on demand.
type Safetensors struct {
	Path     string
	Metadata map[string]string
	Tensors  map[string]SafeTensorInfo
	fh       *os.File
	dataOff  int64
}

// OpenSafetensors opens path and validates its header: every dtype known,
// every shape non-negative, every byte range inside the file and exactly
// the size its shape and dtype imply.
func OpenSafetensors(path string) (*Safetensors, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	s, err := parseSafetensors(fh, path)
	if err != nil {
		fh.Close()
		return nil, err
	}
	return s, nil
}

func parseSafetensors(fh *os.File, path string) (*Safetensors, error) {
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	var lb [8]byte
	if _, err := io.ReadFull(fh, lb[:]); err != nil {
		return nil, fmt.Errorf("safetensors %s: reading the header length: %w", path, err)
	}
	n := binary.LittleEndian.Uint64(lb[:])
	if n > maxSafetensorsHeader || int64(n) > size-8 {
		return nil, fmt.Errorf("safetensors %s: header of %d bytes does not fit the %d-byte file", path, n, size)
	}
	hb := make([]byte, n)
	if _, err := io.ReadFull(fh, hb); err != nil {
		return nil, fmt.Errorf("safetensors %s: reading the header: %w", path, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hb, &raw); err != nil {
		return nil, fmt.Errorf("safetensors %s: header is not a JSON object: %w", path, err)
	}
	s := &Safetensors{Path: path, Tensors: map[string]SafeTensorInfo{}, fh: fh, dataOff: 8 + int64(n)}
	dataSize := size - s.dataOff
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &s.Metadata); err != nil {
				return nil, fmt.Errorf("safetensors %s: __metadata__ is not a string map: %w", path, err)
			}
			continue
		}
		var e struct {
			DType   string  `json:"dtype"`
			Shape   []int64 `json:"shape"`
			Offsets []int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("safetensors %s: tensor %q: %w", path, name, err)
		}
		es, ok := safetensorsDTypeSize[e.DType]
		if !ok {
			return nil, fmt.Errorf("safetensors %s: tensor %q has unknown dtype %q", path, name, e.DType)
		}
		if len(e.Offsets) != 2 {
			return nil, fmt.Errorf("safetensors %s: tensor %q: data_offsets must be [begin, end]", path, name)
		}
		numel := int64(1)
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && numel > math.MaxInt64/es/d) {
				return nil, fmt.Errorf("safetensors %s: tensor %q has bad shape %v", path, name, e.Shape)
			}
			numel *= d
		}
		b, en := e.Offsets[0], e.Offsets[1]
		if b < 0 || en < b || en > dataSize {
			return nil, fmt.Errorf("safetensors %s: tensor %q: data_offsets [%d, %d] outside the %d-byte data section", path, name, b, en, dataSize)
		}
		if en-b != numel*es {
			return nil, fmt.Errorf("safetensors %s: tensor %q: %s %v needs %d bytes, data_offsets span %d", path, name, e.DType, e.Shape, numel*es, en-b)
		}
		s.Tensors[name] = SafeTensorInfo{Name: name, DType: e.DType, Shape: e.Shape, Begin: b, End: en}
	}
	return s, nil
}

// Names returns the tensor names in sorted order.
func (s *Safetensors) Names() []string {
	out := make([]string, 0, len(s.Tensors))
	for n := range s.Tensors {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Read returns a copy of the bytes of tensor name.
func (s *Safetensors) Read(name string) ([]byte, error) {
	t, ok := s.Tensors[name]
	if !ok {
		return nil, fmt.Errorf("safetensors %s: no tensor %q", s.Path, name)
	}
	b := make([]byte, t.End-t.Begin)
	if _, err := s.fh.ReadAt(b, s.dataOff+t.Begin); err != nil {
		return nil, fmt.Errorf("safetensors %s: reading %q: %w", s.Path, name, err)
	}
	return b, nil
}

// Close closes the file.
func (s *Safetensors) Close() error { return s.fh.Close() }

// WriteSafetensors writes tensors (name -> dtype, shape, raw bytes) and
// metadata as a safetensors file to w, data in sorted name order. It exists
// for tests and small tools; the data must match each dtype and shape.
func WriteSafetensors(w io.Writer, tensors map[string]SafeTensorData, metadata map[string]string) error {
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	hdr := map[string]any{}
	if metadata != nil {
		hdr["__metadata__"] = metadata
	}
	var off int64
	for _, n := range names {
		t := tensors[n]
		es, ok := safetensorsDTypeSize[t.DType]
		if !ok {
			return fmt.Errorf("safetensors: tensor %q has unknown dtype %q", n, t.DType)
		}
		numel := int64(1)
		for _, d := range t.Shape {
			numel *= d
		}
		if int64(len(t.Data)) != numel*es {
			return fmt.Errorf("safetensors: tensor %q: %s %v needs %d bytes, got %d", n, t.DType, t.Shape, numel*es, len(t.Data))
		}
		hdr[n] = map[string]any{"dtype": t.DType, "shape": t.Shape, "data_offsets": []int64{off, off + int64(len(t.Data))}}
		off += int64(len(t.Data))
	}
	hb, err := json.Marshal(hdr)
	if err != nil {
		return err
	}
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	var lb [8]byte
	binary.LittleEndian.PutUint64(lb[:], uint64(len(hb)))
	if _, err := w.Write(lb[:]); err != nil {
		return err
	}
	if _, err := w.Write(hb); err != nil {
		return err
	}
	for _, n := range names {
		if _, err := w.Write(tensors[n].Data); err != nil {
			return err
		}
	}
	return nil
}

// SafeTensorData is one tensor for WriteSafetensors.
type SafeTensorData struct {
	DType string
	Shape []int64
	Data  []byte
}
