package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// bcastF fills every lane of dst with the float32 constant bits c.
func bcastF(c uint32, dst VecVirtual) { bcastD(c, dst) }

const (
	f32One  = 0x3f800000
	f32Half = 0x3f000000
	f32M127 = 0xc2fe0000 // -127
	f32P127 = 0x42fe0000 // 127
	absMask = 0x7fffffff
	sgnMask = 0x80000000
)

// hReduce folds the 8 lanes of y with op (VMAXPS/VMINPS) into lane 0 of the
// returned XMM register.
func hReduce(y VecVirtual, op func(a, b, c Op)) VecVirtual {
	x := XMM()
	VEXTRACTF128(U8(1), y, x)
	op(y.AsX(), x, x)
	t := XMM()
	VMOVHLPS(x, x, t)
	op(t, x, x)
	VPSHUFD(U8(1), x, t)
	op(t, x, x)
	return x
}

func genQuantize() {
	genQuantizeQ8_0()
	genQuantizeQ8K()
}

// roundAwayPS rounds the lanes of v half away from zero (C roundf) in
// place: t = trunc(v); v = t + (|v−t| >= 0.5 ? copysign(1, v) : 0).
func roundAwayPS(v, absm, sgnm, one, half VecVirtual) {
	t, f := YMM(), YMM()
	VROUNDPS(U8(3), v, t)
	VSUBPS(t, v, f)
	VANDPS(absm, f, f)
	VCMPPS(U8(13), half, f, f) // f >= 0.5 (GE_OS)
	VANDPS(sgnm, v, v)
	VORPS(one, v, v)
	VANDPS(f, v, v)
	VADDPS(t, v, v)
}

func genQuantizeQ8_0() {
	TEXT("quantizeQ8_0AVX2", NOSPLIT, "func(nb int, src *float32, dst *byte)")
	Pragma("noescape")
	Doc("quantizeQ8_0AVX2 quantizes nb blocks of 32 floats at src into Q8_0 blocks at dst,",
		"bit-exact with quant.QuantizeRowQ8_0: d = amax/127, q = roundf(x·(1/d)), fp16(d) stored (RNE).")
	nb := Load(Param("nb"), GP64())
	S := Mem{Base: Load(Param("src"), GP64())}
	D := Mem{Base: Load(Param("dst"), GP64())}
	absm, sgnm, one, half := YMM(), YMM(), YMM(), YMM()
	bcastD(absMask, absm)
	bcastD(sgnMask, sgnm)
	bcastF(f32One, one)
	bcastF(f32Half, half)
	c127, zero := XMM(), XMM()
	r := GP32()
	MOVL(U32(f32P127), r)
	VMOVD(r, c127)
	VXORPS(zero, zero, zero)
	lowByte := YMM()
	bcastD(0xff, lowByte)
	perm := YMM()
	VMOVDQU(constBytes("q80perm", dwords(0, 4, 1, 5, 2, 6, 3, 7)), perm)

	loop, done := uniq("loop"), uniq("done")
	Label(loop)
	TESTQ(nb, nb)
	JZ(LabelRef(done))
	v := make([]VecVirtual, 4)
	a := YMM()
	for k := range v {
		v[k] = YMM()
		VMOVUPS(S.Offset(32*k), v[k])
		if k == 0 {
			VANDPS(absm, v[k], a)
		} else {
			t := YMM()
			VANDPS(absm, v[k], t)
			VMAXPS(t, a, a)
		}
	}
	amax := hReduce(a, func(x, y, z Op) { VMAXPS(x, y, z) })
	d := XMM()
	VDIVSS(c127, amax, d) // d = amax/127
	id, m := XMM(), XMM()
	VMOVAPS(one.AsX(), id)
	VDIVSS(d, id, id)         // 1/d
	VCMPSS(U8(4), zero, d, m) // d != 0
	VANDPS(m, id, id)
	h := XMM()
	VCVTPS2PH(U8(0), d, h)
	hr := GP32()
	VMOVD(h, hr)
	MOVW(hr.As16(), D)
	idv := YMM()
	VBROADCASTSS(id, idv)
	q := make([]VecVirtual, 4)
	for k := range v {
		VMULPS(idv, v[k], v[k])
		roundAwayPS(v[k], absm, sgnm, one, half)
		q[k] = YMM()
		VCVTTPS2DQ(v[k], q[k])
	}
	// Keep the low byte of each int32 as Go's int8(float) conversion on amd64
	// does (out-of-range and NaN convert to 0x80000000, low byte 0), then pack
	// without saturation effects.
	for k := range q {
		VPAND(lowByte, q[k], q[k])
	}
	VPACKUSDW(q[1], q[0], q[0])
	VPACKUSDW(q[3], q[2], q[2])
	VPACKUSWB(q[2], q[0], q[0])
	VPERMD(q[0], perm, q[0])
	VMOVDQU(q[0], D.Offset(2))
	ADDQ(U32(128), S.Base)
	ADDQ(U32(34), D.Base)
	DECQ(nb)
	JMP(LabelRef(loop))
	Label(done)
	VZEROUPPER()
	RET()
}

func dwords(v ...uint32) []byte {
	var b []byte
	for _, x := range v {
		b = append(b, byte(x), byte(x>>8), byte(x>>16), byte(x>>24))
	}
	return b
}

func genQuantizeQ8K() {
	TEXT("quantizeQ8KAVX2", NOSPLIT, "func(nb int, src *float32, dst *byte)")
	Pragma("noescape")
	Doc("quantizeQ8KAVX2 quantizes nb blocks of 256 floats at src into Q8_K blocks at dst,",
		"bit-exact with quant.QuantizeRowQ8K: m = first element of largest magnitude, iscale = -127/m,",
		"q = min(127, RNE(iscale·x)), d = 1/iscale, bsums = 16-element sums; all-zero block → all zero.")
	nb := Load(Param("nb"), GP64())
	S := Mem{Base: Load(Param("src"), GP64())}
	D := Mem{Base: Load(Param("dst"), GP64())}
	absm, c127, magic, mant, bias := YMM(), YMM(), YMM(), YMM(), YMM()
	bcastD(absMask, absm)
	bcastD(127, c127)
	bcastD(0x4b400000, magic) // 12582912 = 1.5·2^23
	bcastD(0x007fffff, mant)
	bcastD(0x00400000, bias)
	sgn := XMM()
	r := GP32()
	MOVL(U32(sgnMask), r)
	VMOVD(r, sgn)

	loop, done, zeroBlk, next := uniq("loop"), uniq("done"), uniq("zero"), uniq("next")
	haveM, useMax, tie, scan := uniq("havem"), uniq("usemax"), uniq("tie"), uniq("scan")
	Label(loop)
	TESTQ(nb, nb)
	JZ(LabelRef(done))
	vmax, vmin := YMM(), YMM()
	VMOVUPS(S, vmax)
	VMOVAPS(vmax, vmin)
	for k := 1; k < 32; k++ {
		VMAXPS(S.Offset(32*k), vmax, vmax)
		VMINPS(S.Offset(32*k), vmin, vmin)
	}
	mx := hReduce(vmax, func(x, y, z Op) { VMAXPS(x, y, z) })
	mn := hReduce(vmin, func(x, y, z Op) { VMINPS(x, y, z) })
	nmn := XMM()
	VXORPS(sgn, mn, nmn) // -mn
	amax := XMM()
	VMAXSS(nmn, mx, amax)
	zero := XMM()
	VXORPS(zero, zero, zero)
	VUCOMISS(zero, amax)
	JE(LabelRef(zeroBlk))
	m := XMM()
	VUCOMISS(amax, mx)
	JNE(LabelRef(haveM + "n")) // max < amax: the extreme is the minimum
	VUCOMISS(amax, nmn)
	JE(LabelRef(tie))
	Label(useMax)
	VMOVAPS(mx, m)
	JMP(LabelRef(haveM))
	Label(haveM + "n")
	VMOVAPS(mn, m)
	JMP(LabelRef(haveM))

	// Both +amax and −amax occur: the reference keeps the first element of
	// largest magnitude; find it.
	Label(tie)
	av := YMM()
	VBROADCASTSS(amax, av)
	i := GP64()
	XORQ(i, i)
	Label(scan)
	t := YMM()
	VANDPS(S.Idx(i, 1), absm, t)
	VCMPPS(U8(0), av, t, t) // == amax
	msk := GP32()
	VMOVMSKPS(t, msk)
	TESTL(msk, msk)
	JNZ(LabelRef(scan + "f"))
	ADDQ(U8(32), i)
	JMP(LabelRef(scan))
	Label(scan + "f")
	BSFL(msk, msk)
	LEAQ(Mem{Base: i, Index: msk.As64(), Scale: 4}, i)
	VMOVSS(S.Idx(i, 1), m)

	Label(haveM)
	iscale := XMM()
	MOVL(U32(f32M127), r)
	VMOVD(r, iscale)
	VDIVSS(m, iscale, iscale) // -127/m
	dd := XMM()
	MOVL(U32(f32One), r)
	VMOVD(r, dd)
	VDIVSS(iscale, dd, dd) // 1/iscale
	VMOVSS(dd, D)
	iv := YMM()
	VBROADCASTSS(iscale, iv)
	var sums []VecVirtual
	for g := 0; g < 16; g++ {
		i0, i1 := YMM(), YMM()
		VMULPS(S.Offset(64*g), iv, i0)
		VMULPS(S.Offset(64*g+32), iv, i1)
		// ggml's nearest_int, literally: bits(v + 1.5·2^23) & 0x7fffff − 0x400000
		// (round half even; garbage-compatible for |v| >= 2^22, Inf, NaN), then
		// min(127, ·) and Go's int8 truncation (low byte, sign-extended).
		for _, v := range []VecVirtual{i0, i1} {
			VADDPS(magic, v, v)
			VPAND(mant, v, v)
			VPSUBD(bias, v, v)
			VPMINSD(c127, v, v)
			VPSLLD(U8(24), v, v)
			VPSRAD(U8(24), v, v)
		}
		s := YMM()
		VPADDD(i1, i0, s)
		sx := XMM()
		VEXTRACTI128(U8(1), s, sx)
		VPADDD(s.AsX(), sx, sx)
		sums = append(sums, sx)
		VPACKSSDW(i1, i0, i0)
		VPERMQ(U8(0xd8), i0, i0)
		hi := XMM()
		VEXTRACTI128(U8(1), i0, hi)
		VPACKSSWB(hi, i0.AsX(), hi)
		VMOVDQU(hi, D.Offset(4+16*g))
		if len(sums) == 4 {
			VPHADDD(sums[1], sums[0], sums[0])
			VPHADDD(sums[3], sums[2], sums[2])
			VPHADDD(sums[2], sums[0], sums[0]) // [S0 S1 S2 S3]
			VPACKSSDW(sums[0], sums[0], sums[0])
			VMOVQ(sums[0], D.Offset(260+2*(g-3)))
			sums = sums[:0]
		}
	}
	JMP(LabelRef(next))

	Label(zeroBlk)
	z := YMM()
	VPXOR(z, z, z)
	for o := 0; o < 288; o += 32 {
		VMOVDQU(z, D.Offset(o))
	}
	VMOVDQU(z.AsX(), D.Offset(276))

	Label(next)
	ADDQ(U32(1024), S.Base)
	ADDQ(U32(292), D.Base)
	DECQ(nb)
	JMP(LabelRef(loop))
	Label(done)
	VZEROUPPER()
	RET()
}
