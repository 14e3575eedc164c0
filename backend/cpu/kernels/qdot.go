package kernels

import (
	"fmt"
	"sync"

	"github.com/glmrun/glmrun/backend/quant"
)

// qdot describes one quantized weight·activation dot kernel: its block
// geometry, the reference twin in package quant and the assembly entry points
// per level (filled in by qdot_amd64.go; nil means "use the twin").
type qdot struct {
	name   string
	block  int // elements per block
	wBytes int // bytes per weight block
	xBytes int // bytes per activation block
	twin   func(n int, w, x []byte) float32
	asm    [LevelAVX512 + 1]func(nb int, w, x *byte) float32
	// asm4 (optional) computes rows >= 1 consecutive weight rows r against 4
	// activation rows at x + c·xstride, storing dst[c·dstride + r] (c = 0..3).
	asm4 [LevelAVX512 + 1]colsKernel
	// asm8 (optional) is asm4 for 8 activation rows.
	asm8 [LevelAVX512 + 1]colsKernel
	// asm2 (optional) is asm4 for 2 activation rows: the MoE experts of a
	// small batch often get two tokens.
	asm2 [LevelAVX512 + 1]colsKernel
}

// colsKernel is the signature of the multi-column assembly (see asm4).
type colsKernel func(nb int, w, x *byte, xstride int, dst *float32, dstride int, rows int)

var (
	kQ4K   = &qdot{name: "DotQ4KQ8K", block: 256, wBytes: 144, xBytes: 292, twin: quant.DotQ4KQ8K}
	kQ5K   = &qdot{name: "DotQ5KQ8K", block: 256, wBytes: 176, xBytes: 292, twin: quant.DotQ5KQ8K}
	kQ6K   = &qdot{name: "DotQ6KQ8K", block: 256, wBytes: 210, xBytes: 292, twin: quant.DotQ6KQ8K}
	kQ5_0  = &qdot{name: "DotQ5_0Q8_0", block: 32, wBytes: 22, xBytes: 34, twin: quant.DotQ5_0Q8_0}
	kMXFP4 = &qdot{name: "DotMXFP4Q8_0", block: 32, wBytes: 17, xBytes: 34, twin: quant.DotMXFP4Q8_0}
	kQ8_0  = &qdot{name: "DotQ8_0Q8_0", block: 32, wBytes: 34, xBytes: 34, twin: quant.DotQ8_0Q8_0}
)

// check panics unless n is a multiple of the block size and w, x hold n
// elements; it returns the block count.
func (k *qdot) check(n, rowsW, rowsX, lenW, lenX int) int {
	if n < 0 || n%k.block != 0 {
		panic(fmt.Sprintf("kernels.%s: n=%d is not a multiple of %d", k.name, n, k.block))
	}
	nb := n / k.block
	if lenW < rowsW*nb*k.wBytes || lenX < rowsX*nb*k.xBytes {
		panic(fmt.Sprintf("kernels.%s: n=%d needs %d weight bytes × %d rows and %d activation bytes × %d rows, have %d and %d",
			k.name, n, nb*k.wBytes, rowsW, nb*k.xBytes, rowsX, lenW, lenX))
	}
	return nb
}

// fast returns the assembly kernel for the current level, or nil.
func (k *qdot) fast() func(nb int, w, x *byte) float32 { return k.asm[level] }

// dot is the single-row dot product: twin or assembly.
func (k *qdot) dot(n int, w, x []byte) float32 {
	nb := k.check(n, 1, 1, len(w), len(x))
	f := k.fast()
	if f == nil || nb == 0 {
		return k.twin(n, w, x)
	}
	return f(nb, &w[0], &x[0])
}

// rows sets dst[r] = dot(weight row r, x) for r < len(dst); w holds
// len(dst) consecutive rows of n elements.
func (k *qdot) rows(n int, w, x []byte, dst []float32) {
	nb := k.check(n, len(dst), 1, len(w), len(x))
	rb := nb * k.wBytes
	f := k.fast()
	if f == nil || nb == 0 {
		for r := range dst {
			dst[r] = k.twin(n, w[r*rb:(r+1)*rb], x)
		}
		return
	}
	for r := range dst {
		dst[r] = f(nb, &w[r*rb], &x[0])
	}
}

// cols sets dst[c] = dot(w, activation row c) for c < len(dst); x holds
// len(dst) consecutive activation rows of n elements.
func (k *qdot) cols(n int, w, x []byte, dst []float32) {
	nb := k.check(n, 1, len(dst), len(w), len(x))
	xb := nb * k.xBytes
	f := k.fast()
	if f == nil || nb == 0 {
		for c := range dst {
			dst[c] = k.twin(n, w, x[c*xb:(c+1)*xb])
		}
		return
	}
	for c := range dst {
		dst[c] = f(nb, &w[0], &x[c*xb])
	}
}

// tile computes a rows×cols block of a matrix product: for r < rows and
// c < cols, dst[c*ldd+r] = dot(weight row r, activation row c). Weight rows
// are consecutive in w, activation rows consecutive in x.
func (k *qdot) tile(n int, w []byte, rows int, x []byte, cols int, dst []float32, ldd int) {
	nb := k.check(n, rows, cols, len(w), len(x))
	if rows < 0 || cols < 0 || (cols > 0 && rows > 0 && (ldd < rows || len(dst) < (cols-1)*ldd+rows)) {
		panic(fmt.Sprintf("kernels.%s tile: rows=%d cols=%d ldd=%d does not fit len(dst)=%d", k.name, rows, cols, ldd, len(dst)))
	}
	rb, xb := nb*k.wBytes, nb*k.xBytes
	f := k.fast()
	if f == nil || nb == 0 {
		for c := 0; c < cols; c++ {
			xc := x[c*xb : (c+1)*xb]
			for r := 0; r < rows; r++ {
				dst[c*ldd+r] = k.twin(n, w[r*rb:(r+1)*rb], xc)
			}
		}
		return
	}
	// Cache blocking: a block of weight rows (about tileBytes of weights)
	// stays cache-resident while every activation column streams past it, 8
	// or 4 columns at a time where such kernels exist.
	f2, f4, f8 := k.asm2[level], k.asm4[level], k.asm8[level]
	var pad *[]byte    // padded leftover columns, made once for all row blocks
	var out *[]float32 // their 4 result columns for one row block
	rowBlock := max(1, tileBytes/rb)
	for r0 := 0; r0 < rows; r0 += rowBlock {
		r1 := min(rows, r0+rowBlock)
		n := r1 - r0
		c := 0
		if f8 != nil {
			for ; c+8 <= cols; c += 8 {
				f8(nb, &w[r0*rb], &x[c*xb], xb, &dst[c*ldd+r0], ldd, n)
			}
		}
		if f4 != nil {
			for ; c+4 <= cols; c += 4 {
				f4(nb, &w[r0*rb], &x[c*xb], xb, &dst[c*ldd+r0], ldd, n)
			}
		}
		if f2 != nil && cols-c == 2 {
			f2(nb, &w[r0*rb], &x[c*xb], xb, &dst[c*ldd+r0], ldd, n)
			continue
		}
		if f4 != nil && cols-c >= 2 {
			// 3 columns (or 2 without a 2-column kernel) left: one
			// 4-column pass over a padded copy decodes each weight row once
			// instead of 2-3 times (glm-tiny's 8-stream step, experts with
			// 2-3 tokens: the 4-column Q4_K kernel over 256 rows costs 18
			// µs, two single-column passes 23, three 35).
			if pad == nil {
				pad = padColumns(x[c*xb:cols*xb], xb, 4)
				out = tileOut(4 * min(rowBlock, rows))
			}
			o := (*out)[:4*n]
			f4(nb, &w[r0*rb], &(*pad)[0], xb, &o[0], n, n)
			for j := c; j < cols; j++ {
				copy(dst[j*ldd+r0:j*ldd+r1], o[(j-c)*n:(j-c+1)*n])
			}
			continue
		}
		for ; c < cols; c++ {
			for r := r0; r < r1; r++ {
				dst[c*ldd+r] = f(nb, &w[r*rb], &x[c*xb])
			}
		}
	}
	if pad != nil {
		padPool.Put(pad)
		outPool.Put(out)
	}
}

// outPool holds the padded columns' result scratch of tile.
var outPool sync.Pool

// tileOut returns a pooled scratch of at least n floats; return it to
// outPool.
func tileOut(n int) *[]float32 {
	b, _ := outPool.Get().(*[]float32)
	if b == nil || cap(*b) < n {
		nb := make([]float32, n)
		b = &nb
	}
	*b = (*b)[:cap(*b)]
	return b
}

// padPool holds the activation scratch of padColumns.
var padPool sync.Pool

// padColumns returns a pooled buffer of want activation rows of xb bytes:
// the rows of x (fewer than want) followed by copies of its last row, so
// every padded row is a valid activation block whose products are
// discarded. Return it to padPool.
func padColumns(x []byte, xb, want int) *[]byte {
	b, _ := padPool.Get().(*[]byte)
	if b == nil || cap(*b) < want*xb {
		nb := make([]byte, want*xb)
		b = &nb
	}
	*b = (*b)[:want*xb]
	n := copy(*b, x)
	for ; n < want*xb; n += xb {
		copy((*b)[n:n+xb], x[len(x)-xb:])
	}
	return b
}

// tileBytes is the weight bytes per row block of the tile loops: about
// half of a typical 1–2 MiB L2, leaving room for the activation columns.
var tileBytes = 512 << 10 // a variable so tests can force several row blocks
