package kernels

import "github.com/glmrun/glmrun/backend/quant"

// The pure-Go twins of the f32 kernels: plain sequential loops, the oracles
// of the tests and the implementation for GLM_SIMD=off and non-amd64.

func dotF32Generic(a, b []float32) float32 {
	b = b[:len(a)]
	var s float32
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

func sumSquaresGeneric(x []float32) float32 {
	var s float32
	for _, v := range x {
		s += v * v
	}
	return s
}

func dotBF16F32Generic(w []byte, x []float32) float32 {
	w = w[:2*len(x)]
	var s float32
	for i, v := range x {
		s += quant.BF16ToFloat32(uint16(w[2*i])|uint16(w[2*i+1])<<8) * v
	}
	return s
}

func dotF16F32Generic(w []byte, x []float32) float32 {
	w = w[:2*len(x)]
	var s float32
	for i, v := range x {
		s += quant.FP16ToFloat32(uint16(w[2*i])|uint16(w[2*i+1])<<8) * v
	}
	return s
}

func axpyF32Generic(a float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += a * v
	}
}

func scaleF32Generic(a float32, x []float32) {
	for i := range x {
		x[i] *= a
	}
}
