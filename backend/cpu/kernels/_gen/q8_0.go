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

// kernel32 describes a 32-block dot: prep decodes a weight block once,
// col returns the block's 8 int32 partial sums against one activation block.
type kernel32 struct {
	prep  func(w Mem) []VecVirtual
	col   func(st []VecVirtual, x Mem) VecVirtual
	scale func(w, x Mem) VecVirtual // block scale in XMM lane 0; nil: blockScale32
}

func (k kernel32) blockScale(w, x Mem) VecVirtual {
	if k.scale != nil {
		return k.scale(w, x)
	}
	return blockScale32(w, x)
}

func (k kernel32) body(w, x Mem) VecVirtual { return k.col(k.prep(w), x) }

// dotBlocks32x4 emits the 4-column form: one weight row against 4 Q8_0
// rows at x + c·xstride, results stored at dst[c·dstride]. Blocks alternate
// between two accumulators per column exactly as in dotBlocks32, so every
// column's result is bit-identical to the single-row kernel.
func dotBlocks32x4(name string, wBytes int, doc []string, setup func(), k kernel32) {
	TEXT(name, NOSPLIT, colSig(4))
	Pragma("noescape")
	Doc(doc...)
	nb := Load(Param("nb"), GP64())
	W := Mem{Base: Load(Param("w"), GP64())}
	X := colPtrs(4)
	var acc [2][]VecVirtual
	for u := range acc {
		acc[u] = make([]VecVirtual, 4)
		for c := range acc[u] {
			acc[u][c] = YMM()
		}
	}
	setup()
	rl := beginRows(nb, X)
	for u := range acc {
		for c := range acc[u] {
			VXORPS(acc[u][c], acc[u][c], acc[u][c])
		}
	}
	block := func(b int, acc []VecVirtual) {
		w := W.Offset(wBytes * b)
		st := k.prep(w)
		for c := range X {
			x := X[c].Offset(q8_0Bytes * b)
			p := k.col(st, x)
			d := k.blockScale(w, x)
			dv := YMM()
			VBROADCASTSS(d, dv)
			VCVTDQ2PS(p, p)
			VFMADD231PS(p, dv, acc[c])
		}
	}
	loop, one, done := uniq("loop"), uniq("one"), uniq("done")
	Label(loop)
	CMPQ(nb, U8(2))
	JL(LabelRef(one))
	block(0, acc[0])
	block(1, acc[1])
	ADDQ(U32(2*wBytes), W.Base)
	ADDQ(U32(2*q8_0Bytes), X[0].Base)
	SUBQ(U8(2), nb)
	JMP(LabelRef(loop))
	Label(one)
	TESTQ(nb, nb)
	JZ(LabelRef(done))
	block(0, acc[0])
	ADDQ(U32(wBytes), W.Base) // on to the next row
	Label(done)
	for c := range acc[0] {
		VADDPS(acc[1][c], acc[0][c], acc[0][c])
	}
	rl.end(level{}, acc[0])
	VZEROUPPER()
	RET()
}

// dotBlocks32 emits the shared loop of the 32-block dots: body returns the
// block's 8 int32 partial sums in a YMM register.
func dotBlocks32(name string, wBytes int, doc []string, setup func(), k kernel32) {
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
	block := func(b int, acc VecVirtual) {
		w, x := W.Offset(wBytes*b), X.Offset(q8_0Bytes*b)
		p := k.body(w, x)
		d := k.blockScale(w, x)
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
	k2 := kernel32{
		prep: func(w Mem) []VecVirtual {
			w0, w1 := YMM(), YMM()
			VPMOVSXBW(w.Offset(2), w0)
			VPMOVSXBW(w.Offset(18), w1)
			return []VecVirtual{w0, w1}
		},
		col: func(st []VecVirtual, x Mem) VecVirtual {
			x0, x1 := YMM(), YMM()
			VPMOVSXBW(x.Offset(2), x0)
			VPMOVSXBW(x.Offset(18), x1)
			VPMADDWD(st[0], x0, x0)
			VPMADDWD(st[1], x1, x1)
			VPADDD(x1, x0, x0)
			return x0
		},
	}
	doc2 := []string{"dotQ8_0Q8_0AVX2 returns the dot product of nb Q8_0 blocks at w with nb Q8_0 blocks at x.",
		"Block sums are exact int32 (int16 widening + pmaddwd)."}
	dotBlocks32("dotQ8_0Q8_0AVX2", q8_0Bytes, doc2, func() {}, k2)
	dotBlocks32x4("dotQ8_0Q8_0x4AVX2", q8_0Bytes, x4doc("dotQ8_0Q8_0x4AVX2", "Q8_0"), func() {}, k2)

	// AVX-512 VNNI: w·x = (w⊕0x80)·x − 128·Σx with vpdpbusd (u8 × s8 → int32,
	// no saturation): exact for every input.
	var c80 VecVirtual
	setup := func() {
		c80 = YMM()
		bcastD(0x80808080, c80)
	}
	k5 := kernel32{
		prep: func(w Mem) []VecVirtual {
			u := YMM()
			VPXORD(w.Offset(2), c80, u)
			return []VecVirtual{u}
		},
		col: func(st []VecVirtual, x Mem) VecVirtual {
			a, c, xv := YMM(), YMM(), YMM()
			VMOVDQU64(x.Offset(2), xv) // raw instructions take registers only
			zeroVec(a)
			zeroVec(c)
			raw("VPDPBUSD", xv, st[0], a)
			raw("VPDPBUSD", xv, c80, c)
			VPSUBD(c, a, a)
			return a
		},
	}
	dotBlocks32("dotQ8_0Q8_0AVX512", q8_0Bytes, []string{
		"dotQ8_0Q8_0AVX512 returns the dot product of nb Q8_0 blocks at w with nb Q8_0 blocks at x.",
		"Block sums are exact int32: vpdpbusd(w^0x80, x) − vpdpbusd(0x80, x)."}, setup, k5)
	dotBlocks32x4("dotQ8_0Q8_0x4AVX512", q8_0Bytes, x4doc("dotQ8_0Q8_0x4AVX512", "Q8_0"), setup, k5)
}

func x4doc(name, typ string) []string {
	return []string{name + " computes, for rows consecutive weight rows r of nb " + typ + " blocks at w, the dot products",
		"with 4 Q8_0 rows at x + c·xstride (c = 0..3), storing them at dst[c·dstride + r]; each row is decoded once."}
}

// q5_0Codes returns the 32 unsigned Q5_0 codes (0..31) of the block at w.
// With z it uses only EVEX-encodable instructions (registers may be ≥ 16).
func q5_0Codes(z bool, w Mem, m0f, bitShuf, bitMask, m10 Op) VecVirtual {
	lo, hi := XMM(), XMM()
	c := YMM()
	b := YMM()
	VPBROADCASTD(w.Offset(2), b)
	VPSHUFB(bitShuf, b, b)
	if z {
		VMOVDQU64(w.Offset(6), lo)
		VPSRLW(U8(4), lo, hi)
		VINSERTI32X4(U8(1), hi, lo.AsY(), c)
		VPANDD(m0f, c, c)
		k := K()
		VPTESTMB(bitMask, b, k)
		VMOVDQU8_Z(m10, k, b)
		VPORD(b, c, c)
		return c
	}
	VMOVDQU(w.Offset(6), lo)
	VPSRLW(U8(4), lo, hi)
	VINSERTI128(U8(1), hi, lo.AsY(), c)
	VPAND(m0f, c, c)
	VPAND(bitMask, b, b)
	VPCMPEQB(bitMask, b, b)
	VPAND(m10, b, b)
	VPOR(b, c, c)
	return c
}

func genQ5_0() {
	for _, l := range []level{avx2, avx512} {
		// Constants: m10 in a register (it is the unsigned maddubs/vpdpbusd
		// operand), the rest as memory operands (AVX2 has only 16 registers).
		var m10 VecVirtual
		var sh []byte
		for i := 0; i < 32; i++ {
			sh = append(sh, byte(i/8))
		}
		var m0f, bitShuf, bitMask, ones Op = constBytes("c0f", rep([]byte{0x0f}, 32)), constBytes("q5shuf", sh),
			constBytes("q5bits", rep([]byte{1, 2, 4, 8, 16, 32, 64, 128}, 32)), constWords("c0001", rep16(1, 16))
		setup := func() {
			m10 = YMM()
			bcastD(0x10101010, m10)
		}
		k := kernel32{
			prep: func(w Mem) []VecVirtual {
				return []VecVirtual{q5_0Codes(l.z, w, m0f, bitShuf, bitMask, m10)}
			},
			col: func(st []VecVirtual, x Mem) VecVirtual {
				c := st[0]
				if !l.z {
					p, q := YMM(), YMM()
					VPMADDUBSW(x.Offset(2), c, p)
					VPMADDUBSW(x.Offset(2), m10, q)
					VPSUBW(q, p, p)
					VPMADDWD(ones, p, p)
					return p
				}
				a, kk, xv := YMM(), YMM(), YMM()
				VMOVDQU64(x.Offset(2), xv) // raw instructions take registers only
				zeroVec(a)
				zeroVec(kk)
				raw("VPDPBUSD", xv, c, a)
				raw("VPDPBUSD", xv, m10, kk)
				VPSUBD(kk, a, a)
				return a
			},
		}
		doc := []string{
			"dotQ5_0Q8_0" + l.suffix + " returns the dot product of nb Q5_0 blocks at w with nb Q8_0 blocks at x.",
			"Exact int32 block sums: Σ(code−16)·x = Σ code·x − 16·Σx with codes 0..31 unsigned.",
		}
		dotBlocks32("dotQ5_0Q8_0"+l.suffix, q5_0Bytes, doc, setup, k)
		dotBlocks32x4("dotQ5_0Q8_0x4"+l.suffix, q5_0Bytes, x4doc("dotQ5_0Q8_0x4"+l.suffix, "Q5_0"), setup, k)
	}
}

func rep16(v uint16, n int) []uint16 {
	w := make([]uint16, n)
	for i := range w {
		w[i] = v
	}
	return w
}
