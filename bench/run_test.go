package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/glmrun/glmrun/gguf"
)

// fakeEngine counts what the benchmark asks of it.
type fakeEngine struct {
	vocab    int
	kvPerTok uint64
	loads    *int
	seqs     []*fakeSeq
	opt      LoadOptions
}

type fakeSeq struct {
	cap, n   int
	decodes  []int // tokens per Decode call
	maxToken int32
	vocab    int
}

func (e *fakeEngine) NewSequence(maxTokens int) (Sequence, error) {
	s := &fakeSeq{cap: maxTokens, vocab: e.vocab}
	e.seqs = append(e.seqs, s)
	return s, nil
}
func (e *fakeEngine) VocabSize() int               { return e.vocab }
func (e *fakeEngine) Backend() string              { return "CPU" }
func (e *fakeEngine) Close() error                 { return nil }
func (e *fakeEngine) KVBytes(maxTokens int) uint64 { return uint64(maxTokens) * e.kvPerTok }
func (s *fakeSeq) Len() int                        { return s.n }
func (s *fakeSeq) Truncate(n int) error            { return s.check(n <= s.n, "truncate", n, func() { s.n = n }) }
func (s *fakeSeq) check(ok bool, what string, n int, f func()) error {
	if !ok {
		return fmt.Errorf("fake: bad %s %d (len %d)", what, n, s.n)
	}
	f()
	return nil
}

func (s *fakeSeq) Decode(tokens []int32) ([]float32, error) {
	if s.n+len(tokens) > s.cap {
		return nil, fmt.Errorf("fake: overflow %d+%d > %d", s.n, len(tokens), s.cap)
	}
	for _, t := range tokens {
		if t < 0 || int(t) >= s.vocab {
			return nil, fmt.Errorf("fake: token %d", t)
		}
		s.maxToken = max(s.maxToken, t)
	}
	s.n += len(tokens)
	s.decodes = append(s.decodes, len(tokens))
	time.Sleep(time.Duration(len(tokens)) * 20 * time.Microsecond)
	return make([]float32, s.vocab), nil
}

// tinyFile writes a minimal GGUF that Describe accepts.
func tinyFile(t *testing.T, layers uint32, withFtype bool) string {
	t.Helper()
	var buf bytes.Buffer
	w := gguf.NewWriter(&buf)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.AddKV("general.architecture", gguf.String("deepseek2")))
	must(w.AddKV("deepseek2.block_count", gguf.Uint32(layers)))
	must(w.AddKV("deepseek2.context_length", gguf.Uint32(64)))
	if withFtype {
		must(w.AddKV("general.file_type", gguf.Uint32(15)))
	}
	_, err := w.AddTensor("a.weight", gguf.TypeF32, 4)
	must(err)
	_, err = w.AddTensor("b.weight", gguf.TypeQ4_K, 256, 2)
	must(err)
	_, err = w.AddTensor("c.weight", gguf.TypeQ4_K, 256)
	must(err)
	must(w.WriteTensorData(make([]byte, 16)))
	must(w.WriteTensorData(make([]byte, 288)))
	must(w.WriteTensorData(make([]byte, 144)))
	must(w.Close())
	p := filepath.Join(t.TempDir(), "m.gguf")
	must(os.WriteFile(p, buf.Bytes(), 0o644))
	return p
}

func TestDescribe(t *testing.T) {
	for _, c := range []struct {
		layers uint32
		ftype  bool
		want   string
	}{
		{47, true, "deepseek2 30B.A3B Q4_K - Medium"},
		{4, true, "deepseek2 ?B Q4_K - Medium"},
		{27, false, "deepseek2 16B (guessed) Q4_K - Medium"},
	} {
		f, err := gguf.Open(tinyFile(t, c.layers, c.ftype))
		if err != nil {
			t.Fatal(err)
		}
		d, err := Describe(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if d.Type != c.want || d.Size != 16+288+144 || d.Params != 4+512+256 {
			t.Errorf("Describe = %+v, want type %q, size 448, params 772", d, c.want)
		}
	}
}

func runFake(t *testing.T, args []string, memAvail uint64) (*Runner, *fakeEngine, string, string, error) {
	t.Helper()
	p, err := Parse(args, 2)
	if err != nil {
		t.Fatal(err)
	}
	loads := 0
	eng := &fakeEngine{vocab: 100, kvPerTok: 1000, loads: &loads}
	var out, errb bytes.Buffer
	r := &Runner{Params: p, Backend: "CPU", Stdout: &out, Stderr: &errb, PowercapRoot: t.TempDir(),
		Load: func(opt LoadOptions) (Engine, error) {
			loads++
			eng.opt = opt
			return eng, nil
		},
		MemAvailable: func() (uint64, bool) { return memAvail, true },
	}
	err = r.Run()
	return r, eng, out.String(), errb.String(), err
}

func TestRunnerTiming(t *testing.T) {
	model := tinyFile(t, 47, true)
	r, eng, out, stderr, err := runFake(t, []string{"-m", model, "-p", "10", "-n", "3", "-pg", "5,2", "-d", "0,7",
		"-b", "4", "-r", "2", "-o", "json", "--progress"}, 1<<40)
	if err != nil {
		t.Fatal(err, stderr)
	}
	if len(r.Results) != 6 || len(eng.seqs) != 6 {
		t.Fatalf("%d results, %d sequences", len(r.Results), len(eng.seqs))
	}
	// pp10 at depth 0 with -b 4: warmup 4+4+2, then per rep 4+4+2.
	if got := eng.seqs[0].decodes; !slices.Equal(got, []int{4, 4, 2, 4, 4, 2, 4, 4, 2}) || eng.seqs[0].cap != 10 {
		t.Errorf("pp10 decodes %v cap %d", got, eng.seqs[0].cap)
	}
	// tg3: one warmup token, then 3 single-token decodes per rep.
	if got := eng.seqs[1].decodes; !slices.Equal(got, []int{1, 1, 1, 1, 1, 1, 1}) {
		t.Errorf("tg3 decodes %v", got)
	}
	// tg3 at depth 7: warmup 1, depth filled once (4+3), reps 3 tokens each.
	if got := eng.seqs[4].decodes; !slices.Equal(got, []int{1, 4, 3, 1, 1, 1, 1, 1, 1}) || eng.seqs[4].cap != 10 {
		t.Errorf("tg3 @ d7 decodes %v cap %d", got, eng.seqs[4].cap)
	}
	for i, res := range r.Results {
		if len(res.SamplesNs) != 2 || res.AvgTS() <= 0 {
			t.Errorf("result %d: samples %v", i, res.SamplesNs)
		}
	}
	pg := r.Results[2]
	if !pg.Inst.Split || len(pg.TTFTNs) != 2 || len(pg.GenNs) != 2 || pg.TTFTNs[0]+pg.GenNs[0] != pg.SamplesNs[0] {
		t.Errorf("pg split timing %v + %v vs %v", pg.TTFTNs, pg.GenNs, pg.SamplesNs)
	}
	for _, want := range []string{"glmbench: benchmark 1/6: starting", "glmbench: benchmark 1/6: warmup prompt run",
		"glmbench: benchmark 1/6: prompt run 2/2", "glmbench: benchmark 5/6: depth run 1/2",
		"glmbench: benchmark 5/6: depth run 2/2 (cached)", "glmbench: benchmark 6/6: generation run 2/2"} {
		if !strings.Contains(stderr, want+"\n") {
			t.Errorf("progress line %q missing from\n%s", want, stderr)
		}
	}
	var tests []map[string]any
	if err := json.Unmarshal([]byte(out), &tests); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	if len(tests) != 6 || tests[5]["n_depth"].(float64) != 7 || tests[2]["n_prompt"].(float64) != 5 {
		t.Errorf("json tests %v", tests)
	}
	if eng.opt.Threads != 2 || eng.opt.UBatch != 512 || eng.opt.LoadMode != "mmap" {
		t.Errorf("load options %+v", eng.opt)
	}
}

func TestRunnerReloadsOnThreadsOnly(t *testing.T) {
	model := tinyFile(t, 47, true)
	p, err := Parse([]string{"-m", model, "-p", "4", "-n", "0", "-t", "1,2", "-d", "0,2", "-r", "1", "-o", "none", "--no-warmup"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	loads := 0
	r := &Runner{Params: p, Backend: "CPU", Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, PowercapRoot: t.TempDir(),
		Load: func(opt LoadOptions) (Engine, error) {
			loads++
			return &fakeEngine{vocab: 10, loads: &loads}, nil
		}}
	if err := r.Run(); err != nil {
		t.Fatal(err)
	}
	if loads != 2 || len(r.Results) != 4 {
		t.Errorf("%d loads, %d results; want 2 loads (one per thread count), 4 results", loads, len(r.Results))
	}
}

func TestRunnerSkipsWhatDoesNotFit(t *testing.T) {
	model := tinyFile(t, 47, true)
	// 1000 bytes per token, 20000 available: P+G = 8+4 fits, 32+4 does not.
	r, _, _, stderr, err := runFake(t, []string{"-m", model, "--prompt-sizes", "8,32", "--output-tokens", "4", "-r", "1",
		"-o", "none"}, 20000)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Results) != 1 || len(r.Skipped) != 1 || r.Skipped[0].NPrompt != 32 || !strings.Contains(stderr, "skipping pp32+tg4") {
		t.Errorf("results %d skipped %+v stderr %s", len(r.Results), r.Skipped, stderr)
	}
	s := Summarize(r.Results, r.Skipped, r.Started)
	if s.PromptsTested != 1 || len(s.Skipped) != 1 {
		t.Errorf("summary %+v", s)
	}
	// Beyond the training context (64 in tinyFile): skipped in seed mode.
	r, _, _, stderr, err = runFake(t, []string{"-m", model, "--prompt-sizes", "8,100", "--output-tokens", "4", "-r", "1",
		"-o", "none"}, 1<<40)
	if err != nil || len(r.Results) != 1 || len(r.Skipped) != 1 || !strings.Contains(r.Skipped[0].Reason, "training context 64") {
		t.Errorf("ctx skip: %v %d %+v %s", err, len(r.Results), r.Skipped, stderr)
	}
	// Outside seed mode a test that does not fit is an error.
	if _, _, _, _, err := runFake(t, []string{"-m", model, "-p", "32", "-n", "0", "-r", "1", "-o", "none"}, 20000); err == nil {
		t.Error("oversized pp test ran")
	}
}

func TestStats(t *testing.T) {
	r := &Result{Inst: Instance{NPrompt: 100}, SamplesNs: []uint64{1e9, 2e9, 4e9}}
	ts := r.TS()
	if !slices.Equal(ts, []float64{100, 50, 25}) {
		t.Fatalf("TS %v", ts)
	}
	if got := r.AvgTS(); got != 175.0/3 {
		t.Errorf("avg_ts %v (must be the mean of rates, not tokens/mean time)", got)
	}
	// sample std of {100, 50, 25}: mean 58.33, sum sq dev = 2916.67 → sqrt(1458.33) = 38.188
	if got := r.StddevTS(); got < 38.18 || got > 38.19 {
		t.Errorf("stddev_ts %v", got)
	}
	if avgNs(r.SamplesNs) != 2333333333 {
		t.Errorf("avg_ns %d", avgNs(r.SamplesNs))
	}
	if got := stdevNs(r.SamplesNs); got < 1527525000 || got > 1527526000 {
		t.Errorf("stddev_ns %d", got)
	}
	one := &Result{Inst: Instance{NGen: 4}, SamplesNs: []uint64{5e8}}
	if one.StddevTS() != 0 || stdevNs(one.SamplesNs) != 0 || one.AvgTS() != 8 {
		t.Errorf("single sample: %v %v %v", one.StddevTS(), stdevNs(one.SamplesNs), one.AvgTS())
	}
}

func fixedResult() *Result {
	cj := 12.5
	rss := uint64(300 << 20)
	return &Result{
		Inst: Instance{Model: "m.gguf", Batch: 2048, UBatch: 512, Threads: 2, CPUMask: "0x0", Poll: 50, TypeK: "f32", TypeV: "f32",
			NGL: -1, SplitMode: "layer", FlashAttn: -1, Devices: "auto", TensorSplit: "0.00", Overrides: "none", LoadMode: "mmap",
			NPrompt: 512, NGen: 128, Split: true},
		Model:     ModelDesc{Type: `deepseek2 30B.A3B Q4_K - Medium`, Size: 18129483520 - 9999, Params: 29943393920},
		Build:     "abc1234",
		BuildNum:  7,
		CPUInfo:   `Xeon "X"`,
		Backend:   "CPU",
		TestTime:  time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC),
		SamplesNs: []uint64{2e9, 4e9},
		TTFTNs:    []uint64{1e9, 2e9},
		GenNs:     []uint64{1e9, 2e9},
		CPUJoules: &cj,
		RSSPeak:   &rss,
	}
}

func printed(t *testing.T, format string, extra bool, p *Params) string {
	t.Helper()
	var b bytes.Buffer
	pr, err := NewPrinter(format, &b, "CPU", extra)
	if err != nil {
		t.Fatal(err)
	}
	pr.Header(p)
	pr.Test(fixedResult())
	pr.Footer()
	return b.String()
}

func defaultParams(t *testing.T) *Params {
	p, err := Parse(nil, PhysicalCores())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestJSONFieldOrder(t *testing.T) {
	p := defaultParams(t)
	for _, format := range []string{"json", "jsonl"} {
		out := printed(t, format, false, p)
		// Keys in order, by scanning the text.
		var keys []string
		rest := out
		for {
			i := strings.Index(rest, `": `)
			if i < 0 {
				break
			}
			j := strings.LastIndex(rest[:i], `"`)
			keys = append(keys, rest[j+1:i])
			rest = rest[i+3:]
		}
		want := append(LlamaFields(), "samples_ns", "samples_ts")
		if !slices.Equal(keys, want) {
			t.Errorf("%s keys\n got %v\nwant %v", format, keys, want)
		}
		var v any
		if format == "json" {
			err := json.Unmarshal([]byte(out), &v)
			if err != nil || !strings.HasPrefix(out, "[\n  {\n    \"build_commit\": \"abc1234\",\n") || !strings.HasSuffix(out, "  }\n]\n") {
				t.Errorf("json layout (%v):\n%s", err, out)
			}
		} else if err := json.Unmarshal([]byte(out), &v); err != nil || strings.Count(out, "\n") != 1 {
			t.Errorf("jsonl layout (%v):\n%s", err, out)
		}
		for _, frag := range []string{`"cpu_info": "Xeon \"X\""`, `"cpu_strict": false`, `"avg_ts": 240.000000`,
			`"stddev_ts": 113.137085`, `"avg_ns": 3000000000`, `"samples_ns": [ 2000000000, 4000000000 ]`,
			`"samples_ts": [ 320, 160 ]`, `"test_time": "2026-11-22T01:02:03Z"`, `"flash_attn": -1`, `"no_op_offload": 0`} {
			if !strings.Contains(out, frag) {
				t.Errorf("%s: %s missing in\n%s", format, frag, out)
			}
		}
	}
	// With extras, the extension fields follow samples_ts, nulls as null.
	out := printed(t, "json", true, p)
	var v []map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err, out)
	}
	if v[0]["avg_ttft_ms"].(float64) != 1500 || v[0]["avg_gen_ts"].(float64) != 96 || v[0]["gpu_energy_j"] != nil ||
		v[0]["cpu_energy_j"].(float64) != 12.5 || v[0]["tokens_per_joule"].(float64) != 640.0*2/12.5 || v[0]["rss_peak_mib"].(float64) != 300 {
		t.Errorf("extras %v", v[0])
	}
	if strings.Index(out, `"samples_ts"`) > strings.Index(out, `"avg_ttft_ms"`) {
		t.Error("extras must come after samples_ts")
	}
}

func TestCSVAndSQL(t *testing.T) {
	p := defaultParams(t)
	out := printed(t, "csv", false, p)
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || !slices.Equal(rows[0], LlamaFields()) || len(rows[1]) != 40 || rows[1][2] != `Xeon "X"` || rows[1][13] != "0" {
		t.Errorf("csv rows %q", rows)
	}
	if !strings.Contains(out, `"Xeon ""X"""`) || !strings.HasPrefix(strings.Split(out, "\n")[1], `"abc1234","7",`) {
		t.Errorf("csv quoting:\n%s", out)
	}
	out = printed(t, "csv", true, p)
	rows, err = csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || !slices.Equal(rows[0][:40], LlamaFields()) || rows[0][40] != "avg_ttft_ms" || len(rows[0]) != len(rows[1]) {
		t.Errorf("csv extras %v %q", err, rows)
	}
	out = printed(t, "sql", false, p)
	if !strings.HasPrefix(out, "CREATE TABLE IF NOT EXISTS llama_bench (\n  build_commit TEXT,\n  build_number INTEGER,\n") ||
		!strings.Contains(out, "  avg_ts REAL,\n  stddev_ts REAL\n);\n\nINSERT INTO llama_bench (build_commit, build_number, ") ||
		!strings.Contains(out, "VALUES ('abc1234', '7', 'Xeon \"X\"', '', 'CPU', 'm.gguf', ") ||
		!strings.Contains(out, "  cpu_strict INTEGER,\n") {
		t.Errorf("sql:\n%s", out)
	}
}

func TestMarkdown(t *testing.T) {
	p := defaultParams(t)
	out := printed(t, "md", false, p)
	lines := strings.Split(out, "\n")
	want := []string{
		"| model                          |       size |     params | backend    | threads |            test |                  t/s |",
		"| ------------------------------ | ---------: | ---------: | ---------- | ------: | --------------: | -------------------: |",
		"| deepseek2 30B.A3B Q4_K - Medium |  16.88 GiB |    29.94 B | CPU        |       2 |     pp512+tg128 |      240.00 ± 113.14 |",
		"",
		"build: " + buildCommit() + " (0)",
		"",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("md\n got %q\nwant %q", lines, want)
	}
	// Non-default parameters get columns; depth shows in the test name.
	p2, err := Parse([]string{"-b", "512", "-ub", "128,256", "-fa", "on", "-lm", "none"}, PhysicalCores())
	if err != nil {
		t.Fatal(err)
	}
	out = printed(t, "md", true, p2)
	head := strings.Split(out, "\n")[0]
	for _, col := range []string{"| n_batch |", "| n_ubatch |", "|  fa |", "|         lm |", "ttft ms |", "gen t/s |", "t/J |", "RSS MiB |"} {
		if !strings.Contains(head, col) {
			t.Errorf("column %q missing: %s", col, head)
		}
	}
	if strings.Contains(head, "ngl") {
		t.Error("ngl column on a CPU backend")
	}
	in := Instance{NPrompt: 0, NGen: 128, Depth: 4096}
	if in.Name() != "tg128 @ d4096" {
		t.Errorf("name %q", in.Name())
	}
}
