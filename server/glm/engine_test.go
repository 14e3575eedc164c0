package glm_test

import (
	"fmt"
	"math"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/glmrun/glmrun/server"
	"github.com/glmrun/glmrun/server/glm"
)

// TestSeedChecklist walks the seed's checklist on glm-tiny: health, models,
// chat, stream, 404 and metrics.
func TestSeedChecklist(t *testing.T) {
	_, url := startTiny(t, server.Config{MaxBatchSize: 4, MaxSeqLen: 512})

	code, body := get(t, url+"/health")
	require.Equal(t, 200, code)
	assert.JSONEq(t, `{"status":"ok","model_loaded":true}`, string(body))

	code, body = get(t, url+"/v1/models")
	require.Equal(t, 200, code)
	data := jsonMap(t, body)["data"].([]any)
	assert.Equal(t, "glm-4.7-flash", data[0].(map[string]any)["id"])
	meta := data[0].(map[string]any)["meta"].(map[string]any)
	assert.EqualValues(t, 2304, meta["n_vocab"])
	assert.EqualValues(t, 4096, meta["n_ctx_train"])
	assert.Contains(t, meta["ftype"], "Q4_K - Medium")

	code, body = post(t, url+"/v1/chat/completions", `{"model":"glm-4.7-flash","messages":[{"role":"user","content":"Hello"}],"max_tokens":12}`)
	require.Equal(t, 200, code, "%s", body)
	m := jsonMap(t, body)
	c := m["choices"].([]any)[0].(map[string]any)
	assert.Contains(t, []string{"stop", "length"}, c["finish_reason"])
	u := m["usage"].(map[string]any)
	assert.Greater(t, u["completion_tokens"], 0.0)
	assert.LessOrEqual(t, u["completion_tokens"], 12.0)
	// "[gMASK]<sop><|user|>Hello<|assistant|><think>": 5 special tokens + Hello.
	assert.GreaterOrEqual(t, u["prompt_tokens"], 6.0)

	r := streamChat(t, url, `{"messages":[{"role":"user","content":"Hello"}],"max_tokens":12,"stream":true,"stream_options":{"include_usage":true}}`)
	assert.True(t, r.done)
	assert.Contains(t, []string{"stop", "length"}, r.finish)
	assert.Greater(t, r.tokens, 0)

	code, body = post(t, url+"/v1/chat/completions", `{"model":"gpt-4","messages":[{"role":"user","content":"Hello"}]}`)
	require.Equal(t, 404, code)
	assert.Contains(t, string(body), "model not found")

	code, body = get(t, url+"/metrics")
	require.Equal(t, 200, code)
	for _, name := range []string{"throughput_tok_sec", "avg_latency_ms", "llamacpp:tokens_predicted_total", "llamacpp:prompt_tokens_total", "llamacpp:requests_processing"} {
		assert.Regexp(t, `(?m)^`+regexp.QuoteMeta(name)+` `, string(body))
	}

	// The prompt the server renders is the GLM template (spec §6).
	code, body = post(t, url+"/apply-template", `{"messages":[{"role":"system","content":"S"},{"role":"user","content":"Hi"}]}`)
	require.Equal(t, 200, code)
	assert.Equal(t, "[gMASK]<sop><|system|>S<|user|>Hi<|assistant|><think>", jsonMap(t, body)["prompt"])
}

// greedyDirect generates n tokens greedily for prompt through the engine
// alone (no server), one ForwardBatch call per token.
func greedyDirect(t *testing.T, e *glm.Engine, prompt []int32, n int) string {
	c, err := e.NewCache(len(prompt) + n)
	require.NoError(t, err)
	logits, err := e.ForwardBatch([]server.Cache{c}, [][]int32{prompt})
	require.NoError(t, err)
	d := e.NewDecoder()
	var sb strings.Builder
	for i := 0; i < n; i++ {
		best := 0
		for k, v := range logits[0] {
			if v > logits[0][best] {
				best = k
			}
		}
		if e.IsEOG(int32(best)) {
			break
		}
		sb.WriteString(d.Add(int32(best)))
		if i == n-1 {
			break
		}
		logits, err = e.ForwardBatch([]server.Cache{c}, [][]int32{{int32(best)}})
		require.NoError(t, err)
	}
	sb.WriteString(d.Flush())
	return jsonText(sb.String())
}

// jsonText is s as it reads after a JSON round trip: encoding/json writes
// each byte of invalid UTF-8 (a random model emits such bytes) as U+FFFD.
func jsonText(s string) string {
	var sb strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && n == 1 {
			sb.WriteRune(utf8.RuneError)
		} else {
			sb.WriteString(s[:n])
		}
		s = s[n:]
	}
	return sb.String()
}

// TestGreedyMatchesEngineAndBatching checks that a greedy completion served
// alone equals the engine's own greedy loop, and that the same requests
// served concurrently (decoded together in batched passes) give the same
// text.
func TestGreedyMatchesEngineAndBatching(t *testing.T) {
	e := tinyEngine(t)
	_, url := startTiny(t, server.Config{MaxBatchSize: 4, MaxSeqLen: 512})
	prompts := []string{"The game", "Valkyria Chronicles III is", "In 1990 the", "Senjō no"}
	const n = 10
	want := make([]string, len(prompts))
	for i, p := range prompts {
		ids, _ := e.Tokenize(p, true)
		want[i] = greedyDirect(t, e, ids, n)
		code, body := post(t, url+"/v1/completions", fmt.Sprintf(`{"prompt":%q,"max_tokens":%d,"temperature":0}`, p, n))
		require.Equal(t, 200, code, "%s", body)
		assert.Equal(t, want[i], jsonMap(t, body)["choices"].([]any)[0].(map[string]any)["text"], "prompt %q alone", p)
	}
	var wg sync.WaitGroup
	got := make([]string, len(prompts))
	for i, p := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body := post(t, url+"/v1/completions", fmt.Sprintf(`{"prompt":%q,"max_tokens":%d,"temperature":0}`, p, n))
			if assert.Equal(t, 200, code) {
				got[i] = jsonMap(t, body)["choices"].([]any)[0].(map[string]any)["text"].(string)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, want, got, "concurrent (batched) greedy output must equal the solo output")
}

// TestSeedReproducible: the same seed gives the same sampled text; the
// engine's sampler honours temperature.
func TestSeedReproducible(t *testing.T) {
	_, url := startTiny(t, server.Config{MaxBatchSize: 2, MaxSeqLen: 256})
	gen := func(seed int) string {
		code, body := post(t, url+"/v1/completions", fmt.Sprintf(`{"prompt":"The","max_tokens":16,"temperature":1.5,"top_k":0,"top_p":1,"min_p":0,"seed":%d}`, seed))
		require.Equal(t, 200, code, "%s", body)
		return jsonMap(t, body)["choices"].([]any)[0].(map[string]any)["text"].(string)
	}
	a, b, c := gen(7), gen(7), gen(8)
	assert.Equal(t, a, b)
	assert.NotEqual(t, a, c, "different seeds at temperature 1.5 should differ")
}

func rssBytes(t testing.TB) uint64 {
	t.Helper()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestBurst100 sends 100 parallel chat requests to 8 slots on glm-tiny:
// every one must be answered 200 (the rest wait in the queue), requests
// deferred must peak near 100-8 (up to 99 when all arrive before the
// scheduler admits any), and the live heap must not grow from one burst to
// the next.
func TestBurst100(t *testing.T) {
	if testing.Short() {
		t.Skip("burst skipped in -short mode")
	}
	_, url := startTiny(t, server.Config{MaxBatchSize: 8, MaxSeqLen: 256})
	burst := func() time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		codes := make([]int, 100)
		for i := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := fmt.Sprintf(`{"messages":[{"role":"user","content":"Request %d"}],"max_tokens":4,"stream":%v}`, i, i%2 == 1)
				codes[i], _ = post(t, url+"/v1/chat/completions", body)
			}()
		}
		wg.Wait()
		for i, c := range codes {
			assert.Equal(t, 200, c, "request %d", i)
		}
		return time.Since(start)
	}
	d1 := burst()
	heap1 := rssBytes(t)
	d2 := burst()
	heap2 := rssBytes(t)
	t.Logf("bursts of 100: %v and %v; live heap %d -> %d bytes", d1, d2, heap1, heap2)
	assert.Less(t, heap2, heap1+16<<20, "live heap grew by more than 16 MiB between bursts")
	_, body := get(t, url+"/metrics")
	peak := metric(t, string(body), "queue_depth_peak")
	t.Logf("queue depth peak %v", peak)
	assert.GreaterOrEqual(t, peak, 60.0, "most requests of the burst wait (requests_deferred peaks near 92)")
	assert.LessOrEqual(t, peak, 99.0)
	assert.Equal(t, 200.0, metric(t, string(body), `requests_total{status="200"}`), "200 answered")
	assert.InDelta(t, 8.0, metric(t, string(body), "llamacpp:n_busy_slots_per_decode"), 3.0)
}

func metric(t testing.TB, text, name string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	require.NotNil(t, m, "metric %s missing", name)
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	require.False(t, math.IsNaN(v))
	return v
}
