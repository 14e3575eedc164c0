package cuda_test

import (
	"fmt"
	"os"
	"sort"
	"testing"

	"github.com/glmrun/glmrun/backend/cuda"
	"github.com/glmrun/glmrun/gguf"
)

// TestBenchKernels times the decode kernels at GLM-4.7-Flash shapes. Each
// figure is the median over 7 replays of a CUDA graph holding n launches of
// the kernel (the way decode will run), divided by n; weights rotate over
// copies larger than L2 so the numbers are HBM, not cache. GB/s counts the
// weight bytes each launch must read. Set GLMRUN_CUDA_BENCH=1 to run it.
func TestBenchKernels(t *testing.T) {
	if os.Getenv("GLMRUN_CUDA_BENCH") == "" {
		t.Skip("set GLMRUN_CUDA_BENCH=1 to time the kernels")
	}
	d := device(t)
	r := newRNG(t)
	info := d.Info()
	t.Logf("device %q sm_%d%d, %d SMs, L2 %d MiB, %.1f GiB, driver %d", info.Name, info.CCMajor, info.CCMinor, info.SMs,
		info.L2Bytes>>20, float64(info.TotalMem)/(1<<30), info.DriverVersion)
	tel0 := d.Telemetry()
	t.Logf("telemetry before: power %.1f W (%v), energy %.1f J (%v), mem used %.2f GiB (%v), err %v",
		tel0.PowerW, tel0.HasPower, tel0.EnergyJ, tel0.HasEnergy, float64(tel0.MemUsed)/(1<<30), tel0.HasMem, tel0.Err)

	var lines []string
	report := func(name string, us float64, bytes int64) {
		l := fmt.Sprintf("%-44s %9.2f us", name, us)
		if bytes > 0 {
			l += fmt.Sprintf("  %7.1f GB/s (%.1f MB/launch)", float64(bytes)/us/1e3, float64(bytes)/1e6)
		}
		lines = append(lines, l)
	}
	l2 := int64(max(info.L2Bytes, 50<<20))
	copiesFor := func(bytes int64) int { return int(max(1, min(64, (4*l2+bytes-1)/bytes))) }

	run(t, d, func(k *kit) {
		c := k.c
		median := func(v []float64) float64 { sort.Float64s(v); return v[len(v)/2] }
		timeGraph := func(n int, body func(i int) error) float64 {
			if k.err != nil {
				return 0
			}
			k.check(body(0)) // warm-up outside the graph (module, attributes)
			k.check(c.Sync())
			if k.err != nil {
				return 0
			}
			k.check(c.BeginCapture())
			for i := 0; i < n && k.err == nil; i++ {
				k.check(body(i))
			}
			g, err := c.EndCapture()
			k.check(err)
			if k.err != nil {
				return 0
			}
			defer c.DestroyGraph(g)
			e0, err0 := c.NewEvent()
			e1, err1 := c.NewEvent()
			k.check(err0)
			k.check(err1)
			defer c.DestroyEvent(e0)
			defer c.DestroyEvent(e1)
			k.check(c.LaunchGraph(g))
			k.check(c.Sync())
			var ts []float64
			for rep := 0; rep < 7 && k.err == nil; rep++ {
				k.check(c.Record(e0))
				k.check(c.LaunchGraph(g))
				k.check(c.Record(e1))
				ms, err := c.Elapsed(e0, e1)
				k.check(err)
				ts = append(ts, float64(ms)*1000/float64(n))
			}
			if k.err != nil {
				return 0
			}
			return median(ts)
		}

		// Copy bandwidth (bytes read + written).
		const cpy = 1 << 30
		a, b := k.alloc(cpy), k.alloc(cpy)
		us := timeGraph(4, func(int) error { return c.Copy(b, a, cpy) })
		report("device copy 1 GiB (read+write)", us, 2*cpy)
		copyGBs := 2 * cpy / us / 1e3
		_ = c.Free(a)
		_ = c.Free(b)
		k.bufs = k.bufs[:0]

		x := k.f32(gauss(r, 10240, 1))
		xq := k.alloc(cuda.Q81Bytes(20, 10240))
		k.check(c.QuantizeQ81(x, 512, 20, 512, xq))
		xq2048 := k.alloc(cuda.Q81Bytes(1, 2048))
		k.check(c.QuantizeQ81(x, 2048, 1, 2048, xq2048))
		xqRow := k.alloc(cuda.Q81Bytes(1, 10240)) // one activation row of up to 10240
		k.check(c.QuantizeQ81(x, 10240, 1, 10240, xqRow))
		y := k.alloc(4 * 154880 * 2)

		dense := func(name string, t gguf.TensorType, rows, cols, n int, mode cuda.MatVecMode) {
			rb, _ := t.RowBytes(uint64(cols))
			size := int64(rb) * int64(rows)
			nc := copiesFor(size)
			w := k.alloc(size * int64(nc))
			k.check(c.Fill32(w, 0x3c003c00)) // f16 1.0 scales, codes 0x00/0x3c: finite data
			xin := xqRow
			if !cuda.IsQuantized(t) {
				xin = x
			}
			us := timeGraph(n, func(i int) error {
				wi, _ := w.Slice(int64(i%nc)*size, size)
				return c.MatVec(cuda.MatVec{W: wi, Type: t, Rows: rows, Cols: cols, X: xin, Y: y, Mode: mode})
			})
			report(fmt.Sprintf("%s %s %dx%d", name, t, rows, cols), us, size)
			_ = c.Free(w)
		}
		experts := func(name string, t gguf.TensorType, nExp, rows, cols, slots int, shared bool, n int, mode cuda.MatVecMode) {
			rb, _ := t.RowBytes(uint64(cols))
			eb := int64(rb) * int64(rows)
			w := k.alloc(eb * int64(nExp))
			k.check(c.Fill32(w, 0x3c003c00))
			ids := make([]int32, n*slots)
			for i := 0; i < n; i++ {
				perm := r.Perm(nExp)
				for s := 0; s < slots; s++ {
					ids[i*slots+s] = int32(perm[s%nExp])
				}
			}
			idb := k.i32(ids)
			xin := xq
			if !shared && !cuda.IsQuantized(t) {
				xin = x
			}
			us := timeGraph(n, func(i int) error {
				id, _ := idb.Slice(int64(4*i*slots), int64(4*slots))
				return c.MatVec(cuda.MatVec{W: w, Type: t, Rows: rows, Cols: cols, NExperts: nExp, IDs: id, Slots: slots,
					X: xin, XShared: shared, Y: y, Mode: mode})
			})
			report(fmt.Sprintf("%s %s %dx%d x%d/%d m%d", name, t, rows, cols, slots, nExp, mode), us, eb*int64(slots))
		}

		for _, mode := range []cuda.MatVecMode{cuda.MatVecBlockPerRow, cuda.MatVecWarpPerRow} {
			m := fmt.Sprintf(" m%d", mode)
			dense("attn_q_b-like"+m, gguf.TypeQ4_K, 5120, 2048, 100, mode)
			dense("attn_q_a"+m, gguf.TypeQ4_K, 768, 2048, 100, mode)
			dense("attn_kv_a_mqa"+m, gguf.TypeQ4_K, 576, 2048, 100, mode)
			dense("attn_output"+m, gguf.TypeQ4_K, 2048, 5120, 100, mode)
			dense("ffn_down_shexp"+m, gguf.TypeQ6_K, 2048, 1536, 100, mode)
			dense("ffn_gate_shexp"+m, gguf.TypeQ4_K, 1536, 2048, 100, mode)
			dense("blk.0 ffn_up"+m, gguf.TypeQ4_K, 10240, 2048, 50, mode)
			dense("blk.0 ffn_down"+m, gguf.TypeQ6_K, 2048, 10240, 50, mode)
			dense("LM head"+m, gguf.TypeQ6_K, 154880, 2048, 10, mode)
			dense("LM head (q4_K for comparison)"+m, gguf.TypeQ4_K, 154880, 2048, 10, mode)
			dense("q8_0 5120x2048"+m, gguf.TypeQ8_0, 5120, 2048, 50, mode)
		}
		dense("router", gguf.TypeF32, 64, 2048, 100, cuda.MatVecAuto)
		dense("bf16 attn_q_b-like", gguf.TypeBF16, 5120, 2048, 50, cuda.MatVecAuto)
		auto, blk, wrp := cuda.MatVecAuto, cuda.MatVecBlockPerRow, cuda.MatVecWarpPerRow
		experts("ffn_gate_exps", gguf.TypeQ4_K, 64, 1536, 2048, 4, true, 100, auto)
		experts("ffn_gate_exps", gguf.TypeQ4_K, 64, 1536, 2048, 4, true, 100, wrp)
		experts("ffn_down_exps", gguf.TypeQ4_K, 64, 2048, 1536, 4, false, 100, blk)
		experts("ffn_down_exps", gguf.TypeQ4_K, 64, 2048, 1536, 4, false, 100, wrp)
		experts("ffn_down_exps", gguf.TypeQ6_K, 64, 2048, 1536, 4, false, 100, blk)
		experts("ffn_down_exps", gguf.TypeQ6_K, 64, 2048, 1536, 4, false, 100, wrp)
		experts("attn_k_b (per head)", gguf.TypeQ5_0, 20, 512, 192, 20, false, 100, blk)
		experts("attn_k_b (per head)", gguf.TypeQ5_0, 20, 512, 192, 20, false, 100, wrp)
		experts("attn_v_b (per head)", gguf.TypeQ4_K, 20, 256, 512, 20, false, 100, blk)
		experts("attn_v_b (per head)", gguf.TypeQ4_K, 20, 256, 512, 20, false, 100, wrp)

		h := k.f32(gauss(r, 2048, 1))
		nw := k.f32(gauss(r, 2048, 1))
		report("quantize_q8_1 2048", timeGraph(100, func(int) error { return c.QuantizeQ81(h, 2048, 1, 2048, xq2048) }), 0)
		report("rmsnorm 2048 (in place)", timeGraph(100, func(int) error { return c.RMSNorm(h, 2048, nw, h, 2048, 1, 2048, 1e-5) }), 0)
		report("rmsnorm 2048", timeGraph(100, func(int) error { return c.RMSNorm(h, 2048, nw, y, 2048, 1, 2048, 1e-5) }), 0)
		logits := k.f32(gauss(r, 154880, 1))
		am := k.alloc(64)
		report("argmax 154880", timeGraph(100, func(int) error { return c.Argmax(logits, 154880, 154880, 1, am) }), 4*154880)
		idb, wb := k.alloc(64), k.alloc(64)
		report("router top-4 of 64", timeGraph(100, func(int) error {
			return c.Router(logits, 64, nw, 64, 4, true, 1.8, 1, idb, wb)
		}), 0)
		report("swiglu 4x1536", timeGraph(100, func(int) error { return c.SwiGLU(logits, logits, y, 6144) }), 0)

		for _, tc := range []struct {
			nkv               int
			cores, nopip, f16 bool
			splitsPerSM       int
		}{
			// The decode fast path (f16 Q and P) at the short contexts of
			// a chat's first tokens.
			{16, false, false, true, 2}, {128, false, false, true, 2}, {512, false, false, true, 2}, {4096, false, false, true, 2},
			{16, false, false, true, -16}, {128, false, false, true, -16}, {16, false, false, true, -1},
			{512, false, false, false, 2}, {4096, false, false, false, 2}, {32768, false, false, false, 2}, {131072, false, false, false, 2},
			{4096, false, false, false, 1}, {32768, false, false, false, 1}, {131072, false, false, false, 1},
			{512, false, true, false, 2}, {4096, false, true, false, 2}, {32768, false, true, false, 2},
			{4096, true, false, false, 2}, {32768, true, false, false, 2},
		} {
			const hh, dd, dv = 20, 576, 512
			nkv := tc.nkv
			splits := tc.splitsPerSM * info.SMs
			if tc.splitsPerSM < 0 {
				splits = -tc.splitsPerSM // an absolute count
			}
			cache := k.alloc(int64(2 * dd * nkv))
			k.check(c.Fill32(cache, 0x3c003c00))
			q := k.f32(gauss(r, hh*dd, 0.1))
			nb := k.i32([]int32{int32(nkv)})
			scratch := k.alloc(cuda.MLAScratchBytes(splits, hh, dv))
			out := k.alloc(4 * hh * dv)
			a := cuda.MLADecode{Q: q, QStride: dd, H: hh, D: dd, Dv: dv, KV: cache, KVStride: dd,
				NKV: nb, Scale: 0.0625, Splits: splits, Scratch: scratch, Out: out, OutStride: dv,
				CUDACores: tc.cores, NoPipeline: tc.nopip, F16QP: tc.f16}
			us := timeGraph(20, func(int) error { return c.MLADecode(a) })
			report(fmt.Sprintf("mla n_kv=%d %d splits %s", nkv, splits, cuda.MLAKernel(a)), us, int64(2*dd*nkv))
			_ = c.Free(cache)
		}
		lines = append(lines, fmt.Sprintf("(copy bandwidth %.1f GB/s)", copyGBs))
	})
	tel1 := d.Telemetry()
	t.Logf("telemetry after: power %.1f W (%v), energy %.1f J since before (%v), mem used %.2f GiB",
		tel1.PowerW, tel1.HasPower, tel1.EnergyJ-tel0.EnergyJ, tel1.HasEnergy, float64(tel1.MemUsed)/(1<<30))
	for _, l := range lines {
		t.Log(l)
	}
}
