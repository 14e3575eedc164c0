package quant

// Q4_0: 32 elements in 18 bytes: fp16 d @0, qs[16] @2. Byte j holds element
// j in its low nibble and element j+16 in its high nibble; x = d*(q-8).
//
// Q4_1: 32 elements in 20 bytes: fp16 d @0, fp16 m @2, qs[16] @4 (nibble
// order as Q4_0); x = d*q + m.

const (
	blockQ4_0 = 18
	blockQ4_1 = 20
)

// DequantizeRowQ4_0 dequantizes len(dst) elements (a multiple of 32) from
// src (len(dst)/32*18 bytes). Same arithmetic as ggml's dequantize_row_q4_0.
func DequantizeRowQ4_0(src []byte, dst []float32) {
	nb := len(dst) / 32
	src = src[:nb*blockQ4_0]
	for i := 0; i < nb; i++ {
		b := src[i*blockQ4_0 : (i+1)*blockQ4_0]
		d := fp16At(b)
		y := dst[i*32 : i*32+32]
		for j := 0; j < 16; j++ {
			y[j] = float32(int(b[2+j]&0x0f)-8) * d
			y[j+16] = float32(int(b[2+j]>>4)-8) * d
		}
	}
}

// QuantizeRowQ4_0 quantizes src (a multiple of 32 elements) into dst
// (len(src)/32*18 bytes), bit-exact with ggml's quantize_row_q4_0_ref:
// d = (signed max-abs)/-8, q = min(15, trunc(x/d + 8.5)).
func QuantizeRowQ4_0(src []float32, dst []byte) {
	nb := len(src) / 32
	dst = dst[:nb*blockQ4_0]
	for i := 0; i < nb; i++ {
		x := src[i*32 : i*32+32]
		b := dst[i*blockQ4_0 : (i+1)*blockQ4_0]
		var amax, max float32
		for _, v := range x {
			if a := abs32(v); amax < a {
				amax, max = a, v
			}
		}
		d := max / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putFP16(b, d)
		for j := 0; j < 16; j++ {
			x0 := float32(x[j] * id)
			x1 := float32(x[j+16] * id)
			b[2+j] = uint8(min(15, cTruncInt8(x0+8.5))) | uint8(min(15, cTruncInt8(x1+8.5)))<<4
		}
	}
}

// DequantizeRowQ4_1 dequantizes len(dst) elements (a multiple of 32) from
// src (len(dst)/32*20 bytes), as ggml's dequantize_row_q4_1.
func DequantizeRowQ4_1(src []byte, dst []float32) {
	nb := len(dst) / 32
	src = src[:nb*blockQ4_1]
	for i := 0; i < nb; i++ {
		b := src[i*blockQ4_1 : (i+1)*blockQ4_1]
		d, m := fp16At(b), fp16At(b[2:])
		y := dst[i*32 : i*32+32]
		for j := 0; j < 16; j++ {
			y[j] = float32(float32(b[4+j]&0x0f)*d) + m
			y[j+16] = float32(float32(b[4+j]>>4)*d) + m
		}
	}
}

// QuantizeRowQ4_1 quantizes src (a multiple of 32 elements) into dst
// (len(src)/32*20 bytes), bit-exact with ggml's quantize_row_q4_1_ref:
// d = (max-min)/15, m = min, q = min(15, trunc((x-min)/d + 0.5)).
func QuantizeRowQ4_1(src []float32, dst []byte) {
	nb := len(src) / 32
	dst = dst[:nb*blockQ4_1]
	for i := 0; i < nb; i++ {
		x := src[i*32 : i*32+32]
		b := dst[i*blockQ4_1 : (i+1)*blockQ4_1]
		mn, mx := float32(maxFloat32), float32(-maxFloat32)
		for _, v := range x {
			if v < mn {
				mn = v
			}
			if v > mx {
				mx = v
			}
		}
		d := (mx - mn) / 15
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putFP16(b, d)
		putFP16(b[2:], mn)
		for j := 0; j < 16; j++ {
			x0 := float32((x[j] - mn) * id)
			x1 := float32((x[j+16] - mn) * id)
			b[4+j] = uint8(min(15, cTruncInt8(x0+0.5))) | uint8(min(15, cTruncInt8(x1+0.5)))<<4
		}
	}
}

// DotQ4_0Q8_0 returns the dot product of n elements (a multiple of 32) of a
// Q4_0 row w with a Q8_0 row x, as ggml_vec_dot_q4_0_q8_0_generic: an int
// sum per block, then sumf += float(isum)*d_w*d_x in block order.
func DotQ4_0Q8_0(n int, w, x []byte) float32 {
	nb := n / 32
	w = w[:nb*blockQ4_0]
	x = x[:nb*blockQ8_0]
	var sumf float32
	for i := 0; i < nb; i++ {
		wb := w[i*blockQ4_0 : (i+1)*blockQ4_0]
		xb := x[i*blockQ8_0 : (i+1)*blockQ8_0]
		var s0, s1 int32
		for j := 0; j < 16; j++ {
			s0 += int32(int(wb[2+j]&0x0f)-8) * int32(int8(xb[2+j]))
			s1 += int32(int(wb[2+j]>>4)-8) * int32(int8(xb[18+j]))
		}
		sumf += float32(float32(float32(s0+s1)*fp16At(wb)) * fp16At(xb))
	}
	return sumf
}

// DotQ4_1Q8_1 returns the dot product of n elements (a multiple of 32) of a
// Q4_1 row w with a Q8_1 row x, as ggml_vec_dot_q4_1_q8_1_generic:
// sumf += (d_w*d_x)*isum + m_w*s_x per block.
func DotQ4_1Q8_1(n int, w, x []byte) float32 {
	nb := n / 32
	w = w[:nb*blockQ4_1]
	x = x[:nb*blockQ8_1]
	var sumf float32
	for i := 0; i < nb; i++ {
		wb := w[i*blockQ4_1 : (i+1)*blockQ4_1]
		xb := x[i*blockQ8_1 : (i+1)*blockQ8_1]
		var s0, s1 int32
		for j := 0; j < 16; j++ {
			s0 += int32(wb[4+j]&0x0f) * int32(int8(xb[4+j]))
			s1 += int32(wb[4+j]>>4) * int32(int8(xb[20+j]))
		}
		sumf += float32(float32(fp16At(wb)*fp16At(xb))*float32(s0+s1)) + float32(fp16At(wb[2:])*fp16At(xb[2:]))
	}
	return sumf
}
