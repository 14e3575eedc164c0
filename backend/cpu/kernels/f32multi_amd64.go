package kernels

// The multi-column dot kernels take colsPerCall columns per assembly call
// (4 with AVX-512, 2 with AVX2) over the vector-width prefix; the twin adds
// the tail and leftover columns go through the single-column dispatch, so
// each column equals what the single-column kernel returns for it.

func dotF32Cols(a, b []float32, cols int, dst []float32, ldd int) {
	f, g, lanes := dotF32ColsAVX2, 2, 8
	switch level {
	case LevelAVX512:
		f, g, lanes = dotF32ColsAVX512, 4, 16
	case LevelGeneric:
		dotF32ColsGeneric(a, b, cols, dst, ldd)
		return
	}
	n := len(a)
	m := n &^ (lanes - 1)
	c := 0
	if m > 0 {
		for ; c+g <= cols; c += g {
			f(a[:m], m, &b[c*n], 4*n, &dst[c*ldd], ldd)
			if m < n {
				for k := c; k < c+g; k++ {
					dst[k*ldd] += dotF32Generic(a[m:], b[k*n+m:(k+1)*n])
				}
			}
		}
	}
	for ; c < cols; c++ {
		dst[c*ldd] = dotF32(a, b[c*n:(c+1)*n])
	}
}

// colsHalf is the signature of the half-precision multi-column assembly.
type colsHalf func(a []byte, n int, b *float32, bstride int, dst *float32, dstride int)

func dotF16F32Cols(w []byte, b []float32, cols int, dst []float32, ldd int) {
	switch level {
	case LevelAVX512:
		dotHalfCols(dotF16F32ColsAVX512, 4, 16, dotF16F32, dotF16F32Generic, w, b, cols, dst, ldd)
	case LevelAVX2:
		dotHalfCols(dotF16F32ColsAVX2, 2, 8, dotF16F32, dotF16F32Generic, w, b, cols, dst, ldd)
	default:
		dotHalfColsGeneric(dotF16F32Generic, w, b, cols, dst, ldd)
	}
}

func dotBF16F32Cols(w []byte, b []float32, cols int, dst []float32, ldd int) {
	switch level {
	case LevelAVX512:
		dotHalfCols(dotBF16F32ColsAVX512, 4, 16, dotBF16F32, dotBF16F32Generic, w, b, cols, dst, ldd)
	case LevelAVX2:
		dotHalfCols(dotBF16F32ColsAVX2, 2, 8, dotBF16F32, dotBF16F32Generic, w, b, cols, dst, ldd)
	default:
		dotHalfColsGeneric(dotBF16F32Generic, w, b, cols, dst, ldd)
	}
}

// dotHalfCols runs f, g columns a call, on the vector-width prefix; twin
// adds the tails, one (the single-column dispatch) the leftover columns.
func dotHalfCols(f colsHalf, g, lanes int, one, twin func(w []byte, x []float32) float32, w []byte, b []float32, cols int, dst []float32, ldd int) {
	n := len(w) / 2
	m := n &^ (lanes - 1)
	c := 0
	if m > 0 {
		for ; c+g <= cols; c += g {
			f(w[:2*m], m, &b[c*n], 4*n, &dst[c*ldd], ldd)
			if m < n {
				for k := c; k < c+g; k++ {
					dst[k*ldd] += twin(w[2*m:2*n], b[k*n+m:(k+1)*n])
				}
			}
		}
	}
	for ; c < cols; c++ {
		dst[c*ldd] = one(w[:2*n], b[c*n:(c+1)*n])
	}
}

// axpyF32Cols is dotF32Cols' counterpart for AxpyF32Cols.
func axpyF32Cols(x, alpha []float32, astride int, y []float32, cols int) {
	n := len(x)
	f4, lanes := axpyF32x4AVX2, 8
	switch level {
	case LevelAVX512:
		f4, lanes = axpyF32x4AVX512, 16
	case LevelGeneric:
		axpyF32ColsGeneric(x, alpha, astride, y, cols)
		return
	}
	m := n &^ (lanes - 1)
	c := 0
	if m > 0 {
		for ; c+4 <= cols; c += 4 {
			f4(x[:m], &alpha[c*astride], astride, &y[c*n], 4*n)
			if m < n {
				for k := c; k < c+4; k++ {
					axpyF32Generic(alpha[k*astride], x[m:], y[k*n+m:(k+1)*n])
				}
			}
		}
	}
	for ; c < cols; c++ {
		axpyF32(alpha[c*astride], x, y[c*n:(c+1)*n])
	}
}
