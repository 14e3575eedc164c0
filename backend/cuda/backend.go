package cuda

import (
	"errors"
	"fmt"

	"github.com/glmrun/glmrun/backend"
	"github.com/glmrun/glmrun/gguf"
)

// This file implements backend.Backend on a Device with the kernels of this
// package. Ops are enqueued on the device's one stream (one Device.Do round
// trip each, no wait); Sync, Download and Upload wait.

func init() {
	backend.Register("cuda", func(o backend.Options) (backend.Backend, error) { return OpenBackend(o.Device) })
}

// gemmMinTokens is the token count from which MatMul runs the tensor-core
// GEMM (GemmW, f16 activations) instead of the matrix-vector kernels (one
// pass over the weights per token).
const gemmMinTokens = 8

// maxSlots is the most MatVec slots (grid.y) one launch takes.
const maxSlots = 65535

// Backend is backend.Backend on one CUDA device. It is safe for concurrent
// use (ops are serialised by the device's owner goroutine).
type Backend struct {
	dev     *Device
	ownsDev bool // Close closes dev
	store   *backend.Store[Buffer]

	// Scratch (touched only on the owner goroutine, inside Do): Q8_1
	// activations, f16 activations for GemmW, MLA partial results.
	q81, f16, mla Buffer
}

// NewBackend returns the backend of an open device; Close frees the
// backend's buffers but leaves the device open.
func NewBackend(d *Device) *Backend {
	return &Backend{dev: d, store: backend.NewStore("cuda", d.Free)}
}

// OpenBackend opens device ordinal (see Open) and returns its backend,
// which closes the device on Close. Without a usable device the error wraps
// ErrNoDevice.
func OpenBackend(ordinal int) (*Backend, error) {
	d, err := Open(ordinal)
	if err != nil {
		return nil, err
	}
	b := NewBackend(d)
	b.ownsDev = true
	return b, nil
}

// Name returns "cuda".
func (be *Backend) Name() string { return "cuda" }

// Capabilities lists the weight types MatVec has kernels for (so a type the
// kernels gain is listed without a change here), F32 embedding tables,
// F16 and F32 caches, and the Router and attention kernels' limits.
func (be *Backend) Capabilities() backend.Capabilities {
	var types []backend.DType
	for t := gguf.TensorType(0); t < 64; t++ {
		if t.Known() && SupportsMatVec(t) {
			types = append(types, t)
		}
	}
	if SupportsMatVec(gguf.TypeMMFP4) {
		types = append(types, gguf.TypeMMFP4)
	}
	return backend.Capabilities{
		WeightTypes:          types,
		EmbedTypes:           []backend.DType{backend.F32},
		CacheTypes:           []backend.DType{backend.F16, backend.F32},
		QuantizedActivations: true,
		MaxRouterExperts:     1024,
		MaxRouterK:           64,
		MaxHeads:             mlaMaxH,
		MemoryBytes:          be.dev.Info().TotalMem,
	}
}

// Alloc allocates device memory for a tensor of dt and shape.
func (be *Backend) Alloc(dt backend.DType, shape ...int) (backend.Buffer, error) {
	size, err := backend.ByteSize(dt, shape)
	if err != nil {
		return nil, fmt.Errorf("cuda: Alloc: %w", err)
	}
	buf, err := be.dev.Alloc(int64(size))
	if err != nil {
		return nil, fmt.Errorf("cuda: Alloc(%s, %v): %w", dt, shape, err)
	}
	b, err := be.store.Add(dt, shape, buf)
	if err != nil {
		_ = be.dev.Free(buf)
		return nil, err
	}
	return b, nil
}

// View returns a buffer aliasing elements [offset, offset+prod(shape)) of
// src (see backend.Backend.View).
func (be *Backend) View(src backend.Buffer, offset int, shape ...int) (backend.Buffer, error) {
	v, err := be.store.View(src, offset, shape, func(b Buffer, off, n int) (Buffer, error) {
		return b.Slice(int64(off), int64(n))
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Upload enqueues the copy of the raw tensor bytes src into dst after the
// ops enqueued before it, without waiting (UploadAsync: the driver stages
// pageable memory, so src may be reused on return).
func (be *Backend) Upload(dst backend.Buffer, src []byte) error {
	d, err := be.store.Transfer("Upload", dst, len(src))
	if err != nil {
		return err
	}
	return be.dev.Do(func(c *Ctx) error { return c.UploadAsync(d, src) })
}

// Download copies src's bytes into dst after the ops enqueued before it.
func (be *Backend) Download(dst []byte, src backend.Buffer) error {
	s, err := be.store.Transfer("Download", src, len(dst))
	if err != nil {
		return err
	}
	return be.dev.Download(dst, s)
}

// Ops returns the op set.
func (be *Backend) Ops() backend.Ops { return devOps{be} }

// Sync waits for every enqueued op.
func (be *Backend) Sync() error { return be.dev.Sync() }

// Close frees every buffer and the scratch, and closes the device if
// OpenBackend opened it. It is idempotent.
func (be *Backend) Close() error {
	err := be.store.Close()
	err = errors.Join(err, be.dev.Do(func(c *Ctx) error {
		var errs []error
		for _, s := range []*Buffer{&be.q81, &be.f16, &be.mla} {
			if !isZero(*s) {
				errs = append(errs, c.Free(*s))
				*s = Buffer{}
			}
		}
		return errors.Join(errs...)
	}))
	if be.ownsDev {
		err = errors.Join(err, be.dev.Close())
	}
	if errors.Is(err, ErrClosed) {
		return nil // a second Close
	}
	return err
}

// scratch returns *s grown to at least n bytes. Growing frees the old
// buffer, which earlier enqueued kernels may still read, so it syncs first
// (a wait, but only when a larger size than ever before is needed).
func scratch(c *Ctx, s *Buffer, n int64) (Buffer, error) {
	if s.bytes >= n {
		return *s, nil
	}
	if !isZero(*s) {
		if err := c.Sync(); err != nil {
			return Buffer{}, err
		}
		if err := c.Free(*s); err != nil {
			return Buffer{}, err
		}
		*s = Buffer{}
	}
	b, err := c.Alloc(max(n, 1<<16))
	if err != nil {
		return Buffer{}, err
	}
	*s = b
	return b, nil
}

// devOps implements backend.Ops with this package's kernels.
type devOps struct{ be *Backend }

func notImpl(op string, f string, a ...any) error {
	return fmt.Errorf("cuda: %s: %w: %s", op, backend.ErrNotImplemented, fmt.Sprintf(f, a...))
}

// do runs fn on the owner goroutine.
func (o devOps) do(fn func(c *Ctx) error) error { return o.be.dev.Do(fn) }

func (o devOps) Embed(out, table, tokens backend.Buffer) error {
	const op = "Embed"
	b, err := o.be.store.Mems(op, "out", out, "table", table, "tokens", tokens)
	if err != nil {
		return err
	}
	d, vocab, n, err := backend.CheckEmbed(out, table, tokens)
	if err != nil {
		return err
	}
	if table.DType() != backend.F32 {
		return notImpl(op, "table of type %s (only f32 rows are gathered on the device)", table.DType())
	}
	if n > maxSlots {
		return notImpl(op, "%d tokens in one call (at most %d)", n, maxSlots)
	}
	return o.do(func(c *Ctx) error { return c.GatherRows(b[1], d, vocab, b[2], b[0], d, n, d) })
}

func (o devOps) RMSNorm(out, x, w backend.Buffer, eps float32) error {
	const op = "RMSNorm"
	b, err := o.be.store.Mems(op, "out", out, "x", x, "w", w)
	if err != nil {
		return err
	}
	d, n, err := backend.CheckRMSNorm(out, x, w)
	if err != nil {
		return err
	}
	return o.do(func(c *Ctx) error { return c.RMSNorm(b[1], d, b[2], b[0], d, n, d, eps) })
}

// product is one MatMul or MatMulID: y[:, j] = W_e·x[:, j/xdiv] over slots
// j < slots, e = ids[j] (ids zero: expert 0).
type product struct {
	w, x, ids, y Buffer
	t            gguf.TensorType
	k, m, e      int
	slots, xdiv  int
}

// matvec enqueues p with the matrix-vector kernels: x quantised to Q8_1
// once for quantised weight types, then launches of at most maxSlots slots
// (whole groups of xdiv slots).
func (o devOps) matvec(c *Ctx, p product) error {
	xRows := p.slots / p.xdiv
	xRowBytes, x := f32Bytes(p.k), p.x
	if IsQuantized(p.t) {
		q, err := scratch(c, &o.be.q81, Q81Bytes(xRows, p.k))
		if err != nil {
			return err
		}
		x, xRowBytes = q, Q81Bytes(1, p.k)
		for r0 := 0; r0 < xRows; r0 += maxSlots { // grid.y holds the rows
			r := min(maxSlots, xRows-r0)
			xs, err := p.x.Slice(f32Bytes(r0*p.k), f32Bytes(r*p.k))
			if err != nil {
				return err
			}
			qs, err := q.Slice(int64(r0)*xRowBytes, int64(r)*xRowBytes)
			if err != nil {
				return err
			}
			if err := c.QuantizeQ81(xs, p.k, r, p.k, qs); err != nil {
				return err
			}
		}
	}
	chunk := maxSlots / p.xdiv * p.xdiv
	for j0 := 0; j0 < p.slots; j0 += chunk {
		n := min(chunk, p.slots-j0)
		m := MatVec{W: p.w, Type: p.t, Rows: p.m, Cols: p.k, NExperts: p.e, Slots: n, XDiv: p.xdiv}
		var err error
		if m.X, err = x.Slice(int64(j0/p.xdiv)*xRowBytes, int64(n/p.xdiv)*xRowBytes); err != nil {
			return err
		}
		if m.Y, err = p.y.Slice(f32Bytes(j0*p.m), f32Bytes(n*p.m)); err != nil {
			return err
		}
		if !isZero(p.ids) {
			if m.IDs, err = p.ids.Slice(4*int64(j0), 4*int64(n)); err != nil {
				return err
			}
		}
		if err := c.MatVec(m); err != nil {
			return err
		}
	}
	return nil
}

// gemm enqueues a single-matrix p on tensor cores: x converted to f16, then
// GemmW with the weight dequantised inside the tile loads. ok is false when
// the GEMM cannot take p (the caller then uses matvec).
func (o devOps) gemm(c *Ctx, p product) (ok bool, err error) {
	if !SupportsGemmW(p.t) || p.e != 1 || !isZero(p.ids) || p.slots > maxSlots || p.k%32 != 0 ||
		p.k%p.t.BlockSize() != 0 || p.w.ptr%16 != 0 || (p.t == gguf.TypeF16 && p.k%8 != 0) {
		return false, nil
	}
	a, err := scratch(c, &o.be.f16, 2*int64(p.slots)*int64(p.k))
	if err != nil {
		return true, err
	}
	if err := c.ToF16Rows(p.x, p.k, p.slots, Buffer{}, 1, a, p.k, p.slots, p.k); err != nil {
		return true, err
	}
	return true, c.GemmW(GemmF16{A: a, LDA: p.k, NRows: p.slots, W: p.w, Y: p.y, LDY: p.m, M: p.m, K: p.k}, p.t)
}

// weightType returns ErrNotImplemented unless MatVec handles k x m
// matrices of t.
func weightType(op string, t gguf.TensorType, k, m int) error {
	if !SupportsMatVec(t) {
		return notImpl(op, "no kernel for %s weights", t)
	}
	if IsQuantized(t) && k%32 != 0 {
		return notImpl(op, "%s weights with rows of %d values (Q8_1 activations need a multiple of 32)", t, k)
	}
	if rb, err := t.RowBytes(uint64(k)); err == nil && t == gguf.TypeMMFP4 && int64(rb)*int64(m)%16 != 0 {
		return notImpl(op, "mmfp4 slabs of %d x %d (the kernels need a multiple of 16 bytes: m·k/128 a multiple of 8)", m, k)
	}
	return nil
}

func (o devOps) MatMul(out, w, x backend.Buffer) error {
	const op = "MatMul"
	b, err := o.be.store.Mems(op, "out", out, "w", w, "x", x)
	if err != nil {
		return err
	}
	k, m, n, err := backend.CheckMatMul(out, w, x)
	if err != nil {
		return err
	}
	if err := weightType(op, w.DType(), k, m); err != nil {
		return err
	}
	p := product{w: b[1], x: b[2], y: b[0], t: w.DType(), k: k, m: m, e: 1, slots: n, xdiv: 1}
	return o.do(func(c *Ctx) error {
		if n >= gemmMinTokens {
			if ok, err := o.gemm(c, p); ok {
				return err
			}
		}
		return o.matvec(c, p)
	})
}

func (o devOps) MatMulID(out, w, x, ids backend.Buffer) error {
	const op = "MatMulID"
	b, err := o.be.store.Mems(op, "out", out, "w", w, "x", x, "ids", ids)
	if err != nil {
		return err
	}
	k, m, e, s, n, shared, err := backend.CheckMatMulID(out, w, x, ids)
	if err != nil {
		return err
	}
	if err := weightType(op, w.DType(), k, m); err != nil {
		return err
	}
	if s > maxSlots {
		return notImpl(op, "%d slots per token (at most %d)", s, maxSlots)
	}
	xdiv := 1
	if shared {
		xdiv = s
	}
	p := product{w: b[1], x: b[2], ids: b[3], y: b[0], t: w.DType(), k: k, m: m, e: e, slots: s * n, xdiv: xdiv}
	return o.do(func(c *Ctx) error { return o.matvec(c, p) })
}

func (o devOps) RoPE(x, pos backend.Buffer, offset, dims int, base float32) error {
	const op = "RoPE"
	b, err := o.be.store.Mems(op, "x", x, "pos", pos)
	if err != nil {
		return err
	}
	hd, h, n, err := backend.CheckRoPE(x, pos, offset, dims, base)
	if err != nil {
		return err
	}
	if h > 1<<31-1 || n > maxSlots {
		return notImpl(op, "%d heads x %d tokens (at most %d tokens)", h, n, maxSlots)
	}
	return o.do(func(c *Ctx) error { return c.RoPE(b[0], hd*h, hd, h, n, offset, dims, b[1], base) })
}

func (o devOps) Router(ids, weights, logits, bias backend.Buffer, k int, norm bool, scale float32) error {
	const op = "Router"
	b, err := o.be.store.Mems(op, "ids", ids, "weights", weights, "logits", logits, "bias", bias)
	if err != nil {
		return err
	}
	e, n, err := backend.CheckRouter(ids, weights, logits, bias, k, scale)
	if err != nil {
		return err
	}
	if e > 1024 || k > 64 {
		return notImpl(op, "%d experts, k = %d (the kernel takes at most 1024 and 64)", e, k)
	}
	return o.do(func(c *Ctx) error { return c.Router(b[2], e, b[3], e, k, norm, scale, n, b[0], b[1]) })
}

func (o devOps) SwiGLU(out, gate, up backend.Buffer) error {
	return o.elementwise("SwiGLU", out, gate, up, func(c *Ctx, y, a, b Buffer, n int) error { return c.SwiGLU(a, b, y, n) })
}

func (o devOps) Add(out, a, b backend.Buffer) error {
	return o.elementwise("Add", out, a, b, func(c *Ctx, y, a, b Buffer, n int) error { return c.Add(a, b, y, n) })
}

// elementwise validates the three same-shaped F32 buffers of op and
// enqueues f on them.
func (o devOps) elementwise(op string, out, a, b backend.Buffer, f func(c *Ctx, y, a, b Buffer, n int) error) error {
	v, err := o.be.store.Mems(op, "out", out, "a", a, "b", b)
	if err != nil {
		return err
	}
	n, err := backend.CheckElementwise(op, out, a, b)
	if err != nil {
		return err
	}
	return o.do(func(c *Ctx) error { return f(c, v[0], v[1], v[2], n) })
}

func (o devOps) WeightedSum(out, base, y, w backend.Buffer) error {
	const op = "WeightedSum"
	b, err := o.be.store.Mems(op, "out", out, "base", base, "y", y, "w", w)
	if err != nil {
		return err
	}
	d, s, n, err := backend.CheckWeightedSum(out, base, y, w)
	if err != nil {
		return err
	}
	if n > maxSlots {
		return notImpl(op, "%d tokens in one call (at most %d)", n, maxSlots)
	}
	return o.do(func(c *Ctx) error { return c.WeightedSumTokens(b[1], b[2], d, b[3], s, b[0], d, n) })
}

func (o devOps) CacheStore(cache, src, pos backend.Buffer) error {
	const op = "CacheStore"
	b, err := o.be.store.Mems(op, "cache", cache, "src", src, "pos", pos)
	if err != nil {
		return err
	}
	w, width, _, n, err := backend.CheckCacheStore(cache, src, pos)
	if err != nil {
		return err
	}
	store := (*Ctx).CacheStoreF16
	if cache.DType() == backend.F32 {
		store = (*Ctx).CacheStoreF32
	}
	return o.do(func(c *Ctx) error { return store(c, b[1], w, b[0], width, w, b[2], n) })
}

func (o devOps) MLAAttention(out, q, cache, nkv backend.Buffer, scale float32) error {
	const op = "MLAAttention"
	b, err := o.be.store.Mems(op, "out", out, "q", q, "cache", cache, "nkv", nkv)
	if err != nil {
		return err
	}
	d, dv, h, n, capacity, err := backend.CheckMLAAttention(out, q, cache, nkv, scale)
	if err != nil {
		return err
	}
	if h > mlaMaxH || d%2 != 0 || dv%2 != 0 || dv > 2*mlaThreads || n > maxSlots {
		return notImpl(op, "H = %d (at most %d), D = %d, Dv = %d (even, Dv at most %d), %d tokens (at most %d)",
			h, mlaMaxH, d, dv, 2*mlaThreads, n, maxSlots)
	}
	return o.do(func(c *Ctx) error {
		// Splits past ceil(keys/tile) would have no keys (the kernels skip
		// them); two per multiprocessor fill the GPU for long caches.
		splits := max(1, min(2*max(c.Info().SMs, 1), ceilDiv(capacity, mlaTile)))
		s, err := scratch(c, &o.be.mla, int64(n)*MLAScratchBytes(splits, h, dv))
		if err != nil {
			return err
		}
		return c.MLADecode(MLADecode{
			Q: b[1], QStride: d, H: h, D: d, Dv: dv, KV: b[2], KVStride: d, NKV: b[3], Scale: scale,
			Splits: splits, Scratch: s, Out: b[0], OutStride: dv, KVF32: cache.DType() == backend.F32,
			Tokens: n, QTokStride: d * h, OutTokStride: dv * h,
		})
	})
}

func (o devOps) CopyCols(dst, src backend.Buffer, dstCol, srcCol, cols int) error {
	const op = "CopyCols"
	b, err := o.be.store.Mems(op, "dst", dst, "src", src)
	if err != nil {
		return err
	}
	wd, ws, rows, err := backend.CheckCopyCols(dst, src, dstCol, srcCol, cols)
	if err != nil {
		return err
	}
	return o.do(func(c *Ctx) error {
		// A strided row gather: GatherRows without ids, in launches of at
		// most maxSlots rows.
		for r0 := 0; r0 < rows; r0 += maxSlots {
			n := min(maxSlots, rows-r0)
			s, err := b[1].Slice(f32Bytes(r0*ws+srcCol), f32Bytes((n-1)*ws+cols))
			if err != nil {
				return err
			}
			d, err := b[0].Slice(f32Bytes(r0*wd+dstCol), f32Bytes((n-1)*wd+cols))
			if err != nil {
				return err
			}
			if err := c.GatherRows(s, ws, n, Buffer{}, d, wd, n, cols); err != nil {
				return err
			}
		}
		return nil
	})
}

func (o devOps) Argmax(out, x backend.Buffer) error {
	const op = "Argmax"
	b, err := o.be.store.Mems(op, "out", out, "x", x)
	if err != nil {
		return err
	}
	v, n, err := backend.CheckArgmax(out, x)
	if err != nil {
		return err
	}
	return o.do(func(c *Ctx) error { return c.Argmax(b[1], v, v, n, b[0]) })
}
