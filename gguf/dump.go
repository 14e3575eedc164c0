package gguf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"
)

// Dump limits. Text mode abbreviates; JSON keeps arrays of up to
// dumpJSONMaxArray elements whole and summarises longer ones by their first
// dumpJSONHead elements (Dump's doc states these numbers).
const (
	dumpTextMaxString = 80 // bytes of a string value shown in text mode
	dumpTextMaxElem   = 32 // bytes of a string array element shown in text mode
	dumpTextHead      = 8  // array elements shown in text mode, per value
	dumpJSONMaxArray  = 64
	dumpJSONHead      = 8
)

// Dump describes f, read from path (shown as given), like llama.cpp's
// gguf_dump.py.
//
// Text mode (asJSON false) prints the version, alignment, data offset and
// file size; every metadata key in file order with its type ("u32", "str",
// "arr[str]", ...) and value, strings quoted and cut to 80 bytes with their
// length, arrays as their first 8 elements and their length; then one row
// per tensor: index, name, type, shape in ggml ne order (fastest dimension
// first), absolute file offset, offset relative to the data section, and
// size in bytes; then totals (tensor count, bytes, parameters).
//
// JSON mode writes one object:
//
//	{"path": str, "version": n, "alignment": n, "data_offset": n, "file_size": n,
//	 "metadata": {key: {"type": "u32", "value": 7}, ...},   // keys in file order
//	 "tensors": [{"index", "name", "type", "shape", "offset", "rel_offset", "bytes", "n_elements"}, ...],
//	 "tensor_count": n, "total_bytes": n, "total_parameters": n}
//
// An array entry is {"type": "arr[T]", "len": N, "value": [...]} when
// N <= 64 and {"type": "arr[T]", "len": N, "head": [first 8]} otherwise;
// an array of arrays holds its inner arrays the same way (a JSON array, or
// {"type","len","head"} when longer than 64). "offset" is the absolute file
// offset of a tensor's data, "rel_offset" the GGUF tensor-info offset
// (relative to data_offset). Non-finite floats are the strings "NaN",
// "+Inf" and "-Inf"; strings are complete.
func Dump(w io.Writer, f *File, path string, asJSON bool) error {
	if asJSON {
		return dumpJSON(w, f, path)
	}
	return dumpText(w, f, path)
}

// elemAt returns element i of array v as a Go scalar, or a Value for an
// array of arrays.
func elemAt(v Value, i int) any {
	switch s := v.data.(type) {
	case []string:
		return s[i]
	case []Value:
		return s[i]
	}
	return index(v.data, i)
}

func tensorTotals(f *File) (bytes, params uint64) {
	for i := range f.Tensors {
		bytes += f.Tensors[i].NumBytes()
		params += f.Tensors[i].NumElements()
	}
	return bytes, params
}

// ---- text ----

func dumpText(w io.Writer, f *File, path string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("GGUF file:\t%s\n", path)
	p("version:\t%d\n", f.Version)
	p("alignment:\t%d\n", f.Alignment)
	p("data offset:\t%d (0x%x)\n", f.DataOffset, f.DataOffset)
	p("file size:\t%d bytes (%s)\n", f.Size(), humanBytes(uint64(f.Size())))
	if err := tw.Flush(); err != nil {
		return err
	}

	p("\nmetadata: %d keys\n", len(f.KV))
	for i, kv := range f.KV {
		budget := dumpTextHead * 4
		p("%5d\t%s\t%s\t= %s\n", i, sanitizeKey(kv.Key), typeName(kv.Value), textValue(kv.Value, &budget))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	p("\ntensors: %d\n", len(f.Tensors))
	if len(f.Tensors) > 0 {
		p("%5s\t%s\t%s\t%s\t%s\t%s\t%s\n", "#", "name", "type", "shape", "offset", "rel_offset", "bytes")
	}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		p("%5d\t%s\t%s\t%s\t%d\t%d\t%d\n", i, sanitizeKey(t.Name), t.Type, shapeString(t.Dims), f.DataOffset+t.Offset, t.Offset, t.NumBytes())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	nb, np := tensorTotals(f)
	p("\ntotals: %d tensors, %d bytes (%s), %d parameters (%s)\n", len(f.Tensors), nb, humanBytes(nb), np, humanCount(np))
	return tw.Flush()
}

// sanitizeKey quotes a key or tensor name only if it holds characters that
// would break the table (tabs, newlines, non-printing or invalid UTF-8).
func sanitizeKey(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || !strconv.IsPrint(r) || r == ' ' {
			return strconv.Quote(s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}

func shapeString(dims []uint64) string {
	parts := make([]string, len(dims))
	for i, d := range dims {
		parts[i] = strconv.FormatUint(d, 10)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// quoteCut quotes s, cut to at most max bytes on a rune boundary; a cut
// string is followed by its full length.
func quoteCut(s string, max int) string {
	if len(s) <= max {
		return strconv.Quote(s)
	}
	k := max
	for k > 0 && !utf8.RuneStart(s[k]) {
		k--
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(s[:k]), len(s))
}

// textValue renders v for text mode. budget bounds the array elements shown
// across all nesting levels, so nested arrays stay one short line.
func textValue(v Value, budget *int) string {
	if v.Type != ValueArray {
		return textScalar(v.data, dumpTextMaxString)
	}
	n := v.Len()
	var b strings.Builder
	b.WriteByte('[')
	shown := 0
	for i := 0; i < n && shown < dumpTextHead && *budget > 0; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		*budget--
		shown++
		switch e := elemAt(v, i).(type) {
		case Value:
			b.WriteString(textValue(e, budget))
		default:
			b.WriteString(textScalar(e, dumpTextMaxElem))
		}
	}
	if shown < n {
		if shown > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "... %d more", n-shown)
	}
	b.WriteByte(']')
	if n > shown {
		fmt.Fprintf(&b, " (len %d)", n)
	}
	return b.String()
}

func textScalar(x any, maxStr int) string {
	switch x := x.(type) {
	case string:
		return quoteCut(x, maxStr)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Sprint(x)
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	x, i := float64(n), -1
	for x >= unit && i < 5 {
		x /= unit
		i++
	}
	return fmt.Sprintf("%.2f %ciB", x, "KMGTPE"[i])
}

func humanCount(n uint64) string {
	switch {
	case n >= 1e12:
		return fmt.Sprintf("%.2f T", float64(n)/1e12)
	case n >= 1e9:
		return fmt.Sprintf("%.2f B", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2f M", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.2f K", float64(n)/1e3)
	}
	return strconv.FormatUint(n, 10)
}

// ---- JSON ----

type dumpJSONFile struct {
	Path            string           `json:"path"`
	Version         uint32           `json:"version"`
	Alignment       uint64           `json:"alignment"`
	DataOffset      uint64           `json:"data_offset"`
	FileSize        int64            `json:"file_size"`
	Metadata        orderedMetadata  `json:"metadata"`
	Tensors         []dumpJSONTensor `json:"tensors"`
	TensorCount     int              `json:"tensor_count"`
	TotalBytes      uint64           `json:"total_bytes"`
	TotalParameters uint64           `json:"total_parameters"`
}

type dumpJSONTensor struct {
	Index     int      `json:"index"`
	Name      string   `json:"name"`
	Type      string   `json:"type"`
	Shape     []uint64 `json:"shape"`
	Offset    uint64   `json:"offset"`
	RelOffset uint64   `json:"rel_offset"`
	Bytes     uint64   `json:"bytes"`
	NElements uint64   `json:"n_elements"`
}

// dumpJSONEntry is one metadata value: Value for scalars and short arrays,
// Len and Head for long arrays.
type dumpJSONEntry struct {
	Type  string `json:"type"`
	Len   *int   `json:"len,omitempty"`
	Value any    `json:"value,omitempty"`
	Head  []any  `json:"head,omitempty"`
}

// orderedMetadata marshals as a JSON object whose keys keep file order.
type orderedMetadata []KV

func (m orderedMetadata) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	b.WriteByte('{')
	for i, kv := range m {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := enc.Encode(kv.Key); err != nil {
			return nil, err
		}
		b.WriteByte(':')
		if err := enc.Encode(jsonEntry(kv.Value)); err != nil {
			return nil, fmt.Errorf("metadata %q: %w", kv.Key, err)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func jsonEntry(v Value) dumpJSONEntry {
	e := dumpJSONEntry{Type: typeName(v)}
	if v.Type != ValueArray {
		e.Value = jsonScalar(v.data)
		return e
	}
	n := v.Len()
	e.Len = &n
	if n > dumpJSONMaxArray {
		e.Head = jsonElems(v, dumpJSONHead)
	} else {
		e.Value = jsonElems(v, n)
	}
	return e
}

// jsonElems returns the first n elements of array v as JSON-ready values.
func jsonElems(v Value, n int) []any {
	out := make([]any, n)
	for i := range out {
		switch e := elemAt(v, i).(type) {
		case Value:
			if e.Len() > dumpJSONMaxArray {
				out[i] = jsonEntry(e)
			} else {
				out[i] = jsonElems(e, e.Len())
			}
		default:
			out[i] = jsonScalar(e)
		}
	}
	return out
}

// jsonScalar maps non-finite floats, which JSON cannot hold, to strings.
func jsonScalar(x any) any {
	var f float64
	switch y := x.(type) {
	case float32:
		f = float64(y)
	case float64:
		f = y
	default:
		return x
	}
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return x
}

func dumpJSON(w io.Writer, f *File, path string) error {
	nb, np := tensorTotals(f)
	d := dumpJSONFile{
		Path: path, Version: f.Version, Alignment: f.Alignment, DataOffset: f.DataOffset, FileSize: f.Size(),
		Metadata: orderedMetadata(f.KV), Tensors: make([]dumpJSONTensor, len(f.Tensors)),
		TensorCount: len(f.Tensors), TotalBytes: nb, TotalParameters: np,
	}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		shape := append([]uint64{}, t.Dims...)
		d.Tensors[i] = dumpJSONTensor{Index: i, Name: t.Name, Type: t.Type.String(), Shape: shape,
			Offset: f.DataOffset + t.Offset, RelOffset: t.Offset, Bytes: t.NumBytes(), NElements: t.NumElements()}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}
