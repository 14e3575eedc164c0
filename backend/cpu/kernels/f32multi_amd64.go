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

// halfCols is one half-precision format's multi-column dot: its assembly
// per level, the single-column dispatch (leftover columns) and the twin
// (row tails).
type halfCols struct {
	avx2, avx512 colsHalf
	one, twin    func(w []byte, x []float32) float32
}

var (
	f16Cols  = halfCols{dotF16F32ColsAVX2, dotF16F32ColsAVX512, dotF16F32, dotF16F32Generic}
	bf16Cols = halfCols{dotBF16F32ColsAVX2, dotBF16F32ColsAVX512, dotBF16F32, dotBF16F32Generic}
)

func dotF16F32Cols(w []byte, b []float32, cols int, dst []float32, ldd int) {
	f16Cols.run(w, b, cols, dst, ldd)
}

func dotBF16F32Cols(w []byte, b []float32, cols int, dst []float32, ldd int) {
	bf16Cols.run(w, b, cols, dst, ldd)
}

// run computes the columns as dotF32Cols does for float32 rows.
func (k halfCols) run(w []byte, b []float32, cols int, dst []float32, ldd int) {
	f, g, lanes := k.avx2, 2, 8
	switch level {
	case LevelAVX512:
		f, g, lanes = k.avx512, 4, 16
	case LevelGeneric:
		dotHalfColsGeneric(k.twin, w, b, cols, dst, ldd)
		return
	}
	n := len(w) / 2
	m := n &^ (lanes - 1)
	c := 0
	if m > 0 {
		for ; c+g <= cols; c += g {
			f(w[:2*m], m, &b[c*n], 4*n, &dst[c*ldd], ldd)
			if m < n {
				for j := c; j < c+g; j++ {
					dst[j*ldd] += k.twin(w[2*m:2*n], b[j*n+m:(j+1)*n])
				}
			}
		}
	}
	for ; c < cols; c++ {
		dst[c*ldd] = k.one(w[:2*n], b[c*n:(c+1)*n])
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
