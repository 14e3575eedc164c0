package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// level describes one vector width the kernels are generated for.
type level struct {
	suffix string // function name suffix: AVX2 or AVX512
	z      bool   // 512-bit registers
}

var (
	avx2   = level{"AVX2", false}
	avx512 = level{"AVX512", true}
)

// lanes is the number of float32 lanes of one vector.
func (l level) lanes() int {
	if l.z {
		return 16
	}
	return 8
}

func (l level) vec() VecVirtual {
	if l.z {
		return ZMM()
	}
	return YMM()
}

// half returns the vector register of half the width aliasing v.
func (l level) half(v VecVirtual) Register {
	if l.z {
		return v.AsY()
	}
	return v.AsX()
}

// bcastD fills every dword of dst with the constant c.
func bcastD(c uint32, dst VecVirtual) {
	r := GP32()
	MOVL(U32(c), r)
	x := dst.AsX()
	VMOVD(r, x)
	VPBROADCASTD(x, dst)
}

// hsumPS reduces the float32 lanes of v (YMM, or ZMM when 64 bytes) to its
// lowest lane and returns that XMM register. In AVX-512 code (l.z) only
// EVEX-encodable instructions are used, since v may be Y16..Y31 there.
func hsumPS(l level, v VecVirtual) VecVirtual {
	if v.Size() == 64 {
		t := YMM()
		VEXTRACTF64X4(U8(1), v, t)
		VADDPS(t, v.AsY(), t)
		v = t
	}
	x := XMM()
	if l.z {
		VEXTRACTF32X4(U8(1), v, x)
	} else {
		VEXTRACTF128(U8(1), v, x)
	}
	VADDPS(x, v.AsX(), x)
	return hsumX(x)
}

// hsumX adds the 4 float32 lanes of x into its lowest lane (clobbers x).
func hsumX(x VecVirtual) VecVirtual {
	t := XMM()
	VMOVHLPS(x, x, t)
	VADDPS(t, x, x)
	VPSHUFD(U8(1), x, t)
	VADDSS(t, x, x)
	return x
}

const unroll = 4

// f32Reduce emits a reduction kernel over n elements (a multiple of the lane
// count, checked by the Go caller): acc += f(i) with unroll accumulators.
// load(i, k) emits the product/value for vector i (element offset k*lanes)
// into acc[i%unroll]; adv(elems) advances the pointers.
func f32Reduce(l level, n Register, body func(acc VecVirtual, k int), adv func(elems int)) VecVirtual {
	w := l.lanes()
	acc := make([]VecVirtual, unroll)
	for i := range acc {
		acc[i] = l.vec()
		VXORPS(acc[i], acc[i], acc[i])
	}
	loop, one, done := uniq("loop"), uniq("one"), uniq("done")
	Label(loop)
	CMPQ(n, U32(unroll*w))
	JL(LabelRef(one))
	for i := 0; i < unroll; i++ {
		body(acc[i], i)
	}
	adv(unroll * w)
	SUBQ(U32(unroll*w), n)
	JMP(LabelRef(loop))
	Label(one)
	TESTQ(n, n)
	JZ(LabelRef(done))
	body(acc[0], 0)
	adv(w)
	SUBQ(U32(w), n)
	JMP(LabelRef(one))
	Label(done)
	VADDPS(acc[1], acc[0], acc[0])
	VADDPS(acc[3], acc[2], acc[2])
	VADDPS(acc[2], acc[0], acc[0])
	return hsumPS(l, acc[0])
}

var labels = map[string]int{}

func uniq(s string) string {
	labels[s]++
	return fmt.Sprintf("%s%d", s, labels[s])
}

func genF32() {
	for _, l := range []level{avx2, avx512} {
		w := l.lanes()

		TEXT("dotF32"+l.suffix, NOSPLIT, "func(a, b []float32) float32")
		Pragma("noescape")
		Doc(fmt.Sprintf("dotF32%s returns Σ a[i]*b[i] over len(a) elements, a multiple of %d; len(b) >= len(a).", l.suffix, w))
		{
			a := Mem{Base: Load(Param("a").Base(), GP64())}
			b := Mem{Base: Load(Param("b").Base(), GP64())}
			n := Load(Param("a").Len(), GP64())
			r := f32Reduce(l, n, func(acc VecVirtual, k int) {
				t := l.vec()
				VMOVUPS(a.Offset(4*w*k), t)
				VFMADD231PS(b.Offset(4*w*k), t, acc)
			}, func(e int) {
				ADDQ(U32(4*e), a.Base)
				ADDQ(U32(4*e), b.Base)
			})
			Store(r, ReturnIndex(0))
			VZEROUPPER()
			RET()
		}

		TEXT("sumSquares"+l.suffix, NOSPLIT, "func(x []float32) float32")
		Pragma("noescape")
		Doc(fmt.Sprintf("sumSquares%s returns Σ x[i]² over len(x) elements, a multiple of %d.", l.suffix, w))
		{
			a := Mem{Base: Load(Param("x").Base(), GP64())}
			n := Load(Param("x").Len(), GP64())
			r := f32Reduce(l, n, func(acc VecVirtual, k int) {
				t := l.vec()
				VMOVUPS(a.Offset(4*w*k), t)
				VFMADD231PS(t, t, acc)
			}, func(e int) { ADDQ(U32(4*e), a.Base) })
			Store(r, ReturnIndex(0))
			VZEROUPPER()
			RET()
		}

		TEXT("dotBF16F32"+l.suffix, NOSPLIT, "func(w []byte, x []float32) float32")
		Pragma("noescape")
		Doc(fmt.Sprintf("dotBF16F32%s returns Σ bf16(w[2i:])*x[i] over len(x) elements, a multiple of %d; len(w) >= 2*len(x).", l.suffix, w))
		{
			wp := Mem{Base: Load(Param("w").Base(), GP64())}
			x := Mem{Base: Load(Param("x").Base(), GP64())}
			n := Load(Param("x").Len(), GP64())
			r := f32Reduce(l, n, func(acc VecVirtual, k int) {
				t := l.vec()
				VPMOVZXWD(wp.Offset(2*w*k), t)
				VPSLLD(U8(16), t, t)
				VFMADD231PS(x.Offset(4*w*k), t, acc)
			}, func(e int) {
				ADDQ(U32(2*e), wp.Base)
				ADDQ(U32(4*e), x.Base)
			})
			Store(r, ReturnIndex(0))
			VZEROUPPER()
			RET()
		}

		TEXT("dotF16F32"+l.suffix, NOSPLIT, "func(w []byte, x []float32) float32")
		Pragma("noescape")
		Doc(fmt.Sprintf("dotF16F32%s returns Σ fp16(w[2i:])*x[i] over len(x) elements, a multiple of %d; len(w) >= 2*len(x).", l.suffix, w))
		{
			wp := Mem{Base: Load(Param("w").Base(), GP64())}
			x := Mem{Base: Load(Param("x").Base(), GP64())}
			n := Load(Param("x").Len(), GP64())
			r := f32Reduce(l, n, func(acc VecVirtual, k int) {
				t := l.vec()
				VCVTPH2PS(wp.Offset(2*w*k), t)
				VFMADD231PS(x.Offset(4*w*k), t, acc)
			}, func(e int) {
				ADDQ(U32(2*e), wp.Base)
				ADDQ(U32(4*e), x.Base)
			})
			Store(r, ReturnIndex(0))
			VZEROUPPER()
			RET()
		}

		TEXT("axpyF32"+l.suffix, NOSPLIT, "func(alpha float32, x, y []float32)")
		Pragma("noescape")
		Doc(fmt.Sprintf("axpyF32%s sets y[i] = fma(alpha, x[i], y[i]) over len(x) elements, a multiple of %d; len(y) >= len(x).", l.suffix, w))
		{
			al := Load(Param("alpha"), XMM())
			av := l.vec()
			VBROADCASTSS(al, av)
			x := Mem{Base: Load(Param("x").Base(), GP64())}
			y := Mem{Base: Load(Param("y").Base(), GP64())}
			n := Load(Param("x").Len(), GP64())
			f32Map(l, n, func(k int) {
				t := l.vec()
				VMOVUPS(y.Offset(4*w*k), t)
				VFMADD231PS(x.Offset(4*w*k), av, t)
				VMOVUPS(t, y.Offset(4*w*k))
			}, func(e int) {
				ADDQ(U32(4*e), x.Base)
				ADDQ(U32(4*e), y.Base)
			})
			VZEROUPPER()
			RET()
		}

		TEXT("scaleF32"+l.suffix, NOSPLIT, "func(alpha float32, x []float32)")
		Pragma("noescape")
		Doc(fmt.Sprintf("scaleF32%s sets x[i] *= alpha over len(x) elements, a multiple of %d.", l.suffix, w))
		{
			al := Load(Param("alpha"), XMM())
			av := l.vec()
			VBROADCASTSS(al, av)
			x := Mem{Base: Load(Param("x").Base(), GP64())}
			n := Load(Param("x").Len(), GP64())
			f32Map(l, n, func(k int) {
				t := l.vec()
				VMULPS(x.Offset(4*w*k), av, t)
				VMOVUPS(t, x.Offset(4*w*k))
			}, func(e int) { ADDQ(U32(4*e), x.Base) })
			VZEROUPPER()
			RET()
		}
	}
}

// f32Map emits an element-wise loop over n elements (a multiple of the lane
// count).
func f32Map(l level, n Register, body func(k int), adv func(elems int)) {
	w := l.lanes()
	loop, one, done := uniq("loop"), uniq("one"), uniq("done")
	Label(loop)
	CMPQ(n, U32(unroll*w))
	JL(LabelRef(one))
	for i := 0; i < unroll; i++ {
		body(i)
	}
	adv(unroll * w)
	SUBQ(U32(unroll*w), n)
	JMP(LabelRef(loop))
	Label(one)
	TESTQ(n, n)
	JZ(LabelRef(done))
	body(0)
	adv(w)
	SUBQ(U32(w), n)
	JMP(LabelRef(one))
	Label(done)
}
