package kernels

import "github.com/glmrun/glmrun/gguf"

// DotFunc is the single-row form: the dot product of one weight row w (n
// elements of the weight type) with one activation row x (n elements of the
// weight type's vec-dot type, quant.VecDotType). It has the shape of
// backend/cpu's DotFunc and of quant's per-type reference dots.
type DotFunc func(n int, w, x []byte) float32

// RowsFunc is the many-rows form: dst[r] = dot(weight row r, x) for
// r < len(dst), weight rows consecutive in w.
type RowsFunc func(n int, w, x []byte, dst []float32)

// MatFunc is the tile form: dst[c*ldd+r] = dot(weight row r, activation row
// c) for r < rows, c < cols; weight rows consecutive in w, activation rows
// consecutive in x, ldd >= rows. Columns are processed 8 (AVX-512 K-quants)
// or 4 at a time, so every weight block is decoded once per column group;
// each element equals the single-row DotFunc bit for bit.
type MatFunc func(n int, w []byte, rows int, x []byte, cols int, dst []float32, ldd int)

// Kernels groups the three forms of one weight type's dot product.
type Kernels struct {
	Dot  DotFunc
	Rows RowsFunc
	Mat  MatFunc
}

// ForType returns the kernels for weight type t and true, or false when the
// package has no kernel for t (the caller then uses quant.VecDot). Covered:
// Q4_K, Q5_K, Q6_K (Q8_K activations) and Q5_0, Q8_0, MXFP4 (Q8_0
// activations). MMFP4 rows need their scales slice: see DotMMFP4Q8_0.
func ForType(t gguf.TensorType) (Kernels, bool) {
	switch t {
	case gguf.TypeQ4_K:
		return Kernels{DotQ4KQ8K, DotQ4KQ8KRows, MatQ4KQ8K}, true
	case gguf.TypeQ5_K:
		return Kernels{DotQ5KQ8K, DotQ5KQ8KRows, MatQ5KQ8K}, true
	case gguf.TypeQ6_K:
		return Kernels{DotQ6KQ8K, DotQ6KQ8KRows, MatQ6KQ8K}, true
	case gguf.TypeQ5_0:
		return Kernels{DotQ5_0Q8_0, DotQ5_0Q8_0Rows, MatQ5_0Q8_0}, true
	case gguf.TypeQ8_0:
		return Kernels{DotQ8_0Q8_0, DotQ8_0Q8_0Rows, MatQ8_0Q8_0}, true
	case gguf.TypeMXFP4:
		return Kernels{DotMXFP4Q8_0, DotMXFP4Q8_0Rows, MatMXFP4Q8_0}, true
	}
	return Kernels{}, false
}

// QuantizeActivations quantizes one activation row src into dst in the
// format vt (quant.VecDotType of the weight type): Q8_K or Q8_0, with the
// bit-exact fast quantizers. It returns false for any other format.
func QuantizeActivations(vt gguf.TensorType, src []float32, dst []byte) bool {
	switch vt {
	case gguf.TypeQ8_K:
		QuantizeRowQ8K(src, dst)
	case gguf.TypeQ8_0:
		QuantizeRowQ8_0(src, dst)
	default:
		return false
	}
	return true
}
