// Package cli holds the flag conventions shared by the glm* programs, which
// follow llama.cpp's tools: single-dash multi-letter flags (-ngl, -ub,
// -no-cnv), '_' accepted for '-' in long flags (--n_prompt), and a bad flag
// answered with "error: invalid parameter for argument: <flag>", the usage
// text and exit status 1.
package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// NewFlagSet returns a pflag set that reports errors instead of exiting and
// treats '_' in long flag names as '-'.
func NewFlagSet(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, n string) pflag.NormalizedName {
		return pflag.NormalizedName(strings.ReplaceAll(n, "_", "-"))
	})
	fs.SortFlags = false
	fs.SetOutput(io.Discard)
	return fs
}

// LongSingleDash rewrites llama.cpp-style single-dash multi-letter flags
// into pflag's double-dash form: "-ngl 99" -> "--ngl 99", "-ub=8" ->
// "--ub=8". Only names registered in fs as long flags of two or more
// letters are rewritten, so "-n 8" and combined shorthands stay as they are.
// Arguments after "--" are left alone.
func LongSingleDash(fs *pflag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if len(name) > 1 && fs.Lookup(strings.ReplaceAll(name, "_", "-")) != nil {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}

// Parse rewrites args with LongSingleDash and parses them into fs.
func Parse(fs *pflag.FlagSet, args []string) error {
	return fs.Parse(LongSingleDash(fs, args))
}

// ErrHelp is returned by Parse for -h/--help.
var ErrHelp = pflag.ErrHelp

// Usage writes "usage: <synopsis>" and the flag defaults of fs to w.
func Usage(w io.Writer, fs *pflag.FlagSet, synopsis string) {
	fmt.Fprintf(w, "usage: %s\n\noptions:\n%s", synopsis, fs.FlagUsages())
}

// BadFlag reports a flag error the way llama-bench does: it names the flag
// (taken from err where possible), prints the usage and returns exit status 1.
func BadFlag(w io.Writer, fs *pflag.FlagSet, synopsis string, err error) int {
	fmt.Fprintf(w, "error: invalid parameter for argument: %s\n", flagOf(err))
	fmt.Fprintf(w, "  (%v)\n\n", err)
	Usage(w, fs, synopsis)
	return 1
}

// flagOf extracts the offending flag from a pflag error message.
func flagOf(err error) string {
	msg := err.Error()
	for _, prefix := range []string{"unknown flag: ", "unknown shorthand flag: ", "bad flag syntax: "} {
		if i := strings.Index(msg, prefix); i >= 0 {
			f := msg[i+len(prefix):]
			if j := strings.Index(f, " in "); j >= 0 { // "'x' in -xyz"
				f = f[j+4:]
			}
			return f
		}
	}
	if i := strings.Index(msg, "argument \""); i >= 0 {
		rest := msg[i+len("argument \""):]
		if j := strings.Index(rest, "\" for \""); j >= 0 {
			f := rest[j+len("\" for \""):]
			if k := strings.Index(f, "\""); k >= 0 {
				return strings.Fields(f[:k])[0]
			}
		}
	}
	if i := strings.Index(msg, "flag needs an argument: "); i >= 0 {
		return strings.Trim(msg[i+len("flag needs an argument: "):], "'")
	}
	var e interface{ Flag() string }
	if errors.As(err, &e) {
		return e.Flag()
	}
	return msg
}
