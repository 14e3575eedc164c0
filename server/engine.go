package server

// This file holds the narrow interface between the HTTP server and a model.
// The server never touches model internals: it renders prompts, tokenizes,
// decodes, samples and runs batched forward passes only through Engine.
// Tests drive the whole server with a small deterministic fake; package
// server/glm adapts the real GLM-4.7-Flash model, tokenizer, chat template and
// sampler.

// Engine is everything the server needs from a loaded model.
//
// Concurrency: the text methods (RenderChat, Tokenize, Detokenize, NewDecoder,
// NewReasoningParser, IsEOG, VocabSize, Info) are called from many HTTP
// handler goroutines at once and must be safe for concurrent use. The compute
// methods (NewCache, ForwardBatch, NewSampler and the Cache/Sampler values they
// return) are called only from the scheduler's single goroutine, which owns
// the model.
type Engine interface {
	// Info describes the model for /v1/models, /props and the logs.
	Info() ModelInfo

	// RenderChat applies the model's chat template to msgs and returns the
	// prompt text (special tokens written as their text, e.g. "[gMASK]<sop>").
	RenderChat(msgs []ChatMessage, opts ChatOptions) (string, error)
	// Tokenize encodes text; with special=true the text of special tokens
	// (e.g. "<|user|>") is parsed into their ids.
	Tokenize(text string, special bool) ([]int32, error)
	// Detokenize renders ids as text the way the streaming decoder would.
	Detokenize(ids []int32) (string, error)
	// NewDecoder returns a streaming detokenizer for one generation.
	NewDecoder() TokenDecoder
	// NewReasoningParser returns a parser that splits generated text into
	// reasoning (inside <think>...</think>) and content. startInReasoning is
	// true when the prompt already opened <think>.
	NewReasoningParser(startInReasoning bool) ReasoningParser
	// IsEOG reports whether id ends a generation.
	IsEOG(id int32) bool
	// VocabSize is the length of the logits rows ForwardBatch returns.
	VocabSize() int

	// NewCache allocates a KV cache able to hold maxTokens positions of one
	// sequence.
	NewCache(maxTokens int) (Cache, error)
	// ForwardBatch runs ONE batched forward pass over several sequences:
	// tokens[i] (length >= 1) is appended to caches[i]. It returns, for each
	// sequence i, the logits after its last token: a slice of VocabSize()
	// float32 values that stays valid until the next ForwardBatch call.
	ForwardBatch(caches []Cache, tokens [][]int32) ([][]float32, error)
	// NewSampler returns a token sampler for one generation. prompt is the
	// evaluated prompt, which seeds the penalty history as llama-server does.
	NewSampler(p SamplingParams, prompt []int32) (Sampler, error)
}

// DeviceMemoryReporter is an optional Engine extension: engines that run on
// a GPU report its memory for the gpu_memory_used_bytes metric.
type DeviceMemoryReporter interface {
	// DeviceMemory returns the device's used and total bytes; ok is false
	// when the engine runs on the CPU.
	DeviceMemory() (used, total uint64, ok bool)
}

// ParallelRunner is an optional Engine extension: an engine with a worker
// pool runs each step's per-slot sampling on it. Right after a forward pass
// the pool's threads are still spinning, while goroutines started per step
// queue behind them: with 8 slots on glm-tiny (2 cores) sampling took 265
// µs a step through goroutines.
type ParallelRunner interface {
	// ForEach calls fn(i) for every i in [0, n), possibly concurrently on
	// the engine's worker threads, and returns when all calls are done.
	ForEach(n int, fn func(i int))
}

// Cache is one sequence's KV cache, owned by the scheduler goroutine.
type Cache interface {
	// Len is the number of positions held.
	Len() int
	// Reset empties the cache so that it can be reused.
	Reset()
}

// Sampler picks the next token from a row of logits (length VocabSize()) and
// records it in its own history (for repetition penalties). It may modify
// logits in place.
type Sampler interface {
	Sample(logits []float32) (int32, error)
}

// TokenDecoder turns a stream of token ids into UTF-8 text, holding back
// bytes of an incomplete character until it is complete.
type TokenDecoder interface {
	// Add returns the text that token id completes (possibly "").
	Add(id int32) string
	// Flush returns any held-back bytes at the end of a generation.
	Flush() string
}

// ReasoningParser splits a stream of generated text into reasoning and
// content. Text that might be the start of a tag is held back until it is
// decided.
type ReasoningParser interface {
	// Add consumes the next piece of text.
	Add(text string) (reasoning, content string)
	// Flush returns whatever was held back, at the end of a generation.
	Flush() (reasoning, content string)
}

// ChatMessage is one message of a chat request after validation.
type ChatMessage struct {
	Role             string // system, user, assistant or tool
	Content          string // text parts joined with no separator
	ReasoningContent string // an assistant's earlier reasoning, if any
	ToolCalls        []ToolCall
	ToolCallID       string // for role "tool"
}

// ToolCall is a function call made by an assistant message.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string // a JSON object, as text
}

// ChatOptions controls template rendering.
type ChatOptions struct {
	// AddGenerationPrompt appends "<|assistant|><think>" (or "</think>" when
	// EnableThinking is false).
	AddGenerationPrompt bool
	// EnableThinking opens the reasoning block in the generation prompt.
	EnableThinking bool
	// ClearThinking drops reasoning of assistant turns before the last user
	// message (the template's default, true).
	ClearThinking bool
	// Tools holds the request's tool definitions, each a JSON object.
	Tools []string
}

// SamplingParams are one request's sampling settings, already resolved
// (defaults applied, values clamped).
type SamplingParams struct {
	Temperature      float32 // 0 = greedy
	TopK             int     // 0 = off
	TopP             float32 // 1 = off
	MinP             float32 // 0 = off
	RepeatPenalty    float32 // 1 = off
	RepeatLastN      int     // history length the penalties look at
	PresencePenalty  float32
	FrequencyPenalty float32
	Seed             uint64 // the seed actually used (never "random" here)
	LogitBias        map[int32]float32
}

// ModelInfo describes the loaded model.
type ModelInfo struct {
	Path      string // the GGUF file
	NCtxTrain int    // training context length
	NEmbd     int
	NParams   uint64 // total elements of all tensors
	Size      uint64 // total tensor bytes
	FType     string // e.g. "Q4_K - Medium"
	VocabType string // e.g. "BPE"
	Device    string // where the forward pass runs, e.g. "cpu (16 threads)"
}
