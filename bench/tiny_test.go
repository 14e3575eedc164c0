package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/glmrun/glmrun/internal/testdata"
)

// runMain runs glmbench's Main on the real engine.
func runMain(t *testing.T, args ...string) (string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := Main(args, &out, &errb); code != 0 {
		t.Fatalf("glmbench %q: exit %d\n%s", args, code, errb.String())
	}
	return out.String(), errb.String()
}

// TestTinyJSON is issue 9's acceptance command.
func TestTinyJSON(t *testing.T) {
	model := testdata.GLMTiny(t, "glm-tiny-q4_k_m.gguf")
	out, _ := runMain(t, "-m", model, "-p", "32", "-n", "8", "-r", "2", "-o", "json")
	var tests []map[string]any
	if err := json.Unmarshal([]byte(out), &tests); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(tests) != 2 {
		t.Fatalf("%d tests", len(tests))
	}
	for i, tc := range tests {
		if len(tc) != 42 {
			t.Errorf("test %d has %d keys, want 40 fields + samples_ns + samples_ts", i, len(tc))
		}
		for _, f := range LlamaFields() {
			if _, ok := tc[f]; !ok {
				t.Errorf("test %d lacks %s", i, f)
			}
		}
		if ts, _ := tc["avg_ts"].(float64); ts <= 0 {
			t.Errorf("test %d avg_ts %v", i, tc["avg_ts"])
		}
		if s, _ := tc["samples_ns"].([]any); len(s) != 2 {
			t.Errorf("test %d samples_ns %v", i, tc["samples_ns"])
		}
		if tc["model_type"] != "deepseek2 ?B Q4_K - Medium" || tc["backends"] != "CPU" {
			t.Errorf("test %d identity %v %v", i, tc["model_type"], tc["backends"])
		}
	}
	if tests[0]["n_prompt"].(float64) != 32 || tests[1]["n_gen"].(float64) != 8 {
		t.Errorf("tests %v / %v", tests[0]["n_prompt"], tests[1]["n_gen"])
	}
}

func TestTinyFormats(t *testing.T) {
	model := testdata.GLMTiny(t, "glm-tiny-q4_k_m.gguf")
	args := []string{"-m", model, "-p", "8", "-n", "2", "-r", "1"}

	out, _ := runMain(t, append(args, "-o", "md")...)
	lines := strings.Split(out, "\n")
	if len(lines) != 7 || !strings.HasPrefix(lines[0], "| model ") || !strings.Contains(lines[2], "|             pp8 |") ||
		!strings.Contains(lines[3], "|             tg2 |") || !strings.HasPrefix(lines[5], "build: ") {
		t.Errorf("md:\n%s", out)
	}

	out, _ = runMain(t, append(args, "-o", "csv")...)
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 3 || !slices.Equal(rows[0], LlamaFields()) {
		t.Fatalf("csv %v:\n%s", err, out)
	}
	if rows[1][32] != "8" || rows[2][33] != "2" || rows[1][38] == "0.000000" {
		t.Errorf("csv rows %q", rows[1:])
	}

	out, _ = runMain(t, append(args, "-o", "jsonl")...)
	jl := strings.Split(strings.TrimSpace(out), "\n")
	if len(jl) != 2 {
		t.Fatalf("jsonl:\n%s", out)
	}
	for _, l := range jl {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["avg_ts"].(float64) <= 0 {
			t.Errorf("jsonl line %v: %s", err, l)
		}
	}

	out, _ = runMain(t, append(args, "-o", "sql")...)
	if strings.Count(out, "INSERT INTO llama_bench") != 2 {
		t.Errorf("sql:\n%s", out)
	}
}

// TestTinySeedSweep runs a small seed sweep: the summary JSON, the extra
// columns and the plot.
func TestTinySeedSweep(t *testing.T) {
	model := testdata.GLMTiny(t, "glm-tiny-q4_k_m.gguf")
	dir := t.TempDir()
	summary := filepath.Join(dir, "run.json")
	plot := filepath.Join(dir, "run.svg")
	out, stderr := runMain(t, "-m", model, "--prompt-sizes", "16,32", "--output-tokens", "2,4", "-r", "1",
		"--json-out", summary, "--plot", plot, "-o", "jsonl", "--progress")
	if !strings.Contains(stderr, "glmbench: benchmark 4/4: generation run 1/1") {
		t.Errorf("progress:\n%s", stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("jsonl:\n%s", out)
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first["avg_ttft_ms"].(float64) <= 0 || first["avg_gen_ts"].(float64) <= 0 || first["gpu_energy_j"] != nil {
		t.Errorf("extra fields %v", first)
	}
	data, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	thr := s["throughput"].(map[string]any)
	lat := s["latency"].(map[string]any)
	if s["prompts_tested"].(float64) != 4 || s["model"] != "deepseek2 ?B Q4_K - Medium" ||
		thr["mean_tokens_per_second"].(float64) <= 0 || thr["min_tokens_per_second"].(float64) > thr["max_tokens_per_second"].(float64) ||
		lat["time_to_first_token_ms"].(float64) <= 0 || lat["generation_time_ms"].(float64) <= 0 {
		t.Errorf("summary:\n%s", data)
	}
	if _, ok := s["energy"].(map[string]any)["gpu_energy_wh"]; !ok {
		t.Error("energy.gpu_energy_wh missing (must be null, not absent)")
	}
	svg, err := os.ReadFile(plot)
	if err != nil {
		t.Fatal(err)
	}
	pts, _ := svgPoints(t, svg)
	if len(pts) != 8 {
		t.Errorf("%d plotted points, want 8 (4 cases × decode and prefill)", len(pts))
	}
}
