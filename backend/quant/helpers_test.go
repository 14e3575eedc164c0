package quant

import (
	"math"
	"math/rand/v2"

	"github.com/glmrun/glmrun/gguf"
)

// distribution names a generator of test rows.
type distribution struct {
	name string
	gen  func(rng *rand.Rand, n int) []float32
}

var distributions = []distribution{
	{"gaussian", func(rng *rand.Rand, n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		return x
	}},
	{"uniform", func(rng *rand.Rand, n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.Float64()*2 - 1)
		}
		return x
	}},
	{"positive", func(rng *rand.Rand, n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.Float64()*3 + 0.5)
		}
		return x
	}},
	{"zero", func(rng *rand.Rand, n int) []float32 { return make([]float32, n) }},
	{"constant", func(rng *rand.Rand, n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = 0.7
		}
		return x
	}},
	{"negconstant", func(rng *rand.Rand, n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = -2.5
		}
		return x
	}},
	{"outliers", func(rng *rand.Rand, n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 0.02)
			if rng.IntN(64) == 0 {
				x[i] = float32(rng.NormFloat64() * 3)
			}
		}
		return x
	}},
	{"tiny", func(rng *rand.Rand, n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 1e-6)
		}
		return x
	}},
	{"large", func(rng *rand.Rand, n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 300)
		}
		return x
	}},
}

// rowBytes is the exact byte size of n elements of type t.
func rowBytes(t gguf.TensorType, n int) int { return n / t.BlockSize() * t.TypeSize() }

// roundTrip quantizes x to t and dequantizes it again.
func roundTrip(t gguf.TensorType, x []float32) ([]byte, []float32, error) {
	q := make([]byte, rowBytes(t, len(x)))
	if err := Quantize(t, x, q); err != nil {
		return nil, nil, err
	}
	y := make([]float32, len(x))
	if err := Dequantize(t, q, y); err != nil {
		return nil, nil, err
	}
	return q, y, nil
}

func rms(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(x)))
}

func rmsDiff(x, y []float32) float64 {
	var s float64
	for i := range x {
		d := float64(x[i]) - float64(y[i])
		s += d * d
	}
	return math.Sqrt(s / float64(len(x)))
}
