package kernels

import (
	"fmt"

	"github.com/glmrun/glmrun/backend/quant"
)

// mmfp4Asm holds the assembly MMFP4 kernels per level (filled in on amd64).
var mmfp4Asm [LevelAVX512 + 1]func(ng int, q, s, x *byte) float32

// checkMMFP4 panics unless n is a multiple of 128 and the slices hold rows
// rows of codes (n/2 bytes), scales (n/64 bytes) and cols Q8_0 rows.
func checkMMFP4(name string, n, rows, cols int, quants, scales, x []byte) int {
	g := quant.MMFP4GroupSize
	if n < 0 || n%g != 0 {
		panic(fmt.Sprintf("kernels.%s: n=%d is not a multiple of %d", name, n, g))
	}
	if len(quants) < rows*n/2 || len(scales) < rows*n/64 || len(x) < cols*n/32*34 {
		panic(fmt.Sprintf("kernels.%s: n=%d needs %d code bytes, %d scale bytes × %d rows and %d activation bytes × %d rows, have %d, %d, %d",
			name, n, n/2, n/64, rows, n/32*34, cols, len(quants), len(scales), len(x)))
	}
	return n / g
}

func dotMMFP4(n, ng int, q, s, x []byte) float32 {
	if f := mmfp4Asm[level]; f != nil && ng > 0 {
		return f(ng, &q[0], &s[0], &x[0])
	}
	return quant.DotMMFP4Q8_0(n, q, s, x)
}

// DotMMFP4Q8_0 returns the dot product of one MMFP4_G128 weight row
// (quant-formats.md §4.2: codes n/2 bytes, fp16 group scales n/64 bytes, e.g.
// from quant.MMFP4Row) with a Q8_0 activation row x (n/32·34 bytes); n is a
// multiple of 128. Twin: quant.DotMMFP4Q8_0. Codes go through the same
// kv2+12 lookup as DotMXFP4Q8_0 (exact int32 sums per 32-block); per group
// the four d_x-scaled sums are accumulated, then scaled by scale/2.
func DotMMFP4Q8_0(n int, quants, scales, x []byte) float32 {
	ng := checkMMFP4("DotMMFP4Q8_0", n, 1, 1, quants, scales, x)
	return dotMMFP4(n, ng, quants, scales, x)
}

// DotMMFP4Q8_0Rows sets dst[r] for r < len(dst) to the dot product of
// weight row r of an MMFP4 slab with x: row r's codes start at r·n/2 in
// quants and its scales at r·n/64 in scales, which is the slab layout
// (quants region and scales region of quant.MMFP4Row's slab) as is.
func DotMMFP4Q8_0Rows(n int, quants, scales, x []byte, dst []float32) {
	ng := checkMMFP4("DotMMFP4Q8_0Rows", n, len(dst), 1, quants, scales, x)
	qb, sb := n/2, n/64
	for r := range dst {
		dst[r] = dotMMFP4(n, ng, quants[r*qb:(r+1)*qb], scales[r*sb:(r+1)*sb], x)
	}
}

// MatMMFP4Q8_0 sets dst[c*ldd+r] = DotMMFP4Q8_0(n, weight row r, activation
// row c) for r < rows, c < cols, with the row layout of DotMMFP4Q8_0Rows and
// cols consecutive Q8_0 rows in x; ldd >= rows.
func MatMMFP4Q8_0(n int, quants, scales []byte, rows int, x []byte, cols int, dst []float32, ldd int) {
	ng := checkMMFP4("MatMMFP4Q8_0", n, rows, cols, quants, scales, x)
	if rows < 0 || cols < 0 || (cols > 0 && rows > 0 && (ldd < rows || len(dst) < (cols-1)*ldd+rows)) {
		panic(fmt.Sprintf("kernels.MatMMFP4Q8_0: rows=%d cols=%d ldd=%d does not fit len(dst)=%d", rows, cols, ldd, len(dst)))
	}
	qb, sb, xb := n/2, n/64, n/32*34
	for c := 0; c < cols; c++ {
		xc := x[c*xb : (c+1)*xb]
		for r := 0; r < rows; r++ {
			dst[c*ldd+r] = dotMMFP4(n, ng, quants[r*qb:(r+1)*qb], scales[r*sb:(r+1)*sb], xc)
		}
	}
}
