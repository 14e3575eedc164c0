package glm4moe

import (
	"math"
	"testing"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/testdata"
)

// TestAttentionScoreForms checks that scoring a span head by head (one
// call per head over all rows) and row by row give the same logits:
// the same dot products, so equal up to float32 summation order.
func TestAttentionScoreForms(t *testing.T) {
	f, err := gguf.Open(testdata.GLMTiny(t, "glm-tiny-q4_k_m.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := Load(f, Options{Quiet: true, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	toks := make([]int32, 200)
	for i := range toks {
		toks[i] = int32((i*37 + 11) % 2000)
	}
	run := func() []float32 {
		c, err := m.NewCache(len(toks))
		if err != nil {
			t.Fatal(err)
		}
		out, err := m.Forward(c, toks, true)
		if err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), out...)
	}
	byHead := run()
	defer func(v int) { attnHeadRowsBytes = v }(attnHeadRowsBytes)
	attnHeadRowsBytes = 0
	byRow := run()
	var num, den float64
	for i := range byHead {
		d := float64(byHead[i] - byRow[i])
		num += d * d
		den += float64(byRow[i]) * float64(byRow[i])
	}
	if rel := math.Sqrt(num / den); !(rel < 1e-5) {
		t.Fatalf("head-by-head vs row-by-row scoring: rel_l2 %.3g", rel)
	}
}
