package testdata

import (
	"encoding/binary"
	"math"
	"os"
	"testing"
)

// ReadF32 reads a file of little-endian float32 values (the oracle logits,
// glmrun --dump-logits output), failing the test on error.
func ReadF32(t testing.TB, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// LogSoftmax returns log softmax(x) in float64.
func LogSoftmax(x []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, float64(v))
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	ls := math.Log(s) + m
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v) - ls
	}
	return out
}

// Argmax returns the index of the largest value (the first on ties).
func Argmax(x []float32) int {
	b := 0
	for i, v := range x {
		if v > x[b] {
			b = i
		}
	}
	return b
}

// LogitStats compares logits x with a reference, both [n][vocab] row-major.
type LogitStats struct {
	RelL2  float64 // ||x - ref|| / ||ref|| over all logits
	Top1   float64 // fraction of positions whose argmax agrees
	MeanKL float64 // mean over positions of KL(ref || x)
}

// CompareLogits computes the tolerances of the glm-tiny README for x
// against ref ([n][vocab] each).
func CompareLogits(x, ref []float32, vocab int) LogitStats {
	var num, den float64
	for i := range ref {
		d := float64(x[i]) - float64(ref[i])
		num += d * d
		den += float64(ref[i]) * float64(ref[i])
	}
	n := len(ref) / vocab
	agree := 0
	for p := 0; p < n; p++ {
		if Argmax(x[p*vocab:(p+1)*vocab]) == Argmax(ref[p*vocab:(p+1)*vocab]) {
			agree++
		}
	}
	return LogitStats{RelL2: math.Sqrt(num / den), Top1: float64(agree) / float64(n), MeanKL: MeanKL(ref, x, vocab)}
}

// MeanKL is the mean over positions of KL(ref || x) of [n][vocab] logits,
// in float64.
func MeanKL(ref, x []float32, vocab int) float64 {
	n := len(ref) / vocab
	var kl float64
	for p := 0; p < n; p++ {
		lr, lx := LogSoftmax(ref[p*vocab:(p+1)*vocab]), LogSoftmax(x[p*vocab:(p+1)*vocab])
		for i := range lr {
			kl += math.Exp(lr[i]) * (lr[i] - lx[i])
		}
	}
	return kl / float64(n)
}
