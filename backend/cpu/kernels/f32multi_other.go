//go:build !amd64

package kernels

func dotF32Cols(a, b []float32, cols int, dst []float32, ldd int) {
	dotF32ColsGeneric(a, b, cols, dst, ldd)
}

func axpyF32Cols(x, alpha []float32, astride int, y []float32, cols int) {
	axpyF32ColsGeneric(x, alpha, astride, y, cols)
}

func dotF16F32Cols(w []byte, b []float32, cols int, dst []float32, ldd int) {
	dotHalfColsGeneric(dotF16F32Generic, w, b, cols, dst, ldd)
}

func dotBF16F32Cols(w []byte, b []float32, cols int, dst []float32, ldd int) {
	dotHalfColsGeneric(dotBF16F32Generic, w, b, cols, dst, ldd)
}
