package glm4moe_test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/testdata"
	"github.com/glmrun/glmrun/model/glm4moe"
)

const tinyVocab = 2304

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

func readF32(t *testing.T, name string) []float32 {
	t.Helper()
	return testdata.ReadF32(t, testdata.GLMTiny(t, name))
}

// metrics compares logits x with ref ([n][vocab]): rel_l2 over all logits,
// top-1 agreement, and mean KL(ref||x) over positions
// (testdata.CompareLogits).
type metrics struct{ relL2, top1, kl float64 }

func compare(x, ref []float32, vocab int) metrics {
	r := testdata.CompareLogits(x, ref, vocab)
	return metrics{r.RelL2, r.Top1, r.MeanKL}
}

func argmax(x []float32) int { return testdata.Argmax(x) }

func openModel(t *testing.T, name string, opt glm4moe.Options) *glm4moe.Model {
	t.Helper()
	f, err := gguf.Open(testdata.GLMTiny(t, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := glm4moe.Load(f, opt)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// runAll returns the logits of every token, all in one Forward call.
func runAll(t *testing.T, m *glm4moe.Model, toks []int32) []float32 {
	t.Helper()
	c, err := m.NewCache(len(toks))
	if err != nil {
		t.Fatal(err)
	}
	logits, err := m.Forward(c, toks, true)
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != len(toks) {
		t.Fatalf("cache length %d after %d tokens", c.Len(), len(toks))
	}
	return logits
}

func TestOracle(t *testing.T) {
	toks := readTokens(t)
	cases := []struct {
		file, ref string
		exact     bool
	}{
		{"glm-tiny-bf16.gguf", "hf-logits-bf16.f32", true},
		{"glm-tiny-q4_k_m.gguf", "ref-logits-q4_k_m.f32", true},
		{"glm-tiny-q4_k_m.gguf", "ref-logits-q4_k_m.f32", false},
	}
	for _, tc := range cases {
		ref := readF32(t, tc.ref)
		if len(ref) != len(toks)*tinyVocab {
			t.Fatalf("%s: %d floats, want %d", tc.ref, len(ref), len(toks)*tinyVocab)
		}
		for _, ub := range []int{512, 1} {
			mode := "fast"
			if tc.exact {
				mode = "exact"
			}
			name := tc.file + "/" + mode + "/ub" + strconv.Itoa(ub)
			t.Run(name, func(t *testing.T) {
				m := openModel(t, tc.file, glm4moe.Options{Exact: tc.exact, UBatch: ub, Threads: 2})
				got := runAll(t, m, toks)
				r := compare(got, ref, tinyVocab)
				t.Logf("%s: rel_l2 %.3g top1 %.4f KL %.4g", name, r.relL2, r.top1, r.kl)
				if tc.exact {
					if r.relL2 > 2e-3 || r.top1 < 0.99 {
						t.Errorf("exact path: rel_l2 %.3g (max 2e-3), top-1 %.4f (min 0.99)", r.relL2, r.top1)
					}
				} else if r.kl > 0.03 || r.top1 < 0.80 {
					t.Errorf("fast path: KL %.4g (max 0.03), top-1 %.4f (min 0.80)", r.kl, r.top1)
				}
			})
		}
	}
}
