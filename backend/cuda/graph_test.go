package cuda_test

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/glmrun/glmrun/backend/cuda"
	"github.com/glmrun/glmrun/backend/quant"
	"github.com/glmrun/glmrun/gguf"
)

// TestGraphReplay captures quantize -> Q4_K matvec -> residual add ->
// RMSNorm -> argmax -> f16 cache store (position read from the device) into
// one CUDA graph and replays it three times with new inputs uploaded into
// the same buffers between replays, checking every replay.
func TestGraphReplay(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	const rows, cols, capRows, reps = 512, 2048, 8, 3
	w := randomWeights(r, gguf.TypeQ4_K, rows, cols)
	resid, nw := gauss(r, rows, 1), gauss(r, rows, 1)
	xs := make([][]float32, reps)
	pos := []int32{3, 0, 7}
	for i := range xs {
		xs[i] = gauss(r, cols, 1)
	}
	hs := make([][]float32, reps)
	am := make([]int32, reps)
	var cache []byte
	run(t, d, func(k *kit) {
		c := k.c
		wb, rb, nwb := k.upload(w), k.f32(resid), k.f32(nw)
		xb, xq := k.alloc(4*cols), k.alloc(cuda.Q81Bytes(1, cols))
		y, h := k.alloc(4*rows), k.alloc(4*rows)
		amb, pb := k.alloc(4), k.alloc(4)
		cb := k.alloc(2 * rows * capRows)
		if k.err != nil {
			return
		}
		k.check(c.BeginCapture())
		k.check(c.QuantizeQ81(xb, cols, 1, cols, xq))
		k.check(c.MatVec(cuda.MatVec{W: wb, Type: gguf.TypeQ4_K, Rows: rows, Cols: cols, X: xq, Y: y}))
		k.check(c.Add(y, rb, h, rows))
		k.check(c.RMSNorm(h, rows, nwb, h, rows, 1, rows, 1e-5))
		k.check(c.Argmax(h, rows, rows, 1, amb))
		k.check(c.CacheStoreF16(h, rows, cb, rows, rows, pb, 1))
		g, err := c.EndCapture() // always end the capture, even after an error
		k.check(err)
		if k.err != nil {
			return
		}
		defer c.DestroyGraph(g)
		for i := 0; i < reps; i++ {
			k.check(c.Upload(xb, f32Bytes(xs[i])))
			k.check(c.Upload(pb, i32Bytes(pos[i:i+1])))
			k.check(c.LaunchGraph(g))
			hs[i] = k.readF32(h, rows)
			am[i] = k.readI32(amb, 1)[0]
		}
		cache = k.readBytes(cb, 2*rows*capRows)
	})
	for i := 0; i < reps; i++ {
		_, mv := refMatVec(gguf.TypeQ4_K, w, rows, cols, xs[i])
		var ss float64
		for j := range mv {
			mv[j] += float64(resid[j])
			ss += mv[j] * mv[j]
		}
		sc := 1 / math.Sqrt(ss/rows+1e-5)
		best := 0
		for j := range mv {
			mv[j] *= sc * float64(nw[j])
			if hs[i][j] > hs[i][best] {
				best = j
			}
		}
		if e := relL2(hs[i], mv); e > 1e-4 {
			t.Errorf("replay %d: rel_l2 %.3e > 1e-4", i, e)
		}
		if int(am[i]) != best {
			t.Errorf("replay %d: argmax %d, want %d", i, am[i], best)
		}
		for j := 0; j < rows; j++ {
			o := 2 * (int(pos[i])*rows + j)
			if got, want := binary.LittleEndian.Uint16(cache[o:]), quant.Float32ToFP16(hs[i][j]); got != want {
				t.Fatalf("replay %d: cache row %d elem %d = %#04x, want %#04x", i, pos[i], j, got, want)
			}
		}
	}
}
