// Command glmperplexity measures perplexity and KL-divergence the way
// llama-perplexity does (same chunking, scoring and printed lines).
//
//	glmperplexity -m MODEL.gguf -f wiki.test.raw [-c 512] [-b 2048] [--chunks N]
//	glmperplexity -m BASE.gguf -f TEXT --kl-divergence-base base.kld
//	glmperplexity -m QUANT.gguf --kl-divergence-base base.kld --kl-divergence
//
// The base file holds llama.cpp's "_logits_" data inside a zstd stream
// (llama.cpp's uncompressed files are read too).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/spf13/pflag"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/cli"
	"github.com/glmrun/glmrun/model/glm4moe"
	"github.com/glmrun/glmrun/perplexity"
	"github.com/glmrun/glmrun/tokenizer"
)

const synopsis = "glmperplexity -m MODEL.gguf -f TEXT [-c 512] [-b 2048] [--chunks N] [--kl-divergence-base FILE [--kl-divergence]]"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type options struct {
	model, file, klBase, jsonOut, device string
	nCtx, nBatch, uBatch, chunks         int
	outType, threads, stride             int
	ngl                                  string
	klMode, exact                        bool
}

func flags() (*pflag.FlagSet, *options) {
	o := &options{}
	fs := cli.NewFlagSet("glmperplexity")
	fs.StringVarP(&o.model, "model", "m", "", "model GGUF file")
	fs.StringVarP(&o.file, "file", "f", "", "text file to evaluate (e.g. ../shared/data/wiki.test.raw)")
	fs.IntVarP(&o.nCtx, "ctx-size", "c", 512, "tokens per chunk; with --kl-divergence, the largest n_ctx of a base file accepted")
	fs.IntVarP(&o.nBatch, "batch-size", "b", 2048, "logical batch size: checked and reported as llama-perplexity does (n_seq = max(1, b/c)); chunks are evaluated one at a time, which gives the same numbers")
	fs.IntVar(&o.uBatch, "ubatch-size", 512, "tokens per forward pass")
	fs.IntVar(&o.uBatch, "ub", 512, "alias of --ubatch-size")
	fs.IntVar(&o.chunks, "chunks", -1, "max number of chunks (-1 = all)")
	fs.StringVar(&o.klBase, "kl-divergence-base", "", "file of the reference model's log-probabilities (written, or read with --kl-divergence)")
	fs.StringVar(&o.klBase, "save-all-logits", "", "alias of --kl-divergence-base")
	fs.BoolVar(&o.klMode, "kl-divergence", false, "compare the model against --kl-divergence-base")
	fs.IntVar(&o.outType, "ppl-output-type", 0, "0: [i]ppl list, 1: one line per chunk")
	fs.IntVar(&o.stride, "ppl-stride", 0, "sliding-window perplexity stride (not supported: must be 0)")
	fs.IntVarP(&o.threads, "threads", "t", 0, "CPU threads (0 = physical cores)")
	fs.StringVar(&o.ngl, "ngl", "", "GPU layers (accepted for compatibility; the CPU backend runs every layer)")
	fs.StringVar(&o.ngl, "n-gpu-layers", "", "alias of -ngl")
	fs.StringVar(&o.device, "device", "auto", "cpu or auto")
	fs.BoolVar(&o.exact, "exact", false, "float32 math on exactly dequantized weights")
	fs.StringVar(&o.jsonOut, "json", "", "also write a JSON summary to this file")
	fs.BoolP("help", "h", false, "show this help")
	return fs, o
}

func run(args []string, stdout, stderr io.Writer) int {
	fs, o := flags()
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
	if err := o.check(fs); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	if err := execute(o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	return 0
}

func (o *options) check(fs *pflag.FlagSet) error {
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.model == "":
		return errors.New("-m MODEL is required")
	case o.stride != 0:
		return errors.New("--ppl-stride is not supported by glmperplexity (only the default chunked perplexity)")
	case o.outType != 0 && o.outType != 1:
		return fmt.Errorf("--ppl-output-type must be 0 or 1, got %d", o.outType)
	case o.klMode && o.klBase == "":
		return errors.New("--kl-divergence needs --kl-divergence-base FILE")
	case !o.klMode && o.file == "":
		return errors.New("-f FILE is required (e.g. -f ../shared/data/wiki.test.raw)")
	case o.klMode && o.file != "":
		return errors.New("-f is not used with --kl-divergence (the tokens come from the base file)")
	case o.device != "auto" && o.device != "cpu":
		return fmt.Errorf("--device %q is not available in this build (use cpu or auto)", o.device)
	case o.uBatch <= 0 || o.nCtx <= 0 || o.nBatch <= 0:
		return errors.New("-c, -b and -ub must be positive")
	}
	return nil
}

// evaluator adapts a glm4moe.Model to perplexity.Evaluator: each chunk runs
// from an empty cache; the first half only fills the cache.
type evaluator struct {
	m     *glm4moe.Model
	cache *glm4moe.Cache
	vocab int
}

func (e *evaluator) VocabSize() int { return e.vocab }

func (e *evaluator) ChunkLogits(tokens []int32, first int) ([]float32, error) {
	if e.cache == nil || e.cache.Cap() < len(tokens) {
		c, err := e.m.NewCache(len(tokens))
		if err != nil {
			return nil, err
		}
		e.cache = c
	}
	e.cache.Reset()
	if first > 0 {
		if _, err := e.m.Forward(e.cache, tokens[:first], false); err != nil {
			return nil, err
		}
	}
	return e.m.Forward(e.cache, tokens[first:], true)
}

func execute(o *options, stdout, stderr io.Writer) error {
	t0 := time.Now()
	f, err := gguf.Open(o.model)
	if err != nil {
		return fmt.Errorf("failed to load model '%s': %w", o.model, err)
	}
	defer f.Close()
	m, err := glm4moe.Load(f, glm4moe.Options{Exact: o.exact, Threads: o.threads, UBatch: o.uBatch})
	if err != nil {
		return fmt.Errorf("failed to load model '%s': %w", o.model, err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return fmt.Errorf("failed to load the tokenizer of '%s': %w", o.model, err)
	}
	if o.ngl != "" {
		fmt.Fprintf(stderr, "glmperplexity: -ngl %s: the CPU backend runs every layer on the CPU\n", o.ngl)
	}
	fmt.Fprintf(stderr, "glmperplexity: model loaded in %.2f s\n", time.Since(t0).Seconds())
	ev := &evaluator{m: m, vocab: m.Config().VocabSize}

	if o.klMode {
		return compare(ev, o, stdout, stderr)
	}
	text, err := os.ReadFile(o.file)
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, "perplexity: tokenizing the input ..")
	tt := time.Now()
	tokens := tok.Encode(string(text), false)
	if tok.AddBOS() {
		tokens = append([]int32{tok.BOS()}, tokens...)
	}
	fmt.Fprintf(stderr, "perplexity: tokenization took %g ms\n", float64(time.Since(tt).Microseconds())/1e3)

	opt := perplexity.Options{NCtx: o.nCtx, NBatch: o.nBatch, Chunks: o.chunks, OutputType: o.outType, AddBOS: tok.AddBOS(), BOS: tok.BOS()}
	var closeBase func() error
	if o.klBase != "" {
		w, closer, err := createBase(o.klBase)
		if err != nil {
			return err
		}
		opt.Base, closeBase = w, closer
		fmt.Fprintf(stderr, "perplexity: saving all logits to %s\n", o.klBase)
	}
	res, err := perplexity.Run(ev, tokens, opt, stdout, stderr)
	if closeBase != nil {
		if cerr := closeBase(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return err
	}
	if o.jsonOut != "" {
		return writeJSON(o.jsonOut, map[string]any{
			"ppl": res.PPL, "ppl_stderr": res.PPLStderr, "n_ctx": o.nCtx, "n_chunks": res.NChunks,
			"tokens_scored": res.TokensScored, "seconds": res.Seconds,
		})
	}
	return nil
}

// createBase opens path for a zstd-compressed base-logits stream.
func createBase(path string) (io.Writer, func() error, error) {
	fh, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	bw := bufio.NewWriterSize(fh, 1<<20)
	zw, err := zstd.NewWriter(bw, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		fh.Close()
		return nil, nil, err
	}
	return zw, func() error {
		return errors.Join(zw.Close(), bw.Flush(), fh.Close())
	}, nil
}

// openBase opens a base-logits file, zstd-compressed or raw.
func openBase(path string) (io.Reader, func(), error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(fh, 1<<20)
	magic, _ := br.Peek(4)
	if bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		zr, err := zstd.NewReader(br)
		if err != nil {
			fh.Close()
			return nil, nil, err
		}
		return zr, func() { zr.Close(); fh.Close() }, nil
	}
	return br, func() { fh.Close() }, nil
}

func compare(ev *evaluator, o *options, stdout, stderr io.Writer) error {
	r, closeFn, err := openBase(o.klBase)
	if err != nil {
		return err
	}
	defer closeFn()
	base, err := perplexity.ReadBase(r)
	if err != nil {
		return fmt.Errorf("%s: %w", o.klBase, err)
	}
	res, err := perplexity.CompareBase(ev, base, o.nCtx, stdout, stderr)
	if err != nil {
		return err
	}
	if o.jsonOut != "" {
		return writeJSON(o.jsonOut, map[string]any{
			"mean_kld": res.MeanKLD, "mean_kld_stderr": res.MeanKLDUnc, "median_kld": res.MedianKLD, "max_kld": res.MaxKLD,
			"same_top_p": res.SameTop, "ppl": res.PPL, "ppl_base": res.PPLBase, "ppl_ratio": res.PPLRatio,
			"tokens_scored": res.Count, "seconds": res.Seconds,
		})
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
