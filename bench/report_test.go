package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// svgPoints parses an SVG and returns the data points (circles) and bars it
// carries, failing if it is not well-formed SVG.
func svgPoints(t *testing.T, data []byte) (points, bars []map[string]string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(data))
	root := true
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if root {
			if se.Name.Local != "svg" || se.Name.Space != "http://www.w3.org/2000/svg" {
				t.Fatalf("root element %v, want svg in the SVG namespace", se.Name)
			}
			root = false
		}
		attrs := map[string]string{}
		for _, a := range se.Attr {
			attrs[a.Name.Local] = a.Value
		}
		switch {
		case se.Name.Local == "circle" && attrs["class"] == "point":
			points = append(points, attrs)
		case se.Name.Local == "rect" && attrs["class"] == "bar":
			bars = append(bars, attrs)
		}
	}
	if root {
		t.Fatal("empty SVG")
	}
	return points, bars
}

func TestLineChartCarriesPoints(t *testing.T) {
	results := []*Result{}
	for _, np := range []int{1000, 10000, 100000} {
		for _, ng := range []int{16, 256} {
			results = append(results, &Result{Inst: Instance{NPrompt: np, NGen: ng, Split: true},
				SamplesNs: []uint64{uint64(np+ng) * 1e6}, TTFTNs: []uint64{uint64(np) * 1e6}, GenNs: []uint64{uint64(ng) * 2e6}})
		}
	}
	charts := ResultCharts(results, "deepseek2 <test> & co")
	var b bytes.Buffer
	if err := WriteLineCharts(&b, charts); err != nil {
		t.Fatal(err)
	}
	pts, _ := svgPoints(t, b.Bytes())
	if len(pts) != 12 { // 6 decode + 6 prefill points
		t.Fatalf("%d points, want 12", len(pts))
	}
	found := 0
	for _, p := range pts {
		x, _ := strconv.ParseFloat(p["data-x"], 64)
		y, _ := strconv.ParseFloat(p["data-y"], 64)
		if p["data-series"] == "256 output tokens" && x == 10000 {
			found++
			if y != 500 && y != 1000 { // decode 256/(256·2 ms) = 500 t/s; prefill 1000 t/s
				t.Errorf("point %v", p)
			}
		}
	}
	if found != 2 {
		t.Errorf("found %d points for 256 tokens at 10k", found)
	}
	if !strings.Contains(b.String(), "deepseek2 &lt;test&gt; &amp; co") {
		t.Error("title not escaped")
	}

	// Depth sweep: x is the depth.
	results = []*Result{
		{Inst: Instance{NGen: 8}, SamplesNs: []uint64{1e8}},
		{Inst: Instance{NGen: 8, Depth: 512}, SamplesNs: []uint64{2e8}},
	}
	charts = ResultCharts(results, "m")
	b.Reset()
	if err := WriteLineCharts(&b, charts); err != nil {
		t.Fatal(err)
	}
	pts, _ = svgPoints(t, b.Bytes())
	if len(pts) != 2 || pts[1]["data-x"] != "512" || pts[1]["data-series"] != "tg8" || pts[1]["data-y"] != "40.0000" {
		t.Errorf("depth points %v", pts)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCompare(t *testing.T) {
	dir := t.TempDir()
	r1 := fixedResult()
	s1 := Summarize([]*Result{r1}, nil, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	s1.CPU = "RTX box CPU"
	gpu := "NVIDIA RTX 4090"
	s1.GPU = &gpu
	a := filepath.Join(dir, "rtx.json")
	writeJSON(t, a, s1)
	// The second run is llama-bench style -o json output.
	var b bytes.Buffer
	pr, _ := NewPrinter("json", &b, "CPU", false)
	pr.Header(nil)
	r2 := fixedResult()
	r2.Inst.NPrompt, r2.Inst.Split, r2.CPUInfo = 0, false, "Apple M4 Max"
	pr.Test(r2)
	pr.Footer()
	m4 := filepath.Join(dir, "m4max.json")
	if err := os.WriteFile(m4, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	svg := filepath.Join(dir, "cmp.svg")
	var out, errb bytes.Buffer
	if code := Main([]string{"--compare", a, m4, "--plot", svg}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("table:\n%s", out.String())
	}
	if !strings.HasPrefix(lines[2], "| rtx | deepseek2 30B.A3B Q4_K - Medium | NVIDIA RTX 4090 | CPU | threads=2 | ") ||
		!strings.Contains(lines[2], "| 96.00 |") || !strings.HasPrefix(lines[3], "| m4max | ") || !strings.Contains(lines[3], "| Apple M4 Max |") ||
		!strings.Contains(lines[3], "| 48.00 |") { // tg128 in 2 s and 4 s: mean of 64 and 32 t/s
		t.Errorf("table rows:\n%s", out.String())
	}
	data, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	_, bars := svgPoints(t, data)
	labels := map[string]bool{}
	for _, bar := range bars {
		labels[bar["data-label"]] = true
	}
	if !labels["rtx"] || !labels["m4max"] {
		t.Errorf("bars %v", bars)
	}
	if code := Main([]string{"--compare", filepath.Join(dir, "missing.json")}, &out, &errb); code == 0 {
		t.Error("missing file accepted")
	}
}

func TestRAPL(t *testing.T) {
	root := t.TempDir()
	write := func(rel, v string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if OpenRAPL(root) != nil {
		t.Fatal("RAPL found in an empty directory")
	}
	write("intel-rapl:0/energy_uj", "1000000")
	write("intel-rapl:0/max_energy_range_uj", "10000000")
	write("intel-rapl:0:0/energy_uj", "5") // a sub-zone: must not be added again
	write("intel-rapl:1/energy_uj", "9500000")
	write("intel-rapl:1/max_energy_range_uj", "10000000")
	r := OpenRAPL(root)
	if r == nil || len(r.zones) != 2 {
		t.Fatalf("zones %+v", r)
	}
	before, err := r.Sample()
	if err != nil {
		t.Fatal(err)
	}
	write("intel-rapl:0/energy_uj", "3500000") // +2.5 J
	write("intel-rapl:1/energy_uj", "500000")  // wrapped: +1 J
	after, err := r.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if j := r.Joules(before, after); math.Abs(j-3.5) > 1e-9 {
		t.Errorf("joules %v, want 3.5", j)
	}
}

func TestSummary(t *testing.T) {
	a := fixedResult()
	b := fixedResult()
	b.Inst.NPrompt = 1024
	b.GenNs = []uint64{5e8, 5e8}
	b.CPUJoules = nil
	tg := fixedResult() // not a split test: ignored when split tests exist
	tg.Inst.NPrompt, tg.Inst.Split = 0, false
	s := Summarize([]*Result{a, b, tg}, nil, time.Date(2026, 8, 20, 10, 11, 12, 0, time.UTC))
	if s.Timestamp != "2026-08-20T10:11:12Z" || s.PromptsTested != 2 || s.Model != "deepseek2 30B.A3B Q4_K - Medium" {
		t.Errorf("summary %+v", s)
	}
	// decode rates: a: 96 (mean of 128, 64); b: 256.
	if *s.Throughput.Mean != 176 || *s.Throughput.Min != 96 || *s.Throughput.Max != 256 {
		t.Errorf("throughput %v %v %v", *s.Throughput.Mean, *s.Throughput.Min, *s.Throughput.Max)
	}
	if s.Energy.CPUEnergyWh != nil || s.Energy.MeanTokensPerWatt != nil || s.Energy.GPUEnergyWh != nil {
		t.Error("energy must be null when one case lacks it")
	}
	if *s.Latency.TimeToFirstTokenMs != 1500 || *s.Latency.GenerationTimeMs != (1500+500)/2.0 {
		t.Errorf("latency %v %v", *s.Latency.TimeToFirstTokenMs, *s.Latency.GenerationTimeMs)
	}
	var buf bytes.Buffer
	if err := WriteSummary(s, "-", &buf); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"timestamp", "model", "prompts_tested", "throughput", "energy", "latency", "results", "skipped"} {
		if _, ok := m[k]; !ok {
			t.Errorf("summary lacks %q", k)
		}
	}
	e := m["energy"].(map[string]any)
	if _, ok := e["cpu_energy_wh"]; !ok || e["cpu_energy_wh"] != nil {
		t.Errorf("cpu_energy_wh must be present and null: %v", e)
	}
	s = Summarize([]*Result{a}, nil, time.Now())
	if *s.Energy.CPUEnergyWh != 12.5/3600 || *s.Energy.MeanTokensPerWatt != 1280/12.5 {
		t.Errorf("energy %v %v", *s.Energy.CPUEnergyWh, *s.Energy.MeanTokensPerWatt)
	}
}

func TestNiceTicksCoverRange(t *testing.T) {
	for _, c := range [][2]float64{{0, 8.5}, {0, 1}, {0, 2585.1 * 1.1}, {1.2, 5.7}, {0, 1e-9}} {
		ticks := niceTicks(c[0], c[1], defaultTicks)
		if len(ticks) < 2 || ticks[0] > c[0] || ticks[len(ticks)-1] < c[1] || len(ticks) > 2*defaultTicks+2 {
			t.Errorf("niceTicks(%v, %v) = %v", c[0], c[1], ticks)
		}
	}
	if num(100000) != "100k" || num(2500) != "2500" || num(1500000) != "1.5M" || num(0.5) != "0.5" {
		t.Errorf("num: %s %s %s %s", num(100000), num(2500), num(1500000), num(0.5))
	}
}
