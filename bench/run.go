package bench

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	"github.com/glmrun/glmrun/gguf"
)

// Instances expands p into llama-bench's test matrix: for every combination
// of the non-test parameters (in llama-bench's loop order, model outermost,
// poll innermost), one pp test per -p value, one tg test per -n value and
// one pg test per -pg pair (0 values skipped), then in seed mode one split
// pg test per (prompt size, output tokens) pair.
func Instances(p *Params) []Instance {
	var out []Instance
	for _, m := range p.Models {
		for _, fpt := range p.FitTarget {
			for _, fpc := range p.FitCtx {
				for _, nl := range p.NGL {
					for _, ncmoe := range p.NCPUMoE {
						for _, sm := range p.SplitMode {
							for _, lm := range p.LoadMode {
								for _, mg := range p.MainGPU {
									for _, dev := range p.Devices {
										for _, ts := range p.TensorSplit {
											for _, ot := range p.Overrides {
												for _, noh := range p.NoHost {
													for _, embd := range p.Embeddings {
														for _, nopo := range p.NoOpOffload {
															for _, nb := range p.Batch {
																for _, nub := range p.UBatch {
																	for _, tk := range p.TypeK {
																		for _, tv := range p.TypeV {
																			for _, nkvo := range p.NoKVOffload {
																				for _, fa := range p.FlashAttn {
																					for _, nt := range p.Threads {
																						for _, cm := range p.CPUMask {
																							for _, cs := range p.CPUStrict {
																								for _, nd := range p.Depth {
																									for _, pl := range p.Poll {
																										base := Instance{Model: m, FitTarget: fpt, FitCtx: fpc, NGL: nl, NCPUMoE: ncmoe,
																											SplitMode: sm, LoadMode: lm, MainGPU: mg, Devices: dev, TensorSplit: ts,
																											Overrides: ot, NoHost: noh, Embeddings: embd, NoOpOffload: nopo, Batch: nb,
																											UBatch: nub, TypeK: tk, TypeV: tv, NoKVOffload: nkvo, FlashAttn: fa,
																											Threads: nt, CPUMask: cm, CPUStrict: cs, Depth: nd, Poll: pl}
																										out = appendTests(out, base, p)
																									}
																								}
																							}
																						}
																					}
																				}
																			}
																		}
																	}
																}
															}
														}
													}
												}
											}
										}
									}
								}
							}
						}
					}
				}
			}
		}
	}
	return out
}

func appendTests(out []Instance, base Instance, p *Params) []Instance {
	for _, n := range p.NPrompt {
		if n != 0 {
			in := base
			in.NPrompt = n
			out = append(out, in)
		}
	}
	for _, n := range p.NGen {
		if n != 0 {
			in := base
			in.NGen = n
			out = append(out, in)
		}
	}
	for _, pg := range p.PG {
		if pg[0] != 0 || pg[1] != 0 {
			in := base
			in.NPrompt, in.NGen = pg[0], pg[1]
			in.Split = pg[0] > 0 && pg[1] > 0
			out = append(out, in)
		}
	}
	if p.SeedMode() {
		for _, np := range p.PromptSizes {
			for _, ng := range p.OutputTokens {
				in := base
				in.NPrompt, in.NGen, in.Split = np, ng, true
				out = append(out, in)
			}
		}
	}
	return out
}

// Runner runs a benchmark.
type Runner struct {
	Params *Params
	// Backends are the backends -dev chooses from (the CPU is added when
	// missing). When nil, Load and Backend describe the only one: a CPU
	// backend named Backend ("CPU" when empty) with an f32 cache.
	Backends []Backend
	Load     Loader
	Backend  string
	Stdout   io.Writer // results
	Stderr   io.Writer // warnings, progress, -oe output
	// PowercapRoot is where RAPL counters are looked for
	// (/sys/class/powercap when empty).
	PowercapRoot string
	// MemAvailable returns the bytes of memory available for KV caches;
	// nil reads /proc/meminfo.
	MemAvailable func() (uint64, bool)
	// Now is the clock for test_time (time.Now when nil).
	Now func() time.Time

	// Results of the finished tests, in order.
	Results []*Result
	// Skipped lists seed-mode cases that did not fit, with the reason.
	Skipped []Skip
	// Started is when Run began (the summary's timestamp).
	Started time.Time
}

// Skip is a test case that was not run.
type Skip struct {
	NPrompt int    `json:"n_prompt"`
	NGen    int    `json:"n_gen"`
	NDepth  int    `json:"n_depth"`
	Reason  string `json:"reason"`
}

// KVSizer is implemented by engines that can tell the size of a cache
// before allocating it (bytes; on a GPU engine, device memory).
type KVSizer interface {
	KVBytes(maxTokens int) uint64
}

func (r *Runner) progressf(format string, a ...any) {
	if r.Params.Progress {
		fmt.Fprintf(r.Stderr, "glmbench: "+format+"\n", a...)
	}
}

// Run executes every test of the matrix, printing each result as it
// finishes. An error aborts the run (the printers' footers are not written).
func (r *Runner) Run() error {
	p := r.Params
	if r.Now == nil {
		r.Now = time.Now
	}
	r.Started = r.Now()
	for _, w := range p.Warnings() {
		fmt.Fprintln(r.Stderr, w)
	}
	energyNoted := false
	insts, backs, err := r.plan()
	if err != nil {
		return err
	}
	printBackend := "CPU"
	if len(backs) > 0 {
		printBackend = backs[0].Name
	}
	if p.Energy == "on" {
		for i, b := range backs {
			if !b.GPU() {
				return fmt.Errorf("--energy on: GPU energy needs a GPU backend, and %s runs on the CPU (-dev none, -ngl 0, or no usable GPU for -dev auto)", insts[i].Name())
			}
		}
	}
	out, err := NewPrinter(p.Output, r.Stdout, printBackend, p.ExtraCols)
	if err != nil {
		return err
	}
	errOut, err := NewPrinter(p.OutputErr, r.Stderr, printBackend, p.ExtraCols)
	if err != nil {
		return err
	}
	if out != nil {
		out.Header(p)
	}
	if errOut != nil {
		errOut.Header(p)
	}
	root := r.PowercapRoot
	if root == "" {
		root = "/sys/class/powercap"
	}
	var rapl *RAPL
	if p.CPUEnergy != "off" {
		rapl = OpenRAPL(root)
		if rapl == nil && p.CPUEnergy == "on" {
			return errors.New("--cpu-energy on: no readable RAPL counters under " + root)
		}
	}
	rng := rand.New(rand.NewPCG(uint64(p.PromptSeed), 0x676c6d62656e6368))
	descs := map[string]ModelDesc{}
	cpu := cpuInfo()

	var eng Engine
	var loaded LoadOptions
	defer func() {
		if eng != nil {
			eng.Close()
		}
	}()
	for idx, in := range insts {
		n := idx + 1
		back := backs[idx]
		r.progressf("benchmark %d/%d: starting", n, len(insts))
		opt := LoadOptions{Path: in.Model, Threads: in.Threads, UBatch: in.UBatch, LoadMode: in.LoadMode, Exact: p.Exact,
			Backend: back.Name, CacheType: in.TypeK}
		if eng == nil || opt != loaded {
			if eng != nil {
				eng.Close()
				eng = nil
			}
			if _, ok := descs[in.Model]; !ok {
				d, err := describeFile(in.Model)
				if err != nil {
					return fmt.Errorf("failed to load model '%s': %w", in.Model, err)
				}
				descs[in.Model] = d
			}
			e, err := back.Load(opt)
			if err != nil {
				return fmt.Errorf("failed to load model '%s': %w", in.Model, err)
			}
			eng, loaded = e, opt
			if g, ok := eng.(GPUTelemetry); ok && p.Energy == "on" {
				if rd := g.GPUReading(); !rd.HasEnergy && !rd.HasPower {
					return fmt.Errorf("--energy on: NVML gives neither an energy counter nor power for %s: %v", g.GPUName(), rd.Err)
				}
			}
		}
		gpu, _ := eng.(GPUTelemetry)
		nctx := in.NPrompt + in.NGen + in.Depth
		if ct := descs[in.Model].CtxTrain; ct > 0 && nctx > ct {
			reason := fmt.Sprintf("context of %d tokens exceeds the model's training context %d", nctx, ct)
			if in.Split && p.SeedMode() {
				fmt.Fprintf(r.Stderr, "warning: skipping %s: %s\n", in.Name(), reason)
				r.Skipped = append(r.Skipped, Skip{NPrompt: in.NPrompt, NGen: in.NGen, NDepth: in.Depth, Reason: reason})
				continue
			}
			fmt.Fprintf(r.Stderr, "warning: %s: %s\n", in.Name(), reason)
		}
		var kvBytes uint64
		if ks, ok := eng.(KVSizer); ok {
			kvBytes = ks.KVBytes(nctx)
			avail, known := r.memAvailable()
			where := ""
			if gpu != nil {
				avail, known = gpu.VRAMFree()
				where = " of free VRAM on " + gpu.GPUName()
			}
			if known && kvBytes > avail {
				reason := fmt.Sprintf("KV cache of %d tokens needs %.0f MiB, %.0f MiB%s available", nctx, float64(kvBytes)/(1<<20), float64(avail)/(1<<20), where)
				if in.Split && p.SeedMode() {
					fmt.Fprintf(r.Stderr, "warning: skipping %s: %s\n", in.Name(), reason)
					r.Skipped = append(r.Skipped, Skip{NPrompt: in.NPrompt, NGen: in.NGen, NDepth: in.Depth, Reason: reason})
					continue
				}
				return fmt.Errorf("failed to create context with model '%s': %s", in.Model, reason)
			}
		}
		var meter *gpuMeter
		if gpu != nil {
			meter = newGPUMeter(gpu, p.Energy != "off", time.Duration(p.PowerSample)*time.Millisecond)
		}
		res, err := r.runTest(eng, in, n, len(insts), rng, rapl, meter)
		if err != nil {
			return err
		}
		if meter != nil {
			meter.fill(res, kvBytes)
			if meter.energy && res.GPUJoules == nil && !energyNoted {
				energyNoted = true
				fmt.Fprintf(r.Stderr, "glmbench: GPU energy not measured on %s (reported as null): %v\n", res.GPUName, meter.lastErr)
			}
		}
		res.Model = descs[in.Model]
		res.CPUInfo = cpu
		res.Backend = eng.Backend()
		res.Build, res.BuildNum = buildCommit(), buildNumber()
		res.KVBytes = kvBytes
		r.Results = append(r.Results, res)
		if out != nil {
			out.Test(res)
		}
		if errOut != nil {
			errOut.Test(res)
		}
	}
	if out != nil {
		out.Footer()
	}
	if errOut != nil {
		errOut.Footer()
	}
	return nil
}

// backends returns the backends the run chooses from.
func (r *Runner) backends() []Backend {
	if r.Backends != nil {
		return r.Backends
	}
	b := CPUBackend()
	if r.Backend != "" {
		b.Name = r.Backend
	}
	if r.Load != nil {
		b.Load = r.Load
	}
	return []Backend{b}
}

// plan expands the test matrix and picks each test's backend from its -dev
// and -ngl values, with its cache type resolved (the backend's default for
// an unset -ctk/-ctv) and checked. Problems with the command line (a device
// that is not usable, a cache type the backend lacks) are errors here,
// before anything is printed. It writes to stderr why -dev auto fell back to
// the CPU and which -ngl values are only echoed.
func (r *Runner) plan() ([]Instance, []*Backend, error) {
	p := r.Params
	devs := newDeviceSet(r.backends())
	insts := Instances(p)
	backs := make([]*Backend, len(insts))
	warned := map[string]bool{}
	note := func(s string) {
		if !warned[s] {
			warned[s] = true
			fmt.Fprintln(r.Stderr, s)
		}
	}
	for i := range insts {
		in := &insts[i]
		b, err := devs.resolve(in.Devices, in.NGL)
		if err != nil {
			return nil, nil, err
		}
		ct, err := cacheType(b, in.TypeK, in.TypeV, p.Exact)
		if err != nil {
			return nil, nil, fmt.Errorf("%s on %s: %w", in.Name(), b.Name, err)
		}
		in.TypeK, in.TypeV = ct, ct
		backs[i] = b
		switch {
		case in.Devices == "auto" && !b.GPU() && in.NGL != 0:
			if why := devs.autoFallback(); why != "" {
				note("glmbench: -dev auto: " + why + "; running on the CPU")
			}
		case b.GPU() && in.NGL > 0:
			note(fmt.Sprintf("warning: -ngl %d: the %s backend runs every layer on the GPU (-ngl 0 selects the CPU); the value is only echoed in the output", in.NGL, b.Name))
		}
		if !b.GPU() && in.NGL > 0 {
			note(fmt.Sprintf("warning: -ngl %d has no effect on the CPU backend (every layer runs on the CPU); the value is only echoed in the output", in.NGL))
		}
	}
	return insts, backs, nil
}

func describeFile(path string) (ModelDesc, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return ModelDesc{}, err
	}
	defer f.Close()
	return Describe(f)
}

func (r *Runner) memAvailable() (uint64, bool) {
	if r.MemAvailable != nil {
		return r.MemAvailable()
	}
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	var kb uint64
	for _, line := range splitLines(string(b)) {
		if _, err := fmt.Sscanf(line, "MemAvailable: %d kB", &kb); err == nil {
			return kb * 1024, true
		}
	}
	return 0, false
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// randomTokens fills a slice of n random token ids (llama-bench draws
// rand() % n_vocab; GLM adds no BOS).
func randomTokens(rng *rand.Rand, n, vocab int) []int32 {
	t := make([]int32, n)
	for i := range t {
		t[i] = int32(rng.IntN(vocab))
	}
	return t
}

// prompt decodes n random tokens in chunks of batch and returns the last
// logits.
func prompt(seq Sequence, rng *rand.Rand, n, batch, vocab int) ([]float32, error) {
	var logits []float32
	for done := 0; done < n; {
		k := min(batch, n-done)
		var err error
		if logits, err = seq.Decode(randomTokens(rng, k, vocab)); err != nil {
			return nil, err
		}
		done += k
	}
	return logits, nil
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// runTest runs one test on eng; meter (nil on the CPU) measures the GPU
// over the timed repetitions.
func (r *Runner) runTest(eng Engine, in Instance, n, total int, rng *rand.Rand, rapl *RAPL, meter *gpuMeter) (res *Result, err error) {
	p := r.Params
	res = &Result{Inst: in, TestTime: r.Now()}
	vocab := eng.VocabSize()
	seq, err := eng.NewSequence(in.NPrompt + in.NGen + in.Depth)
	if err != nil {
		return nil, fmt.Errorf("failed to create context with model '%s': %w", in.Model, err)
	}
	if rel, ok := seq.(Releaser); ok {
		defer func() {
			if e := rel.Release(); e != nil && err == nil {
				res, err = nil, fmt.Errorf("release the KV cache of %s: %w", in.Name(), e)
			}
		}()
	}
	if p.Delay > 0 {
		time.Sleep(time.Duration(p.Delay) * time.Second)
	}
	if !p.NoWarmup {
		if in.NPrompt > 0 {
			r.progressf("benchmark %d/%d: warmup prompt run", n, total)
			if _, err := prompt(seq, rng, in.NPrompt, in.Batch, vocab); err != nil {
				return nil, fmt.Errorf("failed to run prompt warmup: %w", err)
			}
		}
		if in.NGen > 0 {
			r.progressf("benchmark %d/%d: warmup generation run", n, total)
			if err := seq.Truncate(0); err != nil {
				return nil, err
			}
			if _, err := seq.Decode(randomTokens(rng, 1, vocab)); err != nil {
				return nil, fmt.Errorf("failed to run gen warmup: %w", err)
			}
		}
	}
	if meter != nil {
		defer meter.abort()
		meter.sample() // the cache and scratch are allocated by now
	}
	rssReset := ResetPeakRSS()
	var cpuJ float64
	depthReady := false
	for rep := 0; rep < p.Reps; rep++ {
		if in.Depth > 0 {
			if depthReady {
				r.progressf("benchmark %d/%d: depth run %d/%d (cached)", n, total, rep+1, p.Reps)
				if err := seq.Truncate(in.Depth); err != nil {
					return nil, err
				}
			} else {
				r.progressf("benchmark %d/%d: depth run %d/%d", n, total, rep+1, p.Reps)
				if err := seq.Truncate(0); err != nil {
					return nil, err
				}
				if _, err := prompt(seq, rng, in.Depth, in.Batch, vocab); err != nil {
					return nil, fmt.Errorf("failed to run depth: %w", err)
				}
				depthReady = true
			}
		} else if err := seq.Truncate(0); err != nil {
			return nil, err
		}
		var e0 []uint64
		if rapl != nil {
			e0, _ = rapl.Sample()
		}
		if meter != nil {
			meter.begin()
		}
		start := time.Now()
		var ttft time.Duration
		if in.NPrompt > 0 {
			r.progressf("benchmark %d/%d: prompt run %d/%d", n, total, rep+1, p.Reps)
			logits, err := prompt(seq, rng, in.NPrompt, in.Batch, vocab)
			if err != nil {
				return nil, fmt.Errorf("failed to run prompt: %w", err)
			}
			if in.Split {
				_ = argmax(logits) // the first generated token is known here
				ttft = time.Since(start)
			}
		}
		if in.NGen > 0 {
			r.progressf("benchmark %d/%d: generation run %d/%d", n, total, rep+1, p.Reps)
			for i := 0; i < in.NGen; i++ {
				if _, err := seq.Decode(randomTokens(rng, 1, vocab)); err != nil {
					return nil, fmt.Errorf("failed to run gen: %w", err)
				}
			}
		}
		elapsed := time.Since(start)
		if meter != nil {
			meter.end(elapsed)
		}
		if rapl != nil && e0 != nil {
			if e1, err := rapl.Sample(); err == nil {
				cpuJ += rapl.Joules(e0, e1)
			} else {
				rapl = nil
			}
		}
		res.SamplesNs = append(res.SamplesNs, uint64(max(elapsed.Nanoseconds(), 1)))
		if in.Split {
			res.TTFTNs = append(res.TTFTNs, uint64(max(ttft.Nanoseconds(), 1)))
			res.GenNs = append(res.GenNs, uint64(max((elapsed-ttft).Nanoseconds(), 1)))
		}
	}
	if rapl != nil {
		res.CPUJoules = &cpuJ
	}
	if rssReset {
		if b, ok := PeakRSS(); ok {
			res.RSSPeak = &b
		}
	}
	return res, nil
}
