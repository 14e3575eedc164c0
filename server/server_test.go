package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/glmrun/glmrun/server"
)

const chatHi = `{"model":"glm-4.7-flash","messages":[{"role":"user","content":"Hi"}]}`

func TestHealthWhileLoadingThenReady(t *testing.T) {
	ts := startServer(t, server.Config{}, nil)
	code, _, body := do(t, "GET", ts.url+"/health", "")
	require.Equal(t, 503, code)
	m := jsonMap(t, body)
	assert.Equal(t, "loading", m["status"])
	assert.Equal(t, false, m["model_loaded"])
	code, hdr, body := post(t, ts.url+"/v1/chat/completions", chatHi)
	require.Equal(t, 503, code)
	assert.Equal(t, "Loading model", errorOf(t, body)["message"])
	assert.NotEmpty(t, hdr.Get("Retry-After"))

	require.NoError(t, ts.s.Ready(&fakeEngine{}))
	code, _, body = do(t, "GET", ts.url+"/health", "")
	require.Equal(t, 200, code)
	assert.JSONEq(t, `{"status":"ok","model_loaded":true}`, string(body))
	code, _, _ = do(t, "GET", ts.url+"/v1/health", "")
	assert.Equal(t, 200, code)
	require.Error(t, ts.s.Ready(&fakeEngine{}), "Ready twice must fail")
}

func TestModels(t *testing.T) {
	ts := startServer(t, server.Config{Aliases: []string{"glm-flash", "glm-4.7-flash"}}, &fakeEngine{})
	code, _, body := do(t, "GET", ts.url+"/v1/models", "")
	require.Equal(t, 200, code)
	m := jsonMap(t, body)
	assert.Equal(t, "list", m["object"])
	data := m["data"].([]any)
	require.Len(t, data, 2)
	assert.Equal(t, "glm-4.7-flash", data[0].(map[string]any)["id"])
	assert.Equal(t, "glm-flash", data[1].(map[string]any)["id"])
	assert.Equal(t, "model", data[0].(map[string]any)["object"])
	meta := data[0].(map[string]any)["meta"].(map[string]any)
	assert.EqualValues(t, fakeVocab, meta["n_vocab"])

	code, _, _ = do(t, "GET", ts.url+"/models", "")
	assert.Equal(t, 200, code)
	code, _, body = do(t, "GET", ts.url+"/v1/models/glm-flash", "")
	require.Equal(t, 200, code)
	assert.Equal(t, "glm-flash", jsonMap(t, body)["id"])
	code, _, body = do(t, "GET", ts.url+"/v1/models/gpt-4", "")
	require.Equal(t, 404, code)
	assert.Contains(t, errorOf(t, body)["message"], "model not found")

	// The alias is accepted for generation; the response names the canonical id.
	code, _, body = post(t, ts.url+"/v1/chat/completions", `{"model":"glm-flash","messages":[{"role":"user","content":"Hi"}]}`)
	require.Equal(t, 200, code, "%s", body)
	assert.Equal(t, "glm-4.7-flash", jsonMap(t, body)["model"])
}

func TestChatNonStream(t *testing.T) {
	eng := &fakeEngine{}
	ts := startServer(t, server.Config{}, eng)
	code, hdr, body := post(t, ts.url+"/v1/chat/completions", `{"model":"glm-4.7-flash","user":"x","store":false,
		"messages":[{"role":"system","content":"S"},{"role":"user","content":[{"type":"text","text":"H"},{"type":"text","text":"i"}]}]}`)
	require.Equal(t, 200, code, "%s", body)
	assert.Contains(t, hdr.Get("Content-Type"), "application/json")
	m := jsonMap(t, body)
	assert.Equal(t, "chat.completion", m["object"])
	assert.Regexp(t, `^chatcmpl-[A-Za-z0-9]{32}$`, m["id"])
	assert.Equal(t, "glm-4.7-flash", m["model"])
	ch := m["choices"].([]any)
	require.Len(t, ch, 1)
	c := ch[0].(map[string]any)
	assert.Equal(t, "stop", c["finish_reason"])
	msg := c["message"].(map[string]any)
	assert.Equal(t, "assistant", msg["role"])
	assert.Equal(t, fakeAnswer, msg["content"])
	assert.Equal(t, fakeReasoning, msg["reasoning_content"])

	prompt, _ := eng.RenderChat([]server.ChatMessage{{Role: "system", Content: "S"}, {Role: "user", Content: "Hi"}},
		server.ChatOptions{AddGenerationPrompt: true, EnableThinking: true})
	ids, _ := eng.Tokenize(prompt, true)
	u := m["usage"].(map[string]any)
	assert.EqualValues(t, len(ids), u["prompt_tokens"])
	assert.EqualValues(t, len(fakeReply), u["completion_tokens"])
	assert.EqualValues(t, len(ids)+len(fakeReply), u["total_tokens"])
	rt := u["completion_tokens_details"].(map[string]any)["reasoning_tokens"]
	// The reasoning plus </think> are reasoning tokens.
	assert.EqualValues(t, len(fakeReasoning)+1, rt)
	tm := m["timings"].(map[string]any)
	assert.EqualValues(t, len(fakeReply), tm["predicted_n"])
	assert.EqualValues(t, len(ids), tm["prompt_n"])
}

func TestChatStream(t *testing.T) {
	ts := startServer(t, server.Config{}, &fakeEngine{})
	code, hdr, body := post(t, ts.url+"/v1/chat/completions",
		`{"messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":true}}`)
	require.Equal(t, 200, code, "%s", body)
	assert.Equal(t, "text/event-stream", hdr.Get("Content-Type"))
	cs := parseChatStream(t, body)
	assert.True(t, cs.roleFirst, "the first chunk carries the role")
	assert.True(t, cs.done, "stream ends with [DONE]")
	assert.Equal(t, fakeReasoning, cs.reasoning)
	assert.Equal(t, fakeAnswer, cs.content)
	assert.Equal(t, "stop", cs.finish)
	require.NotNil(t, cs.usage)
	assert.EqualValues(t, len(fakeReply), cs.usage["completion_tokens"])
	id := cs.chunks[0]["id"]
	for i, c := range cs.chunks {
		assert.Equal(t, id, c["id"])
		assert.Equal(t, "chat.completion.chunk", c["object"])
		assert.Equal(t, "glm-4.7-flash", c["model"])
		_, has := c["usage"]
		assert.True(t, has, "chunk %d: with include_usage every chunk has a usage key", i)
	}
	last := cs.chunks[len(cs.chunks)-1]
	assert.Empty(t, last["choices"], "the usage chunk has no choices")
	// The final choice chunk: empty delta and the finish reason.
	fin := cs.chunks[len(cs.chunks)-2]["choices"].([]any)[0].(map[string]any)
	assert.Equal(t, map[string]any{}, fin["delta"])
	assert.Equal(t, "stop", fin["finish_reason"])

	// Without include_usage: no usage chunk and no usage keys.
	code, _, body = post(t, ts.url+"/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"stream":true}`)
	require.Equal(t, 200, code)
	cs = parseChatStream(t, body)
	assert.Nil(t, cs.usage)
	for _, c := range cs.chunks {
		_, has := c["usage"]
		assert.False(t, has)
	}
	assert.Equal(t, fakeAnswer, cs.content)
}

func TestReasoningOptions(t *testing.T) {
	ts := startServer(t, server.Config{}, &fakeEngine{})
	msg := func(body string) map[string]any {
		code, _, b := post(t, ts.url+"/v1/chat/completions", body)
		require.Equal(t, 200, code, "%s", b)
		return jsonMap(t, b)["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
	}
	m := msg(`{"messages":[{"role":"user","content":"Hi"}],"chat_template_kwargs":{"enable_thinking":false}}`)
	assert.Equal(t, fakeAnswer, m["content"])
	assert.NotContains(t, m, "reasoning_content")

	m = msg(`{"messages":[{"role":"user","content":"Hi"}],"reasoning_effort":"none"}`)
	assert.Equal(t, fakeAnswer, m["content"])

	m = msg(`{"messages":[{"role":"user","content":"Hi"}],"reasoning_format":"none"}`)
	assert.Equal(t, fakeReasoning+"</think>"+fakeAnswer, m["content"])
	assert.NotContains(t, m, "reasoning_content")

	m = msg(`{"messages":[{"role":"user","content":"Hi"}],"reasoning_format":"deepseek-legacy"}`)
	assert.Equal(t, "<think>"+fakeReasoning+"</think>"+fakeAnswer, m["content"])
	assert.Equal(t, fakeReasoning, m["reasoning_content"])

	// A budget of 5 tokens forces </think> after "Let m"; the rest is content.
	m = msg(`{"messages":[{"role":"user","content":"Hi"}],"reasoning_budget_tokens":5}`)
	assert.Equal(t, fakeReasoning[:5], m["reasoning_content"])
	assert.True(t, strings.HasPrefix(m["content"].(string), fakeReasoning[6:]), "content %q", m["content"])

	// A trailing assistant message is a prefill: no generation prompt, so
	// the fake continues its scripted answer after the prefill's 3 bytes.
	code, _, b := post(t, ts.url+"/v1/chat/completions",
		`{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"abc"}],"max_tokens":4}`)
	require.Equal(t, 200, code, "%s", b)
	c := jsonMap(t, b)["choices"].([]any)[0].(map[string]any)
	assert.Equal(t, fakeAnswer[3:7], c["message"].(map[string]any)["content"])
	assert.Equal(t, "length", c["finish_reason"])
}

func TestCompletions(t *testing.T) {
	ts := startServer(t, server.Config{}, &fakeEngine{})
	code, _, body := post(t, ts.url+"/v1/completions", `{"model":"glm-4.7-flash","prompt":"X","max_tokens":10}`)
	require.Equal(t, 200, code, "%s", body)
	m := jsonMap(t, body)
	assert.Equal(t, "text_completion", m["object"])
	assert.Regexp(t, `^cmpl-`, m["id"])
	c := m["choices"].([]any)[0].(map[string]any)
	assert.Equal(t, "abcdefghij", c["text"])
	assert.Equal(t, "length", c["finish_reason"])
	assert.EqualValues(t, 10, m["usage"].(map[string]any)["completion_tokens"])
	assert.EqualValues(t, 1, m["usage"].(map[string]any)["prompt_tokens"])

	// Stop strings end generation and are not included, also when streaming
	// and across token boundaries.
	code, _, body = post(t, ts.url+"/v1/completions", `{"prompt":"X","max_tokens":50,"stop":["zzz","fgh"]}`)
	require.Equal(t, 200, code)
	c = jsonMap(t, body)["choices"].([]any)[0].(map[string]any)
	assert.Equal(t, "abcde", c["text"])
	assert.Equal(t, "stop", c["finish_reason"])

	code, _, body = post(t, ts.url+"/v1/completions", `{"prompt":"X","max_tokens":50,"stop":"fgh","stream":true,"stream_options":{"include_usage":true}}`)
	require.Equal(t, 200, code)
	evs := sseEvents(t, body)
	require.Equal(t, "[DONE]", evs[len(evs)-1])
	text, finish := "", ""
	for _, e := range evs[:len(evs)-1] {
		m := jsonMap(t, []byte(e))
		assert.Equal(t, "text_completion", m["object"])
		for _, c := range m["choices"].([]any) {
			text += c.(map[string]any)["text"].(string)
			if f, ok := c.(map[string]any)["finish_reason"].(string); ok {
				finish = f
			}
		}
	}
	assert.Equal(t, "abcde", text)
	assert.Equal(t, "stop", finish)
	// A stop prefix that never completes is real output.
	code, _, body = post(t, ts.url+"/v1/completions", `{"prompt":"X","max_tokens":3,"stop":"cX"}`)
	require.Equal(t, 200, code)
	assert.Equal(t, "abc", jsonMap(t, body)["choices"].([]any)[0].(map[string]any)["text"])

	// Token-id prompts; max_tokens 0 only evaluates the prompt.
	code, _, body = post(t, ts.url+"/v1/completions", `{"prompt":[88,89],"max_tokens":3}`)
	require.Equal(t, 200, code, "%s", body)
	assert.Equal(t, "abc", jsonMap(t, body)["choices"].([]any)[0].(map[string]any)["text"])
	code, _, body = post(t, ts.url+"/v1/completions", `{"prompt":"X","max_tokens":0}`)
	require.Equal(t, 200, code, "%s", body)
	c = jsonMap(t, body)["choices"].([]any)[0].(map[string]any)
	assert.Equal(t, "", c["text"])
	assert.Equal(t, "length", c["finish_reason"])
}

func TestNChoices(t *testing.T) {
	ts := startServer(t, server.Config{MaxBatchSize: 4}, &fakeEngine{})
	code, _, body := post(t, ts.url+"/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"n":3}`)
	require.Equal(t, 200, code, "%s", body)
	ch := jsonMap(t, body)["choices"].([]any)
	require.Len(t, ch, 3)
	for i, c := range ch {
		assert.EqualValues(t, i, c.(map[string]any)["index"])
		assert.Equal(t, fakeAnswer, c.(map[string]any)["message"].(map[string]any)["content"])
	}
	code, _, body = post(t, ts.url+"/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"n":3,"stream":true}`)
	require.Equal(t, 200, code)
	per := map[float64]string{}
	for _, e := range sseEvents(t, body) {
		if e == "[DONE]" {
			continue
		}
		for _, c := range jsonMap(t, []byte(e))["choices"].([]any) {
			cm := c.(map[string]any)
			if s, ok := cm["delta"].(map[string]any)["content"].(string); ok {
				per[cm["index"].(float64)] += s
			}
		}
	}
	assert.Equal(t, map[float64]string{0: fakeAnswer, 1: fakeAnswer, 2: fakeAnswer}, per)
	code, _, body = post(t, ts.url+"/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"n":5}`)
	require.Equal(t, 400, code)
	assert.Equal(t, "Value must be between 1 <= value <= 4, but got 5", errorOf(t, body)["message"])
}

func TestErrors(t *testing.T) {
	ts := startServer(t, server.Config{MaxSeqLen: 64, MaxBodyBytes: 4096}, &fakeEngine{})
	cases := []struct {
		name, path, body string
		code             int
		typ, param, msg  string
	}{
		{"malformed", "/v1/chat/completions", `{"messages":[`, 400, "invalid_request_error", "", "malformed JSON"},
		{"not an object", "/v1/chat/completions", `[1,2]`, 400, "invalid_request_error", "", "JSON object"},
		{"trailing", "/v1/chat/completions", chatHi + `{}`, 400, "invalid_request_error", "", "trailing"},
		{"wrong type", "/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"temperature":"hot"}`, 400, "invalid_request_error", "temperature", "wrong type"},
		{"no messages", "/v1/chat/completions", `{"model":"glm-4.7-flash"}`, 400, "invalid_request_error", "messages", "required"},
		{"empty messages", "/v1/chat/completions", `{"messages":[]}`, 400, "invalid_request_error", "messages", "empty"},
		{"bad role", "/v1/chat/completions", `{"messages":[{"role":"robot","content":"x"}]}`, 400, "invalid_request_error", "messages[0].role", "unknown role"},
		{"user without content", "/v1/chat/completions", `{"messages":[{"role":"user"}]}`, 400, "invalid_request_error", "messages[0].content", "no 'content'"},
		{"image part", "/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, "invalid_request_error", "messages[0].content", "text"},
		{"two assistants", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"assistant","content":"c"}]}`, 400, "invalid_request_error", "messages", "two assistant"},
		{"n range", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"n":0}`, 400, "invalid_request_error", "n", "Value must be between"},
		{"top_logprobs alone", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"top_logprobs":2}`, 400, "invalid_request_error", "top_logprobs", "logprobs"},
		{"json mode", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"response_format":{"type":"json_object"}}`, 400, "invalid_request_error", "response_format", "not supported"},
		{"bad format", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"response_format":{"type":"xml"}}`, 400, "invalid_request_error", "response_format", "unknown"},
		{"bad stop", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"stop":5}`, 400, "invalid_request_error", "stop", "stop"},
		{"long stop", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"stop":["` + strings.Repeat("s", 1025) + `"]}`, 400, "invalid_request_error", "stop", "at most 1024"},
		{"bad max_tokens", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"max_tokens":-5}`, 400, "invalid_request_error", "max_tokens", "max_tokens"},
		{"bad reasoning_format", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"reasoning_format":"xml"}`, 400, "invalid_request_error", "reasoning_format", "reasoning_format"},
		{"bad logit_bias", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"logit_bias":{"99999":1}}`, 400, "invalid_request_error", "logit_bias", "vocabulary"},
		{"unknown model", "/v1/chat/completions", `{"model":"gpt-4","messages":[{"role":"user","content":"a"}]}`, 404, "not_found_error", "model", "model not found: 'gpt-4'"},
		{"unknown model completions", "/v1/completions", `{"model":"gpt-4","prompt":"a"}`, 404, "not_found_error", "model", "model not found"},
		{"too long", "/v1/chat/completions", `{"messages":[{"role":"user","content":"` + strings.Repeat("x", 100) + `"}]}`, 400, "exceed_context_size_error", "", "exceeds the available context size (64 tokens)"},
		{"too long completion", "/v1/completions", `{"prompt":"` + strings.Repeat("x", 64) + `"}`, 400, "exceed_context_size_error", "", "request (64 tokens)"},
		{"no prompt", "/v1/completions", `{"max_tokens":3}`, 400, "invalid_request_error", "prompt", "required"},
		{"several prompts", "/v1/completions", `{"prompt":["a","b"]}`, 400, "invalid_request_error", "prompt", "prompt"},
		{"body too large", "/v1/chat/completions", `{"messages":[{"role":"user","content":"` + strings.Repeat("x", 5000) + `"}]}`, 413, "invalid_request_error", "", "limit"},
		{"unknown route", "/v1/embeddings", `{}`, 404, "not_found_error", "", "File Not Found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, body := post(t, ts.url+c.path, c.body)
			require.Equal(t, c.code, code, "%s", body)
			e := errorOf(t, body)
			assert.EqualValues(t, c.code, e["code"])
			assert.Equal(t, c.typ, e["type"])
			assert.Contains(t, e["message"], c.msg)
			if c.param == "" {
				assert.Nil(t, e["param"])
			} else {
				assert.Equal(t, c.param, e["param"])
			}
		})
	}
	// exceed_context_size_error carries the counts.
	_, _, body := post(t, ts.url+"/v1/completions", `{"prompt":"`+strings.Repeat("x", 70)+`"}`)
	e := errorOf(t, body)
	assert.EqualValues(t, 70, e["n_prompt_tokens"])
	assert.EqualValues(t, 64, e["n_ctx"])
	// The server still works after every error.
	code, _, _ := post(t, ts.url+"/v1/chat/completions", chatHi)
	assert.Equal(t, 200, code)
	code, hdr, _ := do(t, "GET", ts.url+"/v1/chat/completions", "")
	assert.Equal(t, 405, code)
	assert.Equal(t, "POST", hdr.Get("Allow"))
}

func TestAPIKey(t *testing.T) {
	ts := startServer(t, server.Config{APIKeys: []string{"sekret"}}, &fakeEngine{})
	code, _, body := post(t, ts.url+"/v1/chat/completions", chatHi)
	require.Equal(t, 401, code)
	e := errorOf(t, body)
	assert.Equal(t, "authentication_error", e["type"])
	assert.Equal(t, "Invalid API Key", e["message"])
	code, _, _ = post(t, ts.url+"/v1/chat/completions", chatHi, "Authorization", "Bearer wrong")
	assert.Equal(t, 401, code)
	code, _, _ = do(t, "GET", ts.url+"/metrics", "")
	assert.Equal(t, 401, code)
	code, _, _ = post(t, ts.url+"/v1/chat/completions", chatHi, "Authorization", "Bearer sekret")
	assert.Equal(t, 200, code)
	code, _, _ = post(t, ts.url+"/v1/chat/completions", chatHi, "X-Api-Key", "sekret")
	assert.Equal(t, 200, code)
	for _, p := range []string{"/health", "/v1/health", "/v1/models", "/models"} {
		code, _, _ = do(t, "GET", ts.url+p, "")
		assert.Equal(t, 200, code, p)
	}
}

// metricValue extracts one sample from Prometheus text.
func metricValue(t testing.TB, text, name string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	require.NotNil(t, m, "metric %s missing in:\n%s", name, text)
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	return v
}

func getMetrics(t testing.TB, url string) string {
	t.Helper()
	code, hdr, body := do(t, "GET", url+"/metrics", "")
	require.Equal(t, 200, code)
	require.Equal(t, "text/plain; version=0.0.4", hdr.Get("Content-Type"))
	require.NotEmpty(t, hdr.Get("Process-Start-Time-Unix"))
	return string(body)
}

func TestMetrics(t *testing.T) {
	ts := startServer(t, server.Config{}, &fakeEngine{})
	text := getMetrics(t, ts.url)
	assert.Zero(t, metricValue(t, text, "throughput_tok_sec"))
	assert.Equal(t, 1.0, metricValue(t, text, "model_loaded"))
	for i := 0; i < 3; i++ {
		code, _, _ := post(t, ts.url+"/v1/completions", `{"prompt":"X","max_tokens":7}`)
		require.Equal(t, 200, code)
	}
	post(t, ts.url+"/v1/completions", `{"prompt":"X","max_tokens":-7}`) // a 4xx
	text = getMetrics(t, ts.url)
	assert.Equal(t, 21.0, metricValue(t, text, "llamacpp:tokens_predicted_total"))
	assert.Equal(t, 3.0, metricValue(t, text, "llamacpp:prompt_tokens_total"))
	assert.Greater(t, metricValue(t, text, "throughput_tok_sec"), 0.0)
	assert.Greater(t, metricValue(t, text, "avg_latency_ms"), 0.0)
	assert.GreaterOrEqual(t, metricValue(t, text, "llamacpp:n_decode_total"), 21.0)
	assert.Equal(t, 7.0, metricValue(t, text, "llamacpp:n_tokens_max"), "1 prompt token + 6 of 7 generated fed back (the last is not)")
	assert.Equal(t, 0.0, metricValue(t, text, "llamacpp:requests_processing"))
	assert.Equal(t, 0.0, metricValue(t, text, "llamacpp:requests_deferred"))
	assert.Equal(t, 1.0, metricValue(t, text, "llamacpp:n_busy_slots_per_decode"))
	assert.Equal(t, 3.0, metricValue(t, text, "time_to_first_token_ms_count"))
	assert.Equal(t, 4.0, metricValue(t, text, `requests_total{status="200"}`), "3 completions and the first /metrics")
	assert.Equal(t, 1.0, metricValue(t, text, `requests_total{status="4xx"}`))
	// Every metric has HELP and TYPE, and no name has two TYPEs.
	types := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[1] == "TYPE" {
			_, dup := types[f[2]]
			assert.False(t, dup, "TYPE repeated for %s", f[2])
			types[f[2]] = f[3]
		}
	}
	for _, n := range []string{"throughput_tok_sec", "avg_latency_ms", "llamacpp:prompt_tokens_total", "llamacpp:prompt_seconds_total",
		"llamacpp:tokens_predicted_seconds_total", "llamacpp:prompt_tokens_seconds", "llamacpp:predicted_tokens_seconds",
		"llamacpp:spec_decode_num_drafts_total", "time_to_first_token_ms", "queue_depth"} {
		assert.Contains(t, types, n)
	}
	assert.Equal(t, "histogram", types["time_to_first_token_ms"])
}

// TestContinuousBatching checks that concurrent requests share forward
// passes: 8 sequences decode together in one ForwardBatch call.
func TestContinuousBatching(t *testing.T) {
	t.Run("serial sampling", func(t *testing.T) { testContinuousBatching(t, 0) })
	// A large vocabulary makes the scheduler sample the slots in parallel.
	t.Run("parallel sampling", func(t *testing.T) { testContinuousBatching(t, 20000) })
}

func testContinuousBatching(t *testing.T, vocabPad int) {
	eng := &fakeEngine{stepDelay: 2 * time.Millisecond, vocabPad: vocabPad}
	ts := startServer(t, server.Config{MaxBatchSize: 8}, eng)
	var wg sync.WaitGroup
	texts := make([]string, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, body := post(t, ts.url+"/v1/completions", `{"prompt":"X","max_tokens":60}`)
			if assert.Equal(t, 200, code) {
				texts[i] = jsonMap(t, body)["choices"].([]any)[0].(map[string]any)["text"].(string)
			}
		}()
	}
	wg.Wait()
	for _, s := range texts {
		assert.Equal(t, strings.Repeat("abcdefghijklmnopqrstuvwxyz ", 3)[:60], s)
	}
	assert.Equal(t, int64(8), eng.maxSeqs.Load(), "8 sequences must share one forward pass")
	assert.Less(t, eng.calls.Load(), int64(8*60/2), "batched decoding needs far fewer passes than 8 x 60")
	text := getMetrics(t, ts.url)
	assert.Greater(t, metricValue(t, text, "llamacpp:n_busy_slots_per_decode"), 2.0)
}

// TestPrefillChunking checks that a long prompt is split into UBatch chunks
// while a generating slot keeps decoding.
func TestPrefillChunking(t *testing.T) {
	eng := &fakeEngine{}
	ts := startServer(t, server.Config{MaxBatchSize: 2, UBatch: 16}, eng)
	code, _, body := post(t, ts.url+"/v1/completions", `{"prompt":"`+strings.Repeat("Q", 200)+`","max_tokens":5}`)
	require.Equal(t, 200, code, "%s", body)
	assert.Equal(t, "abcde", jsonMap(t, body)["choices"].([]any)[0].(map[string]any)["text"])
	assert.LessOrEqual(t, eng.maxTokens.Load(), int64(16))
	assert.GreaterOrEqual(t, eng.calls.Load(), int64(200/16+5-1))
}

// TestBurst sends 100 parallel requests to 4 slots: all must be answered
// 200, most of them after waiting in the queue, and the heap must not grow
// from one burst to the next.
func TestBurst(t *testing.T) {
	eng := &fakeEngine{stepDelay: 500 * time.Microsecond}
	ts := startServer(t, server.Config{MaxBatchSize: 4}, eng)
	burst := func() {
		var wg sync.WaitGroup
		codes := make([]int, 100)
		for i := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := fmt.Sprintf(`{"messages":[{"role":"user","content":"req %d"}],"max_tokens":20,"stream":%v}`, i, i%2 == 0)
				codes[i], _, _ = post(t, ts.url+"/v1/chat/completions", body)
			}()
		}
		wg.Wait()
		for i, c := range codes {
			assert.Equal(t, 200, c, "request %d", i)
		}
	}
	burst()
	heap1 := heapAfterGC()
	burst()
	burst()
	heap2 := heapAfterGC()
	assert.Less(t, heap2, heap1+8<<20, "heap grew from %d to %d bytes over two bursts", heap1, heap2)
	text := getMetrics(t, ts.url)
	assert.Equal(t, 300.0, metricValue(t, text, `requests_total{status="200"}`))
	assert.GreaterOrEqual(t, metricValue(t, text, "queue_depth_peak"), 50.0, "most of a 100-request burst waits for one of 4 slots")
	assert.LessOrEqual(t, metricValue(t, text, "queue_depth_peak"), 99.0, "at least one request is admitted")
	assert.Equal(t, 4.0, float64(eng.maxSeqs.Load()))
}

// TestQueueFull fills one slot and a 2-deep queue: the next request gets
// 503 with Retry-After.
func TestQueueFull(t *testing.T) {
	eng := &fakeEngine{stepDelay: 2 * time.Millisecond}
	ts := startServer(t, server.Config{MaxBatchSize: 1, MaxQueue: 2}, eng)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, _ := post(t, ts.url+"/v1/completions", `{"prompt":"X","max_tokens":150}`)
			assert.Equal(t, 200, code)
		}()
	}
	waitFor(t, func() bool {
		text := getMetrics(t, ts.url)
		return metricValue(t, text, "llamacpp:requests_deferred") == 2 && metricValue(t, text, "llamacpp:requests_processing") == 1
	})
	code, hdr, body := post(t, ts.url+"/v1/completions", `{"prompt":"X","max_tokens":5}`)
	require.Equal(t, 503, code, "%s", body)
	assert.Equal(t, "unavailable_error", errorOf(t, body)["type"])
	assert.Equal(t, "1", hdr.Get("Retry-After"))
	wg.Wait()
	code, _, _ = post(t, ts.url+"/v1/completions", `{"prompt":"X","max_tokens":5}`)
	assert.Equal(t, 200, code, "the queue drains")
	assert.Equal(t, 1.0, metricValue(t, getMetrics(t, ts.url), "requests_rejected_total"))
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDisconnectFreesSlot cancels a never-ending stream on the only slot;
// the next request must get the slot.
func TestDisconnectFreesSlot(t *testing.T) {
	eng := &fakeEngine{stepDelay: time.Millisecond}
	ts := startServer(t, server.Config{MaxBatchSize: 1, MaxSeqLen: 100000}, eng)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.url+"/v1/completions", strings.NewReader(`{"prompt":"X","stream":true}`))
	resp, err := httpClient.Do(req)
	require.NoError(t, err)
	buf := make([]byte, 256)
	_, err = resp.Body.Read(buf)
	require.NoError(t, err)
	// A second request waits behind it...
	queued := make(chan int, 1)
	go func() {
		code, _, _ := post(t, ts.url+"/v1/completions", `{"prompt":"X","max_tokens":3}`)
		queued <- code
	}()
	waitFor(t, func() bool { return metricValue(t, getMetrics(t, ts.url), "llamacpp:requests_deferred") == 1 })
	// ...until the first client goes away.
	cancel()
	resp.Body.Close()
	select {
	case code := <-queued:
		assert.Equal(t, 200, code)
	case <-time.After(10 * time.Second):
		t.Fatal("the queued request never got the slot")
	}
	text := getMetrics(t, ts.url)
	assert.Equal(t, 1.0, metricValue(t, text, "requests_cancelled_total"))
	assert.Equal(t, 0.0, metricValue(t, text, "llamacpp:requests_processing"))
}

func TestComputeErrors(t *testing.T) {
	// The first pass fails: an ordinary 500 before any chunk.
	ts := startServer(t, server.Config{}, &fakeEngine{failAfter: 1})
	code, _, body := post(t, ts.url+"/v1/chat/completions", chatHi)
	require.Equal(t, 500, code)
	assert.Equal(t, "server_error", errorOf(t, body)["type"])
	code, hdr, body := post(t, ts.url+"/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"stream":true}`)
	require.Equal(t, 500, code, "an error before the first chunk is a normal HTTP error")
	assert.Contains(t, hdr.Get("Content-Type"), "application/json")
	assert.Contains(t, errorOf(t, body)["message"], "injected compute failure")

	// A failure after streaming started: an SSE error event, no [DONE].
	ts = startServer(t, server.Config{}, &fakeEngine{failAfter: 6})
	code, _, body = post(t, ts.url+"/v1/completions", `{"prompt":"X","max_tokens":50,"stream":true}`)
	require.Equal(t, 200, code)
	evs := sseEvents(t, body)
	require.NotEmpty(t, evs)
	last := evs[len(evs)-1]
	assert.NotEqual(t, "[DONE]", last)
	assert.Equal(t, "server_error", errorOf(t, []byte(last))["type"])
	assert.Greater(t, len(evs), 1, "some tokens were streamed before the failure")
}

func TestSSEKeepAlive(t *testing.T) {
	eng := &fakeEngine{stepDelay: 60 * time.Millisecond}
	ts := startServer(t, server.Config{SSEPingInterval: 10 * time.Millisecond}, eng)
	code, _, body := post(t, ts.url+"/v1/completions", `{"prompt":"X","max_tokens":2,"stream":true}`)
	require.Equal(t, 200, code)
	assert.True(t, strings.HasPrefix(string(body), ":\n\n"), "a keep-alive comment precedes the first chunk: %q", body)
	assert.Contains(t, string(body), "data: [DONE]\n\n")
}

// TestGracefulShutdown: a stream in flight when Shutdown starts still runs
// to [DONE]; afterwards the port refuses connections.
func TestGracefulShutdown(t *testing.T) {
	eng := &fakeEngine{stepDelay: 2 * time.Millisecond}
	ts := startServer(t, server.Config{}, eng)
	resp, err := httpClient.Post(ts.url+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"X","max_tokens":150,"stream":true}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	buf := make([]byte, 64)
	_, err = resp.Body.Read(buf)
	require.NoError(t, err)
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shut <- ts.s.Shutdown(ctx)
	}()
	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	all := string(buf) + string(rest)
	assert.True(t, strings.HasSuffix(all, "data: [DONE]\n\n"), "the in-flight stream completes")
	assert.Contains(t, all, `"finish_reason":"length"`)
	require.NoError(t, <-shut)
	require.NoError(t, <-ts.done)
	_, err = httpClient.Get(ts.url + "/health")
	assert.Error(t, err, "no longer listening")
}

func TestTokenizeAndTemplate(t *testing.T) {
	ts := startServer(t, server.Config{}, &fakeEngine{})
	code, _, body := post(t, ts.url+"/tokenize", `{"content":"<|user|>ab"}`)
	require.Equal(t, 200, code, "%s", body)
	assert.JSONEq(t, fmt.Sprintf(`{"tokens":[%d,97,98]}`, tokUser), string(body))
	code, _, body = post(t, ts.url+"/detokenize", `{"tokens":[97,98,99]}`)
	require.Equal(t, 200, code)
	assert.JSONEq(t, `{"content":"abc"}`, string(body))
	code, _, body = post(t, ts.url+"/apply-template", chatHi)
	require.Equal(t, 200, code)
	assert.Equal(t, "[gMASK]<sop><|user|>Hi<|assistant|><think>", jsonMap(t, body)["prompt"])
	code, _, body = do(t, "GET", ts.url+"/props", "")
	require.Equal(t, 200, code)
	assert.EqualValues(t, 8, jsonMap(t, body)["total_slots"])
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []server.Config{
		{MaxBatchSize: -1}, {MaxSeqLen: -1}, {UBatch: -2}, {MaxQueue: -1}, {ReasoningFormat: "xml"},
		{ChatTemplateKwargs: map[string]any{"enable_thinking": "yes"}},
	} {
		_, err := server.New(c)
		assert.Error(t, err, "%+v", c)
	}
	s, err := server.New(server.Config{MaxSeqLen: 1000, CtxSize: 500})
	require.NoError(t, err)
	assert.Error(t, s.Ready(&fakeEngine{}), "ctx-size below max-seq-len")
	s, err = server.New(server.Config{})
	require.NoError(t, err)
	require.NoError(t, s.Ready(&fakeEngine{}))
	assert.Equal(t, 4096, s.MaxSeqLen(), "defaults to the model's n_ctx_train (capped at 32768)")
}

// TestPromptCache: a request whose prompt shares a prefix with what a free
// slot's cache holds evaluates only the rest, and gives the same output.
func TestPromptCache(t *testing.T) {
	eng := &fakeEngine{}
	ts := startServer(t, server.Config{MaxBatchSize: 1}, eng)
	chat := func(body string) (map[string]any, map[string]any) {
		code, _, b := post(t, ts.url+"/v1/chat/completions", body)
		require.Equal(t, 200, code, "%s", b)
		m := jsonMap(t, b)
		return m["choices"].([]any)[0].(map[string]any)["message"].(map[string]any), m["usage"].(map[string]any)
	}
	cached := func(u map[string]any) float64 {
		return u["prompt_tokens_details"].(map[string]any)["cached_tokens"].(float64)
	}
	first, u1 := chat(chatHi)
	assert.Zero(t, cached(u1))
	before := eng.tokensIn.Load()
	second, u2 := chat(chatHi)
	assert.Equal(t, first, second, "a cached prefix gives the same output")
	assert.Equal(t, u1["prompt_tokens"].(float64)-1, cached(u2), "all but the last prompt token come from the cache")
	// Evaluated: 1 prompt token + every generated token but the last.
	assert.Equal(t, int64(1+len(fakeReply)-1), eng.tokensIn.Load()-before)

	// The next turn of the conversation reuses the shared prefix.
	turn := `{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"` + fakeAnswer + `"},{"role":"user","content":"More"}]}`
	third, u3 := chat(turn)
	assert.Equal(t, fakeAnswer, third["content"])
	prefix, _ := eng.Tokenize("[gMASK]<sop><|user|>Hi<|assistant|>", true)
	assert.Equal(t, float64(len(prefix)), cached(u3))

	// cache_prompt:false evaluates everything.
	_, u4 := chat(`{"messages":[{"role":"user","content":"Hi"}],"cache_prompt":false}`)
	assert.Zero(t, cached(u4))
	// A different conversation shares only "[gMASK]<sop><|user|>".
	other, u5 := chat(`{"messages":[{"role":"user","content":"Bye"}]}`)
	assert.Equal(t, fakeAnswer, other["content"])
	assert.Equal(t, 3.0, cached(u5))
}

// TestToolCalls: with tools in the request, GLM's <tool_call> markup in the
// output becomes OpenAI tool_calls and finish_reason "tool_calls".
func TestToolCalls(t *testing.T) {
	answer := "Checking.<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value><arg_key>days</arg_key><arg_value>2</arg_value></tool_call>"
	ts := startServer(t, server.Config{}, &fakeEngine{answer: answer})
	req := `{"messages":[{"role":"user","content":"Weather?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]`
	code, _, body := post(t, ts.url+"/v1/chat/completions", req+`}`)
	require.Equal(t, 200, code, "%s", body)
	c := jsonMap(t, body)["choices"].([]any)[0].(map[string]any)
	assert.Equal(t, "tool_calls", c["finish_reason"])
	msg := c["message"].(map[string]any)
	assert.Equal(t, "Checking.", msg["content"])
	assert.Equal(t, fakeReasoning, msg["reasoning_content"])
	calls := msg["tool_calls"].([]any)
	require.Len(t, calls, 1)
	call := calls[0].(map[string]any)
	assert.Equal(t, "function", call["type"])
	assert.NotEmpty(t, call["id"])
	fn := call["function"].(map[string]any)
	assert.Equal(t, "get_weather", fn["name"])
	assert.JSONEq(t, `{"city":"Paris","days":2}`, fn["arguments"].(string))

	code, _, body = post(t, ts.url+"/v1/chat/completions", req+`,"stream":true}`)
	require.Equal(t, 200, code)
	cs := parseChatStream(t, body)
	assert.Equal(t, "Checking.", cs.content)
	assert.Equal(t, "tool_calls", cs.finish)
	found := false
	for _, ch := range cs.chunks {
		for _, x := range ch["choices"].([]any) {
			if tc, ok := x.(map[string]any)["delta"].(map[string]any)["tool_calls"].([]any); ok {
				found = true
				f := tc[0].(map[string]any)
				assert.EqualValues(t, 0, f["index"])
				assert.Equal(t, "get_weather", f["function"].(map[string]any)["name"])
			}
		}
	}
	assert.True(t, found, "a tool_calls delta was streamed")

	// Without tools the markup is plain content.
	code, _, body = post(t, ts.url+"/v1/chat/completions", `{"messages":[{"role":"user","content":"Weather?"}]}`)
	require.Equal(t, 200, code)
	c = jsonMap(t, body)["choices"].([]any)[0].(map[string]any)
	assert.Equal(t, answer, c["message"].(map[string]any)["content"])
	assert.Equal(t, "stop", c["finish_reason"])
}

// gpuFake is a fake engine that reports device memory.
type gpuFake struct{ *fakeEngine }

func (gpuFake) DeviceMemory() (used, total uint64, ok bool) { return 3 << 30, 80 << 30, true }

func TestGPUMemoryMetric(t *testing.T) {
	ts := startServer(t, server.Config{}, &fakeEngine{})
	assert.NotContains(t, getMetrics(t, ts.url), "gpu_memory_used_bytes", "a CPU engine reports no GPU memory")
	ts = startServer(t, server.Config{}, gpuFake{&fakeEngine{}})
	text := getMetrics(t, ts.url)
	assert.Equal(t, float64(3<<30), metricValue(t, text, "gpu_memory_used_bytes"))
	assert.Equal(t, float64(80<<30), metricValue(t, text, "gpu_memory_total_bytes"))
}

// TestLogprobs: the fake's logits are 10 for the scripted token and 0
// elsewhere, so every chosen token has logprob 10 - log(e^10 + V - 1).
func TestLogprobs(t *testing.T) {
	ts := startServer(t, server.Config{}, &fakeEngine{})
	want := 10 - math.Log(math.Exp(10)+float64(fakeVocab-1))
	rest := 0 - math.Log(math.Exp(10)+float64(fakeVocab-1))

	code, _, body := post(t, ts.url+"/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"logprobs":true,"top_logprobs":2}`)
	require.Equal(t, 200, code, "%s", body)
	c := jsonMap(t, body)["choices"].([]any)[0].(map[string]any)
	content := c["logprobs"].(map[string]any)["content"].([]any)
	require.Len(t, content, len(fakeReply)-1, "one entry per generated token, the end-of-generation token excepted")
	var text []byte // from "bytes": a token may hold part of a UTF-8 character
	for _, e := range content {
		m := e.(map[string]any)
		assert.InDelta(t, want, m["logprob"], 1e-5)
		top := m["top_logprobs"].([]any)
		require.Len(t, top, 2)
		assert.Equal(t, m["id"], top[0].(map[string]any)["id"], "the chosen token is the most likely")
		assert.InDelta(t, rest, top[1].(map[string]any)["logprob"], 1e-5)
		for _, b := range m["bytes"].([]any) {
			text = append(text, byte(b.(float64)))
		}
	}
	assert.Equal(t, fakeReasoning+"</think>"+fakeAnswer, string(text))

	// Streamed: the entries arrive with the deltas.
	code, _, body = post(t, ts.url+"/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"logprobs":true,"stream":true}`)
	require.Equal(t, 200, code)
	n := 0
	for _, e := range sseEvents(t, body) {
		if e == "[DONE]" {
			continue
		}
		for _, ch := range jsonMap(t, []byte(e))["choices"].([]any) {
			if lp, ok := ch.(map[string]any)["logprobs"].(map[string]any); ok {
				for _, x := range lp["content"].([]any) {
					assert.Empty(t, x.(map[string]any)["top_logprobs"])
					n++
				}
			}
		}
	}
	assert.Equal(t, len(fakeReply)-1, n)

	// Legacy completions: tokens, token_logprobs, top_logprobs, text_offset.
	code, _, body = post(t, ts.url+"/v1/completions", `{"prompt":"X","max_tokens":3,"logprobs":2}`)
	require.Equal(t, 200, code, "%s", body)
	lp := jsonMap(t, body)["choices"].([]any)[0].(map[string]any)["logprobs"].(map[string]any)
	assert.Equal(t, []any{"a", "b", "c"}, lp["tokens"])
	assert.Equal(t, []any{0.0, 1.0, 2.0}, lp["text_offset"])
	for _, v := range lp["token_logprobs"].([]any) {
		assert.InDelta(t, want, v, 1e-5)
	}
	top := lp["top_logprobs"].([]any)[1].(map[string]any)
	assert.InDelta(t, want, top["b"], 1e-5)
	assert.Len(t, top, 2)

	// Without logprobs the field is null; bad values are 400.
	code, _, body = post(t, ts.url+"/v1/completions", `{"prompt":"X","max_tokens":1}`)
	require.Equal(t, 200, code)
	assert.Nil(t, jsonMap(t, body)["choices"].([]any)[0].(map[string]any)["logprobs"])
	code, _, _ = post(t, ts.url+"/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"logprobs":true,"top_logprobs":21}`)
	assert.Equal(t, 400, code)
}

func TestCORS(t *testing.T) {
	ts := startServer(t, server.Config{APIKeys: []string{"k"}}, &fakeEngine{})
	code, hdr, _ := do(t, "OPTIONS", ts.url+"/v1/chat/completions", "", "Origin", "http://example.test",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
	assert.Equal(t, 204, code, "a preflight needs no API key")
	assert.Equal(t, "*", hdr.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "authorization, content-type", hdr.Get("Access-Control-Allow-Headers"))
	assert.Contains(t, hdr.Get("Access-Control-Allow-Methods"), "POST")
	code, hdr, _ = post(t, ts.url+"/v1/chat/completions", chatHi, "Origin", "http://example.test", "Authorization", "Bearer k")
	assert.Equal(t, 200, code)
	assert.Equal(t, "*", hdr.Get("Access-Control-Allow-Origin"))
}

func TestSlots(t *testing.T) {
	eng := &fakeEngine{stepDelay: time.Millisecond}
	ts := startServer(t, server.Config{MaxBatchSize: 2, MaxSeqLen: 100000}, eng)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.url+"/v1/completions", strings.NewReader(`{"prompt":"XYZ","stream":true}`))
	resp, err := httpClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var slots []map[string]any
	waitFor(t, func() bool {
		code, _, body := do(t, "GET", ts.url+"/slots", "")
		require.Equal(t, 200, code)
		slots = nil
		require.NoError(t, json.Unmarshal(body, &slots))
		return len(slots) == 2 && slots[0]["is_processing"] == true && slots[0]["n_decoded"].(float64) > 3
	})
	assert.EqualValues(t, 3, slots[0]["n_prompt_tokens"])
	assert.EqualValues(t, 100000, slots[0]["n_ctx"])
	assert.Greater(t, slots[0]["n_past"].(float64), 3.0)
	assert.Equal(t, false, slots[1]["is_processing"])
}

func TestLogRequests(t *testing.T) {
	var buf syncBuffer
	ts := startServer(t, server.Config{Log: log.New(&buf, "", 0), LogRequests: true}, &fakeEngine{})
	post(t, ts.url+"/v1/chat/completions", chatHi)
	do(t, "GET", ts.url+"/nope", "")
	assert.Regexp(t, `POST /v1/chat/completions -> 200 in `, buf.String())
	assert.Regexp(t, `GET /nope -> 404 in `, buf.String())
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
