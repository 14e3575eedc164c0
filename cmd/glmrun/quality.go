package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/glmrun/glmrun/chat"
	"github.com/glmrun/glmrun/model/glm4moe"
	"github.com/glmrun/glmrun/sample"
	"github.com/glmrun/glmrun/tokenizer"
)

// qualityCase is one of the seed's sanity prompts: the answer (reasoning
// excluded) must contain want.
type qualityCase struct {
	prompt, want string
}

var qualityCases = []qualityCase{
	{"2 + 2 = ?", "4"},
	{"What is the capital of France?", "Paris"},
	{"Convert HELLO to lowercase.", "hello"},
}

// qualityMaxTokens bounds each answer when -n is not given.
const qualityMaxTokens = 256

// answerer returns the model's full output (reasoning and answer) for one
// user message rendered through the chat template.
type answerer func(userMessage string) (string, error)

// reportQuality asks each quality prompt, prints PASS/FAIL per prompt and a
// summary. The answer is the text after </think> when thinking is on. It
// reports, it does not assume: random-weight models fail, and the exit
// status is 0 either way unless generation itself fails.
func reportQuality(thinking bool, ask answerer, stdout, stderr io.Writer) int {
	passed := 0
	for i, qc := range qualityCases {
		out, err := ask(qc.prompt)
		if err != nil {
			fmt.Fprintf(stderr, "error: quality prompt %d: %v\n", i+1, err)
			return 1
		}
		_, answer := chat.SplitReasoning(out, thinking)
		verdict := "FAIL"
		if strings.Contains(answer, qc.want) {
			verdict = "PASS"
			passed++
		}
		fmt.Fprintf(stdout, "quality %d/%d %s: %q -> want %q in answer %q\n", i+1, len(qualityCases), verdict, qc.prompt, qc.want, clip(answer, 200))
	}
	fmt.Fprintf(stdout, "quality: %d/%d passed\n", passed, len(qualityCases))
	if passed < len(qualityCases) {
		fmt.Fprintln(stderr, "note: the quality prompts are meaningful only on real weights; a random-weight model fails them")
	}
	return 0
}

// modelAnswerer answers greedily with m from an empty cache, up to -n tokens
// (qualityMaxTokens when -n is -1) or an end-of-generation token.
func modelAnswerer(o *options, m *glm4moe.Model, tok *tokenizer.Tokenizer, cache *glm4moe.Cache) answerer {
	maxTok := o.nPredict
	if maxTok < 0 {
		maxTok = qualityMaxTokens
	}
	return func(msg string) (string, error) {
		text, err := chat.Render([]chat.Message{{Role: "user", Content: msg}}, chat.Options{AddGenerationPrompt: true, EnableThinking: o.reasoning != "off"})
		if err != nil {
			return "", err
		}
		prompt := tok.Encode(text, true)
		n := min(maxTok, cache.Cap()-len(prompt))
		if n <= 0 {
			return "", fmt.Errorf("the prompt (%d tokens) does not fit the context (%d)", len(prompt), cache.Cap())
		}
		cache.Reset()
		logits, err := m.Forward(cache, prompt, false)
		if err != nil {
			return "", err
		}
		s := sample.New(sample.Params{Temp: 0})
		var ids []int32
		for len(ids) < n {
			id := s.Sample(logits)
			if tok.IsEOG(id) {
				break
			}
			ids = append(ids, id)
			if len(ids) < n {
				if logits, err = m.Forward(cache, []int32{id}, false); err != nil {
					return "", err
				}
			}
		}
		return tok.Decode(ids), nil
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
