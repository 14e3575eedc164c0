package glm4moe_test

import (
	"math"
	"runtime"
	"slices"
	"testing"

	"github.com/glmrun/glmrun/model/glm4moe"
)

// TestLogitsBuffersReused checks the buffer contracts of Forward (last-token
// logits live in a buffer the cache owns, overwritten by its next Forward)
// and ForwardBatchInto (rows alias the caller's buffer), and that the values
// equal freshly allocated results.
func TestLogitsBuffersReused(t *testing.T) {
	sm := buildSynth(t, heldOutSpec(), 11, nil)
	m := loadSynth(t, sm, glm4moe.Options{UBatch: 4, Threads: 2})
	v := sm.spec.vocab
	toks := synthTokens(12, v)

	// Reference: every step on a fresh cache, logits copied.
	ref := make([][]float32, 3)
	for k := range ref {
		c, _ := m.NewCache(32)
		l, err := m.Forward(c, toks[:9+k], false)
		if err != nil {
			t.Fatal(err)
		}
		ref[k] = slices.Clone(l)
	}
	c, _ := m.NewCache(32)
	first, err := m.Forward(c, toks[:9], false)
	if err != nil {
		t.Fatal(err)
	}
	for k := 1; k < 3; k++ {
		l, err := m.Forward(c, toks[8+k:9+k], false)
		if err != nil {
			t.Fatal(err)
		}
		if &l[0] != &first[0] {
			t.Fatalf("step %d: Forward returned a new logits slice, want the cache's buffer", k)
		}
		if r := compare(l, ref[k], v); r.relL2 > 1e-6 {
			t.Errorf("step %d: reused buffer vs fresh cache rel_l2 %.3g", k, r.relL2)
		}
	}

	// ForwardBatchInto: rows alias buf and match ForwardBatch (here two
	// micro-batches of UBatch 4 over 3 sequences of 3 tokens).
	batch := func(into bool, buf []float32) [][]float32 {
		cs := make([]*glm4moe.Cache, 3)
		tk := make([][]int32, 3)
		for i := range cs {
			cs[i], _ = m.NewCache(32)
			tk[i] = toks[i : i+3]
		}
		var out [][]float32
		var err error
		if into {
			out, err = m.ForwardBatchInto(buf, cs, tk)
		} else {
			out, err = m.ForwardBatch(cs, tk)
		}
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := batch(false, nil)
	buf := make([]float32, 3*v)
	got := batch(true, buf)
	for i := range got {
		if &got[i][0] != &buf[i*v] {
			t.Errorf("ForwardBatchInto row %d does not alias buf[%d:]", i, i*v)
		}
		if r := compare(got[i], want[i], v); r.relL2 > 1e-6 {
			t.Errorf("ForwardBatchInto row %d vs ForwardBatch rel_l2 %.3g", i, r.relL2)
		}
	}
	if short := batch(true, make([]float32, v)); len(short) != 3 || &short[2][0] == nil {
		t.Error("ForwardBatchInto with a short buffer did not return three rows")
	}
}

// TestDecodeAllocations bounds the heap bytes a decode step allocates on
// glm-tiny: the logits and the per-layer expert buffers are reused, so a
// step allocates only small bookkeeping (closures, rotation tables), well
// under one logits row.
func TestDecodeAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("-race: sync.Pool drops items at random")
	}
	m := openModel(t, "glm-tiny-q4_k_m.gguf", glm4moe.Options{Threads: 2})
	v := m.Config().VocabSize
	c, _ := m.NewCache(80)
	toks := synthTokens(60, v)
	if _, err := m.Forward(c, toks[:8], false); err != nil {
		t.Fatal(err)
	}
	for _, tk := range toks[8:12] { // warm the pools
		if _, err := m.Forward(c, []int32{tk}, false); err != nil {
			t.Fatal(err)
		}
	}
	// The pools are emptied by a collection, so a window with a GC in it
	// re-allocates them: take the best of a few windows.
	const steps = 10
	per := math.Inf(1)
	for w := 0; w < 4; w++ {
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		for _, tk := range toks[12+w*steps : 12+(w+1)*steps] {
			if _, err := m.Forward(c, []int32{tk}, false); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&b)
		per = min(per, float64(b.TotalAlloc-a.TotalAlloc)/steps)
	}
	t.Logf("%.0f bytes allocated per decode step (vocab %d: %d bytes of logits)", per, v, 4*v)
	if per > float64(3*v) {
		t.Errorf("a decode step allocates %.0f bytes, want < %d (3/4 of a logits row)", per, 3*v)
	}
}
