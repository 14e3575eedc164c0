// Command glmrun runs GLM-4.7-Flash GGUF models from the command line, with
// llama.cpp's llama-cli / llama-completion flags (shared/spec/interfaces.md
// §4). By default it answers one chat turn (GLM template, thinking on):
// reasoning goes to stderr between [Start thinking] and [End thinking], the
// answer to stdout. -no-cnv gives raw completion. Timings go to stderr.
//
// Test and inspection flags: --token-ids-file F (prompt as token ids),
// --dump-logits OUT (float32 LE logits [n][vocab] for every prompt position,
// then exit), --exact, --tokenize (print the prompt's ids as a JSON array),
// --inspect [--json] (dump the GGUF header and tensor table).
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
