package quant

import "math"

// MXFP4 (OCP MX): 32 elements in 17 bytes: uint8 E8M0 exponent e @0,
// qs[16] @1 (low nibble = element j, high nibble = element j+16). A code is
// FP4 E2M1 (sign bit 3, exponent bits 2-1, mantissa bit 0); ggml keeps the
// doubled table kvalues and a halved scale: x = kv2[q] * 2^(e-128).

const blockMXFP4 = 17

// kv2 is the E2M1 code table doubled to integers (ggml's kvalues_mxfp4):
// value(code) = kv2[code]/2. Code 8 is -0.
var kv2 = [16]int8{0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}

// E8M0ToFloat32Half returns 2^(e-128) (half the E8M0 scale 2^(e-127)), as
// ggml's ggml_e8m0_to_fp32_half: e = 0 and 1 give the fp32 subnormals
// 2^-128 and 2^-127; e = 255 is not treated as NaN.
func E8M0ToFloat32Half(e uint8) float32 {
	if e < 2 {
		return math.Float32frombits(0x00200000 << e)
	}
	return math.Float32frombits(uint32(e-1) << 23)
}

// DequantizeRowMXFP4 dequantizes len(dst) elements (a multiple of 32) from
// src (len(dst)/32*17 bytes), bit-exact with ggml's dequantize_row_mxfp4.
func DequantizeRowMXFP4(src []byte, dst []float32) {
	nb := len(dst) / 32
	src = src[:nb*blockMXFP4]
	for i := 0; i < nb; i++ {
		b := src[i*blockMXFP4 : (i+1)*blockMXFP4]
		d := E8M0ToFloat32Half(b[0])
		y := dst[i*32 : i*32+32]
		for j := 0; j < 16; j++ {
			y[j] = float32(kv2[b[1+j]&0x0f]) * d
			y[j+16] = float32(kv2[b[1+j]>>4]) * d
		}
	}
}

// bestIndexFP4 is ggml's best_index_mxfp4: the code i minimizing
// |kv2[i]*d - x| in float32, the first minimum winning (so +0 beats -0 and a
// tie between two magnitudes goes to the smaller one).
func bestIndexFP4(x, d float32) uint8 {
	best := 0
	bestErr := abs32(float32(float32(kv2[0])*d) - x)
	for i := 1; i < 16; i++ {
		if err := abs32(float32(float32(kv2[i])*d) - x); err < bestErr {
			best, bestErr = i, err
		}
	}
	return uint8(best)
}

// QuantizeRowMXFP4 quantizes src (a multiple of 32 elements) into dst
// (len(src)/32*17 bytes) as ggml's quantize_row_mxfp4_ref:
// e = floor(log2(amax)) - 2 + 127 (0 for an all-zero block), codes by
// bestIndexFP4 against 2^(e-128). log2 is computed in float64 and rounded to
// float32 (glibc's log2f may differ by an ulp for amax just below a power of
// two); e is clamped to 0..255 where C would be undefined.
func QuantizeRowMXFP4(src []float32, dst []byte) {
	nb := len(src) / 32
	dst = dst[:nb*blockMXFP4]
	for i := 0; i < nb; i++ {
		x := src[i*32 : i*32+32]
		b := dst[i*blockMXFP4 : (i+1)*blockMXFP4]
		var amax float32
		for _, v := range x {
			if a := abs32(v); amax < a {
				amax = a
			}
		}
		var e uint8
		if amax > 0 {
			l := float32(math.Floor(float64(float32(math.Log2(float64(amax)))))) - 2 + 127
			e = uint8(max(0, min(255, l)))
		}
		b[0] = e
		d := E8M0ToFloat32Half(e)
		for j := 0; j < 16; j++ {
			b[1+j] = bestIndexFP4(x[j], d) | bestIndexFP4(x[j+16], d)<<4
		}
	}
}

// DotMXFP4Q8_0 returns the dot product of n elements (a multiple of 32) of an
// MXFP4 row w with a Q8_0 row x, as ggml_vec_dot_mxfp4_q8_0_generic:
// sumf += (d_x*2^(e-128)) * isum per block, isum over kv2 codes.
func DotMXFP4Q8_0(n int, w, x []byte) float32 {
	nb := n / 32
	w = w[:nb*blockMXFP4]
	x = x[:nb*blockQ8_0]
	var sumf float32
	for i := 0; i < nb; i++ {
		wb := w[i*blockMXFP4 : (i+1)*blockMXFP4]
		xb := x[i*blockQ8_0 : (i+1)*blockQ8_0]
		d := float32(fp16At(xb) * E8M0ToFloat32Half(wb[0]))
		var s1, s2 int32
		for j := 0; j < 16; j++ {
			s1 += int32(int8(xb[2+j])) * int32(kv2[wb[1+j]&0x0f])
			s2 += int32(int8(xb[18+j])) * int32(kv2[wb[1+j]>>4])
		}
		sumf += float32(d * float32(s1+s2))
	}
	return sumf
}
