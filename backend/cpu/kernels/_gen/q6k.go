package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Q6_K block (210 B): ql[128] @0, qh[64] @128, int8 scales[16] @192, fp16 d @208.
// Codes are used unsigned (0..63) and the −32 offset is removed once per
// block as 32·Σ_i scales[i]·bsums[i] (the int32 sums start from that value).
func genQ6K() {
	for _, l := range []level{avx2, avx512} {
		if l.z {
			genQ6KDotVNNI()
		} else {
			genQ6KCols(l, 1)
		}
		genQ6KCols(l, 4)
	}
	genQ6KCols(avx512, 8)
}

func genQ6KCols(l level, ncols int) {
	name := colName("dotQ6KQ8K", ncols, l)
	TEXT(name, NOSPLIT, colSig(ncols))
	Pragma("noescape")
	if ncols == 1 {
		Doc(name+" returns the dot product of nb Q6_K blocks at w with nb Q8_K blocks at x.",
			"Per block: Σ_i sc_i·(Σ q·a) − 32·Σ_i sc_i·bsums_i in int32, times d_w·d_x.")
	} else {
		Doc(fmt.Sprintf("%s computes, for rows consecutive weight rows r of nb Q6_K blocks at w, the dot products", name),
			fmt.Sprintf("with %d Q8_K rows at x + c·xstride (c = 0..%d), storing them at dst[c·dstride + r]; each row is decoded once.", ncols, ncols-1))
	}
	nb := Load(Param("nb"), GP64())
	W := Mem{Base: Load(Param("w"), GP64())}
	X := colPtrs(ncols)
	acc := make([]VecVirtual, ncols)
	for c := range acc {
		acc[c] = l.vec()
	}
	m0f := constBytes("c0f", rep([]byte{0x0f}, 32))
	m30 := constBytes("c30", rep([]byte{0x30}, 32))
	shuf := constBytes("q6kshuf", append(rep([]byte{0, 1}, 16), rep([]byte{2, 3}, 16)...))

	var sc Mem
	var idx [4]VecVirtual
	var shl, shr, zm0f, zm30 Op
	if !l.z {
		sc = AllocLocal(32)
	} else {
		for k := 0; k < 4; k++ { // k = 2h + pair
			w := make([]uint16, 32)
			for i := range w {
				w[i] = uint16(4*k + i/8)
			}
			idx[k] = ZMM()
			VMOVDQU64(constWords(cname("q6kidx%d", k), w), idx[k])
		}
		cnt := func(a, b uint16) []uint16 {
			w := make([]uint16, 32)
			for i := range w {
				w[i] = a
				if i >= 16 {
					w[i] = b
				}
			}
			return w
		}
		shl, shr = constWords("q6kshl", cnt(4, 2)), constWords("q6kshr", cnt(0, 2))
		zm0f, zm30 = constBytes("c0f64", rep([]byte{0x0f}, 64)), constBytes("c3064", rep([]byte{0x30}, 64))
		if ncols <= 4 { // registers to spare: keep the constants in registers
			r := []VecVirtual{ZMM(), ZMM(), ZMM(), ZMM()}
			for i, c := range []Op{shl, shr, zm0f, zm30} {
				VMOVDQU64(c, r[i])
			}
			shl, shr, zm0f, zm30 = r[0], r[1], r[2], r[3]
		}
	}

	var rl rowLoop
	if ncols > 1 {
		rl = beginRows(nb, X)
	}
	zeroVecs(l, acc)
	loop, done := uniq("loop"), uniq("done")
	Label(loop)
	TESTQ(nb, nb)
	JZ(LabelRef(done))

	s16 := YMM()
	VPMOVSXBW(W.Offset(192), s16)
	// −32·scales as int16 (|·| <= 4096): sumi_c starts at −32·Σ sc_i·bsums_i.
	s16n := YMM()
	VPSLLW(U8(5), s16, s16n)
	zero := YMM()
	if l.z {
		zeroVec(zero)
	} else {
		VPXOR(zero, zero, zero)
	}
	VPSUBW(s16n, zero, s16n)
	sumi := make([]VecVirtual, ncols)
	for c := range X {
		sumi[c] = l.vec()
		VPMADDWD(X[c].Offset(260), s16n, sumi[c].AsY()) // upper half of a ZMM is zeroed
	}

	if !l.z {
		VMOVDQU(s16, sc)
		for h := 0; h < 2; h++ {
			qh := YMM()
			VMOVDQU(W.Offset(128+32*h), qh)
			for g := 0; g < 4; g++ {
				lo, hb := YMM(), YMM()
				VMOVDQU(W.Offset(64*h+32*(g&1)), lo)
				if g >= 2 {
					VPSRLW(U8(4), lo, lo)
				}
				VPAND(m0f, lo, lo)
				switch g {
				case 0:
					VPSLLW(U8(4), qh, hb)
				case 1:
					VPSLLW(U8(2), qh, hb)
				case 2:
					VMOVDQA(qh, hb)
				case 3:
					VPSRLW(U8(2), qh, hb)
				}
				VPAND(m30, hb, hb)
				VPOR(hb, lo, lo)
				// Scale words: 0..7 = sc[8h+2g], 8..15 = sc[8h+2g+1].
				s := YMM()
				VPBROADCASTD(sc.Offset(2*(8*h+2*g)), s)
				VPSHUFB(shuf, s, s)
				for c := range X {
					p := YMM()
					VPMADDUBSW(X[c].Offset(4+128*h+32*g), lo, p)
					VPMADDWD(s, p, p)
					VPADDD(p, sumi[c], sumi[c])
				}
			}
		}
	} else {
		tbl := ZMM()
		VMOVDQA64(s16.AsZ(), tbl) // upper half zero, table = 16 words
		for h := 0; h < 2; h++ {
			zql, zqh := ZMM(), ZMM()
			VMOVDQU64(W.Offset(64*h), zql)
			VBROADCASTI64X4(W.Offset(128+32*h), zqh)
			for k := 0; k < 2; k++ { // k=0: groups 0,1; k=1: groups 2,3
				lo, hb := ZMM(), ZMM()
				if k == 0 {
					VPANDD(zm0f, zql, lo)
					VPSLLVW(shl, zqh, hb)
				} else {
					VPSRLW(U8(4), zql, lo)
					VPANDD(zm0f, lo, lo)
					VPSRLVW(shr, zqh, hb)
				}
				VPANDD(zm30, hb, hb)
				VPORD(hb, lo, lo)
				s := ZMM()
				VPERMW(tbl, idx[2*h+k], s)
				for c := range X {
					p := ZMM()
					VPMADDUBSW(X[c].Offset(4+128*h+64*k), lo, p)
					raw("VPDPWSSD", s, p, sumi[c])
				}
			}
		}
	}

	r := GP32()
	MOVWLZX(W.Offset(208), r)
	dw := XMM()
	VMOVD(r, dw)
	VCVTPH2PS(dw, dw)
	for c := range X {
		d := XMM()
		VMULSS(X[c], dw, d)
		dv := l.vec()
		VBROADCASTSS(d, dv)
		VCVTDQ2PS(sumi[c], sumi[c])
		VFMADD231PS(sumi[c], dv, acc[c])
	}

	ADDQ(U32(q6kBytes), W.Base)
	advanceCols(X)
	DECQ(nb)
	JMP(LabelRef(loop))

	Label(done)
	if ncols > 1 {
		rl.end(l, acc)
	} else {
		storeCols(l, acc)
	}
	VZEROUPPER()
	RET()
}
