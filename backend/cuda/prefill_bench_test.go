package cuda_test

import (
	"fmt"
	"math"
	"os"
	"sort"
	"testing"

	"github.com/glmrun/glmrun/backend/cuda"
)

// TestMLAPrefillSplits checks the split picker on shapes whose best count
// follows by hand (132 SMs, 20 heads: 3 tokens per block, 171 groups for
// 512 tokens) and its bounds.
func TestMLAPrefillSplits(t *testing.T) {
	for _, tc := range []struct {
		tokens, h, maxKV, sms, maxSplits, want int
	}{
		// 171 groups: 3 splits = 513 blocks = 3.89 waves -> 4 x (347 + 4) =
		// 1404, tied with 10 splits (12.95 waves -> 13 x (104 + 4)) and
		// below 8 splits' 11 x (130 + 4) = 1474; ties go to fewer splits
		{512, 20, 33280, 132, 16, 3},
		{512, 20, 33280, 132, 2, 2}, // bounded: 3 x 524 beats 2 x 1044
		{512, 20, 512, 132, 16, 2},  // 3 x (8 + 4) beats 2 x (16 + 4)
		{5, 20, 700, 132, 16, 11},   // 2 groups: one wave at any count; 11 is the fewest splits of 2 tiles
		{0, 20, 700, 132, 16, 1},
		{512, 0, 700, 132, 16, 1},
		{512, 20, 700, 0, 16, 1},
		{512, 20, 700, 132, 0, 1},
	} {
		if got := cuda.MLAPrefillSplits(tc.tokens, tc.h, tc.maxKV, tc.sms, tc.maxSplits); got != tc.want {
			t.Errorf("MLAPrefillSplits(%d, %d, %d, %d, %d) = %d, want %d", tc.tokens, tc.h, tc.maxKV, tc.sms, tc.maxSplits, got, tc.want)
		}
	}
}

// TestBenchMLAPrefill times the multi-token MLA attention of one 512-token
// prefill pass at depth 32768 (GLM-4.7-Flash shapes: 20 heads, D 576, Dv
// 512, f16 cache of random rows, token t sees 32768+t+1 keys) for the
// prefill kernel variants and split counts, and checks that the variants
// agree. GLMRUN_CUDA_BENCH_PREFILL=1 times (median of 5 event-timed runs
// after a warm-up); =ncu launches mla_prefill_mma_f16,
// mla_prefill_mma_f16_sk and mla_prefill_mma_f16_sk2 once each (8
// splits), for a profiler.
func TestBenchMLAPrefill(t *testing.T) {
	mode := os.Getenv("GLMRUN_CUDA_BENCH_PREFILL")
	if mode == "" {
		t.Skip("set GLMRUN_CUDA_BENCH_PREFILL=1 (or ncu) to time the prefill attention")
	}
	d := device(t)
	info := d.Info()
	r := newRNG(t)
	const h, dd, dv, tokens, depth = 20, 576, 512, 512, 32768
	rows := depth + tokens
	nkv := make([]int32, tokens)
	for i := range nkv {
		nkv[i] = int32(depth + i + 1)
	}
	pick := cuda.MLAPrefillSplits(tokens, h, rows, info.SMs, 16)
	t.Logf("device %q, %d SMs; picked splits %d", info.Name, info.SMs, pick)
	run(t, d, func(k *kit) {
		c := k.c
		src := k.f32(gauss(r, rows*dd, 1))
		pos := make([]int32, rows)
		for i := range pos {
			pos[i] = int32(i)
		}
		cache := k.alloc(int64(2 * dd * rows))
		k.check(c.CacheStoreF16(src, dd, cache, dd, dd, k.i32(pos), rows))
		q := k.f32(gauss(r, tokens*h*dd, 0.5))
		nb := k.i32(nkv)
		scratch := k.alloc(tokens * cuda.MLAScratchBytes(16, h, dv))
		outs := map[string][]float32{}
		launch := func(sk int, splits int, out cuda.Buffer) error {
			return c.MLADecode(cuda.MLADecode{Q: q, QStride: dd, H: h, D: dd, Dv: dv, KV: cache, KVStride: dd, NKV: nb,
				Scale: 0.0625, Splits: splits, Scratch: scratch, Out: out, OutStride: dv, F16QP: true, PrefillSplitK: sk > 0,
				PrefillLazy: sk > 1,
				Tokens:      tokens, QTokStride: h * dd, OutTokStride: h * dv})
		}
		out := k.alloc(4 * tokens * h * dv)
		if mode == "ncu" {
			k.check(launch(0, 8, out))
			k.check(launch(1, 8, out))
			k.check(launch(2, 8, out))
			return
		}
		e0, err0 := c.NewEvent()
		e1, err1 := c.NewEvent()
		k.check(err0)
		k.check(err1)
		var lines []string
		for _, v := range []struct {
			sk     int // 0 plain, 1 sk, 2 sk2
			splits int
		}{{0, 8}, {0, 3}, {1, 8}, {1, 3}, {1, 6}, {1, 10}, {2, 8}, {2, 3}, {2, 6}, {2, 10}, {1, pick}, {2, pick}, {0, 8}} {
			k.check(c.FillF32(out, float32(math.NaN())))
			k.check(launch(v.sk, v.splits, out)) // warm-up
			var ts []float64
			for rep := 0; rep < 5 && k.err == nil; rep++ {
				k.check(c.Record(e0))
				k.check(launch(v.sk, v.splits, out))
				k.check(c.Record(e1))
				ms, err := c.Elapsed(e0, e1)
				k.check(err)
				ts = append(ts, float64(ms))
			}
			if k.err != nil {
				return
			}
			sort.Float64s(ts)
			name := fmt.Sprintf("sk=%d splits=%d", v.sk, v.splits)
			outs[name] = k.readF32(out, tokens*h*dv)
			// 47 layers per pass: the attention share of one 512-token pass
			lines = append(lines, fmt.Sprintf("mla prefill 512 tok @ d%d %-20s %8.3f ms (x47 = %6.1f ms/pass; min %.3f max %.3f)",
				depth, name, ts[2], 47*ts[2], ts[0], ts[4]))
		}
		ref := make([]float64, tokens*h*dv)
		for i, v := range outs["sk=0 splits=8"] {
			ref[i] = float64(v)
		}
		for name, o := range outs {
			if e := relL2(o, ref); !(e < 2e-3) {
				k.check(fmt.Errorf("%s differs from sk=0 splits=8: rel_l2 %.3e", name, e))
			} else {
				lines = append(lines, fmt.Sprintf("%s vs sk=0 splits=8: rel_l2 %.2e", name, e))
			}
		}
		for _, l := range lines {
			t.Log(l)
		}
	})
}
