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
		var s SamplingFlags
		s.Register(fs, "")
		require.NoError(t, Parse(fs, tc.args))
		got := ApplyGGUFSampling(fileWithSampling(t), fs, &s)
		require.Equal(t, tc.wantTemp, s.Temp, tc.args)
		require.Equal(t, tc.wantK, s.TopK, tc.args)
		require.Equal(t, float32(1), s.TopP)
		require.Equal(t, float32(0.05), s.MinP, "keys absent from the file leave defaults alone")
		require.Equal(t, 64, s.RepeatLastN)
		require.Contains(t, got, "top-p=1")
	}
}
