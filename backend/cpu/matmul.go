package cpu

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

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
// not supported (no dequantizer or no vec-dot kernel).
func CheckType(t gguf.TensorType) error {
	if t == gguf.TypeF32 {
		return nil
	}
	if t.BlockSize() == 0 {
		return fmt.Errorf("unknown tensor type %d", uint32(t))
	}
	if t == gguf.TypeMMFP4 {
		return fmt.Errorf("tensor type %s (slab layout) is not supported by the CPU backend", t)
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
	return MatMulGroups(p, mode, out, w, 1, x, n)
}

// MatMulGroups is groups independent products in one parallel pass: the
// weight's rows form groups equal blocks of R = w.Rows/groups rows (one per
// head, say), x is [groups][n][w.Cols] and out is [groups][n][R]:
// out[g][i][r] = Σ_c W[g·R+r][c]·x[g][i][c].
func MatMulGroups(p *Pool, mode Mode, out []float32, w Weight, groups int, x []float32, n int) error {
	if n == 0 || w.Rows == 0 {
		return nil
	}
	if groups <= 0 || w.Rows%groups != 0 {
		return fmt.Errorf("cpu: %d weight rows do not split into %d groups", w.Rows, groups)
	}
	if len(x) < groups*n*w.Cols || len(out) < n*w.Rows {
		return fmt.Errorf("cpu: matmul %dx%d over %d rows: x has %d, out has %d elements", w.Rows, w.Cols, n, len(x), len(out))
	}
	g := grouping{rows: w.Rows / groups, cols: w.Cols, n: n}
	if w.Type == gguf.TypeF32 {
		matMulF32(p, out, w, x, g)
		return nil
	}
	if mode == Exact {
		return matMulExact(p, out, w, x, g)
	}
	return matMulFast(p, out, w, x, groups, g)
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

func matMulF32(p *Pool, out []float32, w Weight, x []float32, g grouping) {
	all := F32View(w.Data)
	cols := w.Cols
	p.For(w.Rows, rowsPerTask, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			wr := all[r*cols : (r+1)*cols]
			xg := x[g.xOff(r):]
			for i := 0; i < g.n; i++ {
				out[g.outIdx(r, i)] = DotF32(wr, xg[i*cols:(i+1)*cols])
			}
		}
	})
}

func matMulExact(p *Pool, out []float32, w Weight, x []float32, g grouping) error {
	cols := w.Cols
	errs := make([]error, p.Threads())
	p.For(w.Rows, rowsPerTask, func(worker, lo, hi int) {
		scratch := make([]float32, cols)
		for r := lo; r < hi; r++ {
			if err := quant.Dequantize(w.Type, w.Row(r), scratch); err != nil {
				errs[worker] = err
				return
			}
			xg := x[g.xOff(r):]
			for i := 0; i < g.n; i++ {
				out[g.outIdx(r, i)] = DotF32(scratch, xg[i*cols:(i+1)*cols])
			}
		}
	})
	return firstErr(errs)
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
	errs := make([]error, p.Threads())
	grain := 1
	if n*cols < 1<<14 {
		grain = n
	}
	p.For(n, grain, func(worker, lo, hi int) {
		for i := lo; i < hi; i++ {
			if err := quantizeRow(t, x[i*cols:(i+1)*cols], xq[i*rb:(i+1)*rb]); err != nil {
				errs[worker] = err
				return
			}
		}
	})
	return xq, rb, firstErr(errs)
}

func matMulFast(p *Pool, out []float32, w Weight, x []float32, groups int, g grouping) error {
	cols := w.Cols
	vt := quant.VecDotType(w.Type)
	xq, qb, err := QuantizeRows(p, vt, x, groups*g.n, cols)
	if err != nil {
		return fmt.Errorf("cpu: quantize activations to %s for %s weight: %w", vt, w.Type, err)
	}
	dot, err := DotKernel(w.Type)
	if err != nil {
		return err
	}
	p.For(w.Rows, rowsPerTask, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			wr := w.Row(r)
			xg := xq[r/g.rows*g.n*qb:]
			for i := 0; i < g.n; i++ {
				out[g.outIdx(r, i)] = dot(cols, wr, xg[i*qb:(i+1)*qb])
			}
		}
	})
	return nil
}

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
