package server

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// This file holds the server's counters and their Prometheus text rendering
// (format 0.0.4, interfaces.md §3.6): the seed's throughput_tok_sec and
// avg_latency_ms over a sliding 60 s window, llama-server's llamacpp:* set
// with the same semantics, and a few of our own.

const windowSeconds = 60

// ttftBucketsMS are the upper bounds of the time_to_first_token_ms histogram.
var ttftBucketsMS = []float64{10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000}

type windowBucket struct {
	sec        int64 // unix second this bucket holds
	tokens     int
	requests   int
	latencySum float64 // ms
}

// metrics is safe for concurrent use.
type metrics struct {
	mu    sync.Mutex
	start time.Time
	now   func() time.Time

	// llamacpp:* counters.
	promptTokensTotal     uint64
	promptSecondsTotal    float64
	tokensPredictedTotal  uint64
	predictedSecondsTotal float64 // summed per-slot generation time
	nDecodeTotal          uint64
	nBusySlotsTotal       uint64
	nTokensMax            int
	// Gauges.
	processing int
	deferred   int
	loaded     bool

	// Ours.
	requests      map[string]uint64 // by status class: 200, 4xx, 5xx
	rejected      uint64
	cancelledN    uint64
	failedN       uint64
	ttftCounts    []uint64 // per bucket, not cumulative; last = +Inf
	ttftSum       float64
	ttftN         uint64
	window        [windowSeconds]windowBucket
	deferredPeak  int
	batchTokenMax int
}

func newMetrics() *metrics {
	return &metrics{
		start:      time.Now(),
		now:        time.Now,
		requests:   map[string]uint64{"200": 0, "4xx": 0, "5xx": 0},
		ttftCounts: make([]uint64, len(ttftBucketsMS)+1),
	}
}

func (m *metrics) bucket(now time.Time) *windowBucket {
	sec := now.Unix()
	b := &m.window[sec%windowSeconds]
	if b.sec != sec {
		*b = windowBucket{sec: sec}
	}
	return b
}

func (m *metrics) setLoaded(v bool) { m.mu.Lock(); m.loaded = v; m.mu.Unlock() }

func (m *metrics) setProcessing(n int) { m.mu.Lock(); m.processing = n; m.mu.Unlock() }

func (m *metrics) setDeferred(n int) {
	m.mu.Lock()
	m.deferred = n
	m.deferredPeak = max(m.deferredPeak, n)
	m.mu.Unlock()
}

func (m *metrics) queueRejected() { m.mu.Lock(); m.rejected++; m.mu.Unlock() }
func (m *metrics) cancelled()     { m.mu.Lock(); m.cancelledN++; m.mu.Unlock() }
func (m *metrics) computeFailed() { m.mu.Lock(); m.failedN++; m.mu.Unlock() }

// decoded records one forward pass over nSlots sequences and nTokens tokens.
func (m *metrics) decoded(nSlots, nTokens int) {
	m.mu.Lock()
	m.nDecodeTotal++
	m.nBusySlotsTotal += uint64(nSlots)
	m.batchTokenMax = max(m.batchTokenMax, nTokens)
	m.mu.Unlock()
}

func (m *metrics) maxTokens(n int) {
	m.mu.Lock()
	m.nTokensMax = max(m.nTokensMax, n)
	m.mu.Unlock()
}

func (m *metrics) promptProcessed(n int, seconds float64) {
	m.mu.Lock()
	m.promptTokensTotal += uint64(n)
	m.promptSecondsTotal += seconds
	m.mu.Unlock()
}

// predicted records n generated tokens (window throughput and total).
func (m *metrics) predicted(n int) {
	m.mu.Lock()
	m.tokensPredictedTotal += uint64(n)
	m.bucket(m.now()).tokens += n
	m.mu.Unlock()
}

func (m *metrics) firstToken(d time.Duration) {
	v := ms(d)
	m.mu.Lock()
	k := len(ttftBucketsMS)
	for i, ub := range ttftBucketsMS {
		if v <= ub {
			k = i
			break
		}
	}
	m.ttftCounts[k]++
	m.ttftSum += v
	m.ttftN++
	m.mu.Unlock()
}

// completed records a generation that ended normally after latency
// (submission to last token) with nGen tokens and genSeconds of generation.
func (m *metrics) completed(latency time.Duration, nGen int, genSeconds float64) {
	m.mu.Lock()
	b := m.bucket(m.now())
	b.requests++
	b.latencySum += ms(latency)
	m.predictedSecondsTotal += genSeconds
	m.mu.Unlock()
}

// response records an HTTP answer's status for requests_total.
func (m *metrics) response(status int) {
	class := "200"
	switch {
	case status >= 500:
		class = "5xx"
	case status >= 400:
		class = "4xx"
	}
	m.mu.Lock()
	m.requests[class]++
	m.mu.Unlock()
}

// windowStats returns throughput_tok_sec and avg_latency_ms over the last
// windowSeconds (or the server's age, when younger).
func (m *metrics) windowStats() (tokPerSec, avgLatencyMS float64) {
	now := m.now()
	sec := now.Unix()
	var tokens, reqs int
	var lat float64
	for _, b := range m.window {
		if b.sec > sec-windowSeconds && b.sec <= sec {
			tokens += b.tokens
			reqs += b.requests
			lat += b.latencySum
		}
	}
	span := min(now.Sub(m.start).Seconds(), windowSeconds)
	span = max(span, 1)
	tokPerSec = float64(tokens) / span
	if reqs > 0 {
		avgLatencyMS = lat / float64(reqs)
	}
	return tokPerSec, avgLatencyMS
}

// writePrometheus renders every metric in text format 0.0.4.
func (m *metrics) writePrometheus(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	tput, lat := m.windowStats()
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	one := func(name, typ, help, value string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, typ, name, value)
	}
	avg := func(n uint64, sec float64) float64 {
		if n == 0 || sec <= 0 {
			return 0
		}
		return float64(n) / sec
	}
	busy := float64(m.nBusySlotsTotal) / max(float64(m.nDecodeTotal), 1)

	one("throughput_tok_sec", "gauge", "Aggregate generated tokens per second over the last 60 s.", f(tput))
	one("avg_latency_ms", "gauge", "Mean end-to-end latency of requests completed in the last 60 s, in ms.", f(lat))

	one("llamacpp:prompt_tokens_total", "counter", "Number of prompt tokens processed.", u(m.promptTokensTotal))
	one("llamacpp:prompt_seconds_total", "counter", "Prompt process time", f(m.promptSecondsTotal))
	one("llamacpp:tokens_predicted_total", "counter", "Number of generation tokens processed.", u(m.tokensPredictedTotal))
	one("llamacpp:tokens_predicted_seconds_total", "counter", "Predict process time", f(m.predictedSecondsTotal))
	one("llamacpp:n_decode_total", "counter", "Total number of llama_decode() calls", u(m.nDecodeTotal))
	one("llamacpp:n_tokens_max", "counter", "Largest observed n_tokens.", strconv.Itoa(m.nTokensMax))
	one("llamacpp:spec_decode_num_draft_tokens_total", "counter", "Total draft tokens generated", "0")
	one("llamacpp:spec_decode_num_accepted_tokens_total", "counter", "Total draft tokens accepted by the target model", "0")
	one("llamacpp:spec_decode_num_drafts_total", "counter", "Total speculative decoding verification steps", "0")
	one("llamacpp:prompt_tokens_seconds", "gauge", "Average prompt throughput in tokens/s.", f(avg(m.promptTokensTotal, m.promptSecondsTotal)))
	one("llamacpp:predicted_tokens_seconds", "gauge", "Average generation throughput in tokens/s.", f(avg(m.tokensPredictedTotal, m.predictedSecondsTotal)))
	one("llamacpp:requests_processing", "gauge", "Number of requests processing.", strconv.Itoa(m.processing))
	one("llamacpp:requests_deferred", "gauge", "Number of requests deferred.", strconv.Itoa(m.deferred))
	one("llamacpp:n_busy_slots_per_decode", "gauge", "Average number of busy slots per llama_decode() call", f(busy))

	fmt.Fprintf(w, "# HELP time_to_first_token_ms Time from request submission to the first generated token, in ms.\n# TYPE time_to_first_token_ms histogram\n")
	var cum uint64
	for i, ub := range ttftBucketsMS {
		cum += m.ttftCounts[i]
		fmt.Fprintf(w, "time_to_first_token_ms_bucket{le=\"%s\"} %d\n", f(ub), cum)
	}
	cum += m.ttftCounts[len(ttftBucketsMS)]
	fmt.Fprintf(w, "time_to_first_token_ms_bucket{le=\"+Inf\"} %d\ntime_to_first_token_ms_sum %s\ntime_to_first_token_ms_count %d\n", cum, f(m.ttftSum), m.ttftN)

	fmt.Fprintf(w, "# HELP requests_total HTTP requests answered, by status class.\n# TYPE requests_total counter\n")
	for _, c := range []string{"200", "4xx", "5xx"} {
		fmt.Fprintf(w, "requests_total{status=\"%s\"} %d\n", c, m.requests[c])
	}
	one("queue_depth", "gauge", "Requests waiting for a slot.", strconv.Itoa(m.deferred))
	one("queue_depth_peak", "gauge", "Largest number of requests that waited for a slot at once.", strconv.Itoa(m.deferredPeak))
	one("requests_rejected_total", "counter", "Requests refused with 503 because the queue was full.", u(m.rejected))
	one("requests_cancelled_total", "counter", "Generations cancelled because the client disconnected.", u(m.cancelledN))
	one("requests_failed_total", "counter", "Generations that ended with a compute error.", u(m.failedN))
	one("batch_tokens_max", "gauge", "Largest number of tokens in one batched forward pass.", strconv.Itoa(m.batchTokenMax))
	loaded := "0"
	if m.loaded {
		loaded = "1"
	}
	one("model_loaded", "gauge", "1 once the model is loaded and the server is ready.", loaded)
}
