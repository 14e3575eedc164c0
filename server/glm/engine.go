// Package glm adapts the GLM-4.7-Flash model (model/glm4moe), its tokenizer,
// the native chat-template renderer (chat) and the sampler (sample) to
// server.Engine, so that glmserve can serve a GGUF file.
package glm

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/glmrun/glmrun/bench"
	"github.com/glmrun/glmrun/chat"
	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/model/glm4moe"
	"github.com/glmrun/glmrun/sample"
	"github.com/glmrun/glmrun/server"
	"github.com/glmrun/glmrun/tokenizer"
)

// Options control how the model computes.
type Options struct {
	Threads int  // CPU worker goroutines; 0 = physical cores
	UBatch  int  // tokens per forward pass inside the model; 0 = 512
	Exact   bool // float32 math on exactly dequantized weights (slow reference)
	// Device is "cpu", "cuda" (fail without a usable GPU) or "auto"/"" (CUDA
	// when a GPU is usable, else the CPU).
	Device string
	// CacheF32 keeps a CUDA KV cache in f32 instead of f16.
	CacheF32 bool
}

// printedSpecials are special tokens whose text is part of the output even
// when the GGUF marks them CONTROL: the reasoning and tool-call tags, which
// the reasoning parser (and clients using reasoning_format=none) must see.
var printedSpecials = []string{
	chat.ThinkOpen, chat.ThinkClose, "<tool_call>", "</tool_call>", "<arg_key>", "</arg_key>",
	"<arg_value>", "</arg_value>", "<tool_response>", "</tool_response>",
}

// Engine is a loaded GLM-4.7-Flash GGUF served through server.Engine.
// The text methods are safe for concurrent use; the compute methods are
// called by the server's single scheduler goroutine.
type Engine struct {
	file    *gguf.File
	model   *glm4moe.Model
	tok     *tokenizer.Tokenizer
	vocab   int // logits row length (the model's vocabulary)
	tokSize int // the tokenizer's vocabulary (ids >= tokSize are masked)
	printed map[int32]string
	info    server.ModelInfo

	mu     sync.Mutex
	logits []float32 // ForwardBatch's reused logits buffer
}

// Open maps the GGUF at path and loads its tokenizer and model.
func Open(path string, opt Options) (*Engine, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	e, err := New(f, path, opt)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return e, nil
}

// New builds an engine over an open file (which must stay open until Close).
func New(f *gguf.File, path string, opt Options) (*Engine, error) {
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	mo := glm4moe.Options{Exact: opt.Exact, Threads: opt.Threads, UBatch: opt.UBatch, CacheF32: opt.CacheF32}
	var m *glm4moe.Model
	switch opt.Device {
	case "cpu", "cuda":
		mo.Device = opt.Device
		m, err = glm4moe.Load(f, mo)
	case "", "auto":
		mo.Device = "cuda"
		m, err = glm4moe.Load(f, mo)
		if errors.Is(err, glm4moe.ErrNoGPU) {
			mo.Device = "cpu"
			m, err = glm4moe.Load(f, mo)
		}
	default:
		return nil, fmt.Errorf("unknown device %q (use cpu, cuda or auto)", opt.Device)
	}
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	cfg := m.Config()
	if cfg.VocabSize <= 0 {
		return nil, fmt.Errorf("model: vocabulary size %d", cfg.VocabSize)
	}
	e := &Engine{file: f, model: m, tok: tok, vocab: cfg.VocabSize, tokSize: tok.VocabSize(), printed: map[int32]string{}}
	for _, s := range printedSpecials {
		if id, ok := tok.ID(s); ok {
			e.printed[id] = s
		}
	}
	desc, err := bench.Describe(f)
	if err != nil {
		return nil, fmt.Errorf("describing the model: %w", err)
	}
	mode := "fast"
	if opt.Exact {
		mode = "exact"
	}
	e.info = server.ModelInfo{
		Path: path, NCtxTrain: cfg.NCtxTrain, NEmbd: cfg.NEmbd, NParams: desc.Params, Size: desc.Size,
		FType: desc.Type, VocabType: "BPE",
		Device: fmt.Sprintf("cpu (%d threads, %s path)", m.Options().Threads, mode),
	}
	if name := m.GPUName(); name != "" {
		w, _, total, _ := m.VRAM()
		e.info.Device = fmt.Sprintf("cuda (%s, %.1f GiB of %.1f GiB for weights, %s path)", name, float64(w)/(1<<30), float64(total)/(1<<30), mode)
	}
	return e, nil
}

// Close releases the GPU (if any) and the file mapping; the engine must not
// be used afterwards.
func (e *Engine) Close() error {
	return errors.Join(e.model.Close(), e.file.Close())
}

// DeviceMemory reports the GPU's used and total memory (ok false on the CPU).
func (e *Engine) DeviceMemory() (used, total uint64, ok bool) {
	_, free, total, ok := e.model.VRAM()
	if !ok {
		return 0, 0, false
	}
	return total - free, total, true
}

// Info describes the model.
func (e *Engine) Info() server.ModelInfo { return e.info }

// RenderChat applies GLM-4.7-Flash's chat template.
func (e *Engine) RenderChat(msgs []server.ChatMessage, o server.ChatOptions) (string, error) {
	cm := make([]chat.Message, len(msgs))
	for i, m := range msgs {
		cm[i] = chat.Message{Role: m.Role, Content: m.Content, ReasoningContent: m.ReasoningContent}
		for _, tc := range m.ToolCalls {
			cm[i].ToolCalls = append(cm[i].ToolCalls, chat.ToolCall{Name: tc.Name, Arguments: json.RawMessage(tc.Arguments)})
		}
	}
	clear := o.ClearThinking
	opt := chat.Options{AddGenerationPrompt: o.AddGenerationPrompt, EnableThinking: o.EnableThinking, ClearThinking: &clear}
	for _, t := range o.Tools {
		opt.Tools = append(opt.Tools, json.RawMessage(t))
	}
	return chat.Render(cm, opt)
}

// Tokenize encodes text (no BOS: the template writes [gMASK]<sop> itself).
func (e *Engine) Tokenize(text string, special bool) ([]int32, error) {
	return e.tok.Encode(text, special), nil
}

// Detokenize renders ids as the streaming decoder does.
func (e *Engine) Detokenize(ids []int32) (string, error) {
	d := e.NewDecoder()
	var b []byte
	for _, id := range ids {
		if id < 0 || int(id) >= e.tokSize {
			return "", fmt.Errorf("token id %d is outside the vocabulary [0, %d)", id, e.tokSize)
		}
		b = append(b, d.Add(id)...)
	}
	return string(append(b, d.Flush()...)), nil
}

// decoder prints the reasoning and tool tags and skips other control tokens.
type decoder struct {
	d       *tokenizer.StreamDecoder
	printed map[int32]string
}

func (d *decoder) Add(id int32) string {
	if s, ok := d.printed[id]; ok {
		return d.d.Flush() + s
	}
	return d.d.Add(id)
}

func (d *decoder) Flush() string { return d.d.Flush() }

// NewDecoder returns a streaming detokenizer.
func (e *Engine) NewDecoder() server.TokenDecoder {
	return &decoder{d: e.tok.NewDecoder(), printed: e.printed}
}

// NewReasoningParser returns chat's streaming <think> splitter.
func (e *Engine) NewReasoningParser(startInReasoning bool) server.ReasoningParser {
	return chat.NewReasoningParser(startInReasoning)
}

// IsEOG reports end-of-generation ids (eos, eot <|user|>, eom <|observation|>).
func (e *Engine) IsEOG(id int32) bool {
	return id >= 0 && int(id) < e.tokSize && e.tok.IsEOG(id)
}

// VocabSize is the model's logits row length.
func (e *Engine) VocabSize() int { return e.vocab }

// NewCache allocates a latent KV cache for maxTokens positions.
func (e *Engine) NewCache(maxTokens int) (server.Cache, error) {
	return e.model.NewCache(maxTokens)
}

var errForeignCache = errors.New("glm: cache was not created by this engine")

// ForwardBatch runs one batched pass of the model over several sequences.
// The logits rows live in a buffer the engine reuses from step to step (as
// server.Engine allows: valid until the next call), so a step does not
// allocate len(caches)·vocab floats.
func (e *Engine) ForwardBatch(caches []server.Cache, tokens [][]int32) ([][]float32, error) {
	cs := make([]*glm4moe.Cache, len(caches))
	for i, c := range caches {
		gc, ok := c.(*glm4moe.Cache)
		if !ok {
			return nil, errForeignCache
		}
		cs[i] = gc
	}
	// Overlapping calls (not made by the scheduler) get their own buffer.
	e.mu.Lock()
	buf := e.logits
	e.logits = nil
	e.mu.Unlock()
	if need := len(cs) * e.vocab; cap(buf) < need {
		buf = make([]float32, need)
	}
	out, err := e.model.ForwardBatchInto(buf, cs, tokens)
	e.mu.Lock()
	e.logits = buf
	e.mu.Unlock()
	return out, err
}

// ForEach runs fn over [0, n) on the model's CPU worker pool (the slots'
// sampling; server.ParallelRunner).
func (e *Engine) ForEach(n int, fn func(i int)) { e.model.ForEach(n, fn) }

// sampler wraps sample.Sampler with logit bias and vocabulary masking and
// records each drawn token in the penalty history.
type sampler struct {
	s       *sample.Sampler
	bias    map[int32]float32
	tokSize int
}

func (s *sampler) Sample(logits []float32) (int32, error) {
	for id, b := range s.bias {
		if int(id) < len(logits) {
			logits[id] += b
		}
	}
	for i := s.tokSize; i < len(logits); i++ {
		logits[i] = float32(math.Inf(-1))
	}
	id := s.s.Sample(logits)
	s.s.Accept(id)
	return id, nil
}

// NewSampler returns llama.cpp's sampler chain for p, its penalty history
// seeded with the prompt as llama-server does.
func (e *Engine) NewSampler(p server.SamplingParams, prompt []int32) (server.Sampler, error) {
	s := sample.New(sample.Params{
		Temp: p.Temperature, TopK: p.TopK, TopP: p.TopP, MinP: p.MinP,
		RepeatPenalty: p.RepeatPenalty, RepeatLastN: p.RepeatLastN,
		PresencePenalty: p.PresencePenalty, FrequencyPenalty: p.FrequencyPenalty, Seed: p.Seed,
	})
	for _, id := range prompt {
		s.Accept(id)
	}
	return &sampler{s: s, bias: p.LogitBias, tokSize: e.tokSize}, nil
}
