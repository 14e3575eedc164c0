package glm4moe_test

import (
	"os"
	"strconv"
	"testing"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/testdata"
	"github.com/glmrun/glmrun/model/glm4moe"
)

// benchModel opens $GLM_BENCH_MODEL, or glm-tiny's Q4_K_M file.
func benchModel(b *testing.B) *glm4moe.Model {
	path := os.Getenv("GLM_BENCH_MODEL")
	if path == "" {
		path = testdata.GLMTiny(b, "glm-tiny-q4_k_m.gguf")
	}
	f, err := gguf.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	m, err := glm4moe.Load(f, glm4moe.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkDecode measures one-token decode steps after a 16-token prompt.
func BenchmarkDecode(b *testing.B) {
	m := benchModel(b)
	c, err := m.NewCache(16 + b.N + 1)
	if err != nil {
		b.Fatal(err)
	}
	prompt := make([]int32, 16)
	for i := range prompt {
		prompt[i] = int32(i + 100)
	}
	if _, err := m.Forward(c, prompt, false); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Forward(c, []int32{int32(200 + i%50)}, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrefill measures a 64-token prompt ($GLM_BENCH_PROMPT tokens
// if set) in one micro-batch.
func BenchmarkPrefill(b *testing.B) {
	m := benchModel(b)
	n := 64
	if v, err := strconv.Atoi(os.Getenv("GLM_BENCH_PROMPT")); err == nil && v > 0 {
		n = v
	}
	prompt := make([]int32, n)
	for i := range prompt {
		prompt[i] = int32(i + 100)
	}
	c, err := m.NewCache(len(prompt))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Reset()
		if _, err := m.Forward(c, prompt, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeBatch measures one batched decode step of 1 and of 8
// sequences (one token each, 24-token prompts, caches rewound every 64
// steps), as the server's continuous batching runs it; ns/op is per step.
func BenchmarkDecodeBatch(b *testing.B) {
	m := benchModel(b)
	for _, n := range []int{1, 8} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			caches := make([]*glm4moe.Cache, n)
			toks := make([][]int32, n)
			prompt := make([]int32, 24)
			for i := range prompt {
				prompt[i] = int32(i + 100)
			}
			for s := range caches {
				c, err := m.NewCache(len(prompt) + 64)
				if err != nil {
					b.Fatal(err)
				}
				caches[s] = c
			}
			buf := make([]float32, n*m.Config().VocabSize)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%64 == 0 {
					b.StopTimer()
					for _, c := range caches {
						c.Reset()
						if _, err := m.Forward(c, prompt, false); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
				}
				for s := range toks {
					toks[s] = []int32{int32(200 + (i+s)%50)}
				}
				if _, err := m.ForwardBatchInto(buf, caches, toks); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
