package quant

import (
	"encoding/binary"
	"math"
)

// DotF32F32 returns Σ w[i]*x[i] over n little-endian float32 values each
// (4n bytes), with float32 products accumulated in float64 and the total
// rounded to float32 (ggml_vec_dot_f32's generic path: ggml_float sums).
func DotF32F32(n int, w, x []byte) float32 {
	w, x = w[:4*n], x[:4*n]
	var s float64
	for i := 0; i < n; i++ {
		a := math.Float32frombits(binary.LittleEndian.Uint32(w[4*i:]))
		b := math.Float32frombits(binary.LittleEndian.Uint32(x[4*i:]))
		s += float64(float32(a * b))
	}
	return float32(s)
}

// DotF16F32 returns Σ w[i]*x[i] for n fp16 weights (2n bytes) and n float32
// activations (4n bytes): float32 products, float64 accumulation.
func DotF16F32(n int, w, x []byte) float32 {
	w, x = w[:2*n], x[:4*n]
	var s float64
	for i := 0; i < n; i++ {
		a := FP16ToFloat32(binary.LittleEndian.Uint16(w[2*i:]))
		b := math.Float32frombits(binary.LittleEndian.Uint32(x[4*i:]))
		s += float64(float32(a * b))
	}
	return float32(s)
}

// DotBF16F32 returns Σ w[i]*x[i] for n bf16 weights (2n bytes) and n float32
// activations (4n bytes): float32 products, float64 accumulation.
func DotBF16F32(n int, w, x []byte) float32 {
	w, x = w[:2*n], x[:4*n]
	var s float64
	for i := 0; i < n; i++ {
		a := BF16ToFloat32(binary.LittleEndian.Uint16(w[2*i:]))
		b := math.Float32frombits(binary.LittleEndian.Uint32(x[4*i:]))
		s += float64(float32(a * b))
	}
	return float32(s)
}
