package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/testdata"
)

func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestArgumentErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "invalid parameter for argument: --bogus"},
		{[]string{"in.gguf", "out.gguf"}, "expected IN.gguf OUT.gguf TYPE"},
		{[]string{"in.gguf", "out.gguf", "Q2_K"}, `unsupported type "Q2_K"`},
		{[]string{"in.gguf", "out.gguf", "Q4_K_M", "x"}, "NTHREADS must be"},
		{[]string{"--threads", "2", "in.gguf", "out.gguf", "Q4_K_M", "3"}, "disagree"},
		{[]string{"--threads", "-1", "in.gguf", "out.gguf", "Q4_K_M"}, "--threads must be >= 0"},
		{[]string{"/nonexistent.gguf", filepath.Join(t.TempDir(), "o.gguf"), "Q4_K_M"}, "nonexistent"},
		{[]string{"--import-mmfp4", "dir", "out.gguf"}, "needs --template"},
		{[]string{"--import-mmfp4", "dir", "--template", "t.gguf"}, "exactly one positional"},
		{[]string{"--import-mmfp4", "dir", "--template", "t.gguf", "--threads", "2", "o.gguf"}, "no meaning"},
		{[]string{"--template", "t.gguf", "a", "b", "Q8_0"}, "only used with --import-mmfp4"},
	}
	for _, tc := range cases {
		_, e, code := runCLI(t, tc.args...)
		require.Equal(t, 1, code, "%v", tc.args)
		require.Contains(t, e, tc.want, "%v", tc.args)
	}
	o, _, code := runCLI(t, "--help")
	require.Equal(t, 0, code)
	require.Contains(t, o, "usage: glmquant")
}

func TestQuantizeGLMTiny(t *testing.T) {
	in := testdata.GLMTiny(t, "glm-tiny-bf16.gguf")
	ref := testdata.GLMTiny(t, "glm-tiny-q4_k_m.gguf")
	dir := t.TempDir()
	out := filepath.Join(dir, "q4.gguf")
	_, e, code := runCLI(t, in, out, "Q4_K_M", "2")
	require.Equal(t, 0, code, e)
	require.Regexp(t, regexp.MustCompile(`\[   1/  52\] output.weight\s+- \[  256,  2304,     1,     1\], type =   bf16, converting to q6_K \.\. size =`), e)
	require.Regexp(t, regexp.MustCompile(`quant size  = +[0-9.]+ MiB \(5\.08 BPW\)`), e)
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	want, err := os.ReadFile(ref)
	require.NoError(t, err)
	require.True(t, bytes.Equal(got, want), "glmquant Q4_K_M output differs from glm-tiny-q4_k_m.gguf")

	// A quantized input is refused without --allow-requantize, accepted with it.
	mm := filepath.Join(dir, "mm.gguf")
	_, e, code = runCLI(t, out, mm, "MMFP4")
	require.Equal(t, 1, code)
	require.Contains(t, e, "requantizing from type")
	_, err = os.Stat(mm)
	require.True(t, os.IsNotExist(err), "failed run left %s", mm)
	_, e, code = runCLI(t, "--allow-requantize", "-t", "2", out, mm, "mmfp4")
	require.Equal(t, 0, code, e)
	f, err := gguf.Open(mm)
	require.NoError(t, err)
	defer f.Close()
	ti, ok := f.Tensor("blk.1.ffn_up_exps.weight")
	require.True(t, ok)
	require.Equal(t, gguf.TypeMMFP4, ti.Type)
}
