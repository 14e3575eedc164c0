package quant

import (
	"math"
	"strings"
	"testing"

	"github.com/glmrun/glmrun/gguf"
)

var allTypes = []gguf.TensorType{
	gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16, gguf.TypeQ4_0, gguf.TypeQ4_1, gguf.TypeQ5_0,
	gguf.TypeQ5_1, gguf.TypeQ8_0, gguf.TypeQ8_1, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K,
	gguf.TypeQ8_K, gguf.TypeMXFP4, gguf.TypeMMFP4,
}

func TestBadSizesReturnErrors(t *testing.T) {
	for _, ty := range allTypes {
		if !CanDequantize(ty) || !CanQuantize(ty) {
			t.Errorf("%s should be supported both ways", ty)
		}
		bs := ty.BlockSize()
		n := 4 * max(bs, 128)
		good := rowBytes(ty, n)
		f := make([]float32, n)
		b := make([]byte, good)
		if err := Quantize(ty, f, b); err != nil {
			t.Fatalf("%s: good sizes rejected: %v", ty, err)
		}
		if err := Dequantize(ty, b, f); err != nil {
			t.Fatalf("%s: good sizes rejected: %v", ty, err)
		}
		if err := Dequantize(ty, nil, nil); err != nil {
			t.Errorf("%s: empty dequantize: %v", ty, err)
		}
		for _, nb := range []int{good - 1, good + 1, 0} {
			if err := Dequantize(ty, make([]byte, nb), f); err == nil {
				t.Errorf("%s: Dequantize accepted %d bytes for %d elements", ty, nb, n)
			}
			if err := Quantize(ty, f, make([]byte, nb)); err == nil {
				t.Errorf("%s: Quantize accepted %d bytes for %d elements", ty, nb, n)
			}
		}
		if bs > 1 {
			if err := Dequantize(ty, b, make([]float32, n-1)); err == nil || !strings.Contains(err.Error(), "multiple") {
				t.Errorf("%s: Dequantize of a partial block: %v", ty, err)
			}
			if err := Quantize(ty, make([]float32, n+1), b); err == nil || !strings.Contains(err.Error(), "multiple") {
				t.Errorf("%s: Quantize of a partial block: %v", ty, err)
			}
		}
		if !CanVecDot(ty) {
			continue
		}
		vt := VecDotType(ty)
		xb := make([]byte, rowBytes(vt, n))
		if _, err := VecDot(ty, n, b, xb); err != nil {
			t.Fatalf("%s: good VecDot rejected: %v", ty, err)
		}
		if _, err := VecDot(ty, n, b[:good-1], xb); err == nil {
			t.Errorf("%s: VecDot accepted a short weight row", ty)
		}
		if _, err := VecDot(ty, n, b, xb[:len(xb)-1]); err == nil {
			t.Errorf("%s: VecDot accepted a short activation row", ty)
		}
		if _, err := VecDot(ty, n, append(b, 0), xb); err == nil {
			t.Errorf("%s: VecDot accepted a long weight row", ty)
		}
		if _, err := VecDot(ty, -32, b, xb); err == nil {
			t.Errorf("%s: VecDot accepted a negative n", ty)
		}
		if bs > 1 || vt.BlockSize() > 1 {
			if _, err := VecDot(ty, n-1, b, xb); err == nil {
				t.Errorf("%s: VecDot accepted n = %d", ty, n-1)
			}
		}
	}
}

func TestUnsupportedTypesNameTheType(t *testing.T) {
	for _, ty := range []gguf.TensorType{gguf.TypeQ2_K, gguf.TypeIQ4_XS, gguf.TypeI8, gguf.TensorType(4161), gguf.TensorType(999)} {
		if CanDequantize(ty) || CanQuantize(ty) || CanVecDot(ty) {
			t.Errorf("%s reported as supported", ty)
		}
		errs := []error{
			Dequantize(ty, make([]byte, 1024), make([]float32, 256)),
			Quantize(ty, make([]float32, 256), make([]byte, 1024)),
		}
		_, err := VecDot(ty, 256, make([]byte, 1024), make([]byte, 1024))
		errs = append(errs, err)
		for _, err := range errs {
			if err == nil || !strings.Contains(err.Error(), ty.String()) {
				t.Errorf("%s: error %v does not name the type", ty, err)
			}
		}
	}
	// Activation-only types have no VecDot.
	for _, ty := range []gguf.TensorType{gguf.TypeQ8_K, gguf.TypeQ8_1} {
		if _, err := VecDot(ty, 256, make([]byte, rowBytes(ty, 256)), make([]byte, rowBytes(ty, 256))); err == nil || !strings.Contains(err.Error(), ty.String()) {
			t.Errorf("VecDot(%s): %v", ty, err)
		}
	}
}

// TestNonFiniteInputsDoNotPanic: ggml leaves NaN/Inf inputs undefined; this
// package must at least not crash on them.
func TestNonFiniteInputsDoNotPanic(t *testing.T) {
	x := make([]float32, 512)
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	x[3] = float32(math.NaN())
	x[300] = float32(math.Inf(1))
	x[301] = float32(math.Inf(-1))
	for _, ty := range allTypes {
		if _, _, err := roundTrip(ty, x); err != nil {
			t.Errorf("%s: %v", ty, err)
		}
	}
}
