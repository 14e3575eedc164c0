package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Q8_0 block (34 B): fp16 d @0, int8 qs[32] @2.
// Q5_0 block (22 B): fp16 d @0, uint32 qh @2, qs[16] @6 (low nibble j = element j,
// high nibble = element j+16; bit j of qh = bit 4 of element j).
const (
	q8_0Bytes = 34
	q5_0Bytes = 22
)

// blockScale32 returns XMM lane 0 = fp16(w) * fp16(x) (the two block d's).
func blockScale32(w, x Mem) VecVirtual {
	r := GP32()
	MOVWLZX(w, r)
	d := XMM()
	VMOVD(r, d)
	VPINSRW(U8(1), x, d, d)
	VCVTPH2PS(d, d)
	t := XMM()
	VMOVSHDUP(d, t)
	VMULSS(t, d, d)
	return d
}

// dotBlocks32 emits the shared loop of the 32-block dots: body returns the
// block's 8 int32 partial sums in a YMM register.
func dotBlocks32(name string, wBytes int, doc []string, setup func(), body func(w, x Mem) VecVirtual) {
	TEXT(name, NOSPLIT, "func(nb int, w, x *byte) float32")
	Pragma("noescape")
	Doc(doc...)
	nb := Load(Param("nb"), GP64())
	W := Mem{Base: Load(Param("w"), GP64())}
	X := Mem{Base: Load(Param("x"), GP64())}
	acc0, acc1 := YMM(), YMM()
	VXORPS(acc0, acc0, acc0)
	VXORPS(acc1, acc1, acc1)
	setup()
	loop, one, done := uniq("loop"), uniq("one"), uniq("done")
	block := func(k int, acc VecVirtual) {
		w, x := W.Offset(wBytes*k), X.Offset(q8_0Bytes*k)
		p := body(w, x)
		d := blockScale32(w, x)
		dv := YMM()
		VBROADCASTSS(d, dv)
		VCVTDQ2PS(p, p)
		VFMADD231PS(p, dv, acc)
	}
	Label(loop)
	CMPQ(nb, U8(2))
	JL(LabelRef(one))
	block(0, acc0)
	block(1, acc1)
	ADDQ(U32(2*wBytes), W.Base)
	ADDQ(U32(2*q8_0Bytes), X.Base)
	SUBQ(U8(2), nb)
	JMP(LabelRef(loop))
	Label(one)
	TESTQ(nb, nb)
	JZ(LabelRef(done))
	block(0, acc0)
	Label(done)
	VADDPS(acc1, acc0, acc0)
	r := hsumPS(level{}, acc0)
	Store(r, ReturnIndex(0))
	VZEROUPPER()
	RET()
}

func genQ8_0() {
	// AVX2: sign-extend both operands to int16 and pmaddwd: exact for every
	// int8 pair, −128·−128 included (the maddubs sign trick is not).
	dotBlocks32("dotQ8_0Q8_0AVX2", q8_0Bytes, []string{
		"dotQ8_0Q8_0AVX2 returns the dot product of nb Q8_0 blocks at w with nb Q8_0 blocks at x.",
		"Block sums are exact int32 (int16 widening + pmaddwd)."}, func() {},
		func(w, x Mem) VecVirtual {
			w0, w1, x0, x1 := YMM(), YMM(), YMM(), YMM()
			VPMOVSXBW(w.Offset(2), w0)
			VPMOVSXBW(w.Offset(18), w1)
			VPMOVSXBW(x.Offset(2), x0)
			VPMOVSXBW(x.Offset(18), x1)
			VPMADDWD(x0, w0, w0)
			VPMADDWD(x1, w1, w1)
			VPADDD(w1, w0, w0)
			return w0
		})
	// AVX-512 VNNI: w·x = (w⊕0x80)·x − 128·Σx with vpdpbusd (u8 × s8 → int32,
	// no saturation): exact for every input.
	var c80 VecVirtual
	dotBlocks32("dotQ8_0Q8_0AVX512", q8_0Bytes, []string{
		"dotQ8_0Q8_0AVX512 returns the dot product of nb Q8_0 blocks at w with nb Q8_0 blocks at x.",
		"Block sums are exact int32: vpdpbusd(w^0x80, x) − vpdpbusd(0x80, x)."}, func() {
		c80 = YMM()
		bcastD(0x80808080, c80)
	}, func(w, x Mem) VecVirtual {
		u := YMM()
		VPXOR(w.Offset(2), c80, u)
		a, c := YMM(), YMM()
		VPXOR(a, a, a)
		VPXOR(c, c, c)
		raw("VPDPBUSD", x.Offset(2), u, a)
		raw("VPDPBUSD", x.Offset(2), c80, c)
		VPSUBD(c, a, a)
		return a
	})
}

// q5_0Codes returns the 32 unsigned Q5_0 codes (0..31) of the block at w.
func q5_0Codes(w Mem, m0f, bitShuf, bitMask, m10 VecVirtual) VecVirtual {
	lo, hi := XMM(), XMM()
	VMOVDQU(w.Offset(6), lo)
	VPSRLW(U8(4), lo, hi)
	c := YMM()
	VINSERTI128(U8(1), hi, lo.AsY(), c)
	VPAND(m0f, c, c)
	b := YMM()
	VPBROADCASTD(w.Offset(2), b)
	VPSHUFB(bitShuf, b, b)
	VPAND(bitMask, b, b)
	VPCMPEQB(bitMask, b, b)
	VPAND(m10, b, b)
	VPOR(b, c, c)
	return c
}

func genQ5_0() {
	for _, l := range []level{avx2, avx512} {
		var m0f, bitShuf, bitMask, m10, ones VecVirtual
		setup := func() {
			m0f, bitShuf, bitMask, m10 = YMM(), YMM(), YMM(), YMM()
			bcastD(0x0f0f0f0f, m0f)
			bcastD(0x10101010, m10)
			var sh []byte
			for i := 0; i < 32; i++ {
				sh = append(sh, byte(i/8))
			}
			VMOVDQU(constBytes("q5shuf", sh), bitShuf)
			VMOVDQU(constBytes("q5bits", rep([]byte{1, 2, 4, 8, 16, 32, 64, 128}, 32)), bitMask)
			if !l.z {
				ones = YMM()
				bcastD(0x00010001, ones)
			}
		}
		doc := []string{
			"dotQ5_0Q8_0" + l.suffix + " returns the dot product of nb Q5_0 blocks at w with nb Q8_0 blocks at x.",
			"Exact int32 block sums: Σ(code−16)·x = Σ code·x − 16·Σx with codes 0..31 unsigned.",
		}
		dotBlocks32("dotQ5_0Q8_0"+l.suffix, q5_0Bytes, doc, setup, func(w, x Mem) VecVirtual {
			c := q5_0Codes(w, m0f, bitShuf, bitMask, m10)
			if !l.z {
				p, q := YMM(), YMM()
				VPMADDUBSW(x.Offset(2), c, p)
				VPMADDUBSW(x.Offset(2), m10, q)
				VPSUBW(q, p, p)
				VPMADDWD(ones, p, p)
				return p
			}
			a, k := YMM(), YMM()
			VPXOR(a, a, a)
			VPXOR(k, k, k)
			raw("VPDPBUSD", x.Offset(2), c, a)
			raw("VPDPBUSD", x.Offset(2), m10, k)
			VPSUBD(k, a, a)
			return a
		})
	}
}
