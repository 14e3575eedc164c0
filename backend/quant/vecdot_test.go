package quant

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/glmrun/glmrun/gguf"
)

var dotTypes = []gguf.TensorType{
	gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16,
	gguf.TypeQ4_0, gguf.TypeQ4_1, gguf.TypeQ5_0, gguf.TypeQ5_1, gguf.TypeQ8_0,
	gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K,
	gguf.TypeMXFP4, gguf.TypeMMFP4,
}

// TestVecDotMatchesDequantizedDot checks VecDot against the float64 dot of
// the exactly dequantized weight and activation rows. Both sides see the
// same quantized values, so they differ only by VecDot's float32 rounding:
// the bound is 1e-5 * Σ|w_i*x_i| (float32 eps is 6e-8; one wrong element
// shifts the result by about Σ|w_i*x_i|/n = 1e-3 of it at n = 1024).
func TestVecDotMatchesDequantizedDot(t *testing.T) {
	const n = 1024
	for _, ty := range dotTypes {
		vt := VecDotType(ty)
		for trial := 0; trial < 20; trial++ {
			rng := rand.New(rand.NewPCG(uint64(ty), uint64(trial)))
			d := distributions[trial%3] // gaussian, uniform, positive
			w := d.gen(rng, n)
			x := distributions[0].gen(rng, n)
			if trial%5 == 4 { // some large activations
				for i := range x {
					x[i] *= 50
				}
			}
			wq, wd, err := roundTrip(ty, w)
			if err != nil {
				t.Fatal(err)
			}
			xq, xd, err := roundTrip(vt, x)
			if err != nil {
				t.Fatal(err)
			}
			got, err := VecDot(ty, n, wq, xq)
			if err != nil {
				t.Fatalf("%s: %v", ty, err)
			}
			var want, mag float64
			for i := range wd {
				p := float64(wd[i]) * float64(xd[i])
				want += p
				mag += math.Abs(p)
			}
			if vt == gguf.TypeQ8_1 {
				// ggml's Q4_1/Q5_1 dots use the block minimum times the
				// stored fp16 s = fp16(d*Σq) instead of m*Σ(d*q): apply the
				// same substitution to the reference.
				for b := 0; b < n/32; b++ {
					m := float64(fp16At(wq[b*ty.TypeSize()+2:]))
					s := float64(fp16At(xq[b*blockQ8_1+2:]))
					var sx float64
					for _, v := range xd[32*b : 32*b+32] {
						sx += float64(v)
					}
					want += m * (s - sx)
				}
			}
			if diff := math.Abs(float64(got) - want); diff > 1e-5*mag {
				t.Errorf("%s x %s trial %d: VecDot = %g, dequantized dot = %g (diff %g, bound %g)", ty, vt, trial, got, want, diff, 1e-5*mag)
			}
			// Sanity: the quantized dot tracks the float dot of the
			// unquantized rows within the formats' error.
			if trial == 0 {
				var exact float64
				for i := range w {
					exact += float64(w[i]) * float64(x[i])
				}
				if math.Abs(float64(got)-exact) > 0.2*mag {
					t.Errorf("%s: VecDot %g far from the unquantized dot %g", ty, got, exact)
				}
			}
		}
	}
}

func TestVecDotTypes(t *testing.T) {
	want := map[gguf.TensorType]gguf.TensorType{
		gguf.TypeQ4_K: gguf.TypeQ8_K, gguf.TypeQ5_K: gguf.TypeQ8_K, gguf.TypeQ6_K: gguf.TypeQ8_K,
		gguf.TypeQ4_0: gguf.TypeQ8_0, gguf.TypeQ5_0: gguf.TypeQ8_0, gguf.TypeQ8_0: gguf.TypeQ8_0,
		gguf.TypeMXFP4: gguf.TypeQ8_0, gguf.TypeMMFP4: gguf.TypeQ8_0,
		gguf.TypeQ4_1: gguf.TypeQ8_1, gguf.TypeQ5_1: gguf.TypeQ8_1,
		gguf.TypeF32: gguf.TypeF32, gguf.TypeF16: gguf.TypeF32, gguf.TypeBF16: gguf.TypeF32,
	}
	for ty, vt := range want {
		if got := VecDotType(ty); got != vt || !CanVecDot(ty) {
			t.Errorf("VecDotType(%s) = %s (CanVecDot %v), want %s", ty, got, CanVecDot(ty), vt)
		}
	}
	if CanVecDot(gguf.TypeQ8_K) || CanVecDot(gguf.TypeQ2_K) {
		t.Error("CanVecDot must be false for activation-only and unsupported types")
	}
}

// TestDotQ4KQ8KHandBlock checks DotQ4KQ8K on a hand-built block whose dot is
// known in closed form: codes all 3, sub-block scales j+1, mins 2, d = 0.5,
// dmin = 0.25; activations all 1 with d_x = 2.
func TestDotQ4KQ8KHandBlock(t *testing.T) {
	w := make([]byte, blockQ4K)
	putFP16(w, 0.5)
	putFP16(w[2:], 0.25)
	var ls, lm [8]uint8
	for j := range ls {
		ls[j], lm[j] = uint8(j+1), 2
	}
	packScaleMinK4(w[4:16], &ls, &lm)
	for i := 16; i < blockQ4K; i++ {
		w[i] = 0x33
	}
	x := make([]float32, 256)
	for i := range x {
		x[i] = 2
	}
	xq := make([]byte, blockQ8_K)
	QuantizeRowQ8K(x, xq)
	// each element: w = 0.5*(j+1)*3 - 0.25*2, x = 2
	var want float64
	for j := 0; j < 8; j++ {
		want += 32 * (0.5*float64(j+1)*3 - 0.5) * 2
	}
	if got := DotQ4KQ8K(256, w, xq); float64(got) != want {
		t.Errorf("DotQ4KQ8K = %g, want %g", got, want)
	}
}
