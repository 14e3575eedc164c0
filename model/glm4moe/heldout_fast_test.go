package glm4moe_test

import (
	"testing"

	"github.com/glmrun/glmrun/model/glm4moe"
)

// TestHeldOutFastPath holds the fast path (quantized activations, SIMD
// kernels) to the acceptance bounds (mean KL <= 0.03, top-1 >= 0.80)
// against the float64 expand-form reference on the held-out random model
// (shapes and quantized types unlike glm-tiny's), with one pass over the
// prompt and one token at a time.
func TestHeldOutFastPath(t *testing.T) {
	spec := heldOutSpec()
	sm := buildSynth(t, spec, 7, nil)
	toks := synthTokens(32, spec.vocab)
	ref := naiveForward(sm, toks)
	flat := make([]float32, 0, len(toks)*spec.vocab)
	for _, row := range ref {
		for _, v := range row {
			flat = append(flat, float32(v))
		}
	}
	for _, ub := range []int{512, 1} {
		got := runAll(t, loadSynth(t, sm, glm4moe.Options{UBatch: ub, Threads: 2}), toks)
		r := compare(got, flat, spec.vocab)
		t.Logf("held-out fast ub=%d vs naive float64: rel_l2 %.3g top1 %.4f KL %.4g", ub, r.relL2, r.top1, r.kl)
		if r.kl > 0.03 || r.top1 < 0.80 {
			t.Errorf("held-out fast ub=%d: KL %.4g (max 0.03), top-1 %.4f (min 0.80)", ub, r.kl, r.top1)
		}
	}
}
