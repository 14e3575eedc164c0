package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/glmrun/glmrun/backend/quant"
)

const eps32 = 1.0 / (1 << 24)

// f32Lengths: every length 0..300 (all tail shapes of every unroll), plus a
// few long ones including GLM row lengths.
func f32Lengths() []int {
	var ns []int
	for n := 0; n <= 300; n++ {
		ns = append(ns, n)
	}
	return append(ns, 511, 512, 513, 1000, 1536, 2048, 4099, 5120)
}

// reduceTol is the summation-order bound of the reductions: 2·n·2⁻²⁴·Σ|terms|.
func reduceTol(n int, absSum float32) float32 { return 2*float32(n+1)*eps32*absSum + 1e-30 }

func TestDotF32(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for _, n := range f32Lengths() {
			off := n % 16
			a, _ := guardedF32(n, off)
			b, _ := guardedF32(n, (off+5)%16)
			copy(a, randF32(r, n, 3))
			copy(b, randF32(r, n, 2))
			var abs float32
			for i := range a {
				abs += absF32(a[i] * b[i])
			}
			got, want := DotF32(a, b), dotF32Generic(a, b)
			if !closeTo(got, want, reduceTol(n, abs)) {
				t.Fatalf("n=%d: DotF32=%v twin=%v", n, got, want)
			}
			gotS, wantS := SumSquares(a), sumSquaresGeneric(a)
			var sq float32
			for _, v := range a {
				sq += v * v
			}
			if !closeTo(gotS, wantS, reduceTol(n, sq)) {
				t.Fatalf("n=%d: SumSquares=%v twin=%v", n, gotS, wantS)
			}
		}
	})
}

func TestDotF32Exact(t *testing.T) {
	// Small integers: every partial sum is exact, so any order must agree
	// bit for bit; this catches a dropped or doubled vector.
	eachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, n := range f32Lengths() {
			a, b := make([]float32, n), make([]float32, n)
			for i := range a {
				a[i], b[i] = float32(r.IntN(33)-16), float32(r.IntN(33)-16)
			}
			if got, want := DotF32(a, b), dotF32Generic(a, b); got != want {
				t.Fatalf("n=%d: DotF32=%v twin=%v", n, got, want)
			}
			if got, want := SumSquares(a), sumSquaresGeneric(a); got != want {
				t.Fatalf("n=%d: SumSquares=%v twin=%v", n, got, want)
			}
		}
	})
}

func TestDotHalfF32(t *testing.T) {
	type kernel struct {
		name       string
		fast, twin func([]byte, []float32) float32
		conv       func(uint16) float32
		back       func(float32) uint16
	}
	ks := []kernel{
		{"BF16", DotBF16F32, dotBF16F32Generic, quant.BF16ToFloat32, quant.Float32ToBF16},
		{"F16", DotF16F32, dotF16F32Generic, quant.FP16ToFloat32, quant.Float32ToFP16},
	}
	eachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, k := range ks {
			for _, n := range f32Lengths() {
				w := make([]byte, 2*n)
				for i := 0; i < n; i++ {
					var h uint16
					switch r.IntN(8) {
					case 0: // f16 subnormals / tiny bf16
						h = uint16(r.IntN(0x400)) | uint16(r.IntN(2))<<15
					case 1: // extremes of the exponent range, finite
						h = 0x7bff ^ uint16(r.IntN(2))<<15
						if k.name == "BF16" {
							h = 0x747f ^ uint16(r.IntN(2))<<15 // large, but sums stay finite
						}
					default:
						h = k.back(r.Float32()*4 - 2)
					}
					binary.LittleEndian.PutUint16(w[2*i:], h)
				}
				x := randF32(r, n, 1)
				wb := bytesAt(w, n%64)
				var abs float32
				for i, v := range x {
					abs += absF32(k.conv(binary.LittleEndian.Uint16(w[2*i:])) * v)
				}
				got, want := k.fast(wb, x), k.twin(w, x)
				if !closeTo(got, want, reduceTol(n, abs)) {
					t.Fatalf("%s n=%d: fast=%v twin=%v", k.name, n, got, want)
				}
			}
		}
	})
}

func TestAxpyScaleF32(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for _, n := range f32Lengths() {
			off := (n * 7) % 16
			x := randF32(r, n, 2)
			y0 := randF32(r, n, 2)
			a := r.Float32()*4 - 2
			y, buf := guardedF32(n, off)
			copy(y, y0)
			AxpyF32(a, x, y)
			checkGuardF32(t, buf, guardLen+off, n)
			want := append([]float32(nil), y0...)
			axpyF32Generic(a, x, want)
			for i := range want {
				if !closeTo(y[i], want[i], 2*eps32*2*(absF32(a*x[i])+absF32(y0[i]))) {
					t.Fatalf("axpy n=%d i=%d: got %v want %v", n, i, y[i], want[i])
				}
			}
			s, buf := guardedF32(n, off)
			copy(s, y0)
			ScaleF32(a, s)
			checkGuardF32(t, buf, guardLen+off, n)
			want = append(want[:0], y0...)
			scaleF32Generic(a, want)
			for i := range want {
				if math.Float32bits(s[i]) != math.Float32bits(want[i]) {
					t.Fatalf("scale n=%d i=%d: got %v want %v", n, i, s[i], want[i])
				}
			}
		}
	})
}

func TestLengthMismatchPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"DotF32":     func() { DotF32(make([]float32, 3), make([]float32, 4)) },
		"AxpyF32":    func() { AxpyF32(1, make([]float32, 3), make([]float32, 2)) },
		"DotBF16F32": func() { DotBF16F32(make([]byte, 5), make([]float32, 3)) },
		"DotF16F32":  func() { DotF16F32(make([]byte, 5), make([]float32, 3)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic on mismatched lengths", name)
				}
			}()
			f()
		}()
	}
}

func FuzzDotF32(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, off uint8) {
		n := len(data) / 8
		a, b := make([]float32, n), make([]float32, n)
		for i := range a {
			a[i] = float32(int8(data[8*i])) * float32(data[8*i+1]) / 64
			b[i] = float32(int8(data[8*i+2])) / 16
		}
		var abs float32
		for i := range a {
			abs += absF32(a[i] * b[i])
		}
		var sq float32
		for _, v := range a {
			sq += v * v
		}
		for _, l := range fastLevels() {
			restore := setLevel(l)
			got, gotS := DotF32(a, b), SumSquares(a)
			restore()
			if want := dotF32Generic(a, b); !closeTo(got, want, reduceTol(n, abs)) {
				t.Fatalf("%v n=%d: DotF32=%v twin=%v", l, n, got, want)
			}
			if want := sumSquaresGeneric(a); !closeTo(gotS, want, reduceTol(n, sq)) {
				t.Fatalf("%v n=%d: SumSquares=%v twin=%v", l, n, gotS, want)
			}
		}
	})
}

func FuzzAxpyF32(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, float32(0.5))
	f.Fuzz(func(t *testing.T, data []byte, a float32) {
		n := len(data) / 2
		x, y := make([]float32, n), make([]float32, n)
		for i := range x {
			x[i], y[i] = float32(int8(data[2*i])), float32(int8(data[2*i+1]))/8
		}
		want := append([]float32(nil), y...)
		axpyF32Generic(a, x, want)
		wantS := append([]float32(nil), y...)
		scaleF32Generic(a, wantS)
		for _, l := range fastLevels() {
			restore := setLevel(l)
			got := append([]float32(nil), y...)
			AxpyF32(a, x, got)
			gotS := append([]float32(nil), y...)
			ScaleF32(a, gotS)
			restore()
			for i := range gotS { // ScaleF32 is bit-exact
				if math.Float32bits(gotS[i]) != math.Float32bits(wantS[i]) && !(gotS[i] != gotS[i] && wantS[i] != wantS[i]) {
					t.Fatalf("%v i=%d: ScaleF32 %v, twin %v", l, i, gotS[i], wantS[i])
				}
			}
			for i := range got {
				if !closeTo(got[i], want[i], 4*eps32*(absF32(a*x[i])+absF32(y[i]))) {
					t.Fatalf("%v i=%d: got %v want %v", l, i, got[i], want[i])
				}
			}
		}
	})
}

func FuzzDotHalfF32(f *testing.F) {
	f.Add([]byte{0, 0x3c, 1, 0, 0xff, 0x7b, 0, 0x80}, false)
	f.Fuzz(func(t *testing.T, w []byte, bf16 bool) {
		n := len(w) / 2
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i%7) - 3
		}
		fast, twin := DotF16F32, dotF16F32Generic
		if bf16 {
			fast, twin = DotBF16F32, dotBF16F32Generic
		}
		want := twin(w, x)
		if math.IsNaN(float64(want)) || math.IsInf(float64(want), 0) {
			return
		}
		var abs float32
		for i := 0; i < n; i++ {
			abs += absF32(twin(w[2*i:2*i+2], x[i:i+1]))
		}
		for _, l := range fastLevels() {
			restore := setLevel(l)
			got := fast(w, x)
			restore()
			if !closeTo(got, want, reduceTol(n, abs)) {
				t.Fatalf("%v bf16=%v n=%d: fast=%v twin=%v", l, bf16, n, got, want)
			}
		}
	})
}

func TestChooseLevel(t *testing.T) {
	for _, c := range []struct {
		det  Level
		env  string
		want Level
		err  bool
	}{
		{LevelAVX512, "", LevelAVX512, false},
		{LevelAVX512, "off", LevelGeneric, false},
		{LevelAVX512, "AVX2", LevelAVX2, false},
		{LevelAVX2, "avx512", LevelAVX2, false},
		{LevelGeneric, "avx2", LevelGeneric, false},
		{LevelAVX512, "sse9", LevelGeneric, true},
	} {
		got, err := chooseLevel(c.det, c.env)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("chooseLevel(%v, %q) = %v, %v; want %v, err=%v", c.det, c.env, got, err, c.want, c.err)
		}
	}
}

func ExampleDotF32() {
	fmt.Println(DotF32([]float32{1, 2, 3}, []float32{4, 5, 6}))
	// Output: 32
}

// unalignedF32 returns n float32 starting off bytes (1..3 misaligns them)
// into a fresh byte buffer, filled from src.
func unalignedF32(src []float32, off int) []float32 {
	buf := make([]byte, 4*len(src)+off+4)
	s := unsafe.Slice((*float32)(unsafe.Pointer(&buf[off])), len(src))
	copy(s, src)
	return s
}

// TestF32Misaligned runs the f32 kernels on float32 slices that are not
// 4-byte aligned (F32View of a GGUF tensor could in principle be), checking
// the results against the twins on aligned copies.
func TestF32Misaligned(t *testing.T) {
	if raceEnabled {
		t.Skip("-race: checkptr forbids misaligned float32 pointers")
	}
	eachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 10))
		for _, n := range []int{0, 1, 7, 8, 15, 16, 17, 63, 64, 65, 200, 2048} {
			a0, b0 := randF32(r, n, 1), randF32(r, n, 1)
			for off := 1; off < 4; off++ {
				a, b := unalignedF32(a0, off), unalignedF32(b0, 4-off)
				var abs float32
				for i := range a0 {
					abs += absF32(a0[i] * b0[i])
				}
				if got, want := DotF32(a, b), dotF32Generic(a0, b0); !closeTo(got, want, reduceTol(n, abs)) {
					t.Fatalf("n=%d off=%d: DotF32=%v twin=%v", n, off, got, want)
				}
				y := unalignedF32(b0, off)
				AxpyF32(0.5, a, y)
				want := append([]float32(nil), b0...)
				axpyF32Generic(0.5, a0, want)
				for i := range want {
					if !closeTo(y[i], want[i], 4*eps32*(absF32(a0[i])+absF32(b0[i]))) {
						t.Fatalf("n=%d off=%d: axpy[%d]=%v twin=%v", n, off, i, y[i], want[i])
					}
				}
			}
		}
	})
}
