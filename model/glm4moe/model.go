package glm4moe

import (
	"errors"
	"fmt"

	"github.com/glmrun/glmrun/backend/cpu"
	"github.com/glmrun/glmrun/backend/quant"
	"github.com/glmrun/glmrun/gguf"
)

// ErrMissingTensor is wrapped by Load's error when a required tensor is
// absent; the message names the tensor.
var ErrMissingTensor = errors.New("missing tensor")

// ErrShape is wrapped by Load's error when a tensor's shape disagrees with
// the metadata; the message names the tensor and both shapes.
var ErrShape = errors.New("tensor shape disagrees with metadata")

// Options control how a Model computes.
type Options struct {
	// Exact selects float32 math on exactly dequantized weights (each weight
	// row dequantized into per-thread scratch). The default (false) quantizes
	// activations to each weight type's vec-dot type and uses quantized dot
	// products, like llama.cpp's CPU path.
	Exact bool
	// Threads is the number of worker goroutines; 0 means the number of
	// physical cores (cpu.PhysicalCores).
	Threads int
	// UBatch is the number of tokens per forward pass (micro-batch); 0 means
	// 512. 1 processes one token at a time through the cache.
	UBatch int
	// Device is "cpu" (or "", the default) or "cuda": the whole forward pass
	// on CUDA device 0 (see gpu.go; weights uploaded at Load, KV cache in
	// device memory). Load fails with an error wrapping ErrNoGPU when no
	// CUDA device is usable.
	Device string
	// CacheF32 keeps the CUDA KV cache in f32 instead of f16 (Exact on CUDA
	// always uses f32). Ignored on the CPU, whose cache is f32.
	CacheF32 bool
	// Quiet suppresses the CUDA weight-upload progress line on stderr.
	Quiet bool
}

// Model is a loaded GLM-4.7-Flash (deepseek2) model. Weights alias the GGUF
// mapping, so the *gguf.File must stay open while the Model is used. A Model
// is safe for concurrent use by calls on different Caches.
type Model struct {
	cfg    Config
	opt    Options
	pool   *cpu.Pool
	mode   cpu.Mode
	embd   cpu.Weight // [vocab][d]
	outNrm []float32  // [d]
	output cpu.Weight // [vocab][d]
	layers []layer
	gpu    *gpuRunner // non-nil when Options.Device is "cuda"
}

// layer holds the bound weights of one transformer block. 3-D tensors are
// flattened to 2-D Weights whose rows are grouped by head or expert.
type layer struct {
	attnNorm []float32  // [d]
	q        cpu.Weight // [H·d_qk][d] when QLoraRank == 0
	qa       cpu.Weight // [r_q][d]
	qaNorm   []float32  // [r_q]
	qb       cpu.Weight // [H·d_qk][r_q]; row h·d_qk+i: i < d_nope nope, else rope
	kva      cpu.Weight // [r_kv+d_rope][d]
	kvaNorm  []float32  // [r_kv]
	kb       cpu.Weight // [H·r_kv][d_nope]: head h = rows h·r_kv..; W_UKᵀ
	vb       cpu.Weight // [H·d_v][r_kv]: head h = rows h·d_v..; W_UV
	out      cpu.Weight // [d][H·d_v]
	ffnNorm  []float32  // [d]

	moe bool
	// dense FFN
	gate, up, down cpu.Weight // [ff][d], [ff][d], [d][ff]
	// MoE FFN
	gateInp  cpu.Weight // [n_exp][d] router
	expBias  []float32  // [n_exp] selection bias (nil if absent)
	fused    bool       // gateExps holds gate and up: expert e rows e·2ff.. (gate) then +ff.. (up)
	gateExps cpu.Weight // [n_exp·ff_exp][d] (or [n_exp·2·ff_exp][d] when fused)
	upExps   cpu.Weight // [n_exp·ff_exp][d]
	downExps cpu.Weight // [n_exp·d][ff_exp]
	gateSh   cpu.Weight // [ff_sh][d]
	upSh     cpu.Weight // [ff_sh][d]
	downSh   cpu.Weight // [d][ff_sh]
	hasSh    bool
}

// Config returns the model's hyperparameters.
func (m *Model) Config() Config { return m.cfg }

// ForEach calls fn(i) for every i in [0, n) on the model's CPU worker pool
// (the calling goroutine takes part) and returns when all are done. A
// server samples its slots' next tokens on it between forward passes.
func (m *Model) ForEach(n int, fn func(i int)) {
	m.pool.For(n, 1, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			fn(i)
		}
	})
}

// Options returns the options the model was loaded with (defaults filled in).
func (m *Model) Options() Options { return m.opt }

// Load reads the configuration of f and binds every weight in place from the
// mapping (no copy of the weights into the Go heap; only 1-D norm vectors
// that are not f32 are converted). Every tensor's shape is checked against
// the configuration and every type against the supported kernels.
func Load(f *gguf.File, opt Options) (*Model, error) {
	cfg, err := LoadConfig(f)
	if err != nil {
		return nil, err
	}
	if opt.UBatch <= 0 {
		opt.UBatch = 512
	}
	if opt.Threads <= 0 {
		opt.Threads = cpu.PhysicalCores()
	}
	m := &Model{cfg: cfg, opt: opt, pool: cpu.NewPool(opt.Threads), mode: cpu.Fast}
	if opt.Exact {
		m.mode = cpu.Exact
	}
	b := binder{f: f}
	c := cfg
	m.embd = b.matrix(nameTokenEmbd, c.NEmbd, c.VocabSize)
	m.outNrm = b.vector(nameOutputNorm, c.NEmbd)
	if _, ok := f.Tensor(nameOutput); ok {
		m.output = b.matrix(nameOutput, c.NEmbd, c.VocabSize)
	} else {
		m.output = m.embd // tied embeddings
	}
	qk := c.KeyLengthMLA
	m.layers = make([]layer, c.NLayer)
	for l := range m.layers {
		ly := &m.layers[l]
		if _, ok := f.Tensor(blk(nameAttnKVB, l)); ok {
			if _, ok2 := f.Tensor(blk(nameAttnKB, l)); !ok2 {
				return nil, fmt.Errorf("glm4moe: %s: old unsplit attn_kv_b format; reconvert the model with a current converter", blk(nameAttnKVB, l))
			}
		}
		ly.attnNorm = b.vector(blk(nameAttnNorm, l), c.NEmbd)
		if c.QLoraRank > 0 {
			ly.qa = b.matrix(blk(nameAttnQA, l), c.NEmbd, c.QLoraRank)
			ly.qaNorm = b.vector(blk(nameAttnQANorm, l), c.QLoraRank)
			ly.qb = b.matrix(blk(nameAttnQB, l), c.QLoraRank, c.NHead*qk)
		} else {
			ly.q = b.matrix(blk(nameAttnQ, l), c.NEmbd, c.NHead*qk)
		}
		ly.kva = b.matrix(blk(nameAttnKVAMQA, l), c.NEmbd, c.KVLoraRank+c.RopeDim)
		ly.kvaNorm = b.vector(blk(nameAttnKVANrm, l), c.KVLoraRank)
		ly.kb = b.tensor3(blk(nameAttnKB, l), c.NopeDim, c.KVLoraRank, c.NHead)
		ly.vb = b.tensor3(blk(nameAttnVB, l), c.KVLoraRank, c.ValueLengthMLA, c.NHead)
		ly.out = b.matrix(blk(nameAttnOutput, l), c.NHead*c.ValueLengthMLA, c.NEmbd)
		ly.ffnNorm = b.vector(blk(nameFFNNorm, l), c.NEmbd)
		if !c.IsMoE(l) {
			ly.gate = b.matrix(blk(nameFFNGate, l), c.NEmbd, c.NFF)
			ly.up = b.matrix(blk(nameFFNUp, l), c.NEmbd, c.NFF)
			ly.down = b.matrix(blk(nameFFNDown, l), c.NFF, c.NEmbd)
			continue
		}
		ly.moe = true
		ly.gateInp = b.matrix(blk(nameFFNGateInp, l), c.NEmbd, c.NExpert)
		if _, ok := f.Tensor(blk(nameExpProbsB, l)); ok {
			ly.expBias = b.vector(blk(nameExpProbsB, l), c.NExpert)
		}
		if _, ok := f.Tensor(blk(nameFFNGateUpExps, l)); ok {
			ly.fused = true
			ly.gateExps = b.tensor3(blk(nameFFNGateUpExps, l), c.NEmbd, 2*c.NFFExp, c.NExpert)
		} else {
			ly.gateExps = b.tensor3(blk(nameFFNGateExps, l), c.NEmbd, c.NFFExp, c.NExpert)
			ly.upExps = b.tensor3(blk(nameFFNUpExps, l), c.NEmbd, c.NFFExp, c.NExpert)
		}
		ly.downExps = b.tensor3(blk(nameFFNDownExps, l), c.NFFExp, c.NEmbd, c.NExpert)
		if c.NExpertShared > 0 {
			ff := c.NFFExp * c.NExpertShared
			ly.hasSh = true
			ly.gateSh = b.matrix(blk(nameFFNGateShexp, l), c.NEmbd, ff)
			ly.upSh = b.matrix(blk(nameFFNUpShexp, l), c.NEmbd, ff)
			ly.downSh = b.matrix(blk(nameFFNDownShexp, l), ff, c.NEmbd)
		}
	}
	if b.err != nil {
		return nil, b.err
	}
	switch opt.Device {
	case "", "cpu":
		m.opt.Device = "cpu"
	case "cuda":
		g, err := newGPURunner(m)
		if err != nil {
			return nil, err
		}
		m.gpu = g
	default:
		return nil, fmt.Errorf("glm4moe: unknown device %q (want cpu or cuda)", opt.Device)
	}
	return m, nil
}

// binder looks tensors up by name, checks shapes and types, and remembers
// the first error.
type binder struct {
	f   *gguf.File
	err error
}

func (b *binder) lookup(name string, dims ...int) (*gguf.TensorInfo, bool) {
	if b.err != nil {
		return nil, false
	}
	ti, ok := b.f.Tensor(name)
	if !ok {
		b.err = fmt.Errorf("glm4moe: %w %s", ErrMissingTensor, name)
		return nil, false
	}
	got := ti.Dims
	// Trailing dimensions of 1 are insignificant.
	for len(got) > len(dims) && got[len(got)-1] == 1 {
		got = got[:len(got)-1]
	}
	match := len(got) == len(dims)
	for i := 0; match && i < len(dims); i++ {
		match = got[i] == uint64(dims[i])
	}
	if !match {
		b.err = fmt.Errorf("glm4moe: tensor %s has shape %v, metadata implies %v: %w", name, ti.Dims, dims, ErrShape)
		return nil, false
	}
	if err := cpu.CheckWeightType(ti.Type); err != nil {
		b.err = fmt.Errorf("glm4moe: tensor %s: %w", name, err)
		return nil, false
	}
	return ti, true
}

// matrix binds a 2-D tensor of GGUF shape {cols, rows}.
func (b *binder) matrix(name string, cols, rows int) cpu.Weight {
	ti, ok := b.lookup(name, cols, rows)
	if !ok {
		return cpu.Weight{}
	}
	return b.weight(ti, rows, cols)
}

// tensor3 binds a 3-D tensor {cols, rows, n} as one Weight of n·rows rows.
func (b *binder) tensor3(name string, cols, rows, n int) cpu.Weight {
	ti, ok := b.lookup(name, cols, rows, n)
	if !ok {
		return cpu.Weight{}
	}
	return b.weight(ti, rows*n, cols)
}

func (b *binder) weight(ti *gguf.TensorInfo, rows, cols int) cpu.Weight {
	w, err := cpu.NewTensorWeight(ti.Type, rows, cols, int(ti.Dims[1]), b.f.TensorData(ti))
	if err != nil {
		b.err = fmt.Errorf("glm4moe: tensor %s: %w", ti.Name, err)
	}
	return w
}

// vector binds a 1-D tensor of n elements as float32: in place for f32,
// otherwise dequantized into a small heap copy.
func (b *binder) vector(name string, n int) []float32 {
	ti, ok := b.lookup(name, n)
	if !ok {
		return nil
	}
	data := b.f.TensorData(ti)
	if ti.Type == gguf.TypeF32 {
		return cpu.F32View(data)
	}
	out := make([]float32, n)
	if err := quant.Dequantize(ti.Type, data, out); err != nil {
		b.err = fmt.Errorf("glm4moe: tensor %s: %w", name, err)
	}
	return out
}
