package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"
)

// Summary is the seed summary object (interfaces.md §1.5). Pointer fields
// are null when not measured.
type Summary struct {
	Timestamp     string        `json:"timestamp"`
	Model         string        `json:"model"`
	PromptsTested int           `json:"prompts_tested"`
	Throughput    Throughput    `json:"throughput"`
	Energy        SummaryEnergy `json:"energy"`
	Latency       Latency       `json:"latency"`

	// Extensions.
	ModelFile   string          `json:"model_file"`
	Backend     string          `json:"backend"`
	CPU         string          `json:"cpu"`
	GPU         *string         `json:"gpu"`
	Threads     int             `json:"threads"`
	Build       string          `json:"build_commit"`
	VRAMPeakMiB *float64        `json:"vram_peak_mib"`
	RSSPeakMiB  *float64        `json:"rss_peak_mib"`
	Results     []SummaryResult `json:"results"`
	Skipped     []Skip          `json:"skipped"`
}

// Throughput holds the mean, min and max over cases of the decode rate
// (avg_gen_ts: tokens per second excluding prefill).
type Throughput struct {
	Mean *float64 `json:"mean_tokens_per_second"`
	Min  *float64 `json:"min_tokens_per_second"`
	Max  *float64 `json:"max_tokens_per_second"`
}

// SummaryEnergy: MeanTokensPerWatt is (tokens/s)/W = tokens per joule,
// Σ(P+G) over all timed repetitions ÷ Σ joules of the device that ran the
// model (the GPU on a GPU backend, the CPU package on the CPU backend).
type SummaryEnergy struct {
	MeanTokensPerWatt *float64 `json:"mean_tokens_per_watt"`
	GPUEnergyWh       *float64 `json:"gpu_energy_wh"`
	CPUEnergyWh       *float64 `json:"cpu_energy_wh"`
}

// Latency holds the means over cases of avg_ttft_ms and avg_gen_ms.
type Latency struct {
	TimeToFirstTokenMs *float64 `json:"time_to_first_token_ms"`
	GenerationTimeMs   *float64 `json:"generation_time_ms"`
}

// SummaryResult is one case of the summary.
type SummaryResult struct {
	NPrompt        int      `json:"n_prompt"`
	NGen           int      `json:"n_gen"`
	NDepth         int      `json:"n_depth"`
	AvgTS          float64  `json:"avg_ts"`
	AvgGenTS       *float64 `json:"avg_gen_ts"`
	AvgPromptTS    *float64 `json:"avg_prompt_ts"`
	AvgTTFTms      *float64 `json:"avg_ttft_ms"`
	AvgGenMs       *float64 `json:"avg_gen_ms"`
	EndToEndMs     float64  `json:"end_to_end_ms"`
	TokensPerJoule *float64 `json:"tokens_per_joule"`
	CPUEnergyJ     *float64 `json:"cpu_energy_j"`
	GPUEnergyJ     *float64 `json:"gpu_energy_j"`
	RSSPeakMiB     *float64 `json:"rss_peak_mib"`
	VRAMPeakMiB    *float64 `json:"vram_peak_mib"`
}

func ptr(v float64) *float64 { return &v }

// Summarize builds the summary of results. GPU fields (gpu, vram_peak_mib,
// gpu_energy_wh) come from GPU-backend results and stay null without them. In seed mode (any split test)
// only the split (P, G) cases count; otherwise every test does.
func Summarize(results []*Result, skipped []Skip, started time.Time) *Summary {
	s := &Summary{Timestamp: started.UTC().Format(time.RFC3339), Skipped: skipped}
	if s.Skipped == nil {
		s.Skipped = []Skip{}
	}
	split := false
	for _, r := range results {
		split = split || r.Inst.Split
	}
	var genTS, ttft, genMs []float64
	var tokens, devJ, cpuJ, gpuJ float64
	allDev, allCPU, allGPU := true, true, true
	var rssPeak *float64
	for _, r := range results {
		if split && !r.Inst.Split {
			continue
		}
		if s.Model == "" {
			s.Model, s.ModelFile, s.Backend, s.CPU, s.Threads, s.Build = r.Model.Type, r.Inst.Model, r.Backend, r.CPUInfo, r.Inst.Threads, r.Build
		}
		s.PromptsTested++
		sr := SummaryResult{NPrompt: r.Inst.NPrompt, NGen: r.Inst.NGen, NDepth: r.Inst.Depth, AvgTS: r.AvgTS(),
			EndToEndMs: float64(avgNs(r.SamplesNs)) / 1e6, TokensPerJoule: r.TokensPerJoule(), CPUEnergyJ: r.CPUJoules,
			GPUEnergyJ: r.GPUJoules, VRAMPeakMiB: mib(r.VRAMPeak)}
		if r.GPUName != "" && s.GPU == nil {
			name := r.GPUName
			s.GPU = &name
		}
		if v := sr.VRAMPeakMiB; v != nil && (s.VRAMPeakMiB == nil || *v > *s.VRAMPeakMiB) {
			s.VRAMPeakMiB = ptr(*v)
		}
		if g := r.GenTS(); len(g) > 0 {
			sr.AvgGenTS = ptr(mean(g))
			genTS = append(genTS, *sr.AvgGenTS)
		}
		if t := r.PromptTS(); len(t) > 0 {
			sr.AvgPromptTS = ptr(mean(t))
		}
		if t := r.TTFTms(); len(t) > 0 {
			sr.AvgTTFTms = ptr(mean(t))
			ttft = append(ttft, *sr.AvgTTFTms)
		}
		if r.GenNs != nil {
			var ms []float64
			for _, ns := range r.GenNs {
				ms = append(ms, float64(ns)/1e6)
			}
			sr.AvgGenMs = ptr(mean(ms))
			genMs = append(genMs, *sr.AvgGenMs)
		} else if r.Inst.NPrompt == 0 && r.Inst.NGen > 0 {
			sr.AvgGenMs = ptr(sr.EndToEndMs)
			genMs = append(genMs, *sr.AvgGenMs)
		}
		if r.RSSPeak != nil {
			v := float64(*r.RSSPeak) / (1 << 20)
			sr.RSSPeakMiB = &v
			if rssPeak == nil || v > *rssPeak {
				rssPeak = ptr(v)
			}
		}
		tokens += float64((r.Inst.NPrompt + r.Inst.NGen) * len(r.SamplesNs))
		if j := r.EnergyJoules(); j != nil {
			devJ += *j
		} else {
			allDev = false
		}
		if r.CPUJoules != nil {
			cpuJ += *r.CPUJoules
		} else {
			allCPU = false
		}
		if r.GPUJoules != nil {
			gpuJ += *r.GPUJoules
		} else {
			allGPU = false
		}
		s.Results = append(s.Results, sr)
	}
	if s.Results == nil {
		s.Results = []SummaryResult{}
	}
	if len(genTS) > 0 {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, v := range genTS {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
		s.Throughput = Throughput{Mean: ptr(mean(genTS)), Min: ptr(lo), Max: ptr(hi)}
	}
	if len(ttft) > 0 {
		s.Latency.TimeToFirstTokenMs = ptr(mean(ttft))
	}
	if len(genMs) > 0 {
		s.Latency.GenerationTimeMs = ptr(mean(genMs))
	}
	if s.PromptsTested > 0 {
		if allDev && devJ > 0 {
			s.Energy.MeanTokensPerWatt = ptr(tokens / devJ)
		}
		if allCPU {
			s.Energy.CPUEnergyWh = ptr(cpuJ / 3600)
		}
		if allGPU {
			s.Energy.GPUEnergyWh = ptr(gpuJ / 3600)
		}
	}
	s.RSSPeakMiB = rssPeak
	return s
}

// WriteSummary writes s as indented JSON to path ("-" = w).
func WriteSummary(s *Summary, path string, w io.Writer) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = w.Write(b)
		return err
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}
