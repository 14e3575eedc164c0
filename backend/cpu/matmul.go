package cpu

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/glmrun/glmrun/backend/cpu/kernels"
	"github.com/glmrun/glmrun/backend/quant"
	"github.com/glmrun/glmrun/gguf"
)

// Mode selects the arithmetic of a matrix product.
type Mode uint8

const (
	// Fast quantizes the activations once per product to the weight type's
	// vec-dot type (quant.VecDotType: Q8_K for K-quants, Q8_0 for the 32-block
	// types, ...) and uses the quantized dot product, as llama.cpp's CPU path
	// does. F32 weights use a float32 dot.
	Fast Mode = iota
	// Exact dequantizes each weight row exactly to float32 (into per-thread
	// scratch, never the whole matrix) and takes float32 dot products.
	Exact
)

// String names the mode.
func (m Mode) String() string {
	if m == Exact {
		return "exact"
	}
	return "fast"
}

// rowsPerTask is the smallest number of weight rows handed to one worker.
const rowsPerTask = 4

// CheckType returns an error if matrix products over weights of type t are
// not supported (no dequantizer or no vec-dot kernel). MMFP4 is supported
// for Weights built by NewTensorWeight (slabs addressed in place, see
// mmfp4.go).
func CheckType(t gguf.TensorType) error {
	if t == gguf.TypeF32 {
		return nil
	}
	if t.BlockSize() == 0 {
		return fmt.Errorf("unknown tensor type %d", uint32(t))
	}
	if !quant.CanDequantize(t) {
		return fmt.Errorf("tensor type %s cannot be dequantized", t)
	}
	if !quant.CanVecDot(t) || !quant.CanQuantize(quant.VecDotType(t)) {
		return fmt.Errorf("tensor type %s has no vec-dot kernel", t)
	}
	return nil
}

// MatMul computes out[i][r] = Σ_c W[r][c]·x[i][c] for the n activation rows
// of x ([n][w.Cols], row-major) into out ([n][w.Rows], row-major). Each
// weight row is read once and dotted against all n rows of x. Rows are split
// across the pool's workers.
func MatMul(p *Pool, mode Mode, out []float32, w Weight, x []float32, n int) error {
	return MatMulBatch(p, mode, []Job{{Out: out, W: w, X: x, N: n, Groups: 1}})
}

// MatMulGroups is groups independent products in one parallel pass: the
// weight's rows form groups equal blocks of R = w.Rows/groups rows (one per
// head, say), x is [groups][n][w.Cols] and out is [groups][n][R]:
// out[g][i][r] = Σ_c W[g·R+r][c]·x[g][i][c].
func MatMulGroups(p *Pool, mode Mode, out []float32, w Weight, groups int, x []float32, n int) error {
	return MatMulBatch(p, mode, []Job{{Out: out, W: w, X: x, N: n, Groups: groups}})
}

// Job is one product of MatMulBatch: Out = W·X over N activation rows, with
// Groups (0 means 1) as in MatMulGroups.
type Job struct {
	Out    []float32
	W      Weight
	X      []float32
	N      int
	Groups int
}

// job is a validated Job with its prepared activations.
type job struct {
	Job
	g    grouping
	xq   []byte          // activations quantized to the vec-dot type (fast mode)
	qb   int             // bytes per quantized activation row
	vt   gguf.TensorType // the vec-dot type of xq
	dot  DotFunc
	tile TileFunc  // nil: row by row
	rows RowsFunc  // nil: row by row (used when N == 1)
	f32  []float32 // F32 weight view
}

// MatMulBatch runs several independent products in one parallel pass over
// the rows of all their weights, so small products (one token's experts, Q
// and KV projections of the same input) share one dispatch. Jobs whose X is
// the same slice share one quantization of it.
func MatMulBatch(p *Pool, mode Mode, jobs []Job) error {
	b := batchPool.Get().(*batch)
	defer b.release()
	js := b.js[:0]
	total, maxCols := 0, 0
	for k, jb := range jobs {
		if jb.Groups == 0 {
			jb.Groups = 1
		}
		w := jb.W
		if jb.N == 0 || w.Rows == 0 {
			continue
		}
		if jb.Groups < 0 || w.Rows%jb.Groups != 0 {
			return fmt.Errorf("cpu: matmul job %d: %d weight rows do not split into %d groups", k, w.Rows, jb.Groups)
		}
		if len(jb.X) < jb.Groups*jb.N*w.Cols || len(jb.Out) < jb.N*w.Rows {
			return fmt.Errorf("cpu: matmul job %d: %dx%d over %d rows: x has %d, out has %d elements", k, w.Rows, w.Cols, jb.N, len(jb.X), len(jb.Out))
		}
		j := job{Job: jb, g: grouping{rows: w.Rows / jb.Groups, cols: w.Cols, n: jb.N}}
		switch {
		case w.Type == gguf.TypeF32:
			j.f32 = F32View(w.Data)
		case mode == Fast:
			vt := quant.VecDotType(w.Type)
			nx := jb.Groups * jb.N
			if vt == gguf.TypeF32 {
				// Half-precision weights dot float32 activations: use X
				// in place rather than a copy.
				j.xq, j.qb = f32Bytes(jb.X[:nx*w.Cols]), 4*w.Cols
			} else if prev := quantizedBefore(js, &jb.X[0], nx*w.Cols, vt); prev != nil {
				j.xq, j.qb = prev.xq, prev.qb
			} else {
				xq, qb, err := b.quantize(p, vt, jb.X, nx, w.Cols)
				if err != nil {
					return fmt.Errorf("cpu: quantize activations to %s for %s weight: %w", vt, w.Type, err)
				}
				j.xq, j.qb = xq, qb
			}
			j.vt = vt
			dot, err := DotKernel(w.Type)
			if err != nil {
				return err
			}
			j.dot = dot
			j.tile = tileKernels[w.Type]
			j.rows = rowsKernels[w.Type]
		default:
			if err := CheckType(w.Type); err != nil {
				return err
			}
		}
		total += w.Rows
		maxCols = max(maxCols, w.Cols)
		js = append(js, j)
	}
	b.js = js
	if total == 0 {
		return nil
	}
	b.errs = append(b.errs[:0], make([]error, p.Threads())...)
	errs := b.errs
	p.For(total, rowsPerTask, func(worker, lo, hi int) {
		var scratch []float32
		// Find the job holding row lo.
		k, base := 0, 0
		for base+js[k].W.Rows <= lo {
			base += js[k].W.Rows
			k++
		}
		for r := lo; r < hi; {
			for r-base >= js[k].W.Rows {
				base += js[k].W.Rows
				k++
			}
			j := &js[k]
			// Rows of one job and one group up to hi form a segment.
			r0 := r - base
			r1 := min(hi-base, j.W.Rows, (r0/j.g.rows+1)*j.g.rows)
			switch {
			case j.W.slabRows > 0 && j.xq != nil:
				j.mmfp4Rows(r0, r1)
			case j.rows != nil && j.g.n == 1:
				// One activation row: outputs of one group are contiguous.
				k := r0 / j.g.rows
				rb := j.W.RowBytes()
				j.rows(j.W.Cols, j.W.Data[r0*rb:r1*rb], j.xq[k*j.qb:(k+1)*j.qb], j.Out[j.g.outIdx(r0, 0):j.g.outIdx(r0, 0)+r1-r0])
			case j.tile != nil && j.g.n > 1:
				j.tileRows(r0, r1)
			default:
				for q := r0; q < r1; q++ {
					if err := j.row(q, &scratch, maxCols); err != nil {
						errs[worker] = err
						return
					}
				}
			}
			r += r1 - r0
		}
	})
	return firstErr(errs)
}

// quantizedBefore returns the earlier job of js whose activations are the
// same n elements at x quantized to vt, or nil.
func quantizedBefore(js []job, x *float32, n int, vt gguf.TensorType) *job {
	for i := range js {
		j := &js[i]
		if j.xq != nil && j.vt == vt && &j.X[0] == x && j.Groups*j.N*j.W.Cols == n {
			return j
		}
	}
	return nil
}

// batch is the reusable workspace of one MatMulBatch call: its validated
// jobs, the quantized activations of all of them (one buffer, carved per
// product) and the per-worker errors. Decode makes a few hundred products
// per token; taking these from a pool keeps them off the garbage-collected
// heap.
type batch struct {
	js   []job
	xq   []byte // quantized activations, in use up to off
	off  int
	errs []error
}

var batchPool = sync.Pool{New: func() any { return new(batch) }}

// release drops the references to the caller's slices and returns b to the
// pool.
func (b *batch) release() {
	clear(b.js)
	b.js = b.js[:0]
	clear(b.errs)
	b.off = 0
	batchPool.Put(b)
}

// quantize quantizes the n rows of x ([n][cols]) to type t into b's buffer
// (see QuantizeRows).
func (b *batch) quantize(p *Pool, t gguf.TensorType, x []float32, n, cols int) ([]byte, int, error) {
	rb64, err := t.RowBytes(uint64(cols))
	if err != nil {
		return nil, 0, err
	}
	rb := int(rb64)
	need := n * rb
	if b.off+need > len(b.xq) {
		// Earlier products of this call keep the old buffer.
		b.xq = make([]byte, max(2*len(b.xq), need))
		b.off = 0
	}
	xq := b.xq[b.off : b.off+need : b.off+need]
	b.off += need
	return xq, rb, quantizeRowsInto(p, t, x, n, cols, xq, rb)
}

// row computes the outputs of weight row r of j for all its tokens.
func (j *job) row(r int, scratch *[]float32, maxCols int) error {
	g, cols := j.g, j.W.Cols
	switch {
	case j.f32 != nil:
		wr := j.f32[r*cols : (r+1)*cols]
		xg := j.X[g.xOff(r):]
		kernels.DotF32Cols(wr, xg[:g.n*cols], g.n, j.Out[g.outIdx(r, 0):], g.rows)
	case j.dot != nil:
		wr := j.W.Row(r)
		qb := j.qb
		xg := j.xq[r/g.rows*g.n*qb:]
		for i := 0; i < g.n; i++ {
			j.Out[g.outIdx(r, i)] = j.dot(cols, wr, xg[i*qb:(i+1)*qb])
		}
	case j.W.Type == gguf.TypeBF16 || j.W.Type == gguf.TypeF16:
		// Exact: half-precision weights widen to float32 exactly, so the
		// float32 dot over the raw row equals dequantize-then-dot. The row is
		// widened once per group of activation rows (DotF16F32Cols).
		half := kernels.DotBF16F32Cols
		if j.W.Type == gguf.TypeF16 {
			half = kernels.DotF16F32Cols
		}
		xg := j.X[g.xOff(r):]
		half(j.W.Row(r), xg[:g.n*cols], g.n, j.Out[g.outIdx(r, 0):], g.rows)
	default:
		if *scratch == nil {
			*scratch = make([]float32, maxCols)
		}
		sc := (*scratch)[:cols]
		if err := DequantizeRows(j.W, r, r+1, sc); err != nil {
			return err
		}
		xg := j.X[g.xOff(r):]
		kernels.DotF32Cols(sc, xg[:g.n*cols], g.n, j.Out[g.outIdx(r, 0):], g.rows)
	}
	return nil
}

// tileRowsBlock is the number of weight rows a tile kernel streams against
// all of a product's activation rows before moving on (kept in L1/L2).
const tileRowsBlock = 16

// tileRows computes weight rows [r0, r1) of one group for all tokens with
// the tile kernel.
func (j *job) tileRows(r0, r1 int) {
	g, rb := j.g, j.W.RowBytes()
	k := r0 / g.rows
	xg := j.xq[k*g.n*j.qb : (k+1)*g.n*j.qb]
	for a := r0; a < r1; a += tileRowsBlock {
		b := min(a+tileRowsBlock, r1)
		dst := j.Out[g.outIdx(a, 0):]
		j.tile(j.W.Cols, j.W.Data[a*rb:b*rb], b-a, xg, g.n, dst, g.rows)
	}
}

// grouping maps a weight row to its group's activations and outputs.
type grouping struct{ rows, cols, n int }

// xOff returns the offset in x of row r's group's first activation row.
func (g grouping) xOff(r int) int { return r / g.rows * g.n * g.cols }

// outIdx returns the index in out of token i for weight row r.
func (g grouping) outIdx(r, i int) int {
	k := r / g.rows
	return (k*g.n+i)*g.rows + r - k*g.rows
}

// f32Bytes returns the bytes of x (no copy), the float32 "quantization"
// of activations for weights whose vec-dot type is F32.
func f32Bytes(x []float32) []byte {
	if len(x) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*len(x))
}

// F32View returns little-endian float32 bytes as []float32: without a copy
// when b is 4-byte aligned (GGUF tensor data is aligned to at least 32 bytes
// in practice), else as a decoded copy.
func F32View(b []byte) []float32 {
	if len(b) < 4 {
		return nil
	}
	if uintptr(unsafe.Pointer(&b[0]))%4 != 0 {
		out := make([]float32, len(b)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return out
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

// QuantizeRows quantizes the n rows of x ([n][cols]) to type t, returning
// n rows of t.RowBytes(cols) bytes each.
func QuantizeRows(p *Pool, t gguf.TensorType, x []float32, n, cols int) ([]byte, int, error) {
	rb64, err := t.RowBytes(uint64(cols))
	if err != nil {
		return nil, 0, err
	}
	rb := int(rb64)
	xq := make([]byte, n*rb)
	return xq, rb, quantizeRowsInto(p, t, x, n, cols, xq, rb)
}

// quantizeRowsInto quantizes the n rows of x ([n][cols]) to type t into xq
// (n rows of rb bytes), in parallel when there is enough work.
func quantizeRowsInto(p *Pool, t gguf.TensorType, x []float32, n, cols int, xq []byte, rb int) error {
	if n*cols < 1<<14 {
		for i := 0; i < n; i++ {
			if err := quantizeRow(t, x[i*cols:(i+1)*cols], xq[i*rb:(i+1)*rb]); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, p.Threads())
	p.For(n, 1, func(worker, lo, hi int) {
		for i := lo; i < hi; i++ {
			if err := quantizeRow(t, x[i*cols:(i+1)*cols], xq[i*rb:(i+1)*rb]); err != nil {
				errs[worker] = err
				return
			}
		}
	})
	return firstErr(errs)
}

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
