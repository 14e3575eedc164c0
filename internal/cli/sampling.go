package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/glmrun/glmrun/gguf"
)

// Sampling points at a program's sampling options. The programs register
// them under llama.cpp's names: --temp (alias --temperature), --top-k,
// --top-p, --min-p, --repeat-penalty, --repeat-last-n.
type Sampling struct {
	Temp, TopP, MinP, RepeatPenalty *float32
	TopK, RepeatLastN               *int
}

// ApplyGGUFSampling replaces each default whose flag (under any alias) was
// not given with the file's general.sampling.* value, as llama.cpp does
// (interfaces.md §0), and returns what it set ("temp=0.7 top-p=1"), or "".
func ApplyGGUFSampling(f *gguf.File, fs *pflag.FlagSet, s Sampling) string {
	var set []string
	given := func(names []string) bool {
		for _, n := range names {
			if fs.Lookup(n) != nil && fs.Changed(n) {
				return true
			}
		}
		return false
	}
	lookup := func(key string, flags []string) (gguf.Value, bool) {
		if given(flags) {
			return gguf.Value{}, false
		}
		return f.Lookup("general.sampling." + key)
	}
	f32 := func(key string, dst *float32, flags ...string) {
		if v, ok := lookup(key, flags); ok && dst != nil {
			if x, ok := v.Float(); ok {
				*dst = float32(x)
				set = append(set, fmt.Sprintf("%s=%g", flags[0], *dst))
			}
		}
	}
	integer := func(key string, dst *int, flags ...string) {
		if v, ok := lookup(key, flags); ok && dst != nil {
			if x, ok := v.Int(); ok {
				*dst = int(x)
				set = append(set, fmt.Sprintf("%s=%d", flags[0], x))
			}
		}
	}
	f32("temp", s.Temp, "temp", "temperature")
	integer("top_k", s.TopK, "top-k")
	f32("top_p", s.TopP, "top-p")
	f32("min_p", s.MinP, "min-p")
	f32("penalty_repeat", s.RepeatPenalty, "repeat-penalty")
	integer("penalty_last_n", s.RepeatLastN, "repeat-last-n")
	return strings.Join(set, " ")
}
