package kernels

import "fmt"

// DotF32Cols sets dst[c·ldd] = Σ_i a[i]·b[c·n+i] (n = len(a)) for c < cols:
// the dot products of one vector with cols vectors stored back to back in b,
// e.g. one cached latent row against every query head. a is loaded once for
// each group of 4 columns. It panics unless len(b) >= cols·n, ldd >= 1 and
// len(dst) > (cols−1)·ldd. Twin: dotF32Generic per column; error bound as
// DotF32.
func DotF32Cols(a, b []float32, cols int, dst []float32, ldd int) {
	n := len(a)
	if cols < 0 || len(b) < cols*n || (cols > 0 && (ldd < 1 || len(dst) <= (cols-1)*ldd)) {
		panic(fmt.Sprintf("kernels.DotF32Cols: n=%d cols=%d ldd=%d do not fit len(b)=%d, len(dst)=%d", n, cols, ldd, len(b), len(dst)))
	}
	dotF32Cols(a, b, cols, dst, ldd)
}

// DotF16F32Cols sets dst[c·ldd] = Σ_i fp16(w[2i:])·b[c·n+i] (n = len(w)/2)
// for c < cols: one row of little-endian IEEE half weights against cols
// float32 vectors stored back to back in b, e.g. one attn_k_b row against
// every sequence's query for that head. The row is widened once for each
// group of 4 columns. It panics unless len(w) is even, len(b) >= cols·n,
// ldd >= 1 and len(dst) > (cols−1)·ldd. Twin: dotF16F32Generic per column;
// error bound as DotF32.
func DotF16F32Cols(w []byte, b []float32, cols int, dst []float32, ldd int) {
	checkHalfCols("DotF16F32Cols", w, b, cols, dst, ldd)
	dotF16F32Cols(w, b, cols, dst, ldd)
}

// DotBF16F32Cols is DotF16F32Cols for bfloat16 weights. Twin:
// dotBF16F32Generic per column.
func DotBF16F32Cols(w []byte, b []float32, cols int, dst []float32, ldd int) {
	checkHalfCols("DotBF16F32Cols", w, b, cols, dst, ldd)
	dotBF16F32Cols(w, b, cols, dst, ldd)
}

func checkHalfCols(name string, w []byte, b []float32, cols int, dst []float32, ldd int) {
	n := len(w) / 2
	if len(w)%2 != 0 || cols < 0 || len(b) < cols*n || (cols > 0 && (ldd < 1 || len(dst) <= (cols-1)*ldd)) {
		panic(fmt.Sprintf("kernels.%s: len(w)=%d bytes cols=%d ldd=%d do not fit len(b)=%d, len(dst)=%d", name, len(w), cols, ldd, len(b), len(dst)))
	}
}

// AxpyF32Cols sets y[c·n+i] += alpha[c·astride]·x[i] (n = len(x)) for
// c < cols: one vector added, with a weight per output, to cols vectors
// stored back to back in y, e.g. one cached latent row into every head's
// attention output. x is loaded once for each group of 4 outputs. It panics
// unless len(y) >= cols·n, astride >= 1 and len(alpha) > (cols−1)·astride.
// Twin: axpyF32Generic per column; error bound as AxpyF32.
func AxpyF32Cols(x, alpha []float32, astride int, y []float32, cols int) {
	n := len(x)
	if cols < 0 || len(y) < cols*n || (cols > 0 && (astride < 1 || len(alpha) <= (cols-1)*astride)) {
		panic(fmt.Sprintf("kernels.AxpyF32Cols: n=%d cols=%d astride=%d do not fit len(y)=%d, len(alpha)=%d", n, cols, astride, len(y), len(alpha)))
	}
	axpyF32Cols(x, alpha, astride, y, cols)
}

func dotF32ColsGeneric(a, b []float32, cols int, dst []float32, ldd int) {
	n := len(a)
	for c := 0; c < cols; c++ {
		dst[c*ldd] = dotF32Generic(a, b[c*n:(c+1)*n])
	}
}

func dotHalfColsGeneric(one func(w []byte, x []float32) float32, w []byte, b []float32, cols int, dst []float32, ldd int) {
	n := len(w) / 2
	for c := 0; c < cols; c++ {
		dst[c*ldd] = one(w, b[c*n:(c+1)*n])
	}
}

func axpyF32ColsGeneric(x, alpha []float32, astride int, y []float32, cols int) {
	n := len(x)
	for c := 0; c < cols; c++ {
		axpyF32Generic(alpha[c*astride], x, y[c*n:(c+1)*n])
	}
}
