package glm4moe

import (
	"math"
	"testing"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/testdata"
)

// openTinyQ4 loads glm-tiny's Q4_K_M file on the CPU with 2 threads (the
// file is closed when the test ends).
func openTinyQ4(t *testing.T) *Model {
	t.Helper()
	f, err := gguf.Open(testdata.GLMTiny(t, "glm-tiny-q4_k_m.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := Load(f, Options{Quiet: true, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestAttentionScoreForms checks that scoring a span head by head (one
// call per head over all rows) and row by row give the same logits:
// the same dot products, so equal up to float32 summation order.
func TestAttentionScoreForms(t *testing.T) {
	m := openTinyQ4(t)
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

// TestScratchNotRead: scratch.floats hands out uninitialised memory; filled
// with NaN, the logits of a prompt and of a batched decode step (8
// sequences, MoE experts with several tokens) stay bit-identical, so no
// caller reads a slice before writing it.
func TestScratchNotRead(t *testing.T) {
	m := openTinyQ4(t)
	run := func() []float32 {
		var all []float32
		caches := make([]*Cache, 8)
		toks := make([][]int32, 8)
		for s := range caches {
			c, err := m.NewCache(80)
			if err != nil {
				t.Fatal(err)
			}
			caches[s] = c
			toks[s] = make([]int32, 70+s)
			for i := range toks[s] {
				toks[s][i] = int32((i*37 + 11*s) % 2000)
			}
		}
		out, err := m.ForwardBatchInto(nil, caches, toks)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out {
			all = append(all, o...)
		}
		for s := range toks {
			toks[s] = []int32{int32(100 + s)}
		}
		out, err = m.ForwardBatchInto(nil, caches, toks)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out {
			all = append(all, o...)
		}
		return all
	}
	want := run()
	poisonScratch = true
	defer func() { poisonScratch = false }()
	got := run()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("logit %d: %v with poisoned scratch, %v without", i, got[i], want[i])
		}
	}
}
