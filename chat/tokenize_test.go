package chat

import (
	"slices"
	"testing"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/testdata"
	"github.com/glmrun/glmrun/tokenizer"
)

// TestRenderTokenizes renders a one-question chat and tokenizes it with the
// glm-tiny vocabulary: the ids must be llama.cpp's for the same prompt (a
// case of tokenizer-cases.jsonl: [gMASK] <sop> <|user|> ... <|assistant|> <think>).
func TestRenderTokenizes(t *testing.T) {
	f, err := gguf.Open(testdata.GLMTiny(t, "glm-tiny-bf16.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	prompt, err := Render([]Message{{Role: "user", Content: "What is 2+2?"}}, Options{AddGenerationPrompt: true, EnableThinking: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []int32{2202, 2204, 2207, 54, 71, 271, 382, 220, 17, 10, 17, 30, 2208, 2222}
	if got := tok.Encode(prompt, true); !slices.Equal(got, want) {
		t.Errorf("Encode(Render(...)) = %v, want %v", got, want)
	}
}
