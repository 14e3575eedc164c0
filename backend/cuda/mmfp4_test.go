package cuda_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/glmrun/glmrun/backend/cuda"
	"github.com/glmrun/glmrun/backend/quant"
	"github.com/glmrun/glmrun/gguf"
)

// randomMMFP4 returns n slabs of rows x cols MMFP4 weights: random code
// bytes (all 16 codes, -0 included, in both nibbles) and fp16 scales drawn
// from a sane range.
func randomMMFP4(r *rand.Rand, n, rows, cols int) []byte {
	slab, err := quant.MMFP4SlabBytes(rows, cols)
	if err != nil {
		panic(err)
	}
	b := make([]byte, n*slab)
	for e := 0; e < n; e++ {
		s := b[e*slab : (e+1)*slab]
		codes := rows * cols / 2
		for i := 0; i < codes; i++ {
			s[i] = byte(r.Uint32())
		}
		for off := codes; off < slab; off += 2 {
			binary.LittleEndian.PutUint16(s[off:], quant.Float32ToFP16(float32(0.002+0.01*r.Float64())))
		}
	}
	return b
}

// refMMFP4 returns W·x per row against the Q8_1 activations the GPU uses
// (asGPU) and against exact f32 x, W being one rows x cols slab.
func refMMFP4(t *testing.T, slab []byte, rows, cols int, x []float32) (exact, asGPU []float64) {
	wf := make([]float32, rows*cols)
	if err := quant.DequantizeMMFP4(slab, rows, cols, wf); err != nil {
		t.Fatal(err)
	}
	q, d, _ := q81(x)
	exact, asGPU = make([]float64, rows), make([]float64, rows)
	for r := 0; r < rows; r++ {
		var a, g float64
		for i, w := range wf[r*cols : (r+1)*cols] {
			a += float64(w) * float64(x[i])
			g += float64(w) * d[i/32] * float64(q[i])
		}
		exact[r], asGPU[r] = a, g
	}
	return exact, asGPU
}

// TestMatVecMMFP4 checks the MMFP4 matvec in both thread layouts, alone and
// expert-indexed (one slab per expert, a bad id giving NaN), against the
// dequantised slab (backend/quant) with the bounds of TestMatVec.
func TestMatVecMMFP4(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	for _, tc := range []struct{ rows, cols int }{{256, 2048}, {136, 1536}, {40, 128}, {8, 5120}} {
		for _, mode := range []cuda.MatVecMode{cuda.MatVecBlockPerRow, cuda.MatVecWarpPerRow, cuda.MatVecAuto} {
			w := randomMMFP4(r, 1, tc.rows, tc.cols)
			x := gauss(r, tc.cols, 1)
			var got []float32
			run(t, d, func(k *kit) {
				xq := k.alloc(cuda.Q81Bytes(1, tc.cols))
				k.check(k.c.QuantizeQ81(k.f32(x), tc.cols, 1, tc.cols, xq))
				y := k.alloc(int64(4 * tc.rows))
				k.check(k.c.MatVec(cuda.MatVec{W: k.upload(w), Type: gguf.TypeMMFP4, Rows: tc.rows, Cols: tc.cols, X: xq, Y: y, Mode: mode}))
				got = k.readF32(y, tc.rows)
			})
			exact, asGPU := refMMFP4(t, w, tc.rows, tc.cols, x)
			eg, ee := relL2(got, asGPU), relL2(got, exact)
			t.Logf("mmfp4 %4dx%-5d mode %d: rel_l2 vs GPU-activation ref %.2e, vs exact ref %.2e", tc.rows, tc.cols, mode, eg, ee)
			if eg > boundAsGPU || ee > boundExactQuant {
				t.Errorf("mmfp4 %dx%d mode %d: rel_l2 %.3e (bound %.0e) / exact %.3e (bound %.0e)", tc.rows, tc.cols, mode, eg, boundAsGPU, ee, boundExactQuant)
			}
		}
	}

	const nExp, slots, rows, cols = 6, 4, 96, 512
	slab, _ := quant.MMFP4SlabBytes(rows, cols)
	w := randomMMFP4(r, nExp, rows, cols)
	ids := []int32{5, 2, 0, 5}
	x := gauss(r, slots*cols, 1)
	var got, bad []float32
	run(t, d, func(k *kit) {
		xq := k.alloc(cuda.Q81Bytes(slots, cols))
		k.check(k.c.QuantizeQ81(k.f32(x), cols, slots, cols, xq))
		y := k.alloc(int64(4 * slots * rows))
		m := cuda.MatVec{W: k.upload(w), Type: gguf.TypeMMFP4, Rows: rows, Cols: cols, NExperts: nExp, IDs: k.i32(ids), Slots: slots, X: xq, Y: y}
		k.check(k.c.MatVec(m))
		got = k.readF32(y, slots*rows)
		m.IDs = k.i32([]int32{nExp, -1, 0, 0})
		k.check(k.c.MatVec(m))
		bad = k.readF32(y, 2*rows)
	})
	for s, e := range ids {
		_, asGPU := refMMFP4(t, w[int(e)*slab:(int(e)+1)*slab], rows, cols, x[s*cols:(s+1)*cols])
		if err := relL2(got[s*rows:(s+1)*rows], asGPU); err > boundAsGPU {
			t.Errorf("mmfp4 experts slot %d (expert %d): rel_l2 %.3e", s, e, err)
		}
	}
	for i, v := range bad {
		if !math.IsNaN(float64(v)) {
			t.Fatalf("mmfp4: bad expert id gave %v at %d, want NaN", v, i)
		}
	}
}
