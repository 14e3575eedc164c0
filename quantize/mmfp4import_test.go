package quantize

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/glmrun/glmrun/backend/quant"
	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/model/glm4moe"
)

// e2m1Ref is the E2M1 code table, written out independently of the code
// under test.
var e2m1Ref = [16]float64{0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6}

// fakeLinear is a random packed layer: codes[e][n][k] and fp16 scales[e][n][g].
type fakeLinear struct {
	e, n, k int
	codes   []byte
	scales  []uint16
}

func newFakeLinear(rng *rand.Rand, e, n, k int) *fakeLinear {
	f := &fakeLinear{e: e, n: n, k: k, codes: make([]byte, e*n*k), scales: make([]uint16, e*n*k/128)}
	for i := range f.codes {
		f.codes[i] = byte(rng.IntN(16))
	}
	for i := range f.scales {
		f.scales[i] = quant.Float32ToFP16(float32(0.002 + 0.02*rng.Float64()))
	}
	return f
}

func (f *fakeLinear) value(e, n, c int) float64 {
	return e2m1Ref[f.codes[(e*f.n+n)*f.k+c]] * float64(quant.FP16ToFloat32(f.scales[(e*f.n+n)*(f.k/128)+c/128]))
}

// add stores f under prefix: U32 [(E,) N, K/8] words (element 8w+i in bits
// 4i..4i+3) and F16 scales, transposed to [(E,) K/128, N] if gxn.
func (f *fakeLinear) add(ts map[string]SafeTensorData, prefix, scaleSuffix string, gxn bool) {
	words := make([]byte, f.e*f.n*f.k/2)
	for i := 0; i < f.e*f.n*f.k/8; i++ {
		var w uint32
		for j := 0; j < 8; j++ {
			w |= uint32(f.codes[8*i+j]) << (4 * j)
		}
		binary.LittleEndian.PutUint32(words[4*i:], w)
	}
	G := f.k / 128
	sc := make([]byte, 2*len(f.scales))
	for e := 0; e < f.e; e++ {
		for n := 0; n < f.n; n++ {
			for g := 0; g < G; g++ {
				i := e*f.n*G + n*G + g
				if gxn {
					i = e*f.n*G + g*f.n + n
				}
				binary.LittleEndian.PutUint16(sc[2*i:], f.scales[e*f.n*G+n*G+g])
			}
		}
	}
	cs, ss := []int64{int64(f.n), int64(f.k / 8)}, []int64{int64(f.n), int64(G)}
	if gxn {
		ss = []int64{int64(G), int64(f.n)}
	}
	if f.e > 1 {
		cs, ss = append([]int64{int64(f.e)}, cs...), append([]int64{int64(f.e)}, ss...)
	}
	ts[prefix+".weight"] = SafeTensorData{DType: "U32", Shape: cs, Data: words}
	ts[prefix+scaleSuffix] = SafeTensorData{DType: "F16", Shape: ss, Data: sc}
}

func writeST(t *testing.T, path string, ts map[string]SafeTensorData) {
	t.Helper()
	var b bytes.Buffer
	if err := WriteSafetensors(&b, ts, map[string]string{"format": "mmfp4"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readRows dequantizes GGUF tensor name of f into [rows][ne0] floats.
func readRows(t *testing.T, f *gguf.File, name string) ([]float32, *gguf.TensorInfo) {
	t.Helper()
	ti, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("no tensor %s", name)
	}
	ne0, rows, slabRows, err := rowsOf(ti.Dims)
	if err != nil {
		t.Fatal(err)
	}
	rio, err := newRowIO(ti.Type, f.TensorData(ti), ne0, rows, slabRows)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, rows*ne0)
	for r := 0; r < rows; r++ {
		if err := rio.read(r, out[r*ne0:(r+1)*ne0]); err != nil {
			t.Fatal(err)
		}
	}
	return out, ti
}

func TestImportMMFP4(t *testing.T) {
	s := heldOutShape
	dir := t.TempDir()
	tmplPath := filepath.Join(dir, "template.gguf")
	writeHeldOut(t, s, tmplPath, 5)
	rng := rand.New(rand.NewPCG(9, 9))
	qa := newFakeLinear(rng, 1, s.qLora, s.d)        // [N, K/128] scales, X.weight.scales
	o := newFakeLinear(rng, 1, s.d, s.heads*s.dv)    // transposed scales, X.scales
	bank := newFakeLinear(rng, s.nExp, s.ffExp, s.d) // 3-D bank
	kvb := newFakeLinear(rng, 1, s.heads*(s.nope+s.dv), s.kvLora)
	experts := make([]*fakeLinear, s.nExp) // per-expert down_proj
	ts := map[string]SafeTensorData{}
	qa.add(ts, "model.layers.0.self_attn.q_a_proj", ".weight.scales", false)
	o.add(ts, "model.layers.1.self_attn.o_proj", ".scales", true)
	bank.add(ts, "model.layers.2.mlp.experts.up_proj", ".weight.scales", false)
	kvb.add(ts, "model.layers.1.self_attn.kv_b_proj", ".weight.scales", true)
	for e := range experts {
		experts[e] = newFakeLinear(rng, 1, s.d, s.ffExp)
		experts[e].add(ts, "model.layers.1.mlp.experts."+itoa(e)+".down_proj", ".scales", e%2 == 1)
	}
	ts["model.layers.0.self_attn.q_a_proj.weight.group_size"] = SafeTensorData{DType: "I32", Shape: []int64{1}, Data: []byte{128, 0, 0, 0}}
	// Unquantized tensors in the checkpoint are ignored (the template's are used).
	ts["model.embed_tokens.weight"] = SafeTensorData{DType: "BF16", Shape: []int64{2, 2}, Data: make([]byte, 8)}
	src := filepath.Join(dir, "ckpt")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	// Two shards.
	shard2 := map[string]SafeTensorData{}
	for k, v := range ts {
		if strings.Contains(k, "experts") {
			shard2[k] = v
			delete(ts, k)
		}
	}
	writeST(t, filepath.Join(src, "model-00001-of-00002.safetensors"), ts)
	writeST(t, filepath.Join(src, "model-00002-of-00002.safetensors"), shard2)

	out := filepath.Join(dir, "imported.gguf")
	var log bytes.Buffer
	st, err := ImportMMFP4File(src, tmplPath, out, ImportOptions{Progress: &log})
	if err != nil {
		t.Fatal(err)
	}
	if st.Changed != 6 { // q_a, o, up bank, down experts, k_b, v_b
		t.Errorf("imported %d tensors, want 6\n%s", st.Changed, log.String())
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tmpl, err := gguf.Open(tmplPath)
	if err != nil {
		t.Fatal(err)
	}
	defer tmpl.Close()
	check := func(name string, want gguf.TensorType, fl *fakeLinear, val func(e, n, c int) float64, rowsPerE int) {
		t.Helper()
		got, ti := readRows(t, f, name)
		if ti.Type != want {
			t.Fatalf("%s: type %s, want %s", name, ti.Type, want)
		}
		ne0 := int(ti.Dims[0])
		bad := 0
		for r := 0; r < len(got)/ne0; r++ {
			for c := 0; c < ne0; c++ {
				w := val(r/rowsPerE, r%rowsPerE, c)
				if float64(got[r*ne0+c]) != w && bad < 5 {
					t.Errorf("%s[%d][%d] = %v, want E2M1[code]*scale = %v", name, r, c, got[r*ne0+c], w)
					bad++
				}
			}
		}
	}
	check("blk.0.attn_q_a.weight", gguf.TypeMMFP4, qa, qa.value, s.qLora)
	check("blk.1.attn_output.weight", gguf.TypeMMFP4, o, o.value, s.d)
	check("blk.2.ffn_up_exps.weight", gguf.TypeMMFP4, bank, bank.value, s.ffExp)
	check("blk.1.ffn_down_exps.weight", gguf.TypeMMFP4, nil, func(e, n, c int) float64 { return experts[e].value(0, n, c) }, s.d)
	check("blk.1.attn_v_b.weight", gguf.TypeMMFP4, nil, func(h, r, c int) float64 { return kvb.value(0, h*(s.nope+s.dv)+s.nope+r, c) }, s.dv)
	check("blk.1.attn_k_b.weight", gguf.TypeF32, nil, func(h, c, i int) float64 { return kvb.value(0, h*(s.nope+s.dv)+i, c) }, s.kvLora)
	// Everything else is the template's, byte for byte.
	for i := range tmpl.Tensors {
		ti := &tmpl.Tensors[i]
		if st := []string{"blk.0.attn_q_a.", "blk.1.attn_output.", "blk.2.ffn_up_exps.", "blk.1.ffn_down_exps.", "blk.1.attn_v_b.", "blk.1.attn_k_b."}; containsPrefix(ti.Name, st) {
			continue
		}
		oi, ok := f.Tensor(ti.Name)
		if !ok || oi.Type != ti.Type || !bytes.Equal(f.TensorData(oi), tmpl.TensorData(ti)) {
			t.Errorf("%s not copied from the template", ti.Name)
		}
	}
	if v, err := f.Uint32(KeyMMFP4GroupSize); err != nil || v != 128 {
		t.Errorf("mmfp4.group_size = %v, %v", v, err)
	}
	if v, err := f.Uint32("general.file_type"); err != nil || v != uint32(gguf.TypeMMFP4) {
		t.Errorf("general.file_type = %v, %v", v, err)
	}
	// The engine loads and runs the imported file.
	m, err := glm4moe.Load(f, glm4moe.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := m.NewCache(4)
	lg, err := m.Forward(c, []int32{1, 2, 3}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range lg {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatal("non-finite logits from the imported model")
		}
	}
}

func containsPrefix(s string, ps []string) bool {
	for _, p := range ps {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestImportMMFP4Refusals(t *testing.T) {
	s := heldOutShape
	dir := t.TempDir()
	tmplPath := filepath.Join(dir, "template.gguf")
	writeHeldOut(t, s, tmplPath, 5)
	rng := rand.New(rand.NewPCG(1, 1))
	base := func() map[string]SafeTensorData {
		ts := map[string]SafeTensorData{}
		newFakeLinear(rng, 1, s.qLora, s.d).add(ts, "model.layers.0.self_attn.q_a_proj", ".weight.scales", false)
		return ts
	}
	cases := []struct {
		name, want string
		edit       func(ts map[string]SafeTensorData, dir string)
	}{
		{"hadamard tensor", "Hadamard", func(ts map[string]SafeTensorData, _ string) {
			ts["model.layers.0.self_attn.q_a_proj.weight.hadamard_block_size"] = SafeTensorData{DType: "I32", Shape: []int64{1}, Data: []byte{64, 0, 0, 0}}
		}},
		{"hadamard config", "use_hadamard", func(_ map[string]SafeTensorData, dir string) {
			os.WriteFile(filepath.Join(dir, "quantization_config.json"), []byte(`{"format":"mmfp4_e2m1_marlin","group_size":128,"use_hadamard":true}`), 0o644)
		}},
		{"hadamard in config.json", "use_hadamard", func(_ map[string]SafeTensorData, dir string) {
			os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"quantization_config":{"use_hadamard":true}}`), 0o644)
		}},
		{"group 64 config", "group_size", func(_ map[string]SafeTensorData, dir string) {
			os.WriteFile(filepath.Join(dir, "quantization_config.json"), []byte(`{"group_size":64}`), 0o644)
		}},
		{"group 64 tensor", "group size", func(ts map[string]SafeTensorData, _ string) {
			ts["model.layers.0.self_attn.q_a_proj.group_size"] = SafeTensorData{DType: "I32", Shape: []int64{1}, Data: []byte{64, 0, 0, 0}}
		}},
		{"scales of group 64", "group size must be 128", func(ts map[string]SafeTensorData, _ string) {
			sc := ts["model.layers.0.self_attn.q_a_proj.weight.scales"]
			sc.Shape = []int64{int64(s.qLora), int64(s.d / 128 * 2)}
			sc.Data = make([]byte, s.qLora*s.d/64*2)
			ts["model.layers.0.self_attn.q_a_proj.weight.scales"] = sc
		}},
		{"missing scales", "no scales", func(ts map[string]SafeTensorData, _ string) {
			delete(ts, "model.layers.0.self_attn.q_a_proj.weight.scales")
		}},
		{"shape mismatch", "does not match", func(ts map[string]SafeTensorData, _ string) {
			ts2 := map[string]SafeTensorData{}
			newFakeLinear(rng, 1, s.qLora+1, s.d).add(ts2, "model.layers.0.self_attn.q_a_proj", ".weight.scales", false)
			for k, v := range ts2 {
				ts[k] = v
			}
		}},
		{"nothing to import", "holds no packed", func(ts map[string]SafeTensorData, _ string) {
			for k := range ts {
				delete(ts, k)
			}
			ts["model.norm.weight"] = SafeTensorData{DType: "F32", Shape: []int64{1}, Data: make([]byte, 4)}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub := t.TempDir()
			ts := base()
			tc.edit(ts, sub)
			writeST(t, filepath.Join(sub, "model.safetensors"), ts)
			_, err := ImportMMFP4File(sub, tmplPath, filepath.Join(sub, "out.gguf"), ImportOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if _, serr := os.Stat(filepath.Join(sub, "out.gguf")); serr == nil {
				t.Error("a failed import left an output file")
			}
		})
	}
}

func TestSafetensorsReaderRejectsBadFiles(t *testing.T) {
	good := map[string]SafeTensorData{"a": {DType: "F32", Shape: []int64{2}, Data: make([]byte, 8)}}
	var b bytes.Buffer
	if err := WriteSafetensors(&b, good, nil); err != nil {
		t.Fatal(err)
	}
	hdr := func(json string, data int) []byte {
		out := make([]byte, 8, 8+len(json)+data)
		binary.LittleEndian.PutUint64(out, uint64(len(json)))
		return append(append(out, json...), make([]byte, data)...)
	}
	cases := map[string][]byte{
		"short":          {1, 2, 3},
		"huge header":    append([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, make([]byte, 16)...),
		"not json":       hdr("nope", 0),
		"unknown dtype":  hdr(`{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}`, 8),
		"out of range":   hdr(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}`, 8),
		"size mismatch":  hdr(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 8),
		"negative shape": hdr(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, 8),
		"bad offsets":    hdr(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}}`, 8),
	}
	dir := t.TempDir()
	for name, data := range cases {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if s, err := OpenSafetensors(p); err == nil {
			s.Close()
			t.Errorf("%s: no error", name)
		}
	}
	p := filepath.Join(dir, "good")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := OpenSafetensors(p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if d, err := s.Read("a"); err != nil || len(d) != 8 {
		t.Errorf("read a: %v %d", err, len(d))
	}
	if _, err := s.Read("b"); err == nil {
		t.Error("read of a missing tensor: no error")
	}
}
