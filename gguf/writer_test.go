package gguf_test

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/glmrun/glmrun/gguf"
)

// allValueKVs holds one scalar and one array of every value type, empty
// arrays and strings, and nested arrays up to the depth limit.
func allValueKVs() []gguf.KV {
	deep := gguf.Array([]uint8{1, 2})
	for range 7 {
		deep = gguf.Array([]gguf.Value{deep})
	}
	return []gguf.KV{
		{Key: "t.u8", Value: gguf.Uint8(200)},
		{Key: "t.i8", Value: gguf.Int8(-100)},
		{Key: "t.u16", Value: gguf.Uint16(60000)},
		{Key: "t.i16", Value: gguf.Int16(-30000)},
		{Key: "t.u32", Value: gguf.Uint32(4000000000)},
		{Key: "t.i32", Value: gguf.Int32(-2000000000)},
		{Key: "t.f32", Value: gguf.Float32(-1.5e-7)},
		{Key: "t.bool.true", Value: gguf.Bool(true)},
		{Key: "t.bool.false", Value: gguf.Bool(false)},
		{Key: "t.str", Value: gguf.String("héllo\n\x00world")},
		{Key: "t.str.empty", Value: gguf.String("")},
		{Key: "t.u64", Value: gguf.Uint64(math.MaxUint64)},
		{Key: "t.i64", Value: gguf.Int64(math.MinInt64)},
		{Key: "t.f64", Value: gguf.Float64(math.Inf(-1))},
		{Key: "a.u8", Value: gguf.Array([]uint8{0, 1, 255})},
		{Key: "a.i8", Value: gguf.Array([]int8{-128, 0, 127})},
		{Key: "a.u16", Value: gguf.Array([]uint16{1, 65535})},
		{Key: "a.i16", Value: gguf.Array([]int16{-32768, 32767})},
		{Key: "a.u32", Value: gguf.Array([]uint32{1, 2, 3})},
		{Key: "a.i32", Value: gguf.Array([]int32{-1, 0, 1})},
		{Key: "a.f32", Value: gguf.Array([]float32{0.5, float32(math.Inf(1)), -0})},
		{Key: "a.bool", Value: gguf.Array([]bool{true, false, true})},
		{Key: "a.str", Value: gguf.Array([]string{"", "a", "ünïcode", strings.Repeat("x", 300)})},
		{Key: "a.u64", Value: gguf.Array([]uint64{math.MaxUint64, 0})},
		{Key: "a.i64", Value: gguf.Array([]int64{math.MinInt64, math.MaxInt64})},
		{Key: "a.f64", Value: gguf.Array([]float64{math.Pi, -math.MaxFloat64})},
		{Key: "a.empty", Value: gguf.Array([]uint32{})},
		{Key: "a.empty.str", Value: gguf.Array([]string{})},
		{Key: "a.long", Value: gguf.Array(make([]int32, 100))},
		{Key: "n.arr", Value: gguf.Array([]gguf.Value{
			gguf.Array([]uint32{1, 2}),
			gguf.Array([]string{"x", "y", "z"}),
			gguf.Array([]gguf.Value{gguf.Array([]float32{1.25})}),
			gguf.Array([]bool{}),
		})},
		{Key: "n.empty", Value: gguf.Array([]gguf.Value{})},
		{Key: "n.deep", Value: deep},
	}
}

func TestWriterReaderRoundTripAllValueTypes(t *testing.T) {
	for _, version := range []uint32{2, 3} {
		var buf bytes.Buffer
		w := gguf.NewWriter(&buf)
		w.Version = version
		kvs := allValueKVs()
		for _, kv := range kvs {
			if err := w.AddKV(kv.Key, kv.Value); err != nil {
				t.Fatalf("AddKV %s: %v", kv.Key, err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("v%d: %v", version, err)
		}
		if f.Version != version {
			t.Fatalf("version %d, want %d", f.Version, version)
		}
		if len(f.KV) != len(kvs) {
			t.Fatalf("%d kv, want %d", len(f.KV), len(kvs))
		}
		for i, kv := range kvs {
			got := f.KV[i]
			if got.Key != kv.Key || got.Value.Type != kv.Value.Type || got.Value.ElemType != kv.Value.ElemType ||
				!reflect.DeepEqual(got.Value.Any(), kv.Value.Any()) {
				t.Fatalf("kv %d: got %s=%#v (%s/%s), want %s=%#v (%s/%s)", i, got.Key, got.Value.Any(), got.Value.Type, got.Value.ElemType,
					kv.Key, kv.Value.Any(), kv.Value.Type, kv.Value.ElemType)
			}
			if got.Value.Len() != kv.Value.Len() {
				t.Fatalf("%s: Len %d, want %d", kv.Key, got.Value.Len(), kv.Value.Len())
			}
		}
		// Writing the parsed file again gives the same bytes.
		var again bytes.Buffer
		if err := gguf.WriteFile(&again, f); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), buf.Bytes()) {
			t.Fatalf("v%d: rewrite differs", version)
		}
	}
}

// NaN payloads are not comparable with DeepEqual; the bytes must survive.
func TestRoundTripNaN(t *testing.T) {
	var buf bytes.Buffer
	w := gguf.NewWriter(&buf)
	nan32 := math.Float32frombits(0x7fc00123)
	if err := w.AddKV("nan", gguf.Array([]float32{nan32})); err != nil {
		t.Fatal(err)
	}
	if err := w.AddKV("nan64", gguf.Float64(math.NaN())); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	xs, err := f.Float32s("nan")
	if err != nil || math.Float32bits(xs[0]) != 0x7fc00123 {
		t.Fatalf("nan payload lost: %v %x", err, math.Float32bits(xs[0]))
	}
}

func TestSyntheticTensorsRoundTrip(t *testing.T) {
	data, _ := syntheticFile(t)
	f, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]uint64{"scalar": {}, "vec": {7}, "mat.q4_k": {256, 2}, "cube.q8_0": {32, 2, 3}, "hyper.bf16": {3, 2, 2, 2}, "empty": {4, 0}, "last.i32": {5}}
	if len(f.Tensors) != len(want) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(want))
	}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if !reflect.DeepEqual(append([]uint64{}, ti.Dims...), want[ti.Name]) {
			t.Fatalf("%s: dims %v, want %v", ti.Name, ti.Dims, want[ti.Name])
		}
		d := f.TensorData(ti)
		for j := range d {
			if d[j] != byte(i*31+j) {
				t.Fatalf("%s: byte %d = %d, want %d", ti.Name, j, d[j], byte(i*31+j))
			}
		}
		if ti.Offset%f.Alignment != 0 {
			t.Fatalf("%s: offset %d unaligned", ti.Name, ti.Offset)
		}
	}
	var again bytes.Buffer
	if err := gguf.WriteFile(&again, f); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), data) {
		t.Fatal("rewrite differs")
	}
}

func TestWriterCustomAlignment(t *testing.T) {
	var buf bytes.Buffer
	w := gguf.NewWriter(&buf)
	if err := w.AddKV("general.alignment", gguf.Uint32(64)); err != nil {
		t.Fatal(err)
	}
	offA, _ := w.AddTensor("a", gguf.TypeF32, 3)
	offB, err := w.AddTensor("b", gguf.TypeF32, 3)
	if err != nil || offA != 0 || offB != 64 {
		t.Fatalf("offsets %d %d (err %v), want 0 64", offA, offB, err)
	}
	for range 2 {
		if err := w.WriteTensorData(make([]byte, 12)); err != nil {
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
	if f.Alignment != 64 || f.DataOffset%64 != 0 || buf.Len()%64 != 0 {
		t.Fatalf("alignment %d, data offset %d, size %d", f.Alignment, f.DataOffset, buf.Len())
	}
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriterErrors(t *testing.T) {
	newW := func() *gguf.Writer { return gguf.NewWriter(&bytes.Buffer{}) }
	wantErr := func(t *testing.T, err error, subs ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("no error, want one containing %q", subs)
		}
		for _, s := range subs {
			if !strings.Contains(err.Error(), s) {
				t.Fatalf("error %q does not mention %q", err, s)
			}
		}
	}
	t.Run("duplicate key", func(t *testing.T) {
		w := newW()
		_ = w.AddKV("k", gguf.Uint8(1))
		wantErr(t, w.AddKV("k", gguf.Uint8(2)), `duplicate metadata key "k"`)
	})
	t.Run("zero value", func(t *testing.T) {
		wantErr(t, newW().AddKV("z", gguf.Value{}), `metadata "z"`, "cannot encode")
	})
	t.Run("mismatched tag", func(t *testing.T) {
		v := gguf.Uint32(1)
		v.Type = gguf.ValueString
		wantErr(t, newW().AddKV("m", v), `metadata "m"`, "tagged str")
	})
	t.Run("mismatched array tag", func(t *testing.T) {
		v := gguf.Array([]uint32{1})
		v.ElemType = gguf.ValueInt8
		wantErr(t, newW().AddKV("m", v), `metadata "m"`, "arr[i8]")
	})
	t.Run("array without slice", func(t *testing.T) {
		wantErr(t, newW().AddKV("m", gguf.Value{Type: gguf.ValueArray}), `metadata "m"`, "gguf.Array")
	})
	t.Run("nested too deep", func(t *testing.T) {
		deep := gguf.Array([]uint8{1})
		for range 8 {
			deep = gguf.Array([]gguf.Value{deep})
		}
		wantErr(t, newW().AddKV("deep", deep), `metadata "deep"`, "nested deeper than 8")
	})
	t.Run("nested non-array element", func(t *testing.T) {
		inner := gguf.Array([]uint8{1})
		outer := gguf.Array([]gguf.Value{inner})
		inner.Type = gguf.ValueUint8 // mutate a copy: outer still valid
		if err := newW().AddKV("ok", outer); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("alignment", func(t *testing.T) {
		wantErr(t, newW().AddKV("general.alignment", gguf.Uint32(48)), "power of two")
		wantErr(t, newW().AddKV("general.alignment", gguf.Uint32(0)), "power of two")
		wantErr(t, newW().AddKV("general.alignment", gguf.Uint64(32)), "u32")
		w := newW()
		_, _ = w.AddTensor("t", gguf.TypeF32, 1)
		wantErr(t, w.AddKV("general.alignment", gguf.Uint32(64)), "before tensors")
	})
	t.Run("tensors", func(t *testing.T) {
		w := newW()
		if _, err := w.AddTensor("t", gguf.TypeF32, 1); err != nil {
			t.Fatal(err)
		}
		_, err := w.AddTensor("t", gguf.TypeF32, 1)
		wantErr(t, err, `duplicate tensor name "t"`)
		_, err = w.AddTensor("u", 99999)
		wantErr(t, err, `tensor "u"`, "unknown tensor type 99999")
		_, err = w.AddTensor("u", gguf.TypeF32, 1, 1, 1, 1, 1)
		wantErr(t, err, `tensor "u"`, "5 dimensions")
		_, err = w.AddTensor("u", gguf.TypeQ4_K, 255)
		wantErr(t, err, `tensor "u"`, "block size 256")
		_, err = w.AddTensor("u", gguf.TypeQ4_K)
		wantErr(t, err, `tensor "u"`, "block size 256")
		_, err = w.AddTensor("u", gguf.TypeF32, 1<<40, 1<<40)
		wantErr(t, err, `tensor "u"`, "overflows")
		_, err = w.AddTensor("u", gguf.TypeF32, 1<<61)
		wantErr(t, err, `tensor "u"`, "overflows the byte size")
		_, err = w.AddTensor("u", gguf.TypeF64, 1<<30, 1<<31)
		wantErr(t, err, `tensor "u"`, "byte size", "overflows")
		if _, err = w.AddTensor("big1", gguf.TypeI8, 1<<62); err != nil {
			t.Fatal(err)
		}
		_, err = w.AddTensor("big2", gguf.TypeI8, 1<<62)
		wantErr(t, err, `tensor "big2"`, "2^63")
	})
	t.Run("data", func(t *testing.T) {
		w := newW()
		_, _ = w.AddTensor("a", gguf.TypeF32, 2)
		wantErr(t, w.WriteTensorData(make([]byte, 7)), `tensor "a"`, "got 7 bytes, want 8")
		if err := w.WriteTensorData(make([]byte, 8)); err != nil {
			t.Fatal(err)
		}
		wantErr(t, w.WriteTensorData(make([]byte, 8)), "more tensor data than declared")
		wantErr(t, w.AddKV("late", gguf.Uint8(1)), "after data")
		_, err := w.AddTensor("late", gguf.TypeF32, 1)
		wantErr(t, err, "after data")
	})
	t.Run("missing data", func(t *testing.T) {
		w := newW()
		_, _ = w.AddTensor("a", gguf.TypeF32, 2)
		_, _ = w.AddTensor("b", gguf.TypeF32, 2)
		_ = w.WriteTensorData(make([]byte, 8))
		wantErr(t, w.Close(), "1 of 2 tensors have no data")
	})
	t.Run("version", func(t *testing.T) {
		for _, v := range []uint32{0, 1, 4} {
			w := newW()
			w.Version = v
			wantErr(t, w.Close(), "cannot write version")
		}
	})
	t.Run("sink error is sticky", func(t *testing.T) {
		w := gguf.NewWriter(&failingWriter{n: 10})
		_ = w.AddKV("k", gguf.Array(make([]uint8, 2<<20))) // header larger than the buffer
		wantErr(t, w.Close(), "disk full")
		wantErr(t, w.Close(), "disk full")
	})
	t.Run("WriteFile unpacked offsets", func(t *testing.T) {
		b := header(3, 2, 0).tensor("a", gguf.TypeF32, 32, 8).tensor("b", gguf.TypeF32, 0, 8).pad(32, 64).bytes()
		f, err := gguf.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, gguf.WriteFile(&bytes.Buffer{}, f), `tensor "a"`, "packed offset 0")
	})
}
