package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glmrun/glmrun/backend/quant"
	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/model/glm4moe"
)

// smallShape is a GLM-4.7-Flash-like shape small enough to generate whole in
// a test, with the same divisibility traits (attn_k_b rows are not a multiple
// of 256, so Q4_K_M falls back to q5_0 there).
func smallShape(layers int) Shape {
	return Shape{
		Layers: layers, Embd: 256, FF: 512, FFExp: 256, Heads: 2,
		QLora: 256, KVLora: 256, NopeDim: 64, RopeDim: 32, VDim: 128,
		Experts: 4, ExpertsUsed: 2, SharedExp: 1, Vocab: 1024, ContextTrain: 4096,
	}
}

func countTypes(plan []TensorSpec) map[gguf.TensorType]int {
	c := map[gguf.TensorType]int{}
	for _, t := range plan {
		c[t.Type]++
	}
	return c
}

func TestPlan47MatchesStockQ4KM(t *testing.T) {
	plan, err := Plan(RealShape(47), QuantQ4KM)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 844 {
		t.Fatalf("got %d tensors, want 844", len(plan))
	}
	c := countTypes(plan)
	want := map[gguf.TensorType]int{gguf.TypeF32: 281, gguf.TypeQ4_K: 470, gguf.TypeQ5_0: 47, gguf.TypeQ6_K: 46}
	for ty, n := range want {
		if c[ty] != n {
			t.Errorf("%s: %d tensors, want %d", ty, c[ty], n)
		}
	}
	if len(c) != len(want) {
		t.Errorf("unexpected types: %v", c)
	}

	var params, bytes uint64
	names := map[string]bool{}
	for _, ts := range plan {
		if names[ts.Name] {
			t.Errorf("duplicate tensor %s", ts.Name)
		}
		names[ts.Name] = true
		params += ts.Elements()
		bytes += ts.Bytes()
	}
	// Model spec §1: 29,943,393,920 parameters; §5 of quant-formats: 17,283.67 MiB.
	if params != 29943393920 {
		t.Errorf("parameters = %d, want 29943393920", params)
	}
	if mib := float64(bytes) / (1 << 20); math.Abs(mib-17283.67) > 0.01 {
		t.Errorf("tensor data = %.2f MiB, want 17283.67", mib)
	}

	// Shapes and types from the spec's tables (§3).
	byName := map[string]TensorSpec{}
	for _, ts := range plan {
		byName[ts.Name] = ts
	}
	checks := []struct {
		name string
		dims []uint64
		ty   gguf.TensorType
	}{
		{"token_embd.weight", []uint64{2048, 154880}, gguf.TypeQ4_K},
		{"output.weight", []uint64{2048, 154880}, gguf.TypeQ6_K},
		{"output_norm.weight", []uint64{2048}, gguf.TypeF32},
		{"blk.0.attn_q_a.weight", []uint64{2048, 768}, gguf.TypeQ4_K},
		{"blk.0.attn_q_b.weight", []uint64{768, 5120}, gguf.TypeQ4_K},
		{"blk.0.attn_kv_a_mqa.weight", []uint64{2048, 576}, gguf.TypeQ4_K},
		{"blk.0.attn_kv_a_norm.weight", []uint64{512}, gguf.TypeF32},
		{"blk.0.attn_k_b.weight", []uint64{192, 512, 20}, gguf.TypeQ5_0},
		{"blk.0.attn_v_b.weight", []uint64{512, 256, 20}, gguf.TypeQ4_K},
		{"blk.0.attn_output.weight", []uint64{5120, 2048}, gguf.TypeQ4_K},
		{"blk.0.ffn_gate.weight", []uint64{2048, 10240}, gguf.TypeQ4_K},
		{"blk.0.ffn_down.weight", []uint64{10240, 2048}, gguf.TypeQ6_K},
		{"blk.5.ffn_gate_inp.weight", []uint64{2048, 64}, gguf.TypeF32},
		{"blk.5.exp_probs_b.bias", []uint64{64}, gguf.TypeF32},
		{"blk.5.ffn_gate_exps.weight", []uint64{2048, 1536, 64}, gguf.TypeQ4_K},
		{"blk.5.ffn_up_exps.weight", []uint64{2048, 1536, 64}, gguf.TypeQ4_K},
		{"blk.5.ffn_down_exps.weight", []uint64{1536, 2048, 64}, gguf.TypeQ4_K},
		{"blk.7.ffn_down_exps.weight", []uint64{1536, 2048, 64}, gguf.TypeQ6_K},
		{"blk.46.ffn_down_shexp.weight", []uint64{1536, 2048}, gguf.TypeQ6_K},
		{"blk.46.ffn_gate_shexp.weight", []uint64{2048, 1536}, gguf.TypeQ4_K},
	}
	for _, ck := range checks {
		ts, ok := byName[ck.name]
		if !ok {
			t.Errorf("missing %s", ck.name)
			continue
		}
		if fmt.Sprint(ts.Dims) != fmt.Sprint(ck.dims) || ts.Type != ck.ty {
			t.Errorf("%s: %v %s, want %v %s", ck.name, ts.Dims, ts.Type, ck.dims, ck.ty)
		}
	}
	if _, ok := byName["blk.0.ffn_gate_inp.weight"]; ok {
		t.Error("layer 0 must be dense")
	}
	if _, ok := byName["blk.47.attn_norm.weight"]; ok {
		t.Error("no MTP block expected")
	}

	// The q6_K ffn_down layers listed in model spec §3.3.
	moreBits := map[int]bool{0: true, 1: true, 2: true, 3: true, 4: true, 41: true, 42: true, 43: true, 44: true, 45: true, 46: true}
	for l := 7; l <= 40; l += 3 {
		moreBits[l] = true
	}
	for l := 0; l < 47; l++ {
		name := fmt.Sprintf("blk.%d.ffn_down_exps.weight", l)
		if l == 0 {
			name = "blk.0.ffn_down.weight"
		}
		want := gguf.TypeQ4_K
		if moreBits[l] {
			want = gguf.TypeQ6_K
		}
		if got := byName[name].Type; got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}

func TestPlanOtherLayerCounts(t *testing.T) {
	plan, err := Plan(RealShape(4), QuantQ4KM)
	if err != nil {
		t.Fatal(err)
	}
	// 3 globals + dense layer (13) + 3 MoE layers (18 each).
	if len(plan) != 3+13+3*18 {
		t.Fatalf("%d tensors", len(plan))
	}
	// use_more_bits(i, 4): 4/8 = 0, 7*4/8 = 3, (i-0)%3 == 2 -> layers 2 and 3.
	for l, want := range map[int]gguf.TensorType{1: gguf.TypeQ4_K, 2: gguf.TypeQ6_K, 3: gguf.TypeQ6_K} {
		for _, n := range []string{"ffn_down_exps", "ffn_down_shexp"} {
			name := fmt.Sprintf("blk.%d.%s.weight", l, n)
			for _, ts := range plan {
				if ts.Name == name && ts.Type != want {
					t.Errorf("%s: %s, want %s", name, ts.Type, want)
				}
			}
		}
	}
	if _, err := Plan(RealShape(0), QuantQ4KM); err == nil {
		t.Error("0 layers accepted")
	}
	if _, err := Plan(RealShape(4), Quant("q3_k")); err == nil {
		t.Error("unknown type mix accepted")
	}
}

func TestPlanMMFP4AndBF16(t *testing.T) {
	plan, err := Plan(RealShape(47), QuantMMFP4)
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range plan {
		inBlock := strings.HasPrefix(ts.Name, "blk.")
		switch {
		case ts.Type == gguf.TypeF32:
			if len(ts.Dims) != 1 && !strings.Contains(ts.Name, "ffn_gate_inp") {
				t.Errorf("%s is f32", ts.Name)
			}
		case strings.Contains(ts.Name, "attn_k_b"):
			if ts.Type != gguf.TypeQ5_0 {
				t.Errorf("%s: %s, want q5_0 (192 %% 128 != 0)", ts.Name, ts.Type)
			}
		case inBlock && ts.Type != gguf.TypeMMFP4:
			t.Errorf("%s: %s, want mmfp4", ts.Name, ts.Type)
		case !inBlock && ts.Type == gguf.TypeMMFP4:
			t.Errorf("%s: mmfp4 outside blocks", ts.Name)
		}
	}
	c := countTypes(plan)
	if c[gguf.TypeMMFP4] != 47*5+3+46*6 || c[gguf.TypeF32] != 281 {
		t.Errorf("mmfp4 type counts %v", c)
	}
	plan, err = Plan(RealShape(47), QuantBF16)
	if err != nil {
		t.Fatal(err)
	}
	c = countTypes(plan)
	if c[gguf.TypeBF16] != 563 || c[gguf.TypeF32] != 281 || len(c) != 2 {
		t.Errorf("bf16 type counts %v, want 563 bf16 + 281 f32 (ik_llama.cpp#1167)", c)
	}
}

func TestSizeLabel(t *testing.T) {
	plan, err := Plan(RealShape(47), QuantQ4KM)
	if err != nil {
		t.Fatal(err)
	}
	if got := sizeLabel(plan, 64); got != "64x2.6B" {
		t.Errorf("size label %q, want 64x2.6B", got)
	}
	for n, want := range map[uint64]string{2_594_000_000: "2.6B", 760_000_000: "760M", 31_000: "31K", 12_300_000: "12M"} {
		if got := roundedCount(n); got != want {
			t.Errorf("roundedCount(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestVocab(t *testing.T) {
	v, err := BuildVocab(154880)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Tokens) != 154880 || len(v.Types) != 154880 {
		t.Fatalf("%d tokens, %d types", len(v.Tokens), len(v.Types))
	}
	if len(v.Merges) != 154820-256 {
		t.Errorf("%d merges, want %d", len(v.Merges), 154820-256)
	}
	ids := map[string]int{}
	for i, s := range v.Tokens {
		if j, dup := ids[s]; dup {
			t.Fatalf("token %q at ids %d and %d", s, j, i)
		}
		ids[s] = i
	}
	for id, s := range map[uint32]string{154820: "<|endoftext|>", 154822: "[gMASK]", 154824: "<sop>", 154827: "<|user|>",
		154828: "<|assistant|>", 154829: "<|observation|>", 154841: "<think>", 154842: "</think>", 154843: "<tool_call>",
		154850: "</arg_value>", 154855: "<|video|>", 154856: "[PAD154856]"} {
		if v.Tokens[id] != s {
			t.Errorf("token %d = %q, want %q", id, v.Tokens[id], s)
		}
	}
	if v.Eos != 154820 || v.Bos != 154822 || v.Eot != 154827 || v.Eom != 154829 {
		t.Errorf("special ids eos %d bos %d eot %d eom %d", v.Eos, v.Bos, v.Eot, v.Eom)
	}
	for i, ty := range v.Types {
		want := tokNormal
		if i >= 154820 {
			want = tokControl
		}
		if i >= 154856 {
			want = tokUnused
		}
		if ty != want {
			t.Fatalf("type of token %d (%q) = %d, want %d", i, v.Tokens[i], ty, want)
		}
	}
	// Every merge joins two tokens into a token; every merged token is made
	// by exactly one merge; the first 256 tokens are single byte runes.
	made := map[string]bool{}
	for r, m := range v.Merges {
		parts := strings.Split(m, " ")
		if len(parts) != 2 {
			t.Fatalf("merge %d %q is not two tokens", r, m)
		}
		for _, p := range parts {
			if _, ok := ids[p]; !ok {
				t.Fatalf("merge %d %q: %q is not a token", r, m, p)
			}
		}
		res := parts[0] + parts[1]
		if id, ok := ids[res]; !ok || id < 256 || id >= 154820 {
			t.Fatalf("merge %d %q: result is not a merged token", r, m)
		}
		if made[res] {
			t.Fatalf("merge %d %q: result made twice", r, m)
		}
		made[res] = true
		// The parts must exist before the merge's rank (left-to-right BPE).
		if ids[parts[0]] >= ids[res] || ids[parts[1]] >= ids[res] {
			t.Fatalf("merge %d %q uses a later token", r, m)
		}
	}
	table, _ := byteRunes()
	seen := map[rune]bool{}
	for i := 0; i < 256; i++ {
		rs := []rune(v.Tokens[i])
		if len(rs) != 1 || seen[rs[0]] {
			t.Fatalf("byte token %d = %q", i, v.Tokens[i])
		}
		seen[rs[0]] = true
	}
	if table[' '] != 'Ġ' || table['\n'] != 'Ċ' {
		t.Errorf("byte table: space %q newline %q", table[' '], table['\n'])
	}
	for _, want := range []string{"ĠĠ", "ĊĊ", "123", "Ġt", "th"} {
		if _, ok := ids[want]; !ok {
			t.Errorf("expected token %q", want)
		}
	}

	again, err := BuildVocab(154880)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(again.Merges, "\n") != strings.Join(v.Merges, "\n") {
		t.Error("vocabulary is not deterministic")
	}
	if _, err := BuildVocab(100); err == nil {
		t.Error("tiny vocabulary accepted")
	}
}

func generate(t *testing.T, s Shape, q Quant, seed uint64, workers int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Generate(&buf, s, q, seed, workers, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGenerateDeterministic(t *testing.T) {
	s := smallShape(3)
	a := generate(t, s, QuantQ4KM, 7, 1)
	b := generate(t, s, QuantQ4KM, 7, 4)
	if !bytes.Equal(a, b) {
		t.Error("same seed, different worker count: bytes differ")
	}
	c := generate(t, s, QuantQ4KM, 8, 2)
	if bytes.Equal(a, c) {
		t.Error("different seeds gave identical files")
	}
}

// dequant returns the f32 values of tensor ti of f.
func dequant(t *testing.T, f *gguf.File, ti *gguf.TensorInfo) []float32 {
	t.Helper()
	data := f.TensorData(ti)
	ne0 := int(ti.Dims[0])
	n := int(ti.NumElements())
	out := make([]float32, n)
	rb, err := ti.Type.RowBytes(ti.Dims[0])
	if err != nil {
		t.Fatal(err)
	}
	if ti.Type == gguf.TypeMMFP4 {
		return dequantMMFP4(ti, data)
	}
	for r := 0; r < n/ne0; r++ {
		src, dst := data[uint64(r)*rb:uint64(r+1)*rb], out[r*ne0:(r+1)*ne0]
		switch ti.Type {
		case gguf.TypeF32:
			quant.DequantizeRowF32(src, dst)
		case gguf.TypeBF16:
			quant.DequantizeRowBF16(src, dst)
		case gguf.TypeQ4_K:
			quant.DequantizeRowQ4K(src, dst)
		case gguf.TypeQ6_K:
			quant.DequantizeRowQ6K(src, dst)
		case gguf.TypeQ5_0:
			quant.DequantizeRowQ5_0(src, dst)
		default:
			t.Fatalf("%s: no dequantizer for %s", ti.Name, ti.Type)
		}
	}
	return out
}

// dequantMMFP4 decodes the slab layout of quant-formats.md §4.2.
func dequantMMFP4(ti *gguf.TensorInfo, data []byte) []float32 {
	e2m1 := [16]float32{0, .5, 1, 1.5, 2, 3, 4, 6, 0, -.5, -1, -1.5, -2, -3, -4, -6}
	k, n := int(ti.Dims[0]), int(ti.Dims[1])
	slabs := int(ti.NumElements()) / (n * k)
	out := make([]float32, 0, ti.NumElements())
	slab := n * k / 128 * 66
	for s := 0; s < slabs; s++ {
		q := data[s*slab : s*slab+n*k/2]
		sc := data[s*slab+n*k/2 : (s+1)*slab]
		for row := 0; row < n; row++ {
			for e := 0; e < k; e++ {
				g, in := e/128, e%128
				sub, j := in/32, in%32
				b := q[row*k/2+g*64+sub*16+j%16]
				code := b & 15
				if j >= 16 {
					code = b >> 4
				}
				scale := quant.FP16ToFloat32(binary.LittleEndian.Uint16(sc[(row*k/128+g)*2:]))
				out = append(out, e2m1[code]*scale)
			}
		}
	}
	return out
}

func TestGeneratedValues(t *testing.T) {
	for _, q := range []Quant{QuantQ4KM, QuantMMFP4, QuantBF16} {
		t.Run(string(q), func(t *testing.T) {
			s := smallShape(3)
			data := generate(t, s, q, 3, 2)
			f, err := gguf.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := Plan(s, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Tensors) != len(plan) {
				t.Fatalf("%d tensors in file, %d planned", len(f.Tensors), len(plan))
			}
			for i, ps := range plan {
				ti := &f.Tensors[i]
				if ti.Name != ps.Name || ti.Type != ps.Type || fmt.Sprint(ti.Dims) != fmt.Sprint(ps.Dims) {
					t.Fatalf("tensor %d: file %s %v %s, plan %s %v %s", i, ti.Name, ti.Dims, ti.Type, ps.Name, ps.Dims, ps.Type)
				}
				vals := dequant(t, f, ti)
				var sum, sq float64
				for j, x := range vals {
					if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
						t.Fatalf("%s[%d] = %v", ti.Name, j, x)
					}
					sum += float64(x)
					sq += float64(x) * float64(x)
				}
				mean := sum / float64(len(vals))
				std := math.Sqrt(sq/float64(len(vals)) - mean*mean)
				switch ps.Kind {
				case kindNorm:
					if math.Abs(mean-1) > 0.02 {
						t.Errorf("%s: norm mean %.3f, want ~1", ti.Name, mean)
					}
				case kindBias:
					if math.Abs(mean) > 0.01 || std > 0.01 || std == 0 {
						t.Errorf("%s: bias mean %.4f std %.4f", ti.Name, mean, std)
					}
				default:
					if std < 0.6*ps.Sigma || std > 1.5*ps.Sigma {
						t.Errorf("%s (%s): std %.4g, want about %.4g", ti.Name, ti.Type, std, ps.Sigma)
					}
					if math.Abs(mean) > 0.1*ps.Sigma {
						t.Errorf("%s (%s): mean %.4g, want about 0 (sigma %.4g)", ti.Name, ti.Type, mean, ps.Sigma)
					}
				}
			}
			arch, _ := f.String("general.architecture")
			gating, _ := f.Uint32("deepseek2.expert_gating_func")
			if arch != "deepseek2" || gating != 2 {
				t.Errorf("architecture %q gating %d", arch, gating)
			}
			ft, _ := f.Uint32("general.file_type")
			if ft != q.fileType() {
				t.Errorf("file_type %d", ft)
			}
			if q == QuantMMFP4 {
				if g, err := f.Uint32("mmfp4.group_size"); err != nil || g != 128 {
					t.Errorf("mmfp4.group_size %d %v", g, err)
				}
			}
		})
	}
}

// TestRealShapeFile writes a real-shape 2-layer file (about 0.9 GB) and
// reads it back with gguf.Open.
func TestRealShapeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 0.9 GB")
	}
	path := filepath.Join(t.TempDir(), "glm47-2L.gguf")
	if err := run([]string{"-q", "-o", path, "--layers", "2", "--seed", "5"}); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Tensors) != 3+13+18 {
		t.Errorf("%d tensors", len(f.Tensors))
	}
	for key, want := range map[string]uint32{"deepseek2.block_count": 2, "deepseek2.attention.key_length": 576,
		"deepseek2.attention.value_length": 512, "deepseek2.attention.key_length_mla": 256, "deepseek2.vocab_size": 154880,
		"tokenizer.ggml.bos_token_id": 154822, "general.file_type": 15} {
		if got, err := f.Uint32(key); err != nil || got != want {
			t.Errorf("%s = %d (%v), want %d", key, got, err, want)
		}
	}
	toks, err := f.Strings("tokenizer.ggml.tokens")
	if err != nil || len(toks) != 154880 {
		t.Fatalf("tokens: %d %v", len(toks), err)
	}
	tmpl, err := f.String("tokenizer.chat_template")
	if err != nil || !strings.HasPrefix(tmpl, "[gMASK]<sop>") {
		t.Errorf("chat template %.20q %v", tmpl, err)
	}
	ti, ok := f.Tensor("blk.1.ffn_down_exps.weight")
	if !ok || ti.Type != gguf.TypeQ6_K {
		t.Errorf("blk.1.ffn_down_exps: %v", ti)
	}
	if _, err := os.Stat(path + ".partial"); err == nil {
		t.Error("partial file left behind")
	}
}

func TestRunFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-o", filepath.Join(t.TempDir(), "x"), "--type", "q2_k"},
		{"-o", filepath.Join(t.TempDir(), "x"), "--layers", "0"},
		{"-o", "x", "--bogus"},
		{"-o", "x", "extra"},
	} {
		if err := run(args); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}

func TestFP16(t *testing.T) {
	r := newRNG(1)
	for i := 0; i < 100000; i++ {
		x := math.Ldexp(r.uniform(1, 2), r.intn(-26, 15))
		h := fp16(x)
		if got := float64(quant.FP16ToFloat32(h)); got != fp16Value(h) {
			t.Fatalf("fp16Value(%#x) = %g, quant says %g", h, fp16Value(h), got)
		}
		if want := quant.Float32ToFP16(float32(x)); want != h && want != 0 {
			t.Fatalf("fp16(%g) = %#x, want %#x", x, h, want)
		}
		if h == 0 {
			t.Fatalf("fp16(%g) = 0", x)
		}
	}
	if fp16(1e6) != 0x7bff || fp16(-1) != 0xbc00 {
		t.Error("saturation or sign")
	}
}

// TestActivationsStayFinite runs glmrun's engine over a 47-layer file of
// the small shape: the weight magnitudes keep logits finite and O(1).
func TestActivationsStayFinite(t *testing.T) {
	for _, q := range []Quant{QuantQ4KM, QuantMMFP4, QuantBF16} {
		s := smallShape(47)
		f, err := gguf.Parse(generate(t, s, q, 11, 2))
		if err != nil {
			t.Fatal(err)
		}
		m, err := glm4moe.Load(f, glm4moe.Options{Threads: 2})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		c, err := m.NewCache(8)
		if err != nil {
			t.Fatal(err)
		}
		toks := []int32{966, 968, 100, 500, 7, 300}
		out, err := m.Forward(c, toks, true)
		if err != nil {
			t.Fatal(err)
		}
		var sq float64
		for i, x := range out {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("%s: logit %d = %v", q, i, x)
			}
			sq += float64(x) * float64(x)
		}
		if rms := math.Sqrt(sq / float64(len(out))); rms < 0.05 || rms > 20 {
			t.Errorf("%s: logit rms %.3g, want O(1)", q, rms)
		}
	}
}
