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

// randomWeights returns rows x cols weights of type t: random bytes for the
// quantised codes and scales (every bit pattern occurs) with the f16 block
// scales drawn from a sane range, or Gaussian values for float types.
func randomWeights(r *rand.Rand, t gguf.TensorType, rows, cols int) []byte {
	rowBytes, err := t.RowBytes(uint64(cols))
	if err != nil {
		panic(err)
	}
	b := make([]byte, int(rowBytes)*rows)
	putF16 := func(off int, v float32) { binary.LittleEndian.PutUint16(b[off:], quant.Float32ToFP16(v)) }
	scale := func() float32 { return float32(0.002 + 0.01*r.Float64()) }
	switch t {
	case gguf.TypeF32:
		copy(b, f32Bytes(gauss(r, rows*cols, 0.05)))
		return b
	case gguf.TypeF16:
		for i, v := range gauss(r, rows*cols, 0.05) {
			putF16(2*i, v)
		}
		return b
	case gguf.TypeBF16:
		for i, v := range gauss(r, rows*cols, 0.05) {
			binary.LittleEndian.PutUint16(b[2*i:], quant.Float32ToBF16(v))
		}
		return b
	}
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	bs := t.TypeSize()
	for off := 0; off < len(b); off += bs {
		switch t {
		case gguf.TypeQ4_K:
			putF16(off, scale()/8)
			putF16(off+2, scale()/8)
		case gguf.TypeQ6_K:
			putF16(off+208, scale()/16)
		case gguf.TypeQ5_0, gguf.TypeQ8_0:
			putF16(off, scale())
		}
	}
	return b
}

// refMatVec returns, per row, the dot of the dequantised weights (via
// backend/quant) with (a) the exact f32 activations and (b) the activations
// as the GPU sees them (Q8_1-quantised for quantised weight types, with
// Q5_0's offset term taken from the stored f16 block sum, as the kernel does).
func refMatVec(t gguf.TensorType, w []byte, rows, cols int, x []float32) (exact, asGPU []float64) {
	rowBytes, _ := t.RowBytes(uint64(cols))
	wf := make([]float32, cols)
	xg := make([]float64, cols)
	var q []int8
	var d, s []float64
	if cuda.IsQuantized(t) {
		q, d, s = q81(x)
		for i := range xg {
			xg[i] = d[i/32] * float64(q[i])
		}
	} else {
		for i := range xg {
			xg[i] = float64(x[i])
		}
	}
	exact, asGPU = make([]float64, rows), make([]float64, rows)
	for r := 0; r < rows; r++ {
		wr := w[r*int(rowBytes) : (r+1)*int(rowBytes)]
		if err := quant.Dequantize(t, wr, wf); err != nil {
			panic(err)
		}
		var a, g float64
		for i, wv := range wf {
			a += float64(wv) * float64(x[i])
			g += float64(wv) * xg[i]
		}
		if t == gguf.TypeQ5_0 {
			for b := 0; b < cols/32; b++ {
				d5 := float64(quant.FP16ToFloat32(binary.LittleEndian.Uint16(wr[22*b:])))
				var sx float64
				for i := 32 * b; i < 32*b+32; i++ {
					sx += xg[i]
				}
				g += 16 * d5 * (sx - s[b])
			}
		}
		exact[r], asGPU[r] = a, g
	}
	return exact, asGPU
}

// Error bounds (relative L2 over the output vector):
//   - vs the activations the GPU uses: 1e-4 for every type (f32 accumulation
//     order only; observed errors are ~1e-7);
//   - vs exact f32 activations: 3e-2 for quantised types (Q8_1 activation
//     rounding, ~0.5% for Gaussian inputs), 1e-4 for float weights.
const (
	boundAsGPU      = 1e-4
	boundExactQuant = 3e-2
)

var matvecCases = []struct {
	t          gguf.TensorType
	rows, cols int
}{
	{gguf.TypeQ4_K, 257, 2048}, {gguf.TypeQ4_K, 130, 1536}, {gguf.TypeQ4_K, 33, 256},
	{gguf.TypeQ6_K, 257, 2048}, {gguf.TypeQ6_K, 64, 1536},
	{gguf.TypeQ5_0, 129, 192}, {gguf.TypeQ5_0, 64, 512}, {gguf.TypeQ5_0, 40, 32},
	{gguf.TypeQ8_0, 129, 2048}, {gguf.TypeQ8_0, 31, 96},
	{gguf.TypeBF16, 67, 2048}, {gguf.TypeBF16, 33, 70},
	{gguf.TypeF16, 67, 512}, {gguf.TypeF16, 9, 13},
	{gguf.TypeF32, 64, 2048}, {gguf.TypeF32, 5, 7},
}

func TestMatVec(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	for _, tc := range matvecCases {
		modes := []cuda.MatVecMode{cuda.MatVecAuto}
		if cuda.IsQuantized(tc.t) {
			modes = []cuda.MatVecMode{cuda.MatVecBlockPerRow, cuda.MatVecWarpPerRow}
		}
		for _, mode := range modes {
			w := randomWeights(r, tc.t, tc.rows, tc.cols)
			x := gauss(r, tc.cols, 1)
			var got []float32
			run(t, d, func(k *kit) {
				wb, xb := k.upload(w), k.f32(x)
				y := k.alloc(int64(4 * tc.rows))
				if cuda.IsQuantized(tc.t) {
					xq := k.alloc(cuda.Q81Bytes(1, tc.cols))
					k.check(k.c.QuantizeQ81(xb, tc.cols, 1, tc.cols, xq))
					xb = xq
				}
				k.check(k.c.MatVec(cuda.MatVec{W: wb, Type: tc.t, Rows: tc.rows, Cols: tc.cols, X: xb, Y: y, Mode: mode}))
				got = k.readF32(y, tc.rows)
			})
			exact, asGPU := refMatVec(tc.t, w, tc.rows, tc.cols, x)
			eg, ee := relL2(got, asGPU), relL2(got, exact)
			be := boundExactQuant
			if !cuda.IsQuantized(tc.t) {
				be = boundAsGPU
			}
			t.Logf("%-5s %4dx%-5d mode %d: rel_l2 vs GPU-activation ref %.2e, vs exact ref %.2e", tc.t, tc.rows, tc.cols, mode, eg, ee)
			if eg > boundAsGPU || ee > be {
				t.Errorf("%s %dx%d mode %d: rel_l2 %.3e (bound %.0e) / exact %.3e (bound %.0e)", tc.t, tc.rows, tc.cols, mode, eg, boundAsGPU, ee, be)
			}
		}
	}
}

// TestMatVecExperts checks the expert-indexed form: W [E][rows][cols], ids
// on the device, shared and per-slot activations, and NaN for a bad id.
func TestMatVecExperts(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	const nExp, slots = 8, 4
	for _, tc := range []struct {
		t          gguf.TensorType
		rows, cols int
		shared     bool
	}{
		{gguf.TypeQ4_K, 96, 512, true}, {gguf.TypeQ4_K, 96, 512, false}, {gguf.TypeQ6_K, 64, 768, false},
		{gguf.TypeQ5_0, 64, 192, true}, {gguf.TypeQ8_0, 64, 256, false}, {gguf.TypeBF16, 48, 256, false},
		{gguf.TypeF32, 48, 64, true},
	} {
		w := randomWeights(r, tc.t, nExp*tc.rows, tc.cols)
		rowBytes, _ := tc.t.RowBytes(uint64(tc.cols))
		eb := int(rowBytes) * tc.rows
		ids := []int32{int32(r.IntN(nExp)), int32(r.IntN(nExp)), int32(r.IntN(nExp)), 0}
		ids[3] = ids[0] // a repeated expert
		xRows := slots
		if tc.shared {
			xRows = 1
		}
		x := gauss(r, xRows*tc.cols, 1)
		var got, bad []float32
		run(t, d, func(k *kit) {
			wb, xb, idb := k.upload(w), k.f32(x), k.i32(ids)
			y := k.alloc(int64(4 * slots * tc.rows))
			if cuda.IsQuantized(tc.t) {
				xq := k.alloc(cuda.Q81Bytes(xRows, tc.cols))
				k.check(k.c.QuantizeQ81(xb, tc.cols, xRows, tc.cols, xq))
				xb = xq
			}
			m := cuda.MatVec{W: wb, Type: tc.t, Rows: tc.rows, Cols: tc.cols, NExperts: nExp, IDs: idb, Slots: slots, X: xb, XShared: tc.shared, Y: y}
			k.check(k.c.MatVec(m))
			got = k.readF32(y, slots*tc.rows)
			// an out-of-range id must give NaN, not a wild read
			badIDs := k.i32([]int32{nExp, -1, 0, 0})
			m.IDs = badIDs
			k.check(k.c.MatVec(m))
			bad = k.readF32(y, 2*tc.rows)
		})
		for s := 0; s < slots; s++ {
			xs := x
			if !tc.shared {
				xs = x[s*tc.cols : (s+1)*tc.cols]
			}
			e := int(ids[s])
			_, asGPU := refMatVec(tc.t, w[e*eb:(e+1)*eb], tc.rows, tc.cols, xs)
			err := relL2(got[s*tc.rows:(s+1)*tc.rows], asGPU)
			if err > boundAsGPU {
				t.Errorf("%s experts slot %d (expert %d, shared=%v): rel_l2 %.3e", tc.t, s, e, tc.shared, err)
			}
		}
		for i, v := range bad {
			if !math.IsNaN(float64(v)) {
				t.Errorf("%s: bad expert id gave %v at %d, want NaN", tc.t, v, i)
				break
			}
		}
	}
}

func TestQuantizeQ81(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	const rows, cols, stride = 3, 2048, 2080
	x := gauss(r, rows*stride, 2)
	copy(x[stride:stride+32], make([]float32, 32)) // an all-zero block
	var got []byte
	run(t, d, func(k *kit) {
		xb := k.f32(x)
		out := k.alloc(cuda.Q81Bytes(rows, cols))
		k.check(k.c.QuantizeQ81(xb, stride, rows, cols, out))
		got = k.readBytes(out, int(cuda.Q81Bytes(rows, cols)))
	})
	for row := 0; row < rows; row++ {
		q, dd, s := q81(x[row*stride : row*stride+cols])
		for b := 0; b < cols/32; b++ {
			blk := got[(row*cols/32+b)*36:]
			gd := float64(quant.FP16ToFloat32(binary.LittleEndian.Uint16(blk)))
			gs := float64(quant.FP16ToFloat32(binary.LittleEndian.Uint16(blk[2:])))
			if gd != dd[b] || gs != s[b] {
				t.Fatalf("row %d block %d: d,s = %v,%v want %v,%v", row, b, gd, gs, dd[b], s[b])
			}
			for i := 0; i < 32; i++ {
				if int8(blk[4+i]) != q[32*b+i] {
					t.Fatalf("row %d block %d q[%d] = %d want %d", row, b, i, int8(blk[4+i]), q[32*b+i])
				}
			}
		}
	}
}

// TestLaunchValidation checks that bad shapes and short buffers are
// rejected on the host with an error instead of launching.
func TestLaunchValidation(t *testing.T) {
	d := device(t)
	err := d.Do(func(c *cuda.Ctx) error {
		small, err := c.Alloc(64)
		if err != nil {
			return err
		}
		defer c.Free(small)
		bad := []struct {
			name string
			err  error
		}{
			{"short W", c.MatVec(cuda.MatVec{W: small, Type: gguf.TypeQ4_K, Rows: 4, Cols: 256, X: small, Y: small})},
			{"cols not a block multiple", c.MatVec(cuda.MatVec{W: small, Type: gguf.TypeQ8_0, Rows: 1, Cols: 16, X: small, Y: small})},
			{"unsupported type", c.MatVec(cuda.MatVec{W: small, Type: gguf.TypeQ2_K, Rows: 1, Cols: 256, X: small, Y: small})},
			{"experts without ids", c.MatVec(cuda.MatVec{W: small, Type: gguf.TypeF32, Rows: 1, Cols: 2, NExperts: 2, X: small, Y: small})},
			{"rmsnorm short y", c.RMSNorm(small, 16, cuda.Buffer{}, small, 16, 2, 16, 1e-5)},
			{"router k > n", c.Router(small, 4, cuda.Buffer{}, 4, 5, true, 1, 1, small, small)},
			{"mla H too big", c.MLADecode(cuda.MLADecode{H: 64, D: 576, Dv: 512, Splits: 1})},
			{"slice out of range", func() error { _, err := small.Slice(60, 8); return err }()},
		}
		for _, b := range bad {
			if b.err == nil {
				t.Errorf("%s: no error", b.name)
			} else {
				t.Logf("%s: %v", b.name, b.err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
