package quant

import (
	"encoding/binary"
	"math"
)

// Q6_K: 256 elements in 210 bytes: ql[128] @0, qh[64] @128, int8 scales[16]
// @192, fp16 d @208 (d is last). Element p (h = p/128, r = p%128, g = r/32,
// l = r%32): low 4 bits = ql[64h + l + 32*(g&1)], low nibble for g < 2, high
// for g >= 2; high 2 bits = (qh[32h+l] >> 2g) & 3; x = d*scales[p/16]*(q-32).

const blockQ6K = 210

// DequantizeRowQ6K dequantizes len(dst) elements (a multiple of 256) from src
// (len(dst)/256*210 bytes), bit-exact with ggml's dequantize_row_q6_K.
func DequantizeRowQ6K(src []byte, dst []float32) {
	nb := len(dst) / qkK
	src = src[:nb*blockQ6K]
	for i := 0; i < nb; i++ {
		b := src[i*blockQ6K : (i+1)*blockQ6K]
		d := fp16At(b[208:])
		sc := b[192:208]
		y := dst[i*qkK : (i+1)*qkK]
		for h := 0; h < 2; h++ {
			ql := b[64*h : 64*h+64]
			qh := b[128+32*h : 128+32*h+32]
			s := sc[8*h : 8*h+8]
			yh := y[128*h : 128*h+128]
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int32(ql[l]&0x0f|(qh[l]>>0&3)<<4) - 32
				q2 := int32(ql[l+32]&0x0f|(qh[l]>>2&3)<<4) - 32
				q3 := int32(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int32(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				yh[l] = float32(d*float32(int8(s[is]))) * float32(q1)
				yh[l+32] = float32(d*float32(int8(s[is+2]))) * float32(q2)
				yh[l+64] = float32(d*float32(int8(s[is+4]))) * float32(q3)
				yh[l+96] = float32(d*float32(int8(s[is+6]))) * float32(q4)
			}
		}
	}
}

// QuantizeRowQ6K quantizes src (a multiple of 256 elements) into dst
// (len(src)/256*210 bytes), bit-exact with ggml's quantize_row_q6_K_ref
// (make_qx_quants(16, 32, rmse_type 1) per 16-element sub-block, 8-bit
// scales against -128/max_scale, codes re-derived from the stored fp16 d).
func QuantizeRowQ6K(src []float32, dst []byte) {
	nb := len(src) / qkK
	dst = dst[:nb*blockQ6K]
	var L [qkK]int8
	var scales [16]float32
	for i := 0; i < nb; i++ {
		x := src[i*qkK : (i+1)*qkK]
		b := dst[i*blockQ6K : (i+1)*blockQ6K]
		clear(b)
		var maxScale, maxAbsScale float32
		for ib := 0; ib < 16; ib++ {
			s := makeQXQuants(32, x[16*ib:16*ib+16], L[16*ib:16*ib+16])
			scales[ib] = s
			if a := abs32(s); a > maxAbsScale {
				maxAbsScale, maxScale = a, s
			}
		}
		if maxAbsScale < groupMaxEps {
			continue // all-zero block (d = +0)
		}
		iscale := -128 / maxScale
		putFP16(b[208:], 1/iscale)
		for ib := 0; ib < 16; ib++ {
			b[192+ib] = byte(int8(min(127, nearestInt(float32(iscale*scales[ib])))))
		}
		d := fp16At(b[208:])
		for j := 0; j < 16; j++ {
			dj := float32(d * float32(int8(b[192+j])))
			if dj == 0 {
				continue
			}
			for ii := 0; ii < 16; ii++ {
				l := nearestInt(x[16*j+ii] / dj)
				L[16*j+ii] = int8(max(-32, min(31, l)) + 32)
			}
		}
		for h := 0; h < 2; h++ {
			ql := b[64*h : 64*h+64]
			qh := b[128+32*h : 128+32*h+32]
			Lh := L[128*h : 128*h+128]
			for l := 0; l < 32; l++ {
				q1, q2, q3, q4 := uint8(Lh[l]), uint8(Lh[l+32]), uint8(Lh[l+64]), uint8(Lh[l+96])
				ql[l] = q1&0x0f | (q3&0x0f)<<4
				ql[l+32] = q2&0x0f | (q4&0x0f)<<4
				qh[l] = q1>>4 | (q2>>4)<<2 | (q3>>4)<<4 | (q4>>4)<<6
			}
		}
	}
}

// DotQ6KQ8K returns the dot product of n elements (a multiple of 256) of a
// Q6_K row w with a Q8_K row x, operation for operation as
// ggml_vec_dot_q6_K_q8_K_generic: signed codes q-32, integer sums in 8 lanes
// scaled by the 16 int8 sub-block scales, sums[l] += (d_w*d_x)*aux32[l],
// lanes added in order at the end.
func DotQ6KQ8K(n int, w, x []byte) float32 {
	nb := n / qkK
	w = w[:nb*blockQ6K]
	x = x[:nb*blockQ8_K]
	var sums [8]float32
	for i := 0; i < nb; i++ {
		wb := w[i*blockQ6K : (i+1)*blockQ6K]
		xb := x[i*blockQ8_K : (i+1)*blockQ8_K]
		q8 := xb[4:260]
		var aux32 [8]int32
		for h := 0; h < 2; h++ {
			ql := wb[64*h : 64*h+64]
			qh := wb[128+32*h : 128+32*h+32]
			q8h := q8[128*h : 128*h+128]
			sc := wb[192+8*h : 192+8*h+8]
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int32(ql[l]&0x0f|(qh[l]>>0&3)<<4) - 32
				q2 := int32(ql[l+32]&0x0f|(qh[l]>>2&3)<<4) - 32
				q3 := int32(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int32(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				aux32[l&7] += int32(int8(sc[is])) * (q1 * int32(int8(q8h[l])))
				aux32[l&7] += int32(int8(sc[is+2])) * (q2 * int32(int8(q8h[l+32])))
				aux32[l&7] += int32(int8(sc[is+4])) * (q3 * int32(int8(q8h[l+64])))
				aux32[l&7] += int32(int8(sc[is+6])) * (q4 * int32(int8(q8h[l+96])))
			}
		}
		d := float32(fp16At(wb[208:]) * math.Float32frombits(binary.LittleEndian.Uint32(xb)))
		for l := range sums {
			sums[l] += float32(d * float32(aux32[l]))
		}
	}
	var sumf float32
	for _, s := range sums {
		sumf += s
	}
	return sumf
}
