package main

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/glmrun/glmrun/internal/cli"
	"github.com/glmrun/glmrun/server"
)

const synopsis = "glmserve --model-path model.gguf [--host H] [--port P] [--max-batch-size N] [--max-seq-len L] [options]"

// options holds every flag of glmserve (interfaces.md §3.2).
type options struct {
	sampling     cli.SamplingFlags
	model        string
	host         string
	port         int
	maxBatch     int
	maxSeqLen    int
	ctx          int
	batch        int
	ubatch       int
	threads      int
	device       string
	ngl          string
	flashAttn    string
	cacheTypeK   string
	cacheTypeV   string
	aliases      []string
	apiKeys      []string
	apiKeyFile   string
	maxQueue     int
	maxBody      int64
	metrics      bool
	contBatching bool
	noContBatch  bool
	timeout      int
	ssePing      int
	shutdownWait int
	reasonFmt    string
	reasoning    string
	reasonBudget int
	kwargs       string
	nPredict     int
	exact        bool
	verbose      bool
}

func newFlags(o *options) *pflag.FlagSet {
	fs := cli.NewFlagSet("glmserve")
	fs.StringVar(&o.model, "model-path", "", "GGUF model file (required)")
	fs.StringVarP(&o.model, "model", "m", "", "same as --model-path")
	fs.StringVar(&o.host, "host", "127.0.0.1", "address to listen on (0.0.0.0 for all interfaces)")
	fs.IntVar(&o.port, "port", 8080, "TCP port (0 = any free port)")
	fs.IntVar(&o.maxBatch, "max-batch-size", 8, "slots: sequences decoded together in one batched forward pass")
	fs.IntVar(&o.maxBatch, "parallel", 8, "same as --max-batch-size")
	fs.IntVar(&o.maxBatch, "np", 8, "same as --max-batch-size")
	fs.IntVar(&o.maxSeqLen, "max-seq-len", 0, "context limit of one sequence, prompt + completion (0 = min(n_ctx_train, 32768), or --ctx-size / --max-batch-size)")
	fs.IntVarP(&o.ctx, "ctx-size", "c", 0, "total KV tokens over all slots, as llama-server's -c (0 = max-batch-size x max-seq-len); must equal that product when both are given")
	fs.IntVarP(&o.batch, "batch-size", "b", 2048, "logical batch: most tokens one scheduler step hands to the model")
	fs.IntVar(&o.ubatch, "ubatch-size", 512, "physical batch: most tokens per forward pass inside the model")
	fs.IntVar(&o.ubatch, "ub", 512, "same as --ubatch-size")
	fs.IntVarP(&o.threads, "threads", "t", -1, "CPU threads (-1 = physical cores)")
	fs.StringVar(&o.device, "device", "auto", "compute device: cpu, cuda, or auto (CUDA when a GPU is usable, else the CPU)")
	fs.StringVar(&o.ngl, "gpu-layers", "auto", "layers on the GPU: auto or all (every layer on the chosen --device), 0 (the CPU: same as --device cpu)")
	fs.StringVar(&o.ngl, "n-gpu-layers", "auto", "same as --gpu-layers")
	fs.StringVar(&o.ngl, "ngl", "auto", "same as --gpu-layers")
	fs.StringVar(&o.flashAttn, "flash-attn", "auto", "on, off or auto (the CPU attention is always a fused single pass; accepted for compatibility)")
	fs.StringVar(&o.flashAttn, "fa", "auto", "same as --flash-attn")
	fs.StringVar(&o.cacheTypeK, "cache-type-k", "f16", "KV cache type: f16 or f32 (CUDA honours it; the CPU cache is always f32)")
	fs.StringVar(&o.cacheTypeK, "ctk", "f16", "same as --cache-type-k")
	fs.StringVar(&o.cacheTypeV, "cache-type-v", "f16", "same as --cache-type-k (MLA caches one latent row for K and V); the two must agree")
	fs.StringVar(&o.cacheTypeV, "ctv", "f16", "same as --cache-type-v")
	fs.StringSliceVarP(&o.aliases, "alias", "a", nil, "extra model ids to accept besides glm-4.7-flash (comma list)")
	fs.StringSliceVar(&o.apiKeys, "api-key", nil, "require this bearer token (comma list or repeated); /health and /v1/models stay open")
	fs.StringVar(&o.apiKeyFile, "api-key-file", "", "file with one API key per line")
	fs.IntVar(&o.maxQueue, "max-queue", 1024, "requests that may wait for a slot; beyond it: 503 with Retry-After")
	fs.IntVar(&o.maxQueue, "queue-size", 1024, "same as --max-queue")
	fs.Int64Var(&o.maxBody, "max-body-size", 32<<20, "largest request body in bytes (413 above it)")
	fs.BoolVar(&o.metrics, "metrics", true, "accepted for llama-server compatibility: /metrics is always on")
	fs.BoolVar(&o.contBatching, "cont-batching", true, "continuous batching (on by default)")
	fs.BoolVar(&o.contBatching, "cb", true, "same as --cont-batching")
	fs.BoolVar(&o.noContBatch, "no-cont-batching", false, "no continuous batching: one sequence at a time (sets --max-batch-size 1)")
	fs.BoolVar(&o.noContBatch, "nocb", false, "same as --no-cont-batching")
	fs.IntVar(&o.timeout, "timeout", 3600, "seconds allowed to read a request and for an idle keep-alive connection")
	fs.IntVar(&o.timeout, "to", 3600, "same as --timeout")
	fs.IntVar(&o.ssePing, "sse-ping-interval", 30, "seconds between ':' keep-alive comments on an idle stream")
	fs.IntVar(&o.shutdownWait, "shutdown-timeout", 600, "seconds to let in-flight requests finish after SIGINT/SIGTERM (a second signal exits at once)")
	fs.StringVar(&o.reasonFmt, "reasoning-format", "auto", "auto/deepseek (reasoning_content split), deepseek-legacy or none")
	fs.StringVar(&o.reasoning, "reasoning", "auto", "thinking: on, off or auto (= on)")
	fs.StringVar(&o.reasoning, "rea", "auto", "same as --reasoning")
	fs.IntVar(&o.reasonBudget, "reasoning-budget", -1, "force </think> after this many reasoning tokens (-1 = unlimited)")
	fs.StringVar(&o.kwargs, "chat-template-kwargs", "", `default template arguments as JSON, e.g. '{"enable_thinking":false}'`)
	fs.IntVarP(&o.nPredict, "n-predict", "n", -1, "default max tokens per request (-1 = until end of generation or a full context)")
	fs.IntVar(&o.nPredict, "predict", -1, "same as --n-predict")
	o.sampling.Register(fs, "default ")
	fs.BoolVar(&o.exact, "exact", false, "float32 math on exactly dequantized weights (slow reference path)")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "log every request")
	return fs
}

// validate checks values pflag cannot and resolves the combined flags.
func (o *options) validate(fs *pflag.FlagSet) error {
	bad := func(flag, format string, a ...any) error {
		return cli.Errorf(flag, format, a...)
	}
	if o.model == "" {
		return bad("--model-path", "a model is required (--model-path model.gguf)")
	}
	if fs.NArg() > 0 {
		return bad(fs.Arg(0), "unexpected argument %q", strings.Join(fs.Args(), " "))
	}
	if o.port < 0 || o.port > 65535 {
		return bad("--port", "%d is not a TCP port", o.port)
	}
	if o.noContBatch {
		if (fs.Changed("max-batch-size") || fs.Changed("parallel") || fs.Changed("np")) && o.maxBatch != 1 {
			return bad("--no-cont-batching", "-nocb serves one sequence at a time; it contradicts --max-batch-size %d", o.maxBatch)
		}
		o.maxBatch = 1
	}
	if o.maxBatch < 1 {
		return bad("--max-batch-size", "%d must be >= 1", o.maxBatch)
	}
	if o.maxSeqLen < 0 {
		return bad("--max-seq-len", "%d must be >= 0", o.maxSeqLen)
	}
	if o.ctx < 0 {
		return bad("--ctx-size", "%d must be >= 0", o.ctx)
	}
	if o.ctx > 0 {
		switch {
		case o.maxSeqLen == 0:
			if o.ctx < o.maxBatch {
				return bad("--ctx-size", "%d is smaller than --max-batch-size %d", o.ctx, o.maxBatch)
			}
			o.maxSeqLen = o.ctx / o.maxBatch
		case o.ctx != o.maxBatch*o.maxSeqLen:
			return bad("--ctx-size", "%d disagrees with --max-batch-size %d x --max-seq-len %d = %d", o.ctx, o.maxBatch, o.maxSeqLen, o.maxBatch*o.maxSeqLen)
		}
	}
	if o.batch < 1 {
		return bad("--batch-size", "%d must be positive", o.batch)
	}
	if o.ubatch < 1 {
		return bad("--ubatch-size", "%d must be positive", o.ubatch)
	}
	if o.threads == 0 || o.threads < -1 {
		return bad("--threads", "%d (use -1 or a positive count)", o.threads)
	}
	switch o.device {
	case "cpu", "cuda", "auto":
	case "metal":
		return bad("--device", "the metal backend is not available in this build (use cpu, cuda or auto)")
	default:
		return bad("--device", "unknown device %q (use cpu, cuda or auto)", o.device)
	}
	switch o.ngl {
	case "auto", "all", "-1":
	case "0":
		if o.device == "cuda" {
			return bad("--gpu-layers", "-ngl 0 keeps every layer on the CPU; it contradicts --device cuda")
		}
		o.device = "cpu"
	default:
		n, err := strconv.Atoi(o.ngl)
		if err != nil || n < -1 {
			return bad("--gpu-layers", "%q (a number, auto or all)", o.ngl)
		}
		// Partial offload does not exist here: any positive count means all
		// layers on the GPU, as llama.cpp does for counts >= the layer count.
	}
	switch o.flashAttn {
	case "on", "off", "auto", "1", "0":
	default:
		return bad("--flash-attn", "%q (use on, off or auto)", o.flashAttn)
	}
	for _, c := range []struct{ flag, v string }{{"--cache-type-k", o.cacheTypeK}, {"--cache-type-v", o.cacheTypeV}} {
		if c.v != "f16" && c.v != "f32" {
			return bad(c.flag, "%q is not supported (use f16 or f32)", c.v)
		}
	}
	if o.cacheTypeK != o.cacheTypeV {
		return bad("--cache-type-v", "%s differs from --cache-type-k %s; the MLA cache holds one latent row for both", o.cacheTypeV, o.cacheTypeK)
	}
	if o.apiKeyFile != "" {
		b, err := os.ReadFile(o.apiKeyFile)
		if err != nil {
			return bad("--api-key-file", "%v", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k := strings.TrimSpace(line); k != "" {
				o.apiKeys = append(o.apiKeys, k)
			}
		}
	}
	if o.maxQueue < 1 {
		return bad("--max-queue", "%d must be >= 1", o.maxQueue)
	}
	if o.maxBody < 1 {
		return bad("--max-body-size", "%d must be positive", o.maxBody)
	}
	if !o.contBatching && !o.noContBatch {
		return bad("--cont-batching", "use -nocb to turn continuous batching off")
	}
	if o.timeout < 1 {
		return bad("--timeout", "%d must be >= 1 second", o.timeout)
	}
	if o.ssePing < 1 {
		return bad("--sse-ping-interval", "%d must be >= 1 second", o.ssePing)
	}
	if o.shutdownWait < 0 {
		return bad("--shutdown-timeout", "%d must be >= 0", o.shutdownWait)
	}
	switch o.reasonFmt {
	case "auto", "deepseek", "deepseek-legacy", "none":
	default:
		return bad("--reasoning-format", "%q (use auto, deepseek, deepseek-legacy or none)", o.reasonFmt)
	}
	switch o.reasoning {
	case "on", "off", "auto":
	default:
		return bad("--reasoning", "%q (use on, off or auto)", o.reasoning)
	}
	if o.reasonBudget < -1 {
		return bad("--reasoning-budget", "%d (use -1 or a count)", o.reasonBudget)
	}
	if o.kwargs != "" {
		var m map[string]any
		if err := json.Unmarshal([]byte(o.kwargs), &m); err != nil {
			return bad("--chat-template-kwargs", "not a JSON object: %v", err)
		}
		for k, v := range m {
			if err := server.CheckTemplateKwarg(k, v); err != nil {
				return bad("--chat-template-kwargs", "%v", err)
			}
		}
		if on, ok := m["enable_thinking"].(bool); ok && on && o.reasoning == "off" {
			return bad("--chat-template-kwargs", "enable_thinking:true contradicts --reasoning off")
		}
	}
	if o.nPredict < -1 {
		return bad("--n-predict", "%d (use -1 or a count)", o.nPredict)
	}
	if o.sampling.TopP < 0 || o.sampling.TopP > 1 {
		return bad("--top-p", "%v must be in [0, 1]", o.sampling.TopP)
	}
	if o.sampling.MinP < 0 || o.sampling.MinP > 1 {
		return bad("--min-p", "%v must be in [0, 1]", o.sampling.MinP)
	}
	if o.sampling.RepeatLastN < -1 {
		return bad("--repeat-last-n", "%d (use -1, 0 or a count)", o.sampling.RepeatLastN)
	}
	return nil
}
