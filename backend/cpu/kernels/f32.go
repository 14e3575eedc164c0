package kernels

import "fmt"

// DotF32 returns Σ a[i]*b[i]. len(a) must equal len(b); it panics otherwise.
// The SIMD paths keep 4 vector accumulators with fused multiply-adds, so the
// result differs from the twin dotF32Generic (sequential sum) only by
// summation order: |fast−twin| <= 2·len·2⁻²⁴·Σ|a[i]·b[i]|.
func DotF32(a, b []float32) float32 {
	if len(a) != len(b) {
		panic(fmt.Sprintf("kernels.DotF32: len(a)=%d != len(b)=%d", len(a), len(b)))
	}
	return dotF32(a, b)
}

// SumSquares returns Σ x[i]², the reduction of RMSNorm. Twin:
// sumSquaresGeneric; same error bound as DotF32.
func SumSquares(x []float32) float32 { return sumSquares(x) }

// DotBF16F32 returns Σ bf16(w[2i], w[2i+1])·x[i] over len(x) elements: w is a
// row of little-endian bfloat16 weights straight from the GGUF mapping
// (2·len(x) bytes; it panics if w is shorter). Twin: dotBF16F32Generic; same
// error bound as DotF32.
func DotBF16F32(w []byte, x []float32) float32 {
	if len(w) < 2*len(x) {
		panic(fmt.Sprintf("kernels.DotBF16F32: len(w)=%d bytes < 2*len(x)=%d", len(w), 2*len(x)))
	}
	return dotBF16F32(w, x)
}

// DotF16F32 returns Σ fp16(w[2i], w[2i+1])·x[i] over len(x) elements: w is a
// row of little-endian IEEE half weights (2·len(x) bytes; it panics if w is
// shorter). Converted with F16C (exact, subnormals included). Twin:
// dotF16F32Generic; same error bound as DotF32.
func DotF16F32(w []byte, x []float32) float32 {
	if len(w) < 2*len(x) {
		panic(fmt.Sprintf("kernels.DotF16F32: len(w)=%d bytes < 2*len(x)=%d", len(w), 2*len(x)))
	}
	return dotF16F32(w, x)
}

// AxpyF32 sets y[i] += a·x[i]. len(x) must equal len(y); it panics otherwise.
// The SIMD paths fuse the multiply-add (one rounding), the twin
// axpyF32Generic rounds twice: per element |fast−twin| <= 2⁻²³·(|a·x[i]|+|y[i]|).
func AxpyF32(a float32, x, y []float32) {
	if len(x) != len(y) {
		panic(fmt.Sprintf("kernels.AxpyF32: len(x)=%d != len(y)=%d", len(x), len(y)))
	}
	axpyF32(a, x, y)
}

// ScaleF32 sets x[i] *= a; bit-exact with its twin scaleF32Generic.
func ScaleF32(a float32, x []float32) { scaleF32(a, x) }
