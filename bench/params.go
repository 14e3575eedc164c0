package bench

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Params holds glmbench's command line: llama-bench's run options and
// test-parameter lists (shared/spec/interfaces.md §1.1) plus this project's
// seed-mode options (§1.4). List fields hold every value given; empty lists
// take llama-bench's defaults in Parse.
type Params struct {
	Models      []string
	NPrompt     []int
	NGen        []int
	PG          [][2]int
	Depth       []int
	Batch       []int
	UBatch      []int
	TypeK       []string
	TypeV       []string
	Threads     []int
	CPUMask     []string
	CPUStrict   []bool
	Poll        []int
	NGL         []int
	NCPUMoE     []int
	SplitMode   []string
	LoadMode    []string
	MainGPU     []int
	NoKVOffload []bool
	FlashAttn   []int // -1 auto, 0 off, 1 on
	Devices     []string
	TensorSplit []string // formatted as llama-bench prints it: "0.00", "0.60/0.40"
	Overrides   []string // "none" or "pattern=BUFT;..."
	Embeddings  []bool
	NoOpOffload []bool
	NoHost      []bool
	FitTarget   []int64 // MiB
	FitCtx      []int

	Numa      string
	Reps      int
	Prio      int
	Delay     int
	Verbose   bool
	Progress  bool
	NoWarmup  bool
	Output    string
	OutputErr string

	// Seed mode and extensions (ours).
	PromptSizes  []int    // --prompt-sizes
	OutputTokens []int    // --output-tokens
	SummaryJSON  string   // --summary-json / --json-out
	Energy       string   // --energy on|off|auto (GPU, NVML)
	CPUEnergy    string   // --cpu-energy on|off|auto (RAPL)
	PowerSample  int      // --power-sample-ms
	ExtraCols    bool     // --extra-cols
	PromptSeed   int64    // --prompt-seed
	Plot         string   // --plot FILE.svg
	Compare      []string // --compare A.json B.json ...
	Exact        bool     // --exact: float32 math on dequantized weights

	explicitP, explicitN bool
	warnings             []string
}

// SeedMode reports whether --prompt-sizes or --output-tokens was given: the
// tests are then the P×G product, each run as a pg test with split timing.
func (p *Params) SeedMode() bool { return len(p.PromptSizes) > 0 || len(p.OutputTokens) > 0 }

// Warnings returns the one-per-flag notes about accepted flags that have no
// effect on this engine, in command-line order.
func (p *Params) Warnings() []string { return p.warnings }

// defaultModel is llama-bench's default -m (cmd_params_defaults). The
// thread default is the number of physical cores; type_k/type_v default to
// "" in Params, meaning the backend's own cache type (f16 on CUDA, like
// llama-bench; f32 on the CPU), resolved when the run picks the backend.
var defaultModel = "models/7B/ggml-model-q4_0.gguf"

// ArgError is a bad command line: Flag is the argument llama-bench would
// name in "error: invalid parameter for argument: <flag>"; Err, if any, is
// printed first as "error: <Err>".
type ArgError struct {
	Flag string
	Err  error
}

func (e *ArgError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("invalid parameter for argument: %s: %v", e.Flag, e.Err)
	}
	return "invalid parameter for argument: " + e.Flag
}

// ErrHelp is returned by Parse for -h / --help.
var ErrHelp = errors.New("help requested")

// ErrListDevices is returned by Parse for --list-devices.
var ErrListDevices = errors.New("list devices requested")

func splitList(s string) []string {
	// llama.cpp's string_split keeps empty pieces; so do we.
	return strings.Split(s, ",")
}

func parseBools(s string) ([]bool, error) {
	var out []bool
	for _, v := range splitList(s) {
		switch strings.TrimSpace(v) {
		case "0":
			out = append(out, false)
		case "1":
			out = append(out, true)
		default:
			return nil, fmt.Errorf("%q is not 0 or 1", v)
		}
	}
	return out, nil
}

// Parse parses glmbench's arguments (without the program name) with
// llama-bench's rules: "--" flags have '_' read as '-', list flags may repeat
// and take comma lists and ranges, unknown flags and bad values are
// *ArgError. Lists left empty get llama-bench's defaults; physicalCores is
// the default thread count.
func Parse(args []string, physicalCores int) (*Params, error) {
	p := &Params{Reps: 5, Output: "md", OutputErr: "none", Numa: "disabled",
		Energy: "auto", CPUEnergy: "auto", PowerSample: 50, PromptSeed: 1}
	warned := map[string]bool{}
	warn := func(flag, why string) {
		if !warned[flag] {
			warned[flag] = true
			p.warnings = append(p.warnings, fmt.Sprintf("warning: %s %s", flag, why))
		}
	}
	const noEffect = "has no effect on glmrun's engine; the value is only echoed in the output"
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if strings.HasPrefix(arg, "--") {
			arg = strings.ReplaceAll(arg, "_", "-")
		}
		bad := func(err error) error { return &ArgError{Flag: arg, Err: err} }
		next := func() (string, error) {
			if i+1 >= len(args) {
				return "", &ArgError{Flag: arg}
			}
			i++
			return args[i], nil
		}
		ints := func(allowNeg bool) ([]int, error) {
			v, err := next()
			if err != nil {
				return nil, err
			}
			r, err := ParseIntRange(v, allowNeg)
			if err != nil {
				return nil, bad(err)
			}
			return r, nil
		}
		bools := func() ([]bool, error) {
			v, err := next()
			if err != nil {
				return nil, err
			}
			r, err := parseBools(v)
			if err != nil {
				return nil, bad(err)
			}
			return r, nil
		}
		oneInt := func() (int, error) {
			v, err := next()
			if err != nil {
				return 0, err
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return 0, bad(fmt.Errorf("%q is not an integer", v))
			}
			return n, nil
		}
		var err error
		switch arg {
		case "-h", "--help":
			return p, ErrHelp
		case "--list-devices":
			return p, ErrListDevices
		case "-m", "--model":
			var v string
			if v, err = next(); err == nil {
				p.Models = append(p.Models, splitList(v)...)
			}
		case "-hf", "-hfr", "--hf-repo", "-hff", "--hf-file":
			if _, err = next(); err == nil {
				err = bad(errors.New("downloading models is not supported; download the GGUF and pass -m FILE"))
			}
		case "-hft", "--hf-token":
			_, err = next() // only used with --hf-repo, which is refused
		case "--offline":
			// Nothing is ever downloaded, so offline is what glmbench always is.
		case "-p", "--n-prompt":
			var r []int
			if r, err = ints(false); err == nil {
				p.NPrompt = append(p.NPrompt, r...)
				p.explicitP = true
			}
		case "-n", "--n-gen":
			var r []int
			if r, err = ints(false); err == nil {
				p.NGen = append(p.NGen, r...)
				p.explicitN = true
			}
		case "-pg":
			var v string
			if v, err = next(); err == nil {
				parts := strings.Split(v, ",")
				if len(parts) != 2 {
					err = &ArgError{Flag: arg}
					break
				}
				a, e1 := strconv.Atoi(strings.TrimSpace(parts[0]))
				b, e2 := strconv.Atoi(strings.TrimSpace(parts[1]))
				if e1 != nil || e2 != nil || a < 0 || b < 0 {
					err = bad(fmt.Errorf("-pg wants two non-negative integers pp,tg, got %q", v))
					break
				}
				p.PG = append(p.PG, [2]int{a, b})
			}
		case "-d", "--n-depth":
			var r []int
			if r, err = ints(false); err == nil {
				p.Depth = append(p.Depth, r...)
			}
		case "-b", "--batch-size":
			var r []int
			if r, err = ints(false); err == nil {
				p.Batch = append(p.Batch, r...)
			}
		case "-ub", "--ubatch-size":
			var r []int
			if r, err = ints(false); err == nil {
				p.UBatch = append(p.UBatch, r...)
			}
		case "-ctk", "--cache-type-k", "-ctv", "--cache-type-v":
			var v string
			if v, err = next(); err == nil {
				var types []string
				for _, t := range splitList(v) {
					switch {
					case t == "f16" || t == "f32":
						// Checked against the backend of each test when the run starts.
					case slices.Contains(cacheTypeNames, t):
						err = bad(fmt.Errorf("cache type %s is not supported: glmrun's KV cache is f16 or f32 on CUDA and f32 on the CPU", t))
					default:
						err = &ArgError{Flag: arg}
					}
					if err != nil {
						break
					}
					types = append(types, t)
				}
				if err == nil {
					if arg == "-ctk" || arg == "--cache-type-k" {
						p.TypeK = append(p.TypeK, types...)
					} else {
						p.TypeV = append(p.TypeV, types...)
					}
				}
			}
		case "-dev", "--device":
			var v string
			if v, err = next(); err == nil {
				for _, d := range splitList(v) {
					var n string
					if n, err = normalizeDevice(d); err != nil {
						err = bad(err)
						break
					}
					p.Devices = append(p.Devices, n)
				}
			}
		case "-t", "--threads":
			var r []int
			if r, err = ints(false); err == nil {
				for _, t := range r {
					if t < 1 {
						err = bad(fmt.Errorf("thread count %d must be >= 1", t))
					}
				}
				p.Threads = append(p.Threads, r...)
			}
		case "-C", "--cpu-mask":
			var v string
			if v, err = next(); err == nil {
				p.CPUMask = append(p.CPUMask, splitList(v)...)
				warn(arg, noEffect)
			}
		case "--cpu-strict":
			var r []bool
			if r, err = bools(); err == nil {
				p.CPUStrict = append(p.CPUStrict, r...)
				warn(arg, noEffect)
			}
		case "--poll":
			var r []int
			if r, err = ints(false); err == nil {
				p.Poll = append(p.Poll, r...)
				warn(arg, noEffect)
			}
		case "-ngl", "--n-gpu-layers":
			var r []int
			if r, err = ints(true); err == nil {
				// Honoured per backend when the run starts: 0 means the CPU, any
				// other value runs every layer on the GPU (see Runner.plan).
				p.NGL = append(p.NGL, r...)
			}
		case "-ncmoe", "--n-cpu-moe":
			var r []int
			if r, err = ints(false); err == nil {
				p.NCPUMoE = append(p.NCPUMoE, r...)
				warn(arg, "has no effect: the experts run on the same device as the rest of the model")
			}
		case "-rpc", "--rpc":
			if _, err = next(); err == nil {
				err = bad(errors.New("RPC devices are not supported"))
			}
		case "-sm", "--split-mode":
			var v string
			if v, err = next(); err == nil {
				for _, m := range splitList(v) {
					switch m {
					case "none", "layer":
					case "row", "tensor":
						warn(arg+" "+m, "has no effect: glmrun runs on a single device")
					default:
						err = &ArgError{Flag: arg}
					}
					if err != nil {
						break
					}
					p.SplitMode = append(p.SplitMode, m)
				}
			}
		case "-lm", "--load-mode":
			var v string
			if v, err = next(); err == nil {
				for _, m := range splitList(v) {
					switch m {
					case "none", "mmap":
					case "mlock", "mmap+mlock":
						warn(arg+" "+m, "has no effect: pages are not locked (the model is mapped)")
					case "dio":
						err = bad(errors.New("direct I/O loading is not supported (use mmap or none)"))
					default:
						err = &ArgError{Flag: arg}
					}
					if err != nil {
						break
					}
					p.LoadMode = append(p.LoadMode, m)
				}
			}
		case "-mmp", "--mmap":
			var r []bool
			if r, err = bools(); err == nil {
				warn(arg, "is deprecated in favour of --load-mode")
				for _, b := range r {
					if b {
						p.LoadMode = append(p.LoadMode, "mmap")
					} else {
						p.LoadMode = append(p.LoadMode, "none")
					}
				}
			}
		case "-dio", "--direct-io":
			var r []bool
			if r, err = bools(); err == nil {
				warn(arg, "is deprecated in favour of --load-mode")
				for _, b := range r {
					if b {
						err = bad(errors.New("direct I/O loading is not supported (use mmap or none)"))
						break
					}
					p.LoadMode = append(p.LoadMode, "none")
				}
			}
		case "-mg", "--main-gpu":
			var r []int
			if r, err = ints(false); err == nil {
				p.MainGPU = r // llama-bench replaces, not appends
				warn(arg, noEffect)
			}
		case "-nkvo", "--no-kv-offload":
			var r []bool
			if r, err = bools(); err == nil {
				p.NoKVOffload = append(p.NoKVOffload, r...)
				warn(arg, "has no effect: the KV cache lives with the backend (host memory on the CPU, device memory on CUDA)")
			}
		case "--numa":
			var v string
			if v, err = next(); err == nil {
				switch v {
				case "distribute", "", "isolate", "numactl":
					if v == "" {
						v = "distribute"
					}
					p.Numa = v
					warn(arg, noEffect)
				default:
					err = &ArgError{Flag: arg}
				}
			}
		case "-fa", "--flash-attn":
			var v string
			if v, err = next(); err == nil {
				for _, s := range splitList(v) {
					switch strings.ToLower(s) {
					case "on", "enabled", "1", "true":
						p.FlashAttn = append(p.FlashAttn, 1)
					case "off", "disabled", "0", "false":
						p.FlashAttn = append(p.FlashAttn, 0)
					case "auto", "-1":
						p.FlashAttn = append(p.FlashAttn, -1)
					default:
						err = &ArgError{Flag: arg}
					}
					if err != nil {
						break
					}
				}
				warn(arg, "has no effect: each backend has one attention path (absorbed MLA over the latent cache; flash-style on CUDA)")
			}
		case "-embd", "--embeddings":
			var r []bool
			if r, err = bools(); err == nil {
				for _, b := range r {
					if b {
						err = bad(errors.New("embeddings mode is not supported"))
						break
					}
				}
				p.Embeddings = append(p.Embeddings, r...)
			}
		case "-nopo", "--no-op-offload":
			var r []bool
			if r, err = bools(); err == nil {
				p.NoOpOffload = append(p.NoOpOffload, r...)
				warn(arg, noEffect)
			}
		case "--no-host":
			var r []bool
			if r, err = bools(); err == nil {
				p.NoHost = append(p.NoHost, r...)
				warn(arg, noEffect)
			}
		case "-ts", "--tensor-split":
			var v string
			if v, err = next(); err == nil {
				for _, ts := range splitList(v) {
					var s string
					if s, err = formatTensorSplit(ts); err != nil {
						err = bad(err)
						break
					}
					p.TensorSplit = append(p.TensorSplit, s)
				}
				warn(arg, "has no effect: glmrun runs on a single device")
			}
		case "-ot", "--override-tensor":
			var v string
			if v, err = next(); err == nil {
				for _, group := range strings.Split(v, ",") {
					if group == "" {
						p.Overrides = append(p.Overrides, "none")
						continue
					}
					for _, o := range strings.Split(group, ";") {
						if o != "" && !strings.Contains(o, "=") {
							err = &ArgError{Flag: arg}
						}
					}
					p.Overrides = append(p.Overrides, strings.TrimRight(group, ";"))
				}
				warn(arg, "has no effect: tensor placement is not configurable (every tensor lives on the test's backend)")
			}
		case "-r", "--repetitions":
			p.Reps, err = oneInt()
			if err == nil && p.Reps < 1 {
				err = bad(fmt.Errorf("repetitions must be >= 1, got %d", p.Reps))
			}
		case "--prio":
			p.Prio, err = oneInt()
			if err == nil {
				if p.Prio < -1 || p.Prio > 3 {
					err = bad(fmt.Errorf("priority %d is not in -1..3", p.Prio))
				} else if p.Prio != 0 {
					warn(arg, "has no effect: process priority is not changed")
				}
			}
		case "--delay":
			p.Delay, err = oneInt()
			if err == nil && p.Delay < 0 {
				err = bad(fmt.Errorf("delay %d must be >= 0", p.Delay))
			}
		case "-o", "--output", "-oe", "--output-err":
			var v string
			if v, err = next(); err == nil {
				switch v {
				case "none", "csv", "json", "jsonl", "md", "sql":
					if arg == "-o" || arg == "--output" {
						p.Output = v
					} else {
						p.OutputErr = v
					}
				default:
					err = &ArgError{Flag: arg}
				}
			}
		case "-v", "--verbose":
			p.Verbose = true
		case "--progress":
			p.Progress = true
		case "--no-warmup":
			p.NoWarmup = true
		case "-fitt", "--fit-target":
			var v string
			if v, err = next(); err == nil {
				for _, s := range splitList(v) {
					n, e := strconv.ParseInt(s, 10, 64)
					if e != nil || n < 0 {
						err = bad(fmt.Errorf("%q is not a MiB count", s))
						break
					}
					p.FitTarget = append(p.FitTarget, n)
				}
				warn(arg, "has no effect: glmrun does not fit layers into device memory (CUDA holds the whole model)")
			}
		case "-fitc", "--fit-ctx":
			var v string
			if v, err = next(); err == nil {
				for _, s := range splitList(v) {
					n, e := strconv.Atoi(s)
					if e != nil || n < 0 {
						err = bad(fmt.Errorf("%q is not a context size", s))
						break
					}
					p.FitCtx = append(p.FitCtx, n)
				}
				warn(arg, "has no effect: glmrun does not fit layers into device memory (CUDA holds the whole model)")
			}

		// Ours.
		case "--prompt-sizes", "--output-tokens":
			var v string
			if v, err = next(); err == nil {
				var r []int
				if r, err = ParseSizes(v); err != nil {
					err = bad(err)
					break
				}
				for _, n := range r {
					if n < 1 {
						err = bad(fmt.Errorf("%d tokens: sizes must be >= 1", n))
					}
				}
				if arg == "--prompt-sizes" {
					p.PromptSizes = append(p.PromptSizes, r...)
				} else {
					p.OutputTokens = append(p.OutputTokens, r...)
				}
			}
		case "--summary-json", "--json-out":
			p.SummaryJSON, err = next()
		case "--energy", "--cpu-energy":
			var v string
			if v, err = next(); err == nil {
				if v != "on" && v != "off" && v != "auto" {
					err = &ArgError{Flag: arg}
				} else if arg == "--energy" {
					p.Energy = v
				} else {
					p.CPUEnergy = v
				}
			}
		case "--power-sample-ms":
			p.PowerSample, err = oneInt()
			if err == nil && p.PowerSample < 1 {
				err = bad(fmt.Errorf("sampling period %d ms must be >= 1", p.PowerSample))
			}
		case "--extra-cols":
			p.ExtraCols = true
		case "--prompt-seed":
			var v string
			if v, err = next(); err == nil {
				if p.PromptSeed, err = strconv.ParseInt(v, 10, 64); err != nil {
					err = bad(fmt.Errorf("%q is not an integer", v))
				}
			}
		case "--plot":
			p.Plot, err = next()
		case "--exact":
			p.Exact = true
		case "--compare":
			// Every following argument that is not a flag is a saved run.
			for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				p.Compare = append(p.Compare, args[i])
			}
			if len(p.Compare) == 0 {
				err = bad(errors.New("--compare needs at least one saved run (JSON file)"))
			}
		default:
			err = &ArgError{Flag: arg}
		}
		if err != nil {
			return nil, err
		}
	}
	p.fillDefaults(physicalCores)
	if err := p.check(); err != nil {
		return nil, err
	}
	return p, nil
}

// fillDefaults gives every empty list llama-bench's default.
func (p *Params) fillDefaults(physicalCores int) {
	def := func(l *[]int, v ...int) {
		if len(*l) == 0 {
			*l = v
		}
	}
	defB := func(l *[]bool) {
		if len(*l) == 0 {
			*l = []bool{false}
		}
	}
	defS := func(l *[]string, v string) {
		if len(*l) == 0 {
			*l = []string{v}
		}
	}
	if len(p.Models) == 0 {
		p.Models = []string{defaultModel}
	}
	if p.SeedMode() {
		if len(p.PromptSizes) == 0 {
			p.PromptSizes = []int{1000, 10000, 100000}
		}
		if len(p.OutputTokens) == 0 {
			p.OutputTokens = []int{16, 256, 1024}
		}
		if p.SummaryJSON == "" {
			p.SummaryJSON = "benchmark_results.json"
		}
		p.ExtraCols = true
	} else {
		def(&p.NPrompt, 512)
		def(&p.NGen, 128)
	}
	def(&p.Depth, 0)
	def(&p.Batch, 2048)
	def(&p.UBatch, 512)
	defS(&p.TypeK, "")
	defS(&p.TypeV, "")
	def(&p.Threads, physicalCores)
	defS(&p.CPUMask, "0x0")
	defB(&p.CPUStrict)
	def(&p.Poll, 50)
	def(&p.NGL, -1)
	def(&p.NCPUMoE, 0)
	defS(&p.SplitMode, "layer")
	defS(&p.LoadMode, "mmap")
	def(&p.MainGPU, 0)
	defB(&p.NoKVOffload)
	def(&p.FlashAttn, -1)
	defS(&p.Devices, "auto")
	defS(&p.TensorSplit, "0.00")
	defS(&p.Overrides, "none")
	defB(&p.Embeddings)
	defB(&p.NoOpOffload)
	defB(&p.NoHost)
	if len(p.FitTarget) == 0 {
		p.FitTarget = []int64{0}
	}
	def(&p.FitCtx, 0)
}

// check rejects combinations no test could run.
func (p *Params) check() error {
	for _, b := range p.Batch {
		if b < 1 {
			return &ArgError{Flag: "-b", Err: fmt.Errorf("batch size %d must be >= 1", b)}
		}
	}
	for _, b := range p.UBatch {
		if b < 1 {
			return &ArgError{Flag: "-ub", Err: fmt.Errorf("micro-batch size %d must be >= 1", b)}
		}
	}
	if len(p.Compare) == 0 && p.Plot != "" && !strings.HasSuffix(strings.ToLower(p.Plot), ".svg") {
		return &ArgError{Flag: "--plot", Err: fmt.Errorf("%q: the plot is written as SVG; name it FILE.svg", p.Plot)}
	}
	return nil
}

// formatTensorSplit turns one -ts value ("3/1", "0.6;0.4") into llama-bench's
// printed form: each proportion with two decimals, up to the last non-zero.
func formatTensorSplit(v string) (string, error) {
	parts := strings.FieldsFunc(v, func(r rune) bool { return r == '/' || r == ';' })
	if len(parts) == 0 {
		return "0.00", nil
	}
	vals := make([]float64, len(parts))
	last := 0
	for i, s := range parts {
		f, err := strconv.ParseFloat(s, 32)
		if err != nil {
			return "", fmt.Errorf("tensor split %q: %q is not a number", v, s)
		}
		vals[i] = f
		if f > 0 {
			last = i
		}
	}
	out := make([]string, last+1)
	for i := range out {
		out[i] = fmt.Sprintf("%.2f", vals[i])
	}
	return strings.Join(out, "/"), nil
}

// Usage writes glmbench's help text (llama-bench's, plus the flags of §1.4).
func Usage(w io.Writer, prog string, physicalCores int) {
	fmt.Fprintf(w, `usage: %s [options]

options:
  -h, --help
  --numa <distribute|isolate|numactl>         numa mode (default: disabled)
  -r, --repetitions <n>                       number of times to repeat each test (default: 5)
  --prio <-1|0|1|2|3>                         process/thread priority (default: 0)
  --delay <0...N> (seconds)                   delay between each test (default: 0)
  -o, --output <csv|json|jsonl|md|sql>        output format printed to stdout (default: md)
  -oe, --output-err <csv|json|jsonl|md|sql>   output format printed to stderr (default: none)
  --list-devices                              list available devices and exit
  -v, --verbose                               verbose output
  --progress                                  print test progress indicators
  --no-warmup                                 skip warmup runs before benchmarking
  -fitt, --fit-target <MiB>                   fit model to device memory with this margin per device in MiB (default: off)
  -fitc, --fit-ctx <n>                        minimum ctx size for --fit-target (default: 4096)

test parameters:
  -m, --model <filename>                            (default: %s)
  -hf, -hfr, --hf-repo <user>/<model>[:quant]       not supported (no downloads)
  -hff, --hf-file <file>                            not supported (no downloads)
  -hft, --hf-token <token>                          Hugging Face access token (unused)
  --offline                                         Offline mode (always on)
  -p, --n-prompt <n>                                (default: 512)
  -n, --n-gen <n>                                   (default: 128)
  -pg <pp,tg>                                       (default: )
  -d, --n-depth <n>                                 (default: 0)
  -b, --batch-size <n>                              (default: 2048)
  -ub, --ubatch-size <n>                            (default: 512)
  -ctk, --cache-type-k <f16|f32>                    (default: f16 on CUDA, f32 on the CPU)
  -ctv, --cache-type-v <f16|f32>                    (default: f16 on CUDA, f32 on the CPU)
  -t, --threads <n>                                 (default: %d)
  -C, --cpu-mask <hex,hex>                          (default: 0x0)
  --cpu-strict <0|1>                                (default: 0)
  --poll <0...100>                                  (default: 50)
  -ngl, --n-gpu-layers <n>                          (default: -1; CUDA runs every layer, 0 = the CPU)
  -ncmoe, --n-cpu-moe <n>                           (default: 0)
  -sm, --split-mode <none|layer|row|tensor>         (default: layer)
  -mg, --main-gpu <i>                               (default: 0)
  -nkvo, --no-kv-offload <0|1>                      (default: 0)
  -fa, --flash-attn <on|off|auto>                   (default: auto)
  -dev, --device <auto|none|CUDA0>                  (default: auto = CUDA0 if usable, else the CPU;
                                                    also cpu (= none) and cuda (= CUDA0))
  -lm, --load-mode <none|mmap|mlock|mmap+mlock|dio> (default: mmap)
  -mmp, --mmap <0|1>                                (DEPRECATED IN FAVOUR OF --load-mode)
  -dio, --direct-io <0|1>                           (DEPRECATED IN FAVOUR OF --load-mode)
  -embd, --embeddings <0|1>                         (default: 0)
  -ts, --tensor-split <ts0/ts1/..>                  (default: 0)
  -ot --override-tensor <tensor name pattern>=<buffer type>;...
                                                    (default: disabled)
  -nopo, --no-op-offload <0|1>                      (default: 0)
  --no-host <0|1>                                   (default: 0)

glmbench options (not in llama-bench):
  --prompt-sizes <list>      seed mode: prompt lengths, k = x1000 (default in seed mode: 1k,10k,100k)
  --output-tokens <list>     seed mode: generation lengths (default in seed mode: 16,256,1024)
                             seed mode runs every (prompt, output) pair as prompt-then-generate and
                             reports time to first token, decode t/s and end-to-end time
  --summary-json, --json-out <FILE|->
                             write the summary object (default in seed mode: benchmark_results.json);
                             energy.mean_tokens_per_watt is tokens per joule (= (tokens/s) / W)
  --energy <on|off|auto>     GPU energy and power through NVML (default: auto: measured on a GPU backend when
                             NVML answers, null otherwise; on: an error if it cannot be measured)
  --cpu-energy <on|off|auto> CPU package energy from RAPL powercap counters (default: auto; null if unreadable)
  --power-sample-ms <n>      GPU power/memory sampling period; power samples give the energy only where
                             NVML's total-energy counter is missing (default: 50)
  --extra-cols               add ttft, gen t/s, energy and peak RSS (CPU) or W and VRAM (GPU) columns
                             (on in seed mode)
  --prompt-seed <n>          seed of the random prompt tokens (default: 1)
  --plot <FILE.svg>          draw t/s against prompt size, depth or output length
  --exact                    float32 math on exactly dequantized weights (slower reference path)
  --compare <A.json> <B.json> ...
                             compare saved runs (summary JSON or -o json output): markdown table on stdout,
                             bar chart with --plot FILE.svg

Multiple values can be given for each parameter by separating them with ','
or by specifying the parameter multiple times. Ranges can be given as
'first-last' or 'first-last+step' or 'first-last*mult'.
`, prog, defaultModel, physicalCores)
}
