package bench

import (
	"fmt"
	"os"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/model/glm4moe"
)

// LoadOptions are the model-load parameters of a test: a change in any of
// them reloads the model (llama-bench reloads on its model parameters; here
// threads, micro-batch, backend and cache type are fixed at load too).
type LoadOptions struct {
	Path     string
	Threads  int
	UBatch   int
	LoadMode string // "mmap" (map the file) or "none" (read it into memory)
	Exact    bool
	// Backend is the Name of the backend chosen for the test ("CPU",
	// "CUDA"); CacheType its KV-cache type, one of that backend's
	// CacheTypes ("f32"; "f16" or "f32" on CUDA).
	Backend   string
	CacheType string
}

// Engine is a loaded model that the benchmark drives.
type Engine interface {
	// NewSequence returns an empty sequence with room for maxTokens tokens.
	NewSequence(maxTokens int) (Sequence, error)
	// VocabSize is the number of token ids (random prompt tokens are drawn
	// from 0..VocabSize-1, as llama-bench does).
	VocabSize() int
	// Backend names the backend the engine computes on ("CPU", "CUDA").
	Backend() string
	// Close releases the model and its file.
	Close() error
}

// Sequence is one sequence's KV cache.
type Sequence interface {
	// Len is the number of tokens in the cache.
	Len() int
	// Truncate keeps the first n tokens.
	Truncate(n int) error
	// Decode appends tokens and returns the logits of the last one
	// ([VocabSize]float32).
	Decode(tokens []int32) ([]float32, error)
}

// Releaser is implemented by sequences whose cache holds memory that
// outlives the Go value (device memory): the runner calls Release when a
// test is done with the sequence.
type Releaser interface {
	Release() error
}

// Loader opens the model file described by opt.
type Loader func(opt LoadOptions) (Engine, error)

// OpenGGUF opens path mapped ("mmap") or read into memory ("none"): the
// -lm load modes glmbench honours; loaders of other backends use it too.
func OpenGGUF(path, mode string) (*gguf.File, error) {
	if mode == "none" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return gguf.Parse(data)
	}
	return gguf.Open(path)
}

// LoadGLM4MoE is the Loader of glmrun's CPU engine (package glm4moe); its
// KV cache is f32, the only CacheType it accepts ("" means f32).
func LoadGLM4MoE(opt LoadOptions) (Engine, error) {
	if opt.CacheType != "" && opt.CacheType != "f32" {
		return nil, fmt.Errorf("cache type %s is not supported on the CPU backend (its KV cache is f32)", opt.CacheType)
	}
	f, err := OpenGGUF(opt.Path, opt.LoadMode)
	if err != nil {
		return nil, err
	}
	m, err := glm4moe.Load(f, glm4moe.Options{Exact: opt.Exact, Threads: opt.Threads, UBatch: opt.UBatch})
	if err != nil {
		f.Close()
		return nil, err
	}
	return &glmEngine{f: f, m: m}, nil
}

type glmEngine struct {
	f *gguf.File
	m *glm4moe.Model
}

func (e *glmEngine) VocabSize() int  { return e.m.Config().VocabSize }
func (e *glmEngine) Backend() string { return "CPU" }
func (e *glmEngine) Close() error    { return e.f.Close() }

func (e *glmEngine) NewSequence(maxTokens int) (Sequence, error) {
	c, err := e.m.NewCache(maxTokens)
	if err != nil {
		return nil, err
	}
	return &glmSequence{m: e.m, c: c}, nil
}

type glmSequence struct {
	m *glm4moe.Model
	c *glm4moe.Cache
}

func (s *glmSequence) Len() int             { return s.c.Len() }
func (s *glmSequence) Truncate(n int) error { return s.c.Truncate(n) }
func (s *glmSequence) Decode(tokens []int32) ([]float32, error) {
	out, err := s.m.Forward(s.c, tokens, false)
	if err != nil {
		return nil, fmt.Errorf("decode %d tokens at position %d: %w", len(tokens), s.c.Len(), err)
	}
	return out, nil
}

// KVBytes is the size of a float32 latent cache of maxTokens tokens.
func (e *glmEngine) KVBytes(maxTokens int) uint64 {
	c := e.m.Config()
	return uint64(maxTokens) * uint64(c.NLayer) * uint64(c.CacheRow()) * 4
}
