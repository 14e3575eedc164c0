package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Q6_K block (210 B): ql[128] @0, qh[64] @128, int8 scales[16] @192, fp16 d @208.
// Codes are used unsigned (0..63) and the −32 offset is removed once per
// block as 32·Σ_i scales[i]·bsums[i].
func genQ6K() {
	for _, l := range []level{avx2, avx512} {
		TEXT("dotQ6KQ8K"+l.suffix, NOSPLIT, "func(nb int, w, x *byte) float32")
		Pragma("noescape")
		Doc("dotQ6KQ8K"+l.suffix+" returns the dot product of nb Q6_K blocks at w with nb Q8_K blocks at x.",
			"Per block: Σ_i sc_i·(Σ q·a) − 32·Σ_i sc_i·bsums_i in int32, times d_w·d_x.")
		nb := Load(Param("nb"), GP64())
		W := Mem{Base: Load(Param("w"), GP64())}
		X := Mem{Base: Load(Param("x"), GP64())}
		acc := YMM()
		VXORPS(acc, acc, acc)
		m0f, m30 := l.vec(), l.vec()
		bcastD(0x0f0f0f0f, m0f)
		bcastD(0x30303030, m30)

		var sc Mem
		var shuf VecVirtual
		var idx [4]VecVirtual
		var shl, shr VecVirtual
		if !l.z {
			sc = AllocLocal(32)
			// Broadcast of the dword (s_k, s_k+1) → words 0..7 = s_k, 8..15 = s_k+1.
			shuf = YMM()
			VMOVDQU(constBytes("q6kshuf", append(rep([]byte{0, 1}, 16), rep([]byte{2, 3}, 16)...)), shuf)
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
			shl, shr = ZMM(), ZMM()
			VMOVDQU64(constWords("q6kshl", cnt(4, 2)), shl)
			VMOVDQU64(constWords("q6kshr", cnt(0, 2)), shr)
		}

		loop, done := uniq("loop"), uniq("done")
		Label(loop)
		TESTQ(nb, nb)
		JZ(LabelRef(done))

		s16 := YMM()
		VPMOVSXBW(W.Offset(192), s16)
		corr := YMM()
		VPMADDWD(X.Offset(260), s16, corr)

		var sumi Register
		if !l.z {
			VMOVDQU(s16, sc)
			sumi = YMM()
			VPXOR(sumi, sumi, sumi)
			for h := 0; h < 2; h++ {
				qh := YMM()
				VMOVDQU(W.Offset(128+32*h), qh)
				ql0, ql1 := YMM(), YMM()
				VMOVDQU(W.Offset(64*h), ql0)
				VMOVDQU(W.Offset(64*h+32), ql1)
				for g := 0; g < 4; g++ {
					lo, hb := YMM(), YMM()
					src := []VecVirtual{ql0, ql1}[g&1]
					if g < 2 {
						VPAND(m0f, src, lo)
					} else {
						VPSRLW(U8(4), src, lo)
						VPAND(m0f, lo, lo)
					}
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
					p := YMM()
					VPMADDUBSW(X.Offset(4+128*h+32*g), lo, p)
					s := YMM()
					VPBROADCASTD(sc.Offset(2*(8*h+2*g)), s)
					VPSHUFB(shuf, s, s)
					VPMADDWD(s, p, p)
					VPADDD(p, sumi, sumi)
				}
			}
		} else {
			tbl := ZMM()
			VMOVDQA64(s16.AsZ(), tbl)
			s0, s1 := ZMM(), ZMM()
			VPXORD(s0, s0, s0)
			VPXORD(s1, s1, s1)
			for h := 0; h < 2; h++ {
				zql, zqh := ZMM(), ZMM()
				VMOVDQU64(W.Offset(64*h), zql)
				VBROADCASTI64X4(W.Offset(128+32*h), zqh)
				for k := 0; k < 2; k++ { // k=0: groups 0,1; k=1: groups 2,3
					lo, hb := ZMM(), ZMM()
					if k == 0 {
						VPANDD(m0f, zql, lo)
						VPSLLVW(shl, zqh, hb)
					} else {
						VPSRLW(U8(4), zql, lo)
						VPANDD(m0f, lo, lo)
						VPSRLVW(shr, zqh, hb)
					}
					VPANDD(m30, hb, hb)
					VPORD(hb, lo, lo)
					p := ZMM()
					VPMADDUBSW(X.Offset(4+128*h+64*k), lo, p)
					s := ZMM()
					VPERMW(tbl, idx[2*h+k], s)
					raw("VPDPWSSD", s, p, []VecVirtual{s0, s1}[k])
				}
			}
			VPADDD(s1, s0, s0)
			sumi = s0.AsY()
			// fold the upper 256 bits so sumi/corr are both YMM
			up := YMM()
			VEXTRACTI64X4(U8(1), s0, up)
			VPADDD(up, sumi, sumi)
		}
		VPSLLD(U8(5), corr, corr)
		VPSUBD(corr, sumi, sumi)

		r := GP32()
		MOVWLZX(W.Offset(208), r)
		d := XMM()
		VMOVD(r, d)
		VCVTPH2PS(d, d)
		VMULSS(X, d, d)
		dv := YMM()
		VBROADCASTSS(d, dv)
		VCVTDQ2PS(sumi, sumi)
		VFMADD231PS(sumi, dv, acc)

		ADDQ(U32(q6kBytes), W.Base)
		ADDQ(U32(q8kBytes), X.Base)
		DECQ(nb)
		JMP(LabelRef(loop))

		Label(done)
		res := hsumPS(l, acc)
		Store(res, ReturnIndex(0))
		VZEROUPPER()
		RET()
	}
}
