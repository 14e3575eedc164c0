package quant

import (
	"encoding/binary"
	"math"
)

// Q5_K: 256 elements in 176 bytes: fp16 d @0, fp16 dmin @2, scales[12] @4
// (packed as Q4_K), qh[32] @16, qs[128] @48. Element p (c = p/64, l = p%32,
// hi = (p%64)/32): low 4 bits = nibble hi of qs[32c+l], bit 4 = bit (2c+hi)
// of qh[l]; x = d*sc_j*q - dmin*m_j with j = p/32, q in 0..31.

const blockQ5K = 176

// DequantizeRowQ5K dequantizes len(dst) elements (a multiple of 256) from src
// (len(dst)/256*176 bytes), bit-exact with ggml's dequantize_row_q5_K.
func DequantizeRowQ5K(src []byte, dst []float32) {
	nb := len(dst) / qkK
	src = src[:nb*blockQ5K]
	for i := 0; i < nb; i++ {
		b := src[i*blockQ5K : (i+1)*blockQ5K]
		d, dmin := fp16At(b), fp16At(b[2:])
		scales := b[4:16]
		qh := b[16:48]
		ql := b[48:176]
		y := dst[i*qkK : (i+1)*qkK]
		for c := 0; c < 4; c++ {
			sc, m := scaleMinK4(2*c, scales)
			d1, m1 := float32(d*float32(sc)), float32(dmin*float32(m))
			sc, m = scaleMinK4(2*c+1, scales)
			d2, m2 := float32(d*float32(sc)), float32(dmin*float32(m))
			u1, u2 := uint8(1)<<(2*c), uint8(2)<<(2*c)
			qc := ql[32*c : 32*c+32]
			yc := y[64*c : 64*c+64]
			for l := 0; l < 32; l++ {
				q0, q1 := qc[l]&0x0f, qc[l]>>4
				if qh[l]&u1 != 0 {
					q0 += 16
				}
				if qh[l]&u2 != 0 {
					q1 += 16
				}
				yc[l] = float32(d1*float32(q0)) - m1
				yc[l+32] = float32(d2*float32(q1)) - m2
			}
		}
	}
}

// QuantizeRowQ5K quantizes src (a multiple of 256 elements) into dst
// (len(src)/256*176 bytes), bit-exact with ggml's quantize_row_q5_K_ref
// (as Q4_K with nmax = 31, make_qkx2_quants(rmin=-0.5, rdelta=0.1, nstep=15)).
func QuantizeRowQ5K(src []float32, dst []byte) {
	nb := len(src) / qkK
	dst = dst[:nb*blockQ5K]
	var L [qkK]uint8
	for i := 0; i < nb; i++ {
		x := src[i*qkK : (i+1)*qkK]
		b := dst[i*blockQ5K : (i+1)*blockQ5K]
		clear(b)
		d, dmin := kQuantScales(x, b[4:16], L[:], 31, -0.5, 0.1, 15)
		putFP16(b, d)
		putFP16(b[2:], dmin)
		kQuantCodes(x, b, L[:], 31)
		qh := b[16:48]
		ql := b[48:176]
		for c := 0; c < 4; c++ {
			m1, m2 := uint8(1)<<(2*c), uint8(2)<<(2*c)
			for j := 0; j < 32; j++ {
				l1, l2 := L[64*c+j], L[64*c+j+32]
				if l1 > 15 {
					l1 -= 16
					qh[j] |= m1
				}
				if l2 > 15 {
					l2 -= 16
					qh[j] |= m2
				}
				ql[32*c+j] = l1 | l2<<4
			}
		}
	}
}

// DotQ5KQ8K returns the dot product of n elements (a multiple of 256) of a
// Q5_K row w with a Q8_K row x, operation for operation as
// ggml_vec_dot_q5_K_q8_K_generic (same lane structure as DotQ4KQ8K).
func DotQ5KQ8K(n int, w, x []byte) float32 {
	nb := n / qkK
	w = w[:nb*blockQ5K]
	x = x[:nb*blockQ8_K]
	var sums [8]float32
	var sumf float32
	for i := 0; i < nb; i++ {
		wb := w[i*blockQ5K : (i+1)*blockQ5K]
		xb := x[i*blockQ8_K : (i+1)*blockQ8_K]
		scales := wb[4:16]
		qh := wb[16:48]
		ql := wb[48:176]
		q8 := xb[4:260]
		var aux32 [8]int32
		var sumi int32
		for j := 0; j < 8; j++ {
			sc, m := scaleMinK4(j, scales)
			sumi += (int32(int16(binary.LittleEndian.Uint16(xb[260+4*j:]))) +
				int32(int16(binary.LittleEndian.Uint16(xb[262+4*j:])))) * int32(m)
			c, hi := j/2, uint(j%2)*4
			qc := ql[32*c : 32*c+32]
			q8j := q8[32*j : 32*j+32]
			scale := int32(sc)
			for l := 0; l < 32; l++ {
				q := int32((qc[l]>>hi)&0x0f) | int32((qh[l]>>uint(j))&1)<<4
				aux32[l&7] += scale * (int32(int8(q8j[l])) * q)
			}
		}
		dx := math.Float32frombits(binary.LittleEndian.Uint32(xb))
		d := float32(fp16At(wb) * dx)
		for l := range sums {
			sums[l] += float32(d * float32(aux32[l]))
		}
		dmin := float32(fp16At(wb[2:]) * dx)
		sumf -= float32(dmin * float32(sumi))
	}
	for _, s := range sums {
		sumf += s
	}
	return sumf
}
