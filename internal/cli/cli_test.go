package cli

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLongSingleDashAndUnderscores(t *testing.T) {
	fs := NewFlagSet("x")
	ngl := fs.Int("ngl", 0, "")
	ub := fs.Int("ubatch-size", 512, "")
	fs.IntVar(ub, "ub", 512, "")
	n := fs.IntP("n-predict", "n", 1, "")
	noCnv := fs.Bool("no-cnv", false, "")
	require.NoError(t, Parse(fs, []string{"-ngl", "99", "-ub=8", "-n", "3", "-no-cnv", "--", "-ngl"}))
	require.Equal(t, 99, *ngl)
	require.Equal(t, 8, *ub)
	require.Equal(t, 3, *n)
	require.True(t, *noCnv)
	require.Equal(t, []string{"-ngl"}, fs.Args())

	fs = NewFlagSet("y")
	np := fs.Int("n-prompt", 0, "")
	require.NoError(t, Parse(fs, []string{"--n_prompt", "7"}))
	require.Equal(t, 7, *np)
}

func TestBadFlagNamesTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "error: invalid parameter for argument: --bogus"},
		{[]string{"-c", "abc"}, "error: invalid parameter for argument: -c"},
		{[]string{"--ctx-size"}, "error: invalid parameter for argument: --ctx-size"},
	} {
		fs := NewFlagSet("z")
		fs.IntP("ctx-size", "c", 0, "")
		err := Parse(fs, tc.args)
		require.Error(t, err)
		var w bytes.Buffer
		require.Equal(t, 1, BadFlag(&w, fs, "z [options]", err))
		require.Contains(t, w.String(), tc.want, tc.args)
		require.Contains(t, w.String(), "usage: z [options]")
	}
}
