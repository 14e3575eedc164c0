package quantize

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/testdata"
	"github.com/glmrun/glmrun/model/glm4moe"
)

// requantizeTo converts in to preset p into a file in a temporary directory.
func requantizeTo(t *testing.T, in string, p Preset) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), p.String()+".gguf")
	if _, err := RequantizeFile(in, out, Options{Preset: p, Threads: 2}); err != nil {
		t.Fatalf("requantize %s to %s: %v", in, p, err)
	}
	return out
}

func TestQ4KMReproducesLlamaQuantize(t *testing.T) {
	bf16 := testdata.GLMTiny(t, "glm-tiny-bf16.gguf")
	refPath := testdata.GLMTiny(t, "glm-tiny-q4_k_m.gguf")
	var got bytes.Buffer
	st, err := func() (Stats, error) {
		in, err := gguf.Open(bf16)
		if err != nil {
			return Stats{}, err
		}
		defer in.Close()
		return Requantize(in, &got, Options{Preset: PresetQ4_K_M, Threads: 3})
	}()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := gguf.Open(refPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	out, err := gguf.Parse(got.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Tensors) != len(ref.Tensors) {
		t.Fatalf("%d tensors, llama-quantize wrote %d", len(out.Tensors), len(ref.Tensors))
	}
	for i := range ref.Tensors {
		a, b := &out.Tensors[i], &ref.Tensors[i]
		if a.Name != b.Name || a.Type != b.Type {
			t.Errorf("tensor %d: %s %s, llama-quantize has %s %s", i, a.Name, a.Type, b.Name, b.Type)
			continue
		}
		if !bytes.Equal(out.TensorData(a), ref.TensorData(b)) {
			t.Errorf("tensor %s (%s): data differs from llama-quantize's", a.Name, a.Type)
		}
	}
	// Metadata: same keys, order and values.
	if len(out.KV) != len(ref.KV) {
		t.Errorf("%d metadata pairs, llama-quantize wrote %d", len(out.KV), len(ref.KV))
	}
	for i := 0; i < min(len(out.KV), len(ref.KV)); i++ {
		if out.KV[i].Key != ref.KV[i].Key {
			t.Errorf("metadata %d: key %s, llama-quantize has %s", i, out.KV[i].Key, ref.KV[i].Key)
		}
	}
	refBytes, err := os.ReadFile(refPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), refBytes) {
		t.Errorf("file bytes differ from glm-tiny-q4_k_m.gguf (%d vs %d bytes)", got.Len(), len(refBytes))
	}
	if st.Changed == 0 || st.Fallbacks != 9 {
		t.Errorf("stats: %+v (want 9 fallbacks: 3 attn_k_b f16, 3 attn_q_b + 3 attn_v_b q5_0)", st)
	}
}

func readTokens(t *testing.T) []int32 {
	t.Helper()
	b, err := os.ReadFile(testdata.GLMTiny(t, "tokens.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int32
	for _, f := range strings.Fields(string(b)) {
		v, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("tokens.txt: %v", err)
		}
		ids = append(ids, int32(v))
	}
	return ids
}

// logitsOf runs the model in path on toks, returning [len(toks)][vocab]
// logits. exact selects the engine's exact path (float32 math on exactly
// dequantized weights: the loss is the weights' alone); otherwise the fast
// path (activations quantized to each weight type's vec-dot type: Q8_K for
// the K-quants, Q8_0 for q5_0/q8_0/MMFP4, as llama.cpp's CPU path).
func logitsOf(t *testing.T, path string, toks []int32, exact bool) []float32 {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := glm4moe.Load(f, glm4moe.Options{Threads: 2, Exact: exact})
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	c, err := m.NewCache(len(toks))
	if err != nil {
		t.Fatal(err)
	}
	lg, err := m.Forward(c, toks, true)
	if err != nil {
		t.Fatal(err)
	}
	return lg
}

// TestMMFP4TinyKL: the MMFP4 glm-tiny loses at most 3x the KL that Q4_K_M
// (llama-quantize's file) loses against HF's bf16 logits, on the exact and
// on the fast path.
func TestMMFP4TinyKL(t *testing.T) {
	toks := readTokens(t)
	ref := testdata.ReadF32(t, testdata.GLMTiny(t, "hf-logits-bf16.f32"))
	vocab := len(ref) / len(toks)
	q4Path := testdata.GLMTiny(t, "glm-tiny-q4_k_m.gguf")
	mmPath := requantizeTo(t, testdata.GLMTiny(t, "glm-tiny-bf16.gguf"), PresetMMFP4)
	for _, exact := range []bool{true, false} {
		q4 := testdata.MeanKL(ref, logitsOf(t, q4Path, toks, exact), vocab)
		mm := testdata.MeanKL(ref, logitsOf(t, mmPath, toks, exact), vocab)
		t.Logf("glm-tiny mean KL vs hf-logits-bf16 (exact=%v): Q4_K_M %.5f, MMFP4 %.5f (ratio %.2f)", exact, q4, mm, mm/q4)
		if !(q4 > 0) || !(mm > 0) {
			t.Fatalf("degenerate KL: q4 %v mmfp4 %v", q4, mm)
		}
		if mm > 3*q4 {
			t.Errorf("exact=%v: MMFP4 KL %.5f exceeds 3x Q4_K_M's %.5f", exact, mm, q4)
		}
	}
}
