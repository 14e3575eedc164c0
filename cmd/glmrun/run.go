package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/cli"
	"github.com/glmrun/glmrun/model/glm4moe"
	"github.com/glmrun/glmrun/sample"
	"github.com/glmrun/glmrun/tokenizer"
)

// defaultCtxCap bounds the default context (-c 0): min(n_ctx_train, 32768).
const defaultCtxCap = 32768

// run is glmrun's main: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	start := time.Now()
	var o options
	fs := newFlags(&o)
	if err := cli.Parse(fs, args); err != nil {
		if errors.Is(err, cli.ErrHelp) {
			cli.Usage(stdout, fs, synopsis)
			return 0
		}
		return cli.BadFlag(stderr, fs, synopsis, err)
	}
	if err := o.validate(fs); err != nil {
		return cli.BadFlag(stderr, fs, synopsis, err)
	}
	if !o.noEscape {
		o.prompt = unescape(o.prompt)
	}
	if o.promptFile != "" {
		b, err := os.ReadFile(o.promptFile)
		if err != nil {
			fmt.Fprintf(stderr, "error: failed to read prompt file: %v\n", err)
			return 1
		}
		o.prompt = strings.TrimSuffix(string(b), "\n")
	}

	f, err := gguf.Open(o.model)
	if err != nil {
		fmt.Fprintf(stderr, "error: failed to load model '%s'\n  %v\n", o.model, err)
		return 1
	}
	defer f.Close()
	if o.inspect {
		if err := inspect(stdout, f, o.model, o.asJSON); err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			return 1
		}
		return 0
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		fmt.Fprintf(stderr, "error: failed to load model '%s'\n  tokenizer: %v\n", o.model, err)
		return 1
	}
	chatMode := !o.noCnv && o.tokenIDsFile == ""
	if chatMode && o.prompt == "" && !o.quality {
		fmt.Fprintf(stderr, "error: no prompt: give -p or -f (glmrun answers one chat turn; it has no interactive mode)\n")
		return 1
	}
	var prompt []int32
	if !o.quality { // --quality renders its own prompts
		prompt, err = buildPrompt(&o, tok, chatMode)
	}
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	if o.tokenize {
		w := bufio.NewWriter(stdout)
		w.WriteString("[")
		for i, id := range prompt {
			if i > 0 {
				w.WriteString(", ")
			}
			w.WriteString(strconv.Itoa(int(id)))
		}
		w.WriteString("]\n")
		w.Flush()
		return 0
	}

	threads := o.threads
	if threads < 0 {
		threads = 0
	}
	load := func(device string) (*glm4moe.Model, error) {
		return glm4moe.Load(f, glm4moe.Options{Exact: o.exact, Threads: threads, UBatch: o.ubatch, Device: device, Quiet: !o.verbose})
	}
	// --device auto (the default) uses CUDA when a driver and GPU are
	// usable and the CPU otherwise; -ngl 0 keeps everything on the CPU.
	device := o.device
	if device == "auto" {
		device = "cuda"
		if o.ngl == "0" {
			device = "cpu"
		}
	}
	m, err := load(device)
	if err != nil && o.device == "auto" && device == "cuda" && errors.Is(err, glm4moe.ErrNoGPU) {
		if o.verbose {
			fmt.Fprintf(stderr, "note: no usable CUDA device (%v): running on the CPU\n", err)
		}
		device = "cpu"
		m, err = load(device)
	}
	if err != nil {
		fmt.Fprintf(stderr, "error: failed to load model '%s'\n  %v\n", o.model, err)
		return 1
	}
	switch {
	case device == "cpu" && o.ngl != "auto" && o.ngl != "0":
		fmt.Fprintf(stderr, "note: -ngl %s ignored: the CPU backend runs every layer on the CPU\n", o.ngl)
	case device == "cuda" && o.ngl != "auto" && o.ngl != "all" && o.ngl != "-1":
		fmt.Fprintf(stderr, "note: -ngl %s ignored: the CUDA backend runs every layer on the GPU\n", o.ngl)
	}
	defer m.Close()
	cfg := m.Config()
	nCtx := o.ctx
	if nCtx == 0 {
		nCtx = min(cfg.NCtxTrain, defaultCtxCap)
		if nCtx <= 0 {
			nCtx = defaultCtxCap
		}
	}
	if cfg.NCtxTrain > 0 && nCtx > cfg.NCtxTrain {
		fmt.Fprintf(stderr, "warning: context size %d exceeds the training context %d\n", nCtx, cfg.NCtxTrain)
	}
	if o.verbose {
		fmt.Fprintf(stderr, "model: %s, %d layers (%d blocks), d=%d, %d heads, %d experts (top %d), vocab %d, n_ctx_train %d\n",
			cfg.Arch, cfg.NLayer, cfg.NBlock, cfg.NEmbd, cfg.NHead, cfg.NExpert, cfg.NExpertUsed, cfg.VocabSize, cfg.NCtxTrain)
		fmt.Fprintf(stderr, "context %d, threads %d, ubatch %d, %s math\n", nCtx, m.Options().Threads, m.Options().UBatch, map[bool]string{true: "exact", false: "fast"}[o.exact])
	}
	if len(prompt) == 0 && !o.quality {
		fmt.Fprintf(stderr, "error: the prompt is empty\n")
		return 1
	}
	if len(prompt) > nCtx {
		fmt.Fprintf(stderr, "error: the prompt is too long (%d tokens, context size %d)\n", len(prompt), nCtx)
		return 1
	}
	cache, err := m.NewCache(nCtx)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	loadDur := time.Since(start)

	if o.dumpLogits != "" {
		return dumpLogits(&o, m, cache, prompt, stderr)
	}
	if o.quality {
		return reportQuality(o.reasoning != "off", modelAnswerer(&o, m, tok, cache), stdout, stderr)
	}

	g := &generation{o: &o, m: m, tok: tok, cache: cache, chat: chatMode, stdout: stdout, stderr: stderr, nCtx: nCtx}
	cli.ApplyGGUFSampling(f, fs, &o.sampling)
	g.params = samplerParams(&o, nCtx, stderr)
	// The first Ctrl-C ends generation (timings are still printed, exit
	// status 130); a second one kills the process (default handler).
	g.interrupt = make(chan os.Signal, 1)
	signal.Notify(g.interrupt, os.Interrupt)
	defer signal.Stop(g.interrupt)
	err = g.run(prompt)
	if err != nil {
		fmt.Fprintf(stderr, "\nerror: %v\n", err)
		return 1
	}
	g.printTimings(loadDur, time.Since(start))
	if g.interrupted {
		return 130
	}
	return 0
}

// buildPrompt returns the prompt's token ids: from --token-ids-file, the chat
// template (chat mode), or the raw prompt text (special tokens parsed; BOS
// only if the GGUF asks for it).
func buildPrompt(o *options, tok *tokenizer.Tokenizer, chatMode bool) ([]int32, error) {
	if o.tokenIDsFile != "" {
		b, err := os.ReadFile(o.tokenIDsFile)
		if err != nil {
			return nil, fmt.Errorf("failed to read token ids: %w", err)
		}
		var ids []int32
		for _, s := range strings.Fields(string(b)) {
			v, err := strconv.ParseInt(s, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%s: bad token id %q", o.tokenIDsFile, s)
			}
			if v < 0 || int(v) >= tok.VocabSize() {
				return nil, fmt.Errorf("%s: token id %d is out of range [0, %d)", o.tokenIDsFile, v, tok.VocabSize())
			}
			ids = append(ids, int32(v))
		}
		return ids, nil
	}
	if chatMode {
		text, err := renderChat(o)
		if err != nil {
			return nil, err
		}
		return tok.Encode(text, true), nil
	}
	ids := tok.Encode(o.prompt, true)
	if tok.AddBOS() && (len(ids) == 0 || ids[0] != tok.BOS()) {
		ids = append([]int32{tok.BOS()}, ids...)
	}
	return ids, nil
}

func samplerParams(o *options, nCtx int, stderr io.Writer) sample.Params {
	seed := uint64(o.sampling.Seed)
	if o.sampling.Seed < 0 {
		seed = uint64(time.Now().UnixNano())
		seed &= math.MaxUint32
	}
	fmt.Fprintf(stderr, "sampler seed: %d\n", seed)
	last := o.sampling.RepeatLastN
	if last == -1 {
		last = nCtx
	}
	return sample.Params{
		Temp: o.sampling.Temp, TopK: o.sampling.TopK, TopP: o.sampling.TopP, MinP: o.sampling.MinP,
		RepeatPenalty: o.sampling.RepeatPenalty, RepeatLastN: last,
		PresencePenalty: o.sampling.PresencePenalty, FrequencyPenalty: o.sampling.FrequencyPenalty,
		Seed: seed,
	}
}

// dumpLogits writes the logits of every prompt position as float32 LE.
func dumpLogits(o *options, m *glm4moe.Model, c *glm4moe.Cache, prompt []int32, stderr io.Writer) int {
	out, err := os.Create(o.dumpLogits)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	w := bufio.NewWriterSize(out, 1<<20)
	buf := make([]byte, 4)
	for i := 0; i < len(prompt); i += o.batch {
		j := min(i+o.batch, len(prompt))
		logits, err := m.Forward(c, prompt[i:j], true)
		if err != nil {
			out.Close()
			fmt.Fprintf(stderr, "error: %v\n", err)
			return 1
		}
		for _, v := range logits {
			binary.LittleEndian.PutUint32(buf, math.Float32bits(v))
			w.Write(buf)
		}
	}
	if err := w.Flush(); err != nil {
		out.Close()
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	if err := out.Close(); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "wrote logits of %d positions x %d to %s\n", len(prompt), m.Config().VocabSize, o.dumpLogits)
	return 0
}
