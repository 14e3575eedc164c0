package main

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/model/glm4moe"
	"github.com/glmrun/glmrun/tokenizer"
)

// TestSmallPreset: the file scripts/run generates on a bare clone loads as a
// GLM-4.7-Flash model, tokenizes chat text with the GLM specials and gives
// finite logits.
func TestSmallPreset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "small.gguf")
	if err := run([]string{"-o", path, "--preset", "small", "--layers", "3", "-q"}); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := glm4moe.LoadConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NLayer != 3 || cfg.NEmbd != 512 || cfg.VocabSize != 32768 || !cfg.GatingSigmoid {
		t.Fatalf("unexpected config %+v", cfg)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	ids := tok.Encode("[gMASK]<sop><|user|>Hello<|assistant|><think>", true)
	if g, ok := tok.ID("[gMASK]"); !ok || ids[0] != g {
		t.Fatalf("[gMASK] not parsed as a special token: %v", ids)
	}
	m, err := glm4moe.Load(f, glm4moe.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.NewCache(len(ids))
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Forward(c, ids, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range out {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatalf("logit %d = %v", i, x)
		}
	}
	if err := run([]string{"-o", filepath.Join(t.TempDir(), "x"), "--preset", "huge"}); err == nil {
		t.Fatal("unknown preset accepted")
	}
	if _, err := os.Stat(path + ".partial"); !os.IsNotExist(err) {
		t.Fatal("partial file left behind")
	}
}
