package main

import (
	"fmt"
	"strings"

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
	s16 := YMM()
	VPMOVZXBW(unpackQ4KScaleBytes(w), s16)
	return s16
}

// unpackQ4KScaleBytes decodes the 12 packed scale bytes at w+4 into 16
// bytes (sc0..7, m0..7) in an XMM register.
func unpackQ4KScaleBytes(w Mem) VecVirtual {
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
	return x
}

// q4kMinsDup returns the 8 mins (words 8..15 of s16) each duplicated, as
// 16 words [m0 m0 m1 m1 … m7 m7], so one pmaddwd against the 16 Q8_K bsums
// gives the 8 products m_j·(bsums[2j]+bsums[2j+1]).
func q4kMinsDup(l level, s16 VecVirtual) VecVirtual {
	md := YMM()
	if l.z {
		w := make([]uint16, 16)
		for i := range w {
			w[i] = uint16(8 + i/2)
		}
		VMOVDQU16(constWords("q4kminidx", w), md)
		VPERMW(s16, md, md)
		return md
	}
	mx := XMM()
	VEXTRACTI128(U8(1), s16, mx)
	VPMOVZXWD(mx, md)
	t := YMM()
	VPSLLD(U8(16), md, t)
	VPOR(t, md, md)
	return md
}

func genQ4K() {
	for _, q5 := range []bool{false, true} {
		for _, l := range []level{avx2, avx512} {
			if l.z && !q5 {
				genQ4KDotVNNI()
			} else {
				genQ4KCols(l, 1, q5)
			}
			genQ4KCols(l, 2, q5)
			genQ4KCols(l, 4, q5)
		}
		genQ4KCols(avx512, 8, q5)
	}
}

// Q5_K block (176 B): as Q4_K plus qh[32] @16 (bit j of qh[l] is bit 4 of
// element 32j+l), qs[128] @48.
const q5kBytes = 176

// colPtrs loads the activation row pointers of a multi-column kernel:
// column c lives at x + c·xstride.
func colPtrs(ncols int) []Mem {
	X := Load(Param("x"), GP64())
	cols := []Mem{{Base: X}}
	if ncols == 1 {
		return cols
	}
	xs := Load(Param("xstride"), GP64())
	if ncols == 2 {
		return append(cols, Mem{Base: X, Index: xs, Scale: 1})
	}
	xs2, xs3 := GP64(), GP64()
	LEAQ(Mem{Base: xs, Index: xs, Scale: 1}, xs2)
	LEAQ(Mem{Base: xs2, Index: xs, Scale: 1}, xs3)
	for _, r := range []Register{xs, xs2, xs3} {
		cols = append(cols, Mem{Base: X, Index: r, Scale: 1})
	}
	if ncols == 8 {
		// Columns 4..7 from a second base pointer X + 4·xstride.
		X4 := GP64()
		LEAQ(Mem{Base: X, Index: xs2, Scale: 2}, X4)
		cols = append(cols, Mem{Base: X4})
		for _, r := range []Register{xs, xs2, xs3} {
			cols = append(cols, Mem{Base: X4, Index: r, Scale: 1})
		}
	}
	return cols
}

// advanceCols moves every column base pointer on by one Q8_K block.
func advanceCols(X []Mem) {
	ADDQ(U32(q8kBytes), X[0].Base)
	if len(X) == 8 {
		ADDQ(U32(q8kBytes), X[4].Base)
	}
}

// storeCols reduces each column's accumulator and returns it (ncols == 1)
// or stores it at dst[c·dstride].
func storeCols(l level, acc []VecVirtual) {
	if len(acc) == 1 {
		Store(hsumPS(l, acc[0]), ReturnIndex(0))
		return
	}
	dst := Load(Param("dst"), GP64())
	ds := Load(Param("dstride"), GP64())
	for c, a := range acc {
		VMOVSS(hsumPS(l, a), Mem{Base: dst})
		if c+1 < len(acc) {
			LEAQ(Mem{Base: dst, Index: ds, Scale: 4}, dst)
		}
	}
}

func colSig(ncols int) string {
	if ncols == 1 {
		return "func(nb int, w, x *byte) float32"
	}
	return "func(nb int, w, x *byte, xstride int, dst *float32, dstride int, rows int)"
}

// rowLoop is the loop of a multi-column kernel over rows >= 1 consecutive
// weight rows (row r's results go to dst[c·dstride + r]): the Go loop and
// call per row cost 9% of glm-tiny's batched decode step (one block a row).
type rowLoop struct {
	label     string
	left, dst Register
}

// beginRows loads the row count and dst and opens the loop; each row
// reloads nb and the column pointers (the weight pointer runs on: rows are
// consecutive, and every block loop leaves it at the next row).
func beginRows(nb Register, X []Mem) rowLoop {
	r := rowLoop{label: uniq("row"), left: Load(Param("rows"), GP64()), dst: Load(Param("dst"), GP64())}
	Label(r.label)
	Load(Param("nb"), nb)
	Load(Param("x"), X[0].Base)
	if len(X) == 8 {
		LEAQ(Mem{Base: X[0].Base, Index: X[2].Index, Scale: 2}, X[4].Base) // X + 4·xstride
	}
	return r
}

// end stores the row's column results and moves on to the next row.
func (r rowLoop) end(l level, acc []VecVirtual) {
	d := GP64()
	MOVQ(r.dst, d)
	ds := Load(Param("dstride"), GP64())
	for c, a := range acc {
		VMOVSS(hsumPS(l, a), Mem{Base: d})
		if c+1 < len(acc) {
			LEAQ(Mem{Base: d, Index: ds, Scale: 4}, d)
		}
	}
	ADDQ(U8(4), r.dst)
	DECQ(r.left)
	JNZ(LabelRef(r.label))
}

func colName(base string, ncols int, l level) string {
	if ncols == 1 {
		return base + l.suffix
	}
	return fmt.Sprintf("%sx%d%s", base, ncols, l.suffix)
}

func genQ4KCols(l level, ncols int, q5 bool) {
	typ, blockBytes, qsOff := "Q4_K", q4kBytes, 16
	if q5 {
		typ, blockBytes, qsOff = "Q5_K", q5kBytes, 48
	}
	name := colName("dot"+strings.ReplaceAll(typ, "_", "")+"Q8K", ncols, l)
	TEXT(name, NOSPLIT, colSig(ncols))
	Pragma("noescape")
	if ncols == 1 {
		Doc(name+" returns the dot product of nb "+typ+" blocks at w with nb Q8_K blocks at x.",
			"Per block: Σ_j sc_j·(Σ q·a) in int32 (maddubs, then "+map[bool]string{false: "pmaddwd", true: "vpdpwssd"}[l.z]+" with the scale),",
			"times d_w·d_x, minus dmin_w·d_x·Σ_j m_j·(bsums[2j]+bsums[2j+1]).")
	} else {
		Doc(fmt.Sprintf("%s computes, for rows consecutive weight rows r of nb %s blocks at w, the dot products", name, typ),
			fmt.Sprintf("with %d Q8_K rows at x + c·xstride (c = 0..%d), storing them at dst[c·dstride + r]; each row is decoded once.", ncols, ncols-1))
	}
	nb := Load(Param("nb"), GP64())
	W := Mem{Base: Load(Param("w"), GP64())}
	X := colPtrs(ncols)
	acc := make([]VecVirtual, ncols)
	for c := range acc {
		acc[c] = l.vec()
	}
	var mask VecVirtual
	if ncols <= 4 {
		mask = l.vec()
		bcastD(0x0f0f0f0f, mask)
	}
	sgn := XMM()
	{
		r := GP32()
		MOVL(U32(0x80000000), r)
		VMOVD(r, sgn)
	}

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

	var rl rowLoop
	if ncols > 1 {
		rl = beginRows(nb, X)
	}
	zeroVecs(l, acc)
	loop, done := uniq("loop"), uniq("done")
	Label(loop)
	TESTQ(nb, nb)
	JZ(LabelRef(done))

	s16 := unpackQ4KScales(W)
	dw := XMM() // [d_w, dmin_w]
	VMOVD(W, dw)
	VCVTPH2PS(dw, dw)
	// Min term first: acc_c += (−dmin_w·d_x) · Σ_j m_j·(bsum pairs) (8 lanes).
	md := q4kMinsDup(l, s16)
	for c := range X {
		prod := YMM()
		VPMADDWD(X[c].Offset(260), md, prod)
		VCVTDQ2PS(prod, prod)
		dm := XMM()
		VMOVSHDUP(dw, dm) // dmin_w
		VMULSS(X[c], dm, dm)
		VXORPS(sgn, dm, dm)
		t := l.vec()
		VBROADCASTSS(dm, t)
		if l.z {
			VFMADD231PS(prod.AsZ(), t, acc[c]) // prod's upper half is zero
		} else {
			VFMADD231PS(prod, t, acc[c])
		}
	}
	sumi := make([]VecVirtual, ncols)
	for c := range sumi {
		sumi[c] = l.vec()
		if l.z {
			zeroVec(sumi[c])
		} else {
			VPXOR(sumi[c], sumi[c], sumi[c])
		}
	}
	m10 := constBytes("c10", rep([]byte{0x10}, 64))
	if !l.z {
		VMOVDQU(s16, sc)
		var qh VecVirtual
		if q5 {
			qh = YMM()
			VMOVDQU(W.Offset(16), qh)
		}
		for ch := 0; ch < 4; ch++ {
			q := YMM()
			VMOVDQU(W.Offset(qsOff+32*ch), q)
			lo, hi := YMM(), YMM()
			VPAND(mask, q, lo)
			VPSRLW(U8(4), q, hi)
			VPAND(mask, hi, hi)
			if q5 {
				// Bit k = 2ch (+1 for hi) of every qh byte → bit 4.
				for i, v := range []VecVirtual{lo, hi} {
					k := 2*ch + i
					hb := YMM()
					switch {
					case k < 4:
						VPSLLW(U8(4-k), qh, hb)
					case k == 4:
						VMOVDQA(qh, hb)
					default:
						VPSRLW(U8(k-4), qh, hb)
					}
					VPAND(m10, hb, hb)
					VPOR(hb, v, v)
				}
			}
			for k, v := range []VecVirtual{lo, hi} {
				s := YMM()
				VPBROADCASTW(sc.Offset(2*(2*ch+k)), s)
				for c := range X {
					p := YMM()
					VPMADDUBSW(X[c].Offset(4+64*ch+32*k), v, p)
					VPMADDWD(s, p, p)
					VPADDD(p, sumi[c], sumi[c])
				}
			}
		}
	} else {
		tbl := ZMM()
		VMOVDQA64(s16.AsZ(), tbl) // upper half zero (VEX write), table = 16 words
		var zqh VecVirtual
		if q5 {
			zqh = ZMM()
			VBROADCASTI64X4(W.Offset(16), zqh)
		}
		for ch := 0; ch < 4; ch++ {
			z := ZMM()
			VMOVDQU64(W.Offset(qsOff+32*ch), z.AsY())
			hi := YMM()
			VPSRLW(U8(4), z.AsY(), hi)
			VINSERTI64X4(U8(1), hi, z, z)
			if ncols > 4 {
				VPANDD(constBytes("c0f64", rep([]byte{0x0f}, 64)), z, z) // registers are scarce
			} else {
				VPANDD(mask, z, z)
			}
			if q5 {
				// Words 0..15 need bit 2ch of qh at bit 4, words 16..31 bit 2ch+1.
				hb := ZMM()
				if ch < 2 {
					VPSLLVW(constWords(cname("q5kshl%d", ch), halves(uint16(4-2*ch), uint16(3-2*ch))), zqh, hb)
				} else {
					VPSRLVW(constWords(cname("q5kshr%d", ch), halves(uint16(2*ch-4), uint16(2*ch-3))), zqh, hb)
				}
				VPANDD(m10, hb, hb)
				VPORD(hb, z, z)
			}
			s := ZMM()
			VPERMW(tbl, idx[ch], s)
			for c := range X {
				p := ZMM()
				VPMADDUBSW(X[c].Offset(4+64*ch), z, p)
				raw("VPDPWSSD", s, p, sumi[c])
			}
		}
	}
	for c := range X {
		dd := XMM()
		VMULSS(X[c], dw, dd) // d_w·d_x
		dv := l.vec()
		VBROADCASTSS(dd, dv)
		VCVTDQ2PS(sumi[c], sumi[c])
		VFMADD231PS(sumi[c], dv, acc[c])
	}

	ADDQ(U32(blockBytes), W.Base)
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

// halves returns 32 words: 16 copies of a, then 16 copies of b.
func halves(a, b uint16) []uint16 {
	w := make([]uint16, 32)
	for i := range w {
		w[i] = a
		if i >= 16 {
			w[i] = b
		}
	}
	return w
}
