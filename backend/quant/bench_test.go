package quant

import (
	"math/rand/v2"
	"testing"

	"github.com/glmrun/glmrun/gguf"
)

// benchN is GLM-4.7-Flash's hidden size (the K of most decode matvecs).
const benchN = 2048

func benchDot(b *testing.B, ty gguf.TensorType, dot func(n int, w, x []byte) float32) {
	rng := rand.New(rand.NewPCG(1, 1))
	w := make([]byte, rowBytes(ty, benchN))
	if err := Quantize(ty, distributions[0].gen(rng, benchN), w); err != nil {
		b.Fatal(err)
	}
	vt := VecDotType(ty)
	x := make([]byte, rowBytes(vt, benchN))
	if err := Quantize(vt, distributions[0].gen(rng, benchN), x); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(w)))
	b.ReportAllocs()
	var s float32
	for b.Loop() {
		s += dot(benchN, w, x)
	}
	_ = s
}

func BenchmarkDotQ4KQ8K(b *testing.B)    { benchDot(b, gguf.TypeQ4_K, DotQ4KQ8K) }
func BenchmarkDotQ5KQ8K(b *testing.B)    { benchDot(b, gguf.TypeQ5_K, DotQ5KQ8K) }
func BenchmarkDotQ6KQ8K(b *testing.B)    { benchDot(b, gguf.TypeQ6_K, DotQ6KQ8K) }
func BenchmarkDotQ4_0Q8_0(b *testing.B)  { benchDot(b, gguf.TypeQ4_0, DotQ4_0Q8_0) }
func BenchmarkDotQ5_0Q8_0(b *testing.B)  { benchDot(b, gguf.TypeQ5_0, DotQ5_0Q8_0) }
func BenchmarkDotQ8_0Q8_0(b *testing.B)  { benchDot(b, gguf.TypeQ8_0, DotQ8_0Q8_0) }
func BenchmarkDotMXFP4Q8_0(b *testing.B) { benchDot(b, gguf.TypeMXFP4, DotMXFP4Q8_0) }
func BenchmarkDotMMFP4Q8_0(b *testing.B) { benchDot(b, gguf.TypeMMFP4, dotMMFP4Slab) }
func BenchmarkDotF16F32(b *testing.B)    { benchDot(b, gguf.TypeF16, DotF16F32) }
func BenchmarkDotF32F32(b *testing.B)    { benchDot(b, gguf.TypeF32, DotF32F32) }

func benchQuant(b *testing.B, ty gguf.TensorType, q func([]float32, []byte)) {
	rng := rand.New(rand.NewPCG(2, 2))
	x := distributions[0].gen(rng, benchN)
	dst := make([]byte, rowBytes(ty, benchN))
	b.SetBytes(4 * benchN)
	b.ReportAllocs()
	for b.Loop() {
		q(x, dst)
	}
}

func BenchmarkQuantizeRowQ8K(b *testing.B)  { benchQuant(b, gguf.TypeQ8_K, QuantizeRowQ8K) }
func BenchmarkQuantizeRowQ8_0(b *testing.B) { benchQuant(b, gguf.TypeQ8_0, QuantizeRowQ8_0) }
func BenchmarkQuantizeRowQ4K(b *testing.B)  { benchQuant(b, gguf.TypeQ4_K, QuantizeRowQ4K) }
func BenchmarkQuantizeRowQ6K(b *testing.B)  { benchQuant(b, gguf.TypeQ6_K, QuantizeRowQ6K) }

func benchDequant(b *testing.B, ty gguf.TensorType, d func([]byte, []float32)) {
	rng := rand.New(rand.NewPCG(3, 3))
	src := make([]byte, rowBytes(ty, benchN))
	if err := Quantize(ty, distributions[0].gen(rng, benchN), src); err != nil {
		b.Fatal(err)
	}
	dst := make([]float32, benchN)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		d(src, dst)
	}
}

func BenchmarkDequantizeRowQ4K(b *testing.B)  { benchDequant(b, gguf.TypeQ4_K, DequantizeRowQ4K) }
func BenchmarkDequantizeRowQ5K(b *testing.B)  { benchDequant(b, gguf.TypeQ5_K, DequantizeRowQ5K) }
func BenchmarkDequantizeRowQ6K(b *testing.B)  { benchDequant(b, gguf.TypeQ6_K, DequantizeRowQ6K) }
func BenchmarkDequantizeRowQ5_0(b *testing.B) { benchDequant(b, gguf.TypeQ5_0, DequantizeRowQ5_0) }
func BenchmarkDequantizeRowF16(b *testing.B)  { benchDequant(b, gguf.TypeF16, DequantizeRowF16) }
