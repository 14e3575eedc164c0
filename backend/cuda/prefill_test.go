package cuda_test

import (
	"math"
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
	}{{false, false, 1}, {false, false, 6}, {false, true, 4}, {true, false, 1}, {true, false, 9}} {
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
				CUDACores: tc.cores, KVF32: tc.f32, Tokens: tokens, QTokStride: h * dd, OutTokStride: h * dv}))
			got = k.readF32(out, tokens*h*dv)
		})
		ref := cache16
		if tc.f32 {
			ref = cacheF
		}
		for tk := 0; tk < tokens; tk++ {
			want := refMLA(q[tk*h*dd:(tk+1)*h*dd], ref, int(nkv[tk]), h, dd, dv, scale)
			if e := relL2(got[tk*h*dv:(tk+1)*h*dv], want); !(e < 1e-5) {
				t.Errorf("f32 cache %v cores %v splits %d token %d (n_kv %d): rel_l2 %.3e > 1e-5", tc.f32, tc.cores, tc.splits, tk, nkv[tk], e)
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
