package quant

import (
	"bytes"
	"math"
	"testing"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/testdata"
)

func openGGUF(t *testing.T, name string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(testdata.GLMTiny(t, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestDequantizeGLMTinyBitExact dequantizes every tensor of the Q4_K_M file
// and compares with llama.cpp's own F32 dequantization bit for bit.
func TestDequantizeGLMTinyBitExact(t *testing.T) {
	q := openGGUF(t, "glm-tiny-q4_k_m.gguf")
	ref := openGGUF(t, "glm-tiny-q4_k_m-dequant-f32.gguf")
	types := map[gguf.TensorType]int{}
	for i := range q.Tensors {
		ti := &q.Tensors[i]
		ri, ok := ref.Tensor(ti.Name)
		if !ok {
			t.Fatalf("%s missing from the dequantized reference", ti.Name)
		}
		if ri.Type != gguf.TypeF32 || ri.NumElements() != ti.NumElements() {
			t.Fatalf("%s: reference is %s with %d elements, want f32 with %d", ti.Name, ri.Type, ri.NumElements(), ti.NumElements())
		}
		types[ti.Type]++
		got := make([]float32, ti.NumElements())
		if err := Dequantize(ti.Type, q.TensorData(ti), got); err != nil {
			t.Fatalf("%s: %v", ti.Name, err)
		}
		want := make([]float32, ri.NumElements())
		if err := Dequantize(gguf.TypeF32, ref.TensorData(ri), want); err != nil {
			t.Fatal(err)
		}
		bad := 0
		for j := range got {
			if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
				if bad < 3 {
					t.Errorf("%s (%s) element %d: got %g (%#08x), want %g (%#08x)", ti.Name, ti.Type, j, got[j], math.Float32bits(got[j]), want[j], math.Float32bits(want[j]))
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%s (%s): %d of %d elements differ", ti.Name, ti.Type, bad, len(got))
		}
	}
	t.Logf("tensor types checked: %v", types)
	for _, ty := range []gguf.TensorType{gguf.TypeQ4_K, gguf.TypeQ6_K, gguf.TypeQ5_0, gguf.TypeF32} {
		if types[ty] == 0 {
			t.Errorf("expected the Q4_K_M file to contain %s tensors", ty)
		}
	}
}

// TestQuantizeGLMTinyBitExact re-quantizes every bf16 tensor of the bf16
// file to the type llama-quantize gave it and compares the bytes.
func TestQuantizeGLMTinyBitExact(t *testing.T) {
	src := openGGUF(t, "glm-tiny-bf16.gguf")
	q := openGGUF(t, "glm-tiny-q4_k_m.gguf")
	types := map[gguf.TensorType]int{}
	for i := range q.Tensors {
		qi := &q.Tensors[i]
		si, ok := src.Tensor(qi.Name)
		if !ok {
			t.Fatalf("%s missing from the bf16 file", qi.Name)
		}
		x := make([]float32, si.NumElements())
		if err := Dequantize(si.Type, src.TensorData(si), x); err != nil {
			t.Fatalf("%s: %v", qi.Name, err)
		}
		want := q.TensorData(qi)
		got := make([]byte, len(want))
		// Quantize row by row, as llama-quantize does (rows never share blocks).
		ne0 := int(qi.Dims[0])
		rb, err := qi.Type.RowBytes(uint64(ne0))
		if err != nil {
			t.Fatal(err)
		}
		for r := 0; r*ne0 < len(x); r++ {
			if err := Quantize(qi.Type, x[r*ne0:(r+1)*ne0], got[r*int(rb):(r+1)*int(rb)]); err != nil {
				t.Fatalf("%s: %v", qi.Name, err)
			}
		}
		types[qi.Type]++
		if !bytes.Equal(got, want) {
			bs := qi.Type.TypeSize()
			for j := range got {
				if got[j] != want[j] {
					t.Errorf("%s (%s from %s): first difference at byte %d (block %d, offset %d): got %#02x want %#02x",
						qi.Name, qi.Type, si.Type, j, j/bs, j%bs, got[j], want[j])
					break
				}
			}
		}
	}
	t.Logf("tensor types checked: %v", types)
}
