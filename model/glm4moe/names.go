package glm4moe

import "fmt"

// GGUF tensor names, as llama.cpp's converter writes them for the deepseek2
// architecture. %d is the block (layer) index.
const (
	nameTokenEmbd  = "token_embd.weight"
	nameOutputNorm = "output_norm.weight"
	nameOutput     = "output.weight"

	nameAttnNorm   = "blk.%d.attn_norm.weight"
	nameAttnQ      = "blk.%d.attn_q.weight" // only when q_lora_rank = 0 (DeepSeek-V2-Lite)
	nameAttnQA     = "blk.%d.attn_q_a.weight"
	nameAttnQANorm = "blk.%d.attn_q_a_norm.weight"
	nameAttnQB     = "blk.%d.attn_q_b.weight"
	nameAttnKVAMQA = "blk.%d.attn_kv_a_mqa.weight"
	nameAttnKVANrm = "blk.%d.attn_kv_a_norm.weight"
	nameAttnKB     = "blk.%d.attn_k_b.weight"
	nameAttnVB     = "blk.%d.attn_v_b.weight"
	nameAttnKVB    = "blk.%d.attn_kv_b.weight" // old unsplit format, rejected
	nameAttnOutput = "blk.%d.attn_output.weight"
	nameFFNNorm    = "blk.%d.ffn_norm.weight"

	nameFFNGate = "blk.%d.ffn_gate.weight"
	nameFFNUp   = "blk.%d.ffn_up.weight"
	nameFFNDown = "blk.%d.ffn_down.weight"

	nameFFNGateInp    = "blk.%d.ffn_gate_inp.weight"
	nameExpProbsB     = "blk.%d.exp_probs_b.bias"
	nameFFNGateExps   = "blk.%d.ffn_gate_exps.weight"
	nameFFNUpExps     = "blk.%d.ffn_up_exps.weight"
	nameFFNGateUpExps = "blk.%d.ffn_gate_up_exps.weight"
	nameFFNDownExps   = "blk.%d.ffn_down_exps.weight"
	nameFFNGateShexp  = "blk.%d.ffn_gate_shexp.weight"
	nameFFNUpShexp    = "blk.%d.ffn_up_shexp.weight"
	nameFFNDownShexp  = "blk.%d.ffn_down_shexp.weight"
)

func blk(name string, l int) string { return fmt.Sprintf(name, l) }
