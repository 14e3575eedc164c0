package glm4moe

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"

	"github.com/glmrun/glmrun/backend/cpu"
	"github.com/glmrun/glmrun/backend/cuda"
	"github.com/glmrun/glmrun/gguf"
)

// GPU runner (Options.Device == "cuda"): every weight is uploaded once at
// Load, the latent KV cache lives in device memory, and Forward /
// ForwardBatch / DecodeGreedy run the whole forward pass of spec §4 on the
// GPU with backend/cuda kernels:
//
//   - fast mode (Exact false): quantised weights (Q4_K, Q5_0, Q6_K, Q8_0)
//     stay quantised and multiply Q8_1-quantised activations (dp4a, like
//     llama.cpp's mmvq); BF16/F16/F32 weights multiply f32 activations;
//   - Exact: every quantised weight is dequantised exactly on the host into
//     f32 at upload (BF16/F16/F32 weights are uploaded as they are), so all
//     products are f32 math on the exact weight values; this needs 4 bytes
//     per quantised weight of device memory (fine for test models, not for
//     the 30 B model);
//   - the token embedding is dequantised exactly to f32 on the host and
//     uploaded as an f32 table (rows gathered by token ids on the device);
//   - the cache is f16 by default, f32 with Options.CacheF32 and always in
//     Exact mode (f32 math throughout, like the CPU path's f32 cache);
//   - prefill (several tokens): in fast mode, passes of at least
//     gemmMinTokens tokens multiply on tensor cores (each weight tensor
//     dequantised to f16 into a scratch, activations converted to f16,
//     mma.sync with f32 accumulation; routed experts grouped by expert after
//     one host round trip per layer that sorts the routed slots); otherwise
//     (Exact, short passes, GLMRUN_CUDA_NOGEMM=1) the matrix-vector kernels
//     with one slot per token; attention is a multi-token MLA kernel;
//   - decode (one token) is captured into a CUDA graph per cache and
//     replayed, the token id, position and key count being uploaded into
//     device buffers before each replay; MoE routing and the expert
//     products read the expert ids on the device.
//
// One pass runs at a time (a mutex): the runner owns one set of activation
// buffers sized for Options.UBatch tokens.
type gpuRunner struct {
	mu     sync.Mutex
	dev    *cuda.Device
	info   cuda.Info
	cfg    Config
	exact  bool
	f32kv  bool
	ub     int
	embd   cuda.Buffer // f32 [vocab][d]
	outNrm cuda.Buffer
	output gpuWeight
	layers []gpuLayer
	bytes  int64 // device bytes of weights

	// inputs, int32 [ub] each (decode uses element 0)
	tok, pos, nkv, want cuda.Buffer
	headIDs             cuda.Buffer // int32 [ub·H]: slot s -> head s % H
	argmax              cuda.Buffer // int32 [ub]

	// activations (f32)
	x, a, proj, hw, cq, q, ckv, qf, ol, o cuda.Buffer
	rl, wts, ids                          cuda.Buffer
	g, u, ye                              cuda.Buffer
	logits                                cuda.Buffer // [ub][vocab]
	xq                                    cuda.Buffer // Q8_1 scratch
	xqOwner                               *act
	// res, when not the zero Buffer, is a residual (n rows of NEmbd, like x)
	// still to be added into x: the next norm of x adds it (cuda.Norm.Res),
	// saving the separate add launch; enqueue adds what is left at the end.
	res cuda.Buffer
	mla cuda.Buffer // MLA split scratch
	// prefill GEMM (fast mode, passes of at least gemmMinTokens tokens)
	gemm bool
	// dequantise each weight tensor to f16 (wf16) before a plain f16 GEMM
	// (default), or in the GEMM's tile loads (GLMRUN_CUDA_GEMM_FUSED=1)
	gemmDequant bool
	// Q4_K weights through the Q4_K GEMM (cuda.GemmW, dequantised in its
	// tile loader) even when gemmDequant holds; GLMRUN_CUDA_GEMM_Q4K=0 turns
	// it off
	fusedQ4K bool
	// one query token per block in prefill attention
	// (GLMRUN_CUDA_MLA_PERTOK=1; default: cuda.MLADecode's multi-token kernel)
	mlaPerTok bool
	// mlaSplitK selects the prefill attention kernel whose score product
	// is split over D across warps (default; GLMRUN_CUDA_MLA_SK=0: the
	// plain kernel, =2: its lazy-rescaling variant, mlaLazy)
	mlaSplitK, mlaLazy bool
	// mlaWaves picks a deep prefill's sequence splits for whole waves of
	// blocks (cuda.MLAPrefillSplits; default, GLMRUN_CUDA_MLA_WAVES=0: the
	// scratch-bounded count)
	mlaWaves     bool
	wf16         cuda.Buffer
	a16          cuda.Buffer // activations in f16
	a16Owner     *act
	perm         cuda.Buffer // int32 [ub·k]: routed slots sorted by expert
	offs         cuda.Buffer // int32 [n_exp+1]: expert segments of perm
	tiles        cuda.Buffer // int32: the experts' 64-row tile list (cuda.ExpertSort)
	maxTiles     int
	mlaSplitTok  int // token·split pairs the scratch holds
	decodeSplits int // the MLA splits of a one-token pass at depth (2 per SM)
	// decodeSplitsFixed: GLMRUN_CUDA_MLA_SPLITS_PER_SM set decodeSplits for
	// every depth (an A/B knob); otherwise short contexts use one per SM
	// (decodeSplitsFor).
	decodeSplitsFixed bool

	graphs map[graphKey]*cuda.Graph
	prof   *profiler
}

type graphKey struct {
	c      *Cache
	head   bool
	argmax bool
	splits int // MLA splits baked into the graph (decodeSplitsFor)
}

// mlaLongContext is the key count from which a one-token pass splits its
// MLA attention two blocks per SM instead of one.
const mlaLongContext = 16384

// decodeSplitsFor returns the MLA splits of a one-token pass whose longest
// sequence holds maxKV keys. One per SM up to mlaLongContext keys: fewer
// partial outputs to write and merge (H200, 47-layer Q4_K_M, tg128 at depth
// 0 +2.5%, at 8192 +5%); two per SM beyond, where more blocks keep the long
// key streams in flight (one per SM was 2.2% slower at 32768). The captured
// decode graph of a cache is per split count, so a sequence that grows past
// the threshold gets a second graph.
func (g *gpuRunner) decodeSplitsFor(maxKV int) int {
	if g.decodeSplitsFixed || maxKV >= mlaLongContext {
		return g.decodeSplits
	}
	return max(g.decodeSplits/2, 1)
}

// gpuWeight is a weight on the device: nexp experts of rows x cols, experts
// contiguous.
type gpuWeight struct {
	buf        cuda.Buffer
	typ        gguf.TensorType
	rows, cols int
	nexp       int
}

type gpuLayer struct {
	attnNorm, qaNorm, kvaNorm, ffnNorm cuda.Buffer
	qa, qb, q, kva, kb, vb, out        gpuWeight
	moe                                bool
	gate, up, down                     gpuWeight
	gateInp                            gpuWeight
	expBias                            cuda.Buffer
	gateExps, upExps, downExps         gpuWeight
	gateSh, upSh, downSh               gpuWeight
	hasSh                              bool
}

// gpuCache is a Cache's device memory: per layer cap rows of CacheRow
// values (f16 or f32).
type gpuCache struct {
	layers []cuda.Buffer
}

// mlaMaxPrefillSplits bounds the sequence splits of a prefill pass (the
// MLA scratch holds that many per token).
const mlaMaxPrefillSplits = 16

// ErrNoGPU is wrapped by Load's error when Options.Device is "cuda" and no
// usable CUDA device is present.
var ErrNoGPU = cuda.ErrNoDevice

// uploader copies host bytes to the device in chunks and prints progress.
type uploader struct {
	c           *cuda.Ctx
	done, total int64
	last        int64
	w           io.Writer
}

func (u *uploader) put(dst cuda.Buffer, src []byte) error {
	const chunk = 64 << 20
	for off := 0; off < len(src); off += chunk {
		end := min(off+chunk, len(src))
		d, err := dst.Slice(int64(off), int64(end-off))
		if err != nil {
			return err
		}
		if err := u.c.UploadAsync(d, src[off:end]); err != nil {
			return err
		}
		u.done += int64(end - off)
		if u.w != nil && (u.done-u.last >= 1<<30 || u.done == u.total) {
			u.last = u.done
			fmt.Fprintf(u.w, "\ruploading weights: %.1f/%.1f GiB", float64(u.done)/(1<<30), float64(u.total)/(1<<30))
			if u.done == u.total {
				fmt.Fprintln(u.w)
			}
		}
	}
	return nil
}

// newGPURunner uploads the weights of m (bound on the CPU by Load) and
// allocates the activation buffers.
func newGPURunner(m *Model) (g *gpuRunner, err error) {
	cfg := m.cfg
	if !cfg.GatingSigmoid && cfg.NExpert > 0 {
		return nil, errors.New("glm4moe: the CUDA path implements sigmoid expert gating only")
	}
	if cfg.NHead > 32 {
		return nil, fmt.Errorf("glm4moe: CUDA attention supports at most 32 heads, model has %d", cfg.NHead)
	}
	for l := range m.layers {
		if m.layers[l].fused {
			return nil, fmt.Errorf("glm4moe: layer %d: fused ffn_gate_up_exps is not supported on CUDA yet", l)
		}
	}
	dev, err := cuda.Open(0)
	if err != nil {
		return nil, fmt.Errorf("glm4moe: --device cuda: %w", err)
	}
	g = &gpuRunner{dev: dev, info: dev.Info(), cfg: cfg, exact: m.opt.Exact, f32kv: m.opt.CacheF32 || m.opt.Exact, ub: m.opt.UBatch,
		graphs: map[graphKey]*cuda.Graph{}}
	defer func() {
		if err != nil {
			dev.Close()
		}
	}()
	var progress io.Writer = os.Stderr
	if m.opt.Quiet {
		progress = nil
	}
	err = dev.Do(func(c *cuda.Ctx) error {
		return g.upload(c, m, progress)
	})
	if err != nil {
		return nil, err
	}
	if err := dev.Do(g.allocActs); err != nil {
		return nil, err
	}
	return g, nil
}

// hostF32 returns w dequantized exactly to f32 (parallel over rows).
func hostF32(w cpu.Weight) ([]float32, error) {
	out := make([]float32, w.Rows*w.Cols)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	errs := make([]error, workers)
	per := (w.Rows + workers - 1) / workers
	for k := 0; k < workers; k++ {
		r0, r1 := k*per, min((k+1)*per, w.Rows)
		if r0 >= r1 {
			break
		}
		wg.Add(1)
		go func(k, r0, r1 int) {
			defer wg.Done()
			// DequantizeRows addresses rows of every layout, MMFP4's
			// codes-then-scales slabs included.
			errs[k] = cpu.DequantizeRows(w, r0, r1, out[r0*w.Cols:r1*w.Cols])
		}(k, r0, r1)
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func f32bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return cpuF32Bytes(v)
}

// mmfp4Aligned reports whether the nexp slabs of MMFP4 weight w keep the
// 16-byte alignment the CUDA MMFP4 kernels load codes with (true for every
// GLM-4.7-Flash matrix; a slab of r rows x c columns holds r*c*33/64 bytes).
func mmfp4Aligned(w cpu.Weight, nexp int) bool {
	return nexp > 0 && w.Rows%nexp == 0 && int64(w.Rows/nexp)*int64(w.RowBytes())%16 == 0
}

// gpuType says how weight type t is stored on the device in this mode
// (quantised types as they are on the fast path, MMFP4 included; exact f32
// otherwise).
func (g *gpuRunner) gpuType(t gguf.TensorType) gguf.TensorType {
	if t == gguf.TypeBF16 || t == gguf.TypeF16 || t == gguf.TypeF32 {
		return t
	}
	if !g.exact && cuda.IsQuantized(t) {
		return t
	}
	return gguf.TypeF32
}

// deviceBytes is the size of w stored on the device as type t: its own
// bytes, or exact f32 when t differs from w's type.
func deviceBytes(w cpu.Weight, t gguf.TensorType) int64 {
	if t == w.Type {
		return int64(len(w.Data))
	}
	return 4 * int64(w.Rows) * int64(w.Cols)
}

func (g *gpuRunner) upload(c *cuda.Ctx, m *Model, progress io.Writer) error {
	cfg := g.cfg
	// Total bytes first, for the progress line.
	var total int64
	var all []cpu.Weight
	addW := func(ws ...cpu.Weight) {
		for _, w := range ws {
			if w.Rows > 0 {
				all = append(all, w)
			}
		}
	}
	addW(m.output)
	for l := range m.layers {
		ly := &m.layers[l]
		addW(ly.q, ly.qa, ly.qb, ly.kva, ly.kb, ly.vb, ly.out, ly.gate, ly.up, ly.down, ly.gateInp,
			ly.gateExps, ly.upExps, ly.downExps, ly.gateSh, ly.upSh, ly.downSh)
	}
	for _, w := range all {
		total += deviceBytes(w, g.gpuType(w.Type))
	}
	total += 4 * int64(m.embd.Rows) * int64(m.embd.Cols)
	up := &uploader{c: c, total: total, w: progress}

	vec := func(v []float32) (cuda.Buffer, error) {
		if v == nil {
			return cuda.Buffer{}, nil
		}
		b, err := c.Alloc(4 * int64(len(v)))
		if err != nil {
			return b, err
		}
		return b, c.UploadAsync(b, f32bytes(v))
	}
	weight := func(w cpu.Weight, nexp int) (gpuWeight, error) {
		if w.Rows == 0 {
			return gpuWeight{}, nil
		}
		t := g.gpuType(w.Type)
		if t == gguf.TypeMMFP4 && !mmfp4Aligned(w, nexp) {
			// The MMFP4 kernels need 16-byte aligned slabs; this one goes
			// up as exact f32 instead.
			t = gguf.TypeF32
			up.total += deviceBytes(w, t) - deviceBytes(w, w.Type)
		}
		if !cuda.SupportsMatVec(t) {
			return gpuWeight{}, fmt.Errorf("glm4moe: no CUDA kernel for weight type %s", t)
		}
		gw := gpuWeight{typ: t, rows: w.Rows / nexp, cols: w.Cols, nexp: nexp}
		b, err := c.Alloc(deviceBytes(w, t))
		if err != nil {
			return gw, err
		}
		gw.buf = b
		g.bytes += b.Bytes()
		if t == w.Type {
			return gw, up.put(b, w.Data)
		}
		// Exact conversion in slabs of rows, so the host copy stays small.
		const slabRows = 4096
		for r0 := 0; r0 < w.Rows; r0 += slabRows {
			r1 := min(r0+slabRows, w.Rows)
			v, err := hostF32(w.SubRows(r0, r1))
			if err != nil {
				return gw, err
			}
			dst, err := b.Slice(4*int64(r0)*int64(w.Cols), 4*int64(len(v)))
			if err != nil {
				return gw, err
			}
			if err := up.put(dst, f32bytes(v)); err != nil {
				return gw, err
			}
			if err := c.Sync(); err != nil { // v is reused by the next slab
				return gw, err
			}
		}
		return gw, nil
	}
	var err error
	// Embedding: exact f32 table.
	if g.embd, err = c.Alloc(4 * int64(m.embd.Rows) * int64(m.embd.Cols)); err != nil {
		return err
	}
	const slabRows = 8192
	for r0 := 0; r0 < m.embd.Rows; r0 += slabRows {
		r1 := min(r0+slabRows, m.embd.Rows)
		v, err := hostF32(m.embd.SubRows(r0, r1))
		if err != nil {
			return fmt.Errorf("glm4moe: embedding: %w", err)
		}
		dst, _ := g.embd.Slice(4*int64(r0)*int64(m.embd.Cols), 4*int64(len(v)))
		if err := up.put(dst, f32bytes(v)); err != nil {
			return err
		}
		if err := c.Sync(); err != nil {
			return err
		}
	}
	if g.outNrm, err = vec(m.outNrm); err != nil {
		return err
	}
	if g.output, err = weight(m.output, 1); err != nil {
		return fmt.Errorf("glm4moe: output: %w", err)
	}
	g.layers = make([]gpuLayer, len(m.layers))
	for l := range m.layers {
		ly, gl := &m.layers[l], &g.layers[l]
		errs := make([]error, 0, 24)
		set := func(dst *cuda.Buffer, v []float32) {
			b, e := vec(v)
			*dst = b
			errs = append(errs, e)
		}
		setW := func(dst *gpuWeight, w cpu.Weight, nexp int) {
			gw, e := weight(w, nexp)
			*dst = gw
			errs = append(errs, e)
		}
		set(&gl.attnNorm, ly.attnNorm)
		set(&gl.qaNorm, ly.qaNorm)
		set(&gl.kvaNorm, ly.kvaNorm)
		set(&gl.ffnNorm, ly.ffnNorm)
		setW(&gl.q, ly.q, 1)
		setW(&gl.qa, ly.qa, 1)
		setW(&gl.qb, ly.qb, 1)
		setW(&gl.kva, ly.kva, 1)
		setW(&gl.kb, ly.kb, cfg.NHead)
		setW(&gl.vb, ly.vb, cfg.NHead)
		setW(&gl.out, ly.out, 1)
		gl.moe = ly.moe
		if ly.moe {
			setW(&gl.gateInp, ly.gateInp, 1)
			set(&gl.expBias, ly.expBias)
			setW(&gl.gateExps, ly.gateExps, cfg.NExpert)
			setW(&gl.upExps, ly.upExps, cfg.NExpert)
			setW(&gl.downExps, ly.downExps, cfg.NExpert)
			gl.hasSh = ly.hasSh
			if ly.hasSh {
				setW(&gl.gateSh, ly.gateSh, 1)
				setW(&gl.upSh, ly.upSh, 1)
				setW(&gl.downSh, ly.downSh, 1)
			}
		} else {
			setW(&gl.gate, ly.gate, 1)
			setW(&gl.up, ly.up, 1)
			setW(&gl.down, ly.down, 1)
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("glm4moe: layer %d: %w", l, err)
		}
	}
	return c.Sync()
}

// allocActs allocates the per-pass buffers for ub tokens.
func (g *gpuRunner) allocActs(c *cuda.Ctx) error {
	cfg := g.cfg
	U := g.ub
	H, w := cfg.NHead, cfg.CacheRow()
	ffMax := max(cfg.NFF, cfg.NExpertUsed*cfg.NFFExp, cfg.NFFExp*max(cfg.NExpertShared, 1))
	k := max(cfg.NExpertUsed, 1)
	var err error
	alloc := func(dst *cuda.Buffer, n int64) {
		if err != nil {
			return
		}
		*dst, err = c.Alloc(max(n, 16))
	}
	f := func(n int) int64 { return 4 * int64(n) }
	alloc(&g.tok, f(U))
	alloc(&g.pos, f(U))
	alloc(&g.nkv, f(U))
	alloc(&g.want, f(U))
	alloc(&g.argmax, f(U))
	alloc(&g.headIDs, f(U*H))
	alloc(&g.x, f(U*cfg.NEmbd))
	alloc(&g.a, f(U*cfg.NEmbd))
	alloc(&g.proj, f(U*cfg.NEmbd))
	alloc(&g.hw, f(U*cfg.NEmbd))
	alloc(&g.cq, f(U*max(cfg.QLoraRank, 1)))
	alloc(&g.q, f(U*H*cfg.KeyLengthMLA))
	alloc(&g.ckv, f(U*w))
	alloc(&g.qf, f(U*H*w))
	alloc(&g.ol, f(U*H*cfg.KVLoraRank))
	alloc(&g.o, f(U*H*cfg.ValueLengthMLA))
	alloc(&g.rl, f(U*max(cfg.NExpert, 1)))
	alloc(&g.wts, f(U*k))
	alloc(&g.ids, f(U*k))
	ffSh := cfg.NFFExp * cfg.NExpertShared // the shared expert's rows follow the routed ones
	alloc(&g.g, f(U*(ffMax+ffSh)))
	alloc(&g.u, f(U*(ffMax+ffSh)))
	alloc(&g.ye, f(U*k*cfg.NEmbd))
	alloc(&g.logits, f(U*cfg.VocabSize))
	maxAct := max(U*H*cfg.KVLoraRank, U*ffMax, U*H*cfg.ValueLengthMLA, U*cfg.NEmbd, U*H*cfg.NopeDim, U*max(cfg.QLoraRank, 1))
	alloc(&g.xq, cuda.Q81Bytes(1, 32)*int64(maxAct/32+1))
	g.gemm = !g.exact && os.Getenv("GLMRUN_CUDA_NOGEMM") == "" && U >= gemmMinTokens
	if g.gemm {
		g.fusedQ4K = os.Getenv("GLMRUN_CUDA_GEMM_Q4K") != "0"
		if g.gemmDequant = os.Getenv("GLMRUN_CUDA_GEMM_FUSED") == ""; g.gemmDequant {
			var maxW int64
			for _, ly := range g.layers {
				for i, w := range []gpuWeight{ly.gateExps, ly.upExps, ly.downExps, ly.q, ly.qa, ly.qb, ly.kva, ly.kb, ly.vb,
					ly.out, ly.gate, ly.up, ly.down, ly.gateSh, ly.upSh, ly.downSh} {
					if !g.fusedW(w, i < 3) {
						maxW = max(maxW, int64(w.nexp)*int64(w.rows)*int64(w.cols))
					}
				}
			}
			if maxW > 0 {
				alloc(&g.wf16, 2*maxW)
			}
		}
		maxA := max(U*k*max(cfg.NEmbd, cfg.NFFExp), U*H*cfg.KeyLengthMLA, U*H*cfg.KVLoraRank, U*ffMax,
			U*max(cfg.QLoraRank, 1), U*H*cfg.ValueLengthMLA, U*cfg.NEmbd)
		alloc(&g.a16, 2*int64(maxA))
		alloc(&g.perm, f(U*k))
		alloc(&g.offs, f(cfg.NExpert+1))
		if cfg.NExpert > 0 {
			g.maxTiles = cuda.ExpertTileCap(U*k, cfg.NExpert)
			alloc(&g.tiles, f(1+2*g.maxTiles))
		}
	}
	g.mlaPerTok = os.Getenv("GLMRUN_CUDA_MLA_PERTOK") == "1"
	g.decodeSplits = max(2*g.info.SMs, 1)
	if v, err := strconv.Atoi(os.Getenv("GLMRUN_CUDA_MLA_SPLITS_PER_SM")); err == nil && v > 0 {
		g.decodeSplitsFixed = true
		g.decodeSplits = max(v*g.info.SMs, 1)
	}
	g.mlaSplitK = os.Getenv("GLMRUN_CUDA_MLA_SK") != "0"
	g.mlaLazy = os.Getenv("GLMRUN_CUDA_MLA_SK") == "2"
	g.mlaWaves = os.Getenv("GLMRUN_CUDA_MLA_WAVES") != "0"
	g.mlaSplitTok = max(g.decodeSplits, mlaMaxPrefillSplits*U)
	alloc(&g.mla, int64(g.mlaSplitTok)*cuda.MLAScratchBytes(1, H, cfg.KVLoraRank))
	if err != nil {
		return fmt.Errorf("glm4moe: allocating GPU activations for %d tokens: %w", U, err)
	}
	ids := make([]int32, U*H)
	for i := range ids {
		ids[i] = int32(i % H)
	}
	if err := c.Upload(g.headIDs, i32bytes(ids)); err != nil {
		return err
	}
	return nil
}

// close frees the device (all allocations).
func (g *gpuRunner) close() error { return g.dev.Close() }

// newGPUCache allocates a device cache of maxTokens rows per layer.
func (g *gpuRunner) newGPUCache(maxTokens int) (*gpuCache, error) {
	elem := int64(2)
	if g.f32kv {
		elem = 4
	}
	rowBytes := elem * int64(g.cfg.CacheRow())
	gc := &gpuCache{layers: make([]cuda.Buffer, g.cfg.NLayer)}
	err := g.dev.Do(func(c *cuda.Ctx) error {
		for l := range gc.layers {
			b, err := c.Alloc(int64(maxTokens) * rowBytes)
			if err != nil {
				for _, p := range gc.layers[:l] {
					_ = c.Free(p)
				}
				return fmt.Errorf("glm4moe: GPU KV cache of %d tokens: %w", maxTokens, err)
			}
			gc.layers[l] = b
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return gc, nil
}

// VRAM reports the device memory the model's weights use and, from the
// driver, the free and total device memory (bytes). ok is false on the CPU.
func (m *Model) VRAM() (weights int64, free, total uint64, ok bool) {
	if m.gpu == nil {
		return 0, 0, 0, false
	}
	g := m.gpu
	_ = g.dev.Do(func(c *cuda.Ctx) error {
		var err error
		free, total, err = c.MemInfo()
		return err
	})
	return g.bytes, free, total, true
}

// GPUTelemetry returns the device's NVML reading (power, energy, memory);
// ok is false on the CPU.
func (m *Model) GPUTelemetry() (t cuda.Telemetry, ok bool) {
	if m.gpu == nil {
		return cuda.Telemetry{}, false
	}
	return m.gpu.dev.Telemetry(), true
}

// GPUName returns the CUDA device's name, or "" on the CPU.
func (m *Model) GPUName() string {
	if m.gpu == nil {
		return ""
	}
	return m.gpu.info.Name
}

// Close releases the GPU (device memory, context) when the model runs on
// CUDA; it is a no-op on the CPU. The Model must not be used afterwards.
func (m *Model) Close() error {
	if m.gpu == nil {
		return nil
	}
	return m.gpu.close()
}

// Release frees the device memory of a cache of a CUDA model and the decode
// graphs captured for it; the cache holds no tokens and no room afterwards
// (Cap 0), so later use fails with the usual "do not fit" error. Without
// Release a CUDA cache's memory lives until Model.Close. It is a no-op for a
// CPU model's cache.
func (c *Cache) Release() error {
	if c == nil || c.gpu == nil || c.m == nil || c.m.gpu == nil {
		return nil
	}
	g := c.m.gpu
	g.mu.Lock()
	defer g.mu.Unlock()
	err := g.dev.Do(func(cc *cuda.Ctx) error {
		var errs []error
		for k, gr := range g.graphs {
			if k.c == c {
				errs = append(errs, cc.DestroyGraph(gr))
				delete(g.graphs, k)
			}
		}
		for _, b := range c.gpu.layers {
			errs = append(errs, cc.Free(b))
		}
		return errors.Join(errs...)
	})
	c.gpu, c.n, c.cap = nil, 0, 0
	return err
}
