package bench

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Instance is one test of the matrix: one value of every test parameter.
type Instance struct {
	Model       string
	FitTarget   int64
	FitCtx      int
	NGL         int
	NCPUMoE     int
	SplitMode   string
	LoadMode    string
	MainGPU     int
	Devices     string
	TensorSplit string
	Overrides   string
	NoHost      bool
	Embeddings  bool
	NoOpOffload bool
	Batch       int
	UBatch      int
	TypeK       string
	TypeV       string
	NoKVOffload bool
	FlashAttn   int
	Threads     int
	CPUMask     string
	CPUStrict   bool
	Depth       int
	Poll        int
	NPrompt     int
	NGen        int
	// Split times a pg test as prefill-to-first-token plus generation.
	Split bool
}

// Name is llama-bench's test name: pp512, tg128, pp512+tg128, with
// " @ d4096" when the depth is positive.
func (in Instance) Name() string {
	var s string
	switch {
	case in.NPrompt > 0 && in.NGen == 0:
		s = fmt.Sprintf("pp%d", in.NPrompt)
	case in.NGen > 0 && in.NPrompt == 0:
		s = fmt.Sprintf("tg%d", in.NGen)
	default:
		s = fmt.Sprintf("pp%d+tg%d", in.NPrompt, in.NGen)
	}
	if in.Depth > 0 {
		s += fmt.Sprintf(" @ d%d", in.Depth)
	}
	return s
}

// Result is one finished test.
type Result struct {
	Inst      Instance
	Model     ModelDesc
	Build     string
	BuildNum  int
	CPUInfo   string
	GPUInfo   string
	Backend   string
	TestTime  time.Time
	SamplesNs []uint64
	// Split timing (pg tests in seed mode and -pg): time to first token and
	// generation time per repetition; nil when not measured.
	TTFTNs []uint64
	GenNs  []uint64
	// CPUJoules is RAPL package energy over the timed repetitions (nil if
	// unreadable). GPUJoules is the GPU's energy over the same repetitions
	// (NVML energy counter, else power samples integrated); nil on the CPU
	// backend or when NVML gives neither.
	CPUJoules *float64
	GPUJoules *float64
	// GPUAvgPowerW is GPUJoules over the timed time; GPUPeakPowerW the
	// highest power sample during it (nil when unknown).
	GPUAvgPowerW  *float64
	GPUPeakPowerW *float64
	// GPUName is the GPU's name on a GPU backend ("" on the CPU).
	GPUName string
	// VRAMPeak is the peak device-wide memory in use during the test minus
	// the baseline before the model was loaded; VRAMWeights and VRAMKV are
	// this engine's own weights and KV cache on the device (bytes; nil when
	// unknown or on the CPU).
	VRAMPeak    *uint64
	VRAMWeights *uint64
	VRAMKV      *uint64
	// RSSPeak is the process's peak resident set during the test (bytes),
	// nil if unknown.
	RSSPeak *uint64
	// KVBytes is the size of the test's KV cache.
	KVBytes uint64
}

// TS returns the per-sample rates 1e9·(n_prompt+n_gen)/ns.
func (r *Result) TS() []float64 {
	n := float64(r.Inst.NPrompt + r.Inst.NGen)
	out := make([]float64, len(r.SamplesNs))
	for i, ns := range r.SamplesNs {
		out[i] = 1e9 * n / float64(ns)
	}
	return out
}

// AvgTS is llama-bench's avg_ts: the mean of the per-sample rates.
func (r *Result) AvgTS() float64 { return mean(r.TS()) }

// StddevTS is the sample standard deviation (n−1) of the rates.
func (r *Result) StddevTS() float64 { return stdev(r.TS()) }

// GenTS returns the decode rates n_gen·1e9/gen_ns (tg tests: the sample
// rates themselves).
func (r *Result) GenTS() []float64 {
	if r.Inst.NGen == 0 {
		return nil
	}
	if r.GenNs == nil {
		if r.Inst.NPrompt == 0 {
			return r.TS()
		}
		return nil
	}
	out := make([]float64, len(r.GenNs))
	for i, ns := range r.GenNs {
		out[i] = 1e9 * float64(r.Inst.NGen) / float64(ns)
	}
	return out
}

// TTFTms returns the times to first token in milliseconds: measured for
// split pg tests; for pp tests the prompt time itself.
func (r *Result) TTFTms() []float64 {
	src := r.TTFTNs
	if src == nil && r.Inst.NGen == 0 && r.Inst.NPrompt > 0 {
		src = r.SamplesNs
	}
	if src == nil {
		return nil
	}
	out := make([]float64, len(src))
	for i, ns := range src {
		out[i] = float64(ns) / 1e6
	}
	return out
}

// PromptTS returns the prefill rates n_prompt·1e9/ttft_ns.
func (r *Result) PromptTS() []float64 {
	if r.Inst.NPrompt == 0 {
		return nil
	}
	t := r.TTFTms()
	out := make([]float64, len(t))
	for i, ms := range t {
		out[i] = float64(r.Inst.NPrompt) * 1e3 / ms
	}
	return out
}

// EnergyJoules is the energy of the device that ran the model over the
// timed repetitions: GPU joules on a GPU backend, RAPL CPU-package joules on
// the CPU backend; nil if not measured.
func (r *Result) EnergyJoules() *float64 {
	if r.Backend != "CPU" {
		return r.GPUJoules
	}
	return r.CPUJoules
}

// TokensPerJoule is Σ(n_prompt+n_gen) over the timed repetitions divided by
// EnergyJoules; nil if the energy is unknown.
func (r *Result) TokensPerJoule() *float64 {
	j := r.EnergyJoules()
	if j == nil || *j <= 0 {
		return nil
	}
	v := float64((r.Inst.NPrompt+r.Inst.NGen)*len(r.SamplesNs)) / *j
	return &v
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// stdev is llama-bench's formula: sqrt(Σx²/(n−1) − mean²·n/(n−1)), 0 for
// fewer than two samples.
func stdev(v []float64) float64 {
	n := float64(len(v))
	if len(v) <= 1 {
		return 0
	}
	m := mean(v)
	sq := 0.0
	for _, x := range v {
		sq += x * x
	}
	d := sq/(n-1) - m*m*n/(n-1)
	if d < 0 {
		return 0
	}
	return math.Sqrt(d)
}

// avgNs and stdevNs are llama-bench's integer statistics over samples_ns
// (integer division), computed exactly (llama-bench's uint64 arithmetic
// overflows above a few seconds per sample; big integers do not).
func avgNs(v []uint64) uint64 {
	if len(v) == 0 {
		return 0
	}
	s := new(big.Int)
	for _, x := range v {
		s.Add(s, new(big.Int).SetUint64(x))
	}
	return s.Div(s, big.NewInt(int64(len(v)))).Uint64()
}

func stdevNs(v []uint64) uint64 {
	if len(v) <= 1 {
		return 0
	}
	n := big.NewInt(int64(len(v)))
	n1 := big.NewInt(int64(len(v) - 1))
	m := new(big.Int).SetUint64(avgNs(v))
	sq := new(big.Int)
	for _, x := range v {
		b := new(big.Int).SetUint64(x)
		sq.Add(sq, b.Mul(b, b))
	}
	a := new(big.Int).Div(sq, n1)
	b := new(big.Int).Mul(m, m)
	b.Mul(b, n).Div(b, n1)
	a.Sub(a, b)
	if a.Sign() <= 0 {
		return 0
	}
	f, _ := new(big.Float).SetInt(a).Float64()
	return uint64(math.Sqrt(f))
}

// fieldKind is a field's llama-bench type.
type fieldKind int

const (
	kString fieldKind = iota
	kBool
	kInt
	kFloat
	kArray // extension fields only: a JSON array
)

// llamaFields are llama-bench's 40 output fields, in order.
var llamaFields = []string{
	"build_commit", "build_number", "cpu_info", "gpu_info", "backends",
	"model_filename", "model_type", "model_size", "model_n_params", "n_batch",
	"n_ubatch", "n_threads", "cpu_mask", "cpu_strict", "poll",
	"type_k", "type_v", "n_gpu_layers", "n_cpu_moe", "split_mode",
	"main_gpu", "no_kv_offload", "flash_attn", "devices", "tensor_split",
	"tensor_buft_overrides", "load_mode", "embeddings",
	"no_op_offload", "no_host", "fit_target", "fit_min_ctx",
	"n_prompt", "n_gen", "n_depth",
	"test_time", "avg_ns", "stddev_ns", "avg_ts", "stddev_ts",
}

// LlamaFields returns llama-bench's 40 field names in output order.
func LlamaFields() []string { return append([]string(nil), llamaFields...) }

// extraFields are glmbench's appended fields (interfaces.md §1.4), in order;
// the scalar ones go to csv/sql too, the arrays only to json/jsonl.
var extraFields = []struct {
	name string
	kind fieldKind
}{
	{"avg_ttft_ms", kFloat}, {"stddev_ttft_ms", kFloat}, {"avg_prompt_ts", kFloat},
	{"avg_gen_ts", kFloat}, {"stddev_gen_ts", kFloat}, {"avg_gen_ms", kFloat},
	{"samples_ttft_ns", kArray}, {"samples_gen_ns", kArray},
	{"gpu_energy_j", kFloat}, {"gpu_avg_power_w", kFloat}, {"gpu_peak_power_w", kFloat},
	{"tokens_per_joule", kFloat}, {"gen_tokens_per_joule", kFloat}, {"cpu_energy_j", kFloat},
	{"vram_peak_mib", kFloat}, {"vram_weights_mib", kFloat}, {"vram_kv_mib", kFloat},
	{"gpu_name", kString}, {"gpu_power_limit_w", kFloat},
	{"rss_peak_mib", kFloat}, {"kv_cache_mib", kFloat},
}

func fieldKindOf(name string) fieldKind {
	switch name {
	case "build_number", "n_batch", "n_ubatch", "n_threads", "poll", "model_size", "model_n_params",
		"n_gpu_layers", "main_gpu", "n_prompt", "n_gen", "n_depth", "avg_ns", "stddev_ns",
		"no_op_offload", "n_cpu_moe", "fit_target", "fit_min_ctx", "flash_attn":
		return kInt
	case "no_kv_offload", "cpu_strict", "embeddings", "no_host":
		return kBool
	case "avg_ts", "stddev_ts":
		return kFloat
	}
	for _, f := range extraFields {
		if f.name == name {
			return f.kind
		}
	}
	return kString
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// ftoa is C++ std::to_string(double): "%f".
func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', 6, 64) }

// gfmt is C++ ostream's default double formatting (%g, precision 6).
func gfmt(f float64) string {
	s := strconv.FormatFloat(f, 'g', 6, 64)
	// Go writes e+06 like C; nothing else to adjust.
	return s
}

// Values returns the 40 llama-bench values as strings, in field order.
func (r *Result) Values() []string {
	in := r.Inst
	return []string{
		r.Build, strconv.Itoa(r.BuildNum), r.CPUInfo, r.GPUInfo, r.Backend,
		in.Model, r.Model.Type, strconv.FormatUint(r.Model.Size, 10), strconv.FormatUint(r.Model.Params, 10), strconv.Itoa(in.Batch),
		strconv.Itoa(in.UBatch), strconv.Itoa(in.Threads), in.CPUMask, b01(in.CPUStrict), strconv.Itoa(in.Poll),
		in.TypeK, in.TypeV, strconv.Itoa(in.NGL), strconv.Itoa(in.NCPUMoE), in.SplitMode,
		strconv.Itoa(in.MainGPU), b01(in.NoKVOffload), strconv.Itoa(in.FlashAttn), in.Devices, in.TensorSplit,
		in.Overrides, in.LoadMode, b01(in.Embeddings),
		b01(in.NoOpOffload), b01(in.NoHost), strconv.FormatInt(in.FitTarget, 10), strconv.Itoa(in.FitCtx),
		strconv.Itoa(in.NPrompt), strconv.Itoa(in.NGen), strconv.Itoa(in.Depth),
		r.TestTime.UTC().Format("2006-01-02T15:04:05Z"), strconv.FormatUint(avgNs(r.SamplesNs), 10),
		strconv.FormatUint(stdevNs(r.SamplesNs), 10), ftoa(r.AvgTS()), ftoa(r.StddevTS()),
	}
}

// extraValue is one extension field: its JSON text, its csv/sql text and
// whether it is null.
type extraValue struct {
	name string
	kind fieldKind
	json string
	text string
	null bool
}

func optFloat(name string, v *float64) extraValue {
	if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) {
		return extraValue{name: name, kind: kFloat, json: "null", null: true}
	}
	s := ftoa(*v)
	return extraValue{name: name, kind: kFloat, json: s, text: s}
}

func floatsOpt(v []float64, f func([]float64) float64) *float64 {
	if len(v) == 0 {
		return nil
	}
	x := f(v)
	return &x
}

func nsArray(name string, v []uint64) extraValue {
	if v == nil {
		return extraValue{name: name, kind: kArray, json: "null", null: true}
	}
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatUint(x, 10)
	}
	return extraValue{name: name, kind: kArray, json: "[ " + strings.Join(parts, ", ") + " ]"}
}

// Extras returns the extension fields of r in extraFields order.
func (r *Result) Extras() []extraValue {
	ttft := r.TTFTms()
	gen := r.GenTS()
	var genMs []float64
	for _, ns := range r.GenNs {
		genMs = append(genMs, float64(ns)/1e6)
	}
	var genTPJ *float64
	if j := r.EnergyJoules(); j != nil && *j > 0 && r.GenNs != nil && r.TTFTNs != nil {
		// Energy is measured per repetition as a whole; the generation share
		// is apportioned by time.
		var tot, g float64
		for i := range r.SamplesNs {
			tot += float64(r.SamplesNs[i])
			g += float64(r.GenNs[i])
		}
		if g > 0 && tot > 0 {
			v := float64(r.Inst.NGen*len(r.SamplesNs)) / (*j * g / tot)
			genTPJ = &v
		}
	}
	var rss, kv *float64
	if r.RSSPeak != nil {
		v := float64(*r.RSSPeak) / (1 << 20)
		rss = &v
	}
	if r.KVBytes > 0 {
		v := float64(r.KVBytes) / (1 << 20)
		kv = &v
	}
	gpuName := extraValue{name: "gpu_name", kind: kString, json: "null", null: true}
	if r.GPUName != "" {
		gpuName = extraValue{name: "gpu_name", kind: kString, json: `"` + escapeJSON(r.GPUName) + `"`, text: r.GPUName}
	}
	return []extraValue{
		optFloat("avg_ttft_ms", floatsOpt(ttft, mean)),
		optFloat("stddev_ttft_ms", floatsOpt(ttft, stdev)),
		optFloat("avg_prompt_ts", floatsOpt(r.PromptTS(), mean)),
		optFloat("avg_gen_ts", floatsOpt(gen, mean)),
		optFloat("stddev_gen_ts", floatsOpt(gen, stdev)),
		optFloat("avg_gen_ms", floatsOpt(genMs, mean)),
		nsArray("samples_ttft_ns", r.TTFTNs),
		nsArray("samples_gen_ns", r.GenNs),
		optFloat("gpu_energy_j", r.GPUJoules),
		optFloat("gpu_avg_power_w", r.GPUAvgPowerW),
		optFloat("gpu_peak_power_w", r.GPUPeakPowerW),
		optFloat("tokens_per_joule", r.TokensPerJoule()),
		optFloat("gen_tokens_per_joule", genTPJ),
		optFloat("cpu_energy_j", r.CPUJoules),
		optFloat("vram_peak_mib", mib(r.VRAMPeak)),
		optFloat("vram_weights_mib", mib(r.VRAMWeights)),
		optFloat("vram_kv_mib", mib(r.VRAMKV)),
		gpuName,
		optFloat("gpu_power_limit_w", nil),
		optFloat("rss_peak_mib", rss),
		optFloat("kv_cache_mib", kv),
	}
}

// mib converts optional bytes to optional MiB.
func mib(b *uint64) *float64 {
	if b == nil {
		return nil
	}
	v := float64(*b) / (1 << 20)
	return &v
}
