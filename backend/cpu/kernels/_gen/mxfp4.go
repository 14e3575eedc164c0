package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// MXFP4 block (17 B): E8M0 exponent e @0, qs[16] @1 (low nibble j = element
// j, high nibble = element j+16); value = kv2[code]·2^(e−128) with the doubled
// E2M1 table kv2. The codes are mapped through kv2+12 (0..24, unsigned) and
// 12·Σx is subtracted, so the int32 block sums are exact.
const mxfp4Bytes = 17

// kv2Biased is ggml's kvalues_mxfp4 plus 12, replicated for both lanes.
var kv2Biased = func() []byte {
	kv2 := []int{0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}
	var b []byte
	for i := 0; i < 32; i++ {
		b = append(b, byte(kv2[i%16]+12))
	}
	return b
}()

// mxfp4Scale returns XMM lane 0 = fp16(d_x) · 2^(e−128) (ggml's
// GGML_E8M0_TO_FP32_HALF: e = 0, 1 give the subnormals 2^-128, 2^-127).
func mxfp4Scale(w, x Mem) VecVirtual {
	e, a, b := GP32(), GP32(), GP32()
	MOVBLZX(w, e)
	LEAL(Mem{Base: e, Disp: -1}, a)
	SHLL(U8(23), a) // (e−1)<<23
	LEAL(Mem{Base: e, Disp: 1}, b)
	SHLL(U8(21), b) // (e+1)<<21 = 0x200000<<e for e < 2
	CMPL(e, U8(2))
	CMOVLCS(b, a)
	h := XMM()
	VMOVD(a, h)
	r := GP32()
	MOVWLZX(x, r)
	d := XMM()
	VMOVD(r, d)
	VCVTPH2PS(d, d)
	VMULSS(h, d, d)
	return d
}

// mxfp4Codes returns the 32 biased codes kv2[code]+12 of the block at w.
func mxfp4Codes(z bool, w Mem, lut Op) VecVirtual { return fp4Codes(z, w.Offset(1), lut) }

// fp4Codes maps the 16 code bytes at q (low nibble j = element j, high
// nibble = element j+16) through lut into 32 bytes.
func fp4Codes(z bool, q Mem, lut Op) VecVirtual {
	lo, hi := XMM(), XMM()
	c := YMM()
	m0f := constBytes("c0f", rep([]byte{0x0f}, 32))
	if z {
		VMOVDQU64(q, lo)
		VPSRLW(U8(4), lo, hi)
		VINSERTI32X4(U8(1), hi, lo.AsY(), c)
		VPANDD(m0f, c, c)
	} else {
		VMOVDQU(q, lo)
		VPSRLW(U8(4), lo, hi)
		VINSERTI128(U8(1), hi, lo.AsY(), c)
		VPAND(m0f, c, c)
	}
	t := YMM()
	if z {
		VMOVDQU64(lut, t)
	} else {
		VMOVDQU(lut, t)
	}
	VPSHUFB(c, t, c)
	return c
}

// fp4Col returns the 8 int32 partial sums of 32 biased FP4 codes c against
// the Q8_0 block at x: Σ (kv2+12)·x − 12·Σx.
func fp4Col(z bool, c, m12 VecVirtual, x Mem) VecVirtual {
	if !z {
		p, q := YMM(), YMM()
		VPMADDUBSW(x.Offset(2), c, p)
		VPMADDUBSW(x.Offset(2), m12, q)
		VPSUBW(q, p, p)
		VPMADDWD(constWords("c0001", rep16(1, 16)), p, p)
		return p
	}
	a, kk, xv := YMM(), YMM(), YMM()
	VMOVDQU64(x.Offset(2), xv) // raw instructions take registers only
	zeroVec(a)
	zeroVec(kk)
	raw("VPDPBUSD", xv, c, a)
	raw("VPDPBUSD", xv, m12, kk)
	VPSUBD(kk, a, a)
	return a
}

// MMFP4_G128 row (quant-formats.md §4.2): codes n/2 bytes, group g of 128
// elements = 64 bytes, sub-block s (Q8_0 block 4g+s) = 16 bytes in MXFP4
// nibble order; fp16 scales n/128 per row; value = kv2[code]·scale/2.
func genMMFP4() {
	lut := constBytes("mxfp4lut", kv2Biased)
	for _, l := range []level{avx2, avx512} {
		name := "dotMMFP4Q8_0" + l.suffix
		TEXT(name, NOSPLIT, "func(ng int, q, s, x *byte) float32")
		Pragma("noescape")
		Doc(name+" returns the dot product of ng 128-element MMFP4 groups (codes at q, fp16 scales at s)",
			"with 4·ng Q8_0 blocks at x: Σ_g (scale_g/2)·Σ_s d_x·isum_s, exact int32 isum_s.")
		ng := Load(Param("ng"), GP64())
		Q := Mem{Base: Load(Param("q"), GP64())}
		S := Mem{Base: Load(Param("s"), GP64())}
		X := Mem{Base: Load(Param("x"), GP64())}
		total := YMM()
		zeroVec(total)
		m12 := YMM()
		bcastD(0x0c0c0c0c, m12)
		half := XMM()
		{
			r := GP32()
			MOVL(U32(0x3f000000), r)
			VMOVD(r, half)
		}
		loop, done := uniq("loop"), uniq("done")
		Label(loop)
		TESTQ(ng, ng)
		JZ(LabelRef(done))
		accg := YMM()
		zeroVec(accg)
		r := GP32()
		for s := 0; s < 4; s++ {
			c := fp4Codes(l.z, Q.Offset(16*s), lut)
			x := X.Offset(q8_0Bytes * s)
			p := fp4Col(l.z, c, m12, x)
			MOVWLZX(x, r)
			d := XMM()
			VMOVD(r, d)
			VCVTPH2PS(d, d)
			dv := YMM()
			VBROADCASTSS(d, dv)
			VCVTDQ2PS(p, p)
			VFMADD231PS(p, dv, accg)
		}
		MOVWLZX(S, r)
		sc := XMM()
		VMOVD(r, sc)
		VCVTPH2PS(sc, sc)
		VMULSS(half, sc, sc)
		sv := YMM()
		VBROADCASTSS(sc, sv)
		VFMADD231PS(accg, sv, total)
		ADDQ(U8(64), Q.Base)
		ADDQ(U8(2), S.Base)
		ADDQ(U32(4*q8_0Bytes), X.Base)
		DECQ(ng)
		JMP(LabelRef(loop))
		Label(done)
		Store(hsumPS(l, total), ReturnIndex(0))
		VZEROUPPER()
		RET()
	}
}

func genMXFP4() {
	lut := constBytes("mxfp4lut", kv2Biased)
	for _, l := range []level{avx2, avx512} {
		var m12 VecVirtual
		setup := func() {
			m12 = YMM()
			bcastD(0x0c0c0c0c, m12)
		}
		k := kernel32{
			prep:  func(w Mem) []VecVirtual { return []VecVirtual{mxfp4Codes(l.z, w, lut)} },
			scale: mxfp4Scale,
			col:   func(st []VecVirtual, x Mem) VecVirtual { return fp4Col(l.z, st[0], m12, x) },
		}
		doc := []string{
			"dotMXFP4Q8_0" + l.suffix + " returns the dot product of nb MXFP4 blocks at w with nb Q8_0 blocks at x.",
			"Exact int32 block sums: Σ kv2[code]·x = Σ (kv2[code]+12)·x − 12·Σx.",
		}
		dotBlocks32("dotMXFP4Q8_0"+l.suffix, mxfp4Bytes, doc, setup, k)
		dotBlocks32x4("dotMXFP4Q8_0x4"+l.suffix, mxfp4Bytes, x4doc("dotMXFP4Q8_0x4"+l.suffix, "MXFP4"), setup, k)
	}
}
