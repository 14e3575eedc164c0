package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/glmrun/glmrun/internal/testdata"
)

func TestReportQualityJudgesTheAnswerOnly(t *testing.T) {
	answers := map[string]string{
		"2 + 2 = ?":                      "Adding two and two.</think>The answer is 4.",
		"What is the capital of France?": "Paris? No, wait.</think>Lyon.", // Paris only in the reasoning: FAIL
		"Convert HELLO to lowercase.":    "</think>hello",
	}
	var out, errb bytes.Buffer
	code := reportQuality(true, func(m string) (string, error) { return answers[m], nil }, &out, &errb)
	require.Equal(t, 0, code)
	s := out.String()
	require.Contains(t, s, `quality 1/3 PASS: "2 + 2 = ?"`)
	require.Contains(t, s, `quality 2/3 FAIL: "What is the capital of France?"`)
	require.Contains(t, s, `quality 3/3 PASS`)
	require.Contains(t, s, "quality: 2/3 passed")
	require.Contains(t, errb.String(), "meaningful only on real weights")

	code = reportQuality(true, func(string) (string, error) { return "", errors.New("boom") }, &out, &errb)
	require.Equal(t, 1, code)
}

func TestQualityOnGLMTiny(t *testing.T) {
	model := testdata.GLMTiny(t, "glm-tiny-q4_k_m.gguf")
	var out, errb bytes.Buffer
	code := run([]string{"-m", model, "--quality", "-n", "8"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	require.Equal(t, 4, strings.Count(out.String(), "\n"), out.String())
	require.Contains(t, out.String(), "/3 passed")

	code = run([]string{"-m", model, "--quality", "-p", "hi"}, &out, &errb)
	require.Equal(t, 1, code)
}

// TestGreedyPathMatchesSampling: plain greedy decoding (DecodeGreedy) gives
// the same text as sampling with top-k 1 (full logits + the sampler).
func TestGreedyPathMatchesSampling(t *testing.T) {
	model := testdata.GLMTiny(t, "glm-tiny-q4_k_m.gguf")
	gen := func(extra ...string) string {
		var out, errb bytes.Buffer
		args := append([]string{"-m", model, "-p", "The history of", "-no-cnv", "--no-display-prompt", "-n", "24", "-s", "1"}, extra...)
		require.Equal(t, 0, run(args, &out, &errb), errb.String())
		return out.String()
	}
	greedy := gen("--temp", "0")
	require.NotEmpty(t, strings.TrimSpace(greedy))
	require.Equal(t, greedy, gen("--temp", "0.7", "--top-k", "1"))
}

// TestDeviceAutoFallsBack: without a usable GPU, --device auto runs on the
// CPU while --device cuda fails with a clear message.
func TestDeviceAutoFallsBack(t *testing.T) {
	model := testdata.GLMTiny(t, "glm-tiny-q4_k_m.gguf")
	var out, errb bytes.Buffer
	if run([]string{"-m", model, "-p", "Hi", "-n", "2", "--device", "cuda"}, &out, &errb) == 0 {
		t.Skip("a CUDA device is usable here")
	}
	require.Contains(t, errb.String(), "no usable CUDA device")
	out.Reset()
	errb.Reset()
	require.Equal(t, 0, run([]string{"-m", model, "-p", "Hi", "-n", "2", "--device", "auto", "-v"}, &out, &errb), errb.String())
	require.Contains(t, errb.String(), "running on the CPU")
}
