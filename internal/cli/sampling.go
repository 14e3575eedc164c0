package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/glmrun/glmrun/gguf"
)

// SamplingFlags are llama.cpp's sampling flags, shared by glmrun (the
// values used) and glmserve (the defaults of requests that omit them).
type SamplingFlags struct {
	Temp             float32 // --temp, --temperature: <= 0 is greedy
	TopK             int     // --top-k: 0 = off
	TopP             float32 // --top-p: 1 = off
	MinP             float32 // --min-p: 0 = off
	RepeatPenalty    float32 // --repeat-penalty: 1 = off
	RepeatLastN      int     // --repeat-last-n: 0 = off, -1 = the context
	PresencePenalty  float32 // --presence-penalty
	FrequencyPenalty float32 // --frequency-penalty
	Seed             int64   // -s, --seed: -1 = random
}

// Register adds the flags to fs with llama.cpp's defaults (temp 0.8, top-k
// 40, top-p 0.95, min-p 0.05, repeat penalty 1 over the last 64 tokens, no
// presence/frequency penalty, random seed). prefix starts each help text
// ("" or "default ").
func (s *SamplingFlags) Register(fs *pflag.FlagSet, prefix string) {
	fs.Float32Var(&s.Temp, "temp", 0.8, prefix+"temperature; <= 0 = greedy")
	fs.Float32Var(&s.Temp, "temperature", 0.8, "same as --temp")
	fs.IntVar(&s.TopK, "top-k", 40, prefix+"top-k (0 = off)")
	fs.Float32Var(&s.TopP, "top-p", 0.95, prefix+"top-p (1.0 = off)")
	fs.Float32Var(&s.MinP, "min-p", 0.05, prefix+"min-p (0.0 = off)")
	fs.Float32Var(&s.RepeatPenalty, "repeat-penalty", 1.0, prefix+"repetition penalty (1.0 = off)")
	fs.IntVar(&s.RepeatLastN, "repeat-last-n", 64, "tokens the penalties look back over (0 = off, -1 = context size)")
	fs.Float32Var(&s.PresencePenalty, "presence-penalty", 0, prefix+"presence penalty (0 = off)")
	fs.Float32Var(&s.FrequencyPenalty, "frequency-penalty", 0, prefix+"frequency penalty (0 = off)")
	fs.Int64VarP(&s.Seed, "seed", "s", -1, prefix+"RNG seed; -1 = random")
}

// ApplyGGUFSampling replaces each default whose flag (under any alias) was
// not given with the file's general.sampling.* value, as llama.cpp does
// (interfaces.md §0), and returns what it set ("temp=0.7 top-p=1"), or "".
func ApplyGGUFSampling(f *gguf.File, fs *pflag.FlagSet, s *SamplingFlags) string {
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
		if v, ok := lookup(key, flags); ok {
			if x, ok := v.Float(); ok {
				*dst = float32(x)
				set = append(set, fmt.Sprintf("%s=%g", flags[0], *dst))
			}
		}
	}
	integer := func(key string, dst *int, flags ...string) {
		if v, ok := lookup(key, flags); ok {
			if x, ok := v.Int(); ok {
				*dst = int(x)
				set = append(set, fmt.Sprintf("%s=%d", flags[0], x))
			}
		}
	}
	f32("temp", &s.Temp, "temp", "temperature")
	integer("top_k", &s.TopK, "top-k")
	f32("top_p", &s.TopP, "top-p")
	f32("min_p", &s.MinP, "min-p")
	f32("penalty_repeat", &s.RepeatPenalty, "repeat-penalty")
	integer("penalty_last_n", &s.RepeatLastN, "repeat-last-n")
	return strings.Join(set, " ")
}
