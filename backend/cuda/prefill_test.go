package cuda_test

import (
	"math"
	"slices"
	"testing"

	"github.com/glmrun/glmrun/backend/cuda"
	"github.com/glmrun/glmrun/backend/quant"
	"github.com/glmrun/glmrun/gguf"
)

// TestMLAPrefillTokens runs several query tokens in one MLADecode launch
// (per-token key counts, as causal prefill uses them) over an f16 and an
// f32 cache, against the float64 reference per token.
func TestMLAPrefillTokens(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	const h, dd, dv, capRows, tokens = 20, 576, 512, 700, 5
	const scale = 0.0625
	cacheF := gauss(r, capRows*dd, 1)
	cache16 := make([]float32, len(cacheF))
	for i := range cacheF {
		cache16[i] = quant.FP16ToFloat32(quant.Float32ToFP16(cacheF[i]))
	}
	q := gauss(r, tokens*h*dd, 0.5)
	nkv := []int32{1, 33, 300, 699, 700}
	for _, tc := range []struct {
		f32, cores bool
		splits     int
		f16qp      bool
		perTok     bool // f16qp: one token per block instead of mla_prefill_mma_f16
		sk         bool // f16qp: mla_prefill_mma_f16_sk (scores split over D)
		lazy       bool // sk: mla_prefill_mma_f16_sk2 (lazy rescaling)
		boost      bool // cache rows >= 350 x6: scores jump late (the lazy max must move)
	}{{false, false, 1, false, false, false, false, false}, {false, false, 6, false, false, false, false, false}, {false, true, 4, false, false, false, false, false},
		{true, false, 1, false, false, false, false, false}, {true, false, 9, false, false, false, false, false}, {false, false, 1, true, false, false, false, false},
		{false, false, 7, true, false, false, false, false}, {false, false, 7, true, true, false, false, false}, {false, false, 3, true, false, false, false, false},
		{false, false, 1, true, false, true, false, false}, {false, false, 7, true, false, true, false, false},
		{false, false, 3, true, false, true, false, false}, {false, false, 1, true, false, true, true, false},
		{false, false, 7, true, false, true, true, false}, {false, false, 3, true, false, true, true, true},
		{false, false, 1, true, false, true, true, true}, {false, false, 1, true, false, false, false, true}} {
		cacheF, cache16 := cacheF, cache16
		if tc.boost {
			cacheF, cache16 = slices.Clone(cacheF), slices.Clone(cache16)
			for i := 350 * dd; i < len(cacheF); i++ {
				cacheF[i] *= 6
				cache16[i] = quant.FP16ToFloat32(quant.Float32ToFP16(cacheF[i]))
			}
		}
		var got []float32
		run(t, d, func(k *kit) {
			src := k.f32(cacheF)
			pos := make([]int32, capRows)
			for i := range pos {
				pos[i] = int32(i)
			}
			var cache cuda.Buffer
			if tc.f32 {
				cache = k.alloc(4 * dd * capRows)
				k.check(k.c.CacheStoreF32(src, dd, cache, dd, dd, k.i32(pos), capRows))
			} else {
				cache = k.alloc(2 * dd * capRows)
				k.check(k.c.CacheStoreF16(src, dd, cache, dd, dd, k.i32(pos), capRows))
			}
			scratch := k.alloc(tokens * cuda.MLAScratchBytes(tc.splits, h, dv))
			out := k.alloc(4 * tokens * h * dv)
			k.check(k.c.FillF32(out, float32(math.NaN())))
			k.check(k.c.MLADecode(cuda.MLADecode{Q: k.f32(q), QStride: dd, H: h, D: dd, Dv: dv, KV: cache, KVStride: dd,
				NKV: k.i32(nkv), Scale: scale, Splits: tc.splits, Scratch: scratch, Out: out, OutStride: dv,
				CUDACores: tc.cores, KVF32: tc.f32, F16QP: tc.f16qp, PerToken: tc.perTok, PrefillSplitK: tc.sk, PrefillLazy: tc.lazy, Tokens: tokens, QTokStride: h * dd, OutTokStride: h * dv}))
			got = k.readF32(out, tokens*h*dv)
		})
		ref := cache16
		if tc.f32 {
			ref = cacheF
		}
		for tk := 0; tk < tokens; tk++ {
			want := refMLA(q[tk*h*dd:(tk+1)*h*dd], ref, int(nkv[tk]), h, dd, dv, scale)
			bound := 1e-5
			if tc.f16qp {
				bound = 5e-3 // f16 Q and P
			}
			if e := relL2(got[tk*h*dv:(tk+1)*h*dv], want); !(e < bound) {
				t.Errorf("f32 cache %v cores %v f16qp %v perTok %v sk %v lazy %v boost %v splits %d token %d (n_kv %d): rel_l2 %.3e > %g",
					tc.f32, tc.cores, tc.f16qp, tc.perTok, tc.sk, tc.lazy, tc.boost, tc.splits, tk, nkv[tk], e, bound)
			} else if tk == tokens-1 {
				t.Logf("f32 cache %v cores %v f16qp %v perTok %v sk %v lazy %v boost %v splits %d token %d: rel_l2 %.2e", tc.f32, tc.cores, tc.f16qp, tc.perTok, tc.sk, tc.lazy, tc.boost, tc.splits, tk, e)
			}
		}
	}
}

// TestGatherAndXDiv checks GatherRows (indexed, plain, out-of-range -> NaN),
// MatVec with XDiv/XStride/YStride on f32 weights and experts, and
// WeightedSumTokens.
func TestGatherAndXDiv(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	const srcRows, cols, stride = 10, 300, 320
	src := gauss(r, srcRows*stride, 1)
	idx := []int32{3, 0, 9, 10}
	var got []float32
	const rows, ccols, nexp, toks, k = 16, 64, 3, 3, 2
	w := gauss(r, nexp*rows*ccols, 1)
	x := gauss(r, toks*80, 1) // token rows of 64 at stride 80
	ids := []int32{2, 0, 1, 1, 0, 2}
	wt := gauss(r, toks*k, 1)
	var y, ws []float32
	run(t, d, func(k2 *kit) {
		out := k2.alloc(4 * 4 * cols)
		k2.check(k2.c.GatherRows(k2.f32(src), stride, srcRows, k2.i32(idx), out, cols, 4, cols))
		got = k2.readF32(out, 4*cols)
		yb := k2.alloc(4 * toks * k * 20)
		k2.check(k2.c.MatVec(cuda.MatVec{W: k2.f32(w), Type: gguf.TypeF32, Rows: rows, Cols: ccols, NExperts: nexp,
			IDs: k2.i32(ids), Slots: toks * k, X: k2.f32(x), XStride: 80, XDiv: k, Y: yb, YStride: 20}))
		y = k2.readF32(yb, toks*k*20)
		sb := k2.alloc(4 * toks * rows)
		k2.check(k2.c.WeightedSumTokens(cuda.Buffer{}, yb, 20, k2.f32(wt), k, sb, rows, toks))
		ws = k2.readF32(sb, toks*rows)
	})
	for i, s := range idx {
		for c := 0; c < cols; c++ {
			g := got[i*cols+c]
			if s >= srcRows {
				if !math.IsNaN(float64(g)) {
					t.Fatalf("row %d (index %d out of range): %v, want NaN", i, s, g)
				}
				continue
			}
			if g != src[int(s)*stride+c] {
				t.Fatalf("gather row %d col %d: %v, want %v", i, c, g, src[int(s)*stride+c])
			}
		}
	}
	var maxErr float64
	for s := 0; s < toks*k; s++ {
		for row := 0; row < rows; row++ {
			var a float64
			for c := 0; c < ccols; c++ {
				a += float64(w[(int(ids[s])*rows+row)*ccols+c]) * float64(x[(s/k)*80+c])
			}
			maxErr = math.Max(maxErr, math.Abs(a-float64(y[s*20+row])))
		}
	}
	if !(maxErr < 1e-4) {
		t.Errorf("MatVec with XDiv/XStride/YStride: max error %.3g", maxErr)
	}
	maxErr = 0
	for tk := 0; tk < toks; tk++ {
		for row := 0; row < rows; row++ {
			var a float64
			for j := 0; j < k; j++ {
				a += float64(wt[tk*k+j]) * float64(y[(tk*k+j)*20+row])
			}
			maxErr = math.Max(maxErr, math.Abs(a-float64(ws[tk*rows+row])))
		}
	}
	if !(maxErr < 1e-4) {
		t.Errorf("WeightedSumTokens: max error %.3g", maxErr)
	}
}

func f16Bytes(v []float32) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		h := quant.Float32ToFP16(x)
		b[2*i], b[2*i+1] = byte(h), byte(h>>8)
	}
	return b
}

func bytesF16(b []byte) []float32 {
	out := make([]float32, len(b)/2)
	for i := range out {
		out[i] = quant.FP16ToFloat32(uint16(b[2*i]) | uint16(b[2*i+1])<<8)
	}
	return out
}

// TestDequantF16 compares the f16 dequantisation kernels with the Go
// dequantisers (rounded to f16; one f16 rounding step of tolerance).
func TestDequantF16(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	const rows, cols = 6, 512
	for _, typ := range []gguf.TensorType{gguf.TypeQ4_K, gguf.TypeQ6_K, gguf.TypeQ5_0, gguf.TypeQ8_0, gguf.TypeBF16, gguf.TypeF32, gguf.TypeF16} {
		w := randomWeights(r, typ, rows, cols)
		want := make([]float32, rows*cols)
		if err := quant.Dequantize(typ, w, want); err != nil {
			t.Fatal(err)
		}
		var got []float32
		run(t, d, func(k *kit) {
			out := k.alloc(2 * rows * cols)
			k.check(k.c.DequantF16(k.upload(w), typ, rows, cols, out))
			got = bytesF16(k.readBytes(out, 2*rows*cols))
		})
		bad := 0
		for i := range want {
			ref := float64(quant.FP16ToFloat32(quant.Float32ToFP16(want[i])))
			if diff := math.Abs(float64(got[i]) - ref); !(diff <= 1e-3*math.Abs(ref)+1e-7) {
				if bad < 3 {
					t.Errorf("%s value %d: got %v, want %v", typ, i, got[i], ref)
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d values differ", typ, bad, len(want))
		}
	}
}

// TestGemmF16 checks the grouped tensor-core product: experts with row
// offsets and a scattered output, and heads with strided A and Y.
func TestGemmF16(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	round := func(v []float32) []float32 {
		for i := range v {
			v[i] = quant.FP16ToFloat32(quant.Float32ToFP16(v[i]))
		}
		return v
	}
	// Experts: 3 groups, rows [0,37) [37,37) [37,150), M 96, K 64.
	const n, M, K, G = 150, 96, 64, 3
	off := []int32{0, 37, 37, n}
	a := round(gauss(r, n*K, 1))
	w := round(gauss(r, G*M*K, 1))
	perm := make([]int32, n)
	for i, p := range r.Perm(n) {
		perm[i] = int32(p)
	}
	var got []float32
	run(t, d, func(k *kit) {
		y := k.alloc(4 * n * M)
		k.check(k.c.FillF32(y, float32(math.NaN())))
		k.check(k.c.Gemm(cuda.GemmF16{A: k.upload(f16Bytes(a)), LDA: K, RowOff: k.i32(off), MaxRows: 113,
			W: k.upload(f16Bytes(w)), WGroupStride: M * K, Y: y, LDY: M, YIdx: k.i32(perm), M: M, K: K, Groups: G}))
		got = k.readF32(y, n*M)
	})
	want := make([]float64, n*M)
	for g := 0; g < G; g++ {
		for i := int(off[g]); i < int(off[g+1]); i++ {
			for m := 0; m < M; m++ {
				var s float64
				for kk := 0; kk < K; kk++ {
					s += float64(a[i*K+kk]) * float64(w[(g*M+m)*K+kk])
				}
				want[int(perm[i])*M+m] = s
			}
		}
	}
	if e := relL2(got, want); !(e < 1e-5) {
		t.Errorf("expert gemm: rel_l2 %.3e", e)
	}
	// Heads: 4 groups, A rows of 4*64 (group stride 64), Y rows of 4*80 (group stride 80), M 70 (partial tile), K 64.
	const nt, H, M2 = 70, 4, 70
	a2 := round(gauss(r, nt*H*K, 1))
	w2 := round(gauss(r, H*M2*K, 1))
	run(t, d, func(k *kit) {
		y := k.alloc(4 * nt * H * 80)
		k.check(k.c.FillF32(y, 0))
		k.check(k.c.Gemm(cuda.GemmF16{A: k.upload(f16Bytes(a2)), LDA: H * K, AGroupStride: K, NRows: nt,
			W: k.upload(f16Bytes(w2)), WGroupStride: M2 * K, Y: y, LDY: H * 80, YGroupStride: 80, M: M2, K: K, Groups: H}))
		got = k.readF32(y, nt*H*80)
	})
	want = make([]float64, nt*H*80)
	for h := 0; h < H; h++ {
		for i := 0; i < nt; i++ {
			for m := 0; m < M2; m++ {
				var s float64
				for kk := 0; kk < K; kk++ {
					s += float64(a2[i*H*K+h*K+kk]) * float64(w2[(h*M2+m)*K+kk])
				}
				want[i*H*80+h*80+m] = s
			}
		}
	}
	if e := relL2(got, want); !(e < 1e-5) {
		t.Errorf("head gemm: rel_l2 %.3e", e)
	}
}

// TestFusedQ81 checks RMSNormQ81 and SwiGLUQ81 against RMSNorm, SwiGLU and
// QuantizeQ81 run separately (bit-identical Q8_1 blocks expected).
func TestFusedQ81(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	const rows, cols = 3, 2048
	x, w := gauss(r, rows*cols, 2), gauss(r, cols, 1)
	gt, up := gauss(r, rows*cols, 2), gauss(r, rows*cols, 1)
	var y1, y2, s1, s2 []float32
	var q1, q2, p1, p2 []byte
	run(t, d, func(k *kit) {
		xb, wb := k.f32(x), k.f32(w)
		ya, yb := k.alloc(4*rows*cols), k.alloc(4*rows*cols)
		qa, qb := k.alloc(cuda.Q81Bytes(rows, cols)), k.alloc(cuda.Q81Bytes(rows, cols))
		k.check(k.c.RMSNormQ81(xb, cols, wb, ya, cols, rows, cols, 1e-5, qa))
		k.check(k.c.RMSNorm(xb, cols, wb, yb, cols, rows, cols, 1e-5))
		k.check(k.c.QuantizeQ81(yb, cols, rows, cols, qb))
		y1, y2 = k.readF32(ya, rows*cols), k.readF32(yb, rows*cols)
		q1, q2 = k.readBytes(qa, int(cuda.Q81Bytes(rows, cols))), k.readBytes(qb, int(cuda.Q81Bytes(rows, cols)))
		gb, ub := k.f32(gt), k.f32(up)
		oa, ob := k.alloc(4*rows*cols), k.alloc(4*rows*cols)
		k.check(k.c.SwiGLUQ81(gb, ub, oa, rows, cols, qa))
		k.check(k.c.SwiGLU(gb, ub, ob, rows*cols))
		k.check(k.c.QuantizeQ81(ob, cols, rows, cols, qb))
		s1, s2 = k.readF32(oa, rows*cols), k.readF32(ob, rows*cols)
		p1, p2 = k.readBytes(qa, int(cuda.Q81Bytes(rows, cols))), k.readBytes(qb, int(cuda.Q81Bytes(rows, cols)))
	})
	for i := range y1 {
		if math.Abs(float64(y1[i]-y2[i])) > 1e-5*math.Abs(float64(y2[i]))+1e-7 || math.Abs(float64(s1[i]-s2[i])) > 1e-6 {
			t.Fatalf("value %d: rmsnorm %v vs %v, swiglu %v vs %v", i, y1[i], y2[i], s1[i], s2[i])
		}
	}
	diff := func(a, b []byte) int {
		n := 0
		for i := range a {
			if a[i] != b[i] {
				n++
			}
		}
		return n
	}
	// The fused norm may round its f32 output differently from rmsnorm_f32
	// (different reduction order), so allow a few differing bytes there.
	if n := diff(q1, q2); n > len(q1)/100 {
		t.Errorf("RMSNormQ81: %d of %d Q8_1 bytes differ from RMSNorm + QuantizeQ81", n, len(q1))
	}
	if n := diff(p1, p2); n != 0 {
		t.Errorf("SwiGLUQ81: %d of %d Q8_1 bytes differ from SwiGLU + QuantizeQ81", n, len(p1))
	}
}

// TestGemmW checks the fused-dequantisation GEMM against the f16 GEMM on
// the same weights dequantised by DequantF16 (same f16 values, so the
// results agree to f32 rounding), grouped as experts with a scattered
// output.
func TestGemmW(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	const n, M, K, G = 90, 80, 512, 3
	off := []int32{0, 50, 50, n}
	a := gauss(r, n*K, 1)
	perm := make([]int32, n)
	for i, p := range r.Perm(n) {
		perm[i] = int32(p)
	}
	for _, typ := range []gguf.TensorType{gguf.TypeQ4_K, gguf.TypeQ6_K, gguf.TypeQ5_0, gguf.TypeQ8_0, gguf.TypeBF16, gguf.TypeF32, gguf.TypeF16, gguf.TypeMMFP4} {
		// The reference multiplies an f16 copy of the weights: DequantF16's,
		// or for MMFP4 (no DequantF16 kernel; three slabs) the host's
		// dequantization rounded to f16, as the tile loader rounds it.
		var w, hostW16 []byte
		if typ == gguf.TypeMMFP4 {
			w = randomMMFP4(r, G, M, K)
			slab, _ := quant.MMFP4SlabBytes(M, K)
			wf := make([]float32, G*M*K)
			for g := 0; g < G; g++ {
				if err := quant.DequantizeMMFP4(w[g*slab:(g+1)*slab], M, K, wf[g*M*K:(g+1)*M*K]); err != nil {
					t.Fatal(err)
				}
			}
			hostW16 = f16Bytes(wf)
		} else {
			w = randomWeights(r, typ, G*M, K)
		}
		var got, want []float32
		run(t, d, func(k *kit) {
			ab := k.upload(f16Bytes(a))
			wb := k.upload(w)
			var w16 cuda.Buffer
			if hostW16 != nil {
				w16 = k.upload(hostW16)
			} else {
				w16 = k.alloc(2 * G * M * K)
				k.check(k.c.DequantF16(wb, typ, G*M, K, w16))
			}
			ya, yb := k.alloc(4*n*M), k.alloc(4*n*M)
			k.check(k.c.FillF32(ya, float32(math.NaN())))
			k.check(k.c.FillF32(yb, float32(math.NaN())))
			g := cuda.GemmF16{A: ab, LDA: K, RowOff: k.i32(off), MaxRows: 50, W: w16, WGroupStride: M * K, Y: yb,
				LDY: M, YIdx: k.i32(perm), M: M, K: K, Groups: G}
			k.check(k.c.Gemm(g))
			g.W, g.Y = wb, ya
			k.check(k.c.GemmW(g, typ))
			got, want = k.readF32(ya, n*M), k.readF32(yb, n*M)
		})
		w64 := make([]float64, len(want))
		for i, v := range want {
			w64[i] = float64(v)
		}
		if e := relL2(got, w64); !(e < 1e-6) {
			t.Errorf("%s: GemmW vs DequantF16+Gemm rel_l2 %.3e", typ, e)
		}
	}
}

// TestExpertSortTiles checks the device-side grouping of routed slots by
// expert (offs, perm, tile list against a host count) and that grouped
// GEMMs over the tile list (f16 and the Q4_K loader) equal the same GEMMs
// over Groups x MaxRows.
func TestExpertSortTiles(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	const G, M, K = 5, 72, 512
	// expert 0 gets > 2 tiles, expert 3 none, one slot carries an id out of range (counts as 0)
	var ids []int32
	for range 150 {
		ids = append(ids, 0)
	}
	for range 40 {
		ids = append(ids, 1)
	}
	for range 70 {
		ids = append(ids, 2)
	}
	for range 9 {
		ids = append(ids, 4)
	}
	ids = append(ids, 99)
	r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	n := len(ids)
	count := make([]int, G)
	for _, e := range ids {
		if e < 0 || e >= G {
			e = 0
		}
		count[e]++
	}
	capT := cuda.ExpertTileCap(n, G)
	a := gauss(r, n*K, 1)
	w16 := gauss(r, G*M*K, 0.05)
	wq := randomWeights(r, gguf.TypeQ4_K, G*M, K)
	var offs, perm, tiles []int32
	var yt, yr, yq, yqd []float32
	run(t, d, func(k *kit) {
		ib := k.i32(ids)
		pb, ob, tb := k.alloc(4*int64(n)), k.alloc(4*(G+1)), k.alloc(4*(1+2*int64(capT)))
		k.check(k.c.ExpertSort(ib, n, G, pb, ob, tb))
		offs, perm, tiles = k.readI32(ob, G+1), k.readI32(pb, n), k.readI32(tb, 1+2*capT)
		ab, wb, qb := k.upload(f16Bytes(a)), k.upload(f16Bytes(w16)), k.upload(wq)
		wqd := k.alloc(2 * G * M * K)
		k.check(k.c.DequantF16(qb, gguf.TypeQ4_K, G*M, K, wqd))
		maxRows := slices.Max(count)
		ys := make([]cuda.Buffer, 4)
		for i := range ys {
			ys[i] = k.alloc(4 * int64(n) * M)
			k.check(k.c.FillF32(ys[i], float32(math.NaN())))
		}
		g := cuda.GemmF16{A: ab, LDA: K, RowOff: ob, W: wb, WGroupStride: M * K, YIdx: pb, LDY: M, M: M, K: K, Groups: G}
		gt := g
		gt.Tiles, gt.MaxTiles, gt.Y = tb, capT, ys[0]
		k.check(k.c.Gemm(gt))
		g.MaxRows, g.Y = maxRows, ys[1]
		k.check(k.c.Gemm(g))
		gt.Y = ys[2]
		gt.W = qb
		k.check(k.c.GemmW(gt, gguf.TypeQ4_K))
		g.W, g.Y = wqd, ys[3]
		k.check(k.c.Gemm(g))
		yt, yr, yq, yqd = k.readF32(ys[0], n*M), k.readF32(ys[1], n*M), k.readF32(ys[2], n*M), k.readF32(ys[3], n*M)
	})
	if t.Failed() {
		return
	}
	o := 0
	for e := range G {
		if int(offs[e]) != o {
			t.Fatalf("offs[%d] = %d, want %d (offs %v)", e, offs[e], o, offs)
		}
		o += count[e]
	}
	if int(offs[G]) != n {
		t.Fatalf("offs[%d] = %d, want %d", G, offs[G], n)
	}
	seen := make([]bool, n)
	for e := range G {
		for _, s := range perm[offs[e]:offs[e+1]] {
			if s < 0 || int(s) >= n || seen[s] {
				t.Fatalf("perm holds slot %d twice or out of range", s)
			}
			seen[s] = true
			if want := ids[s]; want != int32(e) && !(e == 0 && (want < 0 || want >= G)) {
				t.Fatalf("slot %d (expert %d) placed in expert %d's segment", s, want, e)
			}
		}
	}
	nt := 0
	for e := range G {
		for r0 := 0; r0 < count[e]; r0 += 64 {
			if tiles[1+2*nt] != int32(e) || tiles[2+2*nt] != offs[e]+int32(r0) {
				t.Fatalf("tile %d = (%d, %d), want (%d, %d)", nt, tiles[1+2*nt], tiles[2+2*nt], e, int(offs[e])+r0)
			}
			nt++
		}
	}
	if int(tiles[0]) != nt || nt > capT {
		t.Fatalf("tile count %d, want %d (cap %d)", tiles[0], nt, capT)
	}
	for _, c := range []struct {
		name      string
		got, want []float32
	}{{"f16 tiles vs rows", yt, yr}, {"q4_K tiles vs f16 rows", yq, yqd}} {
		w64 := make([]float64, len(c.want))
		for i, v := range c.want {
			w64[i] = float64(v)
		}
		if e := relL2(c.got, w64); !(e < 1e-6) {
			t.Errorf("%s: rel_l2 %.3e", c.name, e)
		}
	}
}
