package gguf_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/glmrun/glmrun/gguf"
)

func TestRoundTripGLMTiny(t *testing.T) {
	for _, name := range []string{"glm-tiny-bf16.gguf", "glm-tiny-q4_k_m.gguf", "glm-tiny-q4_k_m-dequant-f32.gguf"} {
		path := filepath.Join("..", "..", "shared", "testdata", "glm-tiny", name)
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Skip(err)
		}
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := gguf.WriteFile(&buf, f); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if !bytes.Equal(buf.Bytes(), orig) {
			t.Fatalf("%s: rewrite differs (len %d vs %d)", name, buf.Len(), len(orig))
		}
		t.Logf("%s: %d tensors, %d kv, byte-identical", name, len(f.Tensors), len(f.KV))
	}
}
