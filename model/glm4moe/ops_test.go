package glm4moe_test

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/glmrun/glmrun/backend"
	"github.com/glmrun/glmrun/backend/cpu"
	"github.com/glmrun/glmrun/backend/cuda"
	"github.com/glmrun/glmrun/model/glm4moe"
)

// opsOracleCase is one model file and the reference logits it is held to.
type opsOracleCase struct{ file, ref string }

var (
	opsBF16 = opsOracleCase{"glm-tiny-bf16.gguf", "hf-logits-bf16.f32"}
	opsQ4KM = opsOracleCase{"glm-tiny-q4_k_m.gguf", "ref-logits-q4_k_m.f32"}
)

// opsDecodeTokens is how many tokens the one-token-at-a-time runs step
// through (a prefix of tokens.txt, to keep the CPU test short).
const opsDecodeTokens = 256

// newOpsRunner loads file (micro-batches of ub tokens) and binds it to b.
func newOpsRunner(t *testing.T, b backend.Backend, file string, ub, maxTokens int) *glm4moe.OpsRunner {
	t.Helper()
	m := openModel(t, file, glm4moe.Options{Threads: 2, UBatch: ub})
	r, err := glm4moe.NewOpsRunner(m, b, maxTokens)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// logPlacement logs how many tensors of each model type the backend holds
// in which dtype ("q5_K->f32": dequantized) and the cache type.
func logPlacement(t *testing.T, r *glm4moe.OpsRunner) {
	t.Helper()
	kinds := map[string]int{}
	for _, ti := range r.Tensors() {
		kinds[fmt.Sprintf("%s->%s", ti.Model, ti.Backend)]++
	}
	var parts []string
	for k, v := range kinds {
		parts = append(parts, fmt.Sprintf("%s x%d", k, v))
	}
	slices.Sort(parts)
	t.Logf("weights: %s; cache %s", strings.Join(parts, ", "), r.CacheType())
}

// checkOpsLogits holds got ([n][vocab]) to the first n rows of ref with
// TestOracle's tolerances: the exact ones (rel_l2 <= 2e-3, top-1 >= 0.99)
// when the backend computes exactly, the fast ones (mean KL <= 0.03, top-1
// >= 0.80) when it quantizes activations.
func checkOpsLogits(t *testing.T, what string, got, ref []float32, exact bool) {
	t.Helper()
	n := len(got) / tinyVocab
	r := compare(got, ref[:n*tinyVocab], tinyVocab)
	t.Logf("%s (%d tokens): rel_l2 %.3g top1 %.4f KL %.4g", what, n, r.relL2, r.top1, r.kl)
	if exact {
		if r.relL2 > 2e-3 || r.top1 < 0.99 {
			t.Errorf("%s: exact path: rel_l2 %.3g (max 2e-3), top-1 %.4f (min 0.99)", what, r.relL2, r.top1)
		}
	} else if r.kl > 0.03 || r.top1 < 0.80 {
		t.Errorf("%s: fast path: KL %.4g (max 0.03), top-1 %.4f (min 0.80)", what, r.kl, r.top1)
	}
}

// runOpsOracle runs tc through OpsRunner on b three ways: every token in
// one call (prefill, one micro-batch), every token in one call split into
// micro-batches of 100 (later batches attend to the cache earlier ones
// wrote), and the first decodeN tokens one call per token (decode), each
// against the reference.
func runOpsOracle(t *testing.T, b backend.Backend, tc opsOracleCase, exact bool, decodeN int) {
	toks := readTokens(t)
	ref := readF32(t, tc.ref)
	if len(ref) != len(toks)*tinyVocab {
		t.Fatalf("%s: %d floats, want %d", tc.ref, len(ref), len(toks)*tinyVocab)
	}
	t.Run("prefill", func(t *testing.T) {
		r := newOpsRunner(t, b, tc.file, 512, len(toks))
		logPlacement(t, r)
		got, err := r.ForwardAll(toks)
		if err != nil {
			t.Fatal(err)
		}
		if r.Len() != len(toks) {
			t.Fatalf("Len %d after %d tokens", r.Len(), len(toks))
		}
		checkOpsLogits(t, b.Name()+" "+tc.file+" prefill", got, ref, exact)
	})
	t.Run("ubatch100", func(t *testing.T) {
		r := newOpsRunner(t, b, tc.file, 100, len(toks))
		got, err := r.ForwardAll(toks)
		if err != nil {
			t.Fatal(err)
		}
		checkOpsLogits(t, b.Name()+" "+tc.file+" ubatch 100", got, ref, exact)
	})
	t.Run("decode", func(t *testing.T) {
		n := min(decodeN, len(toks))
		r := newOpsRunner(t, b, tc.file, 512, n)
		got := make([]float32, 0, n*tinyVocab)
		for i, tok := range toks[:n] {
			logits, err := r.Forward([]int32{tok})
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			if len(logits) != tinyVocab {
				t.Fatalf("step %d: %d logits, want %d", i, len(logits), tinyVocab)
			}
			got = append(got, logits...)
		}
		if r.Len() != n {
			t.Fatalf("Len %d after %d steps", r.Len(), n)
		}
		checkOpsLogits(t, b.Name()+" "+tc.file+" decode", got, ref, exact)
	})
}

// TestOpsOracleCPU runs the backend.Ops forward pass on the CPU backend
// against glm-tiny's references: Exact mode (f32 math on exactly
// dequantized weights, f32 cache) on the bf16 and Q4_K_M files, Fast mode
// (quantized activations, f16 cache) on Q4_K_M.
func TestOpsOracleCPU(t *testing.T) {
	cases := []struct {
		tc   opsOracleCase
		mode cpu.Mode
	}{
		{opsBF16, cpu.Exact},
		{opsQ4KM, cpu.Exact},
		{opsQ4KM, cpu.Fast},
	}
	for _, c := range cases {
		mode := "fast"
		if c.mode == cpu.Exact {
			mode = "exact"
		}
		t.Run(c.tc.file+"/"+mode, func(t *testing.T) {
			b := cpu.NewBackend(2, c.mode)
			t.Cleanup(func() { b.Close() })
			if got := b.Capabilities().QuantizedActivations; got != (c.mode == cpu.Fast) {
				t.Fatalf("cpu %s backend reports QuantizedActivations %v", mode, got)
			}
			runOpsOracle(t, b, c.tc, c.mode == cpu.Exact, opsDecodeTokens)
		})
	}
}

// openOpsCUDA opens CUDA device 0 as a backend.Backend, skipping as openGPU
// does: under CI=true, and when no device opens unless
// GLMRUN_CUDA_REQUIRE=1.
func openOpsCUDA(t *testing.T) backend.Backend {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Skip("CI=true: CI machines have no GPU; CUDA tests run on the GPU machine")
	}
	b, err := cuda.OpenBackend(0)
	if err != nil {
		if errors.Is(err, cuda.ErrNoDevice) && os.Getenv("GLMRUN_CUDA_REQUIRE") == "" {
			t.Skipf("no CUDA device: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("cuda Close: %v", err)
		}
	})
	return b
}

// TestOpsOracleCUDA is TestOpsOracleCPU on the CUDA backend. It quantizes
// the activations of quantized weights (Q8_1) and of tensor-core GEMMs
// (f16), so both files are held to the fast path's bounds (mean KL <= 0.03,
// top-1 >= 0.80), the bf16 one against the HF logits; rel_l2 is logged.
// Every token of tokens.txt is stepped through decode.
func TestOpsOracleCUDA(t *testing.T) {
	b := openOpsCUDA(t)
	exact := !b.Capabilities().QuantizedActivations
	for _, tc := range []opsOracleCase{opsBF16, opsQ4KM} {
		t.Run(tc.file, func(t *testing.T) { runOpsOracle(t, b, tc, exact, 1<<30) })
	}
}

// TestOpsErrors checks that bad input is an error that leaves the runner
// usable and its length unchanged, that a prompt split over calls equals
// one call, that Reset starts over, and that Forward's last-token logits
// are ForwardAll's last row.
func TestOpsErrors(t *testing.T) {
	toks := readTokens(t)[:12]
	b := cpu.NewBackend(2, cpu.Exact)
	t.Cleanup(func() { b.Close() })
	r := newOpsRunner(t, b, "glm-tiny-q4_k_m.gguf", 512, 10)
	if r.Cap() != 10 || r.Len() != 0 {
		t.Fatalf("Cap %d Len %d, want 10 and 0", r.Cap(), r.Len())
	}
	bad := []struct {
		name string
		toks []int32
		want string
	}{
		{"empty", nil, "no tokens"},
		{"too long", toks[:11], "do not fit"},
		{"negative id", []int32{1, -1}, "out of range"},
		{"id = vocab", []int32{tinyVocab}, "out of range"},
	}
	for _, c := range bad {
		if _, err := r.Forward(c.toks); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
		if r.Len() != 0 {
			t.Fatalf("%s: Len %d after an error", c.name, r.Len())
		}
	}
	all, err := r.ForwardAll(toks[:6])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Forward(toks[6:11]); err == nil || !strings.Contains(err.Error(), "do not fit") {
		t.Fatalf("6 + 5 tokens in a cache of 10: error %v", err)
	}
	if r.Len() != 6 {
		t.Fatalf("Len %d after a refused call, want 6", r.Len())
	}
	rest, err := r.Forward(toks[6:10])
	if err != nil {
		t.Fatal(err)
	}
	r.Reset()
	if r.Len() != 0 {
		t.Fatalf("Len %d after Reset", r.Len())
	}
	whole, err := r.ForwardAll(toks[:10])
	if err != nil {
		t.Fatal(err)
	}
	near := func(what string, got, want []float32) {
		t.Helper()
		if m := compare(got, want, tinyVocab); m.relL2 > 1e-5 {
			t.Errorf("%s: rel_l2 %.3g", what, m.relL2)
		}
	}
	near("first 6 of one call vs a call of 6", whole[:6*tinyVocab], all)
	near("last of 6+4 vs last of one call of 10", rest, whole[9*tinyVocab:])
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Forward(toks[:1]); err == nil {
		t.Error("Forward after Close succeeded")
	}
	if _, err := glm4moe.NewOpsRunner(nil, b, 10); err == nil {
		t.Error("NewOpsRunner(nil model) succeeded")
	}
	m := openModel(t, "glm-tiny-q4_k_m.gguf", glm4moe.Options{Threads: 2})
	if _, err := glm4moe.NewOpsRunner(m, b, 0); err == nil {
		t.Error("NewOpsRunner with a cache of 0 tokens succeeded")
	}
}

// f32Only is a CPU backend that lists only F32 weights and embedding tables
// and only an F16 cache, as a backend without quantized kernels would.
type f32Only struct{ *cpu.Backend }

func (b f32Only) Capabilities() backend.Capabilities {
	c := b.Backend.Capabilities()
	c.WeightTypes, c.EmbedTypes = []backend.DType{backend.F32}, []backend.DType{backend.F32}
	c.CacheTypes = []backend.DType{backend.F16}
	return c
}

// TestOpsDequantized checks the upload path for weight types a backend does
// not list: every quantized tensor of the Q4_K_M file is dequantized to F32
// on the host, the cache falls back to F16, and the exact path still holds
// the exact bounds against the Q4_K_M reference.
func TestOpsDequantized(t *testing.T) {
	toks := readTokens(t)
	ref := readF32(t, opsQ4KM.ref)
	b := f32Only{cpu.NewBackend(2, cpu.Exact)}
	t.Cleanup(func() { b.Close() })
	r := newOpsRunner(t, b, opsQ4KM.file, 512, len(toks))
	logPlacement(t, r)
	for _, ti := range r.Tensors() {
		if ti.Backend != backend.F32 {
			t.Errorf("%s: held as %s on an f32-only backend", ti.Name, ti.Backend)
		}
	}
	if r.CacheType() != backend.F16 {
		t.Errorf("cache %s, want f16 (the only one listed)", r.CacheType())
	}
	got, err := r.ForwardAll(toks)
	if err != nil {
		t.Fatal(err)
	}
	checkOpsLogits(t, "f32-only "+opsQ4KM.file, got, ref, true)
}
