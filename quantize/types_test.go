package quantize

import (
	"fmt"
	"testing"

	"github.com/glmrun/glmrun/gguf"
)

// glm47Tensors lists GLM-4.7-Flash's 844 tensors (spec model-glm47-flash.md
// §3) as the bf16 conversion stores them.
func glm47Tensors() []gguf.TensorInfo {
	var ts []gguf.TensorInfo
	add := func(name string, typ gguf.TensorType, dims ...uint64) {
		ts = append(ts, gguf.TensorInfo{Name: name, Type: typ, Dims: dims})
	}
	bf, f32 := gguf.TypeBF16, gguf.TypeF32
	add("token_embd.weight", bf, 2048, 154880)
	add("output_norm.weight", f32, 2048)
	add("output.weight", bf, 2048, 154880)
	for l := 0; l < 47; l++ {
		b := func(n string) string { return fmt.Sprintf("blk.%d.%s", l, n) }
		add(b("attn_norm.weight"), f32, 2048)
		add(b("attn_q_a.weight"), bf, 2048, 768)
		add(b("attn_q_a_norm.weight"), f32, 768)
		add(b("attn_q_b.weight"), bf, 768, 5120)
		add(b("attn_kv_a_mqa.weight"), bf, 2048, 576)
		add(b("attn_kv_a_norm.weight"), f32, 512)
		add(b("attn_k_b.weight"), bf, 192, 512, 20)
		add(b("attn_v_b.weight"), bf, 512, 256, 20)
		add(b("attn_output.weight"), bf, 5120, 2048)
		add(b("ffn_norm.weight"), f32, 2048)
		if l == 0 {
			add(b("ffn_gate.weight"), bf, 2048, 10240)
			add(b("ffn_up.weight"), bf, 2048, 10240)
			add(b("ffn_down.weight"), bf, 10240, 2048)
			continue
		}
		add(b("ffn_gate_inp.weight"), f32, 2048, 64)
		add(b("exp_probs_b.bias"), f32, 64)
		add(b("ffn_gate_exps.weight"), bf, 2048, 1536, 64)
		add(b("ffn_up_exps.weight"), bf, 2048, 1536, 64)
		add(b("ffn_down_exps.weight"), bf, 1536, 2048, 64)
		add(b("ffn_gate_shexp.weight"), bf, 2048, 1536)
		add(b("ffn_up_shexp.weight"), bf, 2048, 1536)
		add(b("ffn_down_shexp.weight"), bf, 1536, 2048)
	}
	return ts
}

func chooseAll(t *testing.T, p Preset, m ModelInfo, ts []gguf.TensorInfo) map[string]gguf.TensorType {
	t.Helper()
	SortLikeLlama(ts)
	names := make([]string, len(ts))
	for i, ti := range ts {
		names[i] = ti.Name
	}
	c, err := NewChooser(p, m, names)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]gguf.TensorType{}
	for _, ti := range ts {
		typ, err := c.Choose(ti.Name, ti.Dims, ti.Type)
		if err != nil {
			t.Fatalf("%s: %v", ti.Name, err)
		}
		out[ti.Name] = typ
	}
	return out
}

// TestPresetCountsGLM47 checks the per-type tensor counts llama-quantize
// --dry-run gives for GLM-4.7-Flash (spec quant-formats.md §5).
func TestPresetCountsGLM47(t *testing.T) {
	m := ModelInfo{Arch: "deepseek2", Layers: 47, Experts: 64}
	want := map[Preset]map[gguf.TensorType]int{
		PresetQ4_K_M: {gguf.TypeF32: 281, gguf.TypeQ4_K: 470, gguf.TypeQ6_K: 46, gguf.TypeQ5_0: 47},
		PresetQ4_K_S: {gguf.TypeF32: 281, gguf.TypeQ4_K: 506, gguf.TypeQ5_K: 9, gguf.TypeQ6_K: 1, gguf.TypeQ5_0: 47},
		PresetQ5_K_M: {gguf.TypeF32: 281, gguf.TypeQ5_K: 470, gguf.TypeQ6_K: 46, gguf.TypeQ5_1: 47},
		PresetQ6_K:   {gguf.TypeF32: 281, gguf.TypeQ6_K: 516, gguf.TypeQ8_0: 47},
		PresetQ8_0:   {gguf.TypeF32: 281, gguf.TypeQ8_0: 563},
		// MMFP4: every block matrix but attn_k_b (192 % 128 != 0 -> q8_0).
		PresetMMFP4: {gguf.TypeF32: 281, gguf.TypeMMFP4: 563 - 2 - 47, gguf.TypeQ8_0: 47, gguf.TypeQ4_K: 1, gguf.TypeQ6_K: 1},
	}
	for p, w := range want {
		got := map[gguf.TensorType]int{}
		for _, typ := range chooseAll(t, p, m, glm47Tensors()) {
			got[typ]++
		}
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s: %v, want %v", p, got, w)
		}
	}
	// Q4_K_M's q6_K ffn_down layers: use_more_bits with n = 47.
	types := chooseAll(t, PresetQ4_K_M, m, glm47Tensors())
	var q6 []int
	for l := 0; l < 47; l++ {
		n := fmt.Sprintf("blk.%d.ffn_down_exps.weight", l)
		if l == 0 {
			n = "blk.0.ffn_down.weight"
		}
		if types[n] == gguf.TypeQ6_K {
			q6 = append(q6, l)
		}
	}
	wantQ6 := "[0 1 2 3 4 7 10 13 16 19 22 25 28 31 34 37 40 41 42 43 44 45 46]"
	if fmt.Sprint(q6) != wantQ6 {
		t.Errorf("Q4_K_M q6_K ffn_down layers %v, want %s", q6, wantQ6)
	}
	if types["output.weight"] != gguf.TypeQ6_K || types["token_embd.weight"] != gguf.TypeQ4_K {
		t.Errorf("output %s token_embd %s, want q6_K q4_K", types["output.weight"], types["token_embd.weight"])
	}
}

func TestChooserRules(t *testing.T) {
	// 8 experts: attn_output q5_K (Q4_K_M/Q4_K_S), attn_kv_b q8_0.
	m := ModelInfo{Arch: "deepseek2", Layers: 3, Experts: 8}
	ts := []gguf.TensorInfo{
		{Name: "blk.0.attn_output.weight", Type: gguf.TypeBF16, Dims: []uint64{256, 256}},
		{Name: "blk.0.attn_kv_b.weight", Type: gguf.TypeBF16, Dims: []uint64{256, 512}},
		{Name: "blk.0.ffn_gate_inp.weight", Type: gguf.TypeF32, Dims: []uint64{256, 8}},
		{Name: "blk.0.attn_norm.weight", Type: gguf.TypeBF16, Dims: []uint64{256}},
		{Name: "blk.0.attn_q_b.weight", Type: gguf.TypeF16, Dims: []uint64{48, 256}},
		{Name: "blk.0.weird.weight", Type: gguf.TypeBF16, Dims: []uint64{256, 1}}, // 1-D after trailing 1s
	}
	got := chooseAll(t, PresetQ4_K_M, m, ts)
	want := map[string]gguf.TensorType{
		"blk.0.attn_output.weight": gguf.TypeQ5_K, "blk.0.attn_kv_b.weight": gguf.TypeQ8_0,
		"blk.0.ffn_gate_inp.weight": gguf.TypeF32, "blk.0.attn_norm.weight": gguf.TypeBF16,
		"blk.0.attn_q_b.weight": gguf.TypeF16, "blk.0.weird.weight": gguf.TypeBF16,
	}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("%s: %s, want %s", n, got[n], w)
		}
	}
	// Dense layer numbering by name; a layer beyond block_count is an error.
	c, _ := NewChooser(PresetQ4_K_M, ModelInfo{Arch: "deepseek2", Layers: 2, Experts: 4}, nil)
	if _, err := c.Choose("blk.5.ffn_down_exps.weight", []uint64{256, 256, 4}, gguf.TypeBF16); err == nil {
		t.Error("layer 5 of 2: no error")
	}
	if _, err := Fallback(gguf.TypeQ5_0, 48); err == nil {
		t.Error("q5_0 with rows of 48: no error")
	}
	if r, err := Fallback(gguf.TypeQ8_0, 48); err != nil || r != gguf.TypeF16 {
		t.Errorf("q8_0 with rows of 48: %s %v, want f16", r, err)
	}
}

func TestParsePreset(t *testing.T) {
	for _, s := range []string{"q4_k_m", "Q4_K_M", "mmfp4", "Q8_0", "q6_k", "Q5_K_M", "Q4_K_S"} {
		p, err := ParsePreset(s)
		if err != nil || p.FileType() == 0 {
			t.Errorf("%s: %v %v", s, p, err)
		}
	}
	for _, s := range []string{"Q2_K", "IQ4_XS", "Q5_K_S", "", "q4_k"} {
		if _, err := ParsePreset(s); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
	if PresetMMFP4.FileType() != 4160 || PresetQ4_K_M.FileType() != 15 || PresetQ8_0.FileType() != 7 {
		t.Error("file types")
	}
}
