package quant

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/glmrun/glmrun/gguf"
)

// relRMSEBound is, per format, the largest allowed RMSE(x - dequant(quant(x)))
// / RMS(x) on every test distribution except "tiny" (about 1.3x the worst
// value measured over the distributions, so a regression of a few percent
// in a quantizer's choices, or a wrong packing, fails).
var relRMSEBound = map[gguf.TensorType]float64{
	gguf.TypeQ4_0:  0.11,
	gguf.TypeQ4_1:  0.11,
	gguf.TypeQ5_0:  0.056,
	gguf.TypeQ5_1:  0.065,
	gguf.TypeQ8_0:  0.016,
	gguf.TypeQ8_1:  0.016,
	gguf.TypeQ4_K:  0.09,
	gguf.TypeQ5_K:  0.053,
	gguf.TypeQ6_K:  0.025,
	gguf.TypeQ8_K:  0.036,
	gguf.TypeMXFP4: 0.26,
	gguf.TypeMMFP4: 0.14,
	gguf.TypeF16:   1.0 / 2048, // half an fp16 ulp, relative
	gguf.TypeBF16:  1.0 / 256,  // half a bf16 ulp, relative
	gguf.TypeF32:   0,
}

func TestRoundTripError(t *testing.T) {
	const n = 4096
	for ty, bound := range relRMSEBound {
		for di, d := range distributions {
			rng := rand.New(rand.NewPCG(uint64(ty), uint64(di)))
			x := d.gen(rng, n)
			q, y, err := roundTrip(ty, x)
			if err != nil {
				t.Fatalf("%s %s: %v", ty, d.name, err)
			}
			for i, v := range y {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("%s %s: element %d dequantized to %g", ty, d.name, i, v)
				}
			}
			r, e := rms(x), rmsDiff(x, y)
			switch d.name {
			case "zero":
				if e != 0 {
					t.Errorf("%s: all-zero input came back with rmse %g", ty, e)
				}
			case "tiny":
				// The fp16 block scales of Q8_0/Q4_0/Q5_0/K-quants underflow
				// for |x| ~ 1e-6 (ggml behaves the same); only require a
				// result bounded by the input's scale.
				if lim := 3*float64(maxAbs(x)) + 1e-6; maxAbsDiff(x, y) > lim {
					t.Errorf("%s tiny: max error %g above %g", ty, maxAbsDiff(x, y), lim)
				}
			default:
				if e > bound*r {
					t.Errorf("%s %s: relative rmse %.4g above the bound %.4g", ty, d.name, e/r, bound)
				}
			}
			checkElementBounds(t, ty, d.name, x, q, y)
		}
	}
}

// checkElementBounds applies the per-element error bounds that follow from
// each format's rounding rule, computed from the block's stored scale.
func checkElementBounds(t *testing.T, ty gguf.TensorType, dist string, x []float32, q []byte, y []float32) {
	t.Helper()
	fail := func(i int, bound float64) {
		t.Errorf("%s %s: element %d: x=%g dequantized %g, error above the format bound %g", ty, dist, i, x[i], y[i], bound)
	}
	// Every bound gets a relative slack of 1e-6 for float32 rounding.
	const slack = 1 + 1e-6
	switch ty {
	case gguf.TypeF16:
		for i := range x {
			if b := math.Max(math.Abs(float64(x[i]))/2048, 0x1p-25); math.Abs(float64(x[i]-y[i])) > b*slack {
				fail(i, b)
			}
		}
	case gguf.TypeBF16:
		for i := range x {
			if b := math.Abs(float64(x[i])) / 256; math.Abs(float64(x[i]-y[i])) > b*slack {
				fail(i, b)
			}
		}
	case gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ5_0:
		// Codes use the unrounded d_u; dequantization the stored fp16 d_s:
		// |err| <= r*d_u + qmax*|d_u - d_s| with r = 1/2 (Q8_0, roundf) or
		// 1 (Q4_0/Q5_0: truncation of x/d+8.5 clamped at 15/31).
		bs := ty.TypeSize()
		for b := 0; b < len(x)/32; b++ {
			xb := x[32*b : 32*b+32]
			amax := float64(maxAbs(xb))
			var du, r, qmax float64
			switch ty {
			case gguf.TypeQ8_0:
				du, r, qmax = float64(float32(amax)/127), 0.5, 127
			case gguf.TypeQ4_0:
				du, r, qmax = amax/8, 1, 8
			case gguf.TypeQ5_0:
				du, r, qmax = amax/16, 1, 16
			}
			ds := math.Abs(float64(fp16At(q[b*bs:])))
			lim := (r*du + qmax*math.Abs(du-ds)) * slack
			for i := range xb {
				if math.Abs(float64(xb[i]-y[32*b+i])) > lim {
					fail(32*b+i, lim)
				}
			}
		}
	case gguf.TypeQ8_K:
		// q = nearest(x/d) with the stored fp32 d: |err| <= |d|/2.
		for b := 0; b < len(x)/256; b++ {
			d := math.Abs(float64(math.Float32frombits(binary.LittleEndian.Uint32(q[b*blockQ8_K:]))))
			for i := 256 * b; i < 256*(b+1); i++ {
				if math.Abs(float64(x[i]-y[i])) > d/2*slack+1e-30 {
					fail(i, d/2)
				}
			}
		}
	case gguf.TypeMMFP4:
		// Nearest E2M1 point with the stored scale s: the largest gap of the
		// E2M1 grid is 2 (4..6), so |err| <= s, plus saturation when fp16
		// rounded amax/6 down: 6*|amax/6 - s|.
		n := len(x)
		for g := 0; g < n/128; g++ {
			s := float64(fp16At(q[n/2+2*g:]))
			su := float64(maxAbs(x[128*g:128*g+128])) / 6
			lim := (s + 6*math.Abs(su-s)) * slack
			for i := 128 * g; i < 128*(g+1); i++ {
				if math.Abs(float64(x[i]-y[i])) > lim {
					fail(i, lim)
				}
			}
		}
	case gguf.TypeMXFP4:
		// Grid unit u = 2^(e-127) with amax < 8u: nearest point of
		// u*{0,.5,1,1.5,2,3,4,6}, saturating at 6u, so |err| <= 2u.
		for b := 0; b < len(x)/32; b++ {
			u := 2 * float64(E8M0ToFloat32Half(q[b*blockMXFP4]))
			for i := 32 * b; i < 32*(b+1); i++ {
				if math.Abs(float64(x[i]-y[i])) > 2*u*slack {
					fail(i, 2*u)
				}
			}
		}
	}
}

func maxAbs(x []float32) float32 {
	var m float32
	for _, v := range x {
		m = max(m, abs32(v))
	}
	return m
}

func maxAbsDiff(x, y []float32) float64 {
	var m float64
	for i := range x {
		m = math.Max(m, math.Abs(float64(x[i])-float64(y[i])))
	}
	return m
}

// TestKQuantCodesUseStoredScales checks the K-quant invariant that makes
// their per-element error small: every element whose value lies inside its
// sub-block's representable range is within half a step of its
// reconstruction.
func TestKQuantCodesUseStoredScales(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := distributions[0].gen(rng, 2048)
	for _, c := range []struct {
		ty   gguf.TensorType
		nmax float64
	}{{gguf.TypeQ4_K, 15}, {gguf.TypeQ5_K, 31}} {
		q, y, err := roundTrip(c.ty, x)
		if err != nil {
			t.Fatal(err)
		}
		bs := c.ty.TypeSize()
		inRange := 0
		for b := 0; b < len(x)/256; b++ {
			blk := q[b*bs : (b+1)*bs]
			d, dmin := float64(fp16At(blk)), float64(fp16At(blk[2:]))
			for j := 0; j < 8; j++ {
				sc, m := scaleMinK4(j, blk[4:16])
				D, M := d*float64(sc), dmin*float64(m)
				for l := 0; l < 32; l++ {
					i := 256*b + 32*j + l
					v := float64(x[i])
					if D == 0 || v < -M || v > c.nmax*D-M {
						continue
					}
					inRange++
					if e := math.Abs(v - float64(y[i])); e > D/2*(1+1e-5) {
						t.Fatalf("%s element %d: error %g above half step %g", c.ty, i, e, D/2)
					}
				}
			}
		}
		if inRange < len(x)*9/10 {
			t.Errorf("%s: only %d of %d elements inside their sub-block range", c.ty, inRange, len(x))
		}
	}
}
