package main

import (
	_ "embed"
	"fmt"
	"math"
	"strings"

	"github.com/glmrun/glmrun/gguf"
)

// chatTemplate is GLM-4.7-Flash's chat template (llama.cpp
// models/templates/GLM-4.7-Flash.jinja, identical to the glm-tiny GGUF's).
//
//go:embed glm47_flash_chat_template.jinja
var chatTemplate string

// sizeLabel reproduces gguf-py's size_label for a MoE model:
// "<experts>x<shared + one expert's parameters>", e.g. "64x2.6B".
func sizeLabel(plan []TensorSpec, experts int) string {
	var total, expert uint64
	for _, t := range plan {
		total += t.Elements()
		if strings.HasSuffix(t.Name, "_exps.weight") {
			expert += t.Elements()
		}
	}
	perExpert := expert / uint64(experts)
	return fmt.Sprintf("%dx%s", experts, roundedCount(total-expert+perExpert))
}

// roundedCount is gguf-py's model_weight_count_rounded_notation with two
// significant digits minimum.
func roundedCount(n uint64) string {
	x, suffix := float64(n), "K"
	switch {
	case x > 1e12:
		x, suffix = x*1e-12, "T"
	case x > 1e9:
		x, suffix = x*1e-9, "B"
	case x > 1e6:
		x, suffix = x*1e-6, "M"
	default:
		x *= 1e-3
	}
	digits := len(strings.TrimLeft(fmt.Sprintf("%d", int64(math.Round(x))), "0"))
	fix := max(2-digits, 0)
	return fmt.Sprintf("%.*f%s", fix, x, suffix)
}

// Metadata returns the GGUF key/value pairs of a synthetic GLM-4.7-Flash
// file, in the order the llama.cpp converter writes them, with the real
// values of model spec §1-§2 (scaled by s) plus expert_gating_func = 2
// (sigmoid) so that llama.cpp gates correctly at any layer count.
func Metadata(s Shape, q Quant, plan []TensorSpec, v *Vocab, seed uint64) []gguf.KV {
	const a = "deepseek2."
	kv := []gguf.KV{
		{Key: "general.architecture", Value: gguf.String("deepseek2")},
		{Key: "general.type", Value: gguf.String("model")},
		{Key: "general.name", Value: gguf.String(fmt.Sprintf("GLM-4.7-Flash synthetic (random weights, seed %d)", seed))},
		{Key: "general.basename", Value: gguf.String("GLM-4.7-Flash")},
		{Key: "general.size_label", Value: gguf.String(sizeLabel(plan, s.Experts))},
		{Key: "general.license", Value: gguf.String("mit")},
		{Key: a + "block_count", Value: gguf.Uint32(uint32(s.Layers))},
		{Key: a + "context_length", Value: gguf.Uint32(uint32(s.ContextTrain))},
		{Key: a + "embedding_length", Value: gguf.Uint32(uint32(s.Embd))},
		{Key: a + "feed_forward_length", Value: gguf.Uint32(uint32(s.FF))},
		{Key: a + "attention.head_count", Value: gguf.Uint32(uint32(s.Heads))},
		{Key: a + "attention.head_count_kv", Value: gguf.Uint32(1)},
		{Key: a + "rope.freq_base", Value: gguf.Float32(1e6)},
		{Key: a + "attention.layer_norm_rms_epsilon", Value: gguf.Float32(1e-5)},
		{Key: a + "expert_used_count", Value: gguf.Uint32(uint32(s.ExpertsUsed))},
		{Key: a + "expert_group_count", Value: gguf.Uint32(1)},
		{Key: a + "expert_group_used_count", Value: gguf.Uint32(1)},
		{Key: a + "leading_dense_block_count", Value: gguf.Uint32(1)},
		{Key: a + "vocab_size", Value: gguf.Uint32(uint32(s.Vocab))},
		{Key: a + "attention.q_lora_rank", Value: gguf.Uint32(uint32(s.QLora))},
		{Key: a + "attention.kv_lora_rank", Value: gguf.Uint32(uint32(s.KVLora))},
		{Key: a + "attention.key_length", Value: gguf.Uint32(uint32(s.KVLora + s.RopeDim))},
		{Key: a + "attention.value_length", Value: gguf.Uint32(uint32(s.KVLora))},
		{Key: a + "attention.key_length_mla", Value: gguf.Uint32(uint32(s.NopeDim + s.RopeDim))},
		{Key: a + "attention.value_length_mla", Value: gguf.Uint32(uint32(s.VDim))},
		{Key: a + "expert_feed_forward_length", Value: gguf.Uint32(uint32(s.FFExp))},
		{Key: a + "expert_count", Value: gguf.Uint32(uint32(s.Experts))},
		{Key: a + "expert_shared_count", Value: gguf.Uint32(uint32(s.SharedExp))},
		{Key: a + "expert_weights_scale", Value: gguf.Float32(1.8)},
		{Key: a + "expert_weights_norm", Value: gguf.Bool(true)},
		{Key: a + "expert_gating_func", Value: gguf.Uint32(2)},
		{Key: a + "rope.dimension_count", Value: gguf.Uint32(uint32(s.RopeDim))},
		{Key: "tokenizer.ggml.model", Value: gguf.String("gpt2")},
		{Key: "tokenizer.ggml.pre", Value: gguf.String("glm4")},
		{Key: "tokenizer.ggml.tokens", Value: gguf.Array(v.Tokens)},
		{Key: "tokenizer.ggml.token_type", Value: gguf.Array(v.Types)},
		{Key: "tokenizer.ggml.merges", Value: gguf.Array(v.Merges)},
		{Key: "tokenizer.ggml.eos_token_id", Value: gguf.Uint32(v.Eos)},
		{Key: "tokenizer.ggml.padding_token_id", Value: gguf.Uint32(v.Eos)},
		{Key: "tokenizer.ggml.bos_token_id", Value: gguf.Uint32(v.Bos)},
		{Key: "tokenizer.ggml.eot_token_id", Value: gguf.Uint32(v.Eot)},
		{Key: "tokenizer.ggml.unknown_token_id", Value: gguf.Uint32(v.Eos)},
		{Key: "tokenizer.ggml.eom_token_id", Value: gguf.Uint32(v.Eom)},
		{Key: "tokenizer.chat_template", Value: gguf.String(chatTemplate)},
		{Key: "general.quantization_version", Value: gguf.Uint32(2)},
		{Key: "general.file_type", Value: gguf.Uint32(q.fileType())},
	}
	if q == QuantMMFP4 {
		kv = append(kv,
			gguf.KV{Key: "mmfp4.version", Value: gguf.Uint32(1)},
			gguf.KV{Key: "mmfp4.group_size", Value: gguf.Uint32(128)})
	}
	return kv
}
