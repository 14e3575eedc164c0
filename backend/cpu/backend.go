package cpu

import (
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/glmrun/glmrun/backend"
	"github.com/glmrun/glmrun/backend/quant"
	"github.com/glmrun/glmrun/gguf"
)

// This file implements backend.Backend on host memory with the kernels of
// this package; it is the reference every other backend is tested against
// (backend/backendtest).

func init() {
	backend.Register("cpu", func(o backend.Options) (backend.Backend, error) {
		return NewBackend(o.Threads, Fast), nil
	})
}

// Backend is the host-memory backend.Backend: buffers are Go memory, ops run
// at once on the calling goroutine (parallelised over a Pool), so Sync has
// nothing to wait for. Matrix products use mode (Fast quantises the
// activations like llama.cpp's CPU path; Exact dequantises the weights
// exactly). A Backend is safe for concurrent use by ops on distinct output
// buffers.
type Backend struct {
	pool  *Pool
	mode  Mode
	store *backend.Store[*hostMem]
}

// NewBackend returns a host backend computing on threads workers (<= 0: one
// per physical core) with matrix products in mode.
func NewBackend(threads int, mode Mode) *Backend {
	if threads <= 0 {
		threads = PhysicalCores()
	}
	release := func(m *hostMem) error { m.data = nil; return nil }
	return &Backend{pool: NewPool(threads), mode: mode, store: backend.NewStore("cpu", release)}
}

// hostMem is the memory of a host buffer. data is 8-byte aligned (it is
// allocated as []uint64), so F32 and I32 views need no copy.
type hostMem struct {
	data []byte

	wOnce sync.Once
	w     Weight // weight view of data, made on first use
	wErr  error
}

func (m *hostMem) f32() []float32 {
	if len(m.data) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&m.data[0])), len(m.data)/4)
}

func (m *hostMem) i32() []int32 {
	if len(m.data) == 0 {
		return nil
	}
	return unsafe.Slice((*int32)(unsafe.Pointer(&m.data[0])), len(m.data)/4)
}

// weightFor returns buffer b (whose memory m is) as a Weight for op:
// prod(shape[1:]) rows of shape[0] elements in 2-D slabs of shape[1] rows
// (the layout MMFP4 needs), or ErrNotImplemented for a dtype the products
// do not support.
func (m *hostMem) weightFor(op string, b backend.Buffer) (Weight, error) {
	if err := CheckWeightType(b.DType()); err != nil {
		return Weight{}, notImpl(op, "weight: %v", err)
	}
	m.wOnce.Do(func() {
		k, rows := backend.Dims2(b)
		_, slab, _ := backend.Dims3(b)
		m.w, m.wErr = NewTensorWeight(b.DType(), rows, k, slab, m.data)
	})
	if m.wErr != nil {
		return Weight{}, fmt.Errorf("cpu: %s: %w", op, m.wErr)
	}
	return m.w, nil
}

// Name returns "cpu".
func (be *Backend) Name() string { return "cpu" }

// Capabilities lists every GGUF type CheckType accepts as a weight and
// embedding table (F32, F16, BF16, the legacy 32-blocks, Q4_K, Q5_K, Q6_K,
// MXFP4, MMFP4), F16 and F32 caches, and no limits.
func (be *Backend) Capabilities() backend.Capabilities {
	var types []backend.DType
	for _, t := range knownTypes() {
		if CheckWeightType(t) == nil {
			types = append(types, t)
		}
	}
	return backend.Capabilities{
		WeightTypes:          types,
		EmbedTypes:           types,
		CacheTypes:           []backend.DType{backend.F16, backend.F32},
		QuantizedActivations: be.mode == Fast,
		Threads:              be.pool.Threads(),
	}
}

// knownTypes returns every tensor type gguf can size.
func knownTypes() []gguf.TensorType {
	var ts []gguf.TensorType
	for t := gguf.TensorType(0); t < 64; t++ {
		if t.Known() {
			ts = append(ts, t)
		}
	}
	return append(ts, gguf.TypeMMFP4)
}

// Alloc returns a zeroed host buffer.
func (be *Backend) Alloc(dt backend.DType, shape ...int) (backend.Buffer, error) {
	size, err := backend.ByteSize(dt, shape)
	if err != nil {
		return nil, fmt.Errorf("cpu: Alloc: %w", err)
	}
	words := make([]uint64, (size+7)/8)
	b, err := be.store.Add(dt, shape, &hostMem{data: unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), size)})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// View returns a buffer aliasing elements [offset, offset+prod(shape)) of
// src (see backend.Backend.View).
func (be *Backend) View(src backend.Buffer, offset int, shape ...int) (backend.Buffer, error) {
	v, err := be.store.View(src, offset, shape, func(m *hostMem, off, n int) (*hostMem, error) {
		return &hostMem{data: m.data[off : off+n : off+n]}, nil
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Upload copies the raw tensor bytes src into dst.
func (be *Backend) Upload(dst backend.Buffer, src []byte) error {
	m, err := be.store.Transfer("Upload", dst, len(src))
	if err == nil {
		copy(m.data, src)
	}
	return err
}

// Download copies src's bytes into dst.
func (be *Backend) Download(dst []byte, src backend.Buffer) error {
	m, err := be.store.Transfer("Download", src, len(dst))
	if err == nil {
		copy(dst, m.data)
	}
	return err
}

// Ops returns the op set.
func (be *Backend) Ops() backend.Ops { return hostOps{be} }

// Sync returns nil: every op has finished when it returns.
func (be *Backend) Sync() error { return nil }

// Close frees every buffer.
func (be *Backend) Close() error { return be.store.Close() }

// hostOps implements backend.Ops with the kernels of this package.
type hostOps struct{ be *Backend }

func notImpl(op string, f string, a ...any) error {
	return fmt.Errorf("cpu: %s: %w: %s", op, backend.ErrNotImplemented, fmt.Sprintf(f, a...))
}

func (o hostOps) Embed(out, table, tokens backend.Buffer) error {
	const op = "Embed"
	bs, err := o.be.store.Mems(op, "out", out, "table", table, "tokens", tokens)
	if err != nil {
		return err
	}
	d, vocab, n, err := backend.CheckEmbed(out, table, tokens)
	if err != nil {
		return err
	}
	w, err := bs[1].weightFor(op, table)
	if err != nil {
		return err
	}
	y, ids := bs[0].f32(), bs[2].i32()
	nan := float32(math.NaN())
	for t := 0; t < n; t++ {
		row := y[t*d : (t+1)*d]
		id := int(ids[t])
		if id < 0 || id >= vocab {
			for i := range row {
				row[i] = nan
			}
			continue
		}
		if err := DequantizeRows(w, id, id+1, row); err != nil {
			return fmt.Errorf("cpu: %s: %w", op, err)
		}
	}
	return nil
}

func (o hostOps) RMSNorm(out, x, w backend.Buffer, eps float32) error {
	const op = "RMSNorm"
	bs, err := o.be.store.Mems(op, "out", out, "x", x, "w", w)
	if err != nil {
		return err
	}
	if _, _, err := backend.CheckRMSNorm(out, x, w); err != nil {
		return err
	}
	RMSNorm(bs[0].f32(), bs[1].f32(), bs[2].f32(), eps)
	return nil
}

func (o hostOps) MatMul(out, w, x backend.Buffer) error {
	const op = "MatMul"
	bs, err := o.be.store.Mems(op, "out", out, "w", w, "x", x)
	if err != nil {
		return err
	}
	_, _, n, err := backend.CheckMatMul(out, w, x)
	if err != nil {
		return err
	}
	wt, err := bs[1].weightFor(op, w)
	if err != nil {
		return err
	}
	if err := MatMul(o.be.pool, o.be.mode, bs[0].f32(), wt, bs[2].f32(), n); err != nil {
		return fmt.Errorf("cpu: %s: %w", op, err)
	}
	return nil
}

func (o hostOps) MatMulID(out, w, x, ids backend.Buffer) error {
	const op = "MatMulID"
	bs, err := o.be.store.Mems(op, "out", out, "w", w, "x", x, "ids", ids)
	if err != nil {
		return err
	}
	k, m, e, s, n, shared, err := backend.CheckMatMulID(out, w, x, ids)
	if err != nil {
		return err
	}
	wt, err := bs[1].weightFor(op, w)
	if err != nil {
		return err
	}
	y, xs, id := bs[0].f32(), bs[2].f32(), bs[3].i32()
	// Group the slots by expert so each expert's rows are read once for all
	// the tokens routed to it: gather their x rows, one product, scatter.
	slots := make([][]int, e)
	nan := float32(math.NaN())
	for j := 0; j < s*n; j++ {
		ex := int(id[j])
		if ex < 0 || ex >= e {
			for i := range y[j*m : (j+1)*m] {
				y[j*m+i] = nan
			}
			continue
		}
		slots[ex] = append(slots[ex], j)
	}
	xrow := func(j int) []float32 {
		if shared {
			j /= s
		}
		return xs[j*k : (j+1)*k]
	}
	var jobs []Job
	var outs [][]float32
	var lists [][]int
	for ex, list := range slots {
		if len(list) == 0 {
			continue
		}
		we := wt.SubRows(ex*m, (ex+1)*m)
		if len(list) == 1 {
			j := list[0]
			jobs = append(jobs, Job{Out: y[j*m : (j+1)*m], W: we, X: xrow(j), N: 1})
			continue
		}
		g := make([]float32, len(list)*k)
		for i, j := range list {
			copy(g[i*k:(i+1)*k], xrow(j))
		}
		yo := make([]float32, len(list)*m)
		jobs = append(jobs, Job{Out: yo, W: we, X: g, N: len(list)})
		outs, lists = append(outs, yo), append(lists, list)
	}
	if err := MatMulBatch(o.be.pool, o.be.mode, jobs); err != nil {
		return fmt.Errorf("cpu: %s: %w", op, err)
	}
	for g, list := range lists {
		for i, j := range list {
			copy(y[j*m:(j+1)*m], outs[g][i*m:(i+1)*m])
		}
	}
	return nil
}

func (o hostOps) RoPE(x, pos backend.Buffer, offset, dims int, base float32) error {
	const op = "RoPE"
	bs, err := o.be.store.Mems(op, "x", x, "pos", pos)
	if err != nil {
		return err
	}
	hd, h, n, err := backend.CheckRoPE(x, pos, offset, dims, base)
	if err != nil {
		return err
	}
	xs, ps := bs[0].f32(), bs[1].i32()
	for t := 0; t < n; t++ {
		tab := NewRoPETable(int(ps[t]), dims, base)
		for hh := 0; hh < h; hh++ {
			at := (t*h+hh)*hd + offset
			tab.Apply(xs[at : at+dims])
		}
	}
	return nil
}

func (o hostOps) Router(ids, weights, logits, bias backend.Buffer, k int, norm bool, scale float32) error {
	const op = "Router"
	bs, err := o.be.store.Mems(op, "ids", ids, "weights", weights, "logits", logits, "bias", bias)
	if err != nil {
		return err
	}
	e, n, err := backend.CheckRouter(ids, weights, logits, bias, k, scale)
	if err != nil {
		return err
	}
	var bv []float32
	if bs[3] != nil {
		bv = bs[3].f32()
	}
	id, wv, lv := bs[0].i32(), bs[1].f32(), bs[2].f32()
	s := make([]float32, e)
	sel := make([]float32, e)
	taken := make([]bool, e)
	for t := 0; t < n; t++ {
		for i, l := range lv[t*e : (t+1)*e] {
			s[i] = Sigmoid(l)
			sel[i] = s[i]
			if bv != nil {
				sel[i] += bv[i]
			}
			taken[i] = false
		}
		var sum float32
		for j := 0; j < k; j++ {
			best := -1
			for i := range sel {
				// Largest biased score, lowest index on ties; NaN scores
				// are taken last.
				if !taken[i] && (best < 0 || sel[i] > sel[best] || (sel[best] != sel[best] && sel[i] == sel[i])) {
					best = i
				}
			}
			taken[best] = true
			id[t*k+j], wv[t*k+j] = int32(best), s[best]
			sum += s[best]
		}
		div := float32(1)
		if norm {
			div = max(sum, 6.1035e-5)
		}
		for j := 0; j < k; j++ {
			wv[t*k+j] = wv[t*k+j] / div * scale
		}
	}
	return nil
}

func (o hostOps) SwiGLU(out, gate, up backend.Buffer) error {
	return o.elementwise("SwiGLU", out, gate, up, SwiGLU)
}

func (o hostOps) Add(out, a, b backend.Buffer) error {
	return o.elementwise("Add", out, a, b, func(y, a, b []float32) {
		for i := range y {
			y[i] = a[i] + b[i]
		}
	})
}

// elementwise validates the three same-shaped F32 buffers of op and runs f
// on their values.
func (o hostOps) elementwise(op string, out, a, b backend.Buffer, f func(y, a, b []float32)) error {
	bs, err := o.be.store.Mems(op, "out", out, "a", a, "b", b)
	if err != nil {
		return err
	}
	if _, err := backend.CheckElementwise(op, out, a, b); err != nil {
		return err
	}
	f(bs[0].f32(), bs[1].f32(), bs[2].f32())
	return nil
}

func (o hostOps) WeightedSum(out, base, y, w backend.Buffer) error {
	const op = "WeightedSum"
	bs, err := o.be.store.Mems(op, "out", out, "base", base, "y", y, "w", w)
	if err != nil {
		return err
	}
	d, s, n, err := backend.CheckWeightedSum(out, base, y, w)
	if err != nil {
		return err
	}
	ov, yv, wv := bs[0].f32(), bs[2].f32(), bs[3].f32()
	var bv []float32
	if bs[1] != nil {
		bv = bs[1].f32()
	}
	for t := 0; t < n; t++ {
		for i := 0; i < d; i++ {
			var acc float32
			if bv != nil {
				acc = bv[t*d+i]
			}
			for j := 0; j < s; j++ {
				acc += wv[t*s+j] * yv[(t*s+j)*d+i]
			}
			ov[t*d+i] = acc
		}
	}
	return nil
}

func (o hostOps) CacheStore(cache, src, pos backend.Buffer) error {
	const op = "CacheStore"
	bs, err := o.be.store.Mems(op, "cache", cache, "src", src, "pos", pos)
	if err != nil {
		return err
	}
	w, width, capacity, n, err := backend.CheckCacheStore(cache, src, pos)
	if err != nil {
		return err
	}
	c, sv, ps := bs[0], bs[1].f32(), bs[2].i32()
	for t := 0; t < n; t++ {
		p := int(ps[t])
		if p < 0 || p >= capacity {
			continue
		}
		row := sv[t*w : (t+1)*w]
		if cache.DType() == backend.F32 {
			copy(c.f32()[p*width:p*width+w], row)
			continue
		}
		quant.QuantizeRowF16(row, c.data[2*p*width:2*(p*width+w)])
	}
	return nil
}

func (o hostOps) MLAAttention(out, q, cache, nkv backend.Buffer, scale float32) error {
	const op = "MLAAttention"
	bs, err := o.be.store.Mems(op, "out", out, "q", q, "cache", cache, "nkv", nkv)
	if err != nil {
		return err
	}
	d, dv, h, n, capacity, err := backend.CheckMLAAttention(out, q, cache, nkv, scale)
	if err != nil {
		return err
	}
	ov, qv, c, lens := bs[0].f32(), bs[1].f32(), bs[2], bs[3].i32()
	f32Cache := cache.DType() == backend.F32
	// span returns columns [c0, c1) of cache rows [j0, j1) as f32, row
	// after row: an F32 cache in place (rows of d, so the caller strides
	// by d), an F16 one converted into buf (rows of c1-c0).
	span := func(j0, j1, c0, c1 int, buf []float32) (v []float32, stride int) {
		if f32Cache {
			return c.f32()[j0*d+c0:], d
		}
		w := c1 - c0
		for j := j0; j < j1; j++ {
			quant.DequantizeRowF16(c.data[2*(j*d+c0):2*(j*d+c1)], buf[(j-j0)*w:(j-j0+1)*w])
		}
		return buf, w
	}
	const rowBlock, colBlock = 64, 64
	for t := 0; t < n; t++ {
		L := min(max(int(lens[t]), 0), capacity)
		ot := ov[t*h*dv : (t+1)*h*dv]
		clear(ot)
		if L == 0 {
			continue
		}
		// Scores of all heads, key blocks in parallel (each cache row is
		// converted once for all heads).
		p := make([]float32, h*L)
		qt := qv[t*h*d : (t+1)*h*d]
		o.be.pool.For((L+rowBlock-1)/rowBlock, 1, func(_, lo, hi int) {
			buf := make([]float32, rowBlock*d)
			for blk := lo; blk < hi; blk++ {
				j0, j1 := blk*rowBlock, min(L, (blk+1)*rowBlock)
				kv, stride := span(j0, j1, 0, d, buf)
				for hh := 0; hh < h; hh++ {
					for j := j0; j < j1; j++ {
						p[hh*L+j] = scale * DotF32(qt[hh*d:(hh+1)*d], kv[(j-j0)*stride:])
					}
				}
			}
		})
		for hh := 0; hh < h; hh++ {
			ph := p[hh*L : (hh+1)*L]
			mx := float32(math.Inf(-1))
			for _, v := range ph {
				mx = max(mx, v)
			}
			var sum float64
			for j, v := range ph {
				ph[j] = Exp32(v - mx)
				sum += float64(ph[j])
			}
			inv := float32(1 / sum)
			for j := range ph {
				ph[j] *= inv
			}
		}
		// out_h = Σ_j p_hj·V_j, value columns in parallel.
		o.be.pool.For((dv+colBlock-1)/colBlock, 1, func(_, lo, hi int) {
			buf := make([]float32, rowBlock*colBlock)
			for cb := lo; cb < hi; cb++ {
				c0, c1 := cb*colBlock, min(dv, (cb+1)*colBlock)
				for j0 := 0; j0 < L; j0 += rowBlock {
					j1 := min(L, j0+rowBlock)
					v, stride := span(j0, j1, c0, c1, buf)
					for hh := 0; hh < h; hh++ {
						oh := ot[hh*dv+c0 : hh*dv+c1]
						for j := j0; j < j1; j++ {
							AXPY(oh, p[hh*L+j], v[(j-j0)*stride:])
						}
					}
				}
			}
		})
	}
	return nil
}

func (o hostOps) CopyCols(dst, src backend.Buffer, dstCol, srcCol, cols int) error {
	const op = "CopyCols"
	bs, err := o.be.store.Mems(op, "dst", dst, "src", src)
	if err != nil {
		return err
	}
	wd, ws, rows, err := backend.CheckCopyCols(dst, src, dstCol, srcCol, cols)
	if err != nil {
		return err
	}
	d, s := bs[0].f32(), bs[1].f32()
	for r := 0; r < rows; r++ {
		copy(d[r*wd+dstCol:r*wd+dstCol+cols], s[r*ws+srcCol:r*ws+srcCol+cols])
	}
	return nil
}

func (o hostOps) Argmax(out, x backend.Buffer) error {
	const op = "Argmax"
	bs, err := o.be.store.Mems(op, "out", out, "x", x)
	if err != nil {
		return err
	}
	v, n, err := backend.CheckArgmax(out, x)
	if err != nil {
		return err
	}
	ov, xv := bs[0].i32(), bs[1].f32()
	for t := 0; t < n; t++ {
		best := -1
		for i, a := range xv[t*v : (t+1)*v] {
			if a == a && (best < 0 || a > xv[t*v+best]) {
				best = i
			}
		}
		ov[t] = int32(best)
	}
	return nil
}
