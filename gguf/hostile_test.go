package gguf_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/glmrun/glmrun/gguf"
)

// hb hand-crafts GGUF bytes, little-endian.
type hb struct{ b []byte }

func header(version uint32, nTensors, nKV uint64) *hb {
	h := &hb{b: []byte("GGUF")}
	return h.u32(version).u64(nTensors).u64(nKV)
}

func (h *hb) u8(x uint8) *hb   { h.b = append(h.b, x); return h }
func (h *hb) u32(x uint32) *hb { h.b = binary.LittleEndian.AppendUint32(h.b, x); return h }
func (h *hb) u64(x uint64) *hb { h.b = binary.LittleEndian.AppendUint64(h.b, x); return h }
func (h *hb) str(s string) *hb { h.u64(uint64(len(s))); h.b = append(h.b, s...); return h }

// kv starts a key/value pair: key and value type; the value follows.
func (h *hb) kv(key string, t gguf.ValueType) *hb { return h.str(key).u32(uint32(t)) }

// tensor appends a tensor-info record.
func (h *hb) tensor(name string, t gguf.TensorType, offset uint64, dims ...uint64) *hb {
	h.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		h.u64(d)
	}
	return h.u32(uint32(t)).u64(offset)
}

// pad appends zeros up to a multiple of a, then n more zero bytes.
func (h *hb) pad(a, n int) *hb {
	for len(h.b)%a != 0 {
		h.b = append(h.b, 0)
	}
	h.b = append(h.b, make([]byte, n)...)
	return h
}

// bytes returns the buffer with capacity equal to its length, so a read past
// the end panics instead of reading spare capacity.
func (h *hb) bytes() []byte { return h.b[:len(h.b):len(h.b)] }

// wantFormatErr parses b and requires an ErrFormat error whose message holds
// every one of subs.
func wantFormatErr(t *testing.T, b []byte, subs ...string) {
	t.Helper()
	f, err := gguf.Parse(b[:len(b):len(b)])
	if err == nil {
		t.Fatalf("Parse succeeded (%d tensors, %d kv), want an error containing %q", len(f.Tensors), len(f.KV), subs)
	}
	if !errors.Is(err, gguf.ErrFormat) {
		t.Fatalf("error %q does not wrap ErrFormat", err)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q does not mention %q", err, s)
		}
	}
}

// hostileCase is a malformed file and the substrings its error must hold.
type hostileCase struct {
	name string
	b    []byte
	subs []string
}

// hostileCases are hand-crafted malformed headers; FuzzParse seeds from them.
func hostileCases() []hostileCase {
	const huge = uint64(1) << 60
	nest := func(depth int) []byte {
		h := header(3, 0, 1).kv("deep", gguf.ValueArray)
		for range depth - 1 {
			h.u32(uint32(gguf.ValueArray)).u64(1)
		}
		return h.u32(uint32(gguf.ValueUint8)).u64(1).u8(7).bytes()
	}
	return []hostileCase{
		{"empty", nil, []string{"truncated reading magic"}},
		{"short magic", []byte("GG"), []string{"magic"}},
		{"bad magic", append([]byte("GGML"), make([]byte, 20)...), []string{"bad magic", `"GGML"`}},
		{"version 0", header(0, 0, 0).bytes(), []string{"unsupported version 0"}},
		{"version 1", header(1, 0, 0).bytes(), []string{"unsupported version 1"}},
		{"version 4", header(4, 0, 0).bytes(), []string{"unsupported version 4"}},
		{"big-endian v3", header(3<<24, 0, 0).bytes(), []string{"big-endian"}},
		{"no version", []byte("GGUF\x03\x00"), []string{"version"}},
		{"no tensor count", header(3, 0, 0).bytes()[:12], []string{"tensor count"}},
		{"no metadata count", header(3, 0, 0).bytes()[:20], []string{"metadata count"}},
		{"absurd tensor count", header(3, huge, 0).bytes(), []string{"tensor count 1152921504606846976"}},
		{"absurd kv count", header(3, 0, huge).bytes(), []string{"metadata count 1152921504606846976"}},
		{"max kv count", header(3, 0, math.MaxUint64).pad(1, 100).bytes(), []string{"metadata count"}},
		{"absurd key length", header(3, 0, 1).u64(huge).pad(1, 16).bytes(), []string{"metadata key #0", "string length 1152921504606846976"}},
		{"key length max", header(3, 0, 1).u64(math.MaxUint64).pad(1, 16).bytes(), []string{"metadata key #0", "string length"}},
		{"truncated key", header(3, 0, 1).u64(20).pad(1, 10).bytes(), []string{"metadata key #0", "string length 20"}},
		{"missing value type", header(3, 0, 1).str("kkkkkkkk").bytes(), []string{`type of metadata "kkkkkkkk"`, "truncated"}},
		{"absurd string value", header(3, 0, 1).kv("name", gguf.ValueString).u64(1<<63).pad(1, 8).bytes(), []string{`value of "name"`, "string length 9223372036854775808"}},
		{"truncated scalar", header(3, 0, 1).kv("n", gguf.ValueUint64).u32(1).bytes(), []string{`value of "n"`, "truncated"}},
		{"unknown value type", header(3, 0, 1).kv("odd", 13).u32(0).bytes(), []string{`metadata "odd"`, "unknown value type 13"}},
		{"unknown value type max", header(3, 0, 1).kv("odd", math.MaxUint32).u32(0).bytes(), []string{`"odd"`, "unknown value type 4294967295"}},
		{"unknown array element type", header(3, 0, 1).kv("arr", gguf.ValueArray).u32(99).u64(1).u32(0).bytes(), []string{`metadata "arr"`, "unknown array element type 99"}},
		{"absurd array length", header(3, 0, 1).kv("arr", gguf.ValueArray).u32(uint32(gguf.ValueUint32)).u64(huge).pad(1, 64).bytes(), []string{`"arr"`, "array length 1152921504606846976"}},
		{"absurd string array length", header(3, 0, 1).kv("toks", gguf.ValueArray).u32(uint32(gguf.ValueString)).u64(math.MaxUint64).pad(1, 64).bytes(), []string{`"toks"`, "array length"}},
		{"array element string too long", header(3, 0, 1).kv("toks", gguf.ValueArray).u32(uint32(gguf.ValueString)).u64(2).str("ok").u64(1 << 40).bytes(), []string{`element 1 of array "toks"`, "string length 1099511627776"}},
		{"array element string length cut", header(3, 0, 1).kv("toks", gguf.ValueArray).u32(uint32(gguf.ValueString)).u64(2).str("0123456789").u32(1).bytes(), []string{`length of element 1 of array "toks"`, "truncated"}},
		{"array elements truncated", header(3, 0, 1).kv("xs", gguf.ValueArray).u32(uint32(gguf.ValueUint16)).u64(3).u32(0).bytes(), []string{`metadata "xs"`, "array length 3 exceeds what 4 remaining bytes"}},
		{"nested array too deep", nest(9), []string{`metadata "deep"`, "nested deeper than 8"}},
		{"nested array absurd inner length", header(3, 0, 1).kv("nn", gguf.ValueArray).u32(uint32(gguf.ValueArray)).u64(1).u32(uint32(gguf.ValueFloat64)).u64(huge).bytes(), []string{`"nn"`, "array length 1152921504606846976"}},
		{"bool byte 2", header(3, 0, 1).kv("flag", gguf.ValueBool).u8(2).bytes(), []string{`metadata "flag"`, "bool byte 2"}},
		{"bool array byte 255", header(3, 0, 1).kv("flags", gguf.ValueArray).u32(uint32(gguf.ValueBool)).u64(3).u8(0).u8(1).u8(255).bytes(), []string{`array "flags"`, "element 2", "bool byte 255"}},
		{"duplicate key", header(3, 0, 2).kv("a", gguf.ValueUint8).u8(1).kv("a", gguf.ValueUint8).u8(2).bytes(), []string{`duplicate metadata key "a"`}},
		{"alignment not power of two", header(3, 0, 1).kv("general.alignment", gguf.ValueUint32).u32(48).bytes(), []string{"general.alignment 48", "power of two"}},
		{"alignment zero", header(3, 0, 1).kv("general.alignment", gguf.ValueUint32).u32(0).bytes(), []string{"general.alignment 0"}},
		{"alignment u64", header(3, 0, 1).kv("general.alignment", gguf.ValueUint64).u64(32).bytes(), []string{"general.alignment", "type u64, want u32"}},
		{"alignment string", header(3, 0, 1).kv("general.alignment", gguf.ValueString).str("32").bytes(), []string{"general.alignment", "type str"}},
		{"alignment array", header(3, 0, 1).kv("general.alignment", gguf.ValueArray).u32(uint32(gguf.ValueUint32)).u64(1).u32(32).bytes(), []string{"general.alignment", "type arr[u32]"}},
		{"absurd tensor name", header(3, 1, 0).u64(huge).pad(1, 32).bytes(), []string{"name of tensor #0", "string length"}},
		{"too many dims", header(3, 1, 0).tensor("w", gguf.TypeF32, 0, 1, 1, 1, 1, 1).pad(32, 64).bytes(), []string{`tensor "w"`, "5 dimensions (max 4)"}},
		{"absurd dims count", header(3, 1, 0).str("w").u32(math.MaxUint32).pad(1, 64).bytes(), []string{`tensor "w"`, "4294967295 dimensions"}},
		{"truncated dims", header(3, 1, 0).str("wwwwwwww").u32(2).u64(4).bytes(), []string{`dimension 1 of tensor "wwwwwwww"`, "truncated"}},
		{"unknown tensor type", header(3, 1, 0).tensor("w", 99999, 0, 4).pad(32, 64).bytes(), []string{`tensor "w"`, "unknown tensor type 99999"}},
		{"retired tensor type", header(3, 1, 0).tensor("w", 4, 0, 32).pad(32, 64).bytes(), []string{`tensor "w"`, "unknown tensor type 4"}},
		{"ne0 not block multiple", header(3, 1, 0).tensor("w", gguf.TypeQ4_K, 0, 100, 2).pad(32, 1024).bytes(), []string{`tensor "w"`, "100 elements", "q4_K block size 256"}},
		{"zero-dim block tensor", header(3, 1, 0).tensor("s", gguf.TypeQ8_0, 0).pad(32, 64).bytes(), []string{`tensor "s"`, "q8_0 block size 32"}},
		{"dim over int64", header(3, 1, 0).tensor("w", gguf.TypeF32, 0, 1<<63).pad(32, 64).bytes(), []string{`tensor "w"`, "dimension 0", "overflows int64"}},
		{"element count overflow", header(3, 1, 0).tensor("w", gguf.TypeF32, 0, 1<<32, 1<<32).pad(32, 64).bytes(), []string{`tensor "w"`, "overflows the element count"}},
		{"element count overflow 4d", header(3, 1, 0).tensor("w", gguf.TypeI8, 0, 1<<16, 1<<16, 1<<16, 1<<16).pad(32, 64).bytes(), []string{`tensor "w"`, "overflows the element count"}},
		{"byte size overflow", header(3, 1, 0).tensor("w", gguf.TypeF64, 0, 1<<31, 1<<31).pad(32, 64).bytes(), []string{`tensor "w"`, "byte size", "overflows"}},
		{"1-D byte size overflow", header(3, 1, 0).tensor("w", gguf.TypeF64, 0, 1<<62).pad(32, 64).bytes(), []string{`tensor "w"`, "overflows the byte size"}},
		{"1-D block byte size overflow", header(3, 1, 0).tensor("w", gguf.TypeQ8_K, 0, 1<<63-256).pad(32, 64).bytes(), []string{`tensor "w"`, "overflows the byte size"}},
		{"truncated tensor type", header(3, 1, 0).str("wwwwwwww").u32(1).u64(4).bytes(), []string{`type of tensor "wwwwwwww"`, "truncated"}},
		{"truncated tensor offset", header(3, 1, 0).str("w").u32(1).u64(4).u32(0).u32(0).bytes(), []string{`offset of tensor "w"`}},
		{"misaligned offset", header(3, 2, 0).tensor("a", gguf.TypeF32, 0, 8).tensor("b", gguf.TypeF32, 40, 8).pad(32, 128).bytes(), []string{`tensor "b"`, "offset 40", "alignment 32"}},
		{"misaligned offset custom alignment", header(3, 1, 1).kv("general.alignment", gguf.ValueUint32).u32(64).tensor("a", gguf.TypeF32, 32, 8).pad(64, 128).bytes(), []string{`tensor "a"`, "offset 32", "alignment 64"}},
		{"duplicate tensor name", header(3, 2, 0).tensor("t", gguf.TypeF32, 0, 8).tensor("t", gguf.TypeF32, 32, 8).pad(32, 64).bytes(), []string{`duplicate tensor name "t"`}},
		{"tensor past end", header(3, 1, 0).tensor("t", gguf.TypeF32, 0, 9).pad(32, 32).bytes(), []string{`tensor "t"`, "past its end"}},
		{"tensor offset past end", header(3, 1, 0).tensor("t", gguf.TypeF32, 64, 1).pad(32, 32).bytes(), []string{`tensor "t"`, "past its end"}},
		{"tensor offset wraps", header(3, 1, 0).tensor("t", gguf.TypeF32, math.MaxUint64-31, 8).pad(32, 64).bytes(), []string{`tensor "t"`, "past its end"}},
		{"tensor offset near 2^63", header(3, 1, 0).tensor("t", gguf.TypeF32, 1<<63, 8).pad(32, 64).bytes(), []string{`tensor "t"`, "past its end"}},
		{"huge tensor small file", header(3, 1, 0).tensor("t", gguf.TypeF32, 0, 1<<40, 1<<20).pad(32, 64).bytes(), []string{`tensor "t"`, "past its end"}},
		{"no data section", header(3, 1, 0).tensor("t", gguf.TypeF32, 0, 0).bytes(), []string{"data section starts at"}},
		{"overlapping tensors", header(3, 2, 0).tensor("a", gguf.TypeF32, 0, 16).tensor("b", gguf.TypeF32, 32, 16).pad(32, 128).bytes(), []string{`tensor "b"`, `overlaps tensor "a"`}},
		{"same offset", header(3, 2, 0).tensor("a", gguf.TypeF32, 32, 8).tensor("b", gguf.TypeF32, 32, 8).pad(32, 128).bytes(), []string{"overlaps"}},
		{"overlap out of order", header(3, 3, 0).tensor("c", gguf.TypeF32, 64, 8).tensor("a", gguf.TypeF32, 0, 8).tensor("b", gguf.TypeF32, 32, 9).pad(32, 128).bytes(), []string{`tensor "c"`, `overlaps tensor "b"`}},
	}
}

func TestParseHostileHeaders(t *testing.T) {
	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) { wantFormatErr(t, c.b, c.subs...) })
	}
}

// Valid edge cases the hostile checks must not reject.
func TestParseValidEdgeCases(t *testing.T) {
	// Zero-size tensors may share an offset with anything; an empty file
	// body after the header is fine when there are no tensors.
	b := header(3, 3, 0).
		tensor("empty", gguf.TypeQ4_K, 0, 256, 0).
		tensor("a", gguf.TypeF32, 0, 8).
		tensor("z", gguf.TypeF32, 32, 0, 7).pad(32, 64).bytes()
	f, err := gguf.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(f.TensorData(&f.Tensors[0])); got != 0 {
		t.Fatalf("empty tensor has %d bytes", got)
	}
	if got := len(f.TensorData(&f.Tensors[1])); got != 32 {
		t.Fatalf("tensor a has %d bytes, want 32", got)
	}
	// A tensor ending exactly at the end of the file (no trailing padding).
	b = header(3, 1, 0).tensor("t", gguf.TypeF32, 0, 3).pad(32, 12).bytes()
	if f, err = gguf.Parse(b); err != nil {
		t.Fatal(err)
	}
	if d := f.TensorData(&f.Tensors[0]); len(d) != 12 || cap(d) != 12 {
		t.Fatalf("TensorData len %d cap %d, want 12/12", len(d), cap(d))
	}
	// No tensors and no padding after the header.
	if _, err := gguf.Parse(header(3, 0, 0).bytes()); err != nil {
		t.Fatal(err)
	}
	// A 0-dim f32 tensor is one element.
	b = header(3, 1, 0).tensor("s", gguf.TypeF32, 0).pad(32, 4).bytes()
	if f, err = gguf.Parse(b); err != nil || f.Tensors[0].NumBytes() != 4 || f.Tensors[0].NumElements() != 1 {
		t.Fatalf("0-dim tensor: err %v", err)
	}
	// Nested arrays within the depth limit parse.
	h := header(3, 0, 1).kv("deep", gguf.ValueArray)
	for range 7 {
		h.u32(uint32(gguf.ValueArray)).u64(1)
	}
	h.u32(uint32(gguf.ValueUint8)).u64(1).u8(7)
	if _, err := gguf.Parse(h.bytes()); err != nil {
		t.Fatalf("8-deep nested array: %v", err)
	}
}

// syntheticFile writes a small valid file with every value type and tensors
// of several shapes and types; it returns the bytes and the number of bytes
// a prefix needs for every tensor to be in bounds.
func syntheticFile(t testing.TB) (data []byte, need int) {
	t.Helper()
	var buf bytes.Buffer
	w := gguf.NewWriter(&buf)
	for _, kv := range allValueKVs() {
		if err := w.AddKV(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	shapes := []struct {
		name string
		ty   gguf.TensorType
		dims []uint64
	}{
		{"scalar", gguf.TypeF32, nil},
		{"vec", gguf.TypeF16, []uint64{7}},
		{"mat.q4_k", gguf.TypeQ4_K, []uint64{256, 2}},
		{"cube.q8_0", gguf.TypeQ8_0, []uint64{32, 2, 3}},
		{"hyper.bf16", gguf.TypeBF16, []uint64{3, 2, 2, 2}},
		{"empty", gguf.TypeF32, []uint64{4, 0}},
		{"last.i32", gguf.TypeI32, []uint64{5}},
	}
	var datas [][]byte
	for i, s := range shapes {
		if _, err := w.AddTensor(s.name, s.ty, s.dims...); err != nil {
			t.Fatal(err)
		}
		ti := gguf.TensorInfo{Type: s.ty, Dims: s.dims}
		d := make([]byte, ti.NumBytes())
		for j := range d {
			d[j] = byte(i*31 + j)
		}
		datas = append(datas, d)
	}
	for _, d := range datas {
		if err := w.WriteTensorData(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if end := int(f.DataOffset + ti.Offset + ti.NumBytes()); end > need {
			need = end
		}
	}
	return buf.Bytes(), need
}

// Every prefix of a valid file must fail cleanly (or, once all tensor data
// is present, parse); none may panic or read past the end of the slice.
func TestParseEveryTruncation(t *testing.T) {
	data, need := syntheticFile(t)
	full, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if need <= int(full.DataOffset) || need > len(data) {
		t.Fatalf("bad synthetic file: need %d, data offset %d, len %d", need, full.DataOffset, len(data))
	}
	for cut := 0; cut < len(data); cut++ {
		b := bytes.Clone(data[:cut])
		f, err := gguf.Parse(b[:cut:cut])
		if cut < need {
			if err == nil {
				t.Fatalf("prefix of %d bytes (of %d; tensors need %d) parsed", cut, len(data), need)
			}
			if !errors.Is(err, gguf.ErrFormat) {
				t.Fatalf("prefix %d: error %q does not wrap ErrFormat", cut, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("prefix %d holds every tensor but failed: %v", cut, err)
		}
		if len(f.Tensors) != len(full.Tensors) {
			t.Fatalf("prefix %d: %d tensors, want %d", cut, len(f.Tensors), len(full.Tensors))
		}
	}
	// Truncation inside the data section names the tensor cut off.
	last := &full.Tensors[len(full.Tensors)-1]
	wantFormatErr(t, data[:need-1], `tensor "`+last.Name+`"`, "past its end")
}

// The same through Open, whose bytes come from mmap.
func TestOpenTruncated(t *testing.T) {
	data, need := syntheticFile(t)
	dir := t.TempDir()
	for _, cut := range []int{0, 3, 4, 23, 24, 100, need - 1, need, len(data)} {
		p := filepath.Join(dir, "cut.gguf")
		if err := os.WriteFile(p, data[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(p)
		if cut < need {
			if err == nil || !errors.Is(err, gguf.ErrFormat) || !strings.Contains(err.Error(), p) {
				t.Fatalf("Open of %d-byte prefix: err %v, want ErrFormat naming the path", cut, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Open of %d-byte prefix: %v", cut, err)
		}
		for i := range f.Tensors {
			d := f.TensorData(&f.Tensors[i])
			if !bytes.Equal(d, data[f.DataOffset+f.Tensors[i].Offset:][:len(d)]) {
				t.Fatalf("tensor %s: mapped bytes differ", f.Tensors[i].Name)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := gguf.Open(filepath.Join(dir, "missing.gguf")); err == nil || errors.Is(err, gguf.ErrFormat) {
		t.Fatalf("Open of a missing file: err %v, want a non-format error", err)
	}
}

// bytesAllocated returns the bytes allocated while fn runs.
func bytesAllocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A header may claim any count; Parse must not allocate in proportion to
// the claim, only to bytes it has actually parsed.
func TestParseClaimsAllocateNothingBig(t *testing.T) {
	const body = 8 << 20 // junk after the claim: 0xff bytes
	junk := bytes.Repeat([]byte{0xff}, body)
	withJunk := func(h *hb) []byte { return append(h.b, junk...)[: len(h.b)+body : len(h.b)+body] }
	rem := uint64(body)
	cases := []struct {
		name string
		b    []byte
	}{
		{"2^60 u32 elements", withJunk(header(3, 0, 1).kv("a", gguf.ValueArray).u32(uint32(gguf.ValueUint32)).u64(1 << 60))},
		{"2^60 strings", withJunk(header(3, 0, 1).kv("a", gguf.ValueArray).u32(uint32(gguf.ValueString)).u64(1 << 60))},
		{"2^60 tensors", withJunk(header(3, 1<<60, 0))},
		{"2^60 kvs", withJunk(header(3, 0, 1<<60))},
		{"2^60 byte string", withJunk(header(3, 0, 1).kv("s", gguf.ValueString).u64(1 << 60))},
		// Claims that fit the remaining bytes but whose first element is junk.
		{"plausible string count", withJunk(header(3, 0, 1).kv("a", gguf.ValueArray).u32(uint32(gguf.ValueString)).u64(rem / 8))},
		{"plausible nested count", withJunk(header(3, 0, 1).kv("a", gguf.ValueArray).u32(uint32(gguf.ValueArray)).u64(rem / 12))},
		{"plausible kv count", withJunk(header(3, 0, rem/13))},
		{"plausible tensor count", withJunk(header(3, rem/24, 0))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			n := bytesAllocated(func() { _, err = gguf.Parse(c.b) })
			if !errors.Is(err, gguf.ErrFormat) {
				t.Fatalf("err %v, want ErrFormat", err)
			}
			if n > 1<<20 {
				t.Fatalf("Parse allocated %d bytes for a %d-byte input that it rejected", n, len(c.b))
			}
		})
	}
	allocs := testing.AllocsPerRun(10, func() { _, _ = gguf.Parse(cases[0].b) })
	if allocs > 64 {
		t.Fatalf("rejecting a 2^60-element claim took %.0f allocations", allocs)
	}
}

// A v2 file crafted byte by byte (not by Writer) parses, and Writer produces
// exactly these bytes from the same content.
func TestHandCraftedV2(t *testing.T) {
	want := header(2, 2, 2).
		kv("general.name", gguf.ValueString).str("v2").
		kv("xs", gguf.ValueArray).u32(uint32(gguf.ValueInt16)).u64(2).u32(0xffff0001).
		tensor("a", gguf.TypeF32, 0, 3).
		tensor("b", gguf.TypeQ8_0, 32, 32, 2).pad(32, 0)
	want.b = append(want.b, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}...)
	want.pad(32, 0)
	q8 := bytes.Repeat([]byte{0x5a}, 68)
	want.b = append(want.b, q8...)
	want.pad(32, 0)
	b := want.bytes()

	f, err := gguf.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	name, err := f.String("general.name")
	if err != nil || name != "v2" || f.Version != 2 {
		t.Fatalf("name %q v%d err %v", name, f.Version, err)
	}
	if xs := f.KV[1].Value.Any().([]int16); len(xs) != 2 || xs[0] != 1 || xs[1] != -1 {
		t.Fatalf("xs = %v, want [1 -1]", xs)
	}
	if d := f.TensorData(&f.Tensors[1]); !bytes.Equal(d, q8) {
		t.Fatalf("tensor b data %x", d)
	}

	var buf bytes.Buffer
	w := gguf.NewWriter(&buf)
	w.Version = 2
	_ = w.AddKV("general.name", gguf.String("v2"))
	_ = w.AddKV("xs", gguf.Array([]int16{1, -1}))
	_, _ = w.AddTensor("a", gguf.TypeF32, 3)
	_, _ = w.AddTensor("b", gguf.TypeQ8_0, 32, 2)
	_ = w.WriteTensorData([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	_ = w.WriteTensorData(q8)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), b) {
		t.Fatalf("Writer output differs from the hand-crafted file:\n got %x\nwant %x", buf.Bytes(), b)
	}
}
