package quant

import "encoding/binary"

// Q5_0: 32 elements in 22 bytes: fp16 d @0, qh[4] @2 (one LE uint32, bit j =
// bit 4 of element j), qs[16] @6 (low nibble = element j, high nibble =
// element j+16); x = d*(q-16), q in 0..31.
//
// Q5_1: 32 elements in 24 bytes: fp16 d @0, fp16 m @2, qh[4] @4, qs[16] @8;
// x = d*q + m.

const (
	blockQ5_0 = 22
	blockQ5_1 = 24
)

// DequantizeRowQ5_0 dequantizes len(dst) elements (a multiple of 32) from
// src (len(dst)/32*22 bytes), as ggml's dequantize_row_q5_0.
func DequantizeRowQ5_0(src []byte, dst []float32) {
	nb := len(dst) / 32
	src = src[:nb*blockQ5_0]
	for i := 0; i < nb; i++ {
		b := src[i*blockQ5_0 : (i+1)*blockQ5_0]
		d := fp16At(b)
		qh := binary.LittleEndian.Uint32(b[2:])
		y := dst[i*32 : i*32+32]
		for j := 0; j < 16; j++ {
			h0 := (qh >> j << 4) & 0x10
			h1 := (qh >> (j + 12)) & 0x10
			y[j] = float32(int32(uint32(b[6+j]&0x0f)|h0)-16) * d
			y[j+16] = float32(int32(uint32(b[6+j]>>4)|h1)-16) * d
		}
	}
}

// QuantizeRowQ5_0 quantizes src (a multiple of 32 elements) into dst
// (len(src)/32*22 bytes), bit-exact with ggml's quantize_row_q5_0_ref:
// d = (signed max-abs)/-16, q = min(31, trunc(x/d + 16.5)).
func QuantizeRowQ5_0(src []float32, dst []byte) {
	nb := len(src) / 32
	dst = dst[:nb*blockQ5_0]
	for i := 0; i < nb; i++ {
		x := src[i*32 : i*32+32]
		b := dst[i*blockQ5_0 : (i+1)*blockQ5_0]
		var amax, max float32
		for _, v := range x {
			if a := abs32(v); amax < a {
				amax, max = a, v
			}
		}
		d := max / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putFP16(b, d)
		var qh uint32
		for j := 0; j < 16; j++ {
			x0 := uint8(min(31, cTruncInt8(float32(x[j]*id)+16.5)))
			x1 := uint8(min(31, cTruncInt8(float32(x[j+16]*id)+16.5)))
			b[6+j] = x0&0x0f | (x1&0x0f)<<4
			qh |= uint32(x0&0x10) >> 4 << j
			qh |= uint32(x1&0x10) >> 4 << (j + 16)
		}
		binary.LittleEndian.PutUint32(b[2:], qh)
	}
}

// DequantizeRowQ5_1 dequantizes len(dst) elements (a multiple of 32) from
// src (len(dst)/32*24 bytes), as ggml's dequantize_row_q5_1.
func DequantizeRowQ5_1(src []byte, dst []float32) {
	nb := len(dst) / 32
	src = src[:nb*blockQ5_1]
	for i := 0; i < nb; i++ {
		b := src[i*blockQ5_1 : (i+1)*blockQ5_1]
		d, m := fp16At(b), fp16At(b[2:])
		qh := binary.LittleEndian.Uint32(b[4:])
		y := dst[i*32 : i*32+32]
		for j := 0; j < 16; j++ {
			h0 := (qh >> j << 4) & 0x10
			h1 := (qh >> (j + 12)) & 0x10
			y[j] = float32(float32(uint32(b[8+j]&0x0f)|h0)*d) + m
			y[j+16] = float32(float32(uint32(b[8+j]>>4)|h1)*d) + m
		}
	}
}

// QuantizeRowQ5_1 quantizes src (a multiple of 32 elements) into dst
// (len(src)/32*24 bytes), bit-exact with ggml's quantize_row_q5_1_ref:
// d = (max-min)/31, m = min, q = trunc((x-min)/d + 0.5).
func QuantizeRowQ5_1(src []float32, dst []byte) {
	nb := len(src) / 32
	dst = dst[:nb*blockQ5_1]
	for i := 0; i < nb; i++ {
		x := src[i*32 : i*32+32]
		b := dst[i*blockQ5_1 : (i+1)*blockQ5_1]
		mn, mx := float32(maxFloat32), float32(-maxFloat32)
		for _, v := range x {
			if v < mn {
				mn = v
			}
			if v > mx {
				mx = v
			}
		}
		d := (mx - mn) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putFP16(b, d)
		putFP16(b[2:], mn)
		var qh uint32
		for j := 0; j < 16; j++ {
			x0 := uint8(int32(float32((x[j]-mn)*id) + 0.5))
			x1 := uint8(int32(float32((x[j+16]-mn)*id) + 0.5))
			b[8+j] = x0&0x0f | (x1&0x0f)<<4
			qh |= uint32(x0&0x10) >> 4 << j
			qh |= uint32(x1&0x10) >> 4 << (j + 16)
		}
		binary.LittleEndian.PutUint32(b[4:], qh)
	}
}

// DotQ5_0Q8_0 returns the dot product of n elements (a multiple of 32) of a
// Q5_0 row w with a Q8_0 row x, as ggml_vec_dot_q5_0_q8_0_generic:
// sumf += (d_w*d_x)*isum per block.
func DotQ5_0Q8_0(n int, w, x []byte) float32 {
	nb := n / 32
	w = w[:nb*blockQ5_0]
	x = x[:nb*blockQ8_0]
	var sumf float32
	for i := 0; i < nb; i++ {
		wb := w[i*blockQ5_0 : (i+1)*blockQ5_0]
		xb := x[i*blockQ8_0 : (i+1)*blockQ8_0]
		qh := binary.LittleEndian.Uint32(wb[2:])
		var s0, s1 int32
		for j := 0; j < 16; j++ {
			h0 := (qh >> j << 4) & 0x10
			h1 := (qh >> (j + 12)) & 0x10
			s0 += (int32(uint32(wb[6+j]&0x0f)|h0) - 16) * int32(int8(xb[2+j]))
			s1 += (int32(uint32(wb[6+j]>>4)|h1) - 16) * int32(int8(xb[18+j]))
		}
		sumf += float32(float32(fp16At(wb)*fp16At(xb)) * float32(s0+s1))
	}
	return sumf
}

// DotQ5_1Q8_1 returns the dot product of n elements (a multiple of 32) of a
// Q5_1 row w with a Q8_1 row x, as ggml_vec_dot_q5_1_q8_1_generic.
func DotQ5_1Q8_1(n int, w, x []byte) float32 {
	nb := n / 32
	w = w[:nb*blockQ5_1]
	x = x[:nb*blockQ8_1]
	var sumf float32
	for i := 0; i < nb; i++ {
		wb := w[i*blockQ5_1 : (i+1)*blockQ5_1]
		xb := x[i*blockQ8_1 : (i+1)*blockQ8_1]
		qh := binary.LittleEndian.Uint32(wb[4:])
		var s0, s1 int32
		for j := 0; j < 16; j++ {
			h0 := (qh >> j << 4) & 0x10
			h1 := (qh >> (j + 12)) & 0x10
			s0 += int32(uint32(wb[8+j]&0x0f)|h0) * int32(int8(xb[4+j]))
			s1 += int32(uint32(wb[8+j]>>4)|h1) * int32(int8(xb[20+j]))
		}
		sumf += float32(float32(fp16At(wb)*fp16At(xb))*float32(s0+s1)) + float32(fp16At(wb[2:])*fp16At(xb[2:]))
	}
	return sumf
}
