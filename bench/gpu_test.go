package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeGPU is a GPU engine with deterministic telemetry: the energy counter
// grows by joulesPerToken for every token decoded, power is constant, and
// device memory in use is base + weights + the caps of the live sequences'
// caches.
type fakeGPU struct {
	fakeEngine
	mu             sync.Mutex
	tokens         int
	live           uint64 // KV bytes of unreleased sequences
	released       int
	joulesPerToken float64
	powerW         float64
	hasEnergy      bool
	hasPower       bool
	hasMem         bool
	base, weights  uint64
	free           uint64
}

type fakeGPUSeq struct {
	*fakeSeq
	g     *fakeGPU
	bytes uint64
}

func (g *fakeGPU) Backend() string { return "CUDA" }
func (g *fakeGPU) GPUName() string { return "Fake GPU 80GB" }
func (g *fakeGPU) GPUReading() GPUReading {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := GPUReading{Err: errors.New("fake: some reading missing")}
	if g.hasEnergy {
		r.EnergyJ, r.HasEnergy = 1000+float64(g.tokens)*g.joulesPerToken, true
	}
	if g.hasPower {
		r.PowerW, r.HasPower = g.powerW, true
	}
	if g.hasMem {
		r.MemUsed, r.HasMem = g.base+g.weights+g.live, true
	}
	return r
}
func (g *fakeGPU) VRAMBaseline() (uint64, bool) { return g.base, g.hasMem }
func (g *fakeGPU) VRAMWeights() (uint64, bool)  { return g.weights, true }
func (g *fakeGPU) VRAMFree() (uint64, bool)     { return g.free, true }
func (g *fakeGPU) NewSequence(maxTokens int) (Sequence, error) {
	s, _ := g.fakeEngine.NewSequence(maxTokens)
	b := g.KVBytes(maxTokens)
	g.mu.Lock()
	g.live += b
	g.mu.Unlock()
	return &fakeGPUSeq{fakeSeq: s.(*fakeSeq), g: g, bytes: b}, nil
}
func (s *fakeGPUSeq) Decode(tokens []int32) ([]float32, error) {
	out, err := s.fakeSeq.Decode(tokens)
	s.g.mu.Lock()
	s.g.tokens += len(tokens)
	s.g.mu.Unlock()
	return out, err
}
func (s *fakeGPUSeq) Release() error {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	s.g.live -= s.bytes
	s.g.released++
	return nil
}

func newFakeGPU() *fakeGPU {
	loads := 0
	return &fakeGPU{fakeEngine: fakeEngine{vocab: 100, kvPerTok: 1 << 20, loads: &loads},
		joulesPerToken: 0.5, powerW: 250, hasEnergy: true, hasPower: true, hasMem: true,
		base: 3 << 30, weights: 100 << 20, free: 50 << 30}
}

// gpuRun runs args with a CPU backend (fakeEngine) and a fake CUDA backend
// whose probe returns probeErr.
func gpuRun(t *testing.T, args []string, g *fakeGPU, probeErr error) (r *Runner, cpu *fakeEngine, out, stderr string, err error) {
	t.Helper()
	p, err := Parse(args, 2)
	if err != nil {
		t.Fatal(err)
	}
	loads := 0
	cpu = &fakeEngine{vocab: 100, kvPerTok: 1000, loads: &loads}
	var o, e bytes.Buffer
	cpuB := CPUBackend()
	cpuB.Load = func(opt LoadOptions) (Engine, error) { loads++; cpu.opt = opt; return cpu, nil }
	gpuB := Backend{Name: "CUDA", Device: "CUDA0", CacheTypes: []string{"f16", "f32"}, ExactCacheType: "f32",
		Probe: func() (string, error) { return "Fake GPU 80GB (81920 MiB, 80000 MiB free)", probeErr },
		Load: func(opt LoadOptions) (Engine, error) {
			*g.loads++
			g.opt = opt
			return g, nil
		}}
	r = &Runner{Params: p, Backends: []Backend{cpuB, gpuB}, Stdout: &o, Stderr: &e, PowercapRoot: t.TempDir(),
		MemAvailable: func() (uint64, bool) { return 1 << 40, true }}
	err = r.Run()
	return r, cpu, o.String(), e.String(), err
}

func TestGPUTelemetryColumns(t *testing.T) {
	model := tinyFile(t, 47, true)
	g := newFakeGPU()
	r, cpu, out, stderr, err := gpuRun(t, []string{"-m", model, "-dev", "cuda", "-p", "8", "-n", "4", "-pg", "6,3",
		"-r", "3", "-o", "json", "--extra-cols", "--power-sample-ms", "1"}, g, nil)
	if err != nil {
		t.Fatal(err, stderr)
	}
	if *cpu.loads != 0 || *g.loads != 1 || g.opt.Backend != "CUDA" || g.opt.CacheType != "f16" {
		t.Fatalf("cpu loads %d, gpu loads %d, gpu options %+v", *cpu.loads, *g.loads, g.opt)
	}
	if g.released != 3 || g.live != 0 {
		t.Errorf("released %d sequences, %d bytes still live", g.released, g.live)
	}
	var tests []map[string]any
	if err := json.Unmarshal([]byte(out), &tests); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if len(tests) != 3 {
		t.Fatalf("%d tests", len(tests))
	}
	for i, tt := range tests {
		res := r.Results[i]
		tokens := float64((res.Inst.NPrompt + res.Inst.NGen) * 3)
		wantJ := tokens * g.joulesPerToken // counter difference over the timed repetitions only
		if tt["backends"] != "CUDA" || tt["gpu_info"] != "Fake GPU 80GB" || tt["gpu_name"] != "Fake GPU 80GB" ||
			tt["type_k"] != "f16" || tt["type_v"] != "f16" || tt["devices"] != "CUDA0" {
			t.Errorf("test %d: identity fields %v %v %v %v %v", i, tt["backends"], tt["gpu_info"], tt["gpu_name"], tt["type_k"], tt["devices"])
		}
		if j, _ := tt["gpu_energy_j"].(float64); math.Abs(j-wantJ) > 1e-6 {
			t.Errorf("test %d: gpu_energy_j %v, want %v", i, tt["gpu_energy_j"], wantJ)
		}
		if tpj, _ := tt["tokens_per_joule"].(float64); math.Abs(tpj-1/g.joulesPerToken) > 1e-6 {
			t.Errorf("test %d: tokens_per_joule %v, want %v", i, tt["tokens_per_joule"], 1/g.joulesPerToken)
		}
		var secs float64
		for _, ns := range res.SamplesNs {
			secs += float64(ns) / 1e9
		}
		if w, _ := tt["gpu_avg_power_w"].(float64); math.Abs(w-wantJ/secs) > 1e-6*w {
			t.Errorf("test %d: gpu_avg_power_w %v, want %v", i, tt["gpu_avg_power_w"], wantJ/secs)
		}
		if tt["gpu_peak_power_w"] != 250.0 {
			t.Errorf("test %d: gpu_peak_power_w %v", i, tt["gpu_peak_power_w"])
		}
		// Peak device memory above the baseline: weights + this test's cache
		// (the previous test's cache was released).
		kvMiB := float64(res.Inst.NPrompt + res.Inst.NGen)
		if tt["vram_peak_mib"] != 100+kvMiB || tt["vram_weights_mib"] != 100.0 || tt["vram_kv_mib"] != kvMiB {
			t.Errorf("test %d: vram peak %v weights %v kv %v, want %v, 100, %v", i, tt["vram_peak_mib"],
				tt["vram_weights_mib"], tt["vram_kv_mib"], 100+kvMiB, kvMiB)
		}
		if tt["gpu_power_limit_w"] != nil || tt["cpu_energy_j"] != nil {
			t.Errorf("test %d: unmeasured fields not null: %v %v", i, tt["gpu_power_limit_w"], tt["cpu_energy_j"])
		}
	}

	// -pg makes this a split run: the summary counts the pg case only.
	s := Summarize(r.Results, nil, r.Started)
	if s.GPU == nil || *s.GPU != "Fake GPU 80GB" || s.VRAMPeakMiB == nil || *s.VRAMPeakMiB != 109 ||
		s.Energy.GPUEnergyWh == nil || s.Energy.MeanTokensPerWatt == nil || s.Backend != "CUDA" {
		t.Fatalf("summary %+v", s)
	}
	wantWh := float64(9*3) * g.joulesPerToken / 3600
	if math.Abs(*s.Energy.GPUEnergyWh-wantWh) > 1e-9 || math.Abs(*s.Energy.MeanTokensPerWatt-2) > 1e-9 {
		t.Errorf("summary energy %v Wh (want %v), %v t/J (want 2)", *s.Energy.GPUEnergyWh, wantWh, *s.Energy.MeanTokensPerWatt)
	}
	if len(s.Results) != 1 || s.Results[0].VRAMPeakMiB == nil || *s.Results[0].VRAMPeakMiB != 109 ||
		s.Results[0].GPUEnergyJ == nil || *s.Results[0].GPUEnergyJ != 27*g.joulesPerToken {
		t.Errorf("summary results %+v", s.Results)
	}
}

func TestGPUEnergyFromPowerSamples(t *testing.T) {
	t.Run("no counter", func(t *testing.T) {
		g := newFakeGPU()
		g.hasEnergy = false
		checkPowerIntegral(t, g)
	})
	t.Run("counter does not advance", func(t *testing.T) {
		g := newFakeGPU()
		g.joulesPerToken = 0
		checkPowerIntegral(t, g)
	})
}

// checkPowerIntegral runs tg200 twice on g at 100 W: the power samples are
// integrated (trapezoid rule) over each repetition, so joules ≈ power ×
// timed seconds.
func checkPowerIntegral(t *testing.T, g *fakeGPU) {
	model := tinyFile(t, 47, true)
	g.powerW = 100
	r, _, _, stderr, err := gpuRun(t, []string{"-m", model, "-dev", "CUDA0", "-p", "0", "-n", "200", "-r", "2", "-o", "none",
		"--power-sample-ms", "1"}, g, nil)
	if err != nil {
		t.Fatal(err, stderr)
	}
	res := r.Results[0]
	var secs float64
	for _, ns := range res.SamplesNs {
		secs += float64(ns) / 1e9
	}
	if res.GPUJoules == nil {
		t.Fatal("no GPU energy from power samples")
	}
	// The first and last readings bracket the timed region, so the integral
	// is a little more than power × time.
	if j := *res.GPUJoules; j < 100*secs*0.99 || j > 100*secs*1.5+0.01 {
		t.Errorf("trapezoid energy %v J over %v s at 100 W", j, secs)
	}
}

func TestGPUTelemetryUnavailable(t *testing.T) {
	model := tinyFile(t, 47, true)
	g := newFakeGPU()
	g.hasEnergy, g.hasPower, g.hasMem = false, false, false
	r, _, out, stderr, err := gpuRun(t, []string{"-m", model, "-dev", "cuda", "-p", "4", "-n", "0", "-r", "1", "-o", "jsonl", "--extra-cols"}, g, nil)
	if err != nil {
		t.Fatal(err, stderr)
	}
	var tt map[string]any
	if err := json.Unmarshal([]byte(out), &tt); err != nil {
		t.Fatal(err, out)
	}
	for _, f := range []string{"gpu_energy_j", "gpu_avg_power_w", "gpu_peak_power_w", "tokens_per_joule", "vram_peak_mib"} {
		if v, ok := tt[f]; !ok || v != nil {
			t.Errorf("%s = %v (present %v), want null", f, v, ok)
		}
	}
	if tt["gpu_name"] != "Fake GPU 80GB" || tt["vram_weights_mib"] != 100.0 {
		t.Errorf("gpu_name %v, vram_weights_mib %v", tt["gpu_name"], tt["vram_weights_mib"])
	}
	if !strings.Contains(stderr, "GPU energy not measured on Fake GPU 80GB (reported as null): fake: some reading missing") {
		t.Errorf("no note about the missing energy:\n%s", stderr)
	}
	s := Summarize(r.Results, nil, r.Started)
	if s.Energy.GPUEnergyWh != nil || s.Energy.MeanTokensPerWatt != nil || s.VRAMPeakMiB != nil {
		t.Errorf("summary made up numbers: %+v", s.Energy)
	}
	// --energy on is an error when NVML gives neither counter nor power.
	_, _, _, _, err = gpuRun(t, []string{"-m", model, "-dev", "cuda", "-p", "4", "-n", "0", "-r", "1", "--energy", "on"}, g, nil)
	if err == nil || !strings.Contains(err.Error(), "--energy on") {
		t.Errorf("--energy on without NVML power: %v", err)
	}
	// --energy off: no energy, but memory still.
	g.hasMem = true
	r, _, _, _, err = gpuRun(t, []string{"-m", model, "-dev", "cuda", "-p", "4", "-n", "0", "-r", "1", "-o", "none", "--energy", "off"}, newFakeGPU(), nil)
	if err != nil || r.Results[0].GPUJoules != nil || r.Results[0].GPUPeakPowerW != nil || r.Results[0].VRAMPeak == nil {
		t.Errorf("--energy off: err %v, result %+v", err, r.Results[0])
	}
}

func TestDeviceSelection(t *testing.T) {
	model := tinyFile(t, 47, true)
	noGPU := errors.New("dlopen libcuda.so.1: not found")
	base := []string{"-m", model, "-p", "4", "-n", "0", "-r", "1", "--no-warmup"}

	// Explicit CUDA without a usable device: a clear error, nothing run.
	for _, dev := range []string{"cuda", "CUDA0", "cuda0"} {
		g := newFakeGPU()
		_, cpu, out, _, err := gpuRun(t, append([]string{"-dev", dev}, base...), g, noGPU)
		if err == nil || !strings.Contains(err.Error(), "no CUDA device: ") || !strings.Contains(err.Error(), "libcuda") ||
			*cpu.loads != 0 || *g.loads != 0 || out != "" {
			t.Errorf("-dev %s without GPU: err %v, loads %d/%d, out %q", dev, err, *cpu.loads, *g.loads, out)
		}
	}

	// auto without a GPU: the CPU, f32, with a note saying why.
	g := newFakeGPU()
	r, cpu, _, stderr, err := gpuRun(t, append([]string{"-o", "none"}, base...), g, noGPU)
	if err != nil || *cpu.loads != 1 || *g.loads != 0 || r.Results[0].Backend != "CPU" || r.Results[0].Inst.TypeK != "f32" ||
		r.Results[0].Inst.Devices != "auto" || cpu.opt.CacheType != "f32" {
		t.Fatalf("auto fallback: err %v, loads %d/%d, result %+v", err, *cpu.loads, *g.loads, r.Results)
	}
	if !strings.Contains(stderr, "-dev auto: no CUDA device: dlopen libcuda.so.1: not found; running on the CPU") {
		t.Errorf("auto fallback note missing:\n%s", stderr)
	}
	if r.Results[0].GPUJoules != nil || r.Results[0].VRAMPeak != nil || r.Results[0].GPUName != "" {
		t.Errorf("CPU result has GPU figures: %+v", r.Results[0])
	}

	// auto with a GPU: CUDA, f16; -ngl 0 selects the CPU; other -ngl values
	// are echoed with one warning.
	g = newFakeGPU()
	r, cpu, out, stderr, err := gpuRun(t, append([]string{"-ngl", "0,99,-1", "-o", "csv"}, base...), g, nil)
	if err != nil {
		t.Fatal(err, stderr)
	}
	var backs []string
	for _, res := range r.Results {
		backs = append(backs, res.Backend+"/"+res.Inst.TypeK)
	}
	if strings.Join(backs, ",") != "CPU/f32,CUDA/f16,CUDA/f16" || *cpu.loads != 1 || *g.loads != 1 {
		t.Errorf("-ngl 0,99,-1: backends %v, loads %d/%d", backs, *cpu.loads, *g.loads)
	}
	if strings.Count(stderr, "-ngl 99: the CUDA backend runs every layer on the GPU") != 1 || strings.Contains(stderr, "-ngl -1") {
		t.Errorf("ngl warnings:\n%s", stderr)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 4 {
		t.Fatalf("csv: %v\n%s", err, out)
	}
	col := slices.Index(rows[0], "n_gpu_layers")
	if got := []string{rows[1][col], rows[2][col], rows[3][col]}; !slices.Equal(got, []string{"0", "99", "-1"}) {
		t.Errorf("csv n_gpu_layers %v, want the -ngl values echoed", got)
	}

	// -dev none and cpu are the CPU even with a GPU present.
	g = newFakeGPU()
	r, _, _, _, err = gpuRun(t, append([]string{"-dev", "none,cpu", "-o", "none"}, base...), g, nil)
	if err != nil || len(r.Results) != 2 || r.Results[0].Backend != "CPU" || r.Results[1].Inst.Devices != "none" || *g.loads != 0 {
		t.Errorf("-dev none,cpu: err %v, results %d, gpu loads %d", err, len(r.Results), *g.loads)
	}
}

func TestCacheTypesPerBackend(t *testing.T) {
	model := tinyFile(t, 47, true)
	base := []string{"-m", model, "-p", "4", "-n", "0", "-r", "1", "--no-warmup", "-o", "none"}
	cases := []struct {
		args    []string
		probe   error
		wantErr string // "" = runs
		wantCT  string
	}{
		{[]string{"-dev", "cuda", "-ctk", "f32", "-ctv", "f32"}, nil, "", "f32"},
		{[]string{"-dev", "cuda", "-ctk", "f16"}, nil, "", "f16"},
		{[]string{"-dev", "cuda", "--exact"}, nil, "", "f32"},
		{[]string{"-dev", "cuda", "--exact", "-ctk", "f16"}, nil, "--exact runs with a f32 cache on the CUDA backend", ""},
		{[]string{"-dev", "cuda", "-ctk", "f16", "-ctv", "f32"}, nil, "both must be the same type", ""},
		{[]string{"-dev", "none", "-ctk", "f16", "-ctv", "f16"}, nil, "cache type f16 is not supported on the CPU backend (supported: f32)", ""},
		{[]string{"-ctk", "f16"}, errors.New("no driver"), "cache type f16 is not supported on the CPU backend", ""},
		{[]string{"-dev", "none", "-ctk", "f32"}, nil, "", "f32"},
	}
	for _, c := range cases {
		g := newFakeGPU()
		r, cpu, _, stderr, err := gpuRun(t, append(c.args, base...), g, c.probe)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%v: err %v, want %q", c.args, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v\n%s", c.args, err, stderr)
			continue
		}
		opt := g.opt
		if r.Results[0].Backend == "CPU" {
			opt = cpu.opt
		}
		if in := r.Results[0].Inst; in.TypeK != c.wantCT || in.TypeV != c.wantCT || opt.CacheType != c.wantCT {
			t.Errorf("%v: type_k %s type_v %s loaded with %q, want %s", c.args, in.TypeK, in.TypeV, opt.CacheType, c.wantCT)
		}
	}
}

func TestListDevices(t *testing.T) {
	var b bytes.Buffer
	ListDevices(&b, []Backend{{Name: "CUDA", Device: "CUDA0", CacheTypes: []string{"f16"},
		Probe: func() (string, error) { return "", errors.New("dlopen libcuda.so.1: not found") }}})
	if s := b.String(); !strings.Contains(s, "CUDA0: not usable: no CUDA device: dlopen libcuda.so.1: not found") ||
		!strings.Contains(s, "  CPU: ") || strings.Contains(s, "no GPU backend") {
		t.Errorf("list without GPU:\n%s", s)
	}
	b.Reset()
	ListDevices(&b, []Backend{{Name: "CUDA", Device: "CUDA0", CacheTypes: []string{"f16"},
		Probe: func() (string, error) { return "Fake GPU (81920 MiB, 80000 MiB free)", nil }}})
	if s := b.String(); !strings.Contains(s, "  CUDA0: Fake GPU (81920 MiB, 80000 MiB free)\n") {
		t.Errorf("list with GPU:\n%s", s)
	}
}

func TestTrapezoidJoules(t *testing.T) {
	t0 := time.Unix(0, 0)
	s := []gpuSample{
		{t0, GPUReading{PowerW: 100, HasPower: true}},
		{t0.Add(time.Second), GPUReading{}}, // no power reading: skipped
		{t0.Add(2 * time.Second), GPUReading{PowerW: 200, HasPower: true}},
		{t0.Add(3 * time.Second), GPUReading{PowerW: 200, HasPower: true}},
	}
	if j, ok := trapezoidJoules(s); !ok || j != 2*150+200 {
		t.Errorf("trapezoid %v %v, want 500", j, ok)
	}
	if _, ok := trapezoidJoules(s[:2]); ok {
		t.Error("one power sample gave an energy")
	}
}
