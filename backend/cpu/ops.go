package cpu

import (
	"math"

	"github.com/glmrun/glmrun/backend/cpu/kernels"
)

// RMSNorm writes x / sqrt(mean(x²) + eps) ⊙ w into out for each of the
// len(x)/len(w) rows of x. out may alias x. The sum of squares is the
// float32 SIMD reduction kernels.SumSquares (relative error ~1e-7 against a
// float64 sum; llama.cpp sums in double).
func RMSNorm(out, x, w []float32, eps float32) {
	d := len(w)
	for r := 0; r+d <= len(x); r += d {
		row := x[r : r+d]
		ss := float64(kernels.SumSquares(row))
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
// YaRN. To rotate many vectors at one position, build a RoPETable once.
func RoPENorm(x []float32, pos int, base float32) {
	t := NewRoPETable(pos, len(x), base)
	t.Apply(x)
}

// RoPETable holds cos θ_i and sin θ_i (i < dims/2) of one position.
type RoPETable struct {
	Cos, Sin []float32
}

// NewRoPETable computes the rotation of position pos for vectors of dims
// elements (see RoPENorm), in float64 then rounded.
func NewRoPETable(pos, dims int, base float32) RoPETable {
	t := RoPETable{Cos: make([]float32, dims/2), Sin: make([]float32, dims/2)}
	for i := range t.Cos {
		theta := float64(pos) * math.Pow(float64(base), -float64(2*i)/float64(dims))
		s, c := math.Sincos(theta)
		t.Cos[i], t.Sin[i] = float32(c), float32(s)
	}
	return t
}

// Apply rotates the pairs (x[2i], x[2i+1]) of x (len(x) = 2·len(t.Cos)) in
// place.
func (t RoPETable) Apply(x []float32) {
	for i, c := range t.Cos {
		s := t.Sin[i]
		x0, x1 := x[2*i], x[2*i+1]
		x[2*i] = x0*c - x1*s
		x[2*i+1] = x0*s + x1*c
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

// SiLU returns x·sigmoid(x) (with Exp32).
func SiLU(x float32) float32 {
	return x / (1 + Exp32(-x))
}

// Sigmoid returns 1/(1+e^-x).
func Sigmoid(x float32) float32 {
	return 1 / (1 + float32(math.Exp(float64(-x))))
}

// Exp32 returns e^x in float32 within 2 ulp of the correctly rounded value
// (kernels.Exp32: Cephes expf).
func Exp32(x float32) float32 { return kernels.Exp32(x) }

// SwiGLU writes silu(gate[i])·up[i] into out (all the same length; out may
// alias gate or up), with kernels.SwiGLUF32 (vector exponential where
// available).
func SwiGLU(out, gate, up []float32) {
	kernels.SwiGLUF32(out, gate, up)
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
