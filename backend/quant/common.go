package quant

import "math"

const maxFloat32 = math.MaxFloat32

// groupMaxEps is ggml's GROUP_MAX_EPS: a group whose largest magnitude is
// below it quantizes to all zeros in make_qx_quants / Q6_K.
const groupMaxEps = float32(1e-15)

func abs32(v float32) float32 {
	return math.Float32frombits(math.Float32bits(v) &^ 0x80000000)
}

// nearestInt is ggml's nearest_int: round half to even via the 1.5*2^23
// magic constant, valid for |v| <= 4194303.
func nearestInt(v float32) int {
	u := math.Float32bits(v + 12582912)
	return int(int32(u&0x007fffff) - 0x00400000)
}

// cTruncInt8 mirrors C's (int8_t)(v) for the small ranges the legacy
// quantizers produce: truncation toward zero, low 8 bits kept, sign-extended.
func cTruncInt8(v float32) int {
	return int(int8(int32(v)))
}

// sqrt32 is C's sqrtf: the float64 square root rounded to float32 is the
// correctly rounded float32 square root.
func sqrt32(v float32) float32 { return float32(math.Sqrt(float64(v))) }

// roundAway is C's roundf: round half away from zero.
func roundAway(v float32) float32 { return float32(math.Round(float64(v))) }
