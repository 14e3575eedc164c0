package quant

import (
	"encoding/binary"
	"math"
)

// FP16ToFloat32 converts an IEEE binary16 value (as its bit pattern) to
// float32 exactly: every fp16 value, including subnormals, ±0 and ±Inf, is
// representable in float32. A NaN keeps its sign and payload (shifted into
// the top mantissa bits) and is made quiet, as x86 F16C and ggml's software
// conversion both do.
func FP16ToFloat32(h uint16) float32 { return fp16Table[h] }

// fp16Table holds FP16ToFloat32 for every bit pattern (256 KiB), so the
// conversion in hot loops is one load.
var fp16Table = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = fp16ToFloat32Bits(uint16(i))
	}
	return &t
}()

// fp16ToFloat32Bits is the bit-level conversion that fills fp16Table.
func fp16ToFloat32Bits(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // Inf or NaN
		if mant == 0 {
			return math.Float32frombits(sign | 0x7f800000)
		}
		return math.Float32frombits(sign | 0x7fc00000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0: // ±0
		return math.Float32frombits(sign)
	default: // subnormal: mant * 2^-24, exactly representable
		return math.Float32frombits(sign | math.Float32bits(float32(mant)*0x1p-24))
	}
}

// Float32ToFP16 converts f to IEEE binary16 with round-to-nearest-even.
// Values beyond the fp16 range become ±Inf, values below half the smallest
// subnormal become ±0, and NaN becomes the quiet NaN 0x7e00 with f's sign
// (the pattern ggml's ggml_compute_fp32_to_fp16 produces).
func Float32ToFP16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // fp16 biased exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Result is an fp16 subnormal (or rounds up to the smallest normal).
		if e < -10 {
			return sign
		}
		m := mant | 0x800000 // value = m * 2^(exp-150); fp16 ulp here is 2^-24
		shift := uint(14 - e)
		q := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && q&1 == 1) {
			q++
		}
		return sign | uint16(q)
	}
	q := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && q&1 == 1) {
		q++ // a carry into the exponent is correct, and reaches Inf at the top
	}
	return sign | uint16(q)
}

// BF16ToFloat32 converts a bfloat16 bit pattern to float32 (exact: the bits
// become the top half of the float32).
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBF16 converts f to bfloat16 with round-to-nearest-even; a NaN is
// truncated and forced quiet (bit 0x40 set), exactly as ggml's
// ggml_compute_fp32_to_bf16.
func Float32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 0x40
	}
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}

// fp16At reads the little-endian fp16 at b[0:2] as float32.
func fp16At(b []byte) float32 { return FP16ToFloat32(binary.LittleEndian.Uint16(b)) }

// putFP16 stores fp16(f) little-endian at b[0:2].
func putFP16(b []byte, f float32) { binary.LittleEndian.PutUint16(b, Float32ToFP16(f)) }

// DequantizeRowF16 converts len(dst) little-endian fp16 values in src
// (2*len(dst) bytes) to float32.
func DequantizeRowF16(src []byte, dst []float32) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = FP16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

// DequantizeRowBF16 converts len(dst) little-endian bf16 values in src
// (2*len(dst) bytes) to float32.
func DequantizeRowBF16(src []byte, dst []float32) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = BF16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

// DequantizeRowF32 copies len(dst) little-endian float32 values from src
// (4*len(dst) bytes), bit for bit (NaN payloads included).
func DequantizeRowF32(src []byte, dst []float32) {
	src = src[:4*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

// QuantizeRowF16 stores src as little-endian fp16 (round-to-nearest-even)
// into dst (2*len(src) bytes).
func QuantizeRowF16(src []float32, dst []byte) {
	dst = dst[:2*len(src)]
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], Float32ToFP16(v))
	}
}

// QuantizeRowBF16 stores src as little-endian bf16 (round-to-nearest-even)
// into dst (2*len(src) bytes).
func QuantizeRowBF16(src []float32, dst []byte) {
	dst = dst[:2*len(src)]
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], Float32ToBF16(v))
	}
}

// QuantizeRowF32 stores src as little-endian float32 into dst (4*len(src)
// bytes).
func QuantizeRowF32(src []float32, dst []byte) {
	dst = dst[:4*len(src)]
	for i, v := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
}
