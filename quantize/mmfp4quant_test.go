package quantize

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/glmrun/glmrun/backend/quant"
)

// groupErrors returns the squared error of each 128-group of x against the
// dequantized row (codes q, scales s).
func groupErrors(x []float32, q, s []byte) []float64 {
	y := make([]float32, len(x))
	quant.DequantizeRowMMFP4(q, s, y)
	out := make([]float64, len(x)/128)
	for i := range x {
		d := float64(x[i]) - float64(y[i])
		out[i/128] += d * d
	}
	return out
}

// TestMMFP4SearchNeverWorse: per group, the searched scale's error is at
// most quant.QuantizeRowMMFP4's (round-to-nearest amax/6), and lower on
// average for Gaussian weights; all-zero, huge and signed-zero groups work.
func TestMMFP4SearchNeverWorse(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const n = 128 * 512
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * math.Exp(rng.NormFloat64()))
	}
	copy(x[:128], make([]float32, 128))    // all zero
	x[128] = float32(math.Copysign(0, -1)) // -0 in a group
	for i := 256; i < 384; i++ {           // near the fp16 range
		x[i] = float32(300000 * rng.NormFloat64())
	}
	x[384] = 1e-8 // tiny values
	qa, sa := make([]byte, n/2), make([]byte, n/64)
	qb, sb := make([]byte, n/2), make([]byte, n/64)
	quant.QuantizeRowMMFP4(x, qa, sa)
	QuantizeRowMMFP4Search(x, qb, sb)
	ea, eb := groupErrors(x, qa, sa), groupErrors(x, qb, sb)
	var sumA, sumB float64
	for g := range ea {
		if eb[g] > ea[g]*(1+1e-6) {
			t.Errorf("group %d: search error %g > round-to-nearest %g", g, eb[g], ea[g])
		}
		if math.IsNaN(eb[g]) || math.IsInf(eb[g], 0) {
			t.Errorf("group %d: error %v", g, eb[g])
		}
		if g >= 4 { // the Gaussian groups (0-3 are the edge cases)
			sumA += ea[g]
			sumB += eb[g]
		}
	}
	if eb[0] != 0 {
		t.Errorf("all-zero group: error %g", eb[0])
	}
	if !(sumB < 0.95*sumA) {
		t.Errorf("search error %g is not clearly below round-to-nearest %g", sumB, sumA)
	}
	t.Logf("squared error: round-to-nearest %.4g, search %.4g (%.1f%% lower)", sumA, sumB, 100*(1-sumB/sumA))
}

// TestFP4CodeMatchesBruteForce: the threshold code rule picks a nearest E2M1
// value (ties to the smaller magnitude, +0 over -0) like a full scan.
func TestFP4CodeMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	for i := 0; i < 200000; i++ {
		d := float32(math.Exp(rng.NormFloat64() * 3))
		x := float32(rng.NormFloat64()*8) * d
		if i%7 == 0 { // exact ties and grid points
			x = float32(rng.IntN(25)-12) * 0.5 * d
		}
		c, _ := fp4Code(x, d)
		kv := [16]float32{0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}
		best, bestErr := 0, absf(kv[0]*d-x)
		for j := 1; j < 16; j++ {
			if e := absf(kv[j]*d - x); e < bestErr {
				best, bestErr = j, e
			}
		}
		if int(c) != best {
			t.Fatalf("x=%v d=%v: code %d (err %v), brute force %d (err %v)", x, d, c, absf(kv[c]*d-x), best, bestErr)
		}
	}
}
