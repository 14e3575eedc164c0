package backendtest

import (
	"math"
	"sort"

	"github.com/glmrun/glmrun/backend"
)

// checks is the suite, in the order RunAll runs it.
var checks = []check{
	{"Add", checkAdd},
	{"SwiGLU", checkSwiGLU},
	{"RMSNorm", checkRMSNorm},
	{"RoPE", checkRoPE},
	{"Router", checkRouter},
	{"WeightedSum", checkWeightedSum},
	{"Argmax", checkArgmax},
	{"CopyCols", checkCopyCols},
	{"Embed", checkEmbed},
	{"MatMul", checkMatMul},
	{"MatMulID", checkMatMulID},
	{"CacheStore", checkCacheStore},
	{"MLAAttention", checkMLAAttention},
	{"GLMLayer", checkGLMLayer},
	{"Order", checkOrder},
	{"View", checkView},
	{"Errors", checkErrors},
}

// Tolerances below are in units of u = 2^-24, the float32 unit roundoff: a
// result computed in float32 from exact inputs with j roundings in sequence
// is within about j·u relative of the exact value (the sequential summation
// bound, |err| <= (n-1)·u·Σ|terms| for n terms, covers any order of
// summation, tree reductions included).

// checkAdd: out = a + b is one rounding of the exact sum, so the float32
// result must equal float32(a+b) computed in float64 (exact comparison);
// also in place (out aliasing a).
func checkAdd(h *harness) {
	for _, sh := range [][]int{{1}, {7, 3}, {2048, 2}, {1000, 3, 2}} {
		n := backend.Elems(sh)
		a, b := h.gauss(n, 1), h.gauss(n, 1)
		ref := make([]float64, n)
		for i := range ref {
			ref[i] = float64(a[i]) + float64(b[i])
		}
		ab, bb, ob := h.f32(a, sh...), h.f32(b, sh...), h.out(backend.F32, sh...)
		h.must(h.o.Add(ob, ab, bb), "Add")
		h.near("Add", h.read(ob), ref, nil)
		h.must(h.o.Add(ab, ab, bb), "Add in place")
		h.near("Add in place", h.read(ab), ref, nil)
	}
}

// checkSwiGLU: silu(g)·up with g = N(0, 3). exp, the division and two
// products each lose a few u (expf within 2 ulp; fast-math __expf within
// 2+1.16|g| ulp, about 14 ulp at |g| = 10), so |err| <= 32·u·|ref|.
func checkSwiGLU(h *harness) {
	for _, n := range []int{1, 33, 4096} {
		g, up := h.gauss(n, 3), h.gauss(n, 1)
		ref, tol := make([]float64, n), make([]float64, n)
		for i := range ref {
			x := float64(g[i])
			ref[i] = x / (1 + math.Exp(-x)) * float64(up[i])
			tol[i] = 32 * u * math.Abs(ref[i])
		}
		gb, ub, ob := h.f32(g, n), h.f32(up, n), h.out(backend.F32, n)
		h.must(h.o.SwiGLU(ob, gb, ub), "SwiGLU")
		h.near("SwiGLU", h.read(ob), ref, tol)
		h.must(h.o.SwiGLU(gb, gb, ub), "SwiGLU in place")
		h.near("SwiGLU in place", h.read(gb), ref, tol)
	}
}

// checkRMSNorm: the float32 sum of d squares is within (d-1)·u relative
// (all terms positive), the mean, eps, sqrt/rsqrt and two products add a
// few u more: |err| <= (d+8)·u·|ref|.
func checkRMSNorm(h *harness) {
	for _, c := range []struct{ d, n int }{{2048, 1}, {512, 3}, {7, 5}, {576, 2}} {
		x, w := h.gauss(c.d*c.n, 2), h.gauss(c.d, 1)
		const eps = 1e-5
		ref, tol := make([]float64, c.d*c.n), make([]float64, c.d*c.n)
		for t := 0; t < c.n; t++ {
			var ss float64
			for _, v := range x[t*c.d : (t+1)*c.d] {
				ss += float64(v) * float64(v)
			}
			r := 1 / math.Sqrt(ss/float64(c.d)+eps)
			for i := 0; i < c.d; i++ {
				j := t*c.d + i
				ref[j] = float64(x[j]) * r * float64(w[i])
				tol[j] = float64(c.d+8) * u * math.Abs(ref[j])
			}
		}
		xb, wb, ob := h.f32(x, c.d, c.n), h.f32(w, c.d), h.out(backend.F32, c.d, c.n)
		h.must(h.o.RMSNorm(ob, xb, wb, eps), "RMSNorm")
		h.near("RMSNorm", h.read(ob), ref, tol)
		h.must(h.o.RMSNorm(xb, xb, wb, eps), "RMSNorm in place")
		h.near("RMSNorm in place", h.read(xb), ref, tol)
	}
}

// checkRoPE: the reference rotates in float64 with θ = pos·base^(-2i/dims)
// in float64. A backend computing cos/sin to float32 (or in double) and the
// rotation in float32 is within 4·u·(|x0|+|x1|) of it (two products, one
// sum, plus the rounding of cos and sin). Positions stay below 2^17 so a
// float64 angle is exact to ~1e-11 rad; a float32 angle would not be, and
// is not what llama.cpp's NORM RoPE does either.
func checkRoPE(h *harness) {
	for _, c := range []struct{ hd, heads, n, off, dims int }{
		{256, 20, 1, 192, 64}, // q_pe of GLM-4.7-Flash
		{576, 1, 3, 512, 64},  // k_pe in the kv_a output
		{64, 3, 5, 0, 64},
		{10, 2, 2, 4, 6},
	} {
		total := c.hd * c.heads * c.n
		x := h.gauss(total, 1)
		pos := make([]int32, c.n)
		for t := range pos {
			pos[t] = int32(h.r.IntN(1 << 17))
		}
		pos[0] = 0
		if c.n > 1 {
			pos[1] = 1
		}
		const base = 1e6
		ref, tol := make([]float64, total), make([]float64, total)
		for i, v := range x {
			ref[i] = float64(v)
		}
		for t := 0; t < c.n; t++ {
			for hh := 0; hh < c.heads; hh++ {
				at := (t*c.heads+hh)*c.hd + c.off
				for i := 0; i < c.dims/2; i++ {
					theta := float64(pos[t]) * math.Pow(base, -float64(2*i)/float64(c.dims))
					s, co := math.Sincos(theta)
					x0, x1 := float64(x[at+2*i]), float64(x[at+2*i+1])
					ref[at+2*i], ref[at+2*i+1] = x0*co-x1*s, x0*s+x1*co
					tol[at+2*i] = 4 * u * (math.Abs(x0) + math.Abs(x1))
					tol[at+2*i+1] = tol[at+2*i]
				}
			}
		}
		xb, pb := h.f32(x, c.hd, c.heads, c.n), h.i32(pos, c.n)
		h.must(h.o.RoPE(xb, pb, c.off, c.dims, base), "RoPE")
		h.near("RoPE", h.read(xb), ref, tol)
	}
}

// checkRouter: scores are sigmoid in float32 (a few u), so two experts whose
// biased float64 scores lie within 1e-5 may come out in either order: ids
// are checked against the float64 ranking with that slack (distinct, in
// range, each one's score at least the reference k-th score minus 1e-5,
// in descending order up to 1e-5), and weights against the float64 weights
// of the ids returned, within (2k+16)·u·|w| + 1e-7: each sigmoid is within
// 4u (exp within 2 ulp, a sum and a division), the k-term sum of them
// within (k+3)u, and the division by it and the scale add 3u.
func checkRouter(h *harness) {
	for _, c := range []struct {
		e, k, n int
		norm    bool
		bias    bool
		scale   float32
	}{
		{64, 4, 1, true, true, 1.8}, // GLM-4.7-Flash routing
		{64, 4, 7, true, true, 1.8},
		{5, 5, 2, false, false, 1},
		{33, 1, 3, true, true, 2.5},
		{160, 8, 2, false, true, 1},
	} {
		if (h.caps.MaxRouterExperts > 0 && c.e > h.caps.MaxRouterExperts) || (h.caps.MaxRouterK > 0 && c.k > h.caps.MaxRouterK) {
			continue
		}
		logits := h.gauss(c.e*c.n, 2)
		var bias []float32
		var bb backend.Buffer
		if c.bias {
			bias = h.gauss(c.e, 0.3)
			bb = h.f32(bias, c.e)
		}
		lb := h.f32(logits, c.e, c.n)
		ib, wb := h.out(backend.I32, c.k, c.n), h.out(backend.F32, c.k, c.n)
		h.must(h.o.Router(ib, wb, lb, bb, c.k, c.norm, c.scale), "Router")
		ids, ws := h.readI32(ib), h.read(wb)
		for t := 0; t < c.n; t++ {
			s, sel := make([]float64, c.e), make([]float64, c.e)
			for i := range s {
				s[i] = 1 / (1 + math.Exp(-float64(logits[t*c.e+i])))
				sel[i] = s[i]
				if c.bias {
					sel[i] += float64(bias[i])
				}
			}
			sorted := append([]float64(nil), sel...)
			sort.Sort(sort.Reverse(sort.Float64Slice(sorted)))
			kth := sorted[c.k-1]
			seen := map[int32]bool{}
			var sum float64
			got := ids[t*c.k : (t+1)*c.k]
			for j, id := range got {
				if id < 0 || int(id) >= c.e || seen[id] {
					h.t.Fatalf("Router e=%d k=%d token %d: ids %v: bad or repeated id", c.e, c.k, t, got)
				}
				seen[id] = true
				if sel[id] < kth-1e-5 {
					h.t.Errorf("Router e=%d k=%d token %d: id %d (score %.7g) is not among the top %d (k-th score %.7g)", c.e, c.k, t, id, sel[id], c.k, kth)
				}
				if j > 0 && sel[id] > sel[got[j-1]]+1e-5 {
					h.t.Errorf("Router e=%d k=%d token %d: ids %v not in descending score", c.e, c.k, t, got)
				}
				sum += s[id]
			}
			ref, tol := make([]float64, c.k), make([]float64, c.k)
			for j, id := range got {
				ref[j] = s[id] * float64(c.scale)
				if c.norm {
					ref[j] /= math.Max(sum, 6.1035e-5)
				}
				tol[j] = float64(2*c.k+16)*u*math.Abs(ref[j]) + 1e-7
			}
			h.near("Router weights", ws[t*c.k:(t+1)*c.k], ref, tol)
		}
	}
}

// checkWeightedSum: base + Σ_j w_j·y_j over s slots is s products and s sums
// in float32: |err| <= (2s+2)·u·(|base| + Σ|w_j·y_j|). Also with no base
// and with out aliasing base.
func checkWeightedSum(h *harness) {
	for _, c := range []struct {
		d, s, n int
		base    bool
	}{{2048, 4, 1, true}, {100, 4, 3, false}, {33, 1, 2, true}, {7, 9, 4, true}} {
		y, w := h.gauss(c.d*c.s*c.n, 1), h.gauss(c.s*c.n, 1)
		var base []float32
		var bb backend.Buffer
		if c.base {
			base = h.gauss(c.d*c.n, 1)
			bb = h.f32(base, c.d, c.n)
		}
		ref, tol := make([]float64, c.d*c.n), make([]float64, c.d*c.n)
		for t := 0; t < c.n; t++ {
			for i := 0; i < c.d; i++ {
				var acc, mag float64
				if c.base {
					acc, mag = float64(base[t*c.d+i]), math.Abs(float64(base[t*c.d+i]))
				}
				for j := 0; j < c.s; j++ {
					p := float64(w[t*c.s+j]) * float64(y[(t*c.s+j)*c.d+i])
					acc += p
					mag += math.Abs(p)
				}
				ref[t*c.d+i], tol[t*c.d+i] = acc, float64(2*c.s+2)*u*mag
			}
		}
		yb, wb, ob := h.f32(y, c.d, c.s, c.n), h.f32(w, c.s, c.n), h.out(backend.F32, c.d, c.n)
		h.must(h.o.WeightedSum(ob, bb, yb, wb), "WeightedSum")
		h.near("WeightedSum", h.read(ob), ref, tol)
		if c.base {
			h.must(h.o.WeightedSum(bb, bb, yb, wb), "WeightedSum in place")
			h.near("WeightedSum in place", h.read(bb), ref, tol)
		}
	}
}

// checkArgmax: exact. Rows with a tie for the maximum (lowest index wins),
// NaN entries (ignored), an all-NaN row (-1) and one long row (a vocabulary
// of 154880 values).
func checkArgmax(h *harness) {
	for _, c := range []struct{ v, n int }{{1000, 5}, {1, 2}, {154880, 1}, {33, 4}} {
		x := h.gauss(c.v*c.n, 1)
		nan := float32(math.NaN())
		if c.v > 2 && c.n >= 4 {
			row := x[:c.v]
			i, j := h.r.IntN(c.v/2), c.v/2+h.r.IntN(c.v/2)
			row[i], row[j] = 100, 100 // tie: i wins
			row = x[c.v : 2*c.v]
			for i := range row {
				if i%3 != 1 {
					row[i] = nan
				}
			}
			row = x[2*c.v : 3*c.v]
			for i := range row {
				row[i] = nan
			}
			x[3*c.v] = nan
		}
		ref := make([]float64, c.n)
		for t := 0; t < c.n; t++ {
			best := -1
			for i, a := range x[t*c.v : (t+1)*c.v] {
				if !math.IsNaN(float64(a)) && (best < 0 || a > x[t*c.v+best]) {
					best = i
				}
			}
			ref[t] = float64(best)
		}
		xb, ob := h.f32(x, c.v, c.n), h.out(backend.I32, c.n)
		h.must(h.o.Argmax(ob, xb), "Argmax")
		got := h.readI32(ob)
		gf := make([]float32, len(got))
		for i, g := range got {
			gf[i] = float32(g)
		}
		h.near("Argmax", gf, ref, nil)
	}
}

// checkCopyCols: a copy is exact; columns of dst outside the copied range
// keep their values. Shapes: the q_nope cut (192 of each 256-value head),
// the latent cut of kv_a's output, joining [q_abs ; q_pe], odd sizes.
func checkCopyCols(h *harness) {
	for _, c := range []struct{ wd, ws, rows, dstCol, srcCol, cols int }{
		{192, 256, 20 * 3, 0, 0, 192},
		{512, 576, 2, 0, 0, 512},
		{576, 256, 20, 512, 192, 64},
		{7, 5, 9, 3, 1, 4},
		{1, 1, 70000, 0, 0, 1},
	} {
		src, dst := h.gauss(c.ws*c.rows, 1), h.gauss(c.wd*c.rows, 1)
		ref := make([]float64, len(dst))
		for i, v := range dst {
			ref[i] = float64(v)
		}
		for r := 0; r < c.rows; r++ {
			for i := 0; i < c.cols; i++ {
				ref[r*c.wd+c.dstCol+i] = float64(src[r*c.ws+c.srcCol+i])
			}
		}
		sb, db := h.f32(src, c.ws, c.rows), h.f32(dst, c.wd, c.rows)
		h.must(h.o.CopyCols(db, sb, c.dstCol, c.srcCol, c.cols), "CopyCols")
		h.near("CopyCols", h.read(db), ref, nil)
	}
}
