package kernels

// dotF32Cols runs the 4-column assembly on the vector-width prefix of every
// group of 4 columns; tails and leftover columns go through dotF32.
func dotF32Cols(a, b []float32, cols int, dst []float32, ldd int) {
	n := len(a)
	f4, lanes := dotF32x4AVX2, 8
	switch level {
	case LevelAVX512:
		f4, lanes = dotF32x4AVX512, 16
	case LevelGeneric:
		dotF32ColsGeneric(a, b, cols, dst, ldd)
		return
	}
	m := n &^ (lanes - 1)
	c := 0
	if m > 0 {
		for ; c+4 <= cols; c += 4 {
			f4(a[:m], &b[c*n], 4*n, &dst[c*ldd], ldd)
			if m < n {
				for k := c; k < c+4; k++ {
					dst[k*ldd] += dotF32Generic(a[m:], b[k*n+m:(k+1)*n])
				}
			}
		}
	}
	for ; c < cols; c++ {
		dst[c*ldd] = dotF32(a, b[c*n:(c+1)*n])
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
