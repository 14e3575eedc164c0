package glm_test

import (
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/glmrun/glmrun/server"
	"github.com/glmrun/glmrun/server/glm"
)

// TestServeBench measures the seed's production numbers through the HTTP
// server for any model: GLM_SERVE_BENCH_MODEL=path (the test skips without
// it), GLM_SERVE_BENCH_DEVICE=cpu|cuda|auto (default auto). It reports the
// time to first token of a short chat prompt (median of 5), one stream's
// decode rate, and the aggregate rate of 5 and 8 concurrent streams (128
// tokens each, EOS ignored). With GLM_ASSERT_THROUGHPUT=1 it asserts the
// seed's bar: one stream >= 35 tok/s, TTFT < 50 ms, 5 streams >= 100 tok/s.
func TestServeBench(t *testing.T) {
	path := os.Getenv("GLM_SERVE_BENCH_MODEL")
	if path == "" {
		t.Skip("set GLM_SERVE_BENCH_MODEL to a GGUF to run the serving benchmark")
	}
	device := os.Getenv("GLM_SERVE_BENCH_DEVICE")
	t0 := time.Now()
	eng, err := glm.Open(path, glm.Options{Device: device})
	require.NoError(t, err)
	defer eng.Close()
	load := time.Since(t0)
	s, err := server.New(server.Config{MaxBatchSize: 8, MaxSeqLen: 2048})
	require.NoError(t, err)
	require.NoError(t, s.Ready(eng))
	url := serveOn(t, s)

	streamChat(t, url, `{"messages":[{"role":"user","content":"warm up"}],"max_tokens":8,"stream":true}`)
	var ttfts []float64
	for i := range 5 {
		start := time.Now()
		r := streamChat(t, url, fmt.Sprintf(`{"messages":[{"role":"user","content":"Hi %d"}],"max_tokens":2,"stream":true,"cache_prompt":false}`, i))
		require.False(t, r.first.IsZero())
		ttfts = append(ttfts, float64(r.first.Sub(start).Microseconds())/1e3)
	}
	sort.Float64s(ttfts)
	ttft := ttfts[len(ttfts)/2]

	const n = 128
	run := func(streams int) (aggregate, perStreamDecode float64) {
		var wg sync.WaitGroup
		res := make([]streamResult, streams)
		start := time.Now()
		for i := range streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i] = streamChat(t, url, fmt.Sprintf(`{"messages":[{"role":"user","content":"Stream %d: write about the sea."}],"max_tokens":%d,"ignore_eos":true,"temperature":0.7,"seed":%d,"stream":true,"stream_options":{"include_usage":true}}`, i, n, i+1))
			}()
		}
		wg.Wait()
		wall := time.Since(start).Seconds()
		total, dec := 0, 0.0
		for _, r := range res {
			require.Equal(t, n, r.tokens)
			total += r.tokens
			dec += float64(r.tokens-1) / r.end.Sub(r.first).Seconds()
		}
		return float64(total) / wall, dec / float64(streams)
	}
	one, oneDecode := run(1)
	five, fiveDecode := run(5)
	eight, _ := run(8)
	info := eng.Info()
	report := fmt.Sprintf("model %s (%s), device %s, load %.1f s\n"+
		"  TTFT (short chat prompt, median of 5): %.1f ms\n"+
		"  1 stream: %.1f tok/s overall, %.1f tok/s decode\n"+
		"  5 concurrent streams: %.1f tok/s aggregate (%.1f tok/s decode per stream)\n"+
		"  8 concurrent streams: %.1f tok/s aggregate\n",
		path, info.FType, info.Device, load.Seconds(), ttft, one, oneDecode, five, fiveDecode, eight)
	t.Log(report)
	if p := os.Getenv("GLM_BENCH_OUT"); p != "" {
		_ = os.WriteFile(p, []byte(report), 0o644)
	}
	if os.Getenv("GLM_ASSERT_THROUGHPUT") == "1" {
		assert.GreaterOrEqual(t, oneDecode, 35.0, "one stream")
		assert.Less(t, ttft, 50.0, "time to first token")
		assert.GreaterOrEqual(t, five, 100.0, "5 concurrent streams")
	}
}
