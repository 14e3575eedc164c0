package cuda_test

import (
	"math"
	"testing"

	"github.com/glmrun/glmrun/backend/cuda"
)

// The fused decode kernels must give the same bits as the launches they
// replace: add then RMSNorm (+Q8_1), RoPE then a row copy, and RMSNorm +
// RoPE + cache store. Each test runs both forms on the same inputs.

func TestNormFusedResidual(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	const rows, cols = 3, 2048
	x, res, w := gauss(r, rows*cols, 1), gauss(r, rows*cols, 1), gauss(r, cols, 1)
	var fx, fy, ux, uy []float32
	var fq, uq []byte
	run(t, d, func(k *kit) {
		qb := cuda.Q81Bytes(rows, cols)
		// fused
		xb, rb, wb, y, q := k.f32(x), k.f32(res), k.f32(w), k.alloc(4*rows*cols), k.alloc(qb)
		k.check(k.c.NormFused(cuda.Norm{X: xb, XStride: cols, Res: rb, ResStride: cols, W: wb, Y: y, YStride: cols,
			Rows: rows, Cols: cols, Eps: 1e-5, Q: q}))
		fx, fy, fq = k.readF32(xb, rows*cols), k.readF32(y, rows*cols), k.readBytes(q, int(qb))
		// unfused
		xb2, y2, q2 := k.f32(x), k.alloc(4*rows*cols), k.alloc(qb)
		k.check(k.c.Add(xb2, rb, xb2, rows*cols))
		k.check(k.c.RMSNormQ81(xb2, cols, wb, y2, cols, rows, cols, 1e-5, q2))
		ux, uy, uq = k.readF32(xb2, rows*cols), k.readF32(y2, rows*cols), k.readBytes(q2, int(qb))
		// y aliasing x with a residual is refused
		if err := k.c.NormFused(cuda.Norm{X: xb, XStride: cols, Res: rb, ResStride: cols, Y: xb, YStride: cols, Rows: rows, Cols: cols}); err == nil {
			t.Error("NormFused accepted y == x with a residual")
		}
	})
	sameBits(t, "x after the add", fx, ux)
	sameBits(t, "normalised rows", fy, uy)
	if string(fq) != string(uq) {
		t.Error("Q8_1 blocks differ between the fused and the separate norm")
	}
}

func TestRoPEInto(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	const heads, toks, qk, nope, rd, w = 4, 3, 48, 32, 16, 80
	q := gauss(r, toks*heads*qk, 1)
	pos := []int32{0, 7, 100000}
	var got, want, qAfter []float32
	run(t, d, func(k *kit) {
		qb, pb := k.f32(q), k.i32(pos)
		dst := k.alloc(4 * toks * heads * w)
		k.check(k.c.FillF32(dst, 0))
		k.check(k.c.RoPEInto(qb, heads*qk, qk, heads, toks, nope, rd, pb, 1e6, tail(t, dst, 4*(w-rd)), heads*w, w))
		got, qAfter = k.readF32(dst, toks*heads*w), k.readF32(qb, toks*heads*qk)
		k.check(k.c.RoPE(qb, heads*qk, qk, heads, toks, nope, rd, pb, 1e6))
		want = k.readF32(qb, toks*heads*qk)
	})
	sameBits(t, "q left unchanged", qAfter, q)
	for tk := 0; tk < toks; tk++ {
		for h := 0; h < heads; h++ {
			g := got[(tk*heads+h)*w+w-rd : (tk*heads+h+1)*w]
			wn := want[(tk*heads+h)*qk+nope : (tk*heads+h)*qk+nope+rd]
			sameBits(t, "rotated pair", g, wn)
		}
	}
}

func TestLatentStoreFused(t *testing.T) {
	d := device(t)
	r := newRNG(t)
	const toks, kvl, rd, capacity = 3, 512, 64, 8
	const w = kvl + rd
	src, nw := gauss(r, toks*w, 1), gauss(r, kvl, 1)
	pos := []int32{5, 0, 9} // 9 is outside the cache: skipped
	for _, f32 := range []bool{false, true} {
		elem := 2
		if f32 {
			elem = 4
		}
		var fused, sep, srcAfter []byte
		run(t, d, func(k *kit) {
			sb, nb, pb := k.f32(src), k.f32(nw), k.i32(pos)
			c1, c2 := k.alloc(int64(elem*capacity*w)), k.alloc(int64(elem*capacity*w))
			k.check(k.c.Fill32(c1, 0x7fc07fc0))
			k.check(k.c.Fill32(c2, 0x7fc07fc0))
			k.check(k.c.LatentStore(cuda.LatentStore{Src: sb, SrcStride: w, Cache: c1, CacheStride: w, Width: w, Pos: pb,
				Tokens: toks, F32: f32, NormW: nb, NNorm: kvl, Eps: 1e-5, RopeDims: rd, Base: 1e4}))
			fused = k.readBytes(c1, elem*capacity*w)
			srcAfter = k.readBytes(sb, 4*toks*w)
			k.check(k.c.RMSNorm(sb, w, nb, sb, w, toks, kvl, 1e-5))
			k.check(k.c.RoPE(sb, w, 0, 1, toks, kvl, rd, pb, 1e4))
			if f32 {
				k.check(k.c.CacheStoreF32(sb, w, c2, w, w, pb, toks))
			} else {
				k.check(k.c.CacheStoreF16(sb, w, c2, w, w, pb, toks))
			}
			sep = k.readBytes(c2, elem*capacity*w)
		})
		if string(srcAfter) != string(f32Bytes(src)) {
			t.Errorf("f32=%v: LatentStore modified its source", f32)
		}
		if string(fused) != string(sep) {
			n := 0
			for i := range fused {
				if fused[i] != sep[i] {
					n++
				}
			}
			t.Errorf("f32=%v: fused store differs from norm + rope + store in %d of %d bytes", f32, n, len(fused))
		}
	}
}

// tail returns b from byte off on.
func tail(t *testing.T, b cuda.Buffer, off int64) cuda.Buffer {
	t.Helper()
	s, err := b.Slice(off, b.Bytes()-off)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: value %d is %v, want %v (bit-identical)", what, i, got[i], want[i])
		}
	}
}
