package kernels

// Dispatch of the exponential kernels on amd64: AVX-512 for the largest
// multiple of 16 elements, the twin for the tail (and below AVX-512).

func expShiftF32(x []float32, scale, shift float32) {
	if level == LevelAVX512 {
		m := len(x) &^ 15
		expShiftF32AVX512(x[:m], scale, shift)
		x = x[m:]
	}
	expShiftF32Generic(x, scale, shift)
}

func swigluF32(out, gate, up []float32) {
	if level == LevelAVX512 {
		m := len(out) &^ 15
		swigluF32AVX512(out[:m], gate[:m], up[:m])
		out, gate, up = out[m:], gate[m:], up[m:]
	}
	swigluF32Generic(out, gate, up)
}
