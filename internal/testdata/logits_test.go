package testdata

import (
	"math"
	"testing"
)

func TestCompareLogits(t *testing.T) {
	ref := []float32{1, 2, 3, 0, 5, 1} // two positions of vocab 3
	same := CompareLogits(ref, ref, 3)
	if same.RelL2 != 0 || same.Top1 != 1 || math.Abs(same.MeanKL) > 1e-12 {
		t.Fatalf("identical logits: %+v", same)
	}
	x := []float32{1, 2, 3, 5, 0, 1} // second position's argmax moves
	d := CompareLogits(x, ref, 3)
	if d.Top1 != 0.5 || d.RelL2 <= 0 || d.MeanKL <= 0 {
		t.Fatalf("different logits: %+v", d)
	}
	// KL of the second position alone, by hand: p = softmax(ref row 2).
	lp, lq := LogSoftmax(ref[3:]), LogSoftmax(x[3:])
	var kl float64
	for i := range lp {
		kl += math.Exp(lp[i]) * (lp[i] - lq[i])
	}
	if math.Abs(d.MeanKL-kl/2) > 1e-12 {
		t.Fatalf("mean KL %v, want %v", d.MeanKL, kl/2)
	}
}
