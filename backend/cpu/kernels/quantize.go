package kernels

import (
	"fmt"

	"github.com/glmrun/glmrun/backend/quant"
)

// QuantizeRowQ8K quantizes src (a multiple of 256 floats) into Q8_K blocks
// (len(src)/256·292 bytes of dst: f32 d, int8 qs[256], int16 bsums[16]), the
// activation format of DotQ4KQ8K and DotQ6KQ8K. Bit-exact with its twin
// quant.QuantizeRowQ8K (ggml's quantize_row_q8_K_ref: the first element of
// largest magnitude m, iscale = −127/m, q = min(127, round-half-even(iscale·x)),
// d = 1/iscale; an all-zero block is written as zeros). Inputs must be
// finite. It panics if len(src) is not a multiple of 256 or dst is short.
// The AVX2 code serves both SIMD levels.
func QuantizeRowQ8K(src []float32, dst []byte) {
	nb := checkQuantize("QuantizeRowQ8K", src, dst, 256, 292)
	if level >= LevelAVX2 && nb > 0 {
		quantizeQ8K(nb, src, dst)
		return
	}
	quant.QuantizeRowQ8K(src, dst)
}

// QuantizeRowQ8_0 quantizes src (a multiple of 32 floats) into Q8_0 blocks
// (len(src)/32·34 bytes of dst: fp16 d, int8 qs[32]), the activation format
// of DotQ5_0Q8_0 and DotQ8_0Q8_0. Bit-exact with its twin
// quant.QuantizeRowQ8_0 (d = amax/127, q = roundf(x·(1/d)) half away from
// zero, fp16(d) rounded to nearest even). Inputs must be finite. It panics if
// len(src) is not a multiple of 32 or dst is short.
func QuantizeRowQ8_0(src []float32, dst []byte) {
	nb := checkQuantize("QuantizeRowQ8_0", src, dst, 32, 34)
	if level >= LevelAVX2 && nb > 0 {
		quantizeQ8_0(nb, src, dst)
		return
	}
	quant.QuantizeRowQ8_0(src, dst)
}

func checkQuantize(name string, src []float32, dst []byte, block, bytes int) int {
	if len(src)%block != 0 {
		panic(fmt.Sprintf("kernels.%s: len(src)=%d is not a multiple of %d", name, len(src), block))
	}
	nb := len(src) / block
	if len(dst) < nb*bytes {
		panic(fmt.Sprintf("kernels.%s: len(dst)=%d < %d bytes for %d elements", name, len(dst), nb*bytes, len(src)))
	}
	return nb
}
