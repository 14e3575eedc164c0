package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Q4_K block (144 B): fp16 d @0, fp16 dmin @2, scales[12] @4, qs[128] @16.
// Q8_K block (292 B): f32 d @0, int8 qs[256] @4, int16 bsums[16] @260.
const (
	q4kBytes = 144
	q8kBytes = 292
	q6kBytes = 210
)

// unpackQ4KScales decodes the 12 packed scale bytes at w+4 into 16 words
// (sc0..7, m0..7) in a YMM register (get_scale_min_k4, word-wise form).
func unpackQ4KScales(w Mem) VecVirtual {
	u0, u1, u2 := GP32(), GP32(), GP32()
	MOVL(w.Offset(4), u0)
	MOVL(w.Offset(8), u1)
	MOVL(w.Offset(12), u2)
	// sc4..7 = (u2 & 0x0f0f0f0f) | ((u0>>6) & 0x03030303)<<4
	schi, t := GP32(), GP32()
	MOVL(u2, schi)
	ANDL(U32(0x0f0f0f0f), schi)
	MOVL(u0, t)
	SHRL(U8(2), t)
	ANDL(U32(0x30303030), t)
	ORL(t, schi)
	// m4..7 = ((u2>>4) & 0x0f0f0f0f) | ((u1>>6) & 0x03030303)<<4
	mhi := GP32()
	MOVL(u2, mhi)
	SHRL(U8(4), mhi)
	ANDL(U32(0x0f0f0f0f), mhi)
	MOVL(u1, t)
	SHRL(U8(2), t)
	ANDL(U32(0x30303030), t)
	ORL(t, mhi)
	ANDL(U32(0x3f3f3f3f), u0) // sc0..3
	ANDL(U32(0x3f3f3f3f), u1) // m0..3
	x := XMM()
	VMOVD(u0, x)
	VPINSRD(U8(1), schi, x, x)
	VPINSRD(U8(2), u1, x, x)
	VPINSRD(U8(3), mhi, x, x)
	s16 := YMM()
	VPMOVZXBW(x, s16)
	return s16
}

// q4kMins returns, as 4 int32 in an XMM register, the pairwise products of
// the 8 mins (high half of s16) with the 8 sub-block sums of the Q8_K bsums.
func q4kMins(s16 VecVirtual, x Mem) VecVirtual {
	bs := YMM()
	VMOVDQU(x.Offset(260), bs)
	bsh := XMM()
	VEXTRACTI128(U8(1), bs, bsh)
	pairs := XMM()
	VPHADDW(bsh, bs.AsX(), pairs)
	mins := XMM()
	VEXTRACTI128(U8(1), s16, mins)
	VPMADDWD(pairs, mins, pairs)
	return pairs
}

// blockScalesQ4K returns XMM [d_w*d_x, dmin_w*d_x, ...].
func blockScalesQ4K(w, x Mem) VecVirtual {
	dd := XMM()
	VMOVD(w, dd)
	VCVTPH2PS(dd, dd)
	dx := XMM()
	VBROADCASTSS(x, dx)
	VMULPS(dx, dd, dd)
	return dd
}

func genQ4K() {
	for _, l := range []level{avx2, avx512} {
		TEXT("dotQ4KQ8K"+l.suffix, NOSPLIT, "func(nb int, w, x *byte) float32")
		Pragma("noescape")
		Doc("dotQ4KQ8K"+l.suffix+" returns the dot product of nb Q4_K blocks at w with nb Q8_K blocks at x.",
			"Per block: Σ_j sc_j·(Σ q·a) in int32 (maddubs, then "+map[bool]string{false: "pmaddwd", true: "vpdpwssd"}[l.z]+" with the scale),",
			"times d_w·d_x, minus dmin_w·d_x·Σ_j m_j·(bsums[2j]+bsums[2j+1]).")
		nb := Load(Param("nb"), GP64())
		W := Mem{Base: Load(Param("w"), GP64())}
		X := Mem{Base: Load(Param("x"), GP64())}
		acc := l.vec()
		VXORPS(acc, acc, acc)
		accm := XMM()
		VXORPS(accm, accm, accm)
		mask := l.vec()
		bcastD(0x0f0f0f0f, mask)

		var sc Mem
		var idx [4]VecVirtual
		if !l.z {
			sc = AllocLocal(32)
		} else {
			// idx[c]: words 0..15 pick scale 2c, words 16..31 scale 2c+1.
			for c := 0; c < 4; c++ {
				w := make([]uint16, 32)
				for i := range w {
					w[i] = uint16(2*c + i/16)
				}
				idx[c] = ZMM()
				VMOVDQU64(constWords(cname("q4kidx%d", c), w), idx[c])
			}
		}

		loop, done := uniq("loop"), uniq("done")
		Label(loop)
		TESTQ(nb, nb)
		JZ(LabelRef(done))

		s16 := unpackQ4KScales(W)
		prod := q4kMins(s16, X)

		var sumi Register
		if !l.z {
			VMOVDQU(s16, sc)
			sumi = YMM()
			VPXOR(sumi, sumi, sumi)
			for c := 0; c < 4; c++ {
				q := YMM()
				VMOVDQU(W.Offset(16+32*c), q)
				lo, hi := YMM(), YMM()
				VPAND(mask, q, lo)
				VPSRLW(U8(4), q, hi)
				VPAND(mask, hi, hi)
				for k, v := range []VecVirtual{lo, hi} {
					p := YMM()
					VPMADDUBSW(X.Offset(4+64*c+32*k), v, p)
					s := YMM()
					VPBROADCASTW(sc.Offset(2*(2*c+k)), s)
					VPMADDWD(s, p, p)
					VPADDD(p, sumi, sumi)
				}
			}
		} else {
			tbl := ZMM()
			VMOVDQA64(s16.AsZ(), tbl) // upper half zero (VEX write), table = 16 words
			s0, s1 := ZMM(), ZMM()
			VPXORD(s0, s0, s0)
			VPXORD(s1, s1, s1)
			for c := 0; c < 4; c++ {
				z := ZMM()
				VMOVDQU64(W.Offset(16+32*c), z.AsY())
				hi := YMM()
				VPSRLW(U8(4), z.AsY(), hi)
				VINSERTI64X4(U8(1), hi, z, z)
				VPANDD(mask, z, z)
				p := ZMM()
				VPMADDUBSW(X.Offset(4+64*c), z, p)
				s := ZMM()
				VPERMW(tbl, idx[c], s)
				raw("VPDPWSSD", s, p, []VecVirtual{s0, s1}[c&1])
			}
			VPADDD(s1, s0, s0)
			sumi = s0
		}
		dd := blockScalesQ4K(W, X)
		dv := l.vec()
		VBROADCASTSS(dd, dv)
		VCVTDQ2PS(sumi, sumi)
		VFMADD231PS(sumi, dv, acc)
		dm := XMM()
		VPSHUFD(U8(0x55), dd, dm)
		VCVTDQ2PS(prod, prod)
		VFMADD231PS(prod, dm, accm)

		ADDQ(U32(q4kBytes), W.Base)
		ADDQ(U32(q8kBytes), X.Base)
		DECQ(nb)
		JMP(LabelRef(loop))

		Label(done)
		r := hsumPS(l, acc)
		m := hsumX(accm)
		VSUBSS(m, r, r)
		Store(r, ReturnIndex(0))
		VZEROUPPER()
		RET()
	}
}
