package quantize

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/glmrun/glmrun/backend/quant"
	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/testdata"
)

// heldOut describes a random GLM-architecture (deepseek2) model with shapes
// unlike glm-tiny's, every matrix row a multiple of 128 so that MMFP4 and
// Q4_K apply everywhere but attn_k_b / attn_q_b (ne0 128: q5_0 in Q4_K_M).
type heldOut struct {
	d, layers, dense, heads, qLora, kvLora, nope, rope, dv, ff, nExp, nUsed, ffExp, vocab int
}

var heldOutShape = heldOut{d: 384, layers: 3, dense: 1, heads: 2, qLora: 256, kvLora: 128, nope: 128, rope: 32,
	dv: 128, ff: 768, nExp: 6, nUsed: 2, ffExp: 256, vocab: 640}

// writeHeldOut writes the model with bf16 matrices and f32 norms/routers to
// path with the gguf writer.
func writeHeldOut(t *testing.T, s heldOut, path string, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	type tensor struct {
		name string
		typ  gguf.TensorType
		dims []uint64
		vals []float32
	}
	var ts []tensor
	add := func(name string, typ gguf.TensorType, scale, mean float64, dims ...int) {
		n := 1
		ud := make([]uint64, len(dims))
		for i, v := range dims {
			n *= v
			ud[i] = uint64(v)
		}
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = float32(mean + rng.NormFloat64()*scale)
		}
		ts = append(ts, tensor{name, typ, ud, vals})
	}
	mat := func(name string, dims ...int) { add(name, gguf.TypeBF16, 1/math.Sqrt(float64(dims[0])), 0, dims...) }
	norm := func(name string, n int) { add(name, gguf.TypeF32, 0.1, 1, n) }
	qk := s.nope + s.rope
	add("token_embd.weight", gguf.TypeBF16, 1, 0, s.d, s.vocab)
	norm("output_norm.weight", s.d)
	mat("output.weight", s.d, s.vocab)
	for l := 0; l < s.layers; l++ {
		b := func(n string) string { return fmt.Sprintf("blk.%d.%s", l, n) }
		norm(b("attn_norm.weight"), s.d)
		mat(b("attn_q_a.weight"), s.d, s.qLora)
		norm(b("attn_q_a_norm.weight"), s.qLora)
		mat(b("attn_q_b.weight"), s.qLora, s.heads*qk)
		mat(b("attn_kv_a_mqa.weight"), s.d, s.kvLora+s.rope)
		norm(b("attn_kv_a_norm.weight"), s.kvLora)
		mat(b("attn_k_b.weight"), s.nope, s.kvLora, s.heads)
		mat(b("attn_v_b.weight"), s.kvLora, s.dv, s.heads)
		mat(b("attn_output.weight"), s.heads*s.dv, s.d)
		norm(b("ffn_norm.weight"), s.d)
		if l < s.dense {
			mat(b("ffn_gate.weight"), s.d, s.ff)
			mat(b("ffn_up.weight"), s.d, s.ff)
			mat(b("ffn_down.weight"), s.ff, s.d)
			continue
		}
		add(b("ffn_gate_inp.weight"), gguf.TypeF32, 1/math.Sqrt(float64(s.d)), 0, s.d, s.nExp)
		add(b("exp_probs_b.bias"), gguf.TypeF32, 0.2, 0, s.nExp)
		mat(b("ffn_gate_exps.weight"), s.d, s.ffExp, s.nExp)
		mat(b("ffn_up_exps.weight"), s.d, s.ffExp, s.nExp)
		mat(b("ffn_down_exps.weight"), s.ffExp, s.d, s.nExp)
		mat(b("ffn_gate_shexp.weight"), s.d, s.ffExp)
		mat(b("ffn_up_shexp.weight"), s.d, s.ffExp)
		mat(b("ffn_down_shexp.weight"), s.ffExp, s.d)
	}
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := gguf.NewWriter(fh)
	u := func(v int) gguf.Value { return gguf.Uint32(uint32(v)) }
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: gguf.String("deepseek2")},
		{Key: "general.file_type", Value: gguf.Uint32(32)},
		{Key: "deepseek2.block_count", Value: u(s.layers)},
		{Key: "deepseek2.context_length", Value: u(4096)},
		{Key: "deepseek2.embedding_length", Value: u(s.d)},
		{Key: "deepseek2.feed_forward_length", Value: u(s.ff)},
		{Key: "deepseek2.attention.head_count", Value: u(s.heads)},
		{Key: "deepseek2.attention.head_count_kv", Value: u(1)},
		{Key: "deepseek2.rope.freq_base", Value: gguf.Float32(10000)},
		{Key: "deepseek2.attention.layer_norm_rms_epsilon", Value: gguf.Float32(1e-5)},
		{Key: "deepseek2.expert_count", Value: u(s.nExp)},
		{Key: "deepseek2.expert_used_count", Value: u(s.nUsed)},
		{Key: "deepseek2.leading_dense_block_count", Value: u(s.dense)},
		{Key: "deepseek2.vocab_size", Value: u(s.vocab)},
		{Key: "deepseek2.attention.q_lora_rank", Value: u(s.qLora)},
		{Key: "deepseek2.attention.kv_lora_rank", Value: u(s.kvLora)},
		{Key: "deepseek2.attention.key_length", Value: u(s.kvLora + s.rope)},
		{Key: "deepseek2.attention.value_length", Value: u(s.kvLora)},
		{Key: "deepseek2.attention.key_length_mla", Value: u(qk)},
		{Key: "deepseek2.attention.value_length_mla", Value: u(s.dv)},
		{Key: "deepseek2.expert_feed_forward_length", Value: u(s.ffExp)},
		{Key: "deepseek2.expert_shared_count", Value: u(1)},
		{Key: "deepseek2.expert_weights_scale", Value: gguf.Float32(1.8)},
		{Key: "deepseek2.expert_weights_norm", Value: gguf.Bool(true)},
		{Key: "deepseek2.rope.dimension_count", Value: u(s.rope)},
	}
	for _, kv := range kvs {
		if err := w.AddKV(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range ts {
		if _, err := w.AddTensor(tt.name, tt.typ, tt.dims...); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range ts {
		rb, err := tt.typ.RowBytes(uint64(len(tt.vals)))
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, rb)
		if err := quant.Quantize(tt.typ, tt.vals, data); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteTensorData(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMMFP4HeldOutKL: on a random model glm-tiny did not shape, MMFP4 loses
// at most 3x the KL Q4_K_M loses against the bf16 model's own logits (all
// three run on the exact path).
func TestMMFP4HeldOutKL(t *testing.T) {
	s := heldOutShape
	bf16 := filepath.Join(t.TempDir(), "heldout-bf16.gguf")
	writeHeldOut(t, s, bf16, 11)
	rng := rand.New(rand.NewPCG(3, 4))
	toks := make([]int32, 96)
	for i := range toks {
		toks[i] = int32(rng.IntN(s.vocab))
	}
	ref := logitsOf(t, bf16, toks, true)
	q4Path := requantizeTo(t, bf16, PresetQ4_K_M)
	mmPath := requantizeTo(t, bf16, PresetMMFP4)
	// The MMFP4 file really holds MMFP4 matrices.
	f, err := gguf.Open(mmPath)
	if err != nil {
		t.Fatal(err)
	}
	nMM := 0
	for _, ti := range f.Tensors {
		if ti.Type == gguf.TypeMMFP4 {
			nMM++
		}
	}
	f.Close()
	if nMM < 20 {
		t.Fatalf("MMFP4 file has only %d MMFP4 tensors", nMM)
	}
	q4 := testdata.MeanKL(ref, logitsOf(t, q4Path, toks, true), s.vocab)
	mm := testdata.MeanKL(ref, logitsOf(t, mmPath, toks, true), s.vocab)
	t.Logf("held-out model mean KL vs its bf16 logits: Q4_K_M %.5f, MMFP4 %.5f (ratio %.2f), %d MMFP4 tensors", q4, mm, mm/q4, nMM)
	if !(q4 > 0) || !(mm > 0) {
		t.Fatalf("degenerate KL: q4 %v mmfp4 %v", q4, mm)
	}
	if mm > 3*q4 {
		t.Errorf("MMFP4 KL %.5f exceeds 3x Q4_K_M's %.5f", mm, q4)
	}
}
