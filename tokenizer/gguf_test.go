package tokenizer

import (
	"bytes"
	"strings"
	"testing"

	"github.com/glmrun/glmrun/gguf"
)

// buildGGUF writes a GGUF holding only the given metadata and parses it.
func buildGGUF(t *testing.T, kvs map[string]gguf.Value) *gguf.File {
	t.Helper()
	var buf bytes.Buffer
	w := gguf.NewWriter(&buf)
	for _, k := range []string{"tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
		"tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
		"tokenizer.ggml.eom_token_id", "tokenizer.ggml.add_bos_token"} {
		if v, ok := kvs[k]; ok {
			if err := w.AddKV(k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func validKVs() map[string]gguf.Value {
	var toks []string
	var types []int32
	for b := 0; b < 256; b++ {
		toks = append(toks, string(byteToRune[b]))
		types = append(types, int32(TypeNormal))
	}
	toks = append(toks, "he", "<|endoftext|>", "[gMASK]", "<|user|>", "<|observation|>")
	types = append(types, int32(TypeNormal), int32(TypeControl), int32(TypeControl), int32(TypeControl), int32(TypeControl))
	return map[string]gguf.Value{
		"tokenizer.ggml.model":        gguf.String("gpt2"),
		"tokenizer.ggml.pre":          gguf.String("glm4"),
		"tokenizer.ggml.tokens":       gguf.Array(toks),
		"tokenizer.ggml.token_type":   gguf.Array(types),
		"tokenizer.ggml.merges":       gguf.Array([]string{"h e"}),
		"tokenizer.ggml.bos_token_id": gguf.Uint32(258),
		"tokenizer.ggml.eos_token_id": gguf.Uint32(257),
		"tokenizer.ggml.eot_token_id": gguf.Uint32(259),
		"tokenizer.ggml.eom_token_id": gguf.Uint32(260),
	}
}

func TestFromGGUF(t *testing.T) {
	tok, err := FromGGUF(buildGGUF(t, validKVs()))
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("[gMASK]hehe<|user|>", true); len(got) != 4 || got[0] != 258 || got[1] != 256 || got[3] != 259 {
		t.Errorf("Encode = %v", got)
	}
	if tok.AddBOS() || tok.BOS() != 258 || tok.EOS() != 257 {
		t.Errorf("bos/eos wrong: add=%v bos=%d eos=%d", tok.AddBOS(), tok.BOS(), tok.EOS())
	}
	if eog := tok.EOGIDs(); len(eog) != 3 || eog[0] != 257 || eog[1] != 259 || eog[2] != 260 {
		t.Errorf("EOGIDs = %v", eog)
	}
	kv := validKVs()
	kv["tokenizer.ggml.add_bos_token"] = gguf.Bool(true)
	if tok, err := FromGGUF(buildGGUF(t, kv)); err != nil || !tok.AddBOS() {
		t.Errorf("add_bos_token=true: AddBOS=%v err=%v", tok != nil && tok.AddBOS(), err)
	}
}

func TestFromGGUFErrors(t *testing.T) {
	cases := []struct {
		name string
		mod  func(map[string]gguf.Value)
		want string
	}{
		{"no model", func(m map[string]gguf.Value) { delete(m, "tokenizer.ggml.model") }, "tokenizer.ggml.model"},
		{"spm model", func(m map[string]gguf.Value) { m["tokenizer.ggml.model"] = gguf.String("llama") }, `"llama"`},
		{"no pre", func(m map[string]gguf.Value) { delete(m, "tokenizer.ggml.pre") }, "tokenizer.ggml.pre"},
		{"qwen2 pre", func(m map[string]gguf.Value) { m["tokenizer.ggml.pre"] = gguf.String("qwen2") }, `"qwen2"`},
		{"no tokens", func(m map[string]gguf.Value) { delete(m, "tokenizer.ggml.tokens") }, "tokenizer.ggml.tokens"},
		{"no merges", func(m map[string]gguf.Value) { delete(m, "tokenizer.ggml.merges") }, "tokenizer.ggml.merges"},
		{"short types", func(m map[string]gguf.Value) { m["tokenizer.ggml.token_type"] = gguf.Array([]int32{1}) }, "token types"},
		{"bad eos", func(m map[string]gguf.Value) { m["tokenizer.ggml.eos_token_id"] = gguf.Uint32(99999) }, "eos_token_id"},
		{"tokens not strings", func(m map[string]gguf.Value) { m["tokenizer.ggml.tokens"] = gguf.Array([]int32{1, 2}) }, "tokenizer.ggml.tokens"},
	}
	for _, c := range cases {
		kv := validKVs()
		c.mod(kv)
		_, err := FromGGUF(buildGGUF(t, kv))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one mentioning %s", c.name, err, c.want)
		}
	}
}
