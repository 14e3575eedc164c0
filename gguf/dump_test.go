package gguf_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/glmrun/glmrun/gguf"
)

// dumpedJSON mirrors the documented JSON layout of Dump.
type dumpedJSON struct {
	Path            string                     `json:"path"`
	Version         uint32                     `json:"version"`
	Alignment       uint64                     `json:"alignment"`
	DataOffset      uint64                     `json:"data_offset"`
	FileSize        int64                      `json:"file_size"`
	Metadata        map[string]json.RawMessage `json:"metadata"`
	TensorCount     int                        `json:"tensor_count"`
	TotalBytes      uint64                     `json:"total_bytes"`
	TotalParameters uint64                     `json:"total_parameters"`
	Tensors         []struct {
		Index     int      `json:"index"`
		Name      string   `json:"name"`
		Type      string   `json:"type"`
		Shape     []uint64 `json:"shape"`
		Offset    uint64   `json:"offset"`
		RelOffset uint64   `json:"rel_offset"`
		Bytes     uint64   `json:"bytes"`
		NElements uint64   `json:"n_elements"`
	} `json:"tensors"`
}

type dumpedEntry struct {
	Type  string          `json:"type"`
	Len   *int            `json:"len"`
	Value json.RawMessage `json:"value"`
	Head  []any           `json:"head"`
}

func dumpBoth(t *testing.T, f *gguf.File, path string) (string, dumpedJSON, []byte) {
	t.Helper()
	var text, js bytes.Buffer
	if err := gguf.Dump(&text, f, path, false); err != nil {
		t.Fatal(err)
	}
	if err := gguf.Dump(&js, f, path, true); err != nil {
		t.Fatal(err)
	}
	var d dumpedJSON
	if err := json.Unmarshal(js.Bytes(), &d); err != nil {
		t.Fatalf("JSON dump does not unmarshal: %v\n%s", err, js.Bytes())
	}
	return text.String(), d, js.Bytes()
}

// checkDumpAgainstFile compares a dump with the parsed file it describes.
func checkDumpAgainstFile(t *testing.T, f *gguf.File, path, text string, d dumpedJSON) {
	t.Helper()
	if d.Path != path || d.Version != f.Version || d.Alignment != f.Alignment || d.DataOffset != f.DataOffset || d.FileSize != f.Size() {
		t.Fatalf("JSON header %q v%d align %d data %d size %d, want %q v%d %d %d %d",
			d.Path, d.Version, d.Alignment, d.DataOffset, d.FileSize, path, f.Version, f.Alignment, f.DataOffset, f.Size())
	}
	if len(d.Metadata) != len(f.KV) {
		t.Fatalf("JSON has %d metadata keys, file %d", len(d.Metadata), len(f.KV))
	}
	if len(d.Tensors) != len(f.Tensors) || d.TensorCount != len(f.Tensors) {
		t.Fatalf("JSON has %d tensors (count %d), file %d", len(d.Tensors), d.TensorCount, len(f.Tensors))
	}
	var total, params uint64
	for i := range f.Tensors {
		ti, dt := &f.Tensors[i], d.Tensors[i]
		shape := fmt.Sprint(ti.Dims)
		if dt.Index != i || dt.Name != ti.Name || dt.Type != ti.Type.String() || fmt.Sprint(dt.Shape) != shape ||
			dt.Offset != f.DataOffset+ti.Offset || dt.RelOffset != ti.Offset || dt.Bytes != ti.NumBytes() || dt.NElements != ti.NumElements() {
			t.Fatalf("JSON tensor %d = %+v, file has %s %s %v off %d bytes %d", i, dt, ti.Name, ti.Type, ti.Dims, ti.Offset, ti.NumBytes())
		}
		if dt.Shape == nil {
			t.Fatalf("tensor %s: shape is null, want a list", ti.Name)
		}
		total += ti.NumBytes()
		params += ti.NumElements()
		// The text table has a row: index, name, type, shape, abs, rel, bytes.
		row := fmt.Sprintf(" %d %s %s [%s] %d %d %d\n", i, ti.Name, ti.Type, strings.Trim(strings.ReplaceAll(shape, " ", ", "), "[]"),
			f.DataOffset+ti.Offset, ti.Offset, ti.NumBytes())
		if !strings.Contains(squeeze(text), row) {
			t.Fatalf("text dump has no row %q", row)
		}
	}
	if d.TotalBytes != total || d.TotalParameters != params {
		t.Fatalf("JSON totals %d bytes %d params, want %d %d", d.TotalBytes, d.TotalParameters, total, params)
	}
	totals := fmt.Sprintf("totals: %d tensors, %d bytes", len(f.Tensors), total)
	if !strings.Contains(text, totals) || !strings.Contains(text, fmt.Sprintf("%d parameters", params)) {
		t.Fatalf("text dump lacks %q / %d parameters", totals, params)
	}
	for _, want := range []string{
		fmt.Sprintf("version:     %d", f.Version), fmt.Sprintf("alignment:   %d", f.Alignment),
		fmt.Sprintf("data offset: %d", f.DataOffset), fmt.Sprintf("metadata: %d keys", len(f.KV)),
	} {
		if !strings.Contains(squeeze(text), squeeze(want)) {
			t.Fatalf("text dump lacks %q", want)
		}
	}
	for _, kv := range f.KV {
		var e dumpedEntry
		if err := json.Unmarshal(d.Metadata[kv.Key], &e); err != nil {
			t.Fatalf("metadata %q: %v", kv.Key, err)
		}
		wantType := kv.Value.Type.String()
		if kv.Value.Type == gguf.ValueArray {
			wantType = "arr[" + kv.Value.ElemType.String() + "]"
			if e.Len == nil || *e.Len != kv.Value.Len() {
				t.Fatalf("metadata %q: JSON len %v, want %d", kv.Key, e.Len, kv.Value.Len())
			}
		}
		if e.Type != wantType {
			t.Fatalf("metadata %q: JSON type %q, want %q", kv.Key, e.Type, wantType)
		}
		if !strings.Contains(text, kv.Key+" ") && !strings.Contains(text, strconv.Quote(kv.Key)+" ") {
			t.Fatalf("text dump lacks key %q", kv.Key)
		}
	}
}

// squeeze collapses runs of spaces to one (tabwriter pads cells with two
// or more).
func squeeze(s string) string {
	for strings.Contains(s, "  ") {
		s = strings.ReplaceAll(s, "  ", " ")
	}
	return s
}

func TestDumpGLMTiny(t *testing.T) {
	files := glmTinyBytes(t)
	if len(files) == 0 {
		t.Skip("glm-tiny files not available")
	}
	for i, b := range files {
		f, err := gguf.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		path := glmTinyFiles[i]
		text, d, raw := dumpBoth(t, f, path)
		checkDumpAgainstFile(t, f, path, text, d)
		// Long arrays are summarised in both modes.
		tokens, err := f.Strings("tokenizer.ggml.tokens")
		if err != nil {
			t.Fatal(err)
		}
		var e dumpedEntry
		if err := json.Unmarshal(d.Metadata["tokenizer.ggml.tokens"], &e); err != nil {
			t.Fatal(err)
		}
		if e.Type != "arr[str]" || *e.Len != len(tokens) || len(e.Head) != 8 || e.Value != nil || e.Head[3] != tokens[3] {
			t.Fatalf("tokens entry %+v, want arr[str] len %d with an 8-element head", e, len(tokens))
		}
		if !strings.Contains(text, fmt.Sprintf("(len %d)", len(tokens))) || !strings.Contains(text, fmt.Sprintf("%d more]", len(tokens)-8)) {
			t.Fatal("text dump does not abbreviate the token list")
		}
		// The chat template is whole in JSON and cut in text.
		tmpl, err := f.String("tokenizer.chat_template")
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(d.Metadata["tokenizer.chat_template"], &e); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := json.Unmarshal(e.Value, &got); err != nil || got != tmpl {
			t.Fatalf("JSON chat template differs from the file's (%v)", err)
		}
		if !strings.Contains(text, fmt.Sprintf("... (%d bytes)", len(tmpl))) || strings.Contains(text, tmpl[:200]) {
			t.Fatal("text dump does not cut the chat template")
		}
		if !bytes.Contains(raw, []byte("<|user|>")) {
			t.Fatal("JSON escapes HTML characters in strings")
		}
		if t.Failed() {
			return
		}
		t.Logf("%s: %d-byte text dump, %d-byte JSON dump", path, len(text), len(raw))
	}
}

func TestDumpSyntheticShapesAndValues(t *testing.T) {
	data, _ := syntheticFile(t)
	f, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	text, d, _ := dumpBoth(t, f, "synthetic.gguf")
	checkDumpAgainstFile(t, f, "synthetic.gguf", text, d)

	// Scalar values in JSON carry the exact value.
	wantValue := map[string]string{
		"t.u8": "200", "t.i8": "-100", "t.u32": "4000000000", "t.i64": "-9223372036854775808",
		"t.u64": "18446744073709551615", "t.bool.true": "true", "t.str": `"héllo\n\u0000world"`,
		"t.f64": `"-Inf"`, "a.u8": "[0,1,255]", "a.bool": "[true,false,true]", "a.empty": "[]",
		"a.f32": `[0.5,"+Inf",0]`, "n.arr": `[[1,2],["x","y","z"],[[1.25]],[]]`, "n.empty": "[]",
		"n.deep": "[[[[[[[[1,2]]]]]]]]",
	}
	for key, want := range wantValue {
		var e dumpedEntry
		if err := json.Unmarshal(d.Metadata[key], &e); err != nil {
			t.Fatal(err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, e.Value); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if compact.String() != want {
			t.Fatalf("%s: JSON value %s, want %s", key, compact.String(), want)
		}
	}
	var long dumpedEntry
	if err := json.Unmarshal(d.Metadata["a.long"], &long); err != nil {
		t.Fatal(err)
	}
	if long.Type != "arr[i32]" || *long.Len != 100 || len(long.Head) != 8 || long.Value != nil {
		t.Fatalf("a.long: %+v, want a summary of 100 with an 8-element head", long)
	}
	for _, want := range []string{
		`t.str str = "héllo\n\x00world"`, "t.f32 f32 = -1.5e-07", "a.u8 arr[u8] = [0, 1, 255]",
		"a.long arr[i32] = [0, 0, 0, 0, 0, 0, 0, 0, ... 92 more] (len 100)",
		`n.arr arr[arr] = [[1, 2], ["x", "y", "z"], [[1.25]], []]`,
		"a.empty arr[u32] = []", "scalar f32 []", "hyper.bf16 bf16 [3, 2, 2, 2]", "vec f16 [7]",
		"cube.q8_0 q8_0 [32, 2, 3]",
	} {
		if !strings.Contains(squeeze(text), want) {
			t.Fatalf("text dump lacks %q:\n%s", want, text)
		}
	}
}

// Odd but valid files: no tensors, long nested arrays, NaN, keys with
// spaces; the dump must stay valid JSON and bounded text.
func TestDumpOddValues(t *testing.T) {
	var buf bytes.Buffer
	w := gguf.NewWriter(&buf)
	inner := make([]gguf.Value, 100)
	for i := range inner {
		inner[i] = gguf.Array(make([]uint16, 100))
	}
	for _, kv := range []gguf.KV{
		{Key: "nested.long", Value: gguf.Array(inner)},
		{Key: "nan", Value: gguf.Float32(float32(math.NaN()))},
		{Key: "key with\ttab", Value: gguf.String(strings.Repeat("ü", 100))},
		{Key: "bad utf8", Value: gguf.String("\xff\xfe")},
	} {
		if err := w.AddKV(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	text, d, _ := dumpBoth(t, f, "odd.gguf")
	checkDumpAgainstFile(t, f, "odd.gguf", text, d)
	var e struct {
		Head []struct {
			Type string `json:"type"`
			Len  int    `json:"len"`
			Head []int  `json:"head"`
		} `json:"head"`
	}
	if err := json.Unmarshal(d.Metadata["nested.long"], &e); err != nil {
		t.Fatal(err)
	}
	if len(e.Head) != 8 || e.Head[0].Type != "arr[u16]" || e.Head[0].Len != 100 || len(e.Head[0].Head) != 8 {
		t.Fatalf("nested long arrays not summarised: %+v", e)
	}
	if len(text) > 4000 {
		t.Fatalf("text dump of a 10000-element nested array is %d bytes", len(text))
	}
	for _, want := range []string{`"key with\ttab"`, "= NaN", `"\xff\xfe"`, "(200 bytes)", "tensors: 0", "totals: 0 tensors, 0 bytes"} {
		if !strings.Contains(text, want) {
			t.Fatalf("text dump lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "\ufffd") {
		t.Fatal("text dump split a UTF-8 sequence")
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, fmt.Errorf("pipe closed") }

func TestDumpWriteError(t *testing.T) {
	data, _ := syntheticFile(t)
	f, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, asJSON := range []bool{false, true} {
		if err := gguf.Dump(errWriter{}, f, "x", asJSON); err == nil || !strings.Contains(err.Error(), "pipe closed") {
			t.Fatalf("json=%v: err %v, want the writer's error", asJSON, err)
		}
	}
}
