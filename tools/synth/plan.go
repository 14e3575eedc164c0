package main

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/quantize"
)

// Shape holds the GLM-4.7-Flash hyperparameters that decide tensor shapes
// and metadata (spec model-glm47-flash.md §1). RealShape is the released
// model; tests use smaller ones so that a whole file fits in a test budget.
type Shape struct {
	Layers       int // block_count; layer 0 is dense, 1..Layers-1 are MoE
	Embd         int // embedding_length (d)
	FF           int // feed_forward_length (dense FFN of layer 0)
	FFExp        int // expert_feed_forward_length (routed and shared experts)
	Heads        int // attention.head_count (H)
	QLora        int // attention.q_lora_rank
	KVLora       int // attention.kv_lora_rank
	NopeDim      int // qk_nope_head_dim
	RopeDim      int // rope.dimension_count (qk_rope_head_dim)
	VDim         int // value_length_mla (v_head_dim)
	Experts      int // expert_count
	ExpertsUsed  int // expert_used_count
	SharedExp    int // expert_shared_count
	Vocab        int // vocab_size (tokenizer.ggml.tokens length)
	ContextTrain int // context_length
}

// RealShape returns the released GLM-4.7-Flash shape with the given number
// of layers (47 in the real model).
func RealShape(layers int) Shape {
	return Shape{
		Layers: layers, Embd: 2048, FF: 10240, FFExp: 1536, Heads: 20,
		QLora: 768, KVLora: 512, NopeDim: 192, RopeDim: 64, VDim: 256,
		Experts: 64, ExpertsUsed: 4, SharedExp: 1, Vocab: 154880, ContextTrain: 202752,
	}
}

// validate rejects shapes the generator cannot lay out.
func (s Shape) validate() error {
	switch {
	case s.Layers < 1:
		return fmt.Errorf("layers must be >= 1, got %d", s.Layers)
	case s.Embd <= 0 || s.FF <= 0 || s.FFExp <= 0 || s.Heads <= 0 || s.QLora <= 0 || s.KVLora <= 0 ||
		s.NopeDim <= 0 || s.RopeDim <= 0 || s.VDim <= 0 || s.Experts <= 0 || s.ContextTrain <= 0:
		return fmt.Errorf("every dimension must be positive: %+v", s)
	case s.ExpertsUsed <= 0 || s.ExpertsUsed > s.Experts:
		return fmt.Errorf("expert_used_count %d must be in 1..%d", s.ExpertsUsed, s.Experts)
	case s.Vocab < minVocab:
		return fmt.Errorf("vocabulary of %d tokens is below the minimum %d", s.Vocab, minVocab)
	}
	return nil
}

// Quant names the weight type mix of the generated file.
type Quant string

// Supported type mixes (the --type flag).
const (
	QuantQ4KM  Quant = "q4_k_m" // stock llama-quantize Q4_K_M rules
	QuantMMFP4 Quant = "mmfp4"  // matrices in blocks MMFP4 (gguf.TypeMMFP4); embeddings/head as Q4_K_M
	QuantBF16  Quant = "bf16"   // every matrix bf16
)

// fileType returns general.file_type for q: llama.cpp's llama_ftype ids
// (15 = MOSTLY_Q4_K_M, 32 = MOSTLY_BF16); MMFP4 has no llama.cpp id, so the
// file records the project's private tensor type id 4160.
func (q Quant) fileType() uint32 {
	switch q {
	case QuantBF16:
		return 32
	case QuantMMFP4:
		return uint32(gguf.TypeMMFP4)
	}
	return 15
}

// tensorKind says how a tensor's random values are drawn.
type tensorKind int

const (
	kindMatrix tensorKind = iota // weight matrix, std = 1/sqrt(ne0)
	kindNorm                     // RMSNorm gain, around 1.0
	kindRouter                   // ffn_gate_inp (f32), std = 1/sqrt(ne0)
	kindBias                     // exp_probs_b (f32), small
)

// TensorSpec is one tensor of the plan: name, ggml dims (fastest first),
// storage type, how its values are drawn, and the target standard deviation
// of its (dequantized) weights.
type TensorSpec struct {
	Name  string
	Dims  []uint64
	Type  gguf.TensorType
	Kind  tensorKind
	Sigma float64
}

// Elements returns the number of elements of the tensor.
func (t TensorSpec) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Bytes returns the tensor's data size in bytes.
func (t TensorSpec) Bytes() uint64 {
	rb, err := t.Type.RowBytes(t.Dims[0])
	if err != nil {
		return 0
	}
	return rb * (t.Elements() / t.Dims[0])
}

// Plan returns the tensors of a GLM-4.7-Flash-shaped file in the order the
// llama.cpp converter writes them: output, output_norm, token_embd, then each
// block's tensors sorted by name.
func Plan(s Shape, q Quant) ([]TensorSpec, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	if q != QuantQ4KM && q != QuantMMFP4 && q != QuantBF16 {
		return nil, fmt.Errorf("unknown type mix %q (want q4_k_m, mmfp4 or bf16)", q)
	}
	d, v := uint64(s.Embd), uint64(s.Vocab)
	kqk := uint64(s.NopeDim + s.RopeDim)
	var out []TensorSpec
	// Matrices are laid out as bf16; applyMix below gives them the mix's
	// types.
	matrix := func(name string, dims ...uint64) {
		out = append(out, TensorSpec{Name: name, Dims: dims, Type: gguf.TypeBF16, Kind: kindMatrix, Sigma: 1 / math.Sqrt(float64(dims[0]))})
	}
	f32 := func(name string, k tensorKind, dims ...uint64) {
		sigma := 0.0
		if k == kindRouter {
			sigma = 1 / math.Sqrt(float64(dims[0]))
		}
		out = append(out, TensorSpec{Name: name, Dims: dims, Type: gguf.TypeF32, Kind: k, Sigma: sigma})
	}
	matrix("output.weight", d, v)
	f32("output_norm.weight", kindNorm, d)
	matrix("token_embd.weight", d, v)

	for l := 0; l < s.Layers; l++ {
		start := len(out)
		p := func(n string) string { return fmt.Sprintf("blk.%d.%s", l, n) }
		f32(p("attn_norm.weight"), kindNorm, d)
		matrix(p("attn_q_a.weight"), d, uint64(s.QLora))
		f32(p("attn_q_a_norm.weight"), kindNorm, uint64(s.QLora))
		matrix(p("attn_q_b.weight"), uint64(s.QLora), uint64(s.Heads)*kqk)
		matrix(p("attn_kv_a_mqa.weight"), d, uint64(s.KVLora+s.RopeDim))
		f32(p("attn_kv_a_norm.weight"), kindNorm, uint64(s.KVLora))
		matrix(p("attn_k_b.weight"), uint64(s.NopeDim), uint64(s.KVLora), uint64(s.Heads))
		matrix(p("attn_v_b.weight"), uint64(s.KVLora), uint64(s.VDim), uint64(s.Heads))
		matrix(p("attn_output.weight"), uint64(s.Heads*s.VDim), d)
		f32(p("ffn_norm.weight"), kindNorm, d)
		if l == 0 {
			matrix(p("ffn_gate.weight"), d, uint64(s.FF))
			matrix(p("ffn_up.weight"), d, uint64(s.FF))
			matrix(p("ffn_down.weight"), uint64(s.FF), d)
		} else {
			e, fe := uint64(s.Experts), uint64(s.FFExp)
			f32(p("ffn_gate_inp.weight"), kindRouter, d, e)
			f32(p("exp_probs_b.bias"), kindBias, e)
			matrix(p("ffn_gate_exps.weight"), d, fe, e)
			matrix(p("ffn_up_exps.weight"), d, fe, e)
			matrix(p("ffn_down_exps.weight"), fe, d, e)
			sh := fe * uint64(s.SharedExp)
			matrix(p("ffn_gate_shexp.weight"), d, sh)
			matrix(p("ffn_up_shexp.weight"), d, sh)
			matrix(p("ffn_down_shexp.weight"), sh, d)
		}
		blk := out[start:]
		sort.Slice(blk, func(i, j int) bool { return blk[i].Name < blk[j].Name })
	}
	if err := applyMix(out, s, q); err != nil {
		return nil, err
	}
	for _, t := range out {
		if _, err := t.Type.RowBytes(t.Dims[0]); err != nil {
			return nil, fmt.Errorf("tensor %s: %v", t.Name, err)
		}
	}
	return out, nil
}

// applyMix sets the type of every matrix of plan (laid out in llama.cpp's
// tensor order) for mix q. The Q4_K_M types come from the shared
// llama-quantize rules (quantize.Chooser: use_more_bits for ffn_down,
// q6_K output, tensor_type_fallback where a row is not a multiple of 256);
// the mmfp4 mix then stores every in-block matrix whose rows are a multiple
// of 128 as MMFP4 and keeps the Q4_K_M type elsewhere.
func applyMix(plan []TensorSpec, s Shape, q Quant) error {
	if q == QuantBF16 {
		return nil
	}
	names := make([]string, len(plan))
	for i, t := range plan {
		names[i] = t.Name
	}
	ch, err := quantize.NewChooser(quantize.PresetQ4_K_M,
		quantize.ModelInfo{Arch: "deepseek2", Layers: s.Layers, Experts: s.Experts}, names)
	if err != nil {
		return err
	}
	for i := range plan {
		t := &plan[i]
		if t.Kind != kindMatrix {
			continue
		}
		typ, err := ch.Choose(t.Name, t.Dims, t.Type)
		if err != nil {
			return fmt.Errorf("tensor %s: %v", t.Name, err)
		}
		if q == QuantMMFP4 && strings.HasPrefix(t.Name, "blk.") && t.Dims[0]%128 == 0 {
			typ = gguf.TypeMMFP4
		}
		t.Type = typ
	}
	return nil
}
