package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/testdata"
	"github.com/glmrun/glmrun/model/glm4moe"
	"github.com/glmrun/glmrun/tokenizer"
)

func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestFlagErrors(t *testing.T) {
	_, e, code := runCLI(t, "--bogus")
	require.Equal(t, 1, code)
	require.Contains(t, e, "error: invalid parameter for argument: --bogus")
	_, e, code = runCLI(t, "-m", "x.gguf", "-f", "t.txt", "--ppl-stride", "64")
	require.Equal(t, 1, code)
	require.Contains(t, e, "--ppl-stride is not supported")
	_, e, code = runCLI(t, "-m", "x.gguf", "--kl-divergence")
	require.Equal(t, 1, code)
	require.Contains(t, e, "--kl-divergence needs --kl-divergence-base")
	_, e, code = runCLI(t, "-m", "/nonexistent.gguf", "-f", "t.txt")
	require.Equal(t, 1, code)
	require.Contains(t, e, "failed to load model '/nonexistent.gguf'")
	_, e, code = runCLI(t, "-m", "x.gguf", "-f", "t.txt", "--device", "metal")
	require.Equal(t, 1, code)
	require.Contains(t, e, "not available")
}

var finalRe = regexp.MustCompile(`Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)`)

// TestPerplexityMatchesLlamaCpp holds glm-tiny to llama-perplexity's figures
// (-c 128 -b 128 --chunks 40, float32 math, f32 cache): within 0.5%.
func TestPerplexityMatchesLlamaCpp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 40 chunks of the tiny model")
	}
	text := testdata.Shared(t, "data", "wiki.test.raw")
	for _, tc := range []struct {
		file  string
		exact bool
		want  float64
		tol   float64
	}{
		{"glm-tiny-bf16.gguf", true, 3064.07, 0.005},
		{"glm-tiny-q4_k_m.gguf", true, 3041.72, 0.005},
		{"glm-tiny-q4_k_m.gguf", false, 3047.87, 0.02},
	} {
		args := []string{"-m", testdata.GLMTiny(t, tc.file), "-f", text, "-c", "128", "-b", "128", "--chunks", "40"}
		if tc.exact {
			args = append(args, "--exact")
		}
		out, e, code := runCLI(t, args...)
		require.Equal(t, 0, code, e)
		m := finalRe.FindStringSubmatch(out)
		require.NotNil(t, m, out)
		got, _ := strconv.ParseFloat(m[1], 64)
		t.Logf("%s exact=%v: PPL %.4f (llama.cpp %.2f, %+.3f%%)", tc.file, tc.exact, got, tc.want, 100*(got/tc.want-1))
		require.InEpsilon(t, tc.want, got, tc.tol)
	}
}

// TestKLDivergenceMatchesDirect saves bf16 base log-probs, compares the
// Q4_K_M file against them, and checks the mean KL against one computed
// independently in float64 from both models' full logits over the same
// chunks (what glmrun --dump-logits writes).
func TestKLDivergenceMatchesDirect(t *testing.T) {
	text := testdata.Shared(t, "data", "wiki.test.raw")
	bf16, q4 := testdata.GLMTiny(t, "glm-tiny-bf16.gguf"), testdata.GLMTiny(t, "glm-tiny-q4_k_m.gguf")
	dir := t.TempDir()
	base := filepath.Join(dir, "base.kld")
	const nCtx, chunks = 64, 4
	_, e, code := runCLI(t, "-m", bf16, "-f", text, "-c", strconv.Itoa(nCtx), "-b", "64", "--chunks", strconv.Itoa(chunks), "--exact", "--kl-divergence-base", base)
	require.Equal(t, 0, code, e)
	st, err := os.Stat(base)
	require.NoError(t, err)
	require.Greater(t, st.Size(), int64(1000))

	jsonOut := filepath.Join(dir, "kl.json")
	out, e, code := runCLI(t, "-m", q4, "--kl-divergence-base", base, "--kl-divergence", "--json", jsonOut)
	require.Equal(t, 0, code, e)
	require.Contains(t, out, "KL Divergence")
	require.Contains(t, out, "====== KL divergence statistics ======")
	m := regexp.MustCompile(`Mean    KLD:\s+(-?[0-9.]+)`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	got, _ := strconv.ParseFloat(m[1], 64)

	// Independent computation from full logits.
	tokens := tokenizeFile(t, bf16, text)
	lb := chunkLogits(t, bf16, true, tokens, nCtx, chunks)
	lq := chunkLogits(t, q4, false, tokens, nCtx, chunks)
	vocab := len(lb) / (chunks * (nCtx - nCtx/2))
	var sum float64
	n := 0
	for c := 0; c < chunks; c++ {
		for p := 0; p < nCtx-1-nCtx/2; p++ {
			off := (c*(nCtx-nCtx/2) + p) * vocab
			sum += exactKL(lb[off:off+vocab], lq[off:off+vocab])
			n++
		}
	}
	want := sum / float64(n)
	t.Logf("mean KL bf16 -> q4_k_m: tool %.6f, direct %.6f", got, want)
	require.Greater(t, want, 1e-4)
	require.InEpsilon(t, want, got, 0.02)

	// A model against itself.
	out, e, code = runCLI(t, "-m", bf16, "--exact", "--kl-divergence-base", base, "--kl-divergence")
	require.Equal(t, 0, code, e)
	m = regexp.MustCompile(`Mean    KLD:\s+(-?[0-9.]+)`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	self, _ := strconv.ParseFloat(m[1], 64)
	require.Less(t, self, 1e-6)
}

func tokenizeFile(t *testing.T, model, text string) []int32 {
	f, err := gguf.Open(model)
	require.NoError(t, err)
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	require.NoError(t, err)
	b, err := os.ReadFile(text)
	require.NoError(t, err)
	return tok.Encode(string(b), false)
}

// chunkLogits returns the logits of positions nCtx/2.. of each chunk.
func chunkLogits(t *testing.T, model string, exact bool, tokens []int32, nCtx, chunks int) []float32 {
	f, err := gguf.Open(model)
	require.NoError(t, err)
	defer f.Close()
	m, err := glm4moe.Load(f, glm4moe.Options{Exact: exact})
	require.NoError(t, err)
	var all []float32
	for c := 0; c < chunks; c++ {
		cache, err := m.NewCache(nCtx)
		require.NoError(t, err)
		l, err := m.Forward(cache, tokens[c*nCtx:(c+1)*nCtx], true)
		require.NoError(t, err)
		all = append(all, l[(nCtx/2)*m.Config().VocabSize:]...)
	}
	return all
}

// exactKL is KL(base || q) of one row of logits, in float64.
func exactKL(base, q []float32) float64 { return testdata.MeanKL(base, q, len(base)) }
