package quantize

import (
	"encoding/binary"
	"math"

	"github.com/glmrun/glmrun/backend/quant"
)

// MMFP4 quantizer with a per-group scale search (spec quant-formats.md §4.3,
// "from BF16/F16/F32"). quant.QuantizeRowMMFP4 uses scale = fp16(amax/6)
// (round to nearest, no clipping); here each 128-group tries the scales
// fp16(amax/6·(1 + 0.02k)) for k = 0, -1, 1, -2, 2, ..., -5, 5 (so k = 0,
// exactly quant's choice, wins ties) and keeps the one whose codes minimise
// the squared error Σ(x - E2M1[code]·scale)². Codes are chosen against the
// fp16-rounded scale by the same rule as quant (nearest value, ties to the
// smaller magnitude, +0 over -0), so the stored codes and scale are exactly
// the ones the error was measured with, and the error is never above
// quant.QuantizeRowMMFP4's. Slightly smaller scales clip the group maximum
// but place the other 127 values on a finer grid, which usually wins.

// mmfp4Search is the order in which scale factors are tried.
var mmfp4Search = func() []float32 {
	f := []float32{1}
	for k := 1; k <= 5; k++ {
		f = append(f, float32(1-0.02*float64(k)), float32(1+0.02*float64(k)))
	}
	return f
}()

// fp4Mag is the doubled E2M1 magnitude table (codes 0..7).
var fp4Mag = [8]float32{0, 1, 2, 3, 4, 6, 8, 12}

// fp4Mid holds the midpoints between consecutive fp4Mag entries.
var fp4Mid = [7]float32{0.5, 1.5, 2.5, 3.5, 5, 7, 10}

// fp4Code returns the code of x against half-scale d (value = kv2[code]·d)
// and its squared error: the nearest magnitude (ties to the smaller), the
// sign of x unless the magnitude is 0.
func fp4Code(x, d float32) (byte, float32) {
	a := x
	if a < 0 {
		a = -a
	}
	i := 0
	if d > 0 {
		t := a / d
		for i < 7 && t > fp4Mid[i] {
			i++
		}
	}
	best := i
	bestErr := absf(fp4Mag[i]*d - a)
	if i > 0 {
		if e := absf(fp4Mag[i-1]*d - a); e <= bestErr {
			best, bestErr = i-1, e
		}
	}
	if i < 7 {
		if e := absf(fp4Mag[i+1]*d - a); e < bestErr {
			best, bestErr = i+1, e
		}
	}
	c := byte(best)
	if x < 0 && best > 0 {
		c |= 8
	}
	return c, bestErr * bestErr
}

func absf(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// QuantizeRowMMFP4Search quantizes one row src (a multiple of 128 elements)
// into its codes (len(src)/2 bytes, MMFP4 nibble order) and fp16 scales
// (len(src)/64 bytes) with the scale search described above.
func QuantizeRowMMFP4Search(src []float32, quants, scales []byte) {
	ng := len(src) / quant.MMFP4GroupSize
	var codes, bestCodes [128]byte
	for g := 0; g < ng; g++ {
		x := src[128*g : 128*g+128]
		var amax float32
		for _, v := range x {
			amax = max(amax, absf(v))
		}
		bestErr := float32(math.Inf(1))
		var bestScale uint16
		for _, f := range mmfp4Search {
			h := quant.Float32ToFP16(amax / 6 * f)
			if h&0x7fff >= 0x7c00 {
				h = 0x7bff // 65504
			}
			d := quant.FP16ToFloat32(h) * 0.5
			var e float32
			for j, v := range x {
				c, ej := fp4Code(v, d)
				codes[j] = c
				e += ej
			}
			if e < bestErr {
				bestErr, bestScale, bestCodes = e, h, codes
			}
		}
		binary.LittleEndian.PutUint16(scales[2*g:], bestScale)
		q := quants[64*g : 64*g+64]
		for s := 0; s < 4; s++ {
			for j := 0; j < 16; j++ {
				q[16*s+j] = bestCodes[32*s+j] | bestCodes[32*s+16+j]<<4
			}
		}
	}
}
