package kernels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/glmrun/glmrun/backend/quant"
)

func TestF32Cols(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(51, 52))
		for _, n := range []int{0, 1, 7, 8, 9, 16, 17, 31, 32, 33, 63, 64, 100, 512, 576, 1000} {
			for _, cols := range []int{0, 1, 3, 4, 5, 8, 9, 20} {
				a := randF32(r, n, 1)
				b := randF32(r, cols*n, 1)
				checkDotCols(t, "F32", n, cols, func(dst []float32, ldd int) { DotF32Cols(a, b, cols, dst, ldd) },
					func(c int) (twin, tol, one float32) {
						bc := b[c*n : (c+1)*n]
						var abs float32
						for k := range a {
							abs += absF32(a[k] * bc[k])
						}
						return dotF32Generic(a, bc), reduceTol(n, abs), DotF32(a, bc)
					})

				const astride = 2
				alpha := randF32(r, max(1, 2*cols), 1)
				y0 := randF32(r, cols*n, 1)
				y, ybuf := guardedF32(cols*n, (n+3)%16)
				copy(y, y0)
				AxpyF32Cols(a, alpha, astride, y, cols)
				checkGuardF32(t, ybuf, guardLen+(n+3)%16, cols*n)
				want := append([]float32(nil), y0...)
				axpyF32ColsGeneric(a, alpha, astride, want, cols)
				for i := range want {
					c, k := i/max(n, 1), i%max(n, 1)
					if !closeTo(y[i], want[i], 4*eps32*(absF32(alpha[c*astride]*a[k])+absF32(y0[i]))) {
						t.Fatalf("axpy n=%d cols=%d i=%d: %v, twin %v", n, cols, i, y[i], want[i])
					}
				}
			}
		}
	})
}

// checkDotCols runs a multi-column dot of cols columns of n elements into
// outputs ldd = 3 apart (in a guarded buffer whose gaps hold -7) and checks
// that nothing outside the outputs was written and that column c is within
// tol of the twin's value and bit-identical to the single-column kernel's
// (batching must not change a product), as want(c) gives them.
func checkDotCols(t *testing.T, name string, n, cols int, run func(dst []float32, ldd int), want func(c int) (twin, tol, one float32)) {
	t.Helper()
	const ldd = 3
	dstLen := 0
	if cols > 0 {
		dstLen = (cols-1)*ldd + 1
	}
	dst, buf := guardedF32(dstLen, n%16)
	for i := range dst {
		dst[i] = -7
	}
	run(dst, ldd)
	checkGuardF32(t, buf, guardLen+n%16, dstLen)
	for i := range dst {
		if i%ldd != 0 {
			if dst[i] != -7 {
				t.Fatalf("%s n=%d cols=%d: gap %d written", name, n, cols, i)
			}
			continue
		}
		c := i / ldd
		twin, tol, one := want(c)
		if !closeTo(dst[i], twin, tol) {
			t.Fatalf("%s n=%d cols=%d c=%d: %v, twin %v", name, n, cols, c, dst[i], twin)
		}
		if math.Float32bits(one) != math.Float32bits(dst[i]) {
			t.Fatalf("%s n=%d cols=%d c=%d: %v, single-column kernel %v", name, n, cols, c, dst[i], one)
		}
	}
}

func TestF32ColsBadShapesPanic(t *testing.T) {
	for name, f := range map[string]func(){
		"DotF32Cols short b":    func() { DotF32Cols(make([]float32, 4), make([]float32, 7), 2, make([]float32, 2), 1) },
		"DotF32Cols short dst":  func() { DotF32Cols(make([]float32, 4), make([]float32, 8), 2, make([]float32, 2), 2) },
		"AxpyF32Cols short y":   func() { AxpyF32Cols(make([]float32, 4), make([]float32, 2), 1, make([]float32, 7), 2) },
		"AxpyF32Cols short alp": func() { AxpyF32Cols(make([]float32, 4), make([]float32, 2), 2, make([]float32, 8), 2) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func FuzzDotF32Cols(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}, uint8(5), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, nRaw, colsRaw uint8) {
		n, cols := int(nRaw)%80, int(colsRaw)%11
		r := rand.New(rand.NewPCG(uint64(len(data)), uint64(nRaw)<<8|uint64(colsRaw)))
		a, b := make([]float32, n), make([]float32, cols*n)
		for i := range a {
			a[i] = float32(int8(r.Uint32())) / 16
		}
		for i := range b {
			b[i] = float32(int8(r.Uint32())) / 8
			if len(data) > 0 {
				b[i] += float32(int8(data[i%len(data)]))
			}
		}
		want := make([]float32, cols)
		dotF32ColsGeneric(a, b, cols, want, 1)
		for _, l := range fastLevels() {
			restore := setLevel(l)
			got := make([]float32, cols)
			DotF32Cols(a, b, cols, got, 1)
			restore()
			for c := range got {
				var abs float32
				for k := range a {
					abs += absF32(a[k] * b[c*n+k])
				}
				if !closeTo(got[c], want[c], reduceTol(n, abs)) {
					t.Fatalf("%v n=%d c=%d: %v, twin %v", l, n, c, got[c], want[c])
				}
			}
		}
	})
}

func FuzzAxpyF32Cols(f *testing.F) {
	f.Add([]byte{1, 2, 3}, uint8(17), uint8(6))
	f.Fuzz(func(t *testing.T, data []byte, nRaw, colsRaw uint8) {
		n, cols := int(nRaw)%80, int(colsRaw)%11
		r := rand.New(rand.NewPCG(uint64(len(data)), uint64(nRaw)<<8|uint64(colsRaw)))
		x, alpha, y0 := make([]float32, n), make([]float32, cols+1), make([]float32, cols*n)
		for i := range x {
			x[i] = float32(int8(r.Uint32())) / 16
			if len(data) > 0 {
				x[i] += float32(int8(data[i%len(data)]))
			}
		}
		for i := range alpha {
			alpha[i] = float32(int8(r.Uint32())) / 32
		}
		for i := range y0 {
			y0[i] = float32(int8(r.Uint32()))
		}
		want := append([]float32(nil), y0...)
		axpyF32ColsGeneric(x, alpha, 1, want, cols)
		for _, l := range fastLevels() {
			restore := setLevel(l)
			got := append([]float32(nil), y0...)
			AxpyF32Cols(x, alpha, 1, got, cols)
			restore()
			for i := range got {
				c, k := i/n, i%n
				if !closeTo(got[i], want[i], 4*eps32*(absF32(alpha[c]*x[k])+absF32(y0[i]))) {
					t.Fatalf("%v n=%d i=%d: %v, twin %v", l, n, i, got[i], want[i])
				}
			}
		}
	})
}

// halfColsKernels are the half-precision column kernels with their
// single-column twin and the bit conversions.
var halfColsKernels = []struct {
	name string
	fast func(w []byte, b []float32, cols int, dst []float32, ldd int)
	one  func(w []byte, x []float32) float32 // the single-column kernel
	twin func(w []byte, x []float32) float32
	back func(float32) uint16
}{
	{"F16", DotF16F32Cols, DotF16F32, dotF16F32Generic, quant.Float32ToFP16},
	{"BF16", DotBF16F32Cols, DotBF16F32, dotBF16F32Generic, quant.Float32ToBF16},
}

func TestHalfF32Cols(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(53, 54))
		for _, k := range halfColsKernels {
			for _, n := range []int{0, 1, 7, 15, 16, 17, 32, 33, 48, 64, 100, 192, 512} {
				for _, cols := range []int{0, 1, 3, 4, 5, 8, 9} {
					w := make([]byte, 2*n)
					for i := 0; i < n; i++ {
						binary.LittleEndian.PutUint16(w[2*i:], k.back(r.Float32()*4-2))
					}
					wb := bytesAt(w, n%64)
					b := randF32(r, cols*n, 1)
					checkDotCols(t, k.name, n, cols, func(dst []float32, ldd int) { k.fast(wb, b, cols, dst, ldd) },
						func(c int) (twin, tol, one float32) {
							bc := b[c*n : (c+1)*n]
							var abs float32
							for j := range bc {
								abs += absF32(k.twin(w[2*j:2*j+2], bc[j:j+1]))
							}
							return k.twin(w, bc), reduceTol(n, abs), k.one(w, bc)
						})
				}
			}
		}
	})
}

func TestHalfF32ColsBadShapesPanic(t *testing.T) {
	for _, k := range halfColsKernels {
		for name, f := range map[string]func(){
			"odd w":     func() { k.fast(make([]byte, 7), make([]float32, 8), 2, make([]float32, 2), 1) },
			"short b":   func() { k.fast(make([]byte, 8), make([]float32, 7), 2, make([]float32, 2), 1) },
			"short dst": func() { k.fast(make([]byte, 8), make([]float32, 8), 2, make([]float32, 2), 2) },
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s %s: no panic", k.name, name)
					}
				}()
				f()
			}()
		}
	}
}

func FuzzDotHalfF32Cols(f *testing.F) {
	f.Add([]byte{0, 0x3c, 1, 0, 0xff, 0x7b, 0, 0x80}, uint8(5), false)
	f.Fuzz(func(t *testing.T, w []byte, colsRaw uint8, bf16 bool) {
		w = w[:len(w)&^1]
		n, cols := len(w)/2, int(colsRaw)%11
		k := halfColsKernels[0]
		if bf16 {
			k = halfColsKernels[1]
		}
		r := rand.New(rand.NewPCG(uint64(n), uint64(colsRaw)))
		b := make([]float32, cols*n)
		for i := range b {
			b[i] = float32(int8(r.Uint32())) / 8
		}
		want := make([]float32, cols)
		dotHalfColsGeneric(k.twin, w, b, cols, want, 1)
		for _, l := range fastLevels() {
			restore := setLevel(l)
			got := make([]float32, cols)
			k.fast(w, b, cols, got, 1)
			restore()
			for c := range got {
				var abs float32
				for j := 0; j < n; j++ {
					abs += absF32(k.twin(w[2*j:2*j+2], b[c*n+j:c*n+j+1]))
				}
				// NaN/Inf weights, or sums that may overflow in some order.
				if math.IsNaN(float64(abs)) || math.IsInf(float64(abs), 0) {
					continue
				}
				if !closeTo(got[c], want[c], reduceTol(n, abs)) {
					t.Fatalf("%v %s n=%d c=%d: %v, twin %v", l, k.name, n, c, got[c], want[c])
				}
				restore := setLevel(l)
				one := k.one(w, b[c*n:(c+1)*n])
				restore()
				if math.Float32bits(one) != math.Float32bits(got[c]) {
					t.Fatalf("%v %s n=%d c=%d: %v, single-column kernel %v", l, k.name, n, c, got[c], one)
				}
			}
		}
	})
}
