package quant

import (
	"encoding/binary"
	"math"
)

// Q8_0: 32 elements in 34 bytes: fp16 d @0, int8 qs[32] @2; x = d*q.
// Q8_1: 32 elements in 36 bytes: fp16 d @0, fp16 s @2, int8 qs[32] @4;
// x = d*q, s = d*Σq (activation side of Q4_1/Q5_1 dots).
// Q8_K: 256 elements in 292 bytes: float32 d @0, int8 qs[256] @4,
// int16 bsums[16] @260 (bsums[i] = Σ qs[16i..16i+15]); x = d*q (activation
// side of the K-quant dots, never stored in model files).

const (
	blockQ8_0 = 34
	blockQ8_1 = 36
	blockQ8_K = 292
)

// DequantizeRowQ8_0 dequantizes len(dst) elements (a multiple of 32) from
// src (len(dst)/32*34 bytes), as ggml's dequantize_row_q8_0.
func DequantizeRowQ8_0(src []byte, dst []float32) {
	nb := len(dst) / 32
	src = src[:nb*blockQ8_0]
	for i := 0; i < nb; i++ {
		b := src[i*blockQ8_0 : (i+1)*blockQ8_0]
		d := fp16At(b)
		y := dst[i*32 : i*32+32]
		for j := range y {
			y[j] = float32(int8(b[2+j])) * d
		}
	}
}

// QuantizeRowQ8_0 quantizes src (a multiple of 32 elements) into dst
// (len(src)/32*34 bytes), bit-exact with ggml's quantize_row_q8_0_ref:
// d = amax/127, q = roundf(x*(1/d)) (half away from zero), fp16(d) stored.
func QuantizeRowQ8_0(src []float32, dst []byte) {
	nb := len(src) / 32
	dst = dst[:nb*blockQ8_0]
	for i := 0; i < nb; i++ {
		x := src[i*32 : i*32+32]
		b := dst[i*blockQ8_0 : (i+1)*blockQ8_0]
		var amax float32
		for _, v := range x {
			amax = max(amax, abs32(v))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putFP16(b, d)
		for j, v := range x {
			b[2+j] = byte(int8(roundAway(float32(v * id))))
		}
	}
}

// DequantizeRowQ8_1 dequantizes len(dst) elements (a multiple of 32) from
// src (len(dst)/32*36 bytes): x = d*q (s is not needed).
func DequantizeRowQ8_1(src []byte, dst []float32) {
	nb := len(dst) / 32
	src = src[:nb*blockQ8_1]
	for i := 0; i < nb; i++ {
		b := src[i*blockQ8_1 : (i+1)*blockQ8_1]
		d := fp16At(b)
		y := dst[i*32 : i*32+32]
		for j := range y {
			y[j] = float32(int8(b[4+j])) * d
		}
	}
}

// QuantizeRowQ8_1 quantizes src (a multiple of 32 elements) into dst
// (len(src)/32*36 bytes), bit-exact with ggml's quantize_row_q8_1_ref
// (d = amax/127, q = roundf(x/d), s = fp16(Σq * d)).
func QuantizeRowQ8_1(src []float32, dst []byte) {
	nb := len(src) / 32
	dst = dst[:nb*blockQ8_1]
	for i := 0; i < nb; i++ {
		x := src[i*32 : i*32+32]
		b := dst[i*blockQ8_1 : (i+1)*blockQ8_1]
		var amax float32
		for _, v := range x {
			amax = max(amax, abs32(v))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putFP16(b, d)
		sum := 0
		for j := 0; j < 16; j++ {
			q0 := int8(roundAway(float32(x[j] * id)))
			q1 := int8(roundAway(float32(x[j+16] * id)))
			b[4+j], b[20+j] = byte(q0), byte(q1)
			sum += int(q0) + int(q1)
		}
		putFP16(b[2:], float32(sum)*d)
	}
}

// DotQ8_0Q8_0 returns the dot product of n elements (a multiple of 32) of two
// Q8_0 rows, as ggml_vec_dot_q8_0_q8_0_generic: sumf += isum*(d_w*d_x).
func DotQ8_0Q8_0(n int, w, x []byte) float32 {
	nb := n / 32
	w = w[:nb*blockQ8_0]
	x = x[:nb*blockQ8_0]
	var sumf float32
	for i := 0; i < nb; i++ {
		wb := w[i*blockQ8_0 : (i+1)*blockQ8_0]
		xb := x[i*blockQ8_0 : (i+1)*blockQ8_0]
		var s int32
		for j := 2; j < blockQ8_0; j++ {
			s += int32(int8(wb[j])) * int32(int8(xb[j]))
		}
		sumf += float32(float32(s) * float32(fp16At(wb)*fp16At(xb)))
	}
	return sumf
}

// DequantizeRowQ8K dequantizes len(dst) elements (a multiple of 256) from
// src (len(dst)/256*292 bytes): x = d*q with the fp32 d.
func DequantizeRowQ8K(src []byte, dst []float32) {
	nb := len(dst) / 256
	src = src[:nb*blockQ8_K]
	for i := 0; i < nb; i++ {
		b := src[i*blockQ8_K : (i+1)*blockQ8_K]
		d := math.Float32frombits(binary.LittleEndian.Uint32(b))
		y := dst[i*256 : i*256+256]
		for j := range y {
			y[j] = d * float32(int8(b[4+j]))
		}
	}
}

// QuantizeRowQ8K quantizes src (a multiple of 256 elements) into dst
// (len(src)/256*292 bytes), bit-exact with ggml's quantize_row_q8_K_ref:
// m = signed max-abs, iscale = -127/m, q = min(127, nearest_int(iscale*x)),
// d = 1/iscale, bsums = 16-element sums. An all-zero block gets d = 0,
// q = 0 and bsums = 0 (ggml leaves bsums unwritten there).
func QuantizeRowQ8K(src []float32, dst []byte) {
	nb := len(src) / 256
	dst = dst[:nb*blockQ8_K]
	for i := 0; i < nb; i++ {
		x := src[i*256 : i*256+256]
		b := dst[i*blockQ8_K : (i+1)*blockQ8_K]
		var amax, mx float32
		for _, v := range x {
			if a := abs32(v); a > amax {
				amax, mx = a, v
			}
		}
		if amax == 0 {
			clear(b)
			continue
		}
		iscale := -127 / mx
		for j, v := range x {
			b[4+j] = byte(int8(min(127, nearestInt(float32(iscale*v)))))
		}
		for j := 0; j < 16; j++ {
			var s int16
			for _, q := range b[4+16*j : 4+16*j+16] {
				s += int16(int8(q))
			}
			binary.LittleEndian.PutUint16(b[260+2*j:], uint16(s))
		}
		binary.LittleEndian.PutUint32(b, math.Float32bits(1/iscale))
	}
}

// QuantizeRowQ8_0Even quantizes src (a multiple of 32 elements) into dst
// (len(src)/32*34 bytes) exactly as llama.cpp's x86 AVX/AVX2
// quantize_row_q8_0 (its activation path on x86): d = amax/127 stored as
// fp16, codes = round-half-to-even(x * (127/amax)). It differs from
// QuantizeRowQ8_0 (ggml's reference: roundf of x*(1/d)) in the last code
// bit for a small fraction of elements. Use it to mirror llama.cpp's x86
// fast path; the reference stays QuantizeRowQ8_0.
func QuantizeRowQ8_0Even(src []float32, dst []byte) {
	nb := len(src) / 32
	dst = dst[:nb*blockQ8_0]
	for i := 0; i < nb; i++ {
		x := src[i*32 : i*32+32]
		b := dst[i*blockQ8_0 : (i+1)*blockQ8_0]
		var amax float32
		for _, v := range x {
			amax = max(amax, abs32(v))
		}
		putFP16(b, amax/127)
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		for j, v := range x {
			b[2+j] = byte(int8(math.RoundToEven(float64(float32(v * id)))))
		}
	}
}
