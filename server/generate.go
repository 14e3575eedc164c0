package server

import (
	"context"
	"crypto/rand"
	"encoding/binary"
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
				if o.g.Stream && !o.streamDelta(c, re, co, ev.Done) {
					return
				}
			}
		}
	}
	if o.g.Stream {
		o.finishStream()
		return
	}
	o.writeFinal()
}

// fail answers a compute error: an HTTP error before the stream started,
// else an SSE error event and no [DONE].
func (o *responder) fail(err error) {
	e := computeError(err)
	o.s.cfg.Log.Printf("request %s failed: %v", o.id, err)
	if !o.sseOpen {
		writeError(o.w, e)
		return
	}
	_ = o.write(append(append([]byte("data: "), jsonString(e)...), '\n', '\n'))
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

func (o *responder) sendData(v any) bool {
	if !o.openSSE() {
		return false
	}
	b := append(append([]byte("data: "), jsonString(v)...), '\n', '\n')
	return o.write(b) == nil
}

func (o *responder) chunk(choices []any) map[string]any {
	obj := "chat.completion.chunk"
	if !o.isChat {
		obj = "text_completion"
	}
	m := map[string]any{
		"id": o.id, "object": obj, "created": o.created, "model": CanonicalModelID,
		"system_fingerprint": systemFingerprint, "choices": choices,
	}
	if o.g.IncludeUsage {
		m["usage"] = nil
	}
	return m
}

// streamDelta sends the chunks for one event of choice c.
func (o *responder) streamDelta(c *choice, reasoning, content string, done bool) bool {
	if o.isChat {
		if !c.started {
			c.started = true
			first := map[string]any{"index": c.index, "delta": map[string]any{"role": "assistant", "content": nil}, "finish_reason": nil}
			if !o.sendData(o.chunk([]any{first})) {
				return false
			}
		}
		if reasoning != "" || content != "" {
			delta := map[string]any{}
			if reasoning != "" {
				delta["reasoning_content"] = reasoning
			}
			if content != "" {
				delta["content"] = content
			}
			ch := map[string]any{"index": c.index, "delta": delta, "finish_reason": nil}
			o.attachLogprobs(c, ch)
			if !o.sendData(o.chunk([]any{ch})) {
				return false
			}
		}
		if done && len(c.calls) > 0 {
			if !o.sendData(o.chunk([]any{map[string]any{"index": c.index, "delta": map[string]any{"tool_calls": toolCallsJSON(c.calls, true)}, "finish_reason": nil}})) {
				return false
			}
		}
		if done {
			ch := map[string]any{"index": c.index, "delta": map[string]any{}, "finish_reason": c.finish}
			o.attachLogprobs(c, ch)
			last := o.chunk([]any{ch})
			last["timings"] = timingsJSON(c.timings)
			return o.sendData(last)
		}
		return true
	}
	if content != "" {
		ch := map[string]any{"index": c.index, "text": content, "logprobs": nil, "finish_reason": nil}
		o.attachLogprobs(c, ch)
		if !o.sendData(o.chunk([]any{ch})) {
			return false
		}
	}
	if done {
		ch := map[string]any{"index": c.index, "text": "", "logprobs": nil, "finish_reason": c.finish}
		o.attachLogprobs(c, ch)
		last := o.chunk([]any{ch})
		last["timings"] = timingsJSON(c.timings)
		return o.sendData(last)
	}
	return true
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

func (o *responder) finishStream() {
	if o.g.IncludeUsage {
		u := o.chunk([]any{})
		u["usage"] = o.usage()
		u["timings"] = timingsJSON(o.choices[0].timings)
		if !o.sendData(u) {
			return
		}
	}
	_ = o.write([]byte("data: [DONE]\n\n"))
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
			ch := map[string]any{"index": c.index, "message": msg, "finish_reason": c.finish, "logprobs": nil}
			o.attachLogprobs(c, ch)
			out = append(out, ch)
		} else {
			ch := map[string]any{"index": c.index, "text": c.content.String(), "logprobs": nil, "finish_reason": c.finish}
			o.attachLogprobs(c, ch)
			out = append(out, ch)
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

// attachLogprobs moves c's pending logprobs into choice object ch: chat's
// {"content":[{id,token,logprob,bytes,top_logprobs}]}, or the legacy
// {"tokens","token_logprobs","top_logprobs","text_offset"}.
func (o *responder) attachLogprobs(c *choice, ch map[string]any) {
	if o.g.Logprobs < 0 {
		return
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
		ch["logprobs"] = map[string]any{"content": content}
		return
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
	ch["logprobs"] = map[string]any{"tokens": tokens, "token_logprobs": logps, "top_logprobs": tops, "text_offset": offsets}
}
