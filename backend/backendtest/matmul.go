package backendtest

import (
	"errors"
	"fmt"
	"math"

	"github.com/glmrun/glmrun/backend"
	"github.com/glmrun/glmrun/backend/quant"
)

// weightTypes are the weight dtypes the suite knows how to make: those of
// real GLM-4.7-Flash files (Q4_K_M: q4_K, q5_0, q6_K, f32; Q8_0; BF16), F16,
// and this project's MMFP4. A dtype a backend lists in WeightTypes is
// checked against the reference; one it does not list must give
// ErrNotImplemented.
var weightTypes = []backend.DType{
	backend.F32, backend.F16, backend.BF16, backend.Q8_0, backend.Q5_0, backend.Q4_K, backend.Q6_K, backend.MMFP4,
}

// weight returns the raw GGUF bytes of e matrices of m rows by k columns of
// dt, quantised from normal values, and their exact dequantisation
// ([e][m][k], the reference weights). Each matrix is quantised and
// dequantised as one slab, which is right for every type (MMFP4 is laid out
// per slab).
func (h *harness) weight(dt backend.DType, k, m, e int) ([]byte, []float64) {
	h.t.Helper()
	slab, err := backend.ByteSize(dt, []int{k, m})
	h.must(err, "weight size")
	raw := make([]byte, e*slab)
	deq := make([]float64, e*m*k)
	tmp := make([]float32, m*k)
	for x := 0; x < e; x++ {
		src := h.gauss(m*k, 1)
		h.must(quant.Quantize(dt, src, raw[x*slab:(x+1)*slab]), fmt.Sprintf("quantise %s", dt))
		h.must(quant.Dequantize(dt, raw[x*slab:(x+1)*slab], tmp), fmt.Sprintf("dequantise %s", dt))
		for i, v := range tmp {
			deq[x*m*k+i] = float64(v)
		}
	}
	return raw, deq
}

// dotTol returns the reference w·x (float64) and the tolerance of a backend
// computing it from the same weight bytes.
//
// Exact arithmetic (Capabilities.QuantizedActivations false): the weights
// dequantise exactly to float32 and the k products are summed in float32,
// so |err| <= (k+4)·u·Σ|w_i·x_i| (sequential summation bound).
//
// Quantised activations (the fast paths: Q8_1 on CUDA, Q8_K/Q8_0 on the
// CPU, f16 in the tensor-core GEMM): every activation is rounded to a grid
// of step d = amax_b/127 (amax_b: the largest |x| of its block, at most
// the row's amax; f16 rounding is finer, |err| <= |x|·2^-11 < amax/254), so
// its error e_i is within ±d/2 with d <= amax_row/126 (the slack covers the
// f16 rounding of d in Q8_0/Q8_1). The error of the product, Σ w_i·e_i, is
// a sum of independent terms each in a range of width |w_i|·d, so by
// Hoeffding's inequality P(|Σ w_i e_i| > 4·d·sqrt(Σ w_i²)) <= 2·e^-32 per
// output: the term 4·(amax/126)·‖w‖₂. Deterministic extras: f16 storage of
// the block scale and of the block sum that the Q4_K/Q5_0 kernels multiply
// by their offsets (dmin·m, 16·d, at most max|w|), each 2^-11 relative,
// and the f16 rounding of dequantised weights inside a GEMM tile (2^-11
// relative): 2^-10·(max|w|·Σ|x| + Σ|w_i x_i|); plus the float32 summation
// bound above.
func (h *harness) dotTol(w []float64, x []float32) (ref, tol float64) {
	var s1, s2, wmax, xmax, x1 float64
	for i, wv := range w {
		xv := float64(x[i])
		ref += wv * xv
		s1 += math.Abs(wv * xv)
		s2 += wv * wv
		wmax = math.Max(wmax, math.Abs(wv))
		xmax = math.Max(xmax, math.Abs(xv))
		x1 += math.Abs(xv)
	}
	tol = float64(len(w)+4) * u * s1
	if h.caps.QuantizedActivations {
		tol += 4*xmax/126*math.Sqrt(s2) + (wmax*x1+s1)/1024
	}
	return ref, tol
}

// wantNotImplemented checks that op, run on a dtype the backend does not
// list, fails with ErrNotImplemented (Alloc may refuse the dtype already).
func (h *harness) wantNotImplemented(what string, dt backend.DType, k, m int, op func(w backend.Buffer) error) {
	h.t.Helper()
	raw, _ := h.weight(dt, k, m, 1)
	w, err := h.b.Alloc(dt, k, m)
	if err != nil {
		return
	}
	h.bufs = append(h.bufs, w)
	if err := h.b.Upload(w, raw); err != nil {
		return
	}
	h.wantErr(fmt.Sprintf("%s with an unlisted %s weight", what, dt), op(w), backend.ErrNotImplemented)
}

// ran reports whether a product of m output rows was enqueued. Every
// listed weight dtype must run the shapes of real models (m a multiple of
// 64); other shapes may be refused with ErrNotImplemented where a kernel's
// alignment cannot take them (CUDA's MMFP4 needs slabs of a multiple of 16
// bytes), which is logged. Any other error fails the check.
func (h *harness) ran(what string, err error, m int) bool {
	h.t.Helper()
	if err != nil && m%64 != 0 && errors.Is(err, backend.ErrNotImplemented) {
		h.t.Logf("%s: not implemented for this shape: %v", what, err)
		return false
	}
	h.must(err, what)
	return true
}

// checkMatMul runs y = W·x for every weight dtype over shapes with odd
// output counts, one token (matrix-vector kernels) and many (GEMM kernels).
func checkMatMul(h *harness) {
	shapes := []struct{ k, m, n int }{{512, 64, 1}, {256, 128, 17}, {256, 1, 1}, {256, 67, 3}, {512, 129, 17}, {768, 33, 1}, {256, 70, 65}}
	for _, dt := range weightTypes {
		if !backend.Supports(h.caps.WeightTypes, dt) {
			x := h.f32(h.gauss(256, 1), 256, 1)
			y := h.out(backend.F32, 8, 1)
			h.wantNotImplemented("MatMul", dt, 256, 8, func(w backend.Buffer) error { return h.o.MatMul(y, w, x) })
			continue
		}
		for _, c := range shapes {
			raw, wd := h.weight(dt, c.k, c.m, 1)
			x := h.gauss(c.k*c.n, 1)
			ref, tol := make([]float64, c.m*c.n), make([]float64, c.m*c.n)
			for t := 0; t < c.n; t++ {
				for r := 0; r < c.m; r++ {
					ref[t*c.m+r], tol[t*c.m+r] = h.dotTol(wd[r*c.k:(r+1)*c.k], x[t*c.k:(t+1)*c.k])
				}
			}
			wb, xb, yb := h.upload(dt, raw, c.k, c.m), h.f32(x, c.k, c.n), h.out(backend.F32, c.m, c.n)
			what := fmt.Sprintf("MatMul %s k=%d m=%d n=%d", dt, c.k, c.m, c.n)
			if h.ran(what, h.o.MatMul(yb, wb, xb), c.m) {
				h.near(what, h.read(yb), ref, tol)
			}
		}
	}
}

// checkMatMulID runs the expert product for every weight dtype: several
// slots per token, several tokens, x shared by a token's slots or one row
// per slot, and ids out of range (-1, E, a large one), whose slots must come
// out NaN while the others are right.
func checkMatMulID(h *harness) {
	shapes := []struct {
		k, m, e, s, n int
		shared        bool
	}{{256, 64, 4, 4, 3, false}, {256, 67, 4, 3, 2, false}, {512, 33, 5, 4, 5, true}, {256, 1, 2, 1, 1, false}, {256, 40, 3, 2, 20, true}}
	for _, dt := range weightTypes {
		if !backend.Supports(h.caps.WeightTypes, dt) {
			x := h.f32(h.gauss(256, 1), 256, 1, 1)
			ids := h.i32([]int32{0}, 1, 1)
			y := h.out(backend.F32, 8, 1, 1)
			h.wantNotImplemented("MatMulID", dt, 256, 8, func(w backend.Buffer) error { return h.o.MatMulID(y, w, x, ids) })
			continue
		}
		for _, c := range shapes {
			raw, wd := h.weight(dt, c.k, c.m, c.e)
			xs := c.s
			if c.shared {
				xs = 1
			}
			x := h.gauss(c.k*xs*c.n, 1)
			ids := make([]int32, c.s*c.n)
			for i := range ids {
				ids[i] = int32(h.r.IntN(c.e))
			}
			if len(ids) >= 4 {
				ids[1], ids[len(ids)-1] = -1, int32(c.e)
				ids[len(ids)/2] = 1 << 30
			}
			ref, tol := make([]float64, c.m*c.s*c.n), make([]float64, c.m*c.s*c.n)
			for t := 0; t < c.n; t++ {
				for j := 0; j < c.s; j++ {
					slot := t*c.s + j
					xi := slot
					if c.shared {
						xi = t
					}
					xr := x[xi*c.k : (xi+1)*c.k]
					e := int(ids[slot])
					for r := 0; r < c.m; r++ {
						if e < 0 || e >= c.e {
							ref[slot*c.m+r] = math.NaN()
							continue
						}
						wr := wd[(e*c.m+r)*c.k : (e*c.m+r+1)*c.k]
						ref[slot*c.m+r], tol[slot*c.m+r] = h.dotTol(wr, xr)
					}
				}
			}
			wb := h.upload(dt, raw, c.k, c.m, c.e)
			xb, ib, yb := h.f32(x, c.k, xs, c.n), h.i32(ids, c.s, c.n), h.out(backend.F32, c.m, c.s, c.n)
			what := fmt.Sprintf("MatMulID %s k=%d m=%d e=%d s=%d n=%d shared=%v", dt, c.k, c.m, c.e, c.s, c.n, c.shared)
			if h.ran(what, h.o.MatMulID(yb, wb, xb, ib), c.m) {
				h.near(what, h.read(yb), ref, tol)
			}
		}
	}
}

// checkEmbed gathers table rows by token id for every dtype: dequantisation
// is exact (backend/quant is bit-exact with ggml), so the rows must equal
// the reference bit for bit; ids out of range give NaN rows.
func checkEmbed(h *harness) {
	const d, vocab = 256, 37
	tokens := []int32{0, 36, 5, -1, 37, 12, 5}
	for _, dt := range weightTypes {
		if !backend.Supports(h.caps.EmbedTypes, dt) {
			tb := h.i32([]int32{0}, 1)
			y := h.out(backend.F32, 256, 1)
			h.wantNotImplemented("Embed", dt, 256, 8, func(w backend.Buffer) error { return h.o.Embed(y, w, tb) })
			continue
		}
		raw, deq := h.weight(dt, d, vocab, 1)
		ref := make([]float64, d*len(tokens))
		for t, id := range tokens {
			for i := 0; i < d; i++ {
				if id < 0 || id >= vocab {
					ref[t*d+i] = math.NaN()
				} else {
					ref[t*d+i] = deq[int(id)*d+i]
				}
			}
		}
		tab, tb, y := h.upload(dt, raw, d, vocab), h.i32(tokens, len(tokens)), h.out(backend.F32, d, len(tokens))
		what := fmt.Sprintf("Embed %s", dt)
		h.must(h.o.Embed(y, tab, tb), what)
		h.near(what, h.read(y), ref, nil)
	}
}
