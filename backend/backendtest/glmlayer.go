package backendtest

import (
	"fmt"
	"math"
	"sort"

	"github.com/glmrun/glmrun/backend"
)

// checkGLMLayer composes the ops into one GLM-4.7-Flash MoE layer (model
// spec §4.2 absorbed-MLA attention with the latent cache, §4.3 sigmoid
// routed experts plus the shared expert) at small sizes with f32 weights,
// the way a forward pass written against backend.Ops runs it: a prefill of
// three tokens, then one decode step that reads the cache the prefill
// wrote. It compares the layer's output with a float64 reference written
// in the HF "expanded" form (keys and values decompressed per head, not
// absorbed), so it also checks that the op composition is the model.
//
// Tolerance: 2e-4·max|x| per output. Every op above is within about
// (k+8)·u of its float32 result with k <= 96 inputs here, and the layer
// chains about 20 of them with gains of order one, so the float32 error is
// of order 20·104·u ≈ 1.2e-4 relative at worst (the CPU backend measures
// 2e-7; the log line says what a backend got). Semantic mistakes move
// outputs by 1e-2 or more: NEOX instead of interleaved RoPE, the
// 1/sqrt(576) scale, softmax routing, a missing renormalisation, the bias
// in the mixing weights.
func checkGLMLayer(h *harness) {
	const (
		d, heads, rq, rkv, nope, rope = 64, 4, 32, 64, 24, 16
		dqk, dv, nExp, k, ff          = nope + rope, 32, 8, 2, 32
		dCache, capacity              = rkv + rope, 8
		eps, base, rscale             = 1e-5, 10000, 1.8
	)
	scale := float32(1 / math.Sqrt(dqk))
	if h.caps.MaxHeads > 0 && heads > h.caps.MaxHeads || !backend.Supports(h.caps.WeightTypes, backend.F32) ||
		!backend.Supports(h.caps.CacheTypes, backend.F32) {
		h.t.Logf("GLM layer: needs f32 weights and an f32 cache")
		return
	}
	// Weights, drawn with standard deviation 1/sqrt(fan-in) so activations
	// stay of order one; norms near 1.
	mat := func(in, out, e int) []float32 { return h.gauss(in*out*e, 1/math.Sqrt(float64(in))) }
	norm := func(n int) []float32 {
		v := h.gauss(n, 0.1)
		for i := range v {
			v[i]++
		}
		return v
	}
	W := map[string][]float32{
		"attn_norm": norm(d), "q_a": mat(d, rq, 1), "q_a_norm": norm(rq), "q_b": mat(rq, heads*dqk, 1),
		"kv_a": mat(d, rkv+rope, 1), "kv_a_norm": norm(rkv), "k_b": mat(nope, rkv, heads), "v_b": mat(rkv, dv, heads),
		"o": mat(heads*dv, d, 1), "ffn_norm": norm(d), "gate_inp": mat(d, nExp, 1), "exp_probs_b": h.gauss(nExp, 0.3),
		"gate_exps": mat(d, ff, nExp), "up_exps": mat(d, ff, nExp), "down_exps": mat(ff, d, nExp),
		"gate_sh": mat(d, ff, 1), "up_sh": mat(d, ff, 1), "down_sh": mat(ff, d, 1),
	}
	shapes := map[string][]int{
		"attn_norm": {d}, "q_a": {d, rq}, "q_a_norm": {rq}, "q_b": {rq, heads * dqk}, "kv_a": {d, rkv + rope},
		"kv_a_norm": {rkv}, "k_b": {nope, rkv, heads}, "v_b": {rkv, dv, heads}, "o": {heads * dv, d}, "ffn_norm": {d},
		"gate_inp": {d, nExp}, "exp_probs_b": {nExp}, "gate_exps": {d, ff, nExp}, "up_exps": {d, ff, nExp},
		"down_exps": {ff, d, nExp}, "gate_sh": {d, ff}, "up_sh": {d, ff}, "down_sh": {ff, d},
	}
	B := map[string]backend.Buffer{}
	for name, v := range W {
		B[name] = h.f32(v, shapes[name]...)
	}
	x0 := h.gauss(d*4, 1)
	ref, ambiguous := glmLayerRef(W, x0, 4)

	cache := h.upload(backend.F32, make([]byte, 4*dCache*capacity), dCache, capacity)
	o := h.o
	step := func(x []float32, p0 int) []float32 {
		n := len(x) / d
		pos, nkv, hid := make([]int32, n), make([]int32, n), make([]int32, heads*n)
		for t := range pos {
			pos[t], nkv[t] = int32(p0+t), int32(p0+t+1)
		}
		for i := range hid {
			hid[i] = int32(i % heads)
		}
		xb, pb, nb, hb := h.f32(x, d, n), h.i32(pos, n), h.i32(nkv, n), h.i32(hid, heads, n)
		buf := func(shape ...int) backend.Buffer { return h.out(backend.F32, shape...) }
		view := func(b backend.Buffer, shape ...int) backend.Buffer {
			v, err := h.b.View(b, 0, shape...)
			h.must(err, fmt.Sprintf("View %v", shape))
			return v
		}
		a, cq, q, ckv := buf(d, n), buf(rq, n), buf(heads*dqk, n), buf(rkv+rope, n)
		lat, kr, qn, qabs, qq := buf(rkv, n), buf(dCache, n), buf(nope, heads, n), buf(rkv, heads, n), buf(dCache, heads, n)
		olat, ov, attn := buf(rkv, heads, n), buf(dv, heads, n), buf(d, n)
		must := func(err error, what string) { h.t.Helper(); h.must(err, "GLM layer: "+what) }
		// Attention (spec §4.2).
		must(o.RMSNorm(a, xb, B["attn_norm"], eps), "attn_norm")
		must(o.MatMul(cq, B["q_a"], a), "q_a")
		must(o.RMSNorm(cq, cq, B["q_a_norm"], eps), "q_a_norm")
		must(o.MatMul(q, B["q_b"], cq), "q_b")
		must(o.MatMul(ckv, B["kv_a"], a), "kv_a")
		q3 := view(q, dqk, heads, n)
		must(o.RoPE(q3, pb, nope, rope, base), "RoPE q_pe")
		must(o.RoPE(view(ckv, rkv+rope, 1, n), pb, rkv, rope, base), "RoPE k_pe")
		must(o.CopyCols(lat, ckv, 0, 0, rkv), "latent")
		must(o.RMSNorm(lat, lat, B["kv_a_norm"], eps), "kv_a_norm")
		must(o.CopyCols(kr, lat, 0, 0, rkv), "K latent")
		must(o.CopyCols(kr, ckv, rkv, rkv, rope), "K rope")
		must(o.CacheStore(cache, kr, pb), "CacheStore")
		must(o.CopyCols(qn, q3, 0, 0, nope), "q_nope")
		must(o.MatMulID(qabs, B["k_b"], qn, hb), "k_b")
		must(o.CopyCols(qq, qabs, 0, 0, rkv), "Q latent")
		must(o.CopyCols(qq, q3, rkv, nope, rope), "Q rope")
		must(o.MLAAttention(olat, qq, cache, nb, scale), "MLAAttention")
		must(o.MatMulID(ov, B["v_b"], olat, hb), "v_b")
		must(o.MatMul(attn, B["o"], view(ov, heads*dv, n)), "attn_output")
		must(o.Add(xb, xb, attn), "residual")
		// MoE (spec §4.3).
		hh, logits := buf(d, n), buf(nExp, n)
		ids, wts := h.out(backend.I32, k, n), buf(k, n)
		g, u, y := buf(ff, k, n), buf(ff, k, n), buf(d, k, n)
		gs, us, ds, f := buf(ff, n), buf(ff, n), buf(d, n), buf(d, n)
		must(o.RMSNorm(hh, xb, B["ffn_norm"], eps), "ffn_norm")
		must(o.MatMul(logits, B["gate_inp"], hh), "gate_inp")
		must(o.Router(ids, wts, logits, B["exp_probs_b"], k, true, rscale), "Router")
		h1 := view(hh, d, 1, n)
		must(o.MatMulID(g, B["gate_exps"], h1, ids), "gate_exps")
		must(o.MatMulID(u, B["up_exps"], h1, ids), "up_exps")
		must(o.SwiGLU(g, g, u), "SwiGLU")
		must(o.MatMulID(y, B["down_exps"], g, ids), "down_exps")
		must(o.MatMul(gs, B["gate_sh"], hh), "gate_shexp")
		must(o.MatMul(us, B["up_sh"], hh), "up_shexp")
		must(o.SwiGLU(gs, gs, us), "SwiGLU shared")
		must(o.MatMul(ds, B["down_sh"], gs), "down_shexp")
		must(o.WeightedSum(f, ds, y, wts), "WeightedSum")
		must(o.Add(xb, xb, f), "residual")
		return h.read(xb)
	}
	got := append(step(x0[:3*d], 0), step(x0[3*d:], 3)...)
	var mx float64
	for _, v := range ref {
		mx = math.Max(mx, math.Abs(v))
	}
	tol := make([]float64, len(ref))
	var worst float64
	for i := range tol {
		tol[i] = 2e-4 * mx
		if ambiguous[i/d] {
			ref[i], got[i] = 0, 0 // routing too close to call in float32
		}
		worst = math.Max(worst, math.Abs(float64(got[i])-ref[i]))
	}
	h.t.Logf("GLM layer: max |error| %.3g, %.3g of max |x| = %.3g", worst, worst/mx, mx)
	h.near("GLM layer output", got, ref, tol)
}

// glmLayerRef is the float64 layer of checkGLMLayer over n tokens at
// positions 0..n-1 (causal), in the expanded form. ambiguous[t] reports a
// token whose k-th and (k+1)-th biased router scores are within 1e-4 (its
// expert choice may legitimately differ in float32).
func glmLayerRef(W map[string][]float32, x0 []float32, n int) (out []float64, ambiguous []bool) {
	const (
		d, heads, rq, rkv, nope, rope = 64, 4, 32, 64, 24, 16
		dqk, dv, nExp, k, ff          = nope + rope, 32, 8, 2, 32
		eps, base, rscale             = 1e-5, 10000, 1.8
	)
	f64 := func(v []float32) []float64 {
		o := make([]float64, len(v))
		for i, x := range v {
			o[i] = float64(x)
		}
		return o
	}
	rms := func(x []float64, w []float32) []float64 {
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		r := 1 / math.Sqrt(ss/float64(len(x))+eps)
		o := make([]float64, len(x))
		for i, v := range x {
			o[i] = v * r * float64(w[i])
		}
		return o
	}
	// mv: y = W·x for W [in, out] (out rows of in), matrix e of a bank.
	mv := func(w []float32, e, in, out int, x []float64) []float64 {
		y := make([]float64, out)
		for r := 0; r < out; r++ {
			row := w[(e*out+r)*in : (e*out+r+1)*in]
			for c, v := range row {
				y[r] += float64(v) * x[c]
			}
		}
		return y
	}
	rot := func(v []float64, p int) {
		for i := 0; i < len(v)/2; i++ {
			s, c := math.Sincos(float64(p) * math.Pow(base, -float64(2*i)/float64(len(v))))
			v[2*i], v[2*i+1] = v[2*i]*c-v[2*i+1]*s, v[2*i]*s+v[2*i+1]*c
		}
	}
	silu := func(x float64) float64 { return x / (1 + math.Exp(-x)) }
	ffn := func(gw, uw, dw []float32, e int, x []float64) []float64 {
		g, u := mv(gw, e, d, ff, x), mv(uw, e, d, ff, x)
		for i := range g {
			g[i] = silu(g[i]) * u[i]
		}
		return mv(dw, e, ff, d, g)
	}
	lats, kpes := make([][]float64, n), make([][]float64, n)
	out, ambiguous = make([]float64, n*d), make([]bool, n)
	for t := 0; t < n; t++ {
		x := f64(x0[t*d : (t+1)*d])
		a := rms(x, W["attn_norm"])
		q := mv(W["q_b"], 0, rq, heads*dqk, rms(mv(W["q_a"], 0, d, rq, a), W["q_a_norm"]))
		ckv := mv(W["kv_a"], 0, d, rkv+rope, a)
		lats[t], kpes[t] = rms(ckv[:rkv], W["kv_a_norm"]), ckv[rkv:]
		rot(kpes[t], t)
		o := make([]float64, heads*dv)
		for hd := 0; hd < heads; hd++ {
			qh := q[hd*dqk : (hd+1)*dqk]
			rot(qh[nope:], t)
			s := make([]float64, t+1)
			mx := math.Inf(-1)
			for j := 0; j <= t; j++ {
				// k_nope = W_kb,h^T·lat: attn_k_b[h] is [rkv][nope].
				var dot float64
				for c := 0; c < nope; c++ {
					var kn float64
					for l := 0; l < rkv; l++ {
						kn += float64(W["k_b"][(hd*rkv+l)*nope+c]) * lats[j][l]
					}
					dot += qh[c] * kn
				}
				for c := 0; c < rope; c++ {
					dot += qh[nope+c] * kpes[j][c]
				}
				s[j] = dot / math.Sqrt(dqk)
				mx = math.Max(mx, s[j])
			}
			var sum float64
			for j := range s {
				s[j] = math.Exp(s[j] - mx)
				sum += s[j]
			}
			for j := range s {
				v := mv(W["v_b"], hd, rkv, dv, lats[j])
				for i := range v {
					o[hd*dv+i] += s[j] / sum * v[i]
				}
			}
		}
		attn := mv(W["o"], 0, heads*dv, d, o)
		for i := range x {
			x[i] += attn[i]
		}
		hh := rms(x, W["ffn_norm"])
		logits := mv(W["gate_inp"], 0, d, nExp, hh)
		sig, sel := make([]float64, nExp), make([]float64, nExp)
		idx := make([]int, nExp)
		for e := range sig {
			sig[e] = 1 / (1 + math.Exp(-logits[e]))
			sel[e], idx[e] = sig[e]+float64(W["exp_probs_b"][e]), e
		}
		sort.Slice(idx, func(i, j int) bool { return sel[idx[i]] > sel[idx[j]] })
		ambiguous[t] = sel[idx[k-1]]-sel[idx[k]] < 1e-4
		var wsum float64
		for _, e := range idx[:k] {
			wsum += sig[e]
		}
		f := ffn(W["gate_sh"], W["up_sh"], W["down_sh"], 0, hh)
		for _, e := range idx[:k] {
			y := ffn(W["gate_exps"], W["up_exps"], W["down_exps"], e, hh)
			for i := range f {
				f[i] += sig[e] / math.Max(wsum, 6.1035e-5) * rscale * y[i]
			}
		}
		for i := range x {
			out[t*d+i] = x[i] + f[i]
		}
	}
	return out, ambiguous
}
