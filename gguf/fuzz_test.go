package gguf_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math/bits"
	"os"
	"testing"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/testdata"
)

var glmTinyFiles = []string{"glm-tiny-bf16.gguf", "glm-tiny-q4_k_m.gguf", "glm-tiny-q4_k_m-dequant-f32.gguf"}

// probeTB turns testdata's skip into a flag, so a fuzz target can fall back
// to synthetic seeds instead of skipping; failures (CI=true) still fail.
type probeTB struct {
	testing.TB
	missing bool
}

func (p *probeTB) Skipf(string, ...any) { p.missing = true }

// glmTinyBytes returns the contents of the glm-tiny files that are present.
func glmTinyBytes(tb testing.TB) [][]byte {
	var out [][]byte
	for _, name := range glmTinyFiles {
		p := &probeTB{TB: tb}
		path := testdata.GLMTiny(p, name)
		if p.missing {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// slimCopy rewrites f with its metadata, arrays cut to their first maxArray
// elements and strings to 256 bytes, and only the smallest tensor of each
// type if at most maxBytes (0 keeps no tensors): a realistic header small
// enough for the fuzzer to mutate and minimise quickly.
func slimCopy(tb testing.TB, f *gguf.File, maxBytes uint64, maxArray int) []byte {
	var buf bytes.Buffer
	w := gguf.NewWriter(&buf)
	w.Version = f.Version
	for _, kv := range f.KV {
		v := kv.Value
		switch x := v.Any().(type) {
		case string:
			v = gguf.String(x[:min(len(x), 256)])
		case []string:
			v = gguf.Array(x[:min(len(x), maxArray)])
		case []int32:
			v = gguf.Array(x[:min(len(x), maxArray)])
		case []float32:
			v = gguf.Array(x[:min(len(x), maxArray)])
		}
		if err := w.AddKV(kv.Key, v); err != nil {
			tb.Fatal(err)
		}
	}
	smallest := map[gguf.TensorType]*gguf.TensorInfo{}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		if s, ok := smallest[t.Type]; t.NumBytes() <= maxBytes && (!ok || t.NumBytes() < s.NumBytes()) {
			smallest[t.Type] = t
		}
	}
	var keep []*gguf.TensorInfo
	for i := range f.Tensors {
		if t := &f.Tensors[i]; smallest[t.Type] == t {
			keep = append(keep, t)
		}
	}
	for _, t := range keep {
		if _, err := w.AddTensor(t.Name, t.Type, t.Dims...); err != nil {
			tb.Fatal(err)
		}
	}
	for _, t := range keep {
		if err := w.WriteTensorData(f.TensorData(t)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// packedSize reports whether f's tensors sit at the offsets Writer would
// give them, and the size of the file WriteFile would write.
func packedSize(f *gguf.File) (uint64, bool) {
	align := f.Alignment
	var off uint64
	for i := range f.Tensors {
		t := &f.Tensors[i]
		if t.Offset != off {
			return 0, false
		}
		off = (off + t.NumBytes() + align - 1) / align * align
	}
	return f.DataOffset + off, true
}

// checkParsed asserts the invariants of a successfully parsed file.
func checkParsed(t *testing.T, data []byte, f *gguf.File) {
	t.Helper()
	if f.DataOffset%f.Alignment != 0 {
		t.Fatalf("data offset %d not aligned to %d", f.DataOffset, f.Alignment)
	}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		size := ti.NumBytes()
		start, c1 := bits.Add64(f.DataOffset, ti.Offset, 0)
		end, c2 := bits.Add64(start, size, 0)
		if c1 != 0 || c2 != 0 || end > uint64(len(data)) {
			t.Fatalf("tensor %q: [%d+%d, +%d) outside the %d-byte buffer", ti.Name, f.DataOffset, ti.Offset, size, len(data))
		}
		if got, ok := f.Tensor(ti.Name); !ok || got != ti {
			t.Fatalf("Tensor(%q) does not find tensor %d", ti.Name, i)
		}
		d := f.TensorData(ti)
		if uint64(len(d)) != size || uint64(cap(d)) != size {
			t.Fatalf("tensor %q: TensorData len %d cap %d, want %d", ti.Name, len(d), cap(d), size)
		}
		if size > 0 && &d[0] != &data[start] {
			t.Fatalf("tensor %q: TensorData does not alias the buffer at %d", ti.Name, start)
		}
	}
	for _, kv := range f.KV {
		if v, ok := f.Lookup(kv.Key); !ok || v.Type != kv.Value.Type {
			t.Fatalf("Lookup(%q) disagrees with KV", kv.Key)
		}
	}
}

// checkRewrite writes a parsed file with packed offsets back out and
// requires the copy to parse and rewrite to identical bytes.
func checkRewrite(t *testing.T, f *gguf.File, data []byte) {
	t.Helper()
	size, packed := packedSize(f)
	// Alignment padding alone can make a copy far larger than a tiny input
	// (no tensors, general.alignment 2^31); such files are legal but not
	// worth writing gigabytes for.
	if !packed || size > 4*uint64(len(data))+64<<10 {
		return
	}
	var out bytes.Buffer
	if err := gguf.WriteFile(&out, f); err != nil {
		t.Fatalf("WriteFile of a parsed file with packed offsets: %v", err)
	}
	g, err := gguf.Parse(out.Bytes())
	if err != nil {
		t.Fatalf("copy does not parse: %v", err)
	}
	if len(g.KV) != len(f.KV) || len(g.Tensors) != len(f.Tensors) || g.Version != f.Version || g.Alignment != f.Alignment {
		t.Fatalf("copy differs: %d kv %d tensors v%d align %d, want %d %d v%d %d",
			len(g.KV), len(g.Tensors), g.Version, g.Alignment, len(f.KV), len(f.Tensors), f.Version, f.Alignment)
	}
	for i := range f.Tensors {
		if !bytes.Equal(g.TensorData(&g.Tensors[i]), f.TensorData(&f.Tensors[i])) {
			t.Fatalf("tensor %q: copied data differs", f.Tensors[i].Name)
		}
	}
	var again bytes.Buffer
	if err := gguf.WriteFile(&again, g); err != nil {
		t.Fatalf("rewriting the copy: %v", err)
	}
	if !bytes.Equal(again.Bytes(), out.Bytes()) {
		t.Fatal("rewriting the copy changed its bytes")
	}
}

// FuzzParse feeds arbitrary bytes to Parse: it must never panic or read
// outside its input (the input's capacity equals its length), fail only
// with ErrFormat, and every file it accepts must hand out tensor data inside
// the buffer and, with packed offsets, survive WriteFile and a re-parse.
//
// Seeds: the glm-tiny files when ../shared is present (added at run time;
// too large to commit), slim copies of them (all metadata, a few small
// tensors), a synthetic file of every value type and several tensor shapes,
// and the hand-crafted hostile headers. Under -fuzz only seeds of a few KB
// are used: the fuzzer minimises every new input (for up to
// -fuzzminimizetime, 60 s by default), so big seeds (the glm-tiny files are
// 4-23 MB, their headers 75 KB) leave it minimising instead of fuzzing.
// Long runs go faster with -fuzzminimizetime 2s.
func FuzzParse(f *testing.F) {
	fuzzing := false
	if fl := flag.Lookup("test.fuzz"); fl != nil && fl.Value.String() != "" {
		fuzzing = true
	}
	for _, b := range glmTinyBytes(f) {
		g, err := gguf.Parse(b)
		if err != nil {
			f.Fatal(err)
		}
		if !fuzzing {
			f.Add(b)
			f.Add(slimCopy(f, g, 64<<10, 1<<20))
			f.Add(slimCopy(f, g, 2048, 8))
		}
		f.Add(slimCopy(f, g, 0, 3))
	}
	syn, _ := syntheticFile(f)
	f.Add(syn)
	for _, c := range hostileCases() {
		f.Add(c.b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		data = data[:len(data):len(data)]
		pf, err := gguf.Parse(data)
		if err != nil {
			if !errors.Is(err, gguf.ErrFormat) {
				t.Fatalf("error %q does not wrap ErrFormat", err)
			}
			return
		}
		checkParsed(t, data, pf)
		checkRewrite(t, pf, data)
		for _, asJSON := range []bool{false, true} {
			var out bytes.Buffer
			if err := gguf.Dump(&out, pf, "fuzz.gguf", asJSON); err != nil {
				t.Fatalf("Dump (json=%v) of a parsed file: %v", asJSON, err)
			}
			if asJSON && !json.Valid(out.Bytes()) {
				t.Fatal("Dump wrote invalid JSON")
			}
		}
	})
}
