package glm_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/glmrun/glmrun/server"
)

// cpuSeconds is the process's user+system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// aggregateTokPerSec runs n concurrent streams of maxTokens each (EOS
// ignored, so every stream generates exactly maxTokens) and returns the
// aggregate generated tokens per wall-clock second and per CPU second
// (the process's, server and client together).
func aggregateTokPerSec(t *testing.T, url string, n, maxTokens int) (wallRate, cpuRate float64) {
	var wg sync.WaitGroup
	res := make([]streamResult, n)
	cpu0 := cpuSeconds()
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"messages":[{"role":"user","content":"Stream %d: tell me about the history of Valkyria Chronicles."}],
				"max_tokens":%d,"ignore_eos":true,"temperature":0.7,"seed":%d,"stream":true,"stream_options":{"include_usage":true}}`, i, maxTokens, i+1)
			res[i] = streamChat(t, url, body)
		}()
	}
	wg.Wait()
	wall := time.Since(start).Seconds()
	cpu := cpuSeconds() - cpu0
	total := 0
	for _, r := range res {
		require.True(t, r.done)
		require.Equal(t, maxTokens, r.tokens)
		total += r.tokens
	}
	return float64(total) / wall, float64(total) / cpu
}

// TestConcurrentStreamsThroughput measures one stream against 8 concurrent
// streams on glm-tiny (CPU); the acceptance target is an aggregate of at
// least twice one stream's tokens/s through continuous batching.
//
// The two are measured as interleaved pairs (one stream, then 8 streams,
// five times) and the median of the pairs' ratios is the result: a slow
// spell of a shared machine hits both sides of a pair, where taking the
// best run of each side separately favours the shorter, noisier one-stream
// runs. Each stream generates 128 tokens (EOS ignored).
//
// Asserted always: the 8 streams decode together (about 8 busy slots per
// forward pass), and batching pays: tokens per process CPU-second with 8
// streams are at least 1.25x one stream's (CPU time is not skewed by other
// processes on a shared CI machine). The 2x wall-clock target itself is
// asserted with GLM_ASSERT_THROUGHPUT=1 (on a quiet machine), since wall
// time on a shared machine is noise. The numbers are logged (and written to
// $GLM_BENCH_OUT when set).
func TestConcurrentStreamsThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("throughput measurement skipped in -short mode")
	}
	_, url := startTiny(t, server.Config{MaxBatchSize: 8, MaxSeqLen: 1024})
	aggregateTokPerSec(t, url, 1, 16) // warm-up
	const maxTokens, pairs = 128, 5
	var wallRatio, cpuRatio, oneWall, eightWall []float64
	var busy float64
	for range pairs {
		w1, c1 := aggregateTokPerSec(t, url, 1, maxTokens)
		_, m0 := get(t, url+"/metrics")
		w8, c8 := aggregateTokPerSec(t, url, 8, maxTokens)
		_, m1 := get(t, url+"/metrics")
		oneWall, eightWall = append(oneWall, w1), append(eightWall, w8)
		wallRatio, cpuRatio = append(wallRatio, w8/w1), append(cpuRatio, c8/c1)
		slots := metric(t, string(m1), "llamacpp:n_busy_slots_per_decode")*metric(t, string(m1), "llamacpp:n_decode_total") -
			metric(t, string(m0), "llamacpp:n_busy_slots_per_decode")*metric(t, string(m0), "llamacpp:n_decode_total")
		passes := metric(t, string(m1), "llamacpp:n_decode_total") - metric(t, string(m0), "llamacpp:n_decode_total")
		busy = max(busy, slots/passes)
	}
	list := func(v []float64, f string) string {
		var b strings.Builder
		for i, x := range v {
			if i > 0 {
				b.WriteString(" / ")
			}
			fmt.Fprintf(&b, f, x)
		}
		return b.String()
	}
	report := fmt.Sprintf("glm-tiny Q4_K_M, CPU (%d cores), %d interleaved pairs, %d tokens per stream:\n"+
		"  1 stream:  %s tok/s\n  8 streams: %s tok/s aggregate\n"+
		"  8 streams / 1 stream (wall): %s; median %.2fx\n"+
		"  per CPU-second: %s; median %.2fx\n"+
		"  busy slots per forward pass with 8 streams: %.2f\n",
		runtime.NumCPU(), pairs, maxTokens, list(oneWall, "%.0f"), list(eightWall, "%.0f"),
		list(wallRatio, "%.2fx"), median(wallRatio), list(cpuRatio, "%.2fx"), median(cpuRatio), busy)
	t.Log(report)
	if p := os.Getenv("GLM_BENCH_OUT"); p != "" {
		_ = os.WriteFile(p, []byte(report), 0o644)
	}
	assert.GreaterOrEqual(t, busy, 6.0, "8 concurrent streams must share forward passes")
	assert.GreaterOrEqual(t, median(cpuRatio), 1.25, "batched decoding must cost less CPU per token")
	if os.Getenv("GLM_ASSERT_THROUGHPUT") == "1" {
		assert.GreaterOrEqual(t, median(wallRatio), 2.0, "8 streams must reach >= 2x one stream's tokens/s")
	}
}
