package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Run is one saved benchmark run, reduced to the comparison columns.
type Run struct {
	Name      string   // file base name
	Model     string   // model_type
	Machine   string   // GPU name, else CPU name
	Backend   string   // backends
	Config    string   // threads / batch etc.
	PromptTS  *float64 // prefill tokens/s
	DecodeTS  *float64 // decode tokens/s
	TokPerJ   *float64 // tokens per joule
	TTFTms    *float64 // time to first token
	MemoryMiB *float64 // peak VRAM, else peak RSS
}

// LoadRun reads a saved run: a glmbench summary (--summary-json), or
// llama-bench/glmbench -o json or -o jsonl output.
func LoadRun(path string) (*Run, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	run := &Run{Name: strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))}
	trim := bytes.TrimSpace(data)
	if len(trim) == 0 {
		return nil, fmt.Errorf("%s: empty file", path)
	}
	if trim[0] == '{' {
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(trim, &probe); err == nil {
			if _, ok := probe["throughput"]; ok {
				var s Summary
				if err := json.Unmarshal(trim, &s); err != nil {
					return nil, fmt.Errorf("%s: %w", path, err)
				}
				fillFromSummary(run, &s)
				return run, nil
			}
		}
		// jsonl: one test object per line.
		var tests []map[string]any
		sc := bufio.NewScanner(bytes.NewReader(trim))
		sc.Buffer(make([]byte, 1<<20), 1<<26)
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			var t map[string]any
			if err := json.Unmarshal(line, &t); err != nil {
				return nil, fmt.Errorf("%s: not a summary, json or jsonl run: %w", path, err)
			}
			tests = append(tests, t)
		}
		return fillFromTests(run, tests, path)
	}
	var tests []map[string]any
	if err := json.Unmarshal(trim, &tests); err != nil {
		return nil, fmt.Errorf("%s: not a summary, json or jsonl run: %w", path, err)
	}
	return fillFromTests(run, tests, path)
}

func fillFromSummary(run *Run, s *Summary) {
	run.Model = s.Model
	run.Machine = s.CPU
	if s.GPU != nil && *s.GPU != "" {
		run.Machine = *s.GPU
	}
	run.Backend = s.Backend
	if s.Threads > 0 {
		run.Config = fmt.Sprintf("threads=%d", s.Threads)
	}
	run.DecodeTS = s.Throughput.Mean
	run.TokPerJ = s.Energy.MeanTokensPerWatt
	run.TTFTms = s.Latency.TimeToFirstTokenMs
	var pts []float64
	for _, r := range s.Results {
		if r.AvgPromptTS != nil {
			pts = append(pts, *r.AvgPromptTS)
		}
	}
	if len(pts) > 0 {
		run.PromptTS = ptr(mean(pts))
	}
	run.MemoryMiB = s.VRAMPeakMiB
	if run.MemoryMiB == nil {
		run.MemoryMiB = s.RSSPeakMiB
	}
}

func getF(t map[string]any, k string) (float64, bool) {
	v, ok := t[k].(float64)
	return v, ok
}

func getS(t map[string]any, k string) string {
	v, _ := t[k].(string)
	return v
}

func fillFromTests(run *Run, tests []map[string]any, path string) (*Run, error) {
	if len(tests) == 0 {
		return nil, fmt.Errorf("%s: no tests in the file", path)
	}
	var pp, tg, ttft, tpj, mem []float64
	for _, t := range tests {
		np, ok1 := getF(t, "n_prompt")
		ng, ok2 := getF(t, "n_gen")
		ts, ok3 := getF(t, "avg_ts")
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("%s: a test lacks n_prompt, n_gen or avg_ts", path)
		}
		if run.Model == "" {
			run.Model = getS(t, "model_type")
			run.Machine = getS(t, "gpu_info")
			if run.Machine == "" {
				run.Machine = getS(t, "cpu_info")
			}
			run.Backend = getS(t, "backends")
			if nt, ok := getF(t, "n_threads"); ok {
				run.Config = fmt.Sprintf("threads=%d", int(nt))
			}
			if ngl, ok := getF(t, "n_gpu_layers"); ok && run.Backend != "CPU" {
				run.Config += fmt.Sprintf(" ngl=%d", int(ngl))
			}
		}
		switch {
		case np > 0 && ng == 0:
			pp = append(pp, ts)
			ttft = append(ttft, 1e3*np/ts)
		case np == 0 && ng > 0:
			tg = append(tg, ts)
		default:
			if g, ok := getF(t, "avg_gen_ts"); ok {
				tg = append(tg, g)
			}
			if p, ok := getF(t, "avg_prompt_ts"); ok {
				pp = append(pp, p)
			}
			if v, ok := getF(t, "avg_ttft_ms"); ok {
				ttft = append(ttft, v)
			}
		}
		if v, ok := getF(t, "tokens_per_joule"); ok {
			tpj = append(tpj, v)
		}
		if v, ok := getF(t, "vram_peak_mib"); ok {
			mem = append(mem, v)
		} else if v, ok := getF(t, "rss_peak_mib"); ok {
			mem = append(mem, v)
		}
	}
	opt := func(v []float64) *float64 {
		if len(v) == 0 {
			return nil
		}
		return ptr(mean(v))
	}
	run.PromptTS, run.DecodeTS, run.TokPerJ, run.TTFTms = opt(pp), opt(tg), opt(tpj), opt(ttft)
	if len(mem) > 0 {
		m := 0.0
		for _, v := range mem {
			m = math.Max(m, v)
		}
		run.MemoryMiB = &m
	}
	return run, nil
}

// WriteCompareTable writes the comparison report as a markdown table, one
// row per run.
func WriteCompareTable(w io.Writer, runs []*Run) {
	f := func(v *float64, format string) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf(format, *v)
	}
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	fmt.Fprintln(w, "| run | model | machine | backend | config | prompt t/s | decode t/s | tokens/J | TTFT ms | peak mem MiB |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range runs {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", cell(r.Name), cell(r.Model), cell(r.Machine),
			cell(r.Backend), cell(r.Config), f(r.PromptTS, "%.2f"), f(r.DecodeTS, "%.2f"), f(r.TokPerJ, "%.3f"),
			f(r.TTFTms, "%.1f"), f(r.MemoryMiB, "%.0f"))
	}
}

// CompareChart is the bar chart of the runs' decode and prompt speeds.
func CompareChart(runs []*Run) BarChart {
	c := BarChart{Title: "glmbench comparison", YLabel: "tokens/s", SeriesNames: []string{"decode t/s", "prompt t/s"}}
	for _, r := range runs {
		c.Labels = append(c.Labels, r.Name)
		v := []float64{math.NaN(), math.NaN()}
		if r.DecodeTS != nil {
			v[0] = *r.DecodeTS
		}
		if r.PromptTS != nil {
			v[1] = *r.PromptTS
		}
		c.Values = append(c.Values, v)
	}
	return c
}
