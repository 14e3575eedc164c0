// Command glmquant converts GGUF models between weight-type mixes the way
// llama-quantize does, and imports metal-marlin MMFP4 checkpoints.
//
//	glmquant [--allow-requantize] [--threads N] IN.gguf OUT.gguf TYPE [NTHREADS]
//	glmquant --import-mmfp4 SRC --template BASE.gguf OUT.gguf
//
// TYPE is Q8_0, Q4_K_S, Q4_K_M, Q5_K_M, Q6_K (llama-quantize's per-tensor
// rules and reference quantizers: glm-tiny's Q4_K_M comes out byte for byte)
// or MMFP4 (this project's FP4 E2M1 type, id 4160: block matrices in MMFP4,
// token_embd q4_K and output q6_K as in Q4_K_M, rows that are not a multiple
// of 128 in q8_0, or f16 when not a multiple of 32). Already quantized
// inputs are refused unless --allow-requantize. Progress and the size
// summary go to stderr.
//
// --import-mmfp4 reads a metal-marlin MMFP4 safetensors file or directory
// (U32 codes + F16 .scales, group 128, no Hadamard rotation) and writes
// OUT.gguf: BASE.gguf supplies the metadata, tokenizer and every tensor the
// checkpoint does not hold quantized; each packed HF tensor replaces the
// GGUF tensor it maps to, converted losslessly to MMFP4.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/cli"
	"github.com/glmrun/glmrun/quantize"
)

const synopsis = "glmquant [--allow-requantize] [--threads N] IN.gguf OUT.gguf TYPE [NTHREADS]\n" +
	"       glmquant --import-mmfp4 SRC --template BASE.gguf OUT.gguf\n" +
	"TYPE: Q8_0, Q4_K_S, Q4_K_M, Q5_K_M, Q6_K, MMFP4"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("glmquant")
	allow := fs.Bool("allow-requantize", false, "allow requantizing tensors that are already quantized (dequantized exactly first; loses accuracy)")
	threads := fs.IntP("threads", "t", 0, "conversion threads (0 = all CPUs; the output does not depend on it)")
	importSrc := fs.String("import-mmfp4", "", "import a metal-marlin MMFP4 safetensors file or directory instead of requantizing")
	template := fs.String("template", "", "with --import-mmfp4: GGUF supplying metadata, tokenizer and the tensors not imported")
	fs.BoolP("help", "h", false, "show this help")
	if err := cli.Parse(fs, args); err != nil {
		if errors.Is(err, cli.ErrHelp) {
			cli.Usage(stdout, fs, synopsis)
			return 0
		}
		return cli.BadFlag(stderr, fs, synopsis, err)
	}
	if h, _ := fs.GetBool("help"); h {
		cli.Usage(stdout, fs, synopsis)
		return 0
	}
	pos := fs.Args()
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "glmquant: "+format+"\n", a...)
		return 1
	}
	if *threads < 0 {
		return fail("--threads must be >= 0, got %d", *threads)
	}
	if *importSrc != "" {
		if len(pos) != 1 {
			cli.Usage(stderr, fs, synopsis)
			return fail("--import-mmfp4 takes exactly one positional argument, OUT.gguf (got %d)", len(pos))
		}
		if *template == "" {
			return fail("--import-mmfp4 needs --template BASE.gguf (metadata, tokenizer and unquantized tensors come from it)")
		}
		if *allow || *threads != 0 {
			return fail("--allow-requantize and --threads have no meaning with --import-mmfp4 (a lossless single-pass copy)")
		}
		st, err := quantize.ImportMMFP4File(*importSrc, *template, pos[0], quantize.ImportOptions{Progress: stderr})
		if err != nil {
			return fail("%v", err)
		}
		fmt.Fprintf(stderr, "imported %d MMFP4 tensors into %s\n", st.Types[gguf.TypeMMFP4], pos[0])
		return 0
	}
	if *template != "" {
		return fail("--template is only used with --import-mmfp4")
	}
	if len(pos) != 3 && len(pos) != 4 {
		cli.Usage(stderr, fs, synopsis)
		return fail("expected IN.gguf OUT.gguf TYPE [NTHREADS], got %d arguments", len(pos))
	}
	preset, err := quantize.ParsePreset(pos[2])
	if err != nil {
		return fail("%v", err)
	}
	if len(pos) == 4 {
		n, err := strconv.Atoi(pos[3])
		if err != nil || n < 0 {
			return fail("NTHREADS must be a non-negative integer, got %q", pos[3])
		}
		if *threads != 0 && *threads != n {
			return fail("--threads %d and NTHREADS %d disagree", *threads, n)
		}
		*threads = n
	}
	fmt.Fprintf(stderr, "glmquant: quantizing '%s' to '%s' as %s\n", pos[0], pos[1], preset)
	if _, err := quantize.RequantizeFile(pos[0], pos[1], quantize.Options{
		Preset: preset, AllowRequantize: *allow, Threads: *threads, Progress: stderr,
	}); err != nil {
		return fail("%v", err)
	}
	return 0
}
