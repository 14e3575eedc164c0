package cpu

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/glmrun/glmrun/backend/quant"
	"github.com/glmrun/glmrun/gguf"
)

func TestPoolForCoversRange(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		p := NewPool(threads)
		for _, n := range []int{0, 1, 5, 64, 1001} {
			hits := make([]int32, n)
			p.For(n, 4, func(w, lo, hi int) {
				if w < 0 || w >= p.Threads() {
					t.Errorf("worker %d out of range", w)
				}
				for i := lo; i < hi; i++ {
					hits[i]++
				}
			})
			for i, h := range hits {
				if h != 1 {
					t.Fatalf("threads %d n %d: index %d visited %d times", threads, n, i, h)
				}
			}
		}
	}
}

func randMat(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// TestMatMulModes checks both math modes against a float64 product of the
// dequantized weight, and the fast path's kernels against quant.VecDot.
func TestMatMulModes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const rows, cols, n = 13, 512, 5
	types := []gguf.TensorType{gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16, gguf.TypeQ8_0, gguf.TypeQ5_0, gguf.TypeQ4_0, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K}
	for _, typ := range types {
		vals := randMat(rng, rows*cols)
		rb, _ := typ.RowBytes(cols)
		data := make([]byte, rows*int(rb))
		if err := quant.Quantize(typ, vals, data); err != nil {
			t.Fatal(err)
		}
		w, err := NewWeight(typ, rows, cols, data)
		if err != nil {
			t.Fatal(err)
		}
		deq := make([]float32, rows*cols)
		if err := quant.Dequantize(typ, data, deq); err != nil {
			t.Fatal(err)
		}
		x := randMat(rng, n*cols)
		want := make([]float64, n*rows)
		for i := 0; i < n; i++ {
			for r := 0; r < rows; r++ {
				var acc float64
				for c := 0; c < cols; c++ {
					acc += float64(deq[r*cols+c]) * float64(x[i*cols+c])
				}
				want[i*rows+r] = acc
			}
		}
		for _, mode := range []Mode{Exact, Fast} {
			out := make([]float32, n*rows)
			if err := MatMul(NewPool(3), mode, out, w, x, n); err != nil {
				t.Fatal(err)
			}
			var num, den float64
			for i := range out {
				d := float64(out[i]) - want[i]
				num += d * d
				den += want[i] * want[i]
			}
			rel := math.Sqrt(num / den)
			tol := 1e-6
			if mode == Fast && typ != gguf.TypeF32 && typ != gguf.TypeF16 && typ != gguf.TypeBF16 {
				tol = 2e-2 // activations quantized to 8 bits
			}
			if rel > tol {
				t.Errorf("%s %s: rel_l2 %.3g > %.g", typ, mode, rel, tol)
			}
			if mode == Fast && typ != gguf.TypeF32 {
				// The tile kernels must agree with the row kernel.
				dot, _ := DotKernel(typ)
				xq, qb, err := QuantizeRows(nil, quant.VecDotType(typ), x, n, cols)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < n; i++ {
					for r := 0; r < rows; r++ {
						want := dot(cols, w.Row(r), xq[i*qb:(i+1)*qb])
						if d := math.Abs(float64(out[i*rows+r] - want)); d > 1e-5*(1+math.Abs(float64(want))) {
							t.Fatalf("%s fast: out[%d][%d] = %v, row kernel %v", typ, i, r, out[i*rows+r], want)
						}
					}
				}
			}
		}
		// The registered kernel must agree with the reference VecDot.
		dot, err := DotKernel(typ)
		if err != nil {
			t.Fatal(err)
		}
		vt := quant.VecDotType(typ)
		xq, qb, err := QuantizeRows(nil, vt, x, 1, cols)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := quant.VecDot(typ, cols, w.Row(0), xq[:qb])
		if err != nil {
			t.Fatal(err)
		}
		if got := dot(cols, w.Row(0), xq[:qb]); math.Abs(float64(got-ref)) > 1e-5*(1+math.Abs(float64(ref))) {
			t.Errorf("%s: kernel %v != quant.VecDot %v", typ, got, ref)
		}
	}
}

func TestNewWeightChecksSize(t *testing.T) {
	if _, err := NewWeight(gguf.TypeQ4_K, 2, 256, make([]byte, 144)); err == nil {
		t.Error("short data accepted")
	}
	if _, err := NewWeight(gguf.TypeQ4_K, 2, 100, make([]byte, 288)); err == nil {
		t.Error("row not a multiple of the block size accepted")
	}
	if err := CheckType(gguf.TensorType(999)); err == nil {
		t.Error("unknown type accepted")
	}
}

func TestRoPENormRotatesPairs(t *testing.T) {
	x := []float32{1, 0, 0, 1}
	RoPENorm(x, 1, 10000)
	// pair 0: theta = 1; pair 1: theta = 10000^(-2/4) = 0.01
	want := []float64{math.Cos(1), math.Sin(1), -math.Sin(0.01), math.Cos(0.01)}
	for i := range x {
		if math.Abs(float64(x[i])-want[i]) > 1e-6 {
			t.Fatalf("RoPENorm = %v, want %v", x, want)
		}
	}
}

// TestMatMulGroupsMatchesPerGroup checks the grouped product against one
// MatMul per group, in both modes.
func TestMatMulGroupsMatchesPerGroup(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const groups, rows, cols, n = 3, 8, 64, 5
	vals := randMat(rng, groups*rows*cols)
	rb, _ := gguf.TypeQ8_0.RowBytes(cols)
	data := make([]byte, groups*rows*int(rb))
	if err := quant.Quantize(gguf.TypeQ8_0, vals, data); err != nil {
		t.Fatal(err)
	}
	w, err := NewWeight(gguf.TypeQ8_0, groups*rows, cols, data)
	if err != nil {
		t.Fatal(err)
	}
	x := randMat(rng, groups*n*cols)
	for _, mode := range []Mode{Exact, Fast} {
		got := make([]float32, groups*n*rows)
		if err := MatMulGroups(NewPool(2), mode, got, w, groups, x, n); err != nil {
			t.Fatal(err)
		}
		for g := 0; g < groups; g++ {
			want := make([]float32, n*rows)
			if err := MatMul(nil, mode, want, w.SubRows(g*rows, (g+1)*rows), x[g*n*cols:(g+1)*n*cols], n); err != nil {
				t.Fatal(err)
			}
			for i, v := range want {
				if got[g*n*rows+i] != v {
					t.Fatalf("%s group %d index %d: %v != %v", mode, g, i, got[g*n*rows+i], v)
				}
			}
		}
	}
	if err := MatMulGroups(nil, Exact, make([]float32, 100), w, 5, x, 1); err == nil {
		t.Error("rows not divisible by groups accepted")
	}
}

func TestPhysicalCores(t *testing.T) {
	if n := PhysicalCores(); n < 1 || n > runtime.NumCPU() {
		t.Fatalf("PhysicalCores() = %d with NumCPU %d", n, runtime.NumCPU())
	}
}

func TestF32ViewUnaligned(t *testing.T) {
	buf := make([]byte, 13)
	b := buf[1:13]
	for i, v := range []float32{1.5, -2, 3.25} {
		bits := math.Float32bits(v)
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(bits), byte(bits>>8), byte(bits>>16), byte(bits>>24)
	}
	got := F32View(b)
	if len(got) != 3 || got[0] != 1.5 || got[1] != -2 || got[2] != 3.25 {
		t.Fatalf("F32View(unaligned) = %v", got)
	}
}

// TestMatMulBatchMatchesSeparate checks a batch of products of mixed types
// (two sharing one input) against one MatMul each.
func TestMatMulBatchMatchesSeparate(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const cols, n = 256, 3
	mk := func(typ gguf.TensorType, rows int) Weight {
		rb, _ := typ.RowBytes(cols)
		data := make([]byte, rows*int(rb))
		if err := quant.Quantize(typ, randMat(rng, rows*cols), data); err != nil {
			t.Fatal(err)
		}
		w, err := NewWeight(typ, rows, cols, data)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	ws := []Weight{mk(gguf.TypeQ4_K, 7), mk(gguf.TypeF32, 5), mk(gguf.TypeQ8_0, 9)}
	x1, x2 := randMat(rng, n*cols), randMat(rng, n*cols)
	xs := [][]float32{x1, x1, x2}
	for _, mode := range []Mode{Exact, Fast} {
		var jobs []Job
		for i, w := range ws {
			jobs = append(jobs, Job{Out: make([]float32, n*w.Rows), W: w, X: xs[i], N: n})
		}
		if err := MatMulBatch(NewPool(4), mode, jobs); err != nil {
			t.Fatal(err)
		}
		for i, w := range ws {
			want := make([]float32, n*w.Rows)
			if err := MatMul(nil, mode, want, w, xs[i], n); err != nil {
				t.Fatal(err)
			}
			for k := range want {
				if jobs[i].Out[k] != want[k] {
					t.Fatalf("%s job %d index %d: %v != %v", mode, i, k, jobs[i].Out[k], want[k])
				}
			}
		}
	}
}

// TestExp32 bounds Exp32's error against math.Exp over the whole float32
// range that matters (softmax and SiLU arguments) and checks the edges.
func TestExp32(t *testing.T) {
	worst := 0.0
	for x := float32(-110); x < 95; x += 0.0007 {
		got, want := float64(Exp32(x)), math.Exp(float64(x))
		if float32(want) == 0 || math.IsInf(float64(float32(want)), 1) {
			if float64(float32(want)) != got {
				t.Fatalf("Exp32(%v) = %v, want %v", x, got, float32(want))
			}
			continue
		}
		ulp := float64(math.Nextafter32(float32(want), float32(math.Inf(1))) - float32(want))
		if e := math.Abs(got-want) / ulp; e > worst {
			worst = e
		}
	}
	if worst > 2 {
		t.Errorf("Exp32 error %.2f ulp, want <= 2", worst)
	}
	t.Logf("Exp32 worst error %.2f ulp", worst)
	if v := Exp32(float32(math.NaN())); v == v {
		t.Errorf("Exp32(NaN) = %v", v)
	}
	if Exp32(0) != 1 {
		t.Errorf("Exp32(0) = %v", Exp32(0))
	}
}

func BenchmarkExp32(b *testing.B) {
	x := make([]float32, 1024)
	for i := range x {
		x[i] = -float32(i) / 64
	}
	var s float32
	b.Run("Exp32", func(b *testing.B) {
		for b.Loop() {
			for _, v := range x {
				s += Exp32(v)
			}
		}
	})
	b.Run("math.Exp", func(b *testing.B) {
		for b.Loop() {
			for _, v := range x {
				s += float32(math.Exp(float64(v)))
			}
		}
	})
	sinkF32 = s
}

var sinkF32 float32
