// Package glm4moe runs GLM-4.7-Flash (HF Glm4MoeLiteForCausalLM; GGUF
// architecture "deepseek2", also "glm4moelite") on the CPU: configuration
// from GGUF metadata (LoadConfig), weights bound in place from the file
// mapping with every shape checked (Load), the absorbed-MLA forward pass with
// a latent KV cache (Cache: one row of kv_lora_rank+rope_dim floats per
// token per layer), and the sigmoid-routed MoE FFN with a shared expert. The
// forward pass follows shared/spec/model-glm47-flash.md §4.
//
// Use: m, _ := Load(f, Options{}); c, _ := m.NewCache(n); logits, _ :=
// m.Forward(c, ids, false) appends ids to c and returns the last token's
// logits. ForwardBatch advances several caches in one batched pass (server
// continuous batching). Options.Exact selects float32 math on exactly
// dequantized weights; the default quantizes activations like llama.cpp's
// CPU path. A Model is safe for concurrent use on different Caches.
package glm4moe

import (
	"errors"
	"fmt"

	"github.com/glmrun/glmrun/gguf"
)

// ErrUnsupportedArch is wrapped by LoadConfig's error for a file of another
// architecture.
var ErrUnsupportedArch = errors.New("unsupported architecture")

// Config holds the hyperparameters of spec §1, read from GGUF metadata.
type Config struct {
	Arch           string // general.architecture ("deepseek2" or "glm4moelite")
	NLayer         int    // main layers run by Forward (block_count − nextn_predict_layers)
	NBlock         int    // block_count as stored (includes NextN/MTP blocks)
	NextN          int    // nextn_predict_layers (skipped)
	NCtxTrain      int    // context_length
	NEmbd          int    // embedding_length (hidden size d)
	NFF            int    // feed_forward_length (dense FFN inner size)
	NHead          int    // attention.head_count (H)
	NHeadKV        int    // attention.head_count_kv (1 for absorbed MLA)
	QLoraRank      int    // attention.q_lora_rank (0 = no Q compression: attn_q)
	KVLoraRank     int    // attention.kv_lora_rank (latent size r_kv)
	KeyLength      int    // attention.key_length: cached row = KVLoraRank + RopeDim
	ValueLength    int    // attention.value_length: = KVLoraRank
	KeyLengthMLA   int    // attention.key_length_mla: per-head Q/K size d_nope + d_rope
	ValueLengthMLA int    // attention.value_length_mla: per-head V size d_v
	RopeDim        int    // rope.dimension_count (d_rope)
	NopeDim        int    // KeyLengthMLA − RopeDim (d_nope)
	RopeFreqBase   float32
	RMSEps         float32 // attention.layer_norm_rms_epsilon, used by all norms

	NExpert            int     // expert_count
	NExpertUsed        int     // expert_used_count (top-k)
	NExpertShared      int     // expert_shared_count
	NFFExp             int     // expert_feed_forward_length
	NExpertGroup       int     // expert_group_count
	NExpertGroupUsed   int     // expert_group_used_count
	LeadingDense       int     // leading_dense_block_count
	ExpertWeightsScale float32 // expert_weights_scale
	ExpertWeightsNorm  bool    // expert_weights_norm
	// GatingSigmoid: expert_gating_func == 2 when present; when absent,
	// sigmoid iff the MoE layers carry an exp_probs_b bias (spec §8).
	GatingSigmoid bool

	VocabSize int // vocab_size, else the row count of token_embd
}

// IsMoE reports whether layer l has a routed-expert FFN.
func (c Config) IsMoE(l int) bool { return l >= c.LeadingDense && c.NExpert > 0 }

// CacheRow is the number of floats cached per token per layer.
func (c Config) CacheRow() int { return c.KVLoraRank + c.RopeDim }

// LoadConfig reads the hyperparameters of f. It accepts the architectures
// "deepseek2" and "glm4moelite"; anything else is ErrUnsupportedArch.
func LoadConfig(f *gguf.File) (Config, error) {
	arch, err := f.String("general.architecture")
	if err != nil {
		return Config{}, fmt.Errorf("glm4moe: %w", err)
	}
	if arch != "deepseek2" && arch != "glm4moelite" {
		return Config{}, fmt.Errorf("glm4moe: architecture %q: %w (want deepseek2 or glm4moelite)", arch, ErrUnsupportedArch)
	}
	r := keyReader{f: f, prefix: arch + "."}
	c := Config{Arch: arch}
	c.NBlock = r.u32("block_count")
	c.NCtxTrain = r.u32("context_length")
	c.NEmbd = r.u32("embedding_length")
	c.NFF = r.u32opt("feed_forward_length", 0)
	c.NHead = r.u32("attention.head_count")
	c.NHeadKV = r.u32opt("attention.head_count_kv", 1)
	c.QLoraRank = r.u32opt("attention.q_lora_rank", 0)
	c.KVLoraRank = r.u32("attention.kv_lora_rank")
	c.RopeDim = r.u32("rope.dimension_count")
	c.RopeFreqBase = r.f32opt("rope.freq_base", 10000)
	c.RMSEps = r.f32("attention.layer_norm_rms_epsilon")
	c.NExpert = r.u32opt("expert_count", 0)
	c.NExpertUsed = r.u32opt("expert_used_count", 0)
	c.NExpertShared = r.u32opt("expert_shared_count", 0)
	c.NFFExp = r.u32opt("expert_feed_forward_length", 0)
	c.NExpertGroup = r.u32opt("expert_group_count", 1)
	c.NExpertGroupUsed = r.u32opt("expert_group_used_count", 1)
	c.LeadingDense = r.u32opt("leading_dense_block_count", 0)
	c.ExpertWeightsScale = r.f32opt("expert_weights_scale", 1)
	c.ExpertWeightsNorm = r.boolopt("expert_weights_norm", false)
	c.NextN = r.u32opt("nextn_predict_layers", 0)
	c.VocabSize = r.u32opt("vocab_size", 0)
	kl := r.u32("attention.key_length")
	vl := r.u32("attention.value_length")
	if f.Has(r.prefix+"attention.key_length_mla") || arch == "deepseek2" {
		c.KeyLength, c.ValueLength = kl, vl
		c.KeyLengthMLA = r.u32("attention.key_length_mla")
		c.ValueLengthMLA = r.u32("attention.value_length_mla")
	} else {
		// ollama's glm4moelite writes the per-head (MLA) sizes as key_length /
		// value_length and no *_mla keys.
		c.KeyLengthMLA, c.ValueLengthMLA = kl, vl
		c.KeyLength, c.ValueLength = c.KVLoraRank+c.RopeDim, c.KVLoraRank
	}
	if r.err != nil {
		return Config{}, r.err
	}
	if f.Has(r.prefix + "rope.scaling.type") {
		if t, _ := f.String(r.prefix + "rope.scaling.type"); t != "" && t != "none" {
			return Config{}, fmt.Errorf("glm4moe: rope scaling %q is not supported", t)
		}
	}
	if f.Has(r.prefix + "expert_gating_func") {
		g := r.u32("expert_gating_func")
		switch g {
		case 1:
			c.GatingSigmoid = false
		case 2:
			c.GatingSigmoid = true
		default:
			return Config{}, fmt.Errorf("glm4moe: %sexpert_gating_func = %d is not supported (1 softmax, 2 sigmoid)", r.prefix, g)
		}
	} else {
		// Spec §8: sigmoid when the MoE layers carry an exp_probs_b bias.
		c.GatingSigmoid = false
		if c.LeadingDense < c.NBlock {
			_, c.GatingSigmoid = f.Tensor(blk(nameExpProbsB, c.LeadingDense))
		}
	}
	if c.VocabSize == 0 {
		if ti, ok := f.Tensor(nameTokenEmbd); ok && len(ti.Dims) == 2 {
			c.VocabSize = int(ti.Dims[1])
		}
	}
	c.NLayer = c.NBlock - c.NextN
	c.NopeDim = c.KeyLengthMLA - c.RopeDim
	return c, c.validate()
}

func (c Config) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("glm4moe: invalid config: "+format, a...)
	}
	switch {
	case c.NLayer <= 0:
		return bad("block_count %d − nextn_predict_layers %d leaves no layers", c.NBlock, c.NextN)
	case c.NEmbd <= 0, c.NHead <= 0, c.KVLoraRank <= 0, c.VocabSize <= 0:
		return bad("embedding_length %d, head_count %d, kv_lora_rank %d, vocab %d must be positive", c.NEmbd, c.NHead, c.KVLoraRank, c.VocabSize)
	case c.RopeDim <= 0 || c.RopeDim%2 != 0:
		return bad("rope.dimension_count %d must be positive and even", c.RopeDim)
	case c.NopeDim <= 0:
		return bad("key_length_mla %d must exceed rope.dimension_count %d", c.KeyLengthMLA, c.RopeDim)
	case c.ValueLengthMLA <= 0:
		return bad("value_length_mla %d", c.ValueLengthMLA)
	case c.KeyLength != c.KVLoraRank+c.RopeDim:
		return bad("key_length %d != kv_lora_rank %d + rope.dimension_count %d (only absorbed-MLA files are supported)", c.KeyLength, c.KVLoraRank, c.RopeDim)
	case c.ValueLength != c.KVLoraRank:
		return bad("value_length %d != kv_lora_rank %d", c.ValueLength, c.KVLoraRank)
	case c.NHeadKV != 1:
		return bad("head_count_kv %d (absorbed MLA needs 1)", c.NHeadKV)
	case c.RMSEps <= 0:
		return bad("layer_norm_rms_epsilon %g", c.RMSEps)
	case c.LeadingDense < c.NLayer && (c.NExpert <= 0 || c.NExpertUsed <= 0 || c.NExpertUsed > c.NExpert || c.NFFExp <= 0):
		return bad("MoE layers need expert_count %d >= expert_used_count %d > 0 and expert_feed_forward_length %d > 0", c.NExpert, c.NExpertUsed, c.NFFExp)
	case c.LeadingDense > 0 && c.NFF <= 0:
		return bad("dense layers need feed_forward_length > 0")
	case c.NExpertGroup > 1:
		return bad("expert_group_count %d > 1 (group-limited routing) is not supported", c.NExpertGroup)
	}
	return nil
}

// keyReader reads prefixed metadata keys, remembering the first error.
type keyReader struct {
	f      *gguf.File
	prefix string
	err    error
}

func (r *keyReader) fail(key string, err error) {
	if r.err == nil {
		r.err = fmt.Errorf("glm4moe: metadata %s%s: %w", r.prefix, key, err)
	}
}

func (r *keyReader) u32(key string) int {
	v, ok := r.f.Lookup(r.prefix + key)
	if !ok {
		r.fail(key, errors.New("missing"))
		return 0
	}
	u, ok := v.Uint()
	if !ok || u > 1<<31 {
		if i, ok2 := v.Int(); ok2 && i >= 0 && i <= 1<<31 {
			return int(i)
		}
		r.fail(key, fmt.Errorf("not a non-negative integer (type %s)", v.Type))
		return 0
	}
	return int(u)
}

func (r *keyReader) u32opt(key string, def int) int {
	if !r.f.Has(r.prefix + key) {
		return def
	}
	return r.u32(key)
}

func (r *keyReader) f32(key string) float32 {
	v, ok := r.f.Lookup(r.prefix + key)
	if !ok {
		r.fail(key, errors.New("missing"))
		return 0
	}
	x, ok := v.Float()
	if !ok {
		r.fail(key, fmt.Errorf("not a number (type %s)", v.Type))
	}
	return float32(x)
}

func (r *keyReader) f32opt(key string, def float32) float32 {
	if !r.f.Has(r.prefix + key) {
		return def
	}
	return r.f32(key)
}

func (r *keyReader) boolopt(key string, def bool) bool {
	if !r.f.Has(r.prefix + key) {
		return def
	}
	b, err := r.f.Bool(r.prefix + key)
	if err != nil {
		r.fail(key, err)
	}
	return b
}
