package glm4moe_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/testdata"
	"github.com/glmrun/glmrun/model/glm4moe"
)

// openGPU loads file path on CUDA. It skips when no CUDA device is usable
// (and under CI=true, whose machines have no GPU), unless
// GLMRUN_CUDA_REQUIRE=1 (set on the GPU machine) makes that a failure.
func openGPU(t testing.TB, path string, opt glm4moe.Options) *glm4moe.Model {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Skip("CI=true: CI machines have no GPU; CUDA tests run on the GPU machine")
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	opt.Device = "cuda"
	opt.Quiet = true
	m, err := glm4moe.Load(f, opt)
	if err != nil {
		if errors.Is(err, glm4moe.ErrNoGPU) && os.Getenv("GLMRUN_CUDA_REQUIRE") == "" {
			t.Skipf("no CUDA device: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestGPUOracle is TestOracle on CUDA: the same references and tolerances
// (README of glm-tiny), all tokens in one pass (ub 512) and one token at a
// time through the decode graph (ub 1).
func TestGPUOracle(t *testing.T) {
	toks := readTokens(t)
	cases := []struct {
		file, ref string
		exact     bool
		f32kv     bool
	}{
		{"glm-tiny-bf16.gguf", "hf-logits-bf16.f32", true, true},
		{"glm-tiny-q4_k_m.gguf", "ref-logits-q4_k_m.f32", true, true},
		{"glm-tiny-q4_k_m.gguf", "ref-logits-q4_k_m.f32", false, false},
		{"glm-tiny-q4_k_m.gguf", "ref-logits-q4_k_m.f32", false, true},
	}
	for _, tc := range cases {
		ref := readF32(t, tc.ref)
		if len(ref) != len(toks)*tinyVocab {
			t.Fatalf("%s: %d floats, want %d", tc.ref, len(ref), len(toks)*tinyVocab)
		}
		for _, ub := range []int{512, 1} {
			mode := "fast"
			if tc.exact {
				mode = "exact"
			}
			kv := "f16kv"
			if tc.f32kv {
				kv = "f32kv"
			}
			name := tc.file + "/" + mode + "/" + kv + "/ub" + strconv.Itoa(ub)
			t.Run(name, func(t *testing.T) {
				m := openGPU(t, testdata.GLMTiny(t, tc.file), glm4moe.Options{Exact: tc.exact, UBatch: ub, CacheF32: tc.f32kv})
				got := runAll(t, m, toks)
				r := compare(got, ref, tinyVocab)
				t.Logf("CUDA %s: rel_l2 %.3g top1 %.4f KL %.4g", name, r.relL2, r.top1, r.kl)
				if tc.exact {
					if r.relL2 > 2e-3 || r.top1 < 0.99 {
						t.Errorf("exact path: rel_l2 %.3g (max 2e-3), top-1 %.4f (min 0.99)", r.relL2, r.top1)
					}
				} else if r.kl > 0.03 || r.top1 < 0.80 {
					t.Errorf("fast path: KL %.4g (max 0.03), top-1 %.4f (min 0.80)", r.kl, r.top1)
				}
			})
		}
	}
}

// TestGPUDecodeGreedy checks that DecodeGreedy (argmax on the GPU, one id
// copied back) picks the argmax of the logits Forward returns for the same
// steps, and that ForwardBatch over two caches matches separate passes.
func TestGPUDecodeGreedy(t *testing.T) {
	toks := readTokens(t)[:64]
	m := openGPU(t, testdata.GLMTiny(t, "glm-tiny-q4_k_m.gguf"), glm4moe.Options{UBatch: 16})
	ca, err := m.NewCache(len(toks))
	if err != nil {
		t.Fatal(err)
	}
	cb, err := m.NewCache(len(toks))
	if err != nil {
		t.Fatal(err)
	}
	for i, tok := range toks {
		logits, err := m.Forward(ca, []int32{tok}, false)
		if err != nil {
			t.Fatal(err)
		}
		id, err := m.DecodeGreedy(cb, tok)
		if err != nil {
			t.Fatal(err)
		}
		if want := argmax(logits); int(id) != want {
			t.Fatalf("step %d: DecodeGreedy %d, argmax of Forward's logits %d", i, id, want)
		}
	}
	if ca.Len() != len(toks) || cb.Len() != len(toks) {
		t.Fatalf("cache lengths %d, %d after %d steps", ca.Len(), cb.Len(), len(toks))
	}
	// Two sequences in one batched pass vs each alone.
	c1, _ := m.NewCache(40)
	c2, _ := m.NewCache(40)
	outs, err := m.ForwardBatch([]*glm4moe.Cache{c1, c2}, [][]int32{toks[:20], toks[20:27]})
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := m.NewCache(40)
	s2, _ := m.NewCache(40)
	want1, err := m.Forward(s1, toks[:20], false)
	if err != nil {
		t.Fatal(err)
	}
	want2, err := m.Forward(s2, toks[20:27], false)
	if err != nil {
		t.Fatal(err)
	}
	for i, pair := range [][2][]float32{{outs[0], want1}, {outs[1], want2}} {
		var num, den float64
		for j := range pair[1] {
			d := float64(pair[0][j] - pair[1][j])
			num += d * d
			den += float64(pair[1][j]) * float64(pair[1][j])
		}
		if rel := math.Sqrt(num / den); !(rel < 1e-5) {
			t.Errorf("ForwardBatch sequence %d: rel_l2 %.3g vs a separate pass", i, rel)
		}
	}
	// Released caches free their memory and refuse further tokens.
	for _, c := range []*glm4moe.Cache{ca, cb, c1, c2} {
		if err := c.Release(); err != nil {
			t.Fatalf("Release: %v", err)
		}
	}
	if _, err := m.Forward(ca, toks[:1], false); err == nil {
		t.Fatal("Forward on a released cache succeeded")
	}
}

func envInts(t *testing.T, key, def string) []int {
	t.Helper()
	s := os.Getenv(key)
	if s == "" {
		s = def
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		out = append(out, v)
	}
	return out
}

func meanStd(v []float64) (float64, float64) {
	var s, ss float64
	for _, x := range v {
		s += x
	}
	m := s / float64(len(v))
	for _, x := range v {
		ss += (x - m) * (x - m)
	}
	if len(v) < 2 {
		return m, 0
	}
	return m, math.Sqrt(ss / float64(len(v)-1))
}

// TestGPUBench measures the model named by GLMRUN_GPU_MODEL (e.g. the
// 47-layer synthetic Q4_K_M file) on CUDA the way llama-bench defines its
// tests: ppN = N prompt tokens appended to a cache already holding d tokens,
// tg128 = 128 greedy decode steps from depth d; each repeated
// GLMRUN_GPU_REPS times (default 3; the cache is truncated back to d
// between repetitions, the depth fill itself is not timed). Lists:
// GLMRUN_GPU_PP (default 512), GLMRUN_GPU_DEPTHS (default 0), GLMRUN_GPU_TG
// (default 128); prompts longer than 2048 run at depth 0 only. It also prints a per-kernel breakdown of one decode step
// (ProfileDecode) at each depth.
func TestGPUBench(t *testing.T) {
	path := os.Getenv("GLMRUN_GPU_MODEL")
	if path == "" {
		t.Skip("GLMRUN_GPU_MODEL not set")
	}
	pps := envInts(t, "GLMRUN_GPU_PP", "512")
	depths := envInts(t, "GLMRUN_GPU_DEPTHS", "0")
	tgs := envInts(t, "GLMRUN_GPU_TG", "128")
	reps := envInts(t, "GLMRUN_GPU_REPS", "3")[0]
	ub := envInts(t, "GLMRUN_GPU_UB", "512")[0]
	t0 := time.Now()
	m := openGPU(t, path, glm4moe.Options{UBatch: ub})
	w, free, total, _ := m.VRAM()
	t.Logf("device %s: loaded in %.1f s; weights %.2f GiB on the GPU; free %.2f of %.2f GiB",
		m.GPUName(), time.Since(t0).Seconds(), float64(w)/(1<<30), float64(free)/(1<<30), float64(total)/(1<<30))
	vocab := m.Config().VocabSize
	rng := rand.New(rand.NewPCG(1, 2))
	randToks := func(n int) []int32 {
		v := make([]int32, n)
		for i := range v {
			v[i] = int32(rng.IntN(vocab))
		}
		return v
	}
	maxPP := 0
	for _, p := range pps {
		maxPP = max(maxPP, p)
	}
	maxTG := 0
	for _, n := range tgs {
		maxTG = max(maxTG, n)
	}
	maxD := 0
	for _, d := range depths {
		maxD = max(maxD, d)
	}
	c, err := m.NewCache(maxD + max(maxPP, maxTG) + 8)
	if err != nil {
		t.Fatal(err)
	}
	// Warm-up (graph capture, lazy attributes).
	if _, err := m.Forward(c, randToks(min(ub, 64)), false); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if _, err := m.DecodeGreedy(c, 1); err != nil {
			t.Fatal(err)
		}
	}
	var table []string
	logProfile := func(what string, kts []glm4moe.KernelTime, tot float64) {
		var b strings.Builder
		fmt.Fprintf(&b, "%s (events after each kernel group, un-captured): total %.3f ms\n", what, tot)
		for _, k := range kts {
			fmt.Fprintf(&b, "  %-22s %5d calls %8.3f ms %5.1f%%\n", k.Kind, k.Calls, k.Ms, 100*k.Ms/tot)
		}
		t.Log(b.String())
	}
	if os.Getenv("GLMRUN_GPU_PROFILE_PREFILL") != "" {
		c.Reset()
		kts, tot, err := m.ProfilePass(c, randToks(ub))
		if err != nil {
			t.Fatal(err)
		}
		logProfile(fmt.Sprintf("prefill pass of %d tokens at depth 0", ub), kts, tot)
	}
	for _, d := range depths {
		c.Reset()
		tf := time.Now()
		for c.Len() < d {
			if _, err := m.Forward(c, randToks(min(ub, d-c.Len())), false); err != nil {
				t.Fatal(err)
			}
		}
		if d > 0 {
			t.Logf("depth fill to %d: %.2f s", d, time.Since(tf).Seconds())
		}
		for _, p := range pps {
			if p > 2048 && d > 0 {
				continue // long prompts only from an empty cache
			}
			var ts []float64
			for r := 0; r < reps; r++ {
				if err := c.Truncate(d); err != nil {
					t.Fatal(err)
				}
				toks := randToks(p)
				st := time.Now()
				if _, err := m.Forward(c, toks, false); err != nil {
					t.Fatal(err)
				}
				ts = append(ts, float64(p)/time.Since(st).Seconds())
			}
			mu, sd := meanStd(ts)
			table = append(table, fmt.Sprintf("| pp%d @ d%d | %.1f ± %.1f |", p, d, mu, sd))
			t.Log(table[len(table)-1])
		}
		for _, n := range tgs {
			var ts []float64
			for r := 0; r < reps; r++ {
				if err := c.Truncate(d); err != nil {
					t.Fatal(err)
				}
				tok := int32(rng.IntN(vocab))
				st := time.Now()
				for i := 0; i < n; i++ {
					if tok, err = m.DecodeGreedy(c, tok); err != nil {
						t.Fatal(err)
					}
				}
				ts = append(ts, float64(n)/time.Since(st).Seconds())
			}
			mu, sd := meanStd(ts)
			table = append(table, fmt.Sprintf("| tg%d @ d%d | %.1f ± %.1f |", n, d, mu, sd))
			t.Log(table[len(table)-1])
		}
		if err := c.Truncate(d); err != nil {
			t.Fatal(err)
		}
		kts, tot, err := m.ProfileDecode(c, 1)
		if err != nil {
			t.Fatal(err)
		}
		logProfile(fmt.Sprintf("decode step profile at depth %d", d), kts, tot)
	}
	tel, _ := m.GPUTelemetry()
	_, free, _, _ = m.VRAM()
	t.Logf("results (t/s, mean ± sd over %d reps, ub %d):\n| test | t/s |\n|---|---|\n%s\nVRAM free after: %.2f GiB; power now %.0f W (ok=%v)",
		reps, ub, strings.Join(table, "\n"), float64(free)/(1<<30), tel.PowerW, tel.HasPower)
}

// TestDeviceOption checks the CPU side of the device options: "cpu" and ""
// load, an unknown device is an error naming it, Release of a CPU cache is
// a no-op, and DecodeGreedy on the CPU is Forward's argmax.
func TestDeviceOption(t *testing.T) {
	path := testdata.GLMTiny(t, "glm-tiny-q4_k_m.gguf")
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := glm4moe.Load(f, glm4moe.Options{Device: "tpu"}); err == nil || !strings.Contains(err.Error(), "tpu") {
		t.Fatalf("Device tpu: error %v, want one naming the device", err)
	}
	m, err := glm4moe.Load(f, glm4moe.Options{Device: "cpu", Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	if m.Options().Device != "cpu" {
		t.Errorf("Options().Device = %q", m.Options().Device)
	}
	toks := readTokens(t)[:6]
	ca, _ := m.NewCache(8)
	cb, _ := m.NewCache(8)
	if err := cb.Release(); err != nil {
		t.Fatal(err)
	}
	logits, err := m.Forward(ca, toks, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Forward(cb, toks[:5], false); err != nil {
		t.Fatal(err)
	}
	id, err := m.DecodeGreedy(cb, toks[5])
	if err != nil {
		t.Fatal(err)
	}
	if int(id) != argmax(logits) {
		t.Errorf("DecodeGreedy %d, argmax of Forward %d", id, argmax(logits))
	}
}
