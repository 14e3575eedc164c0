// Command glmbench benchmarks glmrun the way llama-bench benchmarks
// llama.cpp: the same flags, test kinds (pp, tg, pg, depth), timing
// definitions and output formats (md, csv, json, jsonl, sql), so scripts and
// compare tools written for llama-bench work unchanged. It adds a seed sweep
// (--prompt-sizes × --output-tokens with time to first token and decode
// rate), a summary JSON (--summary-json / --json-out), CPU energy from RAPL,
// peak RSS, SVG plots (--plot) and comparison of saved runs (--compare).
//
//	glmbench -m model.gguf -p 512 -n 128 -o json
//	glmbench -m model.gguf --prompt-sizes 1k,10k --output-tokens 16,256 --json-out run.json --plot run.svg
//	glmbench --compare a.json b.json --plot compare.svg
//
// Run glmbench -h for every flag. --device cuda (or -dev cuda) runs the
// model on CUDA device 0 (glm4moe Options.Device "cuda").
package main

import (
	"os"

	"github.com/glmrun/glmrun/bench"
)

func main() {
	args, cuda := deviceArg(os.Args[1:])
	if cuda {
		os.Exit(bench.Main(args, os.Stdout, os.Stderr, loadCUDA, "CUDA"))
	}
	os.Exit(bench.Main(args, os.Stdout, os.Stderr, bench.LoadGLM4MoE, "CPU"))
}
