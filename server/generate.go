package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// This file holds the two generation endpoints: /v1/chat/completions and
// /v1/completions, streaming (SSE) and not (interfaces.md §3.4).

// systemFingerprint is reported in every completion object.
const systemFingerprint = "glmrun"

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	body, e := readBody(r)
	if e != nil {
		writeError(w, e)
		return
	}
	g, e := s.parseChatRequest(body)
	if e != nil {
		writeError(w, e)
		return
	}
	eng := s.engine()
	prompt, err := eng.RenderChat(g.Messages, g.ChatOpts)
	if err != nil {
		writeError(w, badRequest("messages", "applying the chat template: %v", err))
		return
	}
	ids, err := eng.Tokenize(prompt, true)
	if err != nil {
		writeError(w, badRequest("messages", "tokenizing the prompt: %v", err))
		return
	}
	startThink := g.ChatOpts.AddGenerationPrompt && g.ChatOpts.EnableThinking
	s.generate(w, r, g, ids, true, startThink)
}

func (s *Server) handleCompletion(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	body, e := readBody(r)
	if e != nil {
		writeError(w, e)
		return
	}
	g, e := s.parseCompletionRequest(body)
	if e != nil {
		writeError(w, e)
		return
	}
	ids := g.PromptTokens
	if ids == nil {
		var err error
		if ids, err = s.engine().Tokenize(g.Prompt, true); err != nil {
			writeError(w, badRequest("prompt", "tokenizing the prompt: %v", err))
			return
		}
	}
	s.generate(w, r, g, ids, false, false)
}

// choice tracks one of a request's n generations.
type choice struct {
	index       int
	st          *stream
	parser      ReasoningParser // nil: all text is content
	tools       *toolCallParser // nil: no tool-call parsing
	calls       []parsedToolCall
	legacy      bool   // deepseek-legacy: raw text in content AND reasoning split
	sawThinkEnd bool   // legacy: "</think>" has appeared in the content
	prefix      string // text to put before the first content (legacy "<think>")
	content     strings.Builder
	reasoning   strings.Builder
	tokens      int
	reasonTok   int
	seenText    bool           // some content was produced (later tokens are not reasoning)
	lps         []tokenLogprob // logprobs not yet sent (stream) or all of them
	textOff     int            // legacy completions: text offset of the next token
	started     bool           // the role chunk was sent
	done        bool
	finish      string
	timings     timings
}

// split turns generated text into (reasoning, content) deltas.
func (c *choice) split(text string, final bool) (string, string) {
	if c.parser == nil {
		return "", text
	}
	var re, co string
	if final {
		r1, c1 := c.parser.Add(text)
		r2, c2 := c.parser.Flush()
		re, co = r1+r2, c1+c2
	} else {
		re, co = c.parser.Add(text)
	}
	if c.legacy {
		co = c.prefix + text
		c.prefix = ""
	}
	return re, co
}

// apply consumes one event's text; it returns the deltas to report.
func (c *choice) apply(ev event) (reasoning, content string) {
	reasoning, content = c.split(ev.Text, ev.Done)
	if c.tools != nil {
		content = c.tools.Add(content)
		if ev.Done {
			var rest string
			rest, c.calls = c.tools.Flush()
			content += rest
		}
	}
	c.tokens += ev.Tokens
	if c.legacy && !c.sawThinkEnd {
		// Only the tail of the earlier content can complete a tag.
		tail := c.content.String()
		tail = tail[max(0, len(tail)-len("</think>")):]
		c.sawThinkEnd = strings.Contains(tail+content, "</think>")
	}
	if content != "" && (!c.legacy || c.sawThinkEnd) {
		c.seenText = true
	}
	if c.parser != nil && !c.seenText {
		c.reasonTok += ev.Tokens
	}
	c.reasoning.WriteString(reasoning)
	c.content.WriteString(content)
	return reasoning, content
}

// newID returns prefix + 32 random alphanumerics.
func newID(prefix string) string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var b [32]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return prefix + string(b[:])
}

func randomSeed() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:]) & 0xFFFFFFFF
}

// timingsJSON renders llama-server's "timings" object.
func timingsJSON(t timings) map[string]any {
	per := func(ms float64, n int) (perTok, perSec float64) {
		if n == 0 || ms <= 0 {
			return 0, 0
		}
		return ms / float64(n), 1e3 * float64(n) / ms
	}
	ppt, pps := per(t.PromptMS, t.PromptN)
	gpt, gps := per(t.PredictedMS, t.PredictedN)
	return map[string]any{
		"cache_n": t.CacheN, "prompt_n": t.PromptN, "prompt_ms": t.PromptMS,
		"prompt_per_token_ms": ppt, "prompt_per_second": pps,
		"predicted_n": t.PredictedN, "predicted_ms": t.PredictedMS,
		"predicted_per_token_ms": gpt, "predicted_per_second": gps,
	}
}

// generate admits n jobs for prompt and answers them, streaming or not.
func (s *Server) generate(w http.ResponseWriter, r *http.Request, g *genRequest, prompt []int32, isChat, startThink bool) {
	eng := s.engine()
	if len(prompt) == 0 {
		writeError(w, badRequest("prompt", "the prompt is empty after tokenization"))
		return
	}
	if len(prompt) >= s.cfg.MaxSeqLen {
		writeError(w, exceedContext(len(prompt), s.cfg.MaxSeqLen))
		return
	}
	reserve := s.cfg.MaxSeqLen
	if g.MaxTokens >= 0 {
		reserve = min(len(prompt)+g.MaxTokens, s.cfg.MaxSeqLen)
	}
	var thinkEnd []int32
	budget := -1
	if startThink && g.ReasoningBudget >= 0 {
		ids, err := eng.Tokenize("</think>", true)
		if err != nil || len(ids) == 0 {
			writeError(w, badRequest("reasoning_budget_tokens", "this model has no </think> token to end reasoning with"))
			return
		}
		thinkEnd, budget = ids, g.ReasoningBudget
	} else if startThink {
		// Still track the end of reasoning (no forcing) when </think> is one token.
		if ids, err := eng.Tokenize("</think>", true); err == nil && len(ids) == 1 {
			thinkEnd = ids
		}
	}

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	notify := make(chan struct{}, 1)
	choices := make([]*choice, g.N)
	jobs := make([]*job, g.N)
	for i := range jobs {
		p := g.Params
		if g.RandomSeed {
			p.Seed = randomSeed()
		} else {
			p.Seed += uint64(i)
		}
		st := &stream{notify: notify}
		jobs[i] = &job{
			ctx: ctx, prompt: prompt, maxTokens: g.MaxTokens, reserve: reserve, params: p,
			stops: g.Stops, ignoreEOS: g.IgnoreEOS, cachePrompt: g.CachePrompt, logprobs: g.Logprobs, inThink: startThink, budget: budget, thinkEnd: thinkEnd,
			out: st,
		}
		c := &choice{index: i, st: st}
		// reasoning_format "none" asks for the model's raw text: tool-call
		// markup then stays in content, like the <think> tags.
		if isChat && g.ParseTools && g.ReasoningFormat != "none" {
			c.tools = &toolCallParser{}
		}
		if isChat {
			switch g.ReasoningFormat {
			case "deepseek":
				c.parser = eng.NewReasoningParser(startThink)
			case "deepseek-legacy":
				c.parser = eng.NewReasoningParser(startThink)
				c.legacy = true
				if startThink {
					c.prefix = "<think>"
				}
			}
		}
		choices[i] = c
	}
	if e := s.sched.submitAll(jobs); e != nil {
		writeError(w, e)
		return
	}
	id, created := newID("chatcmpl-"), time.Now().Unix()
	if !isChat {
		id = newID("cmpl-")
	}
	out := &responder{
		s: s, w: w, g: g, isChat: isChat, id: id, created: created, choices: choices,
		promptN: len(prompt), rc: http.NewResponseController(w),
	}
	out.run(ctx, notify)
}

// responder turns the jobs' events into the HTTP answer.
type responder struct {
	s        *Server
	w        http.ResponseWriter
	rc       *http.ResponseController
	g        *genRequest
	isChat   bool
	id       string
	created  int64
	choices  []*choice
	promptN  int
	sseOpen  bool
	lastSend time.Time
	// frames holds the SSE frames of one wake-up, written and flushed
	// together; its memory is reused from one wake-up to the next.
	frames bytes.Buffer
	enc    *json.Encoder // encodes into frames
}

func (o *responder) run(ctx context.Context, notify chan struct{}) {
	ping := time.NewTicker(o.s.cfg.SSEPingInterval)
	defer ping.Stop()
	o.lastSend = time.Now()
	remaining := len(o.choices)
	for remaining > 0 {
		select {
		case <-ctx.Done():
			return // the client went away; the scheduler frees the slots
		case <-ping.C:
			if o.g.Stream && time.Since(o.lastSend) >= o.s.cfg.SSEPingInterval {
				if !o.openSSE() || o.write([]byte(":\n\n")) != nil {
					return
				}
			}
			continue
		case <-notify:
		}
		for _, c := range o.choices {
			for _, ev := range c.st.drain() {
				if ev.Err != nil {
					o.fail(ev.Err)
					return
				}
				re, co := c.apply(ev)
				c.lps = append(c.lps, ev.Logprobs...)
				if ev.Done {
					c.done, c.finish, c.timings = true, ev.Finish, ev.Timings
					if len(c.calls) > 0 {
						c.finish = "tool_calls"
					}
					remaining--
				}
				if o.g.Stream {
					o.streamDelta(c, re, co, ev.Done)
				}
			}
		}
		// The last wake-up's frames go out with the usage and [DONE] ones.
		if remaining > 0 && !o.flush() {
			return
		}
	}
	if o.g.Stream {
		o.finishStream()
		return
	}
	o.writeFinal()
}

// fail answers a compute error: an HTTP error before the stream started,
// else an SSE error event (after the frames still pending) and no [DONE].
func (o *responder) fail(err error) {
	e := computeError(err)
	o.s.cfg.Log.Printf("request %s failed: %v", o.id, err)
	if !o.sseOpen {
		writeError(o.w, e)
		return
	}
	o.frame(e)
	o.flush()
}

func (o *responder) openSSE() bool {
	if o.sseOpen {
		return true
	}
	h := o.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	o.w.WriteHeader(http.StatusOK)
	o.sseOpen = true
	return true
}

func (o *responder) write(b []byte) error {
	if _, err := o.w.Write(b); err != nil {
		return err
	}
	o.lastSend = time.Now()
	return o.rc.Flush()
}

// frame appends the SSE frame "data: <v as JSON>\n\n" to o.frames (the
// bytes json.Marshal gives), opening the stream first.
func (o *responder) frame(v any) {
	o.openSSE()
	if o.enc == nil {
		o.enc = json.NewEncoder(&o.frames)
	}
	o.frames.WriteString("data: ")
	if o.enc.Encode(v) != nil { // Encode writes nothing on failure
		o.frames.WriteString(encodeFailedJSON + "\n")
	}
	o.frames.WriteByte('\n') // Encode ended the JSON with the first '\n'
}

// flush writes the pending frames with one Write and one Flush; false when
// the client can no longer be written to.
func (o *responder) flush() bool {
	if o.frames.Len() == 0 {
		return true
	}
	err := o.write(o.frames.Bytes())
	o.frames.Reset()
	return err == nil
}

// streamChunk is one data frame of a stream: a "chat.completion.chunk" or
// a "text_completion". The fields are in sorted key order, the order in
// which encoding/json writes a map, and so the order the frames have always
// had.
type streamChunk struct {
	Choices           any    `json:"choices"` // []chatChunkChoice, []textChunkChoice; empty in the usage chunk
	Created           int64  `json:"created"`
	ID                string `json:"id"`
	Model             string `json:"model"`
	Object            string `json:"object"`
	SystemFingerprint string `json:"system_fingerprint"`
	// Timings is set on a choice's last chunk and on the usage chunk.
	Timings map[string]any `json:"timings,omitempty"`
	// Usage is null on every chunk when the client asked for usage
	// (stream_options.include_usage) and the usage object on the final
	// usage chunk; absent otherwise.
	Usage json.RawMessage `json:"usage,omitempty"`
}

// chatChunkChoice is a choice of a "chat.completion.chunk". Delta is a
// roleDelta, contentDelta, toolCallsDelta or struct{}{} (the last chunk).
type chatChunkChoice struct {
	Delta        any            `json:"delta"`
	FinishReason *string        `json:"finish_reason"`
	Index        int            `json:"index"`
	Logprobs     map[string]any `json:"logprobs,omitempty"` // only when logprobs were requested
}

// roleDelta opens a choice: {"content":null,"role":"assistant"}.
type roleDelta struct {
	Content *string `json:"content"`
	Role    string  `json:"role"`
}

// contentDelta carries the text of one event; at least one field is set.
type contentDelta struct {
	Content          string `json:"content,omitempty"`
	ReasoningContent string `json:"reasoning_content,omitempty"`
}

// toolCallsDelta carries a choice's parsed tool calls, after its text.
type toolCallsDelta struct {
	ToolCalls []any `json:"tool_calls"`
}

// textChunkChoice is a choice of a streamed "text_completion"; Logprobs is
// null unless logprobs were requested.
type textChunkChoice struct {
	FinishReason *string        `json:"finish_reason"`
	Index        int            `json:"index"`
	Logprobs     map[string]any `json:"logprobs"`
	Text         string         `json:"text"`
}

// jsonNull is the "usage" of a chunk before the usage chunk.
var jsonNull = json.RawMessage("null")

// chunk is a stream chunk of this request holding choices.
func (o *responder) chunk(choices any) *streamChunk {
	ch := &streamChunk{
		Choices: choices, Created: o.created, ID: o.id, Model: CanonicalModelID,
		Object: "chat.completion.chunk", SystemFingerprint: systemFingerprint,
	}
	if !o.isChat {
		ch.Object = "text_completion"
	}
	if o.g.IncludeUsage {
		ch.Usage = jsonNull
	}
	return ch
}

// streamDelta adds the frames for one event of choice c to o.frames.
func (o *responder) streamDelta(c *choice, reasoning, content string, done bool) {
	if o.isChat {
		if !c.started {
			c.started = true
			o.frame(o.chunk([]chatChunkChoice{{Index: c.index, Delta: roleDelta{Role: "assistant"}}}))
		}
		if reasoning != "" || content != "" {
			o.frame(o.chunk([]chatChunkChoice{{
				Index: c.index, Delta: contentDelta{ReasoningContent: reasoning, Content: content}, Logprobs: o.takeLogprobs(c),
			}}))
		}
		if done && len(c.calls) > 0 {
			o.frame(o.chunk([]chatChunkChoice{{Index: c.index, Delta: toolCallsDelta{toolCallsJSON(c.calls, true)}}}))
		}
		if done {
			last := o.chunk([]chatChunkChoice{{Index: c.index, Delta: struct{}{}, FinishReason: &c.finish, Logprobs: o.takeLogprobs(c)}})
			last.Timings = timingsJSON(c.timings)
			o.frame(last)
		}
		return
	}
	if content != "" {
		o.frame(o.chunk([]textChunkChoice{{Index: c.index, Text: content, Logprobs: o.takeLogprobs(c)}}))
	}
	if done {
		last := o.chunk([]textChunkChoice{{Index: c.index, FinishReason: &c.finish, Logprobs: o.takeLogprobs(c)}})
		last.Timings = timingsJSON(c.timings)
		o.frame(last)
	}
}

func (o *responder) usage() map[string]any {
	comp, reason := 0, 0
	for _, c := range o.choices {
		comp += c.tokens
		reason += c.reasonTok
	}
	return map[string]any{
		"prompt_tokens": o.promptN, "completion_tokens": comp, "total_tokens": o.promptN + comp,
		"prompt_tokens_details":     map[string]any{"cached_tokens": o.choices[0].timings.CacheN},
		"completion_tokens_details": map[string]any{"reasoning_tokens": reason},
	}
}

// finishStream sends the frames still pending, the usage chunk when asked
// for, and [DONE].
func (o *responder) finishStream() {
	if o.g.IncludeUsage {
		u := o.chunk([]any{})
		u.Usage = jsonString(o.usage())
		u.Timings = timingsJSON(o.choices[0].timings)
		o.frame(u)
	}
	o.openSSE()
	o.frames.WriteString("data: [DONE]\n\n")
	o.flush()
}

func (o *responder) writeFinal() {
	var out []any
	for _, c := range o.choices {
		if o.isChat {
			msg := map[string]any{"role": "assistant", "content": c.content.String()}
			if c.reasoning.Len() > 0 {
				msg["reasoning_content"] = c.reasoning.String()
			}
			if len(c.calls) > 0 {
				msg["tool_calls"] = toolCallsJSON(c.calls, false)
			}
			out = append(out, map[string]any{"index": c.index, "message": msg, "finish_reason": c.finish, "logprobs": o.takeLogprobs(c)})
		} else {
			out = append(out, map[string]any{"index": c.index, "text": c.content.String(), "logprobs": o.takeLogprobs(c), "finish_reason": c.finish})
		}
	}
	obj := "chat.completion"
	if !o.isChat {
		obj = "text_completion"
	}
	writeJSON(o.w, http.StatusOK, map[string]any{
		"id": o.id, "object": obj, "created": o.created, "model": CanonicalModelID,
		"system_fingerprint": systemFingerprint, "choices": out, "usage": o.usage(),
		"timings": timingsJSON(o.choices[0].timings),
	})
}

// toolCallsJSON renders calls as OpenAI tool_calls (with "index" in stream
// deltas).
func toolCallsJSON(calls []parsedToolCall, withIndex bool) []any {
	out := make([]any, len(calls))
	for i, c := range calls {
		m := map[string]any{"id": c.ID, "type": "function", "function": map[string]any{"name": c.Name, "arguments": c.Arguments}}
		if withIndex {
			m["index"] = i
		}
		out[i] = m
	}
	return out
}

// piece is the text of one token, as the streaming decoder prints it.
func (o *responder) piece(id int32) string {
	p, err := o.s.engine().Detokenize([]int32{id})
	if err != nil {
		return ""
	}
	return p
}

func byteList(s string) []int {
	b := make([]int, len(s))
	for i := 0; i < len(s); i++ {
		b[i] = int(s[i])
	}
	return b
}

// takeLogprobs renders and clears c's pending logprobs: chat's
// {"content":[{id,token,logprob,bytes,top_logprobs}]}, or the legacy
// {"tokens","token_logprobs","top_logprobs","text_offset"}; nil when the
// request asked for none.
func (o *responder) takeLogprobs(c *choice) map[string]any {
	if o.g.Logprobs < 0 {
		return nil
	}
	lps := c.lps
	c.lps = nil
	if o.isChat {
		content := make([]any, len(lps))
		for i, lp := range lps {
			p := o.piece(lp.ID)
			top := make([]any, len(lp.Top))
			for k, t := range lp.Top {
				tp := o.piece(t.ID)
				top[k] = map[string]any{"id": t.ID, "token": tp, "logprob": t.Logprob, "bytes": byteList(tp)}
			}
			content[i] = map[string]any{"id": lp.ID, "token": p, "logprob": lp.Logprob, "bytes": byteList(p), "top_logprobs": top}
		}
		return map[string]any{"content": content}
	}
	tokens := make([]string, len(lps))
	logps := make([]float32, len(lps))
	offsets := make([]int, len(lps))
	tops := make([]any, len(lps))
	for i, lp := range lps {
		tokens[i] = o.piece(lp.ID)
		logps[i] = lp.Logprob
		offsets[i] = c.textOff
		c.textOff += len(tokens[i])
		m := map[string]float32{}
		for _, t := range lp.Top {
			if _, dup := m[o.piece(t.ID)]; !dup {
				m[o.piece(t.ID)] = t.Logprob
			}
		}
		tops[i] = m
	}
	return map[string]any{"tokens": tokens, "token_logprobs": logps, "top_logprobs": tops, "text_offset": offsets}
}
