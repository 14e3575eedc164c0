package quant

import (
	"encoding/binary"
	"math"
)

// Q4_K: 256 elements in 144 bytes: fp16 d @0, fp16 dmin @2, scales[12] @4
// (eight 6-bit scales and mins, see scaleMinK4), qs[128] @16. 32-byte chunk c
// holds sub-block 2c in its low nibbles and 2c+1 in its high nibbles;
// x = d*sc_j*q - dmin*m_j with j = p/32.

const blockQ4K = 144

// DequantizeRowQ4K dequantizes len(dst) elements (a multiple of 256) from src
// (len(dst)/256*144 bytes), bit-exact with ggml's dequantize_row_q4_K.
func DequantizeRowQ4K(src []byte, dst []float32) {
	nb := len(dst) / qkK
	src = src[:nb*blockQ4K]
	for i := 0; i < nb; i++ {
		b := src[i*blockQ4K : (i+1)*blockQ4K]
		d, dmin := fp16At(b), fp16At(b[2:])
		scales := b[4:16]
		q := b[16:144]
		y := dst[i*qkK : (i+1)*qkK]
		for c := 0; c < 4; c++ {
			sc, m := scaleMinK4(2*c, scales)
			d1, m1 := float32(d*float32(sc)), float32(dmin*float32(m))
			sc, m = scaleMinK4(2*c+1, scales)
			d2, m2 := float32(d*float32(sc)), float32(dmin*float32(m))
			qc := q[32*c : 32*c+32]
			yc := y[64*c : 64*c+64]
			for l := 0; l < 32; l++ {
				yc[l] = float32(d1*float32(qc[l]&0x0f)) - m1
				yc[l+32] = float32(d2*float32(qc[l]>>4)) - m2
			}
		}
	}
}

// QuantizeRowQ4K quantizes src (a multiple of 256 elements) into dst
// (len(src)/256*144 bytes), bit-exact with ggml's quantize_row_q4_K_ref
// (make_qkx2_quants per 32-element sub-block with weights rms+|x|,
// 6-bit scales/mins against max/63, codes re-derived from the stored fp16
// d/dmin).
func QuantizeRowQ4K(src []float32, dst []byte) {
	nb := len(src) / qkK
	dst = dst[:nb*blockQ4K]
	var L [qkK]uint8
	for i := 0; i < nb; i++ {
		x := src[i*qkK : (i+1)*qkK]
		b := dst[i*blockQ4K : (i+1)*blockQ4K]
		clear(b)
		d, dmin := kQuantScales(x, b[4:16], L[:], 15, -1, 0.1, 20)
		putFP16(b, d)
		putFP16(b[2:], dmin)
		kQuantCodes(x, b, L[:], 15)
		q := b[16:144]
		for c := 0; c < 4; c++ {
			for l := 0; l < 32; l++ {
				q[32*c+l] = L[64*c+l] | L[64*c+l+32]<<4
			}
		}
	}
}

// kQuantScales runs the Q4_K/Q5_K reference scale search for one 256-block
// x: per sub-block make_qkx2_quants, then 6-bit scales/mins packed into
// scales (12 zeroed bytes). It returns the unrounded d = max_scale/63 and
// dmin = max_min/63 and leaves the sub-block codes in L.
func kQuantScales(x []float32, scales []byte, L []uint8, nmax int, rmin, rdelta float32, nstep int) (d, dmin float32) {
	var weights [32]float32
	var laux [32]uint8
	var sc, mins [8]float32
	var maxScale, maxMin float32
	for j := 0; j < 8; j++ {
		xs := x[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range xs {
			sumX2 += float32(v * v)
		}
		avX := sqrt32(sumX2 / 32)
		for l, v := range xs {
			weights[l] = avX + abs32(v)
		}
		sc[j], mins[j] = makeQKX2Quants(nmax, xs, weights[:], L[32*j:32*j+32], laux[:], rmin, rdelta, nstep)
		if sc[j] > maxScale {
			maxScale = sc[j]
		}
		if mins[j] > maxMin {
			maxMin = mins[j]
		}
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	var ls, lm [8]uint8
	for j := 0; j < 8; j++ {
		ls[j] = min(63, uint8(nearestInt(float32(invScale*sc[j]))))
		lm[j] = min(63, uint8(nearestInt(float32(invMin*mins[j]))))
	}
	packScaleMinK4(scales, &ls, &lm)
	return maxScale / 63, maxMin / 63
}

// kQuantCodes re-derives the codes of a Q4_K/Q5_K block b (d, dmin and
// scales already stored) from x: q = clamp(nearest_int((x + dmin*m)/(d*sc)),
// 0, nmax); a sub-block whose d*sc is zero keeps the codes already in L.
func kQuantCodes(x []float32, b []byte, L []uint8, nmax int) {
	d, dmin := fp16At(b), fp16At(b[2:])
	for j := 0; j < 8; j++ {
		sc, m := scaleMinK4(j, b[4:16])
		dj := float32(d * float32(sc))
		if dj == 0 {
			continue
		}
		dm := float32(dmin * float32(m))
		for ii := 0; ii < 32; ii++ {
			l := nearestInt((x[32*j+ii] + dm) / dj)
			L[32*j+ii] = uint8(max(0, min(nmax, l)))
		}
	}
}

// DotQ4KQ8K returns the dot product of n elements (a multiple of 256) of a
// Q4_K row w with a Q8_K row x. The arithmetic is ggml's
// ggml_vec_dot_q4_K_q8_K_generic, operation for operation: per super-block
// integer sums in 8 lanes (lane l = elements ≡ l mod 8) scaled by the
// sub-block scales, sums[l] += (d_w*d_x)*aux32[l]; the min term
// sumf -= (dmin_w*d_x)*Σ bsums[k]*m[k/2]; finally the 8 lanes are added to
// sumf in order.
func DotQ4KQ8K(n int, w, x []byte) float32 {
	nb := n / qkK
	w = w[:nb*blockQ4K]
	x = x[:nb*blockQ8_K]
	var sums [8]float32
	var sumf float32
	for i := 0; i < nb; i++ {
		wb := w[i*blockQ4K : (i+1)*blockQ4K]
		xb := x[i*blockQ8_K : (i+1)*blockQ8_K]
		scales := wb[4:16]
		q4 := wb[16:144]
		q8 := xb[4:260]
		var aux32 [8]int32
		var sumi int32
		for j := 0; j < 8; j++ {
			sc, m := scaleMinK4(j, scales)
			sumi += (int32(int16(binary.LittleEndian.Uint16(xb[260+4*j:]))) +
				int32(int16(binary.LittleEndian.Uint16(xb[262+4*j:])))) * int32(m)
			c, hi := j/2, uint(j%2)*4
			qc := q4[32*c : 32*c+32]
			q8j := q8[32*j : 32*j+32]
			scale := int32(sc)
			for l := 0; l < 32; l++ {
				aux32[l&7] += scale * (int32(int8(q8j[l])) * int32((qc[l]>>hi)&0x0f))
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
