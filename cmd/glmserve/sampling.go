package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/glmrun/glmrun/gguf"
)

// ggufSampling applies the GGUF's general.sampling.* recommendations to the
// sampling defaults whose flags were not given, as llama.cpp does
// (interfaces.md §0). It returns a description of what it changed ("" when
// nothing).
func ggufSampling(f *gguf.File, fs *pflag.FlagSet, o *options) string {
	var set []string
	float := func(key, flag string, dst *float32) {
		if fs.Changed(flag) {
			return
		}
		if v, ok := f.Lookup("general.sampling." + key); ok {
			if x, ok := v.Float(); ok {
				*dst = float32(x)
				set = append(set, fmt.Sprintf("%s=%g", flag, float32(x)))
			}
		}
	}
	integer := func(key, flag string, dst *int) {
		if fs.Changed(flag) {
			return
		}
		if v, ok := f.Lookup("general.sampling." + key); ok {
			if x, ok := v.Int(); ok {
				*dst = int(x)
				set = append(set, fmt.Sprintf("%s=%d", flag, x))
			}
		}
	}
	float("temp", "temp", &o.temp)
	integer("top_k", "top-k", &o.topK)
	float("top_p", "top-p", &o.topP)
	float("min_p", "min-p", &o.minP)
	float("penalty_repeat", "repeat-penalty", &o.repeatPen)
	integer("penalty_last_n", "repeat-last-n", &o.repeatLastN)
	return strings.Join(set, " ")
}
