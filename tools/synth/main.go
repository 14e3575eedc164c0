// Command synth writes a GLM-4.7-Flash-shaped GGUF with random weights, for
// benchmarking glmrun and llama.cpp on identical bytes without downloading
// the 18 GB model.
//
//	go run ./tools/synth -o FILE [--layers 47] [--type q4_k_m|mmfp4|bf16] [--seed N]
//
// The file has architecture deepseek2, the real metadata values
// (shared/spec/model-glm47-flash.md §1-§2, plus expert_gating_func = 2), the
// real tensor names and shapes (844 tensors at 47 layers; layer 0 dense, the
// rest MoE), a 154880-token byte-level BPE vocabulary with GLM's 36 special
// tokens and the GLM-4.7-Flash chat template. Types follow stock
// llama-quantize Q4_K_M (281 f32 + 470 q4_K + 47 q5_0 + 46 q6_K at 47
// layers), all-bf16 matrices (--type bf16), or MMFP4 (id 4160) for every
// in-block matrix whose rows are a multiple of 128 (--type mmfp4).
//
// Blocks are generated directly in quantized form (random codes, scales
// chosen so weights have std ≈ 1/sqrt(fan_in) and mean ≈ 0; norms ≈ 1), so
// nothing is NaN or Inf. Output is streamed, and identical for the same
// flags and seed.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/spf13/pflag"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "synth:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := pflag.NewFlagSet("synth", pflag.ContinueOnError)
	out := fs.StringP("output", "o", "", "output GGUF file (required)")
	layers := fs.Int("layers", 47, "block_count: layer 0 dense, the rest MoE")
	preset := fs.String("preset", "real", "shape: real (GLM-4.7-Flash's dimensions) or small (same architecture, small dimensions, 32768-token vocabulary)")
	typ := fs.String("type", string(QuantQ4KM), "weight type mix: q4_k_m, mmfp4 or bf16")
	seed := fs.Uint64("seed", 1, "random seed for the weights (the vocabulary does not depend on it)")
	threads := fs.Int("threads", runtime.NumCPU(), "generator goroutines (the bytes do not depend on it)")
	quiet := fs.BoolP("quiet", "q", false, "no progress on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *out == "" {
		return fmt.Errorf("-o FILE is required")
	}
	if *threads < 1 {
		return fmt.Errorf("--threads must be >= 1, got %d", *threads)
	}
	shape, err := presetShape(*preset, *layers)
	if err != nil {
		return err
	}
	q := Quant(*typ)
	if _, err := Plan(shape, q); err != nil {
		return err
	}

	tmp := *out + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	start := time.Now()
	last := start
	progress := func(done, total uint64) {
		if *quiet || (time.Since(last) < 2*time.Second && done != total) {
			return
		}
		last = time.Now()
		el := time.Since(start).Seconds()
		fmt.Fprintf(os.Stderr, "synth: %s: %.2f / %.2f GiB (%.0f%%), %.1f s, %.0f MiB/s\n",
			filepath.Base(*out), gib(done), gib(total), 100*float64(done)/float64(max(total, 1)), el, float64(done)/(1<<20)/max(el, 1e-9))
	}
	if err := Generate(f, shape, q, *seed, *threads, progress); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, *out)
}

func gib(b uint64) float64 { return float64(b) / (1 << 30) }
