package main

import (
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// expConsts are the broadcast constants of the vector e^x (the Cephes
// expf of package kernels' Exp32, evaluated 16 lanes at a time).
type expConsts struct {
	lo, hi, log2e, c1, c2 VecVirtual
	poly                  [6]VecVirtual
	one                   VecVirtual
}

// f32Const returns a read-only symbol holding float32 v.
func f32Const(name string, v float32) Mem {
	b := math.Float32bits(v)
	return constBytes(name, []byte{byte(b), byte(b >> 8), byte(b >> 16), byte(b >> 24)})
}

func loadExpConsts() expConsts {
	var k expConsts
	bc := func(name string, v float32) VecVirtual {
		r := ZMM()
		VBROADCASTSS(f32Const(name, v), r)
		return r
	}
	k.lo, k.hi = bc("expLo", -87), bc("expHi", 88)
	k.log2e = bc("expLog2e", 1.44269504088896341)
	k.c1, k.c2 = bc("expC1", 0.693359375), bc("expC2", -2.12194440e-4)
	for i, c := range []float32{1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1} {
		k.poly[i] = bc(cname("expP%d", i), c)
	}
	k.one = bc("expOne", 1)
	return k
}

// expPS replaces the 16 lanes of x by e^x: x is clamped to [−87, 88] (NaN
// stays NaN), split as n·ln2 + r with n = round(x·log2 e) and ln2 in two
// parts, e^r by the degree-6 polynomial of Exp32, then scaled by 2^n
// (VSCALEFPS). Within 2 ulp of e^x for x in the clamp range.
func expPS(k expConsts, x VecVirtual) {
	VMAXPS(x, k.lo, x) // max(lo, x): NaN in x is returned
	VMINPS(x, k.hi, x)
	z := ZMM()
	VMULPS(k.log2e, x, z)
	VRNDSCALEPS(U8(0), z, z) // round to nearest
	VFNMADD231PS(k.c1, z, x) // x −= z·c1 (exact: c1 has 9 bits)
	VFNMADD231PS(k.c2, z, x) // x −= z·c2
	p := ZMM()
	VMOVAPS(k.poly[0], p)
	for _, c := range k.poly[1:] {
		VFMADD213PS(c, x, p) // p = p·r + c
	}
	rr := ZMM()
	VMULPS(x, x, rr)
	VFMADD213PS(x, rr, p) // p = p·r² + r
	VADDPS(k.one, p, p)
	VSCALEFPS(z, p, x) // x = p·2^z
}

func genExp() {
	TEXT("expShiftF32AVX512", NOSPLIT, "func(x []float32, scale, shift float32)")
	Pragma("noescape")
	Doc("expShiftF32AVX512 sets x[i] = e^((x[i]−shift)·scale) over len(x) elements, a multiple of 16.")
	{
		x := Mem{Base: Load(Param("x").Base(), GP64())}
		n := Load(Param("x").Len(), GP64())
		sc, sh := ZMM(), ZMM()
		VBROADCASTSS(Load(Param("scale"), XMM()), sc)
		VBROADCASTSS(Load(Param("shift"), XMM()), sh)
		k := loadExpConsts()
		loop, done := uniq("loop"), uniq("done")
		Label(loop)
		TESTQ(n, n)
		JZ(LabelRef(done))
		v := ZMM()
		VMOVUPS(x, v)
		VSUBPS(sh, v, v)
		VMULPS(sc, v, v)
		expPS(k, v)
		VMOVUPS(v, x)
		ADDQ(U8(64), x.Base)
		SUBQ(U8(16), n)
		JMP(LabelRef(loop))
		Label(done)
		VZEROUPPER()
		RET()
	}

	TEXT("swigluF32AVX512", NOSPLIT, "func(out, gate, up []float32)")
	Pragma("noescape")
	Doc("swigluF32AVX512 sets out[i] = gate[i]/(1+e^(−gate[i]))·up[i] over len(out) elements, a multiple of 16.")
	{
		o := Mem{Base: Load(Param("out").Base(), GP64())}
		g := Mem{Base: Load(Param("gate").Base(), GP64())}
		u := Mem{Base: Load(Param("up").Base(), GP64())}
		n := Load(Param("out").Len(), GP64())
		k := loadExpConsts()
		sign := ZMM()
		bcastD(0x80000000, sign)
		loop, done := uniq("loop"), uniq("done")
		Label(loop)
		TESTQ(n, n)
		JZ(LabelRef(done))
		gv, e := ZMM(), ZMM()
		VMOVUPS(g, gv)
		VXORPS(sign, gv, e)
		expPS(k, e)
		VADDPS(k.one, e, e)
		VDIVPS(e, gv, gv) // g/(1+e^−g)
		VMULPS(u, gv, gv)
		VMOVUPS(gv, o)
		for _, m := range []Mem{o, g, u} {
			ADDQ(U8(64), m.Base)
		}
		SUBQ(U8(16), n)
		JMP(LabelRef(loop))
		Label(done)
		VZEROUPPER()
		RET()
	}
}
