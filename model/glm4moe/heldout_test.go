package glm4moe_test

import (
	"math"
	"sort"
	"testing"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/model/glm4moe"
)

// naiveForward is an independent float64 reference of the model in HF's
// non-absorbed ("expand") MLA form: per head k = [W_UK·kv_lat ; k_pe] and
// v = W_UV·kv_lat, full causal attention recomputed for every position. It
// returns the logits of every token, [n][vocab].
func naiveForward(sm *synthModel, toks []int32) [][]float64 {
	s := sm.spec
	W := sm.deq
	H, qk, kvl := s.heads, s.nope+s.rope, s.kvLora
	mv := func(w []float64, cols, rows int, x []float64) []float64 {
		y := make([]float64, rows)
		for r := range y {
			var acc float64
			for c := 0; c < cols; c++ {
				acc += w[r*cols+c] * x[c]
			}
			y[r] = acc
		}
		return y
	}
	rms := func(x, w []float64) []float64 {
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		sc := 1 / math.Sqrt(ss/float64(len(x))+float64(s.eps))
		y := make([]float64, len(x))
		for i := range x {
			y[i] = x[i] * sc * w[i]
		}
		return y
	}
	rope := func(x []float64, pos int) []float64 {
		y := append([]float64(nil), x...)
		for i := 0; i < len(x); i += 2 {
			th := float64(pos) * math.Pow(float64(s.base), -float64(i)/float64(len(x)))
			c, sn := math.Cos(th), math.Sin(th)
			y[i] = x[i]*c - x[i+1]*sn
			y[i+1] = x[i]*sn + x[i+1]*c
		}
		return y
	}
	silu := func(v float64) float64 { return v / (1 + math.Exp(-v)) }
	mlp := func(g, u, dn []float64, ff int, x []float64) []float64 {
		gv, uv := mv(g, s.d, ff, x), mv(u, s.d, ff, x)
		for i := range gv {
			gv[i] = silu(gv[i]) * uv[i]
		}
		return mv(dn, ff, s.d, gv)
	}
	n := len(toks)
	x := make([][]float64, n)
	for i, t := range toks {
		x[i] = append([]float64(nil), W["token_embd.weight"][int(t)*s.d:(int(t)+1)*s.d]...)
	}
	name := func(l int, suffix string) string { return "blk." + itoa(l) + "." + suffix }
	for l := 0; l < s.layers; l++ {
		kvlat := make([][]float64, n)
		kpe := make([][]float64, n)
		qn := make([][][]float64, n)
		qpe := make([][][]float64, n)
		for i := 0; i < n; i++ {
			a := rms(x[i], W[name(l, "attn_norm.weight")])
			var q []float64
			if s.qLora > 0 {
				cq := rms(mv(W[name(l, "attn_q_a.weight")], s.d, s.qLora, a), W[name(l, "attn_q_a_norm.weight")])
				q = mv(W[name(l, "attn_q_b.weight")], s.qLora, H*qk, cq)
			} else {
				q = mv(W[name(l, "attn_q.weight")], s.d, H*qk, a)
			}
			ckv := mv(W[name(l, "attn_kv_a_mqa.weight")], s.d, kvl+s.rope, a)
			kvlat[i] = rms(ckv[:kvl], W[name(l, "attn_kv_a_norm.weight")])
			kpe[i] = rope(ckv[kvl:], i)
			for h := 0; h < H; h++ {
				qn[i] = append(qn[i], q[h*qk:h*qk+s.nope])
				qpe[i] = append(qpe[i], rope(q[h*qk+s.nope:(h+1)*qk], i))
			}
		}
		kb, vb := W[name(l, "attn_k_b.weight")], W[name(l, "attn_v_b.weight")]
		// Expand: k_nope[j][h][dd] = Σ_r kb[h][r][dd]·kv_lat[j][r];
		// v[j][h][e] = Σ_r vb[h][e][r]·kv_lat[j][r].
		knope := make([][][]float64, n)
		vv := make([][][]float64, n)
		for j := 0; j < n; j++ {
			for h := 0; h < H; h++ {
				kn := make([]float64, s.nope)
				for dd := range kn {
					for r := 0; r < kvl; r++ {
						kn[dd] += kb[(h*kvl+r)*s.nope+dd] * kvlat[j][r]
					}
				}
				v := make([]float64, s.dv)
				for e := range v {
					for r := 0; r < kvl; r++ {
						v[e] += vb[(h*s.dv+e)*kvl+r] * kvlat[j][r]
					}
				}
				knope[j] = append(knope[j], kn)
				vv[j] = append(vv[j], v)
			}
		}
		for i := 0; i < n; i++ {
			o := make([]float64, H*s.dv)
			for h := 0; h < H; h++ {
				sc := make([]float64, i+1)
				mx := math.Inf(-1)
				for j := 0; j <= i; j++ {
					var dot float64
					for dd := 0; dd < s.nope; dd++ {
						dot += qn[i][h][dd] * knope[j][h][dd]
					}
					for dd := 0; dd < s.rope; dd++ {
						dot += qpe[i][h][dd] * kpe[j][dd]
					}
					sc[j] = dot / math.Sqrt(float64(qk))
					mx = math.Max(mx, sc[j])
				}
				var sum float64
				for j := range sc {
					sc[j] = math.Exp(sc[j] - mx)
					sum += sc[j]
				}
				for j := range sc {
					for e := 0; e < s.dv; e++ {
						o[h*s.dv+e] += sc[j] / sum * vv[j][h][e]
					}
				}
			}
			attn := mv(W[name(l, "attn_output.weight")], H*s.dv, s.d, o)
			for k := range x[i] {
				x[i][k] += attn[k]
			}
		}
		for i := 0; i < n; i++ {
			hh := rms(x[i], W[name(l, "ffn_norm.weight")])
			var f []float64
			if l < s.dense {
				f = mlp(W[name(l, "ffn_gate.weight")], W[name(l, "ffn_up.weight")], W[name(l, "ffn_down.weight")], s.ff, hh)
			} else {
				lg := mv(W[name(l, "ffn_gate_inp.weight")], s.d, s.nExp, hh)
				p := make([]float64, s.nExp)
				if s.gating == 1 {
					mx := math.Inf(-1)
					for _, v := range lg {
						mx = math.Max(mx, v)
					}
					var sum float64
					for e, v := range lg {
						p[e] = math.Exp(v - mx)
						sum += p[e]
					}
					for e := range p {
						p[e] /= sum
					}
				} else {
					for e, v := range lg {
						p[e] = 1 / (1 + math.Exp(-v))
					}
				}
				sel := append([]float64(nil), p...)
				if s.bias {
					for e := range sel {
						sel[e] += W[name(l, "exp_probs_b.bias")][e]
					}
				}
				idx := make([]int, s.nExp)
				for e := range idx {
					idx[e] = e
				}
				sort.Slice(idx, func(a, b int) bool { return sel[idx[a]] > sel[idx[b]] })
				top := idx[:s.nUsed]
				var wsum float64
				for _, e := range top {
					wsum += p[e]
				}
				f = make([]float64, s.d)
				ffE := s.ffExp
				for _, e := range top {
					w := p[e] * float64(s.scale)
					if s.norm {
						w /= wsum
					}
					var ge, ue []float64
					if s.fused {
						gu := W[name(l, "ffn_gate_up_exps.weight")][2*e*ffE*s.d : 2*(e+1)*ffE*s.d]
						ge, ue = gu[:ffE*s.d], gu[ffE*s.d:]
					} else {
						ge = W[name(l, "ffn_gate_exps.weight")][e*ffE*s.d : (e+1)*ffE*s.d]
						ue = W[name(l, "ffn_up_exps.weight")][e*ffE*s.d : (e+1)*ffE*s.d]
					}
					de := W[name(l, "ffn_down_exps.weight")][e*s.d*ffE : (e+1)*s.d*ffE]
					y := mlp(ge, ue, de, ffE, hh)
					for k := range f {
						f[k] += w * y[k]
					}
				}
				if s.nShared > 0 {
					y := mlp(W[name(l, "ffn_gate_shexp.weight")], W[name(l, "ffn_up_shexp.weight")], W[name(l, "ffn_down_shexp.weight")], ffE*s.nShared, hh)
					for k := range f {
						f[k] += y[k]
					}
				}
			}
			for k := range x[i] {
				x[i][k] += f[k]
			}
		}
	}
	out := make([][]float64, n)
	for i := range x {
		out[i] = mv(W["output.weight"], s.d, s.vocab, rms(x[i], W["output_norm.weight"]))
	}
	return out
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func synthTokens(n, vocab int) []int32 {
	toks := make([]int32, n)
	for i := range toks {
		toks[i] = int32((i*37 + 11) % vocab)
	}
	return toks
}

func loadSynth(t *testing.T, sm *synthModel, opt glm4moe.Options) *glm4moe.Model {
	t.Helper()
	f, err := gguf.Open(sm.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := glm4moe.Load(f, opt)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestHeldOutModelMatchesNaiveReference checks the absorbed-MLA engine (exact
// path) against the float64 expand-form reference on random models whose
// shapes differ from glm-tiny's, with sigmoid (+bias) and softmax gating.
func TestHeldOutModelMatchesNaiveReference(t *testing.T) {
	specs := map[string]synthSpec{"sigmoid": heldOutSpec()}
	sm2 := heldOutSpec()
	sm2.gating, sm2.bias, sm2.norm, sm2.nextn, sm2.dense = 1, false, false, 0, 1
	specs["softmax"] = sm2
	sm3 := heldOutSpec()
	sm3.qLora, sm3.fused, sm3.nShared, sm3.heads, sm3.rope = 0, true, 2, 5, 16
	specs["noqlora-fused-2shared"] = sm3
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			sm := buildSynth(t, spec, 3, nil)
			toks := synthTokens(24, spec.vocab)
			ref := naiveForward(sm, toks)
			m := loadSynth(t, sm, glm4moe.Options{Exact: true, UBatch: 7, Threads: 2})
			if got := m.Config().NLayer; got != spec.layers {
				t.Fatalf("NLayer %d, want %d (nextn blocks excluded)", got, spec.layers)
			}
			if got := m.Config().GatingSigmoid; got != (spec.gating != 1) {
				t.Fatalf("GatingSigmoid = %v for gating key %d", got, spec.gating)
			}
			got := runAll(t, m, toks)
			flat := make([]float32, 0, len(got))
			for _, row := range ref {
				for _, v := range row {
					flat = append(flat, float32(v))
				}
			}
			r := compare(got, flat, spec.vocab)
			t.Logf("exact vs naive float64: rel_l2 %.3g top1 %.4f", r.relL2, r.top1)
			if r.relL2 > 1e-4 || r.top1 < 1 {
				t.Fatalf("exact path disagrees with the naive reference: rel_l2 %.3g, top-1 %.4f", r.relL2, r.top1)
			}
		})
	}
}

// TestHeldOutUBatchAgreement checks that one token at a time through the
// cache, odd micro-batches and one pass give the same logits, in both math
// modes.
func TestHeldOutUBatchAgreement(t *testing.T) {
	sm := buildSynth(t, heldOutSpec(), 5, nil)
	toks := synthTokens(40, sm.spec.vocab)
	for _, exact := range []bool{true, false} {
		base := runAll(t, loadSynth(t, sm, glm4moe.Options{Exact: exact, UBatch: 512, Threads: 2}), toks)
		for _, ub := range []int{1, 3, 16} {
			got := runAll(t, loadSynth(t, sm, glm4moe.Options{Exact: exact, UBatch: ub, Threads: 1}), toks)
			r := compare(got, base, sm.spec.vocab)
			if r.relL2 > 1e-6 || r.top1 < 1 {
				t.Errorf("exact=%v ub=%d vs ub=512: rel_l2 %.3g top-1 %.4f", exact, ub, r.relL2, r.top1)
			}
		}
	}
}

// TestForwardBatchMatchesForward checks ForwardBatch against separate Forward
// calls for sequences of different lengths and histories, and Truncate.
func TestForwardBatchMatchesForward(t *testing.T) {
	sm := buildSynth(t, heldOutSpec(), 7, nil)
	m := loadSynth(t, sm, glm4moe.Options{Exact: true, UBatch: 5, Threads: 2})
	v := sm.spec.vocab
	prompts := [][]int32{synthTokens(9, v), synthTokens(4, v)[1:], {5}}
	prompts[2] = append(prompts[2], 17, 3, 3, 80, 2, 9, 1)
	want := make([][]float32, len(prompts))
	for i, p := range prompts {
		c, _ := m.NewCache(32)
		l, err := m.Forward(c, p, false)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = l
	}
	caches := make([]*glm4moe.Cache, len(prompts))
	// Prefill the first two tokens of each sequence with ForwardBatch, then the
	// rest in a second batched call.
	first, rest := make([][]int32, len(prompts)), make([][]int32, len(prompts))
	for i, p := range prompts {
		caches[i], _ = m.NewCache(32)
		first[i], rest[i] = p[:2], p[2:]
	}
	if _, err := m.ForwardBatch(caches, first); err != nil {
		t.Fatal(err)
	}
	got, err := m.ForwardBatch(caches, rest)
	if err != nil {
		t.Fatal(err)
	}
	for i := range prompts {
		if caches[i].Len() != len(prompts[i]) {
			t.Fatalf("seq %d: cache length %d, want %d", i, caches[i].Len(), len(prompts[i]))
		}
		if r := compare(got[i], want[i], v); r.relL2 > 1e-6 {
			t.Errorf("seq %d: ForwardBatch vs Forward rel_l2 %.3g", i, r.relL2)
		}
	}
	// Truncate and recompute the last token: same logits again.
	c := caches[0]
	if err := c.Truncate(c.Len() - 1); err != nil {
		t.Fatal(err)
	}
	l, err := m.Forward(c, prompts[0][len(prompts[0])-1:], false)
	if err != nil {
		t.Fatal(err)
	}
	if r := compare(l, want[0], v); r.relL2 > 1e-6 {
		t.Errorf("after Truncate: rel_l2 %.3g", r.relL2)
	}
	if _, err := m.ForwardBatch([]*glm4moe.Cache{c, c}, [][]int32{{1}, {2}}); err == nil {
		t.Error("ForwardBatch accepted the same cache twice")
	}
}

// TestSplitContextAttention checks the chunked (flash-decoding) attention
// used when a few tokens face a long context: one token at a time with many
// workers (context split into chunks) against one pass and the naive
// reference.
func TestSplitContextAttention(t *testing.T) {
	sm := buildSynth(t, heldOutSpec(), 9, nil)
	toks := synthTokens(300, sm.spec.vocab)
	base := runAll(t, loadSynth(t, sm, glm4moe.Options{Exact: true, UBatch: 512, Threads: 1}), toks)
	got := runAll(t, loadSynth(t, sm, glm4moe.Options{Exact: true, UBatch: 1, Threads: 8}), toks)
	if r := compare(got, base, sm.spec.vocab); r.relL2 > 1e-5 || r.top1 < 1 {
		t.Errorf("chunked attention vs one pass: rel_l2 %.3g top-1 %.4f", r.relL2, r.top1)
	}
	ref := naiveForward(sm, toks[:160])
	flat := make([]float32, 0, 160*sm.spec.vocab)
	for _, row := range ref {
		for _, v := range row {
			flat = append(flat, float32(v))
		}
	}
	if r := compare(got[:len(flat)], flat, sm.spec.vocab); r.relL2 > 1e-4 || r.top1 < 1 {
		t.Errorf("chunked attention vs naive reference: rel_l2 %.3g top-1 %.4f", r.relL2, r.top1)
	}
}
