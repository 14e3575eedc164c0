package glm4moe_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/glmrun/glmrun/backend/quant"
	"github.com/glmrun/glmrun/gguf"
)

// synthSpec describes a random GLM-architecture model with shapes unlike
// glm-tiny's.
type synthSpec struct {
	arch                            string
	d, layers, dense, heads         int
	qLora, kvLora, nope, rope, dv   int
	ff, nExp, nUsed, ffExp, nShared int
	vocab                           int
	nextn                           int     // extra (skipped) NextN blocks, no tensors written
	fused                           bool    // write ffn_gate_up_exps instead of ffn_gate_exps + ffn_up_exps
	gating                          int     // 0: key absent; else expert_gating_func
	bias                            bool    // write exp_probs_b
	scale                           float32 // expert_weights_scale
	norm                            bool
	eps                             float32
	base                            float32
}

func heldOutSpec() synthSpec {
	return synthSpec{
		arch: "deepseek2", d: 128, layers: 4, dense: 2, heads: 3,
		qLora: 96, kvLora: 32, nope: 24, rope: 8, dv: 40,
		ff: 160, nExp: 4, nUsed: 2, ffExp: 64, nShared: 1, vocab: 97,
		nextn: 1, bias: true, scale: 2.5, norm: true, eps: 1e-6, base: 10000,
	}
}

// synthTensor is one tensor: GGUF dims (fastest first), stored type, and
// the float values it was quantized from.
type synthTensor struct {
	name string
	typ  gguf.TensorType
	dims []uint64
	vals []float32
	raw  []byte // if set, written as is instead of quantizing vals
}

// synthModel is a written random model plus its exactly dequantized weights
// (what a correct engine must use).
type synthModel struct {
	spec    synthSpec
	path    string
	tensors []synthTensor
	deq     map[string][]float64
}

// buildSynth writes a random model to a temporary file. mutate, if not nil,
// may edit the tensor list and metadata before writing.
func buildSynth(t *testing.T, s synthSpec, seed uint64, mutate func(kv map[string]gguf.Value, ts []synthTensor) []synthTensor) *synthModel {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	var ts []synthTensor
	// Types rotate over a few quantized and float types to exercise dispatch;
	// only types whose block size divides the row are used.
	types := []gguf.TensorType{gguf.TypeQ8_0, gguf.TypeF16, gguf.TypeQ4_0, gguf.TypeBF16, gguf.TypeQ5_0, gguf.TypeF32}
	ti := 0
	add := func(name string, scale float64, float bool, dims ...int) {
		n := 1
		ud := make([]uint64, len(dims))
		for i, v := range dims {
			n *= v
			ud[i] = uint64(v)
		}
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = float32(rng.NormFloat64() * scale)
		}
		typ := gguf.TypeF32
		if !float {
			for k := 0; k < len(types); k++ {
				cand := types[(ti+k)%len(types)]
				if dims[0]%cand.BlockSize() == 0 {
					typ = cand
					ti = (ti + k + 1) % len(types)
					break
				}
			}
		}
		ts = append(ts, synthTensor{name: name, typ: typ, dims: ud, vals: vals})
	}
	norm := func(name string, n int) {
		add(name, 0, true, n)
		v := ts[len(ts)-1].vals
		for i := range v {
			v[i] = float32(1 + 0.2*rng.NormFloat64())
		}
	}
	H, qk := s.heads, s.nope+s.rope
	add("token_embd.weight", 1, false, s.d, s.vocab)
	norm("output_norm.weight", s.d)
	add("output.weight", 1/math.Sqrt(float64(s.d)), false, s.d, s.vocab)
	for l := 0; l < s.layers; l++ {
		b := func(n string) string { return fmt.Sprintf("blk.%d.%s", l, n) }
		norm(b("attn_norm.weight"), s.d)
		if s.qLora > 0 {
			add(b("attn_q_a.weight"), 1/math.Sqrt(float64(s.d)), false, s.d, s.qLora)
			norm(b("attn_q_a_norm.weight"), s.qLora)
			add(b("attn_q_b.weight"), 1/math.Sqrt(float64(s.qLora)), false, s.qLora, H*qk)
		} else {
			add(b("attn_q.weight"), 1/math.Sqrt(float64(s.d)), false, s.d, H*qk)
		}
		add(b("attn_kv_a_mqa.weight"), 1/math.Sqrt(float64(s.d)), false, s.d, s.kvLora+s.rope)
		norm(b("attn_kv_a_norm.weight"), s.kvLora)
		add(b("attn_k_b.weight"), 1/math.Sqrt(float64(s.nope)), false, s.nope, s.kvLora, H)
		add(b("attn_v_b.weight"), 1/math.Sqrt(float64(s.kvLora)), false, s.kvLora, s.dv, H)
		add(b("attn_output.weight"), 1/math.Sqrt(float64(H*s.dv)), false, H*s.dv, s.d)
		norm(b("ffn_norm.weight"), s.d)
		if l < s.dense {
			add(b("ffn_gate.weight"), 1/math.Sqrt(float64(s.d)), false, s.d, s.ff)
			add(b("ffn_up.weight"), 1/math.Sqrt(float64(s.d)), false, s.d, s.ff)
			add(b("ffn_down.weight"), 1/math.Sqrt(float64(s.ff)), false, s.ff, s.d)
			continue
		}
		add(b("ffn_gate_inp.weight"), 1/math.Sqrt(float64(s.d)), true, s.d, s.nExp)
		if s.bias {
			add(b("exp_probs_b.bias"), 0.3, true, s.nExp)
		}
		if s.fused {
			// Expert e: rows e·2ff.. are gate, e·2ff+ff.. are up.
			add(b("ffn_gate_up_exps.weight"), 1/math.Sqrt(float64(s.d)), false, s.d, 2*s.ffExp, s.nExp)
		} else {
			add(b("ffn_gate_exps.weight"), 1/math.Sqrt(float64(s.d)), false, s.d, s.ffExp, s.nExp)
			add(b("ffn_up_exps.weight"), 1/math.Sqrt(float64(s.d)), false, s.d, s.ffExp, s.nExp)
		}
		add(b("ffn_down_exps.weight"), 1/math.Sqrt(float64(s.ffExp)), false, s.ffExp, s.d, s.nExp)
		if s.nShared > 0 {
			fs := s.ffExp * s.nShared
			add(b("ffn_gate_shexp.weight"), 1/math.Sqrt(float64(s.d)), false, s.d, fs)
			add(b("ffn_up_shexp.weight"), 1/math.Sqrt(float64(s.d)), false, s.d, fs)
			add(b("ffn_down_shexp.weight"), 1/math.Sqrt(float64(fs)), false, fs, s.d)
		}
	}
	p := s.arch + "."
	kv := map[string]gguf.Value{
		"general.architecture":                 gguf.String(s.arch),
		p + "block_count":                      gguf.Uint32(uint32(s.layers + s.nextn)),
		p + "context_length":                   gguf.Uint32(4096),
		p + "embedding_length":                 gguf.Uint32(uint32(s.d)),
		p + "feed_forward_length":              gguf.Uint32(uint32(s.ff)),
		p + "attention.head_count":             gguf.Uint32(uint32(H)),
		p + "attention.head_count_kv":          gguf.Uint32(1),
		p + "rope.freq_base":                   gguf.Float32(s.base),
		p + "attention.layer_norm_rms_epsilon": gguf.Float32(s.eps),
		p + "expert_count":                     gguf.Uint32(uint32(s.nExp)),
		p + "expert_used_count":                gguf.Uint32(uint32(s.nUsed)),
		p + "expert_group_count":               gguf.Uint32(1),
		p + "expert_group_used_count":          gguf.Uint32(1),
		p + "leading_dense_block_count":        gguf.Uint32(uint32(s.dense)),
		p + "vocab_size":                       gguf.Uint32(uint32(s.vocab)),
		p + "attention.q_lora_rank":            gguf.Uint32(uint32(s.qLora)),
		p + "attention.kv_lora_rank":           gguf.Uint32(uint32(s.kvLora)),
		p + "attention.key_length":             gguf.Uint32(uint32(s.kvLora + s.rope)),
		p + "attention.value_length":           gguf.Uint32(uint32(s.kvLora)),
		p + "attention.key_length_mla":         gguf.Uint32(uint32(qk)),
		p + "attention.value_length_mla":       gguf.Uint32(uint32(s.dv)),
		p + "expert_feed_forward_length":       gguf.Uint32(uint32(s.ffExp)),
		p + "expert_shared_count":              gguf.Uint32(uint32(s.nShared)),
		p + "expert_weights_scale":             gguf.Float32(s.scale),
		p + "expert_weights_norm":              gguf.Bool(s.norm),
		p + "rope.dimension_count":             gguf.Uint32(uint32(s.rope)),
	}
	if s.nextn > 0 {
		kv[p+"nextn_predict_layers"] = gguf.Uint32(uint32(s.nextn))
	}
	if s.gating != 0 {
		kv[p+"expert_gating_func"] = gguf.Uint32(uint32(s.gating))
	}
	if mutate != nil {
		ts = mutate(kv, ts)
	}
	path := filepath.Join(t.TempDir(), "synth.gguf")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := gguf.NewWriter(fh)
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	// general.architecture first, the rest in a fixed order.
	sortStrings(keys)
	for _, k := range keys {
		if err := w.AddKV(k, kv[k]); err != nil {
			t.Fatal(err)
		}
	}
	sm := &synthModel{spec: s, path: path, tensors: ts, deq: map[string][]float64{}}
	datas := make([][]byte, len(ts))
	for i, tt := range ts {
		if _, err := w.AddTensor(tt.name, tt.typ, tt.dims...); err != nil {
			t.Fatal(err)
		}
		if tt.raw != nil {
			datas[i] = tt.raw
			continue
		}
		n := len(tt.vals)
		rb, err := tt.typ.RowBytes(uint64(n))
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, rb)
		if err := quant.Quantize(tt.typ, tt.vals, data); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		deq := make([]float32, n)
		if err := quant.Dequantize(tt.typ, data, deq); err != nil {
			t.Fatal(err)
		}
		d64 := make([]float64, n)
		for j, v := range deq {
			d64[j] = float64(v)
		}
		sm.deq[tt.name] = d64
		datas[i] = data
	}
	for _, d := range datas {
		if err := w.WriteTensorData(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	return sm
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && less(s[j], s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func less(a, b string) bool {
	if a == "general.architecture" {
		return b != a
	}
	if b == "general.architecture" {
		return false
	}
	return a < b
}
