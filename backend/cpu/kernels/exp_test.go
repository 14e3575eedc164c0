package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// ulpDiff is the distance in units in the last place between two finite
// float32 values of the same sign.
func ulpDiff(a, b float32) int64 {
	d := int64(math.Float32bits(a)) - int64(math.Float32bits(b))
	if d < 0 {
		d = -d
	}
	return d
}

// TestExp32Accuracy checks the scalar Exp32 against math.Exp.
func TestExp32Accuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 200000; i++ {
		x := float32(r.Float64()*174 - 86.9)
		want := float32(math.Exp(float64(x)))
		if d := ulpDiff(Exp32(x), want); d > 2 {
			t.Fatalf("Exp32(%g) = %g, math.Exp %g: %d ulp", x, Exp32(x), want, d)
		}
	}
	if !math.IsNaN(float64(Exp32(float32(math.NaN())))) || Exp32(-200) != 0 || !math.IsInf(float64(Exp32(200)), 1) {
		t.Error("Exp32 special values")
	}
}

// TestExpShiftF32 compares the vector softmax exponentials with the twin on
// lengths with tails, arguments across the clamp range, and the edge
// behaviour (NaN kept, very negative arguments tiny).
func TestExpShiftF32(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for _, n := range []int{1, 15, 16, 17, 100, 1000} {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(r.Float64()*40 - 30)
			}
			want := append([]float32(nil), x...)
			expShiftF32Generic(want, 2.5, 1.25)
			got, buf := guardedF32(n, 3)
			copy(got, x)
			ExpShiftF32(got, 2.5, 1.25)
			checkGuardF32(t, buf, guardLen+3, n)
			for i := range got {
				if want[i] > 1e-37 && ulpDiff(got[i], want[i]) > 2 {
					t.Fatalf("n=%d: x=%g: got %g, twin %g", n, x[i], got[i], want[i])
				}
			}
		}
		x := make([]float32, 32)
		x[3] = float32(math.NaN())
		x[5] = -1000
		ExpShiftF32(x, 1, 0)
		if !math.IsNaN(float64(x[3])) || x[5] < 0 || x[5] > 2e-38 || x[0] != 1 {
			t.Errorf("edge values: NaN -> %g, e^-1000 -> %g, e^0 -> %g", x[3], x[5], x[0])
		}
	})
}

// TestSwiGLUF32 compares the vector SwiGLU with the twin (relative 4e-7:
// 2 ulp of the exponential plus the division), out aliasing gate.
func TestSwiGLUF32(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 10))
		for _, n := range []int{5, 16, 33, 1536} {
			g, u := make([]float32, n), make([]float32, n)
			for i := range g {
				g[i] = float32(r.NormFloat64() * 8)
				u[i] = float32(r.NormFloat64())
			}
			g[0] = -120 // e^120 clamps to e^88
			want := make([]float32, n)
			swigluF32Generic(want, g, u)
			got := append([]float32(nil), g...)
			SwiGLUF32(got, got, u)
			for i := range got {
				if d := math.Abs(float64(got[i] - want[i])); d > 4e-7*math.Abs(float64(want[i]))+1e-30 {
					t.Fatalf("n=%d i=%d: silu(%g)·%g = %g, twin %g", n, i, g[i], u[i], got[i], want[i])
				}
			}
		}
	})
}

// FuzzExpShiftF32 compares the vector exponential with its twin on fuzzed
// lengths, scales and shifts, with arguments kept inside the range where
// both are defined alike ([−86, 86]; TestExpShiftF32 covers the clamp),
// to the same 2 ulp.
func FuzzExpShiftF32(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}, uint8(40), int8(-3))
	f.Fuzz(func(t *testing.T, data []byte, scaleRaw uint8, shiftRaw int8) {
		scale, shift := float32(scaleRaw)/64+1.0/64, float32(shiftRaw)/16
		n := len(data) / 2
		x := make([]float32, n)
		for i := range x {
			a := float32(int16(uint16(data[2*i])|uint16(data[2*i+1])<<8)) / 32768 * 86 // the argument
			x[i] = shift + a/scale
		}
		want := append([]float32(nil), x...)
		expShiftF32Generic(want, scale, shift)
		for _, l := range fastLevels() {
			restore := setLevel(l)
			got := append([]float32(nil), x...)
			ExpShiftF32(got, scale, shift)
			restore()
			for i := range got {
				if want[i] > 1e-37 && ulpDiff(got[i], want[i]) > 2 {
					t.Fatalf("%v n=%d: e^((%g-%g)*%g) = %g, twin %g", l, n, x[i], shift, scale, got[i], want[i])
				}
			}
		}
	})
}

// FuzzSwiGLUF32 compares the vector SwiGLU with its twin on fuzzed lengths
// and values (gates past the exponential's clamp included) within
// TestSwiGLUF32's bound.
func FuzzSwiGLUF32(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21})
	f.Fuzz(func(t *testing.T, data []byte) {
		n := len(data) / 3
		g, u := make([]float32, n), make([]float32, n)
		for i := range g {
			g[i] = float32(int16(uint16(data[3*i])|uint16(data[3*i+1])<<8)) / 256 // ±128
			u[i] = float32(int8(data[3*i+2])) / 32
		}
		want := make([]float32, n)
		swigluF32Generic(want, g, u)
		for _, l := range fastLevels() {
			restore := setLevel(l)
			got := make([]float32, n)
			SwiGLUF32(got, g, u)
			restore()
			for i := range got {
				if d := math.Abs(float64(got[i] - want[i])); d > 4e-7*math.Abs(float64(want[i]))+1e-30 {
					t.Fatalf("%v n=%d i=%d: silu(%g)·%g = %g, twin %g", l, n, i, g[i], u[i], got[i], want[i])
				}
			}
		}
	})
}
