package glm4moe_test

import (
	"testing"

	"github.com/glmrun/glmrun/model/glm4moe"
)

// TestFastPathNearLlamaCppFast compares the quantized-activation path with
// llama.cpp's own quantized CPU path on the same file: both quantize
// activations the same way, so they should be much closer to each other
// than either is to the float32 reference.
func TestFastPathNearLlamaCppFast(t *testing.T) {
	toks := readTokens(t)
	ref := readF32(t, "llamacpp-fast-logits-q4_k_m.f32")
	m := openModel(t, "glm-tiny-q4_k_m.gguf", glm4moe.Options{UBatch: 512, Threads: 2})
	got := runAll(t, m, toks)
	r := compare(got, ref, tinyVocab)
	t.Logf("fast vs llama.cpp fast: rel_l2 %.3g top1 %.4f KL %.4g", r.relL2, r.top1, r.kl)
	if r.kl > 0.03 || r.top1 < 0.8 {
		t.Errorf("fast path far from llama.cpp's fast path: KL %.4g top-1 %.4f", r.kl, r.top1)
	}
}
