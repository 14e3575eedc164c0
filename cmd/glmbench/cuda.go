package main

import (
	"fmt"
	"os"

	"github.com/glmrun/glmrun/bench"
	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/model/glm4moe"
)

// deviceArg removes "--device cuda" / "-dev cuda" (also "--device=cuda")
// from args, which package bench's parser (CPU devices only) would reject,
// and reports whether it was there. Other device values are left for bench
// to accept or reject.
func deviceArg(args []string) ([]string, bool) {
	out := make([]string, 0, len(args))
	cuda := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case (a == "--device" || a == "-dev") && i+1 < len(args) && args[i+1] == "cuda":
			cuda = true
			i++
		case a == "--device=cuda":
			cuda = true
		default:
			out = append(out, a)
		}
	}
	return out, cuda
}

// loadCUDA is bench's Loader for glm4moe on CUDA device 0: the same model
// with Options.Device "cuda" (weights uploaded at load, KV cache on the
// GPU; the cache is f16, so KVBytes counts 2 bytes per value).
func loadCUDA(opt bench.LoadOptions) (bench.Engine, error) {
	f, err := gguf.Open(opt.Path)
	if err != nil {
		return nil, err
	}
	m, err := glm4moe.Load(f, glm4moe.Options{Exact: opt.Exact, Threads: opt.Threads, UBatch: opt.UBatch, Device: "cuda"})
	if err != nil {
		f.Close()
		return nil, err
	}
	if w, free, total, ok := m.VRAM(); ok {
		fmt.Fprintf(os.Stderr, "glmbench: %s: weights %.2f GiB in VRAM, %.2f of %.2f GiB free\n",
			m.GPUName(), float64(w)/(1<<30), float64(free)/(1<<30), float64(total)/(1<<30))
	}
	return &cudaEngine{f: f, m: m}, nil
}

type cudaEngine struct {
	f *gguf.File
	m *glm4moe.Model
}

func (e *cudaEngine) VocabSize() int  { return e.m.Config().VocabSize }
func (e *cudaEngine) Backend() string { return "CUDA" }
func (e *cudaEngine) Close() error {
	err := e.m.Close()
	if err2 := e.f.Close(); err == nil {
		err = err2
	}
	return err
}

// KVBytes is the size of the f16 latent cache of maxTokens tokens.
func (e *cudaEngine) KVBytes(maxTokens int) uint64 {
	c := e.m.Config()
	return uint64(maxTokens) * uint64(c.NLayer) * uint64(c.CacheRow()) * 2
}

func (e *cudaEngine) NewSequence(maxTokens int) (bench.Sequence, error) {
	c, err := e.m.NewCache(maxTokens)
	if err != nil {
		return nil, err
	}
	return &cudaSequence{m: e.m, c: c}, nil
}

type cudaSequence struct {
	m *glm4moe.Model
	c *glm4moe.Cache
}

func (s *cudaSequence) Len() int             { return s.c.Len() }
func (s *cudaSequence) Truncate(n int) error { return s.c.Truncate(n) }
func (s *cudaSequence) Decode(tokens []int32) ([]float32, error) {
	out, err := s.m.Forward(s.c, tokens, false)
	if err != nil {
		return nil, fmt.Errorf("decode %d tokens at position %d: %w", len(tokens), s.c.Len(), err)
	}
	return out, nil
}
