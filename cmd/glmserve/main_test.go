package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/cli"
	"github.com/glmrun/glmrun/internal/testdata"
)

// syncBuffer is a goroutine-safe bytes.Buffer for the server's logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
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

func TestFlagErrors(t *testing.T) {
	dir := t.TempDir()
	bogus := filepath.Join(dir, "not-a-model.gguf")
	require.NoError(t, os.WriteFile(bogus, []byte("this is not GGUF"), 0o644))
	m := "model.gguf"
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "error: invalid parameter for argument: --bogus"},
		{[]string{}, "error: invalid parameter for argument: --model-path"},
		{[]string{"-m", m, "--port", "70000"}, "error: invalid parameter for argument: --port"},
		{[]string{"-m", m, "--port", "x"}, "error: invalid parameter for argument: --port"},
		{[]string{"-m", m, "--max-batch-size", "0"}, "error: invalid parameter for argument: --max-batch-size"},
		{[]string{"-m", m, "-np", "4", "--max-seq-len", "100", "-c", "1000"}, "disagrees with --max-batch-size 4 x --max-seq-len 100 = 400"},
		{[]string{"-m", m, "--device", "metal"}, "not available in this build"},
		{[]string{"-m", m, "--device", "cuda", "-ngl", "0"}, "contradicts --device cuda"},
		{[]string{"-m", m, "-ctk", "f32", "-ctv", "f16"}, "error: invalid parameter for argument: --cache-type-v"},
		{[]string{"-m", m, "--device", "tpu"}, "error: invalid parameter for argument: --device"},
		{[]string{"-m", m, "-t", "0"}, "error: invalid parameter for argument: --threads"},
		{[]string{"-m", m, "--reasoning-format", "xml"}, "error: invalid parameter for argument: --reasoning-format"},
		{[]string{"-m", m, "--chat-template-kwargs", "{bad"}, "error: invalid parameter for argument: --chat-template-kwargs"},
		{[]string{"-m", m, "-ctk", "q4_0"}, "error: invalid parameter for argument: --cache-type-k"},
		{[]string{"-m", m, "-nocb", "--max-batch-size", "4"}, "contradicts --max-batch-size 4"},
		{[]string{"-m", m, "-nocb", "-np", "4"}, "contradicts --max-batch-size 4"},
		{[]string{"-m", m, "--chat-template-kwargs", `{"enable_thinking":"false"}`}, "enable_thinking must be a boolean"},
		{[]string{"-m", m, "--reasoning", "off", "--chat-template-kwargs", `{"enable_thinking":true}`}, "contradicts --reasoning off"},
		{[]string{"-m", m, "--api-key-file", filepath.Join(dir, "missing")}, "error: invalid parameter for argument: --api-key-file"},
		{[]string{"-m", m, "extra"}, "unexpected argument"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb, nil)
		assert.Equal(t, 1, code, "%v", c.args)
		assert.Contains(t, errb.String(), c.want, "%v", c.args)
		assert.Contains(t, errb.String(), "usage: glmserve", "%v: usage follows the error", c.args)
	}
	// A file that is not a model is a load error, not a usage error.
	var out, errb bytes.Buffer
	assert.Equal(t, 1, run([]string{"--model-path", bogus}, &out, &errb, nil))
	assert.Contains(t, errb.String(), "error: failed to load model '"+bogus+"'")
	errb.Reset()
	assert.Equal(t, 1, run([]string{"--model-path", filepath.Join(dir, "absent.gguf")}, &out, &errb, nil))
	assert.Contains(t, errb.String(), "failed to load model")

	out.Reset()
	assert.Equal(t, 0, run([]string{"-h"}, &out, &errb, nil))
	assert.Contains(t, out.String(), "--max-batch-size")
	assert.Contains(t, out.String(), "--model-path")
}

func TestResolveContext(t *testing.T) {
	var o options
	fs := newFlags(&o)
	require.NoError(t, cli.Parse(fs, []string{"-m", "x", "-np", "4", "-c", "8192"}))
	require.NoError(t, o.validate(fs))
	assert.Equal(t, 2048, o.maxSeqLen, "-c alone splits over the slots, as llama-server's -c/-np")
	o = options{}
	fs = newFlags(&o)
	require.NoError(t, cli.Parse(fs, []string{"-m", "x", "-nocb"}))
	require.NoError(t, o.validate(fs))
	assert.Equal(t, 1, o.maxBatch)
}

// TestServeGLMTiny starts glmserve on glm-tiny (port 0), checks the start-up
// log lines, serves a request, and shuts down gracefully on SIGTERM while a
// stream is in flight: the stream still ends with [DONE].
func TestServeGLMTiny(t *testing.T) {
	model := testdata.GLMTiny(t, "glm-tiny-q4_k_m.gguf")
	var stdout, stderr syncBuffer
	sig := make(chan os.Signal, 2)
	exit := make(chan int, 1)
	go func() {
		exit <- run([]string{"--model-path", model, "--host", "127.0.0.1", "--port", "0",
			"--max-batch-size", "4", "--max-seq-len", "512", "--alias", "tiny", "-t", "2", "-v"}, &stdout, &stderr, sig)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(stderr.String(), "Ready to serve requests!") {
		select {
		case code := <-exit:
			t.Fatalf("glmserve exited with %d:\n%s", code, stderr.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "not ready within 60 s:\n%s", stderr.String())
		time.Sleep(20 * time.Millisecond)
	}
	logs := stderr.String()
	assert.Contains(t, logs, "Model path verified")
	assert.Contains(t, logs, "device: cpu")
	addr := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(logs)
	require.NotNil(t, addr, logs)
	url := addr[1]

	resp, err := http.Get(url + "/health")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.JSONEq(t, `{"status":"ok","model_loaded":true}`, string(b))

	resp, err = http.Post(url+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"tiny","messages":[{"role":"user","content":"Hi"}],"max_tokens":4}`))
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, "%s", b)
	assert.Contains(t, string(b), `"model":"glm-4.7-flash"`)

	// A long stream is in flight when SIGTERM arrives.
	resp, err = http.Post(url+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"messages":[{"role":"user","content":"Hi"}],"max_tokens":40,"ignore_eos":true,"stream":true}`))
	require.NoError(t, err)
	first := make([]byte, 16)
	_, err = io.ReadFull(resp.Body, first)
	require.NoError(t, err)
	sig <- syscall.SIGTERM
	rest, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(string(rest), "data: [DONE]\n\n"), "the in-flight stream completes")
	select {
	case code := <-exit:
		assert.Equal(t, 0, code)
	case <-time.After(60 * time.Second):
		t.Fatal("glmserve did not exit after SIGTERM")
	}
	assert.Contains(t, stderr.String(), "POST /v1/chat/completions -> 200", "-v logs every request")
	assert.Contains(t, stderr.String(), "draining in-flight requests")
	assert.Contains(t, stderr.String(), "shut down cleanly")
	_, err = http.Get(url + "/health")
	assert.Error(t, err, "the port is closed after shutdown")
}

// TestGGUFSamplingDefaults: general.sampling.* keys replace the defaults of
// flags that were not given.
func TestGGUFSamplingDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.gguf")
	out, err := os.Create(path)
	require.NoError(t, err)
	w := gguf.NewWriter(out)
	require.NoError(t, w.AddKV("general.architecture", gguf.String("deepseek2")))
	require.NoError(t, w.AddKV("general.sampling.temp", gguf.Float32(0.6)))
	require.NoError(t, w.AddKV("general.sampling.top_k", gguf.Int32(20)))
	require.NoError(t, w.AddKV("general.sampling.top_p", gguf.Float32(0.9)))
	require.NoError(t, w.Close())
	require.NoError(t, out.Close())
	f, err := gguf.Open(path)
	require.NoError(t, err)
	defer f.Close()

	var o options
	fs := newFlags(&o)
	require.NoError(t, cli.Parse(fs, []string{"-m", path, "--top-p", "0.5"}))
	desc := cli.ApplyGGUFSampling(f, fs, &o.sampling)
	assert.InDelta(t, 0.6, o.sampling.Temp, 1e-6)
	assert.Equal(t, 20, o.sampling.TopK)
	assert.InDelta(t, 0.5, o.sampling.TopP, 1e-6, "a flag given on the command line wins")
	assert.InDelta(t, 0.05, o.sampling.MinP, 1e-6, "absent keys keep llama.cpp's default")
	assert.Equal(t, "temp=0.6 top-k=20", desc)

	// An alias counts as given.
	o = options{}
	fs = newFlags(&o)
	require.NoError(t, cli.Parse(fs, []string{"-m", path, "--temperature", "0.2"}))
	cli.ApplyGGUFSampling(f, fs, &o.sampling)
	assert.InDelta(t, 0.2, o.sampling.Temp, 1e-6)
}
