package cuda_test

import (
	"math"
	"sort"
	"testing"

	"github.com/glmrun/glmrun/backend/cuda"
	"github.com/glmrun/glmrun/backend/quant"
)

func TestRMSNorm(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	const rows, cols, xs, ys = 3, 2048, 2100, 2048
	x, w := gauss(r, rows*xs, 3), gauss(r, cols, 1)
	var got, gotNoW []float32
	run(t, d, func(k *kit) {
		xb, wb := k.f32(x), k.f32(w)
		y := k.alloc(4 * rows * ys)
		k.check(k.c.RMSNorm(xb, xs, wb, y, ys, rows, cols, 1e-5))
		got = k.readF32(y, rows*ys)
		k.check(k.c.RMSNorm(xb, xs, cuda.Buffer{}, xb, xs, rows, cols, 1e-5)) // in place, no weight
		gotNoW = k.readF32(xb, rows*xs)
	})
	want, wantNoW := make([]float64, rows*ys), make([]float64, 0, rows*cols)
	var g2 []float32
	for row := 0; row < rows; row++ {
		var ss float64
		for i := 0; i < cols; i++ {
			ss += float64(x[row*xs+i]) * float64(x[row*xs+i])
		}
		sc := 1 / math.Sqrt(ss/cols+1e-5)
		for i := 0; i < cols; i++ {
			want[row*ys+i] = float64(x[row*xs+i]) * sc * float64(w[i])
			wantNoW = append(wantNoW, float64(x[row*xs+i])*sc)
			g2 = append(g2, gotNoW[row*xs+i])
		}
	}
	if e := relL2(got, want); e > 1e-5 {
		t.Errorf("rmsnorm rel_l2 %.3e > 1e-5", e)
	} else {
		t.Logf("rmsnorm rel_l2 %.2e", e)
	}
	if e := relL2(g2, wantNoW); e > 1e-5 {
		t.Errorf("rmsnorm (in place, no weight) rel_l2 %.3e > 1e-5", e)
	}
}

func TestRoPE(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	// GLM decode layout: q as [tokens][20 heads][256], rope slice at 192..255.
	const tokens, heads, hd, off, nd = 3, 20, 256, 192, 64
	const base = 1e6
	x := gauss(r, tokens*heads*hd, 1)
	pos := []int32{0, int32(r.IntN(4096)), 100000 + int32(r.IntN(100000))}
	var got []float32
	run(t, d, func(k *kit) {
		xb, pb := k.f32(x), k.i32(pos)
		k.check(k.c.RoPE(xb, heads*hd, hd, heads, tokens, off, nd, pb, base))
		got = k.readF32(xb, len(x))
	})
	want := make([]float64, len(x))
	for i, v := range x {
		want[i] = float64(v)
	}
	for tk := 0; tk < tokens; tk++ {
		for h := 0; h < heads; h++ {
			p := want[tk*heads*hd+h*hd+off:]
			for i := 0; i < nd/2; i++ {
				th := float64(pos[tk]) * math.Pow(base, -2*float64(i)/nd)
				s, c := math.Sincos(th)
				x0, x1 := p[2*i], p[2*i+1]
				p[2*i], p[2*i+1] = x0*c-x1*s, x0*s+x1*c
			}
		}
	}
	if e := relL2(got, want); e > 1e-6 {
		t.Errorf("rope rel_l2 %.3e > 1e-6", e)
	} else {
		t.Logf("rope rel_l2 %.2e (positions %v)", e, pos)
	}
}

func TestElementwise(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	const n, slots = 5000, 4
	a, b := gauss(r, n, 3), gauss(r, n, 1)
	y, w := gauss(r, slots*n, 1), gauss(r, slots, 1)
	var sw, add, ws, ws0 []float32
	run(t, d, func(k *kit) {
		ab, bb, yb, wb := k.f32(a), k.f32(b), k.f32(y), k.f32(w)
		out := k.alloc(4 * n)
		k.check(k.c.SwiGLU(ab, bb, out, n))
		sw = k.readF32(out, n)
		k.check(k.c.Add(ab, bb, out, n))
		add = k.readF32(out, n)
		k.check(k.c.WeightedSum(ab, yb, n, wb, slots, out, n))
		ws = k.readF32(out, n)
		k.check(k.c.WeightedSum(cuda.Buffer{}, yb, n, wb, slots, out, n))
		ws0 = k.readF32(out, n)
	})
	wsw, wadd, wws, wws0 := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i := 0; i < n; i++ {
		g := float64(a[i])
		wsw[i] = g / (1 + math.Exp(-g)) * float64(b[i])
		wadd[i] = float64(a[i]) + float64(b[i])
		for s := 0; s < slots; s++ {
			wws0[i] += float64(w[s]) * float64(y[s*n+i])
		}
		wws[i] = float64(a[i]) + wws0[i]
	}
	for _, c := range []struct {
		name  string
		got   []float32
		want  []float64
		bound float64
	}{{"swiglu", sw, wsw, 1e-6}, {"add", add, wadd, 1e-7}, {"weighted_sum", ws, wws, 1e-6}, {"weighted_sum(no base)", ws0, wws0, 1e-6}} {
		if e := relL2(c.got, c.want); e > c.bound {
			t.Errorf("%s rel_l2 %.3e > %.0e", c.name, e, c.bound)
		} else {
			t.Logf("%s rel_l2 %.2e", c.name, e)
		}
	}
}

func TestCacheStoreF16(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	const width, stride, capRows, tokens = 576, 576, 64, 3
	src := gauss(r, tokens*600, 2)
	pos := []int32{5, 63, 200} // the last is outside the cache: skipped
	var got []byte
	run(t, d, func(k *kit) {
		sb, pb := k.f32(src), k.i32(pos)
		cache := k.alloc(2 * stride * capRows)
		k.check(k.c.CacheStoreF16(sb, 600, cache, stride, width, pb, tokens))
		got = k.readBytes(cache, 2*stride*capRows)
	})
	u16 := func(row, i int) uint16 { o := 2 * (row*stride + i); return uint16(got[o]) | uint16(got[o+1])<<8 }
	for tk := 0; tk < 2; tk++ {
		for i := 0; i < width; i++ {
			if g, w := u16(int(pos[tk]), i), quant.Float32ToFP16(src[tk*600+i]); g != w {
				t.Fatalf("token %d elem %d: f16 bits %#04x want %#04x", tk, i, g, w)
			}
		}
	}
	for i := 0; i < width; i++ { // an untouched row keeps the poison (0x7fc00000 = halves 0x0000, 0x7fc0)
		if w := u16(6, i); w != 0x0000 && w != 0x7fc0 {
			t.Fatalf("row 6 (never stored) changed: %#04x at %d", w, i)
		}
	}
}

func TestArgmax(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	const n, rows = 154880, 3
	x := gauss(r, rows*n, 1)
	// row 0: a tie between two maxima (lowest index wins); row 1: NaNs
	// around; row 2: all NaN except one -Inf.
	i0, i1 := 1000+r.IntN(50000), 60000+r.IntN(50000)
	x[i0], x[i1] = 100, 100
	for i := 0; i < 100; i++ {
		x[n+r.IntN(n)] = float32(math.NaN())
	}
	for i := 2 * n; i < 3*n; i++ {
		x[i] = float32(math.NaN())
	}
	x[2*n+777] = float32(math.Inf(-1))
	var got []int32
	run(t, d, func(k *kit) {
		xb := k.f32(x)
		out := k.alloc(4 * rows)
		k.check(k.c.Argmax(xb, n, n, rows, out))
		got = k.readI32(out, rows)
	})
	want1, best := -1, math.Inf(-1)
	for i := 0; i < n; i++ {
		if v := float64(x[n+i]); v > best {
			best, want1 = v, i
		}
	}
	want := []int32{int32(i0), int32(want1), 777}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("argmax row %d = %d, want %d", i, got[i], want[i])
		}
	}
}

func TestRouter(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	const nExp, k, tokens = 64, 4, 3
	const scale = 1.8
	logits, bias := gauss(r, tokens*nExp, 2), gauss(r, nExp, 0.5)
	var ids []int32
	var ws []float32
	run(t, d, func(kt *kit) {
		lb, bb := kt.f32(logits), kt.f32(bias)
		idb, wb := kt.alloc(4*tokens*k), kt.alloc(4*tokens*k)
		kt.check(kt.c.Router(lb, nExp, bb, nExp, k, true, scale, tokens, idb, wb))
		ids, ws = kt.readI32(idb, tokens*k), kt.readF32(wb, tokens*k)
	})
	for tk := 0; tk < tokens; tk++ {
		type es struct {
			e        int
			s, biasd float64
		}
		all := make([]es, nExp)
		for e := 0; e < nExp; e++ {
			s := 1 / (1 + math.Exp(-float64(logits[tk*nExp+e])))
			all[e] = es{e, s, s + float64(bias[e])}
		}
		sort.SliceStable(all, func(i, j int) bool { return all[i].biasd > all[j].biasd })
		var sum float64
		for j := 0; j < k; j++ {
			sum += all[j].s
		}
		for j := 0; j < k; j++ {
			if int(ids[tk*k+j]) != all[j].e {
				t.Fatalf("token %d choice %d: expert %d, want %d", tk, j, ids[tk*k+j], all[j].e)
			}
			want := all[j].s / math.Max(sum, 6.1035e-5) * scale
			if math.Abs(float64(ws[tk*k+j])-want) > 1e-5*want {
				t.Errorf("token %d choice %d: weight %v, want %v", tk, j, ws[tk*k+j], want)
			}
		}
	}
}

// refMLA computes the attention in float64 from the f16-rounded cache.
func refMLA(q []float32, cache []float32, nkv, h, dd, dv int, scale float64) []float64 {
	out := make([]float64, h*dv)
	s := make([]float64, nkv)
	for hh := 0; hh < h; hh++ {
		m := math.Inf(-1)
		for j := 0; j < nkv; j++ {
			var a float64
			for c := 0; c < dd; c++ {
				a += float64(q[hh*dd+c]) * float64(cache[j*dd+c])
			}
			s[j] = a * scale
			m = math.Max(m, s[j])
		}
		var l float64
		for j := 0; j < nkv; j++ {
			s[j] = math.Exp(s[j] - m)
			l += s[j]
		}
		for j := 0; j < nkv; j++ {
			for c := 0; c < dv; c++ {
				out[hh*dv+c] += s[j] / l * float64(cache[j*dd+c])
			}
		}
	}
	return out
}

func TestMLADecode(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	const h, dd, dv, capRows = 20, 576, 512, 3000
	const scale = 0.0625
	cacheF := gauss(r, capRows*dd, 1)
	for i := range cacheF {
		cacheF[i] = quant.FP16ToFloat32(quant.Float32ToFP16(cacheF[i]))
	}
	q := gauss(r, h*dd, 0.5)
	for _, tc := range []struct {
		nkv, splits   int
		cores, noPipe bool
	}{{1, 1, false, false}, {37, 1, false, false}, {37, 264, false, false}, {1000, 7, false, false},
		{2999, 264, false, false}, {3000, 64, false, false}, {2999, 3, false, false},
		{37, 264, false, true}, {2999, 3, false, true},
		{1, 1, true, false}, {37, 264, true, false}, {1000, 7, true, false}, {2999, 264, true, false}} {
		var got []float32
		run(t, d, func(k *kit) {
			src := k.f32(cacheF)
			pos := make([]int32, capRows)
			for i := range pos {
				pos[i] = int32(i)
			}
			cache := k.alloc(2 * dd * capRows)
			// fill the cache through the store kernel, as decode would
			k.check(k.c.CacheStoreF16(src, dd, cache, dd, dd, k.i32(pos), capRows))
			qb, nkv := k.f32(q), k.i32([]int32{int32(tc.nkv)})
			scratch := k.alloc(cuda.MLAScratchBytes(tc.splits, h, dv))
			out := k.alloc(4 * h * dv)
			k.check(k.c.MLADecode(cuda.MLADecode{Q: qb, QStride: dd, H: h, D: dd, Dv: dv, KV: cache, KVStride: dd,
				NKV: nkv, Scale: scale, Splits: tc.splits, Scratch: scratch, Out: out, OutStride: dv, CUDACores: tc.cores, NoPipeline: tc.noPipe}))
			got = k.readF32(out, h*dv)
		})
		want := refMLA(q, cacheF, tc.nkv, h, dd, dv, scale)
		if e := relL2(got, want); e > 1e-5 {
			t.Errorf("mla n_kv=%d splits=%d cuda-cores=%v no-pipeline=%v: rel_l2 %.3e > 1e-5", tc.nkv, tc.splits, tc.cores, tc.noPipe, e)
		} else {
			t.Logf("mla n_kv=%d splits=%d cuda-cores=%v no-pipeline=%v: rel_l2 %.2e", tc.nkv, tc.splits, tc.cores, tc.noPipe, e)
		}
	}
}
