package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// stridePtrs returns 4 memory operands base + c·stride (c = 0..3) sharing
// one base register.
func stridePtrs(base, stride Register) []Mem {
	s2, s3 := GP64(), GP64()
	LEAQ(Mem{Base: stride, Index: stride, Scale: 1}, s2)
	LEAQ(Mem{Base: s2, Index: stride, Scale: 1}, s3)
	return []Mem{{Base: base}, {Base: base, Index: stride, Scale: 1}, {Base: base, Index: s2, Scale: 1}, {Base: base, Index: s3, Scale: 1}}
}

// colsPerCall is the number of columns one call of the multi-column dot
// kernels handles: 4 with AVX-512 (16 accumulators of 32 registers), 2
// with AVX2 (8 of 16).
func colsPerCall(l level) int {
	if l.z {
		return 4
	}
	return 2
}

// genDotCols emits name+l.suffix: one row a (elemBytes per element,
// widened to float32 by load) against colsPerCall(l) float32 columns
// b + c·bstride, storing dst[c·dstride]. The row is loaded (and widened)
// once for all the columns. Every column accumulates exactly as f32Reduce
// does (4 accumulators, the same tail and pairing, the same horizontal
// sum), so each result is bit-identical to the single-column kernel's: a
// product does not depend on how many activation rows it was batched with.
// n, the element count, is a multiple of the lane count.
func genDotCols(l level, name, aDecl, aElem string, elemBytes int, load func(Mem, VecVirtual)) {
	w, cols := l.lanes(), colsPerCall(l)
	name += l.suffix
	TEXT(name, NOSPLIT, "func("+aDecl+", n int, b *float32, bstride int, dst *float32, dstride int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s sets dst[c·dstride] = Σ_i %s·b[c·bstride/4 + i] for c < %d over n", name, aElem, cols),
		fmt.Sprintf("elements, a multiple of %d (bstride in bytes); the row is loaded once for the %d columns,", w, cols),
		"each column summed exactly as the single-column kernel sums it.")
	A := Mem{Base: Load(Param("a").Base(), GP64())}
	n := Load(Param("n"), GP64())
	B := stridePtrs(Load(Param("b"), GP64()), Load(Param("bstride"), GP64()))[:cols]
	acc := make([][]VecVirtual, unroll)
	for u := range acc {
		acc[u] = make([]VecVirtual, cols)
		for c := range acc[u] {
			acc[u][c] = l.vec()
			zeroVec(acc[u][c])
		}
	}
	step := func(u int, acc []VecVirtual) {
		t := l.vec()
		load(A.Offset(elemBytes*w*u), t)
		for c := range B {
			VFMADD231PS(B[c].Offset(4*w*u), t, acc[c])
		}
	}
	loop, one, done := uniq("loop"), uniq("one"), uniq("done")
	Label(loop)
	CMPQ(n, U32(unroll*w))
	JL(LabelRef(one))
	for u := 0; u < unroll; u++ {
		step(u, acc[u])
	}
	ADDQ(U32(unroll*elemBytes*w), A.Base)
	ADDQ(U32(unroll*4*w), B[0].Base)
	SUBQ(U32(unroll*w), n)
	JMP(LabelRef(loop))
	Label(one)
	TESTQ(n, n)
	JZ(LabelRef(done))
	step(0, acc[0])
	ADDQ(U32(elemBytes*w), A.Base)
	ADDQ(U32(4*w), B[0].Base)
	SUBQ(U32(w), n)
	JMP(LabelRef(one))
	Label(done)
	dst := Load(Param("dst"), GP64())
	ds := Load(Param("dstride"), GP64())
	for c := 0; c < cols; c++ {
		VADDPS(acc[1][c], acc[0][c], acc[0][c])
		VADDPS(acc[3][c], acc[2][c], acc[2][c])
		VADDPS(acc[2][c], acc[0][c], acc[0][c])
		VMOVSS(hsumPS(l, acc[0][c]), Mem{Base: dst})
		if c < cols-1 {
			LEAQ(Mem{Base: dst, Index: ds, Scale: 4}, dst)
		}
	}
	VZEROUPPER()
	RET()
}

func genF32Multi() {
	for _, l := range []level{avx2, avx512} {
		w := l.lanes()
		genDotCols(l, "dotF32Cols", "a []float32", "a[i]", 4, func(m Mem, t VecVirtual) { VMOVUPS(m, t) })
		genDotCols(l, "dotF16F32Cols", "a []byte", "fp16(a[2i:])", 2, func(m Mem, t VecVirtual) { VCVTPH2PS(m, t) })
		genDotCols(l, "dotBF16F32Cols", "a []byte", "bf16(a[2i:])", 2, func(m Mem, t VecVirtual) {
			VPMOVZXWD(m, t)
			VPSLLD(U8(16), t, t)
		})
		name := "axpyF32x4" + l.suffix
		TEXT(name, NOSPLIT, "func(x []float32, alpha *float32, astride int, y *float32, ystride int)")
		Pragma("noescape")
		Doc(fmt.Sprintf("%s sets y[c·ystride/4 + i] = fma(alpha[c·astride], x[i], ·) for c = 0..3 over len(x)", name),
			fmt.Sprintf("elements, a multiple of %d (ystride in bytes); x is loaded once for the 4 outputs.", w))
		{
			X := Mem{Base: Load(Param("x").Base(), GP64())}
			n := Load(Param("x").Len(), GP64())
			al := Load(Param("alpha"), GP64())
			as := Load(Param("astride"), GP64())
			av := make([]VecVirtual, 4)
			for c := range av {
				av[c] = l.vec()
				VBROADCASTSS(Mem{Base: al}, av[c])
				if c < 3 {
					LEAQ(Mem{Base: al, Index: as, Scale: 4}, al)
				}
			}
			Y := stridePtrs(Load(Param("y"), GP64()), Load(Param("ystride"), GP64()))
			loop, done := uniq("loop"), uniq("done")
			Label(loop)
			TESTQ(n, n)
			JZ(LabelRef(done))
			xv := l.vec()
			VMOVUPS(X, xv)
			for c := range Y {
				t := l.vec()
				VMOVUPS(Y[c], t)
				VFMADD231PS(xv, av[c], t)
				VMOVUPS(t, Y[c])
			}
			ADDQ(U32(4*w), X.Base)
			ADDQ(U32(4*w), Y[0].Base)
			SUBQ(U32(w), n)
			JMP(LabelRef(loop))
			Label(done)
			VZEROUPPER()
			RET()
		}
	}
}
