package kernels

import (
	"fmt"
	"math"
)

// Exp32 returns e^x in float32 within 2 ulp of the correctly rounded value
// (Cephes expf: x = n·ln2 + r with |r| <~ ln2/2, a degree-6 polynomial in
// r, then scaling by 2^n through the exponent bits). It is several times
// faster than math.Exp; arguments whose result is subnormal, infinite or NaN
// go through math.Exp.
func Exp32(x float32) float32 {
	if !(x > -87.0 && x < 88.0) { // also NaN
		return float32(math.Exp(float64(x)))
	}
	// n = round(x·log2 e), half away from zero (truncation after ±0.5).
	t := x * 1.44269504088896341
	if t < 0 {
		t -= 0.5
	} else {
		t += 0.5
	}
	n := int32(t)
	z := float32(n)
	r := x - z*0.693359375
	r -= z * -2.12194440e-4
	p := ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
	y := p*r*r + r + 1
	return y * math.Float32frombits(uint32(n+127)<<23)
}

// ExpShiftF32 sets x[i] = e^((x[i]−shift)·scale), the exponentials of a
// softmax. The AVX-512 path evaluates Exp32's polynomial 16 lanes at a time
// (fused multiply-adds, round-to-nearest-even n) and clamps the argument to
// [−87, 88]: within 2 ulp of Exp32 for arguments in that range; below it
// the result is e^−87 ≈ 1.6e−38 instead of a smaller (or subnormal) value.
// Twin: expShiftF32Generic (Exp32 per element).
func ExpShiftF32(x []float32, scale, shift float32) { expShiftF32(x, scale, shift) }

// SwiGLUF32 sets out[i] = silu(gate[i])·up[i] = gate[i]/(1+e^−gate[i])·up[i]
// (out may alias gate or up); len(gate) and len(up) must be >= len(out), it
// panics otherwise. The AVX-512 path uses ExpShiftF32's vector exponential
// (e^−g clamped to e^88 for g < −88: silu is then −0 to within 1e-36).
// Twin: swigluF32Generic.
func SwiGLUF32(out, gate, up []float32) {
	if len(gate) < len(out) || len(up) < len(out) {
		panic(fmt.Sprintf("kernels.SwiGLUF32: len(out)=%d, len(gate)=%d, len(up)=%d", len(out), len(gate), len(up)))
	}
	swigluF32(out, gate[:len(out)], up[:len(out)])
}

func expShiftF32Generic(x []float32, scale, shift float32) {
	for i, v := range x {
		x[i] = Exp32(scale * (v - shift))
	}
}

func swigluF32Generic(out, gate, up []float32) {
	for i := range out {
		g := gate[i]
		out[i] = g / (1 + Exp32(-g)) * up[i]
	}
}
