package backendtest

import (
	"fmt"
	"math"

	"github.com/glmrun/glmrun/backend"
)

// checkOrder enqueues a chain of dependent ops with no Sync between them and
// compares the result with the same chain run one op at a time with a Sync
// after each (bit for bit: the same backend runs the same kernels). It also
// checks that an Upload enqueued after an op that reads the buffer does not
// change what the op read.
func checkOrder(h *harness) {
	const d, n = 300, 3
	a0, w := h.gauss(d*n, 1), h.gauss(d, 1)
	chain := func(sync bool) []float32 {
		a, wb := h.f32(a0, d, n), h.f32(w, d)
		b, c := h.out(backend.F32, d, n), h.out(backend.F32, d, n)
		step := func(err error, what string) {
			h.must(err, what)
			if sync {
				h.must(h.b.Sync(), "Sync")
			}
		}
		step(h.o.Add(b, a, a), "Add")       // b = 2a
		step(h.o.SwiGLU(c, b, a), "SwiGLU") // c = silu(b)·a
		step(h.o.RMSNorm(c, c, wb, 1e-5), "RMSNorm")
		step(h.o.Add(a, c, b), "Add in place") // a = c + b
		step(h.o.SwiGLU(b, a, c), "SwiGLU")    // b = silu(a)·c
		return h.read(b)
	}
	want, got := chain(true), chain(false)
	ref := make([]float64, len(want))
	for i, v := range want {
		ref[i] = float64(v)
	}
	h.near("chain without Sync vs with", got, ref, nil)

	a, b := h.f32(a0, d, n), h.f32(a0, d, n)
	out := h.out(backend.F32, d, n)
	h.must(h.o.Add(out, a, b), "Add")
	h.must(h.b.Upload(a, f32Bytes(make([]float32, d*n))), "Upload after Add")
	for i, v := range a0 {
		ref[i] = 2 * float64(v)
	}
	h.near("Add before a later Upload", h.read(out), ref, nil)
}

// checkView: a view aliases its source (an op on the view changes the
// source's elements there and no others), views of I32 buffers serve as
// positions, and views out of range or of block dtypes are refused.
func checkView(h *harness) {
	const d, n = 12, 5
	v0, one := h.gauss(d*n, 1), make([]float32, 2*d)
	for i := range one {
		one[i] = 1
	}
	src, ones := h.f32(v0, d, n), h.f32(one, d, 2)
	view, err := h.b.View(src, 2*d, d, 2)
	h.must(err, "View")
	if dt, sh := view.DType(), view.Shape(); dt != backend.F32 || len(sh) != 2 || sh[0] != d || sh[1] != 2 {
		h.t.Errorf("View: dtype %s shape %v, want f32 [%d 2]", dt, sh, d)
	}
	h.must(h.o.Add(view, view, ones), "Add on a view")
	ref := make([]float64, d*n)
	for i, v := range v0 {
		ref[i] = float64(v)
		if i >= 2*d && i < 4*d {
			ref[i] = float64(v) + 1
		}
	}
	h.near("source after Add on its view", h.read(src), ref, nil)
	view.Free() // frees nothing
	h.near("source after Free of its view", h.read(src), ref, nil)

	pos := h.i32([]int32{7, 3, 5}, 3)
	pv, err := h.b.View(pos, 1, 1)
	h.must(err, "View of I32")
	x := h.gauss(4, 1)
	xb := h.f32(x, 4, 1, 1)
	h.must(h.o.RoPE(xb, pv, 0, 4, 10000), "RoPE with a view of positions")
	got := h.read(xb)
	rref, rtol := make([]float64, 4), make([]float64, 4)
	for i := 0; i < 2; i++ {
		s, c := math.Sincos(3 * math.Pow(10000, -float64(2*i)/4))
		x0, x1 := float64(x[2*i]), float64(x[2*i+1])
		rref[2*i], rref[2*i+1] = x0*c-x1*s, x0*s+x1*c
		rtol[2*i], rtol[2*i+1] = 4*u*(math.Abs(x0)+math.Abs(x1)), 4*u*(math.Abs(x0)+math.Abs(x1))
	}
	h.near("RoPE at the viewed position 3", got, rref, rtol)

	for _, c := range []struct {
		off   int
		shape []int
	}{{d*n - 3, []int{4}}, {-1, []int{2}}, {0, []int{d, n + 1}}, {0, []int{0}}} {
		_, err := h.b.View(src, c.off, c.shape...)
		h.wantErr(fmt.Sprintf("View(offset %d, shape %v) of a [%d %d] buffer", c.off, c.shape, d, n), err, nil)
	}
	if backend.Supports(h.caps.WeightTypes, backend.Q8_0) {
		raw, _ := h.weight(backend.Q8_0, 64, 2, 1)
		q := h.upload(backend.Q8_0, raw, 64, 2)
		_, err := h.b.View(q, 0, 64)
		h.wantErr("View of a q8_0 buffer", err, nil)
	}
}

// foreign is a Buffer no backend allocated.
type foreign struct {
	dt    backend.DType
	shape []int
}

func (f foreign) DType() backend.DType { return f.dt }
func (f foreign) Shape() []int         { return f.shape }
func (f foreign) Free()                {}

// checkErrors: wrong dtypes and shapes give ErrShape, foreign buffers
// ErrForeignBuffer, freed ones ErrFreed, bad allocations and transfer sizes
// errors — all without panicking.
func checkErrors(h *harness) {
	alloc := func(dt backend.DType, shape ...int) backend.Buffer {
		h.t.Helper()
		b, err := h.b.Alloc(dt, shape...)
		h.must(err, fmt.Sprintf("Alloc(%s, %v)", dt, shape))
		h.bufs = append(h.bufs, b)
		return b
	}
	for _, c := range []struct {
		dt    backend.DType
		shape []int
	}{{backend.F32, nil}, {backend.F32, []int{0}}, {backend.F32, []int{4, -1}}, {backend.Q4_K, []int{100, 2}}, {backend.MMFP4, []int{64, 2}}} {
		if b, err := h.b.Alloc(c.dt, c.shape...); err == nil {
			b.Free()
			h.t.Errorf("Alloc(%s, %v) succeeded", c.dt, c.shape)
		}
	}
	x, y, w := alloc(backend.F32, 64, 2), alloc(backend.F32, 8, 2), alloc(backend.F32, 64, 8)
	h.wantErr("Upload of too few bytes", h.b.Upload(x, make([]byte, 10)), nil)
	h.wantErr("Download into too many bytes", h.b.Download(make([]byte, 4*64*2+4), x), nil)
	i32 := alloc(backend.I32, 2)
	f := foreign{backend.F32, []int{64, 2}}
	shape := backend.ErrShape
	for _, c := range []struct {
		what   string
		err    error
		target error
	}{
		{"MatMul x of the wrong width", h.o.MatMul(y, w, alloc(backend.F32, 63, 2)), shape},
		{"MatMul out of the wrong height", h.o.MatMul(alloc(backend.F32, 9, 2), w, x), shape},
		{"MatMul with an I32 x", h.o.MatMul(y, w, alloc(backend.I32, 64, 2)), shape},
		{"MatMul with a nil x", h.o.MatMul(y, w, nil), shape},
		{"MatMul with a bank of weights", h.o.MatMul(y, alloc(backend.F32, 64, 8, 3), x), shape},
		{"MatMul with a foreign x", h.o.MatMul(y, w, f), backend.ErrForeignBuffer},
		{"MatMulID with F32 ids", h.o.MatMulID(alloc(backend.F32, 8, 2, 1), alloc(backend.F32, 64, 8, 3), alloc(backend.F32, 64, 2, 1), alloc(backend.F32, 2, 1)), shape},
		{"MatMulID with x of 2 rows for 3 slots", h.o.MatMulID(alloc(backend.F32, 8, 3, 1), alloc(backend.F32, 64, 8, 3), alloc(backend.F32, 64, 2, 1), alloc(backend.I32, 3, 1)), shape},
		{"Add of different shapes", h.o.Add(x, x, alloc(backend.F32, 64, 3)), shape},
		{"Add into a foreign out", h.o.Add(f, x, x), backend.ErrForeignBuffer},
		{"SwiGLU with an I32 up", h.o.SwiGLU(i32, i32, i32), shape},
		{"RMSNorm with a short weight", h.o.RMSNorm(x, x, alloc(backend.F32, 63), 1e-5), shape},
		{"RoPE with odd dims", h.o.RoPE(x, alloc(backend.I32, 2), 0, 3, 1e4), shape},
		{"RoPE past the head", h.o.RoPE(x, alloc(backend.I32, 2), 40, 32, 1e4), shape},
		{"RoPE with 1 position for 2 tokens", h.o.RoPE(alloc(backend.F32, 64, 1, 2), alloc(backend.I32, 1), 0, 64, 1e4), shape},
		{"Router with k > experts", h.o.Router(alloc(backend.I32, 9, 2), alloc(backend.F32, 9, 2), y, nil, 9, true, 1), shape},
		{"Router with k = 0", h.o.Router(alloc(backend.I32, 1, 2), alloc(backend.F32, 1, 2), y, nil, 0, true, 1), shape},
		{"Router with F32 ids", h.o.Router(alloc(backend.F32, 2, 2), alloc(backend.F32, 2, 2), y, nil, 2, true, 1), shape},
		{"WeightedSum with weights of the wrong shape", h.o.WeightedSum(y, nil, alloc(backend.F32, 8, 3, 2), alloc(backend.F32, 2, 2)), shape},
		{"CacheStore of rows wider than the cache", h.o.CacheStore(alloc(backend.F32, 8, 4), x, alloc(backend.I32, 2)), shape},
		{"CacheStore into an I32 cache", h.o.CacheStore(alloc(backend.I32, 64, 4), x, alloc(backend.I32, 2)), shape},
		{"MLAAttention with Dv > D", h.o.MLAAttention(alloc(backend.F32, 65, 1, 2), alloc(backend.F32, 64, 1, 2), alloc(backend.F32, 64, 4), i32, 1), shape},
		{"MLAAttention with a cache of other width", h.o.MLAAttention(alloc(backend.F32, 32, 1, 2), alloc(backend.F32, 64, 1, 2), alloc(backend.F32, 60, 4), i32, 1), shape},
		{"Argmax into F32", h.o.Argmax(alloc(backend.F32, 2), x), shape},
		{"CopyCols past the source row", h.o.CopyCols(y, x, 0, 60, 8), shape},
		{"CopyCols past the destination row", h.o.CopyCols(y, x, 1, 0, 8), shape},
		{"CopyCols between different row counts", h.o.CopyCols(alloc(backend.F32, 8, 3), x, 0, 0, 8), shape},
		{"Embed with F32 tokens", h.o.Embed(x, alloc(backend.F32, 64, 10), alloc(backend.F32, 2)), shape},
		{"Upload into a foreign buffer", h.b.Upload(f, make([]byte, 4*64*2)), backend.ErrForeignBuffer},
		{"Download from a foreign buffer", h.b.Download(make([]byte, 4*64*2), f), backend.ErrForeignBuffer},
	} {
		h.wantErr(c.what, c.err, c.target)
	}
	freed, err := h.b.Alloc(backend.F32, 64, 2)
	h.must(err, "Alloc")
	freed.Free()
	freed.Free() // idempotent
	h.wantErr("Add with a freed buffer", h.o.Add(x, freed, x), backend.ErrFreed)
	h.wantErr("Download of a freed buffer", h.b.Download(make([]byte, 4*64*2), freed), backend.ErrFreed)
}
