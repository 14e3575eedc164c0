package glm_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/glmrun/glmrun/internal/testdata"
	"github.com/glmrun/glmrun/server"
	"github.com/glmrun/glmrun/server/glm"
)

var (
	engOnce sync.Once
	engVal  *glm.Engine
	engErr  error
)

// tinyEngine loads glm-tiny Q4_K_M once per test binary.
func tinyEngine(t testing.TB) *glm.Engine {
	t.Helper()
	path := testdata.GLMTiny(t, "glm-tiny-q4_k_m.gguf")
	engOnce.Do(func() { engVal, engErr = glm.Open(path, glm.Options{}) })
	require.NoError(t, engErr)
	return engVal
}

// startTiny serves glm-tiny with cfg on a random loopback port and returns
// the base URL.
func startTiny(t testing.TB, cfg server.Config) (*server.Server, string) {
	t.Helper()
	eng := tinyEngine(t)
	s, err := server.New(cfg)
	require.NoError(t, err)
	require.NoError(t, s.Ready(eng))
	return s, serveOn(t, s)
}

// serveOn serves s on a random loopback port until the test ends and
// returns the base URL.
func serveOn(t testing.TB, s *server.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String()
}

var client = &http.Client{Timeout: 5 * time.Minute}

func post(t testing.TB, url, body string) (int, []byte) {
	t.Helper()
	resp, err := client.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func get(t testing.TB, url string) (int, []byte) {
	t.Helper()
	resp, err := client.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func jsonMap(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), "body: %s", b)
	return m
}

// streamResult is what one streamed chat completion delivered.
type streamResult struct {
	reasoning, content, finish string
	tokens                     int // completion_tokens from the usage chunk
	first, end                 time.Time
	done                       bool
}

// streamChunk holds the fields of a chat.completion.chunk that streamChat
// reads.
type streamChunk struct {
	Choices []struct {
		Delta struct {
			Content          *string `json:"content"`
			ReasoningContent *string `json:"reasoning_content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
}

// streamChat runs one streaming chat request and parses its events.
func streamChat(t testing.TB, url, body string) streamResult {
	t.Helper()
	var r streamResult
	resp, err := client.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	var reasoning, content strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		d, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
		if !ok {
			continue
		}
		if string(d) == "[DONE]" {
			r.done = true
			break
		}
		var m streamChunk
		require.NoError(t, json.Unmarshal(d, &m), "chunk: %s", d)
		if m.Usage != nil {
			r.tokens = m.Usage.CompletionTokens
		}
		for _, ch := range m.Choices {
			if (ch.Delta.ReasoningContent != nil || ch.Delta.Content != nil) && r.first.IsZero() {
				r.first = time.Now()
			}
			if s := ch.Delta.ReasoningContent; s != nil {
				reasoning.WriteString(*s)
			}
			if s := ch.Delta.Content; s != nil {
				content.WriteString(*s)
			}
			if ch.FinishReason != nil {
				r.finish = *ch.FinishReason
			}
		}
	}
	require.NoError(t, sc.Err())
	r.end = time.Now()
	r.reasoning, r.content = reasoning.String(), content.String()
	return r
}

// median returns the middle value of v (the upper middle one for an even
// count); v is not modified.
func median[T int64 | float64](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
