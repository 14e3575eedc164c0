// Command glmbench benchmarks glmrun the way llama-bench benchmarks
// llama.cpp: the same flags, test kinds (pp, tg, pg, depth), timing
// definitions and output formats (md, csv, json, jsonl, sql), so scripts and
// compare tools written for llama-bench work unchanged. It adds a seed sweep
// (--prompt-sizes × --output-tokens with time to first token and decode
// rate), a summary JSON (--summary-json / --json-out), energy and memory
// columns (CPU: RAPL energy and peak RSS; CUDA: NVML energy, power, peak VRAM
// and the weights/KV split), SVG plots (--plot) and comparison of saved runs
// (--compare).
//
//	glmbench -m model.gguf -p 512 -n 128 -o json
//	glmbench -m model.gguf -dev cuda -fa 1 -p 512 -n 128 -r 3
//	glmbench -m model.gguf --prompt-sizes 1k,10k --output-tokens 16,256 --json-out run.json --plot run.svg
//	glmbench --compare a.json b.json --plot compare.svg
//
// Backends: -dev/--device picks one per test, with llama-bench's values
// auto (the default: CUDA device 0 when the driver and a GPU are usable,
// otherwise the CPU, with a note on stderr saying why), none (the CPU) and
// CUDA0; cpu and cuda are accepted as ours and normalised to none and CUDA0.
// -dev cuda without a usable device fails with "no CUDA device: ...". The
// CUDA backend (this file's cuda.go: glm4moe with Options.Device "cuda")
// runs every layer on the GPU, so -ngl 0 selects the CPU and other -ngl
// values are echoed. Its KV cache is f16 by default (llama-bench's default)
// or f32 (-ctk f32 -ctv f32; --exact always uses f32); the CPU's is f32 only.
// type_k/type_v report the type actually used. --list-devices probes the
// GPU. Run glmbench -h for every flag.
package main

import (
	"os"

	"github.com/glmrun/glmrun/bench"
)

func main() {
	os.Exit(bench.Main(os.Args[1:], os.Stdout, os.Stderr, cudaBackend()))
}
