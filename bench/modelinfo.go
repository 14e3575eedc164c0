package bench

import (
	"fmt"

	"github.com/glmrun/glmrun/gguf"
)

// ModelDesc identifies a model the way llama-bench reports it.
type ModelDesc struct {
	// Type is llama.cpp's llama_model_desc: "<arch> <size label> <file type>",
	// e.g. "deepseek2 30B.A3B Q4_K - Medium".
	Type string
	// Size is the total bytes of all tensor data (llama_model_size).
	Size uint64
	// Params is the total number of tensor elements (llama_model_n_params).
	Params uint64
	// Layers is the number of main layers (block_count − nextn_predict_layers).
	Layers int
	// CtxTrain is <arch>.context_length (0 if absent).
	CtxTrain int
}

// ftypeNames is llama.cpp's llama_ftype_name table (general.file_type ids),
// plus this project's MMFP4 id.
var ftypeNames = map[uint32]string{
	0: "all F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
	10: "Q2_K - Medium", 11: "Q3_K - Small", 12: "Q3_K - Medium", 13: "Q3_K - Large",
	14: "Q4_K - Small", 15: "Q4_K - Medium", 16: "Q5_K - Small", 17: "Q5_K - Medium", 18: "Q6_K",
	19: "IQ2_XXS - 2.0625 bpw", 20: "IQ2_XS - 2.3125 bpw", 21: "Q2_K - Small", 22: "IQ3_XS - 3.3 bpw",
	23: "IQ3_XXS - 3.0625 bpw", 24: "IQ1_S - 1.5625 bpw", 25: "IQ4_NL - 4.5 bpw", 26: "IQ3_S - 3.4375 bpw",
	27: "IQ3_S mix - 3.66 bpw", 28: "IQ2_S - 2.5 bpw", 29: "IQ2_M - 2.7 bpw", 30: "IQ4_XS - 4.25 bpw",
	31: "IQ1_M - 1.75 bpw", 32: "BF16", 36: "TQ1_0 - 1.69 bpw ternary", 37: "TQ2_0 - 2.06 bpw ternary",
	38: "MXFP4 MoE", 39: "NVFP4", 40: "Q1_0", 41: "Q2_0",
	uint32(gguf.TypeMMFP4): "MMFP4",
}

// guessFtype is llama.cpp's file-type guess from the most common tensor
// type, used when general.file_type is absent.
var guessFtype = map[gguf.TensorType]uint32{
	gguf.TypeF32: 0, gguf.TypeF16: 1, gguf.TypeBF16: 32, gguf.TypeQ4_0: 2, gguf.TypeQ4_1: 3,
	gguf.TypeQ5_0: 8, gguf.TypeQ5_1: 9, gguf.TypeQ8_0: 7, gguf.TypeQ2_K: 10, gguf.TypeQ3_K: 12,
	gguf.TypeQ4_K: 15, gguf.TypeQ5_K: 17, gguf.TypeQ6_K: 18, gguf.TypeTQ1_0: 36, gguf.TypeTQ2_0: 37,
	gguf.TypeIQ2_XXS: 19, gguf.TypeIQ2_XS: 20, gguf.TypeIQ2_S: 28, gguf.TypeIQ3_XXS: 23,
	gguf.TypeIQ1_S: 24, gguf.TypeIQ1_M: 31, gguf.TypeIQ4_NL: 25, gguf.TypeIQ4_XS: 30, gguf.TypeIQ3_S: 26,
	gguf.TypeMMFP4: uint32(gguf.TypeMMFP4),
}

// sizeLabel mirrors llama.cpp's per-architecture llm_type choice for
// deepseek2 (src/models/deepseek2.cpp: 27 layers 16B, 47 30B.A3B, 60 236B,
// 61 671B, else "?B"), keyed by main layers. Other architectures print "?B".
func sizeLabel(arch string, layers int) string {
	if arch == "deepseek2" {
		switch layers {
		case 27:
			return "16B"
		case 47:
			return "30B.A3B"
		case 60:
			return "236B"
		case 61:
			return "671B"
		}
	}
	return "?B"
}

// Describe computes f's llama-bench identity.
func Describe(f *gguf.File) (ModelDesc, error) {
	arch, err := f.String("general.architecture")
	if err != nil {
		return ModelDesc{}, err
	}
	var d ModelDesc
	counts := map[gguf.TensorType]int{}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		d.Size += t.NumBytes()
		d.Params += t.NumElements()
		counts[t.Type]++
	}
	if v, err := f.Uint32(arch + ".block_count"); err == nil {
		d.Layers = int(v)
		if n, err := f.Uint32(arch + ".nextn_predict_layers"); err == nil && int(n) <= d.Layers {
			d.Layers -= int(n)
		}
	}
	if v, err := f.Uint32(arch + ".context_length"); err == nil {
		d.CtxTrain = int(v)
	}
	var ftype string
	if ft, err := f.Uint32("general.file_type"); err == nil {
		name, ok := ftypeNames[ft]
		if !ok {
			name = "unknown, may not work"
		}
		ftype = name
	} else {
		best, bestN := gguf.TypeF32, 0
		for _, t := range sortedTypes(counts) {
			if counts[t] > bestN {
				best, bestN = t, counts[t]
			}
		}
		id, ok := guessFtype[best]
		name := ftypeNames[id]
		if !ok {
			name = "all F32"
		}
		ftype = "(guessed) " + name
	}
	d.Type = fmt.Sprintf("%s %s %s", arch, sizeLabel(arch, d.Layers), ftype)
	return d, nil
}

// sortedTypes returns the keys of counts in increasing id order, so that a
// tie picks the lowest id as llama.cpp's loop over type ids does.
func sortedTypes(counts map[gguf.TensorType]int) []gguf.TensorType {
	var ts []gguf.TensorType
	for t := range counts {
		ts = append(ts, t)
	}
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j] < ts[j-1]; j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
	return ts
}
