package cli

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/glmrun/glmrun/gguf"
)

func fileWithSampling(t *testing.T) *gguf.File {
	var buf bytes.Buffer
	w := gguf.NewWriter(&buf)
	require.NoError(t, w.AddKV("general.sampling.temp", gguf.Float32(0.6)))
	require.NoError(t, w.AddKV("general.sampling.top_k", gguf.Int32(20)))
	require.NoError(t, w.AddKV("general.sampling.top_p", gguf.Float32(1)))
	require.NoError(t, w.Close())
	f, err := gguf.Parse(buf.Bytes())
	require.NoError(t, err)
	return f
}

func TestApplyGGUFSamplingRespectsEveryAlias(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantTemp float32
		wantK    int
	}{
		{nil, 0.6, 20},
		{[]string{"--temp", "0.2"}, 0.2, 20},
		{[]string{"--temperature", "0.3"}, 0.3, 20}, // the alias counts as given
		{[]string{"--top-k", "5"}, 0.6, 5},
	} {
		fs := NewFlagSet("t")
		var temp, topP, minP, rep float32 = 0.8, 0.95, 0.05, 1
		topK, last := 40, 64
		fs.Float32Var(&temp, "temp", 0.8, "")
		fs.Float32Var(&temp, "temperature", 0.8, "")
		fs.IntVar(&topK, "top-k", 40, "")
		fs.Float32Var(&topP, "top-p", 0.95, "")
		require.NoError(t, Parse(fs, tc.args))
		got := ApplyGGUFSampling(fileWithSampling(t), fs, Sampling{Temp: &temp, TopK: &topK, TopP: &topP, MinP: &minP, RepeatPenalty: &rep, RepeatLastN: &last})
		require.Equal(t, tc.wantTemp, temp, tc.args)
		require.Equal(t, tc.wantK, topK, tc.args)
		require.Equal(t, float32(1), topP)
		require.Equal(t, float32(0.05), minP, "keys absent from the file leave defaults alone")
		require.Contains(t, got, "top-p=1")
	}
}
