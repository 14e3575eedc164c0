// Package backend defines the op-level interface every compute backend of
// glmrun (cpu, cuda, later metal) implements: typed buffers owned by one
// backend, about a dozen fused ops the GLM-4.7-Flash forward pass needs, and
// a registry that opens backends by name. backend/backendtest checks an
// implementation against the CPU reference.
//
// # Layouts
//
// A Buffer's Shape lists its dimensions innermost (fastest varying) first, as
// GGUF's ne does: an activation matrix of n tokens of d values is [d, n],
// element (i, t) at t*d + i; a weight of m output rows of k inputs is
// [k, m], stored as m rows of GGUF blocks (row r: RowBytes(k) bytes); a bank
// of E such matrices (experts, heads) is [k, m, E], E consecutive 2-D slabs.
// Every buffer is dense (no strides): a Buffer of dtype dt and shape s holds
// exactly ByteSize(dt, s) bytes, laid out as in a GGUF tensor of the same
// type and ne. MMFP4 is laid out per 2-D slab (all rows' codes, then all
// rows' scales; see backend/quant/mmfp4.go), so an [k, m, E] MMFP4 buffer is
// E such slabs.
//
// # Ordering and errors
//
// Ops are enqueued on the backend's one queue in call order; an op may run
// at once (cpu) or later (cuda). Sync is the only wait point: after Sync
// returns, every op enqueued before it has run, and Download always observes
// every op enqueued before it. An op validates dtypes, shapes and buffer
// ownership before enqueueing anything and returns an error (never panics):
// ErrForeignBuffer for a buffer of another backend instance, ErrFreed for a
// freed one, ErrShape for disagreeing shapes or dtypes, ErrNotImplemented
// for a valid request the backend cannot run (the caller then runs the CPU
// version). Values that live in device buffers (token ids, positions,
// expert ids, key counts) cannot be checked without a wait; each op states
// what an out-of-range value does instead (NaN outputs or a skipped store),
// and no backend reads or writes outside its buffers because of one.
//
// An op's shape [a, b, c] matches a buffer whose Shape has a and b as its
// first dimensions and c as the product of the rest (missing trailing
// dimensions are 1): a [d, 4, 3] buffer serves as [d, 12] where an op wants
// a matrix, and [d] serves as [d, 1].
package backend

import (
	"errors"
	"fmt"
	"math"

	"github.com/glmrun/glmrun/gguf"
)

// DType is a buffer's element type: the GGUF tensor type ids (an alias of
// gguf.TensorType, so a tensor's stored type is used as is). Activations are
// F32, latent caches F16 or F32, ids and positions I32; weights may be any
// type a backend lists in Capabilities.WeightTypes.
type DType = gguf.TensorType

// DTypes the ops use by name.
const (
	F32   DType = gguf.TypeF32
	F16   DType = gguf.TypeF16
	BF16  DType = gguf.TypeBF16
	I32   DType = gguf.TypeI32
	Q4_K  DType = gguf.TypeQ4_K
	Q5_0  DType = gguf.TypeQ5_0
	Q6_K  DType = gguf.TypeQ6_K
	Q8_0  DType = gguf.TypeQ8_0
	MMFP4 DType = gguf.TypeMMFP4
)

// Sentinel errors; ops wrap them with the op's name and the detail.
var (
	// ErrNotImplemented: the backend cannot run this op for these dtypes or
	// sizes; the caller may fall back to the CPU backend.
	ErrNotImplemented = errors.New("backend: not implemented")
	// ErrForeignBuffer: a Buffer passed to an op was allocated by another
	// backend (or another instance of the same one).
	ErrForeignBuffer = errors.New("backend: buffer belongs to another backend")
	// ErrFreed: a Buffer passed to an op has been freed.
	ErrFreed = errors.New("backend: buffer has been freed")
	// ErrShape: a Buffer's dtype or shape does not fit the op.
	ErrShape = errors.New("backend: wrong dtype or shape")
	// ErrUnknownBackend: Open was given a name nothing registered.
	ErrUnknownBackend = errors.New("backend: unknown backend")
)

// Buffer is memory of one backend holding a dense tensor of DType with
// Shape. Buffers are created by Backend.Alloc (or View) and belong to that
// backend instance.
type Buffer interface {
	// DType is the element type.
	DType() DType
	// Shape is the dimensions, innermost first (GGUF ne order). The caller
	// must not modify the returned slice.
	Shape() []int
	// Free releases the memory (a View's Free releases nothing). Using the
	// buffer afterwards makes ops fail with ErrFreed. Free is idempotent.
	// Ops enqueued before Free that use the buffer must have been Synced
	// first.
	Free()
}

// Capabilities says what a backend can run; backendtest checks that the
// listed combinations work and that the others fail with ErrNotImplemented.
type Capabilities struct {
	// WeightTypes are the dtypes MatMul and MatMulID accept as weights.
	WeightTypes []DType
	// EmbedTypes are the dtypes Embed accepts as its table.
	EmbedTypes []DType
	// CacheTypes are the latent cache dtypes of CacheStore and MLAAttention
	// (F16 and/or F32).
	CacheTypes []DType
	// QuantizedActivations is true when MatMul/MatMulID may round the
	// activations (to Q8_1/Q8_K/Q8_0 blocks or to f16) before the product,
	// as llama.cpp does; false means the weights are dequantised exactly
	// and multiplied with f32 activations (f32 accumulation).
	QuantizedActivations bool
	// MaxRouterExperts and MaxRouterK bound Router's expert count and k
	// (0: no limit).
	MaxRouterExperts, MaxRouterK int
	// MaxHeads bounds MLAAttention's head count (0: no limit).
	MaxHeads int
	// Threads is the number of host threads the backend computes on (cpu),
	// or 0.
	Threads int
	// MemoryBytes is the device memory (cuda), or 0 for host memory.
	MemoryBytes uint64
}

// Supports reports whether dt is in list.
func Supports(list []DType, dt DType) bool {
	for _, t := range list {
		if t == dt {
			return true
		}
	}
	return false
}

// Backend is one compute device: it allocates buffers, copies bytes in and
// out, and runs Ops. A Backend is not safe for concurrent use unless its
// documentation says so.
type Backend interface {
	// Name is the registry name ("cpu", "cuda").
	Name() string
	// Capabilities describes the supported dtypes and limits.
	Capabilities() Capabilities
	// Alloc returns an uninitialised buffer of dt with shape (innermost
	// first; every dimension >= 1, shape[0] a multiple of dt's block size,
	// and for MMFP4 a multiple of 128).
	Alloc(dt DType, shape ...int) (Buffer, error)
	// View returns a buffer sharing src's memory: the elements [offset,
	// offset+prod(shape)) of src viewed with shape. src must be F32, F16,
	// BF16 or I32 (block types cannot be cut at arbitrary elements); the
	// view keeps src's dtype and must lie inside it. Freeing the view frees
	// nothing; freeing src invalidates the view.
	View(src Buffer, offset int, shape ...int) (Buffer, error)
	// Upload copies src, the raw GGUF bytes of a tensor of dst's dtype and
	// shape (exactly ByteSize(dst.DType(), dst.Shape()) bytes; little-endian
	// for F32/F16/BF16/I32), into dst. It is ordered with the ops: it runs
	// after the ops enqueued before it, and src may be reused on return.
	Upload(dst Buffer, src []byte) error
	// Download copies src's bytes (ByteSize of its dtype and shape; len(dst)
	// must equal it) into dst after every op enqueued before it has run.
	Download(dst []byte, src Buffer) error
	// Ops returns the op set, bound to this backend's buffers.
	Ops() Ops
	// Sync waits until every enqueued op has run and returns the first
	// error an asynchronous op reported, if any.
	Sync() error
	// Close frees every buffer and the device; the backend is unusable
	// afterwards. Close is idempotent.
	Close() error
}

// Ops are the fused kernels of the GLM-4.7-Flash forward pass (model spec
// §4). Shapes are innermost first; n is the token count, every F32 unless
// stated. Any op may return ErrNotImplemented; out may alias an input only
// where stated.
type Ops interface {
	// Embed sets out[:, t] = dequant(table[:, tokens[t]]).
	// table [d, vocab] of a Capabilities.EmbedTypes dtype, tokens I32 [n],
	// out F32 [d, n]. A token outside [0, vocab) gives a row of NaN.
	Embed(out, table, tokens Buffer) error

	// RMSNorm sets out[:, t] = x[:, t] / sqrt(mean(x[:, t]²) + eps) ⊙ w.
	// x and out [d, n], w [d]. out may alias x.
	RMSNorm(out, x, w Buffer, eps float32) error

	// MatMul sets out[r, t] = Σ_c W[r][c]·x[c, t] (y = W·x per token).
	// w [k, m] of a Capabilities.WeightTypes dtype, x [k, n], out [m, n].
	MatMul(out, w, x Buffer) error

	// MatMulID is the expert (or per-head) product with expert ids held in
	// a buffer: out[:, j, t] = W_e · x[:, j', t] with e = ids[j, t], where
	// w [k, m, E] holds E matrices, ids I32 [s, n] (s slots per token),
	// x [k, s, n] (j' = j) or [k, 1, n] (j' = 0: every slot of token t
	// reads the same row), out [m, s, n]. A slot whose id is outside
	// [0, E) gets NaN outputs (ids are not read on the host).
	MatMulID(out, w, x, ids Buffer) error

	// RoPE rotates x in place with interleaved-pair ("NORM") rotary
	// embedding: x [hd, h, n] (n tokens of h heads of hd values); in each
	// head the dims values starting at offset (dims even, offset+dims <= hd)
	// are rotated pairwise, pair i (values 2i, 2i+1) by the angle
	// pos[t]·base^(-2i/dims). pos I32 [n].
	RoPE(x, pos Buffer, offset, dims int, base float32) error

	// Router selects experts by sigmoid scores: for token t with logits
	// [E, n], s = sigmoid(logits[:, t]); the k experts with the largest
	// s + bias (bias F32 [E], or nil for none) are written to ids[:, t]
	// (I32 [k, n]) in descending biased score, and their unbiased s to
	// weights[:, t] (F32 [k, n]), divided by max(Σ s, 6.1035e-5) when norm,
	// then multiplied by scale.
	Router(ids, weights, logits, bias Buffer, k int, norm bool, scale float32) error

	// SwiGLU sets out = silu(gate) ⊙ up elementwise; all the same shape.
	// out may alias gate or up.
	SwiGLU(out, gate, up Buffer) error

	// Add sets out = a + b elementwise; all the same shape. out may alias
	// a or b.
	Add(out, a, b Buffer) error

	// WeightedSum is the MoE combine: out[:, t] = base[:, t] +
	// Σ_j w[j, t]·y[:, j, t], with y [d, s, n], w [s, n], base and out
	// [d, n] (base nil: no base). out may alias base.
	WeightedSum(out, base, y, w Buffer) error

	// CacheStore writes the token rows of src [w, n] into rows pos[t] of a
	// latent cache [W, capacity] (F16, rounded, or F32), columns [0, w),
	// w <= W. pos I32 [n]; a position outside [0, capacity) is skipped.
	// Two tokens of one call with the same position leave that row
	// undefined (a parallel backend stores them in any order).
	CacheStore(cache, src, pos Buffer) error

	// MLAAttention is absorbed-MLA attention over a latent cache (model
	// spec §4.2 steps 6-8): q [D, H, n] (per token, H query heads of D =
	// kv_lora_rank + rope dims values), cache [D, capacity] (F16 or F32),
	// nkv I32 [n]: token t attends to cache rows [0, nkv[t]) (clamped to
	// capacity; nkv[t] < 1 gives an unspecified in-bounds result), and
	// out [Dv, H, n] = softmax_j(scale·q_h·K_j)·V_j with V_j the first Dv
	// values of row j. Causality is the caller's choice of nkv.
	MLAAttention(out, q, cache, nkv Buffer, scale float32) error

	// CopyCols copies columns: for every row r (src [ws, r], dst [wd, r],
	// both F32 with the same row count), dst[dstCol+i, r] = src[srcCol+i, r]
	// for i < cols. It cuts and joins per-row pieces: the q_nope part of
	// each head's query, the latent part of the kv_a output, [q_abs ; q_pe]
	// into the absorbed query. dst and src must not overlap.
	CopyCols(dst, src Buffer, dstCol, srcCol, cols int) error

	// Argmax sets out[t] (I32 [n]) to the index of the largest of x[:, t]
	// (x [v, n]): lowest index on ties, NaN ignored, -1 when all are NaN.
	Argmax(out, x Buffer) error
}

// ByteSize returns the bytes of a dense tensor of dt and shape (innermost
// first): prod(shape[1:]) rows of dt.RowBytes(shape[0]) bytes. For MMFP4 the
// formula is the same (a slab of m x k holds m·k/128·66 bytes) and shape[0]
// must be a multiple of 128.
func ByteSize(dt DType, shape []int) (int, error) {
	if len(shape) == 0 {
		return 0, fmt.Errorf("%w: %s tensor with no dimensions", ErrShape, dt)
	}
	rows := 1
	for _, d := range shape {
		if d < 1 {
			return 0, fmt.Errorf("%w: %s tensor of shape %v: dimensions must be >= 1", ErrShape, dt, shape)
		}
	}
	for _, d := range shape[1:] {
		if rows > math.MaxInt32/d {
			return 0, fmt.Errorf("%w: %s tensor of shape %v is too large", ErrShape, dt, shape)
		}
		rows *= d
	}
	rb, err := dt.RowBytes(uint64(shape[0]))
	if err != nil {
		return 0, fmt.Errorf("%w: %s tensor of shape %v: %v", ErrShape, dt, shape, err)
	}
	if rb > math.MaxInt64/uint64(rows) {
		return 0, fmt.Errorf("%w: %s tensor of shape %v is too large", ErrShape, dt, shape)
	}
	return int(rb) * rows, nil
}

// Elems returns the number of elements of shape (the product of its
// dimensions).
func Elems(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
