package kernels

// Dispatch of the f32 kernels on amd64. The assembly handles the largest
// prefix that is a multiple of the vector width; the twin finishes the tail.

func dotF32(a, b []float32) float32 {
	switch level {
	case LevelAVX512:
		m := len(a) &^ 15
		return dotF32AVX512(a[:m], b[:m]) + dotF32Generic(a[m:], b[m:])
	case LevelAVX2:
		m := len(a) &^ 7
		return dotF32AVX2(a[:m], b[:m]) + dotF32Generic(a[m:], b[m:])
	}
	return dotF32Generic(a, b)
}

func sumSquares(x []float32) float32 {
	switch level {
	case LevelAVX512:
		m := len(x) &^ 15
		return sumSquaresAVX512(x[:m]) + sumSquaresGeneric(x[m:])
	case LevelAVX2:
		m := len(x) &^ 7
		return sumSquaresAVX2(x[:m]) + sumSquaresGeneric(x[m:])
	}
	return sumSquaresGeneric(x)
}

func dotBF16F32(w []byte, x []float32) float32 {
	switch level {
	case LevelAVX512:
		m := len(x) &^ 15
		return dotBF16F32AVX512(w[:2*m], x[:m]) + dotBF16F32Generic(w[2*m:], x[m:])
	case LevelAVX2:
		m := len(x) &^ 7
		return dotBF16F32AVX2(w[:2*m], x[:m]) + dotBF16F32Generic(w[2*m:], x[m:])
	}
	return dotBF16F32Generic(w, x)
}

func dotF16F32(w []byte, x []float32) float32 {
	switch level {
	case LevelAVX512:
		m := len(x) &^ 15
		return dotF16F32AVX512(w[:2*m], x[:m]) + dotF16F32Generic(w[2*m:], x[m:])
	case LevelAVX2:
		m := len(x) &^ 7
		return dotF16F32AVX2(w[:2*m], x[:m]) + dotF16F32Generic(w[2*m:], x[m:])
	}
	return dotF16F32Generic(w, x)
}

func axpyF32(a float32, x, y []float32) {
	switch level {
	case LevelAVX512:
		m := len(x) &^ 15
		axpyF32AVX512(a, x[:m], y[:m])
		axpyF32Generic(a, x[m:], y[m:])
		return
	case LevelAVX2:
		m := len(x) &^ 7
		axpyF32AVX2(a, x[:m], y[:m])
		axpyF32Generic(a, x[m:], y[m:])
		return
	}
	axpyF32Generic(a, x, y)
}

func scaleF32(a float32, x []float32) {
	switch level {
	case LevelAVX512:
		m := len(x) &^ 15
		scaleF32AVX512(a, x[:m])
		scaleF32Generic(a, x[m:])
		return
	case LevelAVX2:
		m := len(x) &^ 7
		scaleF32AVX2(a, x[:m])
		scaleF32Generic(a, x[m:])
		return
	}
	scaleF32Generic(a, x)
}
