package glm4moe

import (
	"fmt"
	"math"
	"sort"
	"unsafe"

	"github.com/glmrun/glmrun/backend/cuda"
	"github.com/glmrun/glmrun/gguf"
)

func cpuF32Bytes(v []float32) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)) }
func i32bytes(v []int32) []byte      { return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)) }

func sub(b cuda.Buffer, offFloats, nFloats int) cuda.Buffer {
	s, err := b.Slice(4*int64(offFloats), 4*int64(nFloats))
	if err != nil {
		panic(fmt.Sprintf("glm4moe: internal buffer slice: %v", err)) // sizes are fixed at allocation
	}
	return s
}

func tail(b cuda.Buffer, offFloats int) cuda.Buffer {
	return sub(b, offFloats, int(b.Bytes()/4)-offFloats)
}

// act is an f32 activation of rows x cols (row r at element r*stride of x)
// that matrix-vector products consume, quantised to Q8_1 on demand into the
// runner's one Q8_1 scratch (owner-tracked, so an activation feeding several
// quantised weights is quantised once).
type act struct {
	x                  cuda.Buffer
	stride, rows, cols int
}

// seg is a run of consecutive rows of one pass that belong to one cache.
type seg struct {
	c      *gpuCache
	i0, i1 int
}

// pass describes one forward pass on the device.
type pass struct {
	n      int   // tokens
	segs   []seg // by cache
	nWant  int   // rows whose logits are computed (indices in g.want)
	argmax bool
	splits int // MLA sequence splits per token
}

// mv enqueues y = W·x for `slots` slots: slot s reads activation row s/xdiv
// and, for an expert weight, expert ids[s]; it writes y at element s*yStride.
func (g *gpuRunner) mv(c *cuda.Ctx, w gpuWeight, a *act, slots, xdiv int, ids cuda.Buffer, y cuda.Buffer, yStride int) error {
	if a.cols != w.cols {
		return fmt.Errorf("glm4moe: matvec of %d columns on a %d-column activation", w.cols, a.cols)
	}
	mv := cuda.MatVec{W: w.buf, Type: w.typ, Rows: w.rows, Cols: w.cols, NExperts: w.nexp, IDs: ids,
		Slots: slots, XDiv: xdiv, Y: y, YStride: yStride}
	if cuda.IsQuantized(w.typ) {
		if g.xqOwner != a {
			if err := c.QuantizeQ81(a.x, a.stride, a.rows, a.cols, g.xq); err != nil {
				return err
			}
			g.xqOwner = a
			g.prof.mark(c, "quantize_q8_1")
		}
		mv.X = g.xq
	} else {
		mv.X, mv.XStride = a.x, a.stride
	}
	if err := c.MatVec(mv); err != nil {
		return err
	}
	g.prof.mark(c, "matvec "+w.typ.String())
	return nil
}

// gemmMinTokens is the smallest pass that uses the tensor-core GEMM path.
const gemmMinTokens = 32

// useGemm reports whether weight w multiplies a pass of n tokens on tensor
// cores.
func (g *gpuRunner) useGemm(w gpuWeight, n int) bool {
	return g.gemm && n >= gemmMinTokens && w.cols%32 == 0 && cuda.SupportsGemmW(w.typ)
}

// toF16 converts activation a into the f16 scratch (once per activation).
func (g *gpuRunner) toF16(c *cuda.Ctx, a *act) error {
	if g.a16Owner == a {
		return nil
	}
	if err := c.ToF16Rows(a.x, a.stride, a.rows, cuda.Buffer{}, 1, g.a16, a.cols, a.rows, a.cols); err != nil {
		return err
	}
	g.a16Owner = a
	g.prof.mark(c, "to f16")
	return nil
}

// gemmW enqueues m with weight w: by default through an f16 copy of the
// whole tensor (DequantF16 into wf16, then Gemm), except for Q4_K routed
// experts (expert = true), which GemmW's Q4_K loader multiplies in their
// own type (GLMRUN_CUDA_GEMM_Q4K=0 sends them through the f16 copy too);
// with GLMRUN_CUDA_GEMM_FUSED=1 every weight goes through GemmW (the
// generic loader measured slower on an H200: pp512 4029 vs 4453 t/s,
// notes/gpu-integration.md run 5).
func (g *gpuRunner) gemmW(c *cuda.Ctx, m cuda.GemmF16, w gpuWeight, expert bool) error {
	if g.fusedW(w, expert) {
		return c.GemmW(m, w.typ)
	}
	if err := c.DequantF16(w.buf, w.typ, w.nexp*w.rows, w.cols, g.wf16); err != nil {
		return err
	}
	g.prof.mark(c, "dequant f16")
	m.W, m.WGroupStride = g.wf16, w.rows*w.cols
	return c.Gemm(m)
}

// fusedW reports whether gemmW multiplies w in its own type (GemmW) rather
// than through an f16 copy.
// MMFP4 (no DequantF16 kernel) always goes through GemmW.
// Only the routed experts take the Q4_K loader by default: each expert's
// weight tile meets one or two row tiles, while a dense weight in a pass
// of 512 tokens would be decoded by 8 row tiles.
func (g *gpuRunner) fusedW(w gpuWeight, expert bool) bool {
	return !g.gemmDequant || (expert && g.fusedQ4K && w.typ == gguf.TypeQ4_K) || !cuda.SupportsDequantF16(w.typ)
}

// mm enqueues y = W·x for the n token rows of a (y row t at element
// t*yStride): on tensor cores when useGemm, else the matvec kernels.
func (g *gpuRunner) mm(c *cuda.Ctx, w gpuWeight, a *act, n int, y cuda.Buffer, yStride int) error {
	if !g.useGemm(w, n) || w.nexp != 1 {
		return g.mv(c, w, a, n, 1, cuda.Buffer{}, y, yStride)
	}
	if err := g.toF16(c, a); err != nil {
		return err
	}
	if err := g.gemmW(c, cuda.GemmF16{A: g.a16, LDA: a.cols, NRows: n, W: w.buf, Y: y, LDY: yStride, M: w.rows, K: w.cols}, w, false); err != nil {
		return err
	}
	g.prof.mark(c, "gemm")
	return nil
}

// heads enqueues the per-head product of kb or vb for n tokens: head h of
// token t reads its w.cols inputs at element (t*H+h)*xs of x and writes
// W_h times them at element (t*H+h)*ys of y. On tensor cores (useGemm) the
// n*H input rows are converted to f16 and multiplied by one grouped GEMM
// (group = head); otherwise the matvec kernels run one slot per (token,
// head), g.headIDs picking W_h. name labels the matvec in the profile.
func (g *gpuRunner) heads(c *cuda.Ctx, w gpuWeight, x cuda.Buffer, xs, n int, y cuda.Buffer, ys int, name string) error {
	H := g.cfg.NHead
	if !g.useGemm(w, n) {
		a := &act{x: x, stride: xs, rows: n * H, cols: w.cols}
		if err := g.mv(c, w, a, n*H, 1, g.headIDs, y, ys); err != nil {
			return err
		}
		g.prof.rename(name)
		return nil
	}
	if err := c.ToF16Rows(x, xs, n*H, cuda.Buffer{}, 1, g.a16, xs, n*H, xs); err != nil {
		return err
	}
	g.a16Owner = nil
	g.prof.mark(c, "to f16")
	if err := g.gemmW(c, cuda.GemmF16{A: g.a16, LDA: H * xs, AGroupStride: xs, NRows: n, W: w.buf,
		Y: y, LDY: H * ys, YGroupStride: ys, M: w.rows, K: w.cols, Groups: w.nexp}, w, false); err != nil {
		return err
	}
	g.prof.mark(c, "gemm heads")
	return nil
}

// fuseQ reports whether the first consumer w of a normalised activation of
// n rows takes it as Q8_1 through the matvec kernels (so the norm can write
// the Q8_1 blocks itself).
func (g *gpuRunner) fuseQ(w gpuWeight, n int) bool {
	return cuda.IsQuantized(w.typ) && !g.useGemm(w, n) && w.cols%32 == 0
}

// norm enqueues RMSNorm of the n rows of x (stride xs) into a (rows of
// a.cols at a.stride), fused with the Q8_1 quantisation of a when its first
// consumer is `first` and fuseQ holds. When x is the residual stream g.x,
// the pending residual g.res is added into it first, in the same kernel.
func (g *gpuRunner) norm(c *cuda.Ctx, x cuda.Buffer, xs int, w cuda.Buffer, a *act, first gpuWeight) error {
	nm := cuda.Norm{X: x, XStride: xs, W: w, Y: a.x, YStride: a.stride, Rows: a.rows, Cols: a.cols, Eps: g.cfg.RMSEps}
	kind := "rmsnorm"
	if x == g.x && g.res != (cuda.Buffer{}) {
		nm.Res, nm.ResStride = g.res, xs
		g.res = cuda.Buffer{}
		kind = "add+rmsnorm"
	}
	if g.fuseQ(first, a.rows) && a.cols == first.cols {
		nm.Q = g.xq
		g.xqOwner = a
		kind += "+q8_1"
	}
	if err := c.NormFused(nm); err != nil {
		return err
	}
	g.prof.mark(c, kind)
	return nil
}

// addRes adds the pending residual g.res into g.x (n rows), if any.
func (g *gpuRunner) addRes(c *cuda.Ctx, n int) error {
	if g.res == (cuda.Buffer{}) {
		return nil
	}
	if err := c.Add(g.x, g.res, g.x, n*g.cfg.NEmbd); err != nil {
		return err
	}
	g.res = cuda.Buffer{}
	g.prof.mark(c, "add")
	return nil
}

// down enqueues out = W·(silu(gate) ⊙ up) for rows rows of ff values
// (contiguous; the SwiGLU result overwrites gate), fusing the Q8_1
// quantisation into the SwiGLU kernel when W takes Q8_1 through the matvec
// kernels. ids: expert ids per row (zero Buffer for a plain weight).
func (g *gpuRunner) down(c *cuda.Ctx, w gpuWeight, gate, up cuda.Buffer, rows, ff int, ids, out cuda.Buffer) error {
	a := &act{x: gate, stride: ff, rows: rows, cols: ff}
	if w.nexp > 1 || g.fuseQ(w, rows) {
		if g.fuseQ(w, rows) {
			if err := c.SwiGLUQ81(gate, up, gate, rows, ff, g.xq); err != nil {
				return err
			}
			g.xqOwner = a
			g.prof.mark(c, "swiglu+q8_1")
		} else {
			if err := c.SwiGLU(gate, up, gate, rows*ff); err != nil {
				return err
			}
			g.prof.mark(c, "swiglu")
		}
		return g.mv(c, w, a, rows, 1, ids, out, g.cfg.NEmbd)
	}
	if err := c.SwiGLU(gate, up, gate, rows*ff); err != nil {
		return err
	}
	g.prof.mark(c, "swiglu")
	return g.mm(c, w, a, rows, out, g.cfg.NEmbd)
}

// enqueue enqueues one pass; inputs (tok, pos, nkv, want) are on the device.
func (g *gpuRunner) enqueue(c *cuda.Ctx, p pass) error {
	cfg := g.cfg
	n, d := p.n, cfg.NEmbd
	g.xqOwner, g.a16Owner, g.res = nil, nil, cuda.Buffer{}
	if err := c.GatherRows(g.embd, d, cfg.VocabSize, g.tok, g.x, d, n, d); err != nil {
		return err
	}
	g.prof.mark(c, "embed")
	for l := range g.layers {
		if err := g.attention(c, l, p); err != nil {
			return fmt.Errorf("glm4moe: layer %d attention: %w", l, err)
		}
		if err := g.ffn(c, l, p); err != nil {
			return fmt.Errorf("glm4moe: layer %d ffn: %w", l, err)
		}
	}
	if err := g.addRes(c, n); err != nil {
		return err
	}
	if p.nWant == 0 {
		return nil
	}
	if err := c.GatherRows(g.x, d, n, g.want, g.hw, d, p.nWant, d); err != nil {
		return err
	}
	if err := c.RMSNorm(g.hw, d, g.outNrm, g.hw, d, p.nWant, d, cfg.RMSEps); err != nil {
		return err
	}
	g.prof.mark(c, "rmsnorm")
	hw := &act{x: g.hw, stride: d, rows: p.nWant, cols: d}
	if err := g.mv(c, g.output, hw, p.nWant, 1, cuda.Buffer{}, g.logits, cfg.VocabSize); err != nil {
		return fmt.Errorf("glm4moe: output: %w", err)
	}
	g.prof.rename("lm head")
	if p.argmax {
		if err := c.Argmax(g.logits, cfg.VocabSize, cfg.VocabSize, p.nWant, g.argmax); err != nil {
			return err
		}
		g.prof.mark(c, "argmax")
	}
	return nil
}

func (g *gpuRunner) attention(c *cuda.Ctx, l int, p pass) error {
	cfg := g.cfg
	ly := &g.layers[l]
	n, d, H := p.n, cfg.NEmbd, cfg.NHead
	kvl, rd, nope, qk, dv := cfg.KVLoraRank, cfg.RopeDim, cfg.NopeDim, cfg.KeyLengthMLA, cfg.ValueLengthMLA
	w := kvl + rd
	eps := cfg.RMSEps
	A := &act{x: g.a, stride: d, rows: n, cols: d}
	if err := g.norm(c, g.x, d, ly.attnNorm, A, ly.kva); err != nil {
		return err
	}
	if err := g.mm(c, ly.kva, A, n, g.ckv, w); err != nil {
		return err
	}
	if cfg.QLoraRank > 0 {
		rq := cfg.QLoraRank
		if err := g.mm(c, ly.qa, A, n, g.cq, rq); err != nil {
			return err
		}
		cq := &act{x: g.cq, stride: rq, rows: n, cols: rq}
		if err := g.norm(c, g.cq, rq, ly.qaNorm, cq, ly.qb); err != nil {
			return err
		}
		if err := g.mm(c, ly.qb, cq, n, g.q, H*qk); err != nil {
			return err
		}
	} else if err := g.mm(c, ly.q, A, n, g.q, H*qk); err != nil {
		return err
	}
	// Cache rows [RMSNorm(kv_lat) ; RoPE(k_pe)], finished by the store kernel.
	for _, s := range p.segs {
		if err := c.LatentStore(cuda.LatentStore{Src: tail(g.ckv, s.i0*w), SrcStride: w, Cache: s.c.layers[l], CacheStride: w,
			Width: w, Pos: tail(g.pos, s.i0), Tokens: s.i1 - s.i0, F32: g.f32kv, NormW: ly.kvaNorm, NNorm: kvl, Eps: eps,
			RopeDims: rd, Base: cfg.RopeFreqBase}); err != nil {
			return err
		}
	}
	g.prof.mark(c, "norm+rope+cache store")
	// Query: the absorbed nope part goes straight into qf[.., 0:kvl] below,
	// the rope part is rotated into qf[.., kvl:w].
	if err := c.RoPEInto(g.q, H*qk, qk, H, n, nope, rd, g.pos, cfg.RopeFreqBase, tail(g.qf, kvl), H*w, w); err != nil {
		return err
	}
	g.prof.mark(c, "rope q")
	if err := g.heads(c, ly.kb, g.q, qk, n, g.qf, w, "attn_k_b"); err != nil {
		return err
	}
	scale := float32(1 / math.Sqrt(float64(qk)))
	for _, s := range p.segs {
		m := s.i1 - s.i0
		if err := c.MLADecode(cuda.MLADecode{
			Q: tail(g.qf, s.i0*H*w), QStride: w, H: H, D: w, Dv: kvl,
			KV: s.c.layers[l], KVStride: w, NKV: tail(g.nkv, s.i0), Scale: scale,
			Splits: p.splits, Scratch: g.mla, Out: tail(g.ol, s.i0*H*kvl), OutStride: kvl,
			KVF32: g.f32kv, F16QP: !g.exact, PerToken: g.mlaPerTok, PrefillSplitK: g.mlaSplitK, PrefillLazy: g.mlaLazy, Tokens: m, QTokStride: H * w, OutTokStride: H * kvl,
		}); err != nil {
			return err
		}
	}
	g.prof.mark(c, "mla attention")
	if err := g.heads(c, ly.vb, g.ol, kvl, n, g.o, dv, "attn_v_b"); err != nil {
		return err
	}
	o := &act{x: g.o, stride: H * dv, rows: n, cols: H * dv}
	if err := g.mm(c, ly.out, o, n, g.proj, d); err != nil {
		return err
	}
	g.res = g.proj // added by the FFN norm
	return nil
}

func (g *gpuRunner) ffn(c *cuda.Ctx, l int, p pass) error {
	cfg := g.cfg
	ly := &g.layers[l]
	n, d := p.n, cfg.NEmbd
	h := &act{x: g.a, stride: d, rows: n, cols: d}
	first := ly.gate
	if ly.moe {
		first = ly.gateExps
	}
	if err := g.norm(c, g.x, d, ly.ffnNorm, h, first); err != nil {
		return err
	}
	if !ly.moe {
		ff := ly.gate.rows
		if err := g.mm(c, ly.gate, h, n, g.g, ff); err != nil {
			return err
		}
		if err := g.mm(c, ly.up, h, n, g.u, ff); err != nil {
			return err
		}
		if err := g.down(c, ly.down, g.g, g.u, n, ff, cuda.Buffer{}, g.proj); err != nil {
			return err
		}
		g.res = g.proj // added by the next norm of x
		return nil
	}
	ne, k := cfg.NExpert, cfg.NExpertUsed
	if err := g.mv(c, ly.gateInp, h, n, 1, cuda.Buffer{}, g.rl, ne); err != nil {
		return err
	}
	g.prof.rename("router matvec")
	if err := c.Router(g.rl, ne, ly.expBias, ne, k, cfg.ExpertWeightsNorm, cfg.ExpertWeightsScale, n, g.ids, g.wts); err != nil {
		return err
	}
	g.prof.mark(c, "router topk")
	ffe := ly.gateExps.rows
	// The shared expert's gate/up rows follow the routed slots' in g.g/g.u.
	shOff := n * k * ffe
	gSh, uSh := tail(g.g, shOff), tail(g.u, shOff)
	ffs := ly.gateSh.rows
	if g.useGemm(ly.gateExps, n) && g.useGemm(ly.downExps, n) && g.useGemm(ly.upExps, n) {
		if err := g.expertsGemm(c, ly, h, n); err != nil {
			return err
		}
		if ly.hasSh {
			if err := g.mm(c, ly.gateSh, h, n, gSh, ffs); err != nil {
				return err
			}
			if err := g.mm(c, ly.upSh, h, n, uSh, ffs); err != nil {
				return err
			}
		}
	} else {
		// Routed and shared gate/up first, while h's Q8_1 blocks are current.
		if err := g.mv(c, ly.gateExps, h, n*k, k, g.ids, g.g, ffe); err != nil {
			return err
		}
		if err := g.mv(c, ly.upExps, h, n*k, k, g.ids, g.u, ffe); err != nil {
			return err
		}
		if ly.hasSh {
			if err := g.mm(c, ly.gateSh, h, n, gSh, ffs); err != nil {
				return err
			}
			if err := g.mm(c, ly.upSh, h, n, uSh, ffs); err != nil {
				return err
			}
		}
		if err := g.down(c, ly.downExps, g.g, g.u, n*k, ffe, g.ids, g.ye); err != nil {
			return err
		}
	}
	base := cuda.Buffer{}
	if ly.hasSh {
		if err := g.down(c, ly.downSh, gSh, uSh, n, ffs, cuda.Buffer{}, g.proj); err != nil {
			return err
		}
		base = g.proj
	}
	if err := c.WeightedSumTokens(base, g.ye, d, g.wts, k, g.proj, d, n); err != nil {
		return err
	}
	g.prof.mark(c, "moe combine")
	g.res = g.proj // added by the next norm of x
	return nil
}

// expertsGemm runs the routed experts of a prefill pass on tensor cores: the
// n·k slots are grouped by expert on the device (ExpertSort: perm, offs and
// a 64-row tile list, no host round trip), the token rows gathered in that
// order, and each expert's rows multiplied in one grouped GEMM per weight
// over the tile list; results are scattered back to slot order (g.ye[slot]).
func (g *gpuRunner) expertsGemm(c *cuda.Ctx, ly *gpuLayer, h *act, n int) error {
	cfg := g.cfg
	ne, k, d := cfg.NExpert, cfg.NExpertUsed, cfg.NEmbd
	ffe := ly.gateExps.rows
	slots := n * k
	if err := c.ExpertSort(g.ids, slots, ne, g.perm, g.offs, g.tiles); err != nil {
		return err
	}
	g.prof.mark(c, "expert sort")
	maxTiles := cuda.ExpertTileCap(slots, ne)
	gemm := func(w gpuWeight, lda int, y cuda.Buffer, ldy int) error {
		if err := g.gemmW(c, cuda.GemmF16{A: g.a16, LDA: lda, RowOff: g.offs, Tiles: g.tiles, MaxTiles: maxTiles, W: w.buf,
			Y: y, LDY: ldy, YIdx: g.perm, M: w.rows, K: w.cols, Groups: ne}, w, true); err != nil {
			return err
		}
		g.prof.mark(c, "gemm experts")
		return nil
	}
	if err := c.ToF16Rows(h.x, h.stride, n, g.perm, k, g.a16, d, slots, d); err != nil {
		return err
	}
	g.a16Owner = nil
	g.prof.mark(c, "to f16")
	if err := gemm(ly.gateExps, d, g.g, ffe); err != nil {
		return err
	}
	if err := gemm(ly.upExps, d, g.u, ffe); err != nil {
		return err
	}
	if err := c.SwiGLU(g.g, g.u, g.g, slots*ffe); err != nil {
		return err
	}
	g.prof.mark(c, "swiglu")
	if err := c.ToF16Rows(g.g, ffe, slots, g.perm, 1, g.a16, ffe, slots, ffe); err != nil {
		return err
	}
	g.prof.mark(c, "to f16")
	return gemm(ly.downExps, ffe, g.ye, d)
}

// inputs builds the pass for rows and uploads its inputs.
func (g *gpuRunner) inputs(c *cuda.Ctx, rows []rowRef, tokens []int32, want []int, argmax bool) (pass, error) {
	n := len(rows)
	tok := make([]int32, n)
	pos := make([]int32, n)
	nkv := make([]int32, n)
	maxKV, minKV := 0, math.MaxInt
	p := pass{n: n, nWant: len(want), argmax: argmax}
	for i, r := range rows {
		if r.c.gpu == nil {
			return p, fmt.Errorf("glm4moe: cache has no device memory (released, or not made by this CUDA model)")
		}
		tok[i], pos[i], nkv[i] = tokens[i], int32(r.pos), int32(r.pos+1)
		maxKV = max(maxKV, r.pos+1)
		minKV = min(minKV, r.pos+1)
		if i == 0 || rows[i-1].c != r.c {
			p.segs = append(p.segs, seg{c: r.c.gpu, i0: i, i1: i + 1})
		} else {
			p.segs[len(p.segs)-1].i1 = i + 1
		}
	}
	if n == 1 {
		p.splits = g.decodeSplitsFor(maxKV)
	} else {
		// 16 key tiles per split, bounded by the scratch (4 tiles measured
		// slower: pp512 4453 vs 4645 t/s on an H200)
		p.splits = min(max((maxKV+511)/512, 1), max(max(g.decodeSplits, 8*g.ub)/n, 1))
		if g.mlaWaves && 2*minKV >= maxKV {
			// deep pass (every token sees at least half the keys): whole waves
			// of blocks; the causal triangle of a shallow pass breaks the
			// picker's equal-blocks model, so that keeps the rule above
			p.splits = cuda.MLAPrefillSplits(n, g.cfg.NHead, maxKV, g.info.SMs, max(g.mlaSplitTok/n, 1))
		}
	}
	for _, b := range []struct {
		dst cuda.Buffer
		v   []int32
	}{{g.tok, tok}, {g.pos, pos}, {g.nkv, nkv}} {
		if err := c.UploadAsync(b.dst, i32bytes(b.v)); err != nil {
			return p, err
		}
	}
	if len(want) > 0 {
		w := make([]int32, len(want))
		for i, v := range want {
			w[i] = int32(v)
		}
		if err := c.UploadAsync(g.want, i32bytes(w)); err != nil {
			return p, err
		}
	}
	return p, nil
}

// run is the GPU version of Model.run: one pass over len(rows) <= UBatch
// tokens; returns the logits of the rows in want.
func (g *gpuRunner) run(rows []rowRef, tokens []int32, want []int) ([]float32, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	vocab := g.cfg.VocabSize
	var out []float32
	err := g.dev.Do(func(c *cuda.Ctx) error {
		p, err := g.inputs(c, rows, tokens, want, false)
		if err != nil {
			return err
		}
		if err := g.launch(c, p, rows[0].c); err != nil {
			return err
		}
		if len(want) == 0 {
			return c.Sync()
		}
		out = make([]float32, len(want)*vocab)
		return c.Download(cpuF32Bytes(out), g.logits)
	})
	return out, err
}

// launch enqueues pass p: a one-token pass through a CUDA graph captured
// once per (cache, head, argmax, MLA splits), anything else directly.
func (g *gpuRunner) launch(c *cuda.Ctx, p pass, cache *Cache) error {
	if p.n != 1 || g.prof != nil {
		return g.enqueue(c, p)
	}
	key := graphKey{c: cache, head: p.nWant > 0, argmax: p.argmax, splits: p.splits}
	gr, ok := g.graphs[key]
	if !ok {
		if err := c.BeginCapture(); err != nil {
			return err
		}
		err := g.enqueue(c, p)
		gr2, err2 := c.EndCapture()
		if err != nil {
			return err
		}
		if err2 != nil {
			return fmt.Errorf("glm4moe: capturing the decode graph: %w", err2)
		}
		gr = gr2
		g.graphs[key] = gr
	}
	return c.LaunchGraph(gr)
}

// DecodeGreedy appends token to c and returns the most likely next token
// (argmax of the logits; lowest id on ties). On CUDA the argmax runs on the
// GPU and only the chosen id is copied back; on the CPU it is Forward plus
// an argmax.
func (m *Model) DecodeGreedy(c *Cache, token int32) (int32, error) {
	if c == nil || c.m != m {
		return 0, fmt.Errorf("glm4moe: cache does not belong to this model")
	}
	if err := m.checkTokens(c, []int32{token}); err != nil {
		return 0, err
	}
	if m.gpu == nil {
		logits, err := m.Forward(c, []int32{token}, false)
		if err != nil {
			return 0, err
		}
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return int32(best), nil
	}
	g := m.gpu
	g.mu.Lock()
	defer g.mu.Unlock()
	var id [1]int32
	err := g.dev.Do(func(cc *cuda.Ctx) error {
		rows := []rowRef{{c: c, pos: c.n}}
		p, err := g.inputs(cc, rows, []int32{token}, []int{0}, true)
		if err != nil {
			return err
		}
		if err := g.launch(cc, p, c); err != nil {
			return err
		}
		return cc.Download(i32bytes(id[:]), g.argmax)
	})
	if err != nil {
		return 0, err
	}
	if id[0] < 0 {
		return 0, fmt.Errorf("glm4moe: every logit is NaN at position %d", c.n)
	}
	c.n++
	return id[0], nil
}

// KernelTime is the device time of one kind of kernel in a profiled step.
type KernelTime struct {
	Kind  string
	Calls int
	Ms    float64
}

// profiler attributes the time between consecutive events to the kind of
// the kernels enqueued in between. A nil *profiler does nothing.
type profiler struct {
	events []cuda.Event
	kinds  []string
	used   int
}

func (p *profiler) mark(c *cuda.Ctx, kind string) {
	if p == nil || p.used >= len(p.events) {
		return
	}
	if err := c.Record(p.events[p.used]); err != nil {
		return
	}
	p.kinds = append(p.kinds, kind)
	p.used++
}

// rename relabels the last mark (a matvec whose role is more telling than
// its type).
func (p *profiler) rename(kind string) {
	if p == nil || len(p.kinds) == 0 {
		return
	}
	p.kinds[len(p.kinds)-1] = kind
}

// ProfileDecode appends token to c through the un-captured decode path with
// a timing event after every kernel (group) and returns the device time per
// kernel kind, largest first, and the step's total in ms. Matvecs are
// reported by role for the LM head, router, attn_k_b and attn_v_b and by
// weight type otherwise. CUDA only.
func (m *Model) ProfileDecode(c *Cache, token int32) ([]KernelTime, float64, error) {
	return m.ProfilePass(c, []int32{token})
}

// ProfilePass is ProfileDecode for one pass of 1..UBatch tokens (a prefill
// micro-batch; the last token's logits and argmax are computed).
func (m *Model) ProfilePass(c *Cache, tokens []int32) ([]KernelTime, float64, error) {
	if m.gpu == nil {
		return nil, 0, fmt.Errorf("glm4moe: profiling needs Device cuda")
	}
	if c == nil || c.m != m {
		return nil, 0, fmt.Errorf("glm4moe: cache does not belong to this model")
	}
	if len(tokens) == 0 || len(tokens) > m.opt.UBatch {
		return nil, 0, fmt.Errorf("glm4moe: profiling a pass of %d tokens (1..%d)", len(tokens), m.opt.UBatch)
	}
	if err := m.checkTokens(c, tokens); err != nil {
		return nil, 0, err
	}
	g := m.gpu
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []KernelTime
	var total float64
	err := g.dev.Do(func(cc *cuda.Ctx) error {
		p := &profiler{}
		for i := 0; i < 64*len(g.layers)+64; i++ {
			e, err := cc.NewEvent()
			if err != nil {
				return err
			}
			p.events = append(p.events, e)
		}
		defer func() {
			for _, e := range p.events {
				_ = cc.DestroyEvent(e)
			}
		}()
		start, err := cc.NewEvent()
		if err != nil {
			return err
		}
		defer cc.DestroyEvent(start)
		rows := make([]rowRef, len(tokens))
		for i := range rows {
			rows[i] = rowRef{c: c, pos: c.n + i}
		}
		pp, err := g.inputs(cc, rows, tokens, []int{len(tokens) - 1}, true)
		if err != nil {
			return err
		}
		if err := cc.Sync(); err != nil {
			return err
		}
		// ~50 ms of spinning lets the host enqueue the step ahead of the GPU,
		// so the events time kernels, not launch gaps.
		if err := cc.Spin(100_000_000); err != nil {
			return err
		}
		g.prof = p
		defer func() { g.prof = nil }()
		if err := cc.Record(start); err != nil {
			return err
		}
		if err := g.enqueue(cc, pp); err != nil {
			return err
		}
		if err := cc.Sync(); err != nil {
			return err
		}
		agg := map[string]*KernelTime{}
		prev := start
		for i := 0; i < p.used; i++ {
			ms, err := cc.Elapsed(prev, p.events[i])
			if err != nil {
				return err
			}
			kt := agg[p.kinds[i]]
			if kt == nil {
				kt = &KernelTime{Kind: p.kinds[i]}
				agg[p.kinds[i]] = kt
			}
			kt.Calls++
			kt.Ms += float64(ms)
			total += float64(ms)
			prev = p.events[i]
		}
		for _, kt := range agg {
			out = append(out, *kt)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Ms > out[j].Ms })
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	c.n += len(tokens)
	return out, total, nil
}
