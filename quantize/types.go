// Package quantize turns a GGUF model into another weight-type mix the way
// llama.cpp's llama-quantize does (same per-tensor type rules, same
// reference quantizers, hence byte-identical tensor data for the presets it
// implements), adds this project's MMFP4 preset, and imports metal-marlin's
// MMFP4 safetensors checkpoints into MMFP4 GGUF tensors.
//
// The per-tensor type choice (Chooser) mirrors llama.cpp's
// llama_tensor_get_type (src/llama-quant.cpp, unslothai/llama.cpp d32676d77)
// for the rules that can fire on a llama-family or deepseek2/GLM-4.7-Flash
// file; Requantize streams a file through it; ImportMMFP4 converts a
// safetensors checkpoint.
package quantize

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/glmrun/glmrun/gguf"
)

// Preset is a weight-type mix, the TYPE argument of glmquant (llama-quantize's
// ftype names).
type Preset int

// The presets. Q8_0..Q6_K follow llama-quantize's rules exactly; MMFP4 is
// this project's mix (see Chooser).
const (
	PresetQ8_0 Preset = iota + 1
	PresetQ4_K_S
	PresetQ4_K_M
	PresetQ5_K_M
	PresetQ6_K
	PresetMMFP4
)

var presetNames = map[Preset]string{
	PresetQ8_0: "Q8_0", PresetQ4_K_S: "Q4_K_S", PresetQ4_K_M: "Q4_K_M",
	PresetQ5_K_M: "Q5_K_M", PresetQ6_K: "Q6_K", PresetMMFP4: "MMFP4",
}

// String returns the preset's llama-quantize name (e.g. "Q4_K_M").
func (p Preset) String() string {
	if s, ok := presetNames[p]; ok {
		return s
	}
	return fmt.Sprintf("Preset(%d)", int(p))
}

// ParsePreset parses a TYPE argument, case-insensitively ("q4_k_m", "Q4_K_M").
// Other llama-quantize types (Q2_K, IQ4_XS, Q5_K_S, ...) are refused: their
// rules are not implemented here.
func ParsePreset(s string) (Preset, error) {
	for p, n := range presetNames {
		if strings.EqualFold(s, n) {
			return p, nil
		}
	}
	names := make([]string, 0, len(presetNames))
	for p := PresetQ8_0; p <= PresetMMFP4; p++ {
		names = append(names, p.String())
	}
	return 0, fmt.Errorf("quantize: unsupported type %q: glmquant implements %s (other llama-quantize types are not implemented)", s, strings.Join(names, ", "))
}

// FileType is the general.file_type a file of this preset records:
// llama.cpp's llama_ftype (7 MOSTLY_Q8_0, 14 MOSTLY_Q4_K_S, 15 MOSTLY_Q4_K_M,
// 17 MOSTLY_Q5_K_M, 18 MOSTLY_Q6_K); MMFP4 has no llama.cpp ftype and records
// the project's tensor type id, 4160.
func (p Preset) FileType() uint32 {
	switch p {
	case PresetQ8_0:
		return 7
	case PresetQ4_K_S:
		return 14
	case PresetQ4_K_M:
		return 15
	case PresetQ5_K_M:
		return 17
	case PresetQ6_K:
		return 18
	case PresetMMFP4:
		return uint32(gguf.TypeMMFP4)
	}
	return 0
}

// defaultType is llama_ftype_get_default_type.
func (p Preset) defaultType() gguf.TensorType {
	switch p {
	case PresetQ8_0:
		return gguf.TypeQ8_0
	case PresetQ5_K_M:
		return gguf.TypeQ5_K
	case PresetQ6_K:
		return gguf.TypeQ6_K
	}
	return gguf.TypeQ4_K // Q4_K_S, Q4_K_M; MMFP4's non-block tensors
}

// ModelInfo holds the hyperparameters the type rules read.
type ModelInfo struct {
	Arch    string // general.architecture
	Layers  int    // <arch>.block_count (llama.cpp's n_layer_all, NextN blocks included)
	Experts int    // <arch>.expert_count (0 for a dense model)
}

// ModelInfoFromGGUF reads ModelInfo from f's metadata.
func ModelInfoFromGGUF(f *gguf.File) (ModelInfo, error) {
	arch, err := f.String("general.architecture")
	if err != nil {
		return ModelInfo{}, fmt.Errorf("quantize: %w", err)
	}
	m := ModelInfo{Arch: arch}
	n, err := f.Uint32(arch + ".block_count")
	if err != nil {
		return ModelInfo{}, fmt.Errorf("quantize: %w", err)
	}
	m.Layers = int(n)
	if f.Has(arch + ".expert_count") {
		e, err := f.Uint32(arch + ".expert_count")
		if err != nil {
			return ModelInfo{}, fmt.Errorf("quantize: %w", err)
		}
		m.Experts = int(e)
	}
	return m, nil
}

// UseMoreBits is llama.cpp's use_more_bits: the layers whose ffn_down (and
// attn_v) tensors Q4_K_M / Q5_K_M store as q6_K: the first and last eighth
// of the layers and every third layer in between.
func UseMoreBits(layer, nLayers int) bool {
	return layer < nLayers/8 || layer >= 7*nLayers/8 || (layer-nLayers/8)%3 == 2
}

// Fallback is llama.cpp's tensor_type_fallback: the type used instead of t
// when a row of ne0 elements is not a multiple of t's block size (q4_K ->
// q5_0, q5_K -> q5_1, q6_K -> q8_0; f16 if even that block does not divide
// the row). A type that divides ne0 is returned unchanged.
//
// One deliberate difference: llama.cpp defines no fallback for q8_0 and
// aborts ("no tensor type fallback is defined"), so llama-quantize Q8_0
// fails on glm-tiny (attn_k_b rows of 48); here q8_0 falls back to f16.
// Other types without a llama.cpp fallback are an error.
func Fallback(t gguf.TensorType, ne0 uint64) (gguf.TensorType, error) {
	bs := uint64(t.BlockSize())
	if bs == 0 {
		return 0, fmt.Errorf("quantize: unknown tensor type %d", uint32(t))
	}
	if ne0%bs == 0 {
		return t, nil
	}
	var r gguf.TensorType
	switch t {
	case gguf.TypeQ2_K, gguf.TypeQ3_K:
		r = gguf.TypeQ4_0
	case gguf.TypeQ4_K:
		r = gguf.TypeQ5_0
	case gguf.TypeQ5_K:
		r = gguf.TypeQ5_1
	case gguf.TypeQ6_K:
		r = gguf.TypeQ8_0
	case gguf.TypeQ8_0:
		r = gguf.TypeF16
	default:
		return 0, fmt.Errorf("quantize: rows of %d elements are not a multiple of %s's block of %d and llama.cpp defines no fallback for %s", ne0, t, bs, t)
	}
	if ne0%uint64(r.BlockSize()) != 0 {
		r = gguf.TypeF16
	}
	return r, nil
}

// category is llama.cpp's tensor_category.
type category int

const (
	catOther category = iota
	catTokenEmbd
	catAttnQ
	catAttnV
	catAttnK
	catAttnQKV
	catAttnKVB
	catAttnOutput
	catFFNUp
	catFFNGate
	catFFNDown
	catOutput
)

// categoryOf is tensor_get_category (substring tests, first match wins).
func categoryOf(name string) category {
	switch {
	case name == "output.weight":
		return catOutput
	case name == "token_embd.weight" || name == "per_layer_token_embd.weight":
		return catTokenEmbd
	case strings.Contains(name, "attn_qkv.weight"):
		return catAttnQKV
	case strings.Contains(name, "attn_kv_b.weight"):
		return catAttnKVB
	case strings.Contains(name, "attn_v.weight"):
		return catAttnV
	case strings.Contains(name, "attn_k.weight"):
		return catAttnK
	case strings.Contains(name, "attn_q.weight"):
		return catAttnQ
	case strings.Contains(name, "attn_output.weight"):
		return catAttnOutput
	case strings.Contains(name, "ffn_up"):
		return catFFNUp
	case strings.Contains(name, "ffn_gate"):
		return catFFNGate
	case strings.Contains(name, "ffn_down"):
		return catFFNDown
	}
	return catOther
}

func (c category) attnVLike() bool { return c == catAttnV || c == catAttnQKV || c == catAttnKVB }

// noQuantSubstrings are the name fragments tensor_allows_quantization
// excludes (norms, routers and small special tensors of other architectures).
var noQuantSubstrings = []string{
	"_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel",
	"per_layer_model_proj", "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight",
	"indexer.q_proj.weight", "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight",
	"time_mix_w2.weight", "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight",
	"time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight",
	"time_mix_g2.weight", "time_mix_decay_w1.weight", "time_mix_decay_w2.weight",
	"time_mix_lerp_fused.weight", "attn_rel_b.weight", ".position_embd", "sam.pos_embd",
	"sam.neck.", "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger", "a.rvq.codebook",
	"mm.a.code_embd",
}

// nDims is ggml_n_dims: the number of dimensions up to the last one > 1
// (at least 1).
func nDims(dims []uint64) int {
	n := 1
	for i, d := range dims {
		if d > 1 {
			n = i + 1
		}
	}
	return n
}

// Quantizable is llama.cpp's tensor_allows_quantization with default
// parameters: a tensor of at least 2 (significant) dimensions whose name ends
// in "weight" and is not a norm, a router (ffn_gate_inp), a positional
// embedding or one of a few small special tensors. 1-D tensors (norms,
// biases such as exp_probs_b) are never quantized.
func Quantizable(name string, dims []uint64) bool {
	if nDims(dims) < 2 || !strings.HasSuffix(name, "weight") {
		return false
	}
	if name == "position_embd.weight" || name == "token_types.weight" {
		return false
	}
	for _, s := range noQuantSubstrings {
		if strings.Contains(name, s) {
			return false
		}
	}
	return true
}

// blockIndex is sscanf(name, "blk.%d.") (-1 when the name has no block).
func blockIndex(name string) int {
	if !strings.HasPrefix(name, "blk.") {
		return -1
	}
	rest := name[4:]
	end := strings.IndexByte(rest, '.')
	if end <= 0 {
		return -1
	}
	n, err := strconv.Atoi(rest[:end])
	if err != nil {
		return -1
	}
	return n
}

// SortLikeLlama orders tensors as llama.cpp's model loader (and therefore
// llama-quantize's output) does: tensors outside blocks first, then by
// block index, each group by name (byte order).
func SortLikeLlama(ts []gguf.TensorInfo) {
	sort.SliceStable(ts, func(i, j int) bool {
		a, b := blockIndex(ts[i].Name), blockIndex(ts[j].Name)
		if a != b {
			return a < b
		}
		return ts[i].Name < ts[j].Name
	})
}

// Chooser picks each tensor's output type for a preset. llama.cpp's rules
// keep counters across tensors (attn_v-like tensors are numbered in file
// order), so Choose must be called once per tensor in SortLikeLlama order.
//
// MMFP4 preset: output.weight and token_embd.weight get Q4_K_M's types
// (q6_K / q4_K, with Q4_K_M's fallbacks); every other quantizable tensor
// (all matrices inside blocks: expert banks, shared experts, the dense FFN,
// attention projections) is MMFP4 when its row (ne0) is a multiple of 128,
// else q8_0 when ne0 is a multiple of 32, else f16 (GLM-4.7-Flash's attn_k_b,
// ne0 = 192, becomes q8_0). Norms, routers (ffn_gate_inp), exp_probs_b and
// other 1-D tensors keep their type (f32), as in every preset.
type Chooser struct {
	preset   Preset
	model    ModelInfo
	tied     bool // no output.weight: token_embd takes the output rules
	nAttnV   int
	iAttnV   int
	iFFNDown int

	// Fallbacks counts the tensors whose rule type did not divide their rows
	// and took tensor_type_fallback's substitute.
	Fallbacks int
}

// NewChooser prepares the rules for preset p on a model with info m whose
// tensors are named names (all of them; used to count attn_v-like tensors
// and to detect tied embeddings, as llama.cpp does before quantizing).
func NewChooser(p Preset, m ModelInfo, names []string) (*Chooser, error) {
	if _, ok := presetNames[p]; !ok {
		return nil, fmt.Errorf("quantize: unknown preset %d", int(p))
	}
	c := &Chooser{preset: p, model: m, tied: true}
	for _, n := range names {
		cat := categoryOf(n)
		if cat.attnVLike() {
			c.nAttnV++
		}
		if cat == catOutput {
			c.tied = false
		}
	}
	return c, nil
}

// Choose returns the output type of tensor name with ggml dims (fastest
// first) stored now as cur. A tensor that is not Quantizable keeps cur.
func (c *Chooser) Choose(name string, dims []uint64, cur gguf.TensorType) (gguf.TensorType, error) {
	if len(dims) == 0 {
		return 0, fmt.Errorf("quantize: tensor %s has no dimensions", name)
	}
	if !Quantizable(name, dims) {
		return cur, nil
	}
	cat := categoryOf(name)
	ne0 := dims[0]
	if c.preset == PresetMMFP4 {
		if cat != catOutput && cat != catTokenEmbd {
			switch {
			case ne0%128 == 0:
				return gguf.TypeMMFP4, nil
			case ne0%32 == 0:
				return gguf.TypeQ8_0, nil
			}
			return gguf.TypeF16, nil
		}
		q4 := &Chooser{preset: PresetQ4_K_M, model: c.model, tied: c.tied}
		t, err := q4.rule(name, cat, ne0)
		if err != nil {
			return 0, err
		}
		return c.fallback(t, ne0)
	}
	t, err := c.rule(name, cat, ne0)
	if err != nil {
		return 0, err
	}
	return c.fallback(t, ne0)
}

func (c *Chooser) fallback(t gguf.TensorType, ne0 uint64) (gguf.TensorType, error) {
	r, err := Fallback(t, ne0)
	if err == nil && r != t {
		c.Fallbacks++
	}
	return r, err
}

// rule is llama_tensor_get_type_impl restricted to the implemented presets
// (the IQ/Q2/Q3/MXFP4 branches cannot fire for them). Falcon-specific
// branches are kept for fidelity.
func (c *Chooser) rule(name string, cat category, ne0 uint64) (gguf.TensorType, error) {
	p := c.preset
	t := p.defaultType()
	nExp := c.model.Experts
	falcon := c.model.Arch == "falcon"
	if cat == catOutput || (c.tied && cat == catTokenEmbd) {
		if falcon || ne0%uint64(t.BlockSize()) != 0 {
			return gguf.TypeQ8_0, nil
		}
		if t != gguf.TypeQ8_0 {
			return gguf.TypeQ6_K, nil
		}
		return t, nil
	}
	switch cat {
	case catTokenEmbd:
		// default type for the implemented presets
	case catAttnV, catAttnQKV, catAttnKVB:
		switch {
		case (p == PresetQ4_K_M || p == PresetQ5_K_M) && UseMoreBits(c.iAttnV, c.nAttnV):
			t = gguf.TypeQ6_K
		case p == PresetQ4_K_S && c.iAttnV < 4:
			t = gguf.TypeQ5_K
		}
		// (the LLM_TYPE_70B bump needs llama.cpp's model-size detection; it
		// only applies to 70B llama models, not to this project's files.)
		if nExp == 8 {
			t = gguf.TypeQ8_0
		}
		c.iAttnV++
	case catAttnK:
		if nExp == 8 {
			t = gguf.TypeQ8_0
		}
	case catFFNDown:
		iLayer, nLayer := c.iFFNDown, c.model.Layers
		if nExp > 1 {
			iLayer = blockIndex(name)
			if iLayer < 0 {
				return 0, fmt.Errorf("quantize: failed to determine the layer of tensor %s", name)
			}
			if iLayer >= nLayer {
				return 0, fmt.Errorf("quantize: bad layer %d for tensor %s: must be in [0, %d)", iLayer, name, nLayer)
			}
		}
		switch p {
		case PresetQ4_K_M:
			if falcon {
				switch {
				case iLayer < nLayer/16:
					t = gguf.TypeQ6_K
				case UseMoreBits(iLayer, nLayer):
					t = gguf.TypeQ5_K
				}
			} else if UseMoreBits(iLayer, nLayer) {
				t = gguf.TypeQ6_K
			}
		case PresetQ5_K_M:
			if UseMoreBits(iLayer, nLayer) {
				t = gguf.TypeQ6_K
			}
		case PresetQ4_K_S:
			if !falcon && iLayer < nLayer/8 {
				t = gguf.TypeQ5_K
			}
		}
		c.iFFNDown++
	case catAttnOutput:
		if !falcon && nExp == 8 && (p == PresetQ4_K_S || p == PresetQ4_K_M) {
			t = gguf.TypeQ5_K
		}
	}
	// llama.cpp's separate ATTENTION_QKV branch (q5_K / q6_K) is unreachable
	// there: attn_qkv is attn_v-like and takes the branch above first.
	return t, nil
}
