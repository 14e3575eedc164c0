package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// This file decodes and validates the bodies of /v1/chat/completions and
// /v1/completions (interfaces.md §3.3). Unknown fields are accepted and
// ignored; wrong types and hard-limit violations are 400 errors naming the
// field; soft-limit numbers are clamped.

// samplingFields are the request fields shared by both endpoints.
type samplingFields struct {
	Model               *string            `json:"model"`
	MaxTokens           *int               `json:"max_tokens"`
	MaxCompletionTokens *int               `json:"max_completion_tokens"`
	NPredict            *int               `json:"n_predict"`
	Temperature         *float64           `json:"temperature"`
	TopP                *float64           `json:"top_p"`
	TopK                *int               `json:"top_k"`
	MinP                *float64           `json:"min_p"`
	Seed                *int64             `json:"seed"`
	PresencePenalty     *float64           `json:"presence_penalty"`
	FrequencyPenalty    *float64           `json:"frequency_penalty"`
	RepeatPenalty       *float64           `json:"repeat_penalty"`
	RepeatLastN         *int               `json:"repeat_last_n"`
	Stop                json.RawMessage    `json:"stop"`
	Stream              *bool              `json:"stream"`
	StreamOptions       *streamOptions     `json:"stream_options"`
	N                   *int               `json:"n"`
	NCmpl               *int               `json:"n_cmpl"`
	LogitBias           map[string]float64 `json:"logit_bias"`
	IgnoreEOS           *bool              `json:"ignore_eos"`
	CachePrompt         *bool              `json:"cache_prompt"`
}

type streamOptions struct {
	IncludeUsage *bool `json:"include_usage"`
}

// chatRequestJSON is the wire form of a chat completion request.
type chatRequestJSON struct {
	samplingFields
	Messages              json.RawMessage `json:"messages"`
	Logprobs              *bool           `json:"logprobs"`
	TopLogprobs           *int            `json:"top_logprobs"`
	ResponseFormat        json.RawMessage `json:"response_format"`
	ChatTemplateKwargs    map[string]any  `json:"chat_template_kwargs"`
	ReasoningFormat       *string         `json:"reasoning_format"`
	ReasoningEffort       *string         `json:"reasoning_effort"`
	ReasoningBudgetTokens *int            `json:"reasoning_budget_tokens"`
	Tools                 json.RawMessage `json:"tools"`
	ToolChoice            json.RawMessage `json:"tool_choice"`
}

type messageJSON struct {
	Role             *string         `json:"role"`
	Content          json.RawMessage `json:"content"`
	ReasoningContent *string         `json:"reasoning_content"`
	ToolCalls        []toolCallJSON  `json:"tool_calls"`
	ToolCallID       *string         `json:"tool_call_id"`
}

type toolCallJSON struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

// completionRequestJSON is the wire form of a legacy completion request.
type completionRequestJSON struct {
	samplingFields
	Prompt   json.RawMessage `json:"prompt"`
	Logprobs json.RawMessage `json:"logprobs"`
	Echo     *bool           `json:"echo"`
}

// genRequest is a validated generation request of either endpoint.
type genRequest struct {
	Stream       bool
	IncludeUsage bool
	N            int
	MaxTokens    int // -1 = until EOG or the context is full
	Params       SamplingParams
	RandomSeed   bool // the seed was -1 or absent; Params.Seed is then drawn per request
	Stops        []string
	IgnoreEOS    bool
	CachePrompt  bool // reuse a slot's cached prompt prefix (default true)
	Logprobs     int  // -1: none; n >= 0: each token's logprob and its n top alternatives

	// Chat only.
	Messages        []ChatMessage
	ChatOpts        ChatOptions
	ParseTools      bool   // tools were given (tool_choice not "none"): parse tool calls
	ReasoningFormat string // auto, deepseek, none, deepseek-legacy
	ReasoningBudget int    // -1 = unlimited

	// Completion only.
	Prompt       string
	PromptTokens []int32 // set when the prompt was given as token ids
}

// decodeStrict decodes one JSON object from body into v, mapping errors to
// 400 answers that name the field.
func decodeStrict(body []byte, v any) *apiError {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return badRequest("", "the request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			te.Field = strings.TrimPrefix(te.Field, "samplingFields.")
			return badRequest(te.Field, "field '%s' has the wrong type: got JSON %s, want %s", te.Field, te.Value, te.Type)
		}
		return badRequest("", "malformed JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("", "malformed JSON: trailing data after the request object")
	}
	return nil
}

// resolveSampling applies defaults to the shared fields and validates them.
func (s *Server) resolveSampling(f *samplingFields, g *genRequest) *apiError {
	d := s.cfg.Defaults
	p := SamplingParams{
		Temperature: d.Temperature, TopK: d.TopK, TopP: d.TopP, MinP: d.MinP,
		RepeatPenalty: d.RepeatPenalty, RepeatLastN: d.RepeatLastN,
		PresencePenalty: d.PresencePenalty, FrequencyPenalty: d.FrequencyPenalty,
	}
	fl := func(name string, v *float64, dst *float32, lo, hi float64) *apiError {
		if v == nil {
			return nil
		}
		if math.IsNaN(*v) {
			return badRequest(name, "field '%s' must be a number", name)
		}
		*dst = float32(math.Min(math.Max(*v, lo), hi))
		return nil
	}
	for _, c := range []struct {
		name   string
		v      *float64
		dst    *float32
		lo, hi float64
	}{
		{"temperature", f.Temperature, &p.Temperature, 0, math.MaxFloat32},
		{"top_p", f.TopP, &p.TopP, 0, 1},
		{"min_p", f.MinP, &p.MinP, 0, 1},
		{"presence_penalty", f.PresencePenalty, &p.PresencePenalty, -2, 2},
		{"frequency_penalty", f.FrequencyPenalty, &p.FrequencyPenalty, -2, 2},
		{"repeat_penalty", f.RepeatPenalty, &p.RepeatPenalty, 0, math.MaxFloat32},
	} {
		if e := fl(c.name, c.v, c.dst, c.lo, c.hi); e != nil {
			return e
		}
	}
	if f.TopK != nil {
		p.TopK = max(*f.TopK, 0)
	}
	if f.RepeatLastN != nil {
		n := *f.RepeatLastN
		if n < -1 {
			return badRequest("repeat_last_n", "field 'repeat_last_n' must be >= -1, got %d", n)
		}
		if n == -1 {
			n = s.cfg.MaxSeqLen
		}
		p.RepeatLastN = n
	}
	g.RandomSeed = true
	if f.Seed != nil && *f.Seed != -1 {
		p.Seed = uint64(*f.Seed)
		g.RandomSeed = false
	} else if d.Seed >= 0 {
		p.Seed = uint64(d.Seed)
		g.RandomSeed = false
	}
	if len(f.LogitBias) > 0 {
		p.LogitBias = make(map[int32]float32, len(f.LogitBias))
		for k, v := range f.LogitBias {
			id, err := strconv.ParseInt(k, 10, 32)
			if err != nil || id < 0 || int(id) >= s.engine().VocabSize() {
				return badRequest("logit_bias", "logit_bias key %q is not a token id of the vocabulary [0, %d)", k, s.engine().VocabSize())
			}
			p.LogitBias[int32(id)] = float32(v)
		}
	}
	g.Params = p

	// max_tokens and its aliases: the last one given wins, as in llama-server
	// (n_predict, then max_tokens, then max_completion_tokens).
	g.MaxTokens = s.cfg.Defaults.NPredict
	for _, c := range []struct {
		name string
		v    *int
	}{{"n_predict", f.NPredict}, {"max_tokens", f.MaxTokens}, {"max_completion_tokens", f.MaxCompletionTokens}} {
		if c.v == nil {
			continue
		}
		if *c.v < -1 {
			return badRequest(c.name, "field '%s' must be -1 (unlimited) or >= 0, got %d", c.name, *c.v)
		}
		g.MaxTokens = *c.v
	}

	n := 1
	name := "n"
	if f.NCmpl != nil {
		n, name = *f.NCmpl, "n_cmpl"
	}
	if f.N != nil {
		n, name = *f.N, "n"
	}
	if n < 1 || n > s.cfg.MaxBatchSize {
		return badRequest(name, "Value must be between 1 <= value <= %d, but got %d", s.cfg.MaxBatchSize, n)
	}
	g.N = n

	stops, e := parseStop(f.Stop)
	if e != nil {
		return e
	}
	g.Stops = stops
	if f.Stream != nil {
		g.Stream = *f.Stream
	}
	if f.StreamOptions != nil && f.StreamOptions.IncludeUsage != nil {
		g.IncludeUsage = *f.StreamOptions.IncludeUsage
	}
	if f.IgnoreEOS != nil {
		g.IgnoreEOS = *f.IgnoreEOS
	}
	g.CachePrompt = f.CachePrompt == nil || *f.CachePrompt
	return nil
}

// maxTopLogprobs bounds top_logprobs (OpenAI's limit).
const maxTopLogprobs = 20

// maxStopBytes bounds one stop string (matching costs O(length) per token).
const maxStopBytes = 1024

// parseStop accepts null, a string or an array of strings (at most 16).
func parseStop(raw json.RawMessage) ([]string, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		if one == "" {
			return nil, nil
		}
		if len(one) > maxStopBytes {
			return nil, badRequest("stop", "the stop string is %d bytes long; at most %d are allowed", len(one), maxStopBytes)
		}
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, badRequest("stop", "field 'stop' must be a string or an array of strings")
	}
	if len(many) > 16 {
		return nil, badRequest("stop", "field 'stop' holds %d strings; at most 16 are allowed", len(many))
	}
	out := many[:0]
	for _, s := range many {
		if len(s) > maxStopBytes {
			return nil, badRequest("stop", "a stop string is %d bytes long; at most %d are allowed", len(s), maxStopBytes)
		}
		if s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// parseContent accepts a string, null, or an array of {"type":"text","text":..}
// parts (joined with no separator). present is false for null or absent.
func parseContent(raw json.RawMessage, idx int) (text string, present bool, e *apiError) {
	param := fmt.Sprintf("messages[%d].content", idx)
	if len(raw) == 0 || string(raw) == "null" {
		return "", false, nil
	}
	if err := json.Unmarshal(raw, &text); err == nil {
		return text, true, nil
	}
	var parts []struct {
		Type *string `json:"type"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", false, badRequest(param, "'%s' must be a string, null or an array of text parts", param)
	}
	var sb strings.Builder
	for i, p := range parts {
		if p.Type == nil || *p.Type != "text" || p.Text == nil {
			return "", false, badRequest(param, "'%s[%d]' is not a text part ({\"type\":\"text\",\"text\":...}); only text is supported", param, i)
		}
		sb.WriteString(*p.Text)
	}
	return sb.String(), true, nil
}

// parseChatRequest validates a /v1/chat/completions body.
func (s *Server) parseChatRequest(body []byte) (*genRequest, *apiError) {
	var r chatRequestJSON
	if e := decodeStrict(body, &r); e != nil {
		return nil, e
	}
	if e := s.checkModel(r.Model); e != nil {
		return nil, e
	}
	g := &genRequest{}
	if e := s.resolveSampling(&r.samplingFields, g); e != nil {
		return nil, e
	}
	if r.TopLogprobs != nil && (r.Logprobs == nil || !*r.Logprobs) {
		return nil, badRequest("top_logprobs", "top_logprobs requires logprobs to be true")
	}
	g.Logprobs = -1
	if r.Logprobs != nil && *r.Logprobs {
		g.Logprobs = 0
		if r.TopLogprobs != nil {
			if *r.TopLogprobs < 0 || *r.TopLogprobs > maxTopLogprobs {
				return nil, badRequest("top_logprobs", "top_logprobs must be between 0 and %d, got %d", maxTopLogprobs, *r.TopLogprobs)
			}
			g.Logprobs = *r.TopLogprobs
		}
	}
	if e := checkResponseFormat(r.ResponseFormat); e != nil {
		return nil, e
	}

	if len(r.Messages) == 0 || string(r.Messages) == "null" {
		return nil, badRequest("messages", "'messages' is required")
	}
	var msgs []messageJSON
	if err := json.Unmarshal(r.Messages, &msgs); err != nil {
		return nil, badRequest("messages", "'messages' must be an array of message objects: %v", err)
	}
	if len(msgs) == 0 {
		return nil, badRequest("messages", "'messages' must not be empty")
	}
	for i, m := range msgs {
		if m.Role == nil {
			return nil, badRequest(fmt.Sprintf("messages[%d].role", i), "messages[%d] has no 'role'", i)
		}
		role := *m.Role
		if role == "developer" {
			role = "system"
		}
		switch role {
		case "system", "user", "assistant", "tool":
		default:
			return nil, badRequest(fmt.Sprintf("messages[%d].role", i), "messages[%d] has an unknown role '%s' (want system, user, assistant or tool)", i, role)
		}
		text, present, e := parseContent(m.Content, i)
		if e != nil {
			return nil, e
		}
		cm := ChatMessage{Role: role, Content: text}
		if m.ReasoningContent != nil {
			cm.ReasoningContent = *m.ReasoningContent
		}
		if m.ToolCallID != nil {
			cm.ToolCallID = *m.ToolCallID
		}
		for j, tc := range m.ToolCalls {
			if tc.Function.Name == "" {
				return nil, badRequest(fmt.Sprintf("messages[%d].tool_calls[%d].function.name", i, j), "tool call without a function name")
			}
			args := string(tc.Function.Arguments)
			var str string
			if json.Unmarshal(tc.Function.Arguments, &str) == nil {
				args = str // OpenAI sends arguments as a JSON string holding an object
			}
			if args == "" {
				args = "{}"
			}
			cm.ToolCalls = append(cm.ToolCalls, ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: args})
		}
		if role == "assistant" {
			if !present && len(cm.ToolCalls) == 0 {
				return nil, badRequest(fmt.Sprintf("messages[%d]", i), "assistant message %d needs 'content' or 'tool_calls'", i)
			}
		} else if !present {
			return nil, badRequest(fmt.Sprintf("messages[%d].content", i), "%s message %d has no 'content'", role, i)
		}
		g.Messages = append(g.Messages, cm)
	}
	n := len(g.Messages)
	if n >= 2 && g.Messages[n-1].Role == "assistant" && g.Messages[n-2].Role == "assistant" {
		return nil, badRequest("messages", "the conversation ends with two assistant messages; at most one (a prefill) is allowed")
	}

	thinking := s.cfg.EnableThinking
	clear := true
	for k, v := range s.cfg.ChatTemplateKwargs {
		applyKwarg(k, v, &thinking, &clear)
	}
	for k, v := range r.ChatTemplateKwargs {
		if e := checkKwarg(k, v); e != nil {
			return nil, e
		}
		applyKwarg(k, v, &thinking, &clear)
	}
	if r.ReasoningEffort != nil && *r.ReasoningEffort == "none" {
		thinking = false
	}
	g.ChatOpts = ChatOptions{
		AddGenerationPrompt: g.Messages[n-1].Role != "assistant",
		EnableThinking:      thinking,
		ClearThinking:       clear,
	}
	if len(r.Tools) > 0 && string(r.Tools) != "null" {
		var tools []json.RawMessage
		if err := json.Unmarshal(r.Tools, &tools); err != nil {
			return nil, badRequest("tools", "'tools' must be an array of tool objects")
		}
		for _, t := range tools {
			g.ChatOpts.Tools = append(g.ChatOpts.Tools, string(t))
		}
		g.ParseTools = len(tools) > 0 && string(r.ToolChoice) != `"none"`
		if string(r.ToolChoice) == `"none"` {
			g.ChatOpts.Tools = nil // as llama-server: no tools offered at all
		}
	}

	g.ReasoningFormat = s.cfg.ReasoningFormat
	if r.ReasoningFormat != nil {
		g.ReasoningFormat = *r.ReasoningFormat
	}
	switch g.ReasoningFormat {
	case "", "auto", "deepseek":
		g.ReasoningFormat = "deepseek"
	case "none", "deepseek-legacy":
	default:
		return nil, badRequest("reasoning_format", "unknown reasoning_format '%s' (want auto, deepseek, deepseek-legacy or none)", g.ReasoningFormat)
	}
	g.ReasoningBudget = s.cfg.ReasoningBudget
	if r.ReasoningBudgetTokens != nil {
		if *r.ReasoningBudgetTokens < -1 {
			return nil, badRequest("reasoning_budget_tokens", "'reasoning_budget_tokens' must be -1 or >= 0")
		}
		g.ReasoningBudget = *r.ReasoningBudgetTokens
	}
	return g, nil
}

// CheckTemplateKwarg reports whether chat_template_kwargs[k] = v is
// acceptable: enable_thinking and clear_thinking must be booleans (other
// keys are passed through). glmserve applies it to --chat-template-kwargs.
func CheckTemplateKwarg(k string, v any) error {
	if e := checkKwarg(k, v); e != nil {
		return errors.New(e.Message)
	}
	return nil
}

func checkKwarg(k string, v any) *apiError {
	switch k {
	case "enable_thinking", "clear_thinking":
		if _, ok := v.(bool); !ok {
			return badRequest("chat_template_kwargs."+k, "chat_template_kwargs.%s must be a boolean", k)
		}
	}
	return nil
}

func applyKwarg(k string, v any, thinking, clear *bool) {
	b, ok := v.(bool)
	if !ok {
		return
	}
	switch k {
	case "enable_thinking":
		*thinking = b
	case "clear_thinking":
		*clear = b
	}
}

// checkResponseFormat accepts absent, null or {"type":"text"}. JSON modes
// need grammar-constrained sampling, which this server does not have: they
// are refused rather than silently ignored.
func checkResponseFormat(raw json.RawMessage) *apiError {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var rf struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &rf); err != nil {
		return badRequest("response_format", "'response_format' must be an object with a 'type'")
	}
	switch rf.Type {
	case "text":
		return nil
	case "json_object", "json_schema":
		return badRequest("response_format", "response_format type '%s' is not supported (no grammar-constrained sampling)", rf.Type)
	default:
		return badRequest("response_format", "unknown response_format type '%s'", rf.Type)
	}
}

// checkModel accepts an absent or null model and any of the served ids;
// anything else is 404 "model not found".
func (s *Server) checkModel(m *string) *apiError {
	if m == nil || *m == "" {
		return nil
	}
	for _, id := range s.modelIDs {
		if *m == id {
			return nil
		}
	}
	return modelNotFound(*m)
}

// parseCompletionRequest validates a /v1/completions body.
func (s *Server) parseCompletionRequest(body []byte) (*genRequest, *apiError) {
	var r completionRequestJSON
	if e := decodeStrict(body, &r); e != nil {
		return nil, e
	}
	if e := s.checkModel(r.Model); e != nil {
		return nil, e
	}
	g := &genRequest{}
	if e := s.resolveSampling(&r.samplingFields, g); e != nil {
		return nil, e
	}
	g.Logprobs = -1
	if len(r.Logprobs) > 0 && string(r.Logprobs) != "null" {
		// The legacy API's logprobs is the number of top alternatives (0..5
		// in OpenAI's; up to 20 here); true is read as 0.
		var n int
		var b bool
		switch {
		case json.Unmarshal(r.Logprobs, &n) == nil:
		case json.Unmarshal(r.Logprobs, &b) == nil:
			n = -1
			if b {
				n = 0
			}
		default:
			return nil, badRequest("logprobs", "'logprobs' must be an integer")
		}
		if n > maxTopLogprobs || n < -1 {
			return nil, badRequest("logprobs", "logprobs must be between 0 and %d, got %d", maxTopLogprobs, n)
		}
		g.Logprobs = n
	}
	if r.Echo != nil && *r.Echo {
		return nil, badRequest("echo", "echo is not supported by this server")
	}
	if len(r.Prompt) == 0 || string(r.Prompt) == "null" {
		return nil, badRequest("prompt", "'prompt' is required")
	}
	var str string
	if json.Unmarshal(r.Prompt, &str) == nil {
		g.Prompt = str
	} else {
		var strs []string
		var ids []int32
		switch {
		case json.Unmarshal(r.Prompt, &strs) == nil && len(strs) == 1:
			g.Prompt = strs[0]
		case json.Unmarshal(r.Prompt, &ids) == nil && len(ids) > 0:
			for _, id := range ids {
				if id < 0 || int(id) >= s.engine().VocabSize() {
					return nil, badRequest("prompt", "prompt token id %d is outside the vocabulary [0, %d)", id, s.engine().VocabSize())
				}
			}
			g.PromptTokens = ids
		default:
			return nil, badRequest("prompt", "'prompt' must be a string, an array with one string, or an array of token ids (several prompts per request are not supported)")
		}
	}
	if g.Prompt == "" && len(g.PromptTokens) == 0 {
		return nil, badRequest("prompt", "'prompt' is empty")
	}
	g.ReasoningFormat = "none"
	g.ReasoningBudget = -1
	return g, nil
}
