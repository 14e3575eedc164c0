package server_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/glmrun/glmrun/server"
)

// updateGolden rewrites testdata/sse/*.txt from the current server's output.
var updateGolden = flag.Bool("update", false, "rewrite the SSE golden files under testdata/sse")

// sseNormalizers replace what varies between runs (random ids, the clock,
// measured durations) with fixed text; everything else in a stream is
// deterministic with the fake engine.
var sseNormalizers = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`"id":"(chatcmpl-|cmpl-|call_)[A-Za-z0-9]+"`), `"id":"${1}ID"`},
	{regexp.MustCompile(`"created":[0-9]+`), `"created":0`},
	{regexp.MustCompile(`"(prompt_ms|prompt_per_token_ms|prompt_per_second|predicted_ms|predicted_per_token_ms|predicted_per_second)":[-+.0-9eE]+`), `"$1":0`},
}

// sseFrames splits an SSE body into its frames, each with its "\n\n".
func sseFrames(t *testing.T, body []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(body) > 0 {
		k := bytes.Index(body, []byte("\n\n"))
		require.GreaterOrEqual(t, k, 0, "unterminated SSE frame %q", body)
		out = append(out, body[:k+2])
		body = body[k+2:]
	}
	return out
}

// byChoice stably orders a stream's frames by the index of the choice they
// carry, frames without one (usage, [DONE], errors) last: the choices of an
// n > 1 request interleave as their tokens happen to arrive, but each
// choice's own frames keep their order.
func byChoice(t *testing.T, frames [][]byte) [][]byte {
	t.Helper()
	key := func(f []byte) int {
		var c struct {
			Choices []struct {
				Index int `json:"index"`
			} `json:"choices"`
		}
		d, ok := bytes.CutPrefix(bytes.TrimSuffix(f, []byte("\n\n")), []byte("data: "))
		if !ok || json.Unmarshal(d, &c) != nil || len(c.Choices) == 0 {
			return 1 << 30
		}
		require.Len(t, c.Choices, 1, "one choice per chunk: %s", f)
		return c.Choices[0].Index
	}
	out := slices.Clone(frames)
	slices.SortStableFunc(out, func(a, b []byte) int { return key(a) - key(b) })
	return out
}

// TestSSEStreamGolden pins the exact bytes of streamed answers (the data
// frames, their JSON key order, the null and absent fields, the final
// usage and [DONE]) against testdata/sse, with ids, timestamps and
// measured durations normalized. Rewrite the files with -update only when
// a change to the wire format is intended.
func TestSSEStreamGolden(t *testing.T) {
	tools := `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]`
	toolAnswer := "Checking.<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value></tool_call>"
	cases := []struct {
		name, path, body string
		eng              *fakeEngine
		sortChoices      bool
	}{
		{name: "chat_reasoning_usage", path: "/v1/chat/completions",
			body: `{"messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":true}}`},
		{name: "chat_reasoning", path: "/v1/chat/completions",
			body: `{"messages":[{"role":"user","content":"Hi"}],"stream":true}`},
		{name: "chat_no_thinking_usage", path: "/v1/chat/completions",
			body: `{"messages":[{"role":"user","content":"Hi"}],"chat_template_kwargs":{"enable_thinking":false},"stream":true,"stream_options":{"include_usage":true}}`},
		{name: "chat_reasoning_format_none", path: "/v1/chat/completions",
			body: `{"messages":[{"role":"user","content":"Hi"}],"reasoning_format":"none","stream":true}`},
		{name: "chat_reasoning_format_legacy", path: "/v1/chat/completions",
			body: `{"messages":[{"role":"user","content":"Hi"}],"reasoning_format":"deepseek-legacy","stream":true}`},
		{name: "chat_logprobs_usage", path: "/v1/chat/completions",
			body: `{"messages":[{"role":"user","content":"Hi"}],"logprobs":true,"top_logprobs":2,"stream":true,"stream_options":{"include_usage":true}}`},
		{name: "chat_max_tokens", path: "/v1/chat/completions",
			body: `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"stream":true}`},
		{name: "chat_tool_calls_usage", path: "/v1/chat/completions", eng: &fakeEngine{answer: toolAnswer},
			body: `{"messages":[{"role":"user","content":"Weather?"}],` + tools + `,"stream":true,"stream_options":{"include_usage":true}}`},
		{name: "chat_n2_usage", path: "/v1/chat/completions", sortChoices: true,
			body: `{"messages":[{"role":"user","content":"Hi"}],"n":2,"stream":true,"stream_options":{"include_usage":true}}`},
		{name: "completion", path: "/v1/completions",
			body: `{"prompt":"X","max_tokens":5,"stream":true}`},
		{name: "completion_usage_stop", path: "/v1/completions",
			body: `{"prompt":"X","max_tokens":50,"stop":"fgh","stream":true,"stream_options":{"include_usage":true}}`},
		{name: "completion_logprobs", path: "/v1/completions",
			body: `{"prompt":"X","max_tokens":4,"logprobs":2,"stream":true}`},
		{name: "completion_error", path: "/v1/completions", eng: &fakeEngine{failAfter: 6},
			body: `{"prompt":"X","max_tokens":50,"stream":true}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eng := tc.eng
			if eng == nil {
				eng = &fakeEngine{}
			}
			// No keep-alive comment may fall into a stream.
			ts := startServer(t, server.Config{SSEPingInterval: time.Hour}, eng)
			code, hdr, body := post(t, ts.url+tc.path, tc.body)
			require.Equal(t, 200, code, "%s", body)
			require.Equal(t, "text/event-stream", hdr.Get("Content-Type"))
			for _, n := range sseNormalizers {
				body = n.re.ReplaceAll(body, []byte(n.repl))
			}
			if tc.sortChoices {
				body = bytes.Join(byChoice(t, sseFrames(t, body)), nil)
			}
			path := filepath.Join("testdata", "sse", tc.name+".txt")
			if *updateGolden {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, body, 0o644))
				return
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run with -update to record the golden file")
			require.Equal(t, string(want), string(body))
		})
	}
}
