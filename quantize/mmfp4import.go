package quantize

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/glmrun/glmrun/backend/quant"
	"github.com/glmrun/glmrun/gguf"
)

// Import of metal-marlin MMFP4 checkpoints (spec quant-formats.md §4.1,
// §4.3).
//
// Source: one .safetensors file or a directory of them. A quantized linear
// layer with HF name P ("model.layers.3.self_attn.q_a_proj") is stored as
// P.weight (U32 [N, K/8]: word w of row n holds elements 8w..8w+7, element
// 8w+i in bits 4i..4i+3; .qweight and .packed_weight are accepted too) plus
// its scales (F16 [N, K/128] or [K/128, N], named P.weight.scales,
// P.scales, P.weight_scale or P.scales_fp4). Expert banks may be one 3-D
// tensor P = "model.layers.L.mlp.experts.gate_proj" ([E, N, K/8], scales
// [E, N, K/128] or [E, K/128, N]) or per-expert tensors
// "model.layers.L.mlp.experts.E.gate_proj".
//
// Refused: a group size other than 128 (quantization_config.json,
// config.json's quantization_config, P[.weight].group_size, or the scale
// shape), and Hadamard-rotated checkpoints (use_hadamard true in either
// config, or any *.hadamard_block_size tensor): their weights are W·H and
// need rotated activations, which no engine path applies.
//
// Target: a template GGUF of the same model (e.g. the bf16 conversion, or a
// Q4_K_M file) supplies the metadata, tokenizer and every tensor; each GGUF
// tensor that maps to a packed HF tensor (table ggufToHF) is replaced by the
// packed data converted losslessly to MMFP4 (codes remapped so byte j of
// each 32-element block holds elements j and j+16; scales copied bit for
// bit). attn_v_b takes kv_b_proj's value rows (lossless, when kv_lora_rank
// is a multiple of 128); attn_k_b is kv_b_proj's key rows TRANSPOSED, which
// a row-wise format cannot hold, so it is stored dequantized as f32 (exact:
// every E2M1 x fp16 product is a float32). All other tensors (embeddings,
// norms, router, exp_probs_b, output) are copied from the template.

// ImportOptions configures ImportMMFP4.
type ImportOptions struct {
	Progress io.Writer // per-tensor lines and a summary; nil: silent
}

// mmfp4Source is the set of safetensors files of a checkpoint.
type mmfp4Source struct {
	files  []*Safetensors
	byName map[string]*Safetensors
}

func (s *mmfp4Source) close() {
	for _, f := range s.files {
		f.Close()
	}
}

func (s *mmfp4Source) info(name string) (SafeTensorInfo, *Safetensors, bool) {
	f, ok := s.byName[name]
	if !ok {
		return SafeTensorInfo{}, nil, false
	}
	return f.Tensors[name], f, true
}

// openMMFP4Source opens src (a file or a directory of *.safetensors) and
// applies the whole-checkpoint refusals (Hadamard, group size).
func openMMFP4Source(src string) (*mmfp4Source, error) {
	st, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	dir, paths := filepath.Dir(src), []string{src}
	if st.IsDir() {
		dir = src
		paths, err = filepath.Glob(filepath.Join(src, "*.safetensors"))
		if err != nil {
			return nil, err
		}
		sort.Strings(paths)
		if len(paths) == 0 {
			return nil, fmt.Errorf("import: no *.safetensors files in %s", src)
		}
	}
	if err := checkQuantConfig(dir); err != nil {
		return nil, err
	}
	s := &mmfp4Source{byName: map[string]*Safetensors{}}
	for _, p := range paths {
		f, err := OpenSafetensors(p)
		if err != nil {
			s.close()
			return nil, err
		}
		s.files = append(s.files, f)
		for n := range f.Tensors {
			if prev, dup := s.byName[n]; dup {
				s.close()
				return nil, fmt.Errorf("import: tensor %q is in both %s and %s", n, prev.Path, p)
			}
			s.byName[n] = f
		}
	}
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.HasSuffix(n, ".hadamard_block_size") {
			s.close()
			return nil, fmt.Errorf("import: %s: tensor %s marks a Hadamard-rotated MMFP4 weight (stored as W·H with a block-diagonal Hadamard H); "+
				"the engine does not rotate activations, so importing it would give wrong outputs. Requantize without Hadamard rotation, "+
				"or quantize the BF16 GGUF with `glmquant IN.gguf OUT.gguf MMFP4`", s.byName[n].Path, n)
		}
		if strings.HasSuffix(n, ".group_size") {
			b, err := s.byName[n].Read(n)
			if err != nil {
				s.close()
				return nil, err
			}
			if g, ok := int32Scalar(s.byName[n].Tensors[n], b); !ok || g != quant.MMFP4GroupSize {
				s.close()
				return nil, fmt.Errorf("import: tensor %s: group size %v is not supported (MMFP4 import needs 128)", n, g)
			}
		}
	}
	return s, nil
}

func int32Scalar(t SafeTensorInfo, b []byte) (int64, bool) {
	if t.Elements() != 1 {
		return 0, false
	}
	switch t.DType {
	case "I32":
		return int64(int32(binary.LittleEndian.Uint32(b))), true
	case "I64":
		return int64(binary.LittleEndian.Uint64(b)), true
	}
	return 0, false
}

// checkQuantConfig refuses configs that declare Hadamard rotation or a
// group size other than 128.
func checkQuantConfig(dir string) error {
	for _, name := range []string{"quantization_config.json", "config.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(b, &top); err != nil {
			return fmt.Errorf("import: %s: %w", name, err)
		}
		cfg := top
		if name == "config.json" {
			qc, ok := top["quantization_config"]
			if !ok {
				continue
			}
			if err := json.Unmarshal(qc, &cfg); err != nil {
				return fmt.Errorf("import: %s quantization_config: %w", name, err)
			}
		}
		var h bool
		if v, ok := cfg["use_hadamard"]; ok && json.Unmarshal(v, &h) == nil && h {
			return fmt.Errorf("import: %s sets use_hadamard: the checkpoint's weights are Hadamard-rotated (W·H), "+
				"which the engine does not undo; refusing to import it (quantize the BF16 GGUF with `glmquant IN.gguf OUT.gguf MMFP4` instead)", filepath.Join(dir, name))
		}
		var g float64
		if v, ok := cfg["group_size"]; ok && json.Unmarshal(v, &g) == nil && g != quant.MMFP4GroupSize {
			return fmt.Errorf("import: %s: group_size %v is not supported (MMFP4 import needs 128)", filepath.Join(dir, name), g)
		}
	}
	return nil
}

// hfLinear maps a GGUF weight name to the HF linear layer prefix holding it
// and, for expert banks, the "experts" form. kind is "" for a plain matrix,
// "exps" for an expert bank, "k_b"/"v_b" for the kv_b_proj halves.
func hfLinear(name string) (prefix, proj, kind string, ok bool) {
	l := blockIndex(name)
	if l < 0 || !strings.HasSuffix(name, ".weight") {
		return "", "", "", false
	}
	short := strings.TrimSuffix(strings.TrimPrefix(name, "blk."+strconv.Itoa(l)+"."), ".weight")
	layer := "model.layers." + strconv.Itoa(l) + "."
	attn := map[string]string{
		"attn_q_a": "q_a_proj", "attn_q_b": "q_b_proj", "attn_q": "q_proj",
		"attn_kv_a_mqa": "kv_a_proj_with_mqa", "attn_output": "o_proj",
	}
	if p, ok := attn[short]; ok {
		return layer + "self_attn." + p, "", "", true
	}
	switch short {
	case "attn_k_b":
		return layer + "self_attn.kv_b_proj", "", "k_b", true
	case "attn_v_b":
		return layer + "self_attn.kv_b_proj", "", "v_b", true
	}
	for _, f := range []string{"gate", "up", "down"} {
		switch short {
		case "ffn_" + f:
			return layer + "mlp." + f + "_proj", "", "", true
		case "ffn_" + f + "_shexp":
			return layer + "mlp.shared_experts." + f + "_proj", "", "", true
		case "ffn_" + f + "_exps":
			return layer + "mlp.experts", f + "_proj", "exps", true
		}
	}
	return "", "", "", false
}

// packedLinear is one quantized HF linear layer (or expert bank) in the
// source: codes [E][N][K/8] words and scales, with E = 1 for a matrix.
type packedLinear struct {
	name           string // codes tensor name (for messages)
	codes          []byte // E*N*K/2 bytes, row-major
	scales         []byte // E*N*K/128 fp16, orientation as stored
	e, n, k        int
	scalesAreGxN   bool // stored [K/128, N] per expert
	scalesTensorNm string
}

// findPacked returns the packed layer with prefix p, or ok = false if the
// source holds no U32 codes under any accepted name.
func (s *mmfp4Source) findPacked(p string) (*packedLinear, bool, error) {
	var ci SafeTensorInfo
	var cf *Safetensors
	found := false
	for _, suf := range []string{".weight", ".qweight", ".packed_weight"} {
		if t, f, ok := s.info(p + suf); ok && t.DType == "U32" {
			ci, cf, found = t, f, true
			break
		}
	}
	if !found {
		return nil, false, nil
	}
	var si SafeTensorInfo
	var sf *Safetensors
	found = false
	for _, suf := range []string{".weight.scales", ".scales", ".weight_scale", ".scales_fp4"} {
		if t, f, ok := s.info(p + suf); ok {
			si, sf, found = t, f, true
			break
		}
	}
	if !found {
		return nil, false, fmt.Errorf("import: %s has packed codes but no scales (%s.weight.scales or %s.scales)", ci.Name, p, p)
	}
	if si.DType != "F16" {
		return nil, false, fmt.Errorf("import: scales %s are %s, want F16", si.Name, si.DType)
	}
	pl := &packedLinear{name: ci.Name, scalesTensorNm: si.Name}
	switch len(ci.Shape) {
	case 2:
		pl.e, pl.n, pl.k = 1, int(ci.Shape[0]), int(ci.Shape[1])*8
	case 3:
		pl.e, pl.n, pl.k = int(ci.Shape[0]), int(ci.Shape[1]), int(ci.Shape[2])*8
	default:
		return nil, false, fmt.Errorf("import: codes %s have shape %v, want [N, K/8] or [E, N, K/8]", ci.Name, ci.Shape)
	}
	if pl.n <= 0 || pl.k <= 0 || pl.e <= 0 {
		return nil, false, fmt.Errorf("import: codes %s have empty shape %v", ci.Name, ci.Shape)
	}
	if pl.k%quant.MMFP4GroupSize != 0 {
		return nil, false, fmt.Errorf("import: %s: K = %d is not a multiple of the group size 128", ci.Name, pl.k)
	}
	g := pl.k / quant.MMFP4GroupSize
	sh := si.Shape
	if len(sh) == 3 && sh[0] != int64(pl.e) {
		return nil, false, fmt.Errorf("import: scales %s have %d experts, codes %s have %d", si.Name, sh[0], ci.Name, pl.e)
	}
	last2 := sh
	if len(sh) == 3 {
		last2 = sh[1:]
	}
	switch {
	case len(sh) != len(ci.Shape):
		return nil, false, fmt.Errorf("import: scales %s shape %v does not match codes %s shape %v", si.Name, sh, ci.Name, ci.Shape)
	case last2[0] == int64(pl.n) && last2[1] == int64(g):
	case last2[0] == int64(g) && last2[1] == int64(pl.n):
		pl.scalesAreGxN = true
	default:
		return nil, false, fmt.Errorf("import: scales %s shape %v fit neither [N=%d, K/128=%d] nor [K/128, N] for codes %s %v (group size must be 128)",
			si.Name, sh, pl.n, g, ci.Name, ci.Shape)
	}
	var err error
	if pl.codes, err = cf.Read(ci.Name); err != nil {
		return nil, false, err
	}
	if pl.scales, err = sf.Read(si.Name); err != nil {
		return nil, false, err
	}
	return pl, true, nil
}

// scale returns the raw fp16 bits of the scale of (expert e, row n, group g).
func (p *packedLinear) scale(e, n, g int) uint16 {
	G := p.k / quant.MMFP4GroupSize
	i := e*p.n*G + n*G + g
	if p.scalesAreGxN {
		i = e*p.n*G + g*p.n + n
	}
	return binary.LittleEndian.Uint16(p.scales[2*i:])
}

// code returns the 4-bit code of element c of row n of expert e.
func (p *packedLinear) code(e, n, c int) byte {
	b := p.codes[(e*p.n+n)*p.k/2+c/2]
	return (b >> (4 * uint(c&1))) & 0x0f
}

// slab writes rows [r0, r0+rows) of expert e as one MMFP4 slab into dst
// (MMFP4SlabBytes(rows, K) bytes): codes remapped per 32-block, scales
// copied.
func (p *packedLinear) slab(e, r0, rows int, dst []byte) {
	K := p.k
	G := K / quant.MMFP4GroupSize
	for r := 0; r < rows; r++ {
		q := dst[r*K/2 : (r+1)*K/2]
		for b := 0; b < K/32; b++ {
			for j := 0; j < 16; j++ {
				q[16*b+j] = p.code(e, r0+r, 32*b+j) | p.code(e, r0+r, 32*b+16+j)<<4
			}
		}
		sc := dst[rows*K/2+r*2*G:]
		for g := 0; g < G; g++ {
			binary.LittleEndian.PutUint16(sc[2*g:], p.scale(e, r0+r, g))
		}
	}
}

// value returns E2M1[code]·scale of one element (exact in float32).
func (p *packedLinear) value(e, n, c int) float32 {
	return e2m1[p.code(e, n, c)] * quant.FP16ToFloat32(p.scale(e, n, c/quant.MMFP4GroupSize))
}

var e2m1 = [16]float32{0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6}

// importedTensor is a template tensor replaced by imported data.
type importedTensor struct {
	typ  gguf.TensorType
	data []byte
	from string
}

// importTensor builds the replacement of template tensor ti, or returns nil
// if the source holds no packed data for it.
func (s *mmfp4Source) importTensor(ti *gguf.TensorInfo, tmpl *gguf.File) (*importedTensor, error) {
	prefix, proj, kind, ok := hfLinear(ti.Name)
	if !ok {
		return nil, nil
	}
	dims := ti.Dims
	switch kind {
	case "":
		pl, ok, err := s.findPacked(prefix)
		if err != nil || !ok {
			return nil, err
		}
		if len(dims) < 2 || pl.e != 1 || uint64(pl.k) != dims[0] || uint64(pl.n) != dims[1] || nDims(dims) > 2 {
			return nil, fmt.Errorf("import: %s [N=%d, K=%d] does not match GGUF %s dims %v", pl.name, pl.n, pl.k, ti.Name, dims)
		}
		size, _ := quant.MMFP4SlabBytes(pl.n, pl.k)
		out := make([]byte, size)
		pl.slab(0, 0, pl.n, out)
		return &importedTensor{gguf.TypeMMFP4, out, pl.name}, nil
	case "exps":
		if len(dims) != 3 {
			return nil, fmt.Errorf("import: GGUF %s has dims %v, want [K, N, E]", ti.Name, dims)
		}
		K, N, E := int(dims[0]), int(dims[1]), int(dims[2])
		slabSize, err := quant.MMFP4SlabBytes(N, K)
		if err != nil {
			return nil, fmt.Errorf("import: %s: %w", ti.Name, err)
		}
		out := make([]byte, E*slabSize)
		if pl, ok, err := s.findPacked(prefix + "." + proj); err != nil {
			return nil, err
		} else if ok {
			if pl.e != E || pl.n != N || pl.k != K {
				return nil, fmt.Errorf("import: bank %s [E=%d, N=%d, K=%d] does not match GGUF %s dims %v", pl.name, pl.e, pl.n, pl.k, ti.Name, dims)
			}
			for e := 0; e < E; e++ {
				pl.slab(e, 0, N, out[e*slabSize:(e+1)*slabSize])
			}
			return &importedTensor{gguf.TypeMMFP4, out, pl.name}, nil
		}
		got := 0
		from := ""
		for e := 0; e < E; e++ {
			pl, ok, err := s.findPacked(prefix + "." + strconv.Itoa(e) + "." + proj)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			if pl.e != 1 || pl.n != N || pl.k != K {
				return nil, fmt.Errorf("import: expert %s [N=%d, K=%d] does not match GGUF %s dims %v", pl.name, pl.n, pl.k, ti.Name, dims)
			}
			pl.slab(0, 0, N, out[e*slabSize:(e+1)*slabSize])
			got++
			from = prefix + ".*." + proj
		}
		switch got {
		case 0:
			return nil, nil
		case E:
			return &importedTensor{gguf.TypeMMFP4, out, from}, nil
		}
		return nil, fmt.Errorf("import: %s: only %d of %d experts are in the checkpoint", ti.Name, got, E)
	}
	// kv_b_proj halves: rows of head h are [nope key rows; dv value rows].
	pl, ok, err := s.findPacked(prefix)
	if err != nil || !ok {
		return nil, err
	}
	kb, okk := tmpl.Tensor(strings.Replace(ti.Name, "attn_v_b", "attn_k_b", 1))
	vb, okv := tmpl.Tensor(strings.Replace(ti.Name, "attn_k_b", "attn_v_b", 1))
	if !okk || !okv || len(kb.Dims) != 3 || len(vb.Dims) != 3 {
		return nil, fmt.Errorf("import: %s needs both attn_k_b and attn_v_b (3-D) in the template", pl.name)
	}
	nope, lora, H, dv := int(kb.Dims[0]), int(kb.Dims[1]), int(kb.Dims[2]), int(vb.Dims[1])
	if pl.e != 1 || pl.k != lora || pl.n != H*(nope+dv) || int(vb.Dims[0]) != lora || int(vb.Dims[2]) != H {
		return nil, fmt.Errorf("import: %s [N=%d, K=%d] does not match heads=%d x (nope %d + v %d) rows of kv_lora %d", pl.name, pl.n, pl.k, H, nope, dv, lora)
	}
	if kind == "v_b" {
		slabSize, err := quant.MMFP4SlabBytes(dv, lora)
		if err != nil {
			return nil, fmt.Errorf("import: %s: %w", ti.Name, err)
		}
		out := make([]byte, H*slabSize)
		for h := 0; h < H; h++ {
			pl.slab(0, h*(nope+dv)+nope, dv, out[h*slabSize:(h+1)*slabSize])
		}
		return &importedTensor{gguf.TypeMMFP4, out, pl.name + " (value rows)"}, nil
	}
	// k_b[h] is [lora rows][nope cols]: element (c, i) = W_k[h][i][c].
	out := make([]byte, H*lora*nope*4)
	for h := 0; h < H; h++ {
		for c := 0; c < lora; c++ {
			for i := 0; i < nope; i++ {
				v := pl.value(0, h*(nope+dv)+i, c)
				binary.LittleEndian.PutUint32(out[4*((h*lora+c)*nope+i):], math.Float32bits(v))
			}
		}
	}
	return &importedTensor{gguf.TypeF32, out, pl.name + " (key rows, transposed, f32)"}, nil
}

// relErr returns ||deq(imported) - template|| / ||template|| when the
// template tensor is float, for a sanity line (GPTQ checkpoints may store
// scales inconsistent with their codes; spec §4.1).
func relErr(ti *gguf.TensorInfo, tmplData []byte, it *importedTensor) (float64, bool) {
	if !isFloat(ti.Type) {
		return 0, false
	}
	ne0, rows, slabRows, err := rowsOf(ti.Dims)
	if err != nil {
		return 0, false
	}
	a, err1 := newRowIO(ti.Type, tmplData, ne0, rows, slabRows)
	b, err2 := newRowIO(it.typ, it.data, ne0, rows, slabRows)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	x, y := make([]float32, ne0), make([]float32, ne0)
	var num, den float64
	for r := 0; r < rows; r++ {
		if a.read(r, x) != nil || b.read(r, y) != nil {
			return 0, false
		}
		for i := range x {
			d := float64(y[i]) - float64(x[i])
			num += d * d
			den += float64(x[i]) * float64(x[i])
		}
	}
	if den == 0 {
		return 0, false
	}
	return math.Sqrt(num / den), true
}

// ImportMMFP4 writes to w the template GGUF with every tensor the MMFP4
// checkpoint src holds replaced by its lossless MMFP4 conversion (see the
// package notes above), in the template's tensor order. Metadata: the
// template's, with general.quantization_version = 2, general.file_type =
// 4160 (MMFP4), mmfp4.version = 1 and mmfp4.group_size = 128 appended. It
// fails if nothing was imported.
func ImportMMFP4(src string, tmpl *gguf.File, w io.Writer, opt ImportOptions) (Stats, error) {
	s, err := openMMFP4Source(src)
	if err != nil {
		return Stats{}, err
	}
	defer s.close()
	imported := make([]*importedTensor, len(tmpl.Tensors))
	n := 0
	for i := range tmpl.Tensors {
		it, err := s.importTensor(&tmpl.Tensors[i], tmpl)
		if err != nil {
			return Stats{}, err
		}
		imported[i] = it
		if it != nil {
			n++
		}
	}
	if n == 0 {
		return Stats{}, fmt.Errorf("import: %s holds no packed MMFP4 tensor that maps to a tensor of the template", src)
	}
	gw := gguf.NewWriter(w)
	for _, kv := range outputKV(tmpl, PresetMMFP4.FileType(), true) {
		if err := gw.AddKV(kv.Key, kv.Value); err != nil {
			return Stats{}, fmt.Errorf("import: metadata: %w", err)
		}
	}
	for i, ti := range tmpl.Tensors {
		typ := ti.Type
		if imported[i] != nil {
			typ = imported[i].typ
		}
		if _, err := gw.AddTensor(ti.Name, typ, ti.Dims...); err != nil {
			return Stats{}, fmt.Errorf("import: %w", err)
		}
	}
	st := Stats{Types: map[gguf.TensorType]int{}}
	for i := range tmpl.Tensors {
		ti := &tmpl.Tensors[i]
		data := tmpl.TensorData(ti)
		typ := ti.Type
		if it := imported[i]; it != nil {
			if opt.Progress != nil {
				fmt.Fprintf(opt.Progress, "[%4d/%4d] %-36s - [%s], %s -> %s from %s", i+1, len(tmpl.Tensors), ti.Name, shapeString(ti.Dims), ti.Type, it.typ, it.from)
				if e, ok := relErr(ti, data, it); ok {
					fmt.Fprintf(opt.Progress, ", rel. error vs template %.4f", e)
					if e > 0.5 {
						fmt.Fprint(opt.Progress, " (WARNING: large; wrong mapping, rotation or inconsistent scales?)")
					}
				}
				fmt.Fprintln(opt.Progress)
			}
			data, typ = it.data, it.typ
			st.Changed++
		} else if opt.Progress != nil {
			fmt.Fprintf(opt.Progress, "[%4d/%4d] %-36s - [%s], %s copied from the template\n", i+1, len(tmpl.Tensors), ti.Name, shapeString(ti.Dims), ti.Type)
		}
		if err := gw.WriteTensorData(data); err != nil {
			return st, fmt.Errorf("import: write %s: %w", ti.Name, err)
		}
		imported[i] = nil // release
		st.Tensors++
		st.Elements += ti.NumElements()
		st.InBytes += ti.NumBytes()
		st.OutBytes += uint64(len(data))
		st.Types[typ]++
	}
	if err := gw.Close(); err != nil {
		return st, fmt.Errorf("import: %w", err)
	}
	if opt.Progress != nil {
		bi, bo := st.BPW()
		fmt.Fprintf(opt.Progress, "template size = %8.2f MiB (%.2f BPW)\n", mib(st.InBytes), bi)
		fmt.Fprintf(opt.Progress, "output size   = %8.2f MiB (%.2f BPW), %d tensors imported\n", mib(st.OutBytes), bo, st.Changed)
	}
	return st, nil
}

// ImportMMFP4File runs ImportMMFP4 with the template GGUF at templatePath,
// writing outPath atomically.
func ImportMMFP4File(src, templatePath, outPath string, opt ImportOptions) (Stats, error) {
	if sameFile(templatePath, outPath) {
		return Stats{}, fmt.Errorf("import: output %s is the template file", outPath)
	}
	tmpl, err := gguf.Open(templatePath)
	if err != nil {
		return Stats{}, err
	}
	defer tmpl.Close()
	return writeAtomically(outPath, func(w io.Writer) (Stats, error) { return ImportMMFP4(src, tmpl, w, opt) })
}
