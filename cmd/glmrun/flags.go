package main

import (
	"strconv"
	"strings"

	"github.com/glmrun/glmrun/internal/cli"
	"github.com/spf13/pflag"
)

const synopsis = "glmrun -m model.gguf [-p prompt | -f file] [options]"

// options holds every flag of glmrun.
type options struct {
	sampling     cli.SamplingFlags
	model        string
	prompt       string
	promptFile   string
	system       string
	nPredict     int
	ctx          int
	threads      int
	batch        int
	ubatch       int
	ngl          string
	device       string
	noCnv        bool
	cnv          bool
	reverse      []string
	ignoreEOS    bool
	special      bool
	singleTurn   bool
	noWarmup     bool
	reasoning    string
	showThinking string
	noDisplay    bool
	noTimings    bool
	verbose      bool
	noEscape     bool
	tokenIDsFile string
	dumpLogits   string
	exact        bool
	tokenize     bool
	inspect      bool
	asJSON       bool
	quality      bool
}

func newFlags(o *options) *pflag.FlagSet {
	fs := cli.NewFlagSet("glmrun")
	fs.StringVarP(&o.model, "model", "m", "", "GGUF model path (required)")
	fs.StringVarP(&o.prompt, "prompt", "p", "", "prompt (raw mode) or first user message (chat mode); \\n \\t \\' \\\" \\\\ escapes are processed unless --no-escape")
	fs.StringVarP(&o.promptFile, "file", "f", "", "read the prompt from a file (one trailing newline removed)")
	fs.StringVar(&o.system, "system-prompt", "", "system message (chat mode)")
	fs.StringVar(&o.system, "sys", "", "same as --system-prompt")
	fs.IntVarP(&o.nPredict, "n-predict", "n", -1, "tokens to generate: -1 until end of generation or a full context, -2 until the context fills, 0 evaluate the prompt only")
	fs.IntVar(&o.nPredict, "predict", -1, "same as --n-predict")
	fs.IntVarP(&o.ctx, "ctx-size", "c", 0, "context size in tokens; 0 = min(n_ctx_train, 32768)")
	fs.IntVarP(&o.threads, "threads", "t", -1, "CPU threads; -1 = physical cores")
	fs.IntVarP(&o.batch, "batch-size", "b", 2048, "logical batch: prompt tokens handed to one Forward call")
	fs.IntVar(&o.ubatch, "ubatch-size", 512, "physical batch: tokens per forward pass")
	fs.IntVar(&o.ubatch, "ub", 512, "same as --ubatch-size")
	fs.StringVar(&o.ngl, "gpu-layers", "auto", "layers to offload to a GPU: a number, auto or all (the CPU backend runs every layer on the CPU and says so)")
	fs.StringVar(&o.ngl, "n-gpu-layers", "auto", "same as --gpu-layers")
	fs.StringVar(&o.ngl, "ngl", "auto", "same as --gpu-layers")
	fs.StringVar(&o.device, "device", "auto", "compute device: cpu, cuda (the whole model on CUDA device 0) or auto (CUDA when a driver and GPU are usable, else the CPU)")
	o.sampling.Register(fs, "")
	fs.BoolVar(&o.noCnv, "no-conversation", false, "raw completion: no chat template, prompt echoed, ' [end of text]' at end of generation")
	fs.BoolVar(&o.noCnv, "no-cnv", false, "same as --no-conversation")
	fs.BoolVar(&o.cnv, "conversation", false, "chat mode (the default)")
	fs.BoolVar(&o.cnv, "cnv", false, "same as --conversation")
	fs.StringArrayVarP(&o.reverse, "reverse-prompt", "r", nil, "stop generating when this text appears (repeatable); the stop text is not printed")
	fs.BoolVar(&o.ignoreEOS, "ignore-eos", false, "do not stop at end-of-generation tokens")
	fs.BoolVar(&o.special, "special", false, "print special (control) tokens as text")
	fs.BoolVar(&o.special, "sp", false, "same as --special")
	fs.BoolVar(&o.singleTurn, "single-turn", false, "one chat turn, then exit (always the case: glmrun has no interactive mode)")
	fs.BoolVar(&o.singleTurn, "st", false, "same as --single-turn")
	fs.BoolVar(&o.noWarmup, "no-warmup", false, "skip the warm-up run (glmrun never runs one)")
	fs.StringVar(&o.reasoning, "reasoning", "auto", "thinking in chat mode: on, off or auto (= on: the model thinks by default)")
	fs.StringVar(&o.reasoning, "rea", "auto", "same as --reasoning")
	fs.StringVar(&o.showThinking, "show-thinking", "stderr", "where reasoning goes in chat mode: stdout, stderr or off")
	fs.BoolVar(&o.noDisplay, "no-display-prompt", false, "do not echo the prompt (raw mode)")
	fs.BoolVar(&o.noTimings, "no-show-timings", false, "do not print the [ Prompt: | Generation: ] line")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "print model details to stderr")
	fs.BoolVar(&o.noEscape, "no-escape", false, "do not process escapes in -p")
	fs.StringVar(&o.tokenIDsFile, "token-ids-file", "", "use the whitespace-separated token ids in this file as the prompt (raw)")
	fs.StringVar(&o.dumpLogits, "dump-logits", "", "write float32 LE logits [n][vocab] of every prompt position to this file and exit")
	fs.BoolVar(&o.exact, "exact", false, "float32 math on exactly dequantized weights (slow reference path)")
	fs.BoolVar(&o.tokenize, "tokenize", false, "print the prompt's token ids as one JSON array on the last stdout line and exit")
	fs.BoolVar(&o.inspect, "inspect", false, "print the GGUF metadata and tensor table and exit")
	fs.BoolVar(&o.asJSON, "json", false, "with --inspect: JSON output")
	fs.BoolVar(&o.quality, "quality", false, "run the three seed quality prompts (2 + 2, capital of France, lowercase HELLO) greedily through the chat template, report pass/fail per prompt and exit")
	return fs
}

// validate checks flag values that pflag cannot.
func (o *options) validate(fs *pflag.FlagSet) error {
	bad := func(flag string, format string, a ...any) error {
		return cli.Errorf(flag, format, a...)
	}
	if o.model == "" {
		return bad("--model", "a model is required (-m model.gguf)")
	}
	if o.noCnv && o.cnv {
		return bad("--conversation", "-cnv and -no-cnv contradict each other")
	}
	if o.prompt != "" && o.promptFile != "" {
		return bad("--file", "give -p or -f, not both")
	}
	if o.tokenIDsFile != "" && (o.prompt != "" || o.promptFile != "") {
		return bad("--token-ids-file", "--token-ids-file replaces -p/-f")
	}
	if o.nPredict < -2 {
		return bad("--n-predict", "%d (use -1, -2, 0 or a positive count)", o.nPredict)
	}
	if o.ctx < 0 {
		return bad("--ctx-size", "%d must be >= 0", o.ctx)
	}
	if o.batch <= 0 {
		return bad("--batch-size", "%d must be positive", o.batch)
	}
	if o.ubatch <= 0 {
		return bad("--ubatch-size", "%d must be positive", o.ubatch)
	}
	if o.threads == 0 || o.threads < -1 {
		return bad("--threads", "%d (use -1 or a positive count)", o.threads)
	}
	if o.sampling.TopP < 0 || o.sampling.TopP > 1 || o.sampling.MinP < 0 || o.sampling.MinP > 1 {
		return bad("--top-p", "top-p and min-p must be in [0, 1]")
	}
	if o.sampling.RepeatLastN < -1 {
		return bad("--repeat-last-n", "%d", o.sampling.RepeatLastN)
	}
	switch o.reasoning {
	case "on", "off", "auto":
	default:
		return bad("--reasoning", "%q (use on, off or auto)", o.reasoning)
	}
	switch o.showThinking {
	case "stdout", "stderr", "off":
	default:
		return bad("--show-thinking", "%q (use stdout, stderr or off)", o.showThinking)
	}
	switch o.device {
	case "cpu", "auto":
	case "cuda":
	case "metal":
		return bad("--device", "the metal backend is not available in this build (cpu or cuda)")
	default:
		return bad("--device", "unknown device %q (use cpu, cuda or auto)", o.device)
	}
	switch o.ngl {
	case "auto", "all":
	default:
		if n, err := strconv.Atoi(o.ngl); err != nil || n < -1 {
			return bad("--gpu-layers", "%q (a number, auto or all)", o.ngl)
		}
	}
	if o.quality && (o.prompt != "" || o.promptFile != "" || o.tokenIDsFile != "" || o.noCnv || o.tokenize || o.dumpLogits != "") {
		return bad("--quality", "--quality runs its own prompts in chat mode; it cannot be combined with -p, -f, --token-ids-file, -no-cnv, --tokenize or --dump-logits")
	}
	if o.asJSON && !o.inspect {
		return bad("--json", "--json goes with --inspect")
	}
	if fs.NArg() > 0 {
		return bad(fs.Arg(0), "unexpected argument %q", strings.Join(fs.Args(), " "))
	}
	return nil
}

// unescape processes llama.cpp's prompt escapes: \n \t \r \' \" \\.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '\'', '"', '\\':
			b.WriteByte(s[i])
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
