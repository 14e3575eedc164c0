package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/glmrun/glmrun/server"
)

// testServer is a server on a random loopback port.
type testServer struct {
	s    *server.Server
	url  string
	done chan error
}

// startServer serves cfg on 127.0.0.1:0; with eng != nil it is made ready.
func startServer(t testing.TB, cfg server.Config, eng server.Engine) *testServer {
	t.Helper()
	s, err := server.New(cfg)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ts := &testServer{s: s, url: "http://" + ln.Addr().String(), done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(ln) }()
	if eng != nil {
		require.NoError(t, s.Ready(eng))
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return ts
}

var httpClient = &http.Client{Timeout: 60 * time.Second}

// do sends a request and returns status, headers and body.
func do(t testing.TB, method, url, body string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := httpClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, b
}

func post(t testing.TB, url, body string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	return do(t, http.MethodPost, url, body, hdr...)
}

// jsonMap decodes b as a JSON object.
func jsonMap(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), "body: %s", b)
	return m
}

// errorOf returns the "error" object of an error response.
func errorOf(t testing.TB, b []byte) map[string]any {
	t.Helper()
	m := jsonMap(t, b)
	e, ok := m["error"].(map[string]any)
	require.True(t, ok, "no error object in %s", b)
	return e
}

// sseEvents splits an SSE body into its data payloads (comments dropped).
func sseEvents(t testing.TB, body []byte) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

// chatStream is a parsed chat completion stream.
type chatStream struct {
	chunks    []map[string]any
	reasoning string
	content   string
	finish    string
	usage     map[string]any
	done      bool // [DONE] was last
	roleFirst bool
}

func parseChatStream(t testing.TB, body []byte) chatStream {
	t.Helper()
	var cs chatStream
	evs := sseEvents(t, body)
	require.NotEmpty(t, evs)
	for i, e := range evs {
		if e == "[DONE]" {
			require.Equal(t, len(evs)-1, i, "[DONE] must be last")
			cs.done = true
			continue
		}
		m := jsonMap(t, []byte(e))
		cs.chunks = append(cs.chunks, m)
		if u, ok := m["usage"].(map[string]any); ok {
			cs.usage = u
		}
		choices, _ := m["choices"].([]any)
		for _, c := range choices {
			ch := c.(map[string]any)
			d, _ := ch["delta"].(map[string]any)
			if i == 0 && d["role"] == "assistant" {
				cs.roleFirst = true
			}
			if s, ok := d["reasoning_content"].(string); ok {
				cs.reasoning += s
			}
			if s, ok := d["content"].(string); ok {
				cs.content += s
			}
			if f, ok := ch["finish_reason"].(string); ok {
				cs.finish = f
			}
		}
	}
	return cs
}

// heapAfterGC returns the live heap after a full collection.
func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
