package glm4moe

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/glmrun/glmrun/backend"
	"github.com/glmrun/glmrun/backend/cpu"
)

// This file holds the GLM-4.7-Flash forward pass written against
// backend.Ops only (model spec §4), so any backend implementing the
// interface runs the whole model: OpsRunner. The tuned passes (forward.go on
// the CPU, gpu*.go on CUDA) call their packages directly and are faster;
// OpsRunner is the portable one and the proof that the interface suffices.

// OpsTensor describes one weight as an OpsRunner holds it on its backend.
type OpsTensor struct {
	// Name is the GGUF tensor name.
	Name string
	// Model is the type the Model binds (the file's type for matrices;
	// F32 for 1-D norm and bias vectors, which Load converts to float32).
	Model backend.DType
	// Backend is the dtype of the backend buffer: Model when the backend
	// lists it (Capabilities.WeightTypes, or EmbedTypes for the token
	// embedding), else F32 holding the exactly dequantized values.
	Backend backend.DType
	// Shape is the buffer shape, innermost first (GGUF ne order).
	Shape []int
}

// OpsRunner runs a Model's forward pass on a backend.Backend through
// backend.Ops, for one sequence with its own latent cache.
//
// NewOpsRunner uploads every weight once. A matrix or expert bank keeps the
// type it has in the file (raw GGUF bytes, Backend.Upload) when the
// backend's Capabilities.WeightTypes lists that type, and is otherwise
// dequantized exactly on the host to F32 (F32 must then be listed); the
// token embedding table follows Capabilities.EmbedTypes the same way. Norm
// and router-bias vectors are F32. How products then round is the
// backend's business (Capabilities.QuantizedActivations): the CPU backend
// in Exact mode multiplies exactly dequantized weights with f32
// activations, in Fast mode and on CUDA the activations of quantized
// weights are quantized as llama.cpp does. Tensors lists the result.
//
// The latent cache is one buffer per layer of [kv_lora_rank + rope_dim,
// maxTokens] (576 x maxTokens for GLM-4.7-Flash): F16 when the backend
// quantizes activations and lists F16 in Capabilities.CacheTypes (as
// llama.cpp's default cache), F32 when the backend computes exactly (so the
// exact path stays exact) or has no F16 cache; CacheType says which.
// Activation scratch is allocated for micro-batches of U = min(Options.
// UBatch of the Model, maxTokens) tokens; longer inputs are processed U
// tokens at a time, each micro-batch attending causally to everything
// before it.
//
// After NewOpsRunner the runner does not use the Model or its file mapping
// again. An OpsRunner is not safe for concurrent use. Ops that a backend
// answers with backend.ErrNotImplemented make Forward fail with that error
// (wrapped with the layer and op); there is no CPU fallback here.
type OpsRunner struct {
	b    backend.Backend
	o    backend.Ops
	cfg  Config
	ub   int // tokens per micro-batch (U)
	cap  int // cache positions
	n    int // tokens in the cache
	hc   int // columns of the head scratch
	kvdt backend.DType

	embd, outNorm, output backend.Buffer
	layers                []opsLayer
	tensors               []OpsTensor
	allocs                []backend.Buffer // everything NewOpsRunner allocated, freed by Close
	s                     opsScratch
	closed                bool
}

// opsLayer holds the backend buffers of one block (shapes innermost first;
// d = NEmbd, H = NHead, qk = KeyLengthMLA, w = CacheRow, ff* as in Config).
type opsLayer struct {
	attnNorm backend.Buffer // F32 [d]
	q        backend.Buffer // [d, H·qk] when QLoraRank == 0
	qa       backend.Buffer // [d, r_q]
	qaNorm   backend.Buffer // F32 [r_q]
	qb       backend.Buffer // [r_q, H·qk]
	kva      backend.Buffer // [d, r_kv + d_rope]
	kvaNorm  backend.Buffer // F32 [r_kv]
	kb       backend.Buffer // [d_nope, r_kv, H]: W_UKᵀ per head
	vb       backend.Buffer // [r_kv, d_v, H]: W_UV per head
	out      backend.Buffer // [H·d_v, d]
	ffnNorm  backend.Buffer // F32 [d]
	cache    backend.Buffer // F16 or F32 [w, cap]

	moe              bool
	gate, up, down   backend.Buffer // dense: [d, NFF], [d, NFF], [NFF, d]
	gateInp, expBias backend.Buffer // [d, E] router; F32 [E] selection bias or nil
	fused            bool           // gateExps is [d, 2·ff, E]: per expert gate rows then up rows
	gateExps, upExps backend.Buffer // [d, ff, E] each
	downExps         backend.Buffer // [ff, d, E]
	hasSh            bool
	gateSh, upSh     backend.Buffer // [d, ffsh]
	downSh           backend.Buffer // [ffsh, d]
}

// opsScratch holds the activation buffers, each with U token columns last
// (F32 unless stated). Views of their first n columns serve a pass of n
// tokens (opsPass).
type opsScratch struct {
	tok, pos, nkv backend.Buffer // I32 [U]
	hid           backend.Buffer // I32 [H, U]: head h in row h (MatMulID ids for k_b, v_b)

	x, a, attn backend.Buffer // [d, U] residual, normed input, attention output
	cq         backend.Buffer // [r_q, U] (nil when QLoraRank == 0)
	q          backend.Buffer // [qk, H, U]
	ckv        backend.Buffer // [w, 1, U]: [kv latent ; k_pe]
	lat        backend.Buffer // [r_kv, U]
	kr         backend.Buffer // [w, U]: cache rows [RMSNorm(latent) ; RoPE(k_pe)]
	qn         backend.Buffer // [d_nope, H, U]
	qabs       backend.Buffer // [r_kv, H, U]
	qq         backend.Buffer // [w, H, U]: absorbed queries [q_abs ; RoPE(q_pe)]
	olat       backend.Buffer // [r_kv, H, U]
	ov         backend.Buffer // [d_v, H, U]

	h       backend.Buffer // [d, U] FFN input
	gd, ud  backend.Buffer // [NFF, U] dense gate/up (nil without dense layers)
	logits  backend.Buffer // [E, U] router logits (nil without MoE layers)
	ids     backend.Buffer // I32 [k, U]
	wts     backend.Buffer // [k, U]
	g, u    backend.Buffer // [ff, k, U]
	gu      backend.Buffer // [2·ff, k, U] (fused gate_up only)
	y       backend.Buffer // [d, k, U]
	gs, us  backend.Buffer // [ffsh, U] shared expert
	ds      backend.Buffer // [d, U] dense or shared-expert output
	hn      backend.Buffer // [d, hc] head input
	headOut backend.Buffer // [vocab, hc] logits
	hostI32 []int32        // token, position, key-count and head-id staging
}

// opsHeadCols is the most tokens whose logits one head product computes
// (the logits scratch is vocab x this many floats).
const opsHeadCols = 64

// opsDequantFloats bounds the host scratch of one dequantized slab (floats).
const opsDequantFloats = 1 << 22

// NewOpsRunner uploads m's weights into b and allocates a latent cache of
// maxTokens positions and the activation scratch. It fails with a clear
// error when the model needs something the ops cannot express (softmax
// expert gating: Router is sigmoid-only), when b lacks a dtype a tensor
// needs, when b's limits (MaxHeads, MaxRouterExperts, MaxRouterK) are below
// the model's, or when an allocation or upload fails; it then frees what
// it allocated. b stays the caller's (Close frees only the runner's
// buffers).
func NewOpsRunner(m *Model, b backend.Backend, maxTokens int) (*OpsRunner, error) {
	if m == nil || b == nil {
		return nil, errors.New("glm4moe: NewOpsRunner: nil model or backend")
	}
	c := m.cfg
	if maxTokens <= 0 {
		return nil, fmt.Errorf("glm4moe: NewOpsRunner: cache size %d must be positive", maxTokens)
	}
	if int64(maxTokens)*int64(c.CacheRow())*int64(c.NLayer) > 1<<40 {
		return nil, fmt.Errorf("glm4moe: NewOpsRunner: cache of %d tokens is too large", maxTokens)
	}
	caps := b.Capabilities()
	hasMoE := c.LeadingDense < c.NLayer
	switch {
	case hasMoE && !c.GatingSigmoid:
		return nil, fmt.Errorf("glm4moe: NewOpsRunner: softmax expert gating cannot be expressed with backend.Ops (Router is sigmoid-only)")
	case caps.MaxHeads > 0 && c.NHead > caps.MaxHeads:
		return nil, fmt.Errorf("glm4moe: NewOpsRunner: %d heads, backend %s attends at most %d", c.NHead, b.Name(), caps.MaxHeads)
	case hasMoE && caps.MaxRouterExperts > 0 && c.NExpert > caps.MaxRouterExperts:
		return nil, fmt.Errorf("glm4moe: NewOpsRunner: %d experts, backend %s routes at most %d", c.NExpert, b.Name(), caps.MaxRouterExperts)
	case hasMoE && caps.MaxRouterK > 0 && c.NExpertUsed > caps.MaxRouterK:
		return nil, fmt.Errorf("glm4moe: NewOpsRunner: top-%d routing, backend %s selects at most %d", c.NExpertUsed, b.Name(), caps.MaxRouterK)
	case !backend.Supports(caps.CacheTypes, backend.F16) && !backend.Supports(caps.CacheTypes, backend.F32):
		return nil, fmt.Errorf("glm4moe: NewOpsRunner: backend %s has neither an F16 nor an F32 latent cache", b.Name())
	}
	r := &OpsRunner{b: b, o: b.Ops(), cfg: c, cap: maxTokens, ub: min(max(m.opt.UBatch, 1), maxTokens)}
	r.hc = min(r.ub, opsHeadCols)
	r.kvdt = backend.F32
	if backend.Supports(caps.CacheTypes, backend.F16) && (caps.QuantizedActivations || !backend.Supports(caps.CacheTypes, backend.F32)) {
		r.kvdt = backend.F16
	}
	err := r.upload(m, caps)
	if err == nil {
		err = r.allocScratch()
	}
	if err == nil {
		if err = b.Sync(); err != nil {
			err = fmt.Errorf("glm4moe: NewOpsRunner: %w", err)
		}
	}
	if err != nil {
		_ = r.free() // err already says what failed
		return nil, err
	}
	return r, nil
}

// alloc allocates a buffer owned by the runner.
func (r *OpsRunner) alloc(what string, dt backend.DType, shape ...int) (backend.Buffer, error) {
	buf, err := r.b.Alloc(dt, shape...)
	if err != nil {
		return nil, fmt.Errorf("glm4moe: NewOpsRunner: %s: %w", what, err)
	}
	r.allocs = append(r.allocs, buf)
	return buf, nil
}

// upload binds every weight of m on the backend (see OpsRunner for the
// dtype rule) and allocates the per-layer caches.
func (r *OpsRunner) upload(m *Model, caps backend.Capabilities) error {
	c := r.cfg
	var err error
	// matrix uploads w as a buffer of shape (innermost first), whose 2-D
	// slabs are shape[1] rows as the MMFP4 layout needs.
	matrix := func(name string, w cpu.Weight, types []backend.DType, shape ...int) backend.Buffer {
		if err != nil {
			return nil
		}
		var buf backend.Buffer
		buf, err = r.weight(name, w, types, shape)
		return buf
	}
	vector := func(name string, v []float32) backend.Buffer {
		if err != nil {
			return nil
		}
		var buf backend.Buffer
		if buf, err = r.alloc(name, backend.F32, len(v)); err != nil {
			return nil
		}
		if err = r.b.Upload(buf, f32Bytes(v)); err != nil {
			err = fmt.Errorf("glm4moe: NewOpsRunner: %s: %w", name, err)
			return nil
		}
		r.tensors = append(r.tensors, OpsTensor{Name: name, Model: backend.F32, Backend: backend.F32, Shape: []int{len(v)}})
		return buf
	}
	d, H, qk, w := c.NEmbd, c.NHead, c.KeyLengthMLA, c.CacheRow()
	r.embd = matrix(nameTokenEmbd, m.embd, caps.EmbedTypes, d, c.VocabSize)
	r.outNorm = vector(nameOutputNorm, m.outNrm)
	name := nameOutput
	if len(m.output.Data) > 0 && len(m.embd.Data) > 0 && &m.output.Data[0] == &m.embd.Data[0] {
		name = nameTokenEmbd + " (tied output)"
	}
	r.output = matrix(name, m.output, caps.WeightTypes, d, c.VocabSize)
	r.layers = make([]opsLayer, c.NLayer)
	for l := range r.layers {
		ly, src := &r.layers[l], &m.layers[l]
		ly.attnNorm = vector(blk(nameAttnNorm, l), src.attnNorm)
		if c.QLoraRank > 0 {
			ly.qa = matrix(blk(nameAttnQA, l), src.qa, caps.WeightTypes, d, c.QLoraRank)
			ly.qaNorm = vector(blk(nameAttnQANorm, l), src.qaNorm)
			ly.qb = matrix(blk(nameAttnQB, l), src.qb, caps.WeightTypes, c.QLoraRank, H*qk)
		} else {
			ly.q = matrix(blk(nameAttnQ, l), src.q, caps.WeightTypes, d, H*qk)
		}
		ly.kva = matrix(blk(nameAttnKVAMQA, l), src.kva, caps.WeightTypes, d, w)
		ly.kvaNorm = vector(blk(nameAttnKVANrm, l), src.kvaNorm)
		ly.kb = matrix(blk(nameAttnKB, l), src.kb, caps.WeightTypes, c.NopeDim, c.KVLoraRank, H)
		ly.vb = matrix(blk(nameAttnVB, l), src.vb, caps.WeightTypes, c.KVLoraRank, c.ValueLengthMLA, H)
		ly.out = matrix(blk(nameAttnOutput, l), src.out, caps.WeightTypes, H*c.ValueLengthMLA, d)
		ly.ffnNorm = vector(blk(nameFFNNorm, l), src.ffnNorm)
		if !src.moe {
			ly.gate = matrix(blk(nameFFNGate, l), src.gate, caps.WeightTypes, d, c.NFF)
			ly.up = matrix(blk(nameFFNUp, l), src.up, caps.WeightTypes, d, c.NFF)
			ly.down = matrix(blk(nameFFNDown, l), src.down, caps.WeightTypes, c.NFF, d)
		} else {
			ly.moe, ly.fused, ly.hasSh = true, src.fused, src.hasSh
			ly.gateInp = matrix(blk(nameFFNGateInp, l), src.gateInp, caps.WeightTypes, d, c.NExpert)
			if src.expBias != nil {
				ly.expBias = vector(blk(nameExpProbsB, l), src.expBias)
			}
			if src.fused {
				ly.gateExps = matrix(blk(nameFFNGateUpExps, l), src.gateExps, caps.WeightTypes, d, 2*c.NFFExp, c.NExpert)
			} else {
				ly.gateExps = matrix(blk(nameFFNGateExps, l), src.gateExps, caps.WeightTypes, d, c.NFFExp, c.NExpert)
				ly.upExps = matrix(blk(nameFFNUpExps, l), src.upExps, caps.WeightTypes, d, c.NFFExp, c.NExpert)
			}
			ly.downExps = matrix(blk(nameFFNDownExps, l), src.downExps, caps.WeightTypes, c.NFFExp, d, c.NExpert)
			if src.hasSh {
				ff := c.NFFExp * c.NExpertShared
				ly.gateSh = matrix(blk(nameFFNGateShexp, l), src.gateSh, caps.WeightTypes, d, ff)
				ly.upSh = matrix(blk(nameFFNUpShexp, l), src.upSh, caps.WeightTypes, d, ff)
				ly.downSh = matrix(blk(nameFFNDownShexp, l), src.downSh, caps.WeightTypes, ff, d)
			}
		}
		if err != nil {
			return err
		}
		if ly.cache, err = r.alloc(fmt.Sprintf("layer %d latent cache", l), r.kvdt, w, r.cap); err != nil {
			return err
		}
	}
	return err
}

// weight uploads w (Rows x Cols of w.Type, as Load bound it) into a new
// buffer of shape: in w.Type when types lists it, else dequantized to F32
// in slabs of rows (F32 must then be a weight type of the backend).
func (r *OpsRunner) weight(name string, w cpu.Weight, types []backend.DType, shape []int) (backend.Buffer, error) {
	rows := backend.Elems(shape) / shape[0]
	if w.Cols != shape[0] || w.Rows != rows {
		return nil, fmt.Errorf("glm4moe: NewOpsRunner: %s: bound as %d x %d, want %v", name, w.Rows, w.Cols, shape)
	}
	info := OpsTensor{Name: name, Model: w.Type, Backend: w.Type, Shape: append([]int(nil), shape...)}
	if backend.Supports(types, w.Type) {
		buf, err := r.alloc(name, w.Type, shape...)
		if err != nil {
			return nil, err
		}
		if err := r.b.Upload(buf, w.Data); err != nil {
			return nil, fmt.Errorf("glm4moe: NewOpsRunner: %s: %w", name, err)
		}
		r.tensors = append(r.tensors, info)
		return buf, nil
	}
	if !backend.Supports(types, backend.F32) {
		return nil, fmt.Errorf("glm4moe: NewOpsRunner: %s: backend %s supports neither %s nor f32 for it", name, r.b.Name(), w.Type)
	}
	buf, err := r.alloc(name, backend.F32, shape...)
	if err != nil {
		return nil, err
	}
	step := max(1, opsDequantFloats/w.Cols)
	tmp := make([]float32, min(step, rows)*w.Cols)
	for r0 := 0; r0 < rows; r0 += step {
		r1 := min(rows, r0+step)
		part := tmp[:(r1-r0)*w.Cols]
		if err := cpu.DequantizeRows(w, r0, r1, part); err != nil {
			return nil, fmt.Errorf("glm4moe: NewOpsRunner: %s: %w", name, err)
		}
		v, err := r.b.View(buf, r0*w.Cols, w.Cols, r1-r0)
		if err == nil {
			err = r.b.Upload(v, f32Bytes(part))
		}
		if err != nil {
			return nil, fmt.Errorf("glm4moe: NewOpsRunner: %s: %w", name, err)
		}
	}
	info.Backend = backend.F32
	r.tensors = append(r.tensors, info)
	return buf, nil
}

// allocScratch allocates the activation buffers for U tokens and uploads
// the constant head ids.
func (r *OpsRunner) allocScratch() error {
	c, U := r.cfg, r.ub
	d, H, w, kvl := c.NEmbd, c.NHead, c.CacheRow(), c.KVLoraRank
	s := &r.s
	var err error
	f32 := func(p *backend.Buffer, what string, shape ...int) {
		if err == nil {
			*p, err = r.alloc(what, backend.F32, shape...)
		}
	}
	i32 := func(p *backend.Buffer, what string, shape ...int) {
		if err == nil {
			*p, err = r.alloc(what, backend.I32, shape...)
		}
	}
	i32(&s.tok, "tokens", U)
	i32(&s.pos, "positions", U)
	i32(&s.nkv, "key counts", U)
	i32(&s.hid, "head ids", H, U)
	f32(&s.x, "residual", d, U)
	f32(&s.a, "attention input", d, U)
	f32(&s.attn, "attention output", d, U)
	if c.QLoraRank > 0 {
		f32(&s.cq, "q latent", c.QLoraRank, U)
	}
	f32(&s.q, "q", c.KeyLengthMLA, H, U)
	f32(&s.ckv, "kv_a output", w, 1, U)
	f32(&s.lat, "kv latent", kvl, U)
	f32(&s.kr, "cache rows", w, U)
	f32(&s.qn, "q_nope", c.NopeDim, H, U)
	f32(&s.qabs, "absorbed q", kvl, H, U)
	f32(&s.qq, "attention query", w, H, U)
	f32(&s.olat, "latent attention output", kvl, H, U)
	f32(&s.ov, "head outputs", c.ValueLengthMLA, H, U)
	f32(&s.h, "ffn input", d, U)
	f32(&s.ds, "ffn output", d, U)
	if c.LeadingDense > 0 {
		f32(&s.gd, "dense gate", c.NFF, U)
		f32(&s.ud, "dense up", c.NFF, U)
	}
	if c.LeadingDense < c.NLayer {
		k, ff := c.NExpertUsed, c.NFFExp
		f32(&s.logits, "router logits", c.NExpert, U)
		i32(&s.ids, "expert ids", k, U)
		f32(&s.wts, "expert weights", k, U)
		f32(&s.g, "expert gate", ff, k, U)
		f32(&s.u, "expert up", ff, k, U)
		f32(&s.y, "expert outputs", d, k, U)
		for _, ly := range r.layers {
			if ly.fused && s.gu == nil {
				f32(&s.gu, "expert gate_up", 2*ff, k, U)
			}
		}
		if c.NExpertShared > 0 {
			f32(&s.gs, "shared gate", ff*c.NExpertShared, U)
			f32(&s.us, "shared up", ff*c.NExpertShared, U)
		}
	}
	f32(&s.hn, "head input", d, r.hc)
	f32(&s.headOut, "logits", c.VocabSize, r.hc)
	if err != nil {
		return err
	}
	s.hostI32 = make([]int32, max(U, H*U))
	for t := 0; t < U; t++ {
		for h := 0; h < H; h++ {
			s.hostI32[t*H+h] = int32(h)
		}
	}
	if err := r.b.Upload(s.hid, i32Bytes(s.hostI32[:H*U])); err != nil {
		return fmt.Errorf("glm4moe: NewOpsRunner: head ids: %w", err)
	}
	return nil
}

// Tensors lists every weight as uploaded, in upload order.
func (r *OpsRunner) Tensors() []OpsTensor { return append([]OpsTensor(nil), r.tensors...) }

// CacheType is the latent cache's dtype (F16 or F32).
func (r *OpsRunner) CacheType() backend.DType { return r.kvdt }

// Len returns the number of tokens in the cache (the next position).
func (r *OpsRunner) Len() int { return r.n }

// Cap returns the cache size in tokens (maxTokens).
func (r *OpsRunner) Cap() int { return r.cap }

// Reset empties the cache (rows are overwritten by the next Forward).
func (r *OpsRunner) Reset() { r.n = 0 }

// Close waits for the backend, then frees every buffer the runner
// allocated; the backend itself stays open. Close is idempotent.
func (r *OpsRunner) Close() error {
	if r.closed {
		return nil
	}
	return r.free()
}

// free waits for the ops that may still read the runner's buffers (Free
// requires it), frees them and marks the runner closed; it returns the
// wait's error.
func (r *OpsRunner) free() error {
	err := r.b.Sync()
	for _, buf := range r.allocs {
		buf.Free()
	}
	r.allocs, r.layers = nil, nil
	r.closed = true
	return err
}

// Forward appends tokens at positions Len().. (a prefill of many tokens or
// a decode step of one; each token attends to itself and every earlier
// cached token) and returns the last token's logits, [VocabSize] float32s
// in a new slice. On an error (no tokens, an id outside [0, VocabSize),
// more tokens than the cache has room for, a closed runner, or an op's
// error) Len is unchanged.
func (r *OpsRunner) Forward(tokens []int32) ([]float32, error) {
	return r.forward(tokens, false)
}

// ForwardAll is Forward returning the logits of every token: [len(tokens)]
// [VocabSize] float32s, row-major, in a new slice.
func (r *OpsRunner) ForwardAll(tokens []int32) ([]float32, error) {
	return r.forward(tokens, true)
}

func (r *OpsRunner) forward(tokens []int32, all bool) ([]float32, error) {
	c := r.cfg
	switch {
	case r.closed:
		return nil, errors.New("glm4moe: OpsRunner: used after Close")
	case len(tokens) == 0:
		return nil, errors.New("glm4moe: OpsRunner: no tokens")
	case len(tokens) > r.cap-r.n:
		return nil, fmt.Errorf("glm4moe: OpsRunner: %d tokens do not fit in the cache: %d of %d positions used", len(tokens), r.n, r.cap)
	}
	for i, t := range tokens {
		if t < 0 || int(t) >= c.VocabSize {
			return nil, fmt.Errorf("glm4moe: OpsRunner: token %d at index %d is out of range [0, %d)", t, i, c.VocabSize)
		}
	}
	rows := 1
	if all {
		rows = len(tokens)
	}
	logits := make([]float32, rows*c.VocabSize)
	start := r.n
	for i := 0; i < len(tokens); i += r.ub {
		j := min(i+r.ub, len(tokens))
		var dst []float32
		switch {
		case all:
			dst = logits[i*c.VocabSize : j*c.VocabSize]
		case j == len(tokens):
			dst = logits
		}
		if err := r.pass(tokens[i:j], start+i, all, dst); err != nil {
			return nil, err
		}
	}
	r.n = start + len(tokens)
	return logits, nil
}

// opsPass holds views of the first n token columns of the scratch (shapes
// as in opsScratch with U replaced by n; q2 and ov2 are q and ov as
// matrices [H·qk, n] and [H·d_v, n], h1 is h as [d, 1, n]).
type opsPass struct {
	n                                            int
	tok, pos, nkv, hid                           backend.Buffer
	x, a, attn, cq, q, q2, ckv, ckv2, lat, kr    backend.Buffer
	qn, qabs, qq, olat, ov, ov2                  backend.Buffer
	h, h1, gd, ud, logits, ids, wts, g, u, gu, y backend.Buffer
	gs, us, ds                                   backend.Buffer
}

// views returns the scratch views for n <= U tokens.
func (r *OpsRunner) views(n int) (*opsPass, error) {
	c, s := r.cfg, &r.s
	var err error
	// cut views the first n columns of buf (its last dimension is U);
	// shape, when given, replaces the leading dimensions.
	cut := func(buf backend.Buffer, shape ...int) backend.Buffer {
		if err != nil || buf == nil {
			return nil
		}
		if shape == nil {
			sh := buf.Shape()
			shape = sh[:len(sh)-1]
		}
		var v backend.Buffer
		v, err = r.b.View(buf, 0, append(append([]int(nil), shape...), n)...)
		return v
	}
	H, d := c.NHead, c.NEmbd
	p := &opsPass{n: n}
	p.tok, p.pos, p.nkv, p.hid = cut(s.tok), cut(s.pos), cut(s.nkv), cut(s.hid)
	p.x, p.a, p.attn, p.cq = cut(s.x), cut(s.a), cut(s.attn), cut(s.cq)
	p.q, p.q2 = cut(s.q), cut(s.q, H*c.KeyLengthMLA)
	p.ckv, p.ckv2 = cut(s.ckv), cut(s.ckv, c.CacheRow())
	p.lat, p.kr, p.qn, p.qabs, p.qq, p.olat = cut(s.lat), cut(s.kr), cut(s.qn), cut(s.qabs), cut(s.qq), cut(s.olat)
	p.ov, p.ov2 = cut(s.ov), cut(s.ov, H*c.ValueLengthMLA)
	p.h, p.h1, p.ds = cut(s.h), cut(s.h, d, 1), cut(s.ds)
	p.gd, p.ud = cut(s.gd), cut(s.ud)
	p.logits, p.ids, p.wts = cut(s.logits), cut(s.ids), cut(s.wts)
	p.g, p.u, p.gu, p.y = cut(s.g), cut(s.u), cut(s.gu), cut(s.y)
	p.gs, p.us = cut(s.gs), cut(s.us)
	if err != nil {
		return nil, fmt.Errorf("glm4moe: OpsRunner: scratch views for %d tokens: %w", n, err)
	}
	return p, nil
}

// pass runs one micro-batch of n = len(tokens) <= U tokens at positions
// p0.. through every layer and writes their cache rows. With all, dst
// receives every token's logits ([n][vocab]); otherwise dst, when not nil,
// receives the last token's ([vocab]), and a nil dst skips the last
// layer's FFN and the head (nothing downstream reads them).
func (r *OpsRunner) pass(tokens []int32, p0 int, all bool, dst []float32) error {
	c, o := r.cfg, r.o
	n := len(tokens)
	p, err := r.views(n)
	if err != nil {
		return err
	}
	// Token ids, positions (p0+t) and key counts (p0+t+1: causal).
	host := r.s.hostI32[:n]
	up := func(buf backend.Buffer, what string) error {
		if err := r.b.Upload(buf, i32Bytes(host)); err != nil {
			return fmt.Errorf("glm4moe: OpsRunner: %s: %w", what, err)
		}
		return nil
	}
	copy(host, tokens)
	if err := up(p.tok, "tokens"); err != nil {
		return err
	}
	for t := range host {
		host[t] = int32(p0 + t)
	}
	if err := up(p.pos, "positions"); err != nil {
		return err
	}
	for t := range host {
		host[t] = int32(p0 + t + 1)
	}
	if err := up(p.nkv, "key counts"); err != nil {
		return err
	}
	if err := o.Embed(p.x, r.embd, p.tok); err != nil {
		return fmt.Errorf("glm4moe: OpsRunner: embedding: %w", err)
	}
	last := len(r.layers) - 1
	for l := range r.layers {
		if err := r.attention(l, p); err != nil {
			return fmt.Errorf("glm4moe: OpsRunner: layer %d attention: %w", l, err)
		}
		x, fp := p.x, p
		if l == last && !all {
			if dst == nil {
				return nil // no logits wanted: the cache rows are written
			}
			// Only the last token feeds the head (llama.cpp drops the other
			// rows here too): its FFN runs alone, on one-token views.
			if x, err = r.b.View(p.x, (n-1)*c.NEmbd, c.NEmbd, 1); err == nil {
				fp, err = r.views(1)
			}
			if err != nil {
				return fmt.Errorf("glm4moe: OpsRunner: last token: %w", err)
			}
		}
		if err := r.ffn(l, x, fp); err != nil {
			return fmt.Errorf("glm4moe: OpsRunner: layer %d ffn: %w", l, err)
		}
		if l == last && !all {
			return r.head(x, 0, 1, dst)
		}
	}
	for t0 := 0; t0 < n; t0 += r.hc {
		t1 := min(n, t0+r.hc)
		if err := r.head(p.x, t0, t1, dst[t0*c.VocabSize:t1*c.VocabSize]); err != nil {
			return err
		}
	}
	return nil
}

// attention runs the absorbed-MLA block of layer l (spec §4.2) on the pass's
// tokens, writes their cache rows and adds its output to p.x.
func (r *OpsRunner) attention(l int, p *opsPass) error {
	c, o, ly := r.cfg, r.o, &r.layers[l]
	eps, kvl, rd, nope := c.RMSEps, c.KVLoraRank, c.RopeDim, c.NopeDim
	// kq_scale = 1/sqrt(key_length_mla): the per-head Q/K size d_nope+d_rope
	// (256 for GLM-4.7-Flash), not the absorbed 576 (spec §4.2 step 7,
	// §4.6 point 2); mscale is 1 (no YaRN, which LoadConfig rejects).
	scale := float32(1 / math.Sqrt(float64(c.KeyLengthMLA)))
	steps := []struct {
		what string
		run  func() error
	}{
		{"attn_norm", func() error { return o.RMSNorm(p.a, p.x, ly.attnNorm, eps) }},
		{"q", func() error {
			if ly.q != nil {
				return o.MatMul(p.q2, ly.q, p.a)
			}
			if err := o.MatMul(p.cq, ly.qa, p.a); err != nil {
				return err
			}
			if err := o.RMSNorm(p.cq, p.cq, ly.qaNorm, eps); err != nil {
				return err
			}
			return o.MatMul(p.q2, ly.qb, p.cq)
		}},
		{"kv_a", func() error { return o.MatMul(p.ckv2, ly.kva, p.a) }},
		// Interleaved ("NORM") RoPE on the rope dims only: q_pe of every
		// head, and the one shared k_pe.
		{"RoPE q_pe", func() error { return o.RoPE(p.q, p.pos, nope, rd, c.RopeFreqBase) }},
		{"RoPE k_pe", func() error { return o.RoPE(p.ckv, p.pos, kvl, rd, c.RopeFreqBase) }},
		// Cache row [RMSNorm(latent) ; RoPE(k_pe)]: the latent is normed
		// but not rotated, k_pe rotated but not normed.
		{"latent", func() error { return o.CopyCols(p.lat, p.ckv2, 0, 0, kvl) }},
		{"kv_a_norm", func() error { return o.RMSNorm(p.lat, p.lat, ly.kvaNorm, eps) }},
		{"cache row latent", func() error { return o.CopyCols(p.kr, p.lat, 0, 0, kvl) }},
		{"cache row rope", func() error { return o.CopyCols(p.kr, p.ckv2, kvl, kvl, rd) }},
		{"CacheStore", func() error { return o.CacheStore(ly.cache, p.kr, p.pos) }},
		// Absorbed query per head: [W_kb,h·q_nope_h ; RoPE(q_pe_h)].
		{"q_nope", func() error { return o.CopyCols(p.qn, p.q, 0, 0, nope) }},
		{"attn_k_b", func() error { return o.MatMulID(p.qabs, ly.kb, p.qn, p.hid) }},
		{"query latent", func() error { return o.CopyCols(p.qq, p.qabs, 0, 0, kvl) }},
		{"query rope", func() error { return o.CopyCols(p.qq, p.q, kvl, nope, rd) }},
		{"MLAAttention", func() error { return o.MLAAttention(p.olat, p.qq, ly.cache, p.nkv, scale) }},
		// Decompress per head (W_vb,h), heads concatenated, o_proj.
		{"attn_v_b", func() error { return o.MatMulID(p.ov, ly.vb, p.olat, p.hid) }},
		{"attn_output", func() error { return o.MatMul(p.attn, ly.out, p.ov2) }},
		{"residual", func() error { return o.Add(p.x, p.x, p.attn) }},
	}
	for _, s := range steps {
		if err := s.run(); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return nil
}

// ffn runs the FFN block of layer l (spec §4.3) on x ([d, p.n]) with p's
// scratch and adds its output to x: the dense SwiGLU FFN, or the
// sigmoid-routed experts (bias for selection only, renormalised, times
// expert_weights_scale) plus the shared expert.
func (r *OpsRunner) ffn(l int, x backend.Buffer, p *opsPass) error {
	c, o, ly := r.cfg, r.o, &r.layers[l]
	ff := c.NFFExp
	var steps []struct {
		what string
		run  func() error
	}
	add := func(what string, run func() error) {
		steps = append(steps, struct {
			what string
			run  func() error
		}{what, run})
	}
	add("ffn_norm", func() error { return o.RMSNorm(p.h, x, ly.ffnNorm, c.RMSEps) })
	if !ly.moe {
		add("ffn_gate", func() error { return o.MatMul(p.gd, ly.gate, p.h) })
		add("ffn_up", func() error { return o.MatMul(p.ud, ly.up, p.h) })
		add("SwiGLU", func() error { return o.SwiGLU(p.gd, p.gd, p.ud) })
		add("ffn_down", func() error { return o.MatMul(p.ds, ly.down, p.gd) })
		add("residual", func() error { return o.Add(x, x, p.ds) })
	} else {
		add("ffn_gate_inp", func() error { return o.MatMul(p.logits, ly.gateInp, p.h) })
		add("Router", func() error {
			return o.Router(p.ids, p.wts, p.logits, ly.expBias, c.NExpertUsed, c.ExpertWeightsNorm, c.ExpertWeightsScale)
		})
		if ly.fused {
			add("ffn_gate_up_exps", func() error { return o.MatMulID(p.gu, ly.gateExps, p.h1, p.ids) })
			add("gate split", func() error { return o.CopyCols(p.g, p.gu, 0, 0, ff) })
			add("up split", func() error { return o.CopyCols(p.u, p.gu, 0, ff, ff) })
		} else {
			add("ffn_gate_exps", func() error { return o.MatMulID(p.g, ly.gateExps, p.h1, p.ids) })
			add("ffn_up_exps", func() error { return o.MatMulID(p.u, ly.upExps, p.h1, p.ids) })
		}
		add("SwiGLU", func() error { return o.SwiGLU(p.g, p.g, p.u) })
		add("ffn_down_exps", func() error { return o.MatMulID(p.y, ly.downExps, p.g, p.ids) })
		add("expert sum", func() error { return o.WeightedSum(x, x, p.y, p.wts) })
		if ly.hasSh {
			add("ffn_gate_shexp", func() error { return o.MatMul(p.gs, ly.gateSh, p.h) })
			add("ffn_up_shexp", func() error { return o.MatMul(p.us, ly.upSh, p.h) })
			add("SwiGLU shared", func() error { return o.SwiGLU(p.gs, p.gs, p.us) })
			add("ffn_down_shexp", func() error { return o.MatMul(p.ds, ly.downSh, p.gs) })
			add("shared residual", func() error { return o.Add(x, x, p.ds) })
		}
	}
	for _, s := range steps {
		if err := s.run(); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return nil
}

// head computes the logits of tokens [t0, t1) of x ([d, ·], t1-t0 <= hc)
// into dst ([t1-t0][vocab]): output_norm, then the output projection (spec
// §4.4), then a download.
func (r *OpsRunner) head(x backend.Buffer, t0, t1 int, dst []float32) error {
	c, o := r.cfg, r.o
	m, d, vocab := t1-t0, c.NEmbd, c.VocabSize
	fail := func(what string, err error) error {
		return fmt.Errorf("glm4moe: OpsRunner: head %s: %w", what, err)
	}
	xv, err := r.b.View(x, t0*d, d, m)
	if err != nil {
		return fail("input", err)
	}
	hn, err := r.b.View(r.s.hn, 0, d, m)
	if err != nil {
		return fail("input", err)
	}
	lg, err := r.b.View(r.s.headOut, 0, vocab, m)
	if err != nil {
		return fail("logits", err)
	}
	if err := o.RMSNorm(hn, xv, r.outNorm, c.RMSEps); err != nil {
		return fail("output_norm", err)
	}
	if err := o.MatMul(lg, r.output, hn); err != nil {
		return fail("output", err)
	}
	if err := r.b.Download(f32Bytes(dst[:m*vocab]), lg); err != nil {
		return fail("download", err)
	}
	return nil
}

// f32Bytes views v's memory as little-endian bytes (the host order of every
// platform Go runs glmrun on), without a copy.
func f32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

// i32Bytes views v's memory as bytes, without a copy.
func i32Bytes(v []int32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}
