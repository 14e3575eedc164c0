package cpu

import (
	"math"

	"github.com/glmrun/glmrun/backend/cpu/kernels"
)

// RMSNorm writes x / sqrt(mean(x²) + eps) ⊙ w into out for each of the
// len(x)/len(w) rows of x. out may alias x. The sum of squares is taken in
// float64.
func RMSNorm(out, x, w []float32, eps float32) {
	d := len(w)
	for r := 0; r+d <= len(x); r += d {
		row := x[r : r+d]
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		scale := float32(1 / math.Sqrt(ss/float64(d)+float64(eps)))
		o := out[r : r+d]
		for i, v := range row {
			o[i] = v * scale * w[i]
		}
	}
}

// RoPENorm rotates x (one vector of len(x) = dims elements, dims even) in
// place with interleaved-pair ("NORM") rotary embedding at position pos:
// for i < dims/2, θ = pos·base^(-2i/dims) and (x[2i], x[2i+1]) is rotated
// by θ. This is llama.cpp's GGML_ROPE_TYPE_NORM with freq_scale 1 and no
// YaRN.
func RoPENorm(x []float32, pos int, base float32) {
	dims := len(x)
	for i := 0; i+1 < dims; i += 2 {
		theta := float64(pos) * math.Pow(float64(base), -float64(i)/float64(dims))
		s, c := math.Sincos(theta)
		x0, x1 := float64(x[i]), float64(x[i+1])
		x[i] = float32(x0*c - x1*s)
		x[i+1] = float32(x0*s + x1*c)
	}
}

// Softmax replaces x by softmax(x), computed in float32 with the maximum
// subtracted first (float64 accumulation of the sum).
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	var sum float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - m)))
		x[i] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for i := range x {
		x[i] *= inv
	}
}

// SiLU returns x·sigmoid(x).
func SiLU(x float32) float32 {
	return x / (1 + float32(math.Exp(float64(-x))))
}

// Sigmoid returns 1/(1+e^-x).
func Sigmoid(x float32) float32 {
	return 1 / (1 + float32(math.Exp(float64(-x))))
}

// SwiGLU writes silu(gate[i])·up[i] into out (all the same length; out may
// alias gate or up).
func SwiGLU(out, gate, up []float32) {
	for i := range out {
		out[i] = SiLU(gate[i]) * up[i]
	}
}

// Add sets dst[i] += src[i].
func Add(dst, src []float32) {
	for i := range dst {
		dst[i] += src[i]
	}
}

// AddScaled sets dst[i] += a·src[i].
func AddScaled(dst, src []float32, a float32) {
	for i := range dst {
		dst[i] += a * src[i]
	}
}

// DotF32 returns Σ a[i]·b[i] over len(a) elements (b must be at least as
// long), with kernels.DotF32 (SIMD where available).
func DotF32(a, b []float32) float32 {
	return kernels.DotF32(a, b[:len(a)])
}

// AXPY sets y[i] += a·x[i] over len(y) elements (kernels.AxpyF32).
func AXPY(y []float32, a float32, x []float32) {
	kernels.AxpyF32(a, x[:len(y)], y)
}
