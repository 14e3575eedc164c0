package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The single-row AVX-512 kernels of Q4_K and Q6_K (decode: one activation
// row, every weight byte used once). They multiply unsigned codes by the
// signed Q8_K bytes with VPDPBUSD (4 products per dword, no int16 stage) and
// apply the sub-block scales afterwards: two VPDPBUSD results A, B (each
// dword is a 4-product sum, |·| < 2^15) are interleaved into words
// (A | B<<16) and one VPDPWSSD multiplies them by the matching scale words.
// Every int32 lane ends up holding exactly the sum the multi-column kernels
// (VPMADDUBSW + VPDPWSSD) hold in that lane, and the float steps are the
// same, so the single-row result equals the tile kernels' bit for bit.

// prefetchAhead is how many bytes ahead of the current weight block the
// single-row kernels prefetch: decode streams each weight once from DRAM,
// and one core alone does not keep enough lines in flight otherwise.
const prefetchAhead = 1024

// prefetchBlock prefetches the cache lines of a block of n bytes
// prefetchAhead bytes past w.
func prefetchBlock(w Mem, n int) {
	for off := 0; off < n; off += 64 {
		PREFETCHT0(w.Offset(prefetchAhead + off))
	}
}

// interleaveWords returns a (dwords, each fitting int16) with the low word of
// every dword of b placed in its high word: words [a0 b0 a1 b1 …].
func interleaveWords(a, b, lowMask VecVirtual) VecVirtual {
	t := ZMM()
	VPSLLD(U8(16), b, t)
	// Table 0xf8 is A | (B & C) for A = t (the destination), B = a,
	// C = lowMask (Go operand order: imm, C, B, A).
	VPTERNLOGD(U8(0xf8), lowMask, a, t)
	return t
}

// scaleShuffle returns the 64 VPSHUFB indices that build, from 8 scale
// bytes repeated in every 128-bit lane, the scale words of an interleaved
// pair of chunks: in lane L, words alternate between the scales pick(L, 0)
// and pick(L, 1); the high byte of each word is zero (index 0x80) unless
// signHigh, where the scale byte goes into the high byte (arithmetic shift
// right by 8 then sign-extends it).
func scaleShuffle(pick func(lane, which int) int, signHigh bool) []byte {
	b := make([]byte, 64)
	for L := 0; L < 4; L++ {
		for w := 0; w < 8; w++ {
			lo, hi := byte(pick(L, w%2)), byte(0x80)
			if signHigh {
				lo, hi = 0x80, lo
			}
			b[16*L+2*w], b[16*L+2*w+1] = lo, hi
		}
	}
	return b
}

// vnniPrologue starts the single-row kernel name over nb blocks of typ at w
// and Q8_K blocks at x, returning nb, the two block pointers and the zeroed
// float accumulator.
func vnniPrologue(name, typ string, doc ...string) (nb Register, W, X Mem, acc VecVirtual) {
	TEXT(name, NOSPLIT, colSig(1))
	Pragma("noescape")
	Doc(append([]string{name + " returns the dot product of nb " + typ + " blocks at w with nb Q8_K blocks at x."}, doc...)...)
	nb = Load(Param("nb"), GP64())
	W = Mem{Base: Load(Param("w"), GP64())}
	X = Mem{Base: Load(Param("x"), GP64())}
	acc = ZMM()
	VXORPS(acc, acc, acc)
	return nb, W, X, acc
}

// vnniEpilogue ends a block: acc += float(sumi)·(d_w·d_x) with d_w in the
// low lane of dw; then advances to the next block (wBytes of weights, one
// Q8_K block) and emits the loop's exit: the reduced acc is the result.
func vnniEpilogue(nb Register, W, X Mem, dw, sumi, acc VecVirtual, wBytes int, loop, done string) {
	dd := XMM()
	VMULSS(X, dw, dd)
	dv := ZMM()
	VBROADCASTSS(dd, dv)
	VCVTDQ2PS(sumi, sumi)
	VFMADD231PS(sumi, dv, acc)
	ADDQ(U32(wBytes), W.Base)
	ADDQ(U32(q8kBytes), X.Base)
	DECQ(nb)
	JMP(LabelRef(loop))

	Label(done)
	Store(hsumPS(avx512, acc), ReturnIndex(0))
	VZEROUPPER()
	RET()
}

func genQ4KDotVNNI() {
	nb, W, X, acc := vnniPrologue("dotQ4KQ8KAVX512", "Q4_K",
		"Per block: Σ_j sc_j·(Σ q·a) in int32 (vpdpbusd, then vpdpwssd with the scales),",
		"times d_w·d_x, minus dmin_w·d_x·Σ_j m_j·(bsums[2j]+bsums[2j+1]).")
	mask := ZMM()
	bcastD(0x0f0f0f0f, mask)
	low := ZMM()
	bcastD(0x0000ffff, low)
	sgn := XMM()
	{
		r := GP32()
		MOVL(U32(0x80000000), r)
		VMOVD(r, sgn)
	}
	// Chunk ch's dword lane j holds sub-block 2ch (j < 8) or 2ch+1; pair p
	// interleaves chunks 2p and 2p+1.
	var shuf [2]VecVirtual
	for p := 0; p < 2; p++ {
		shuf[p] = ZMM()
		VMOVDQU64(constBytes(cname("q4kvnni%d", p), scaleShuffle(func(L, which int) int {
			hi := 0
			if L >= 2 {
				hi = 1
			}
			return 2*(2*p+which) + hi
		}, false)), shuf[p])
	}
	midx := YMM()
	{
		w := make([]uint16, 16)
		for i := range w {
			w[i] = uint16(8 + i/2)
		}
		VMOVDQU16(constWords("q4kminidx", w), midx)
	}

	loop, done := uniq("loop"), uniq("done")
	Label(loop)
	TESTQ(nb, nb)
	JZ(LabelRef(done))
	prefetchBlock(W, q4kBytes)

	scx := unpackQ4KScaleBytes(W)
	s16 := YMM()
	VPMOVZXBW(scx, s16)
	dw := XMM()
	VMOVD(W, dw)
	VCVTPH2PS(dw, dw)
	// Min term first (as the multi-column kernels).
	md := YMM()
	VPERMW(s16, midx, md)
	{
		prod := YMM()
		VPMADDWD(X.Offset(260), md, prod)
		VCVTDQ2PS(prod, prod)
		dm := XMM()
		VMOVSHDUP(dw, dm)
		VMULSS(X, dm, dm)
		VXORPS(sgn, dm, dm)
		t := ZMM()
		VBROADCASTSS(dm, t)
		VFMADD231PS(prod.AsZ(), t, acc)
	}
	// Scale bytes sc0..7 (words 0..7 of s16) in every qword.
	scb := ZMM()
	VPBROADCASTQ(scx, scb)
	sumi := ZMM()
	zeroVec(sumi)
	var a [4]VecVirtual
	for h := 0; h < 2; h++ {
		z := ZMM()
		VMOVDQU64(W.Offset(16+64*h), z)
		lo, hi := ZMM(), ZMM()
		VPANDD(mask, z, lo)
		VPSRLW(U8(4), z, hi)
		VPANDD(mask, hi, hi)
		// Chunk 2h = [lo | hi] of bytes 0..31, chunk 2h+1 of bytes 32..63.
		for k := 0; k < 2; k++ {
			c := ZMM()
			VSHUFI64X2(U8([]uint8{0x44, 0xee}[k]), hi, lo, c)
			xv := ZMM()
			VMOVDQU64(X.Offset(4+64*(2*h+k)), xv)
			a[2*h+k] = ZMM()
			zeroVec(a[2*h+k])
			raw("VPDPBUSD", xv, c, a[2*h+k])
		}
	}
	for p := 0; p < 2; p++ {
		pw := interleaveWords(a[2*p], a[2*p+1], low)
		s := ZMM()
		VPSHUFB(shuf[p], scb, s)
		raw("VPDPWSSD", s, pw, sumi)
	}
	vnniEpilogue(nb, W, X, dw, sumi, acc, q4kBytes, loop, done)
}

func genQ6KDotVNNI() {
	nb, W, X, acc := vnniPrologue("dotQ6KQ8KAVX512", "Q6_K",
		"Per block: Σ_i sc_i·(Σ q·a) − 32·Σ_i sc_i·bsums_i in int32 (vpdpbusd, then",
		"vpdpwssd with the scales), times d_w·d_x.")
	m0f, m30, low := ZMM(), ZMM(), ZMM()
	bcastD(0x0f0f0f0f, m0f)
	bcastD(0x30303030, m30)
	bcastD(0x0000ffff, low)
	// Vector k (elements 64k..64k+63) has dword lane j in sub-block
	// 4k + j/4 (lane L = j/4 of 128 bits); pair h interleaves vectors 2h
	// and 2h+1.
	var shuf [2]VecVirtual
	for h := 0; h < 2; h++ {
		shuf[h] = ZMM()
		VMOVDQU64(constBytes(cname("q6kvnni%d", h), scaleShuffle(func(L, which int) int {
			return 4*(2*h+which) + L
		}, true)), shuf[h])
	}

	loop, done := uniq("loop"), uniq("done")
	Label(loop)
	TESTQ(nb, nb)
	JZ(LabelRef(done))
	prefetchBlock(W, q6kBytes)

	s16 := YMM()
	VPMOVSXBW(W.Offset(192), s16)
	s16n := YMM()
	VPSLLW(U8(5), s16, s16n)
	zero := YMM()
	zeroVec(zero)
	VPSUBW(s16n, zero, s16n)
	sumi := ZMM()
	VPMADDWD(X.Offset(260), s16n, sumi.AsY()) // upper half zeroed
	scb := ZMM()
	VBROADCASTI32X4(W.Offset(192), scb)
	for h := 0; h < 2; h++ {
		ql := ZMM()
		VMOVDQU64(W.Offset(64*h), ql)
		// q = [qh | qh>>2]: bits 0-1 / 2-3 of qh feed vector 2h, bits
		// 4-5 / 6-7 vector 2h+1 (as 0x30 after shifting).
		qh := YMM()
		VMOVDQU(W.Offset(128+32*h), qh)
		qh2 := YMM()
		VPSRLW(U8(2), qh, qh2)
		q := ZMM()
		VINSERTI64X4(U8(1), qh2, qh.AsZ(), q)
		var a [2]VecVirtual
		for k := 0; k < 2; k++ {
			v, hb := ZMM(), ZMM()
			if k == 0 {
				VPANDD(m0f, ql, v)
				VPSLLW(U8(4), q, hb)
			} else {
				VPSRLW(U8(4), ql, v)
				VPANDD(m0f, v, v)
				hb = q
			}
			VPTERNLOGD(U8(0xf8), m30, hb, v) // v = v | (hb & 0x30)
			xv := ZMM()
			VMOVDQU64(X.Offset(4+128*h+64*k), xv)
			a[k] = ZMM()
			zeroVec(a[k])
			raw("VPDPBUSD", xv, v, a[k])
		}
		pw := interleaveWords(a[0], a[1], low)
		s := ZMM()
		VPSHUFB(shuf[h], scb, s)
		VPSRAW(U8(8), s, s)
		raw("VPDPWSSD", s, pw, sumi)
	}
	r := GP32()
	MOVWLZX(W.Offset(208), r)
	dw := XMM()
	VMOVD(r, dw)
	VCVTPH2PS(dw, dw)
	vnniEpilogue(nb, W, X, dw, sumi, acc, q6kBytes, loop, done)
}
