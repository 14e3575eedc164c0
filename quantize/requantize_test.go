package quantize

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glmrun/glmrun/backend/quant"
	"github.com/glmrun/glmrun/gguf"
)

func requantizeBytes(t *testing.T, in string, opt Options) ([]byte, error) {
	t.Helper()
	f, err := gguf.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b bytes.Buffer
	_, err = Requantize(f, &b, opt)
	return b.Bytes(), err
}

// TestRequantizeFromQuantized: quantized inputs are refused unless
// AllowRequantize; with it, an MMFP4 file becomes Q4_K_M by exact
// dequantization of each slab and the reference quantizer.
func TestRequantizeFromQuantized(t *testing.T) {
	dir := t.TempDir()
	bf16 := filepath.Join(dir, "bf16.gguf")
	writeHeldOut(t, heldOutShape, bf16, 21)
	mm := requantizeTo(t, bf16, PresetMMFP4)
	if _, err := requantizeBytes(t, mm, Options{Preset: PresetQ4_K_M, Threads: 2}); err == nil || !strings.Contains(err.Error(), "--allow-requantize") {
		t.Fatalf("quantized input without AllowRequantize: err = %v", err)
	}
	// Same preset: nothing to requantize, so no refusal and identical tensors.
	same, err := requantizeBytes(t, mm, Options{Preset: PresetMMFP4, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	src, err := gguf.Open(mm)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sf, err := gguf.Parse(same)
	if err != nil {
		t.Fatal(err)
	}
	for i := range src.Tensors {
		if !bytes.Equal(sf.TensorData(&sf.Tensors[i]), src.TensorData(&src.Tensors[i])) {
			t.Errorf("%s changed when requantizing MMFP4 to MMFP4", src.Tensors[i].Name)
		}
	}
	out, err := requantizeBytes(t, mm, Options{Preset: PresetQ4_K_M, Threads: 3, AllowRequantize: true})
	if err != nil {
		t.Fatal(err)
	}
	of, err := gguf.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for i := range src.Tensors {
		ti := &src.Tensors[i]
		if ti.Type != gguf.TypeMMFP4 {
			continue
		}
		oi, _ := of.Tensor(ti.Name)
		// Independent reference: whole-slab dequantization, then Quantize.
		K, N := int(ti.Dims[0]), int(ti.Dims[1])
		E := int(ti.NumElements()) / (K * N)
		slab, _ := quant.MMFP4SlabBytes(N, K)
		vals := make([]float32, E*N*K)
		data := src.TensorData(ti)
		for e := 0; e < E; e++ {
			if err := quant.DequantizeMMFP4(data[e*slab:(e+1)*slab], N, K, vals[e*N*K:(e+1)*N*K]); err != nil {
				t.Fatal(err)
			}
		}
		want := make([]byte, oi.NumBytes())
		if err := quant.Quantize(oi.Type, vals, want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(of.TensorData(oi), want) {
			t.Errorf("%s: MMFP4 -> %s differs from the slab-wise reference", ti.Name, oi.Type)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no MMFP4 tensors checked")
	}
}

// TestRequantizeDeterministic: the output does not depend on the thread count.
func TestRequantizeDeterministic(t *testing.T) {
	bf16 := filepath.Join(t.TempDir(), "bf16.gguf")
	small := heldOut{d: 256, layers: 2, dense: 1, heads: 2, qLora: 128, kvLora: 128, nope: 128, rope: 32,
		dv: 128, ff: 256, nExp: 3, nUsed: 2, ffExp: 256, vocab: 256}
	writeHeldOut(t, small, bf16, 22)
	for _, p := range []Preset{PresetMMFP4, PresetQ4_K_M, PresetQ8_0} {
		a, err := requantizeBytes(t, bf16, Options{Preset: p, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		b, err := requantizeBytes(t, bf16, Options{Preset: p, Threads: 4})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: output depends on the thread count", p)
		}
		f, err := gguf.Parse(a)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := f.Uint32("general.file_type"); err != nil || v != p.FileType() {
			t.Errorf("%s: general.file_type %v %v", p, v, err)
		}
		if v, err := f.Uint32("general.quantization_version"); err != nil || v != 2 {
			t.Errorf("%s: general.quantization_version %v %v", p, v, err)
		}
		if got := f.Has(KeyMMFP4Version) && f.Has(KeyMMFP4GroupSize); got != (p == PresetMMFP4) {
			t.Errorf("%s: mmfp4 keys present = %v", p, got)
		}
	}
}
