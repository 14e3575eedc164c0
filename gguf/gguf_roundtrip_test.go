package gguf_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/testdata"
)

func TestRoundTripGLMTiny(t *testing.T) {
	for _, name := range []string{"glm-tiny-bf16.gguf", "glm-tiny-q4_k_m.gguf", "glm-tiny-q4_k_m-dequant-f32.gguf"} {
		path := testdata.GLMTiny(t, name)
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
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
