package kernels

// Quantized weight-row · quantized activation-row dot products.
//
// Layout contract shared by every function here:
//   - n is the row length in elements, a multiple of the block size (256 for
//     the K-quants, 32 for Q5_0/Q8_0/MXFP4); the functions panic otherwise and when
//     a slice is shorter than the rows it must hold.
//   - A weight row is n/B consecutive blocks exactly as stored in the GGUF
//     tensor (quant-formats.md §2); rows of a matrix are consecutive, so a
//     matrix slice from gguf.File.TensorData can be passed as is.
//   - An activation row is n/B blocks of the weight type's vec-dot type
//     (quant.VecDotType): Q8_K (292 B / 256) from QuantizeRowQ8K for Q4_K,
//     Q5_K and Q6_K, Q8_0 (34 B / 32) from QuantizeRowQ8_0 for Q5_0, Q8_0 and MXFP4.
//   - No alignment is required.
//
// Accuracy: the integer block sums equal the twin's exactly for every input
// (including −128 activations and codes; no saturating instruction is on
// the path). The float part differs from the twin only in accumulation
// order: per block the fast path does one fused multiply-add of the block's
// int32 sum with d_w·d_x (the twin adds 8 lanes separately), so
// |fast−twin| <= (nb+16)·2⁻²³·S, where S is the sum of the magnitudes of the
// float terms (Σ|d_w·d_x·sc·q·a| plus, for Q4_K, Σ|dmin_w·d_x·m·a|).
//
// Naming: DotXxx is one row · one activation; DotXxxRows is many weight rows
// · one activation (decode); MatXxx is a rows×cols tile (prefill: weight rows
// are cache-blocked and each weight block is decoded once per group of 8
// (AVX-512 K-quants) or 4 activation columns; every element is bit-identical
// to the single-row result).

// DotQ4KQ8K returns the dot product of a Q4_K weight row w with a Q8_K
// activation row x, n elements. Twin: quant.DotQ4KQ8K. AVX2: maddubs +
// pmaddwd with the sub-block scales; AVX-512: 512-bit maddubs + vpdpwssd
// (AVX-512 VNNI) with a vpermw scale table.
func DotQ4KQ8K(n int, w, x []byte) float32 { return kQ4K.dot(n, w, x) }

// DotQ4KQ8KRows sets dst[r] = DotQ4KQ8K(n, row r of w, x) for r < len(dst);
// w holds len(dst) consecutive Q4_K rows (n/256·144 bytes each).
func DotQ4KQ8KRows(n int, w, x []byte, dst []float32) { kQ4K.rows(n, w, x, dst) }

// MatQ4KQ8K sets dst[c*ldd+r] = DotQ4KQ8K(n, weight row r, activation row c)
// for r < rows, c < cols: w holds rows consecutive Q4_K rows, x holds cols
// consecutive Q8_K rows (n/256·292 bytes each); ldd >= rows.
func MatQ4KQ8K(n int, w []byte, rows int, x []byte, cols int, dst []float32, ldd int) {
	kQ4K.tile(n, w, rows, x, cols, dst, ldd)
}

// DotQ5KQ8K returns the dot product of a Q5_K weight row w with a Q8_K
// activation row x, n elements (n/256·176 and n/256·292 bytes). Twin:
// quant.DotQ5KQ8K. As DotQ4KQ8K with the fifth code bit from qh OR-ed into
// the nibbles (codes 0..31).
func DotQ5KQ8K(n int, w, x []byte) float32 { return kQ5K.dot(n, w, x) }

// DotQ5KQ8KRows is DotQ4KQ8KRows for Q5_K weights (n/256·176 bytes a row).
func DotQ5KQ8KRows(n int, w, x []byte, dst []float32) { kQ5K.rows(n, w, x, dst) }

// MatQ5KQ8K is MatQ4KQ8K for Q5_K weights.
func MatQ5KQ8K(n int, w []byte, rows int, x []byte, cols int, dst []float32, ldd int) {
	kQ5K.tile(n, w, rows, x, cols, dst, ldd)
}

// DotQ6KQ8K returns the dot product of a Q6_K weight row w with a Q8_K
// activation row x, n elements. Twin: quant.DotQ6KQ8K. Codes enter the
// integer dot unsigned (0..63) and the −32 offset is removed exactly as
// 32·Σ scales[i]·bsums[i]. AVX2: maddubs + pmaddwd; AVX-512: 512-bit
// maddubs + vpdpwssd.
func DotQ6KQ8K(n int, w, x []byte) float32 { return kQ6K.dot(n, w, x) }

// DotQ6KQ8KRows is DotQ4KQ8KRows for Q6_K weights (n/256·210 bytes a row).
func DotQ6KQ8KRows(n int, w, x []byte, dst []float32) { kQ6K.rows(n, w, x, dst) }

// MatQ6KQ8K is MatQ4KQ8K for Q6_K weights.
func MatQ6KQ8K(n int, w []byte, rows int, x []byte, cols int, dst []float32, ldd int) {
	kQ6K.tile(n, w, rows, x, cols, dst, ldd)
}

// DotQ5_0Q8_0 returns the dot product of a Q5_0 weight row w with a Q8_0
// activation row x, n elements (n/32·22 and n/32·34 bytes). Twin:
// quant.DotQ5_0Q8_0. The 5-bit codes are used unsigned and 16·Σx is
// subtracted (exact). AVX2: maddubs; AVX-512: vpdpbusd (VNNI).
func DotQ5_0Q8_0(n int, w, x []byte) float32 { return kQ5_0.dot(n, w, x) }

// DotQ5_0Q8_0Rows is DotQ4KQ8KRows for Q5_0 weights and Q8_0 activations.
func DotQ5_0Q8_0Rows(n int, w, x []byte, dst []float32) { kQ5_0.rows(n, w, x, dst) }

// MatQ5_0Q8_0 is MatQ4KQ8K for Q5_0 weights and Q8_0 activations.
func MatQ5_0Q8_0(n int, w []byte, rows int, x []byte, cols int, dst []float32, ldd int) {
	kQ5_0.tile(n, w, rows, x, cols, dst, ldd)
}

// DotQ8_0Q8_0 returns the dot product of a Q8_0 weight row w with a Q8_0
// activation row x, n elements (n/32·34 bytes each). Twin:
// quant.DotQ8_0Q8_0. Exact for all int8 pairs (−128·−128 included). AVX2:
// int16 widening + pmaddwd; AVX-512: vpdpbusd on w⊕0x80 minus 128·Σx.
func DotQ8_0Q8_0(n int, w, x []byte) float32 { return kQ8_0.dot(n, w, x) }

// DotQ8_0Q8_0Rows is DotQ4KQ8KRows for Q8_0 weights and activations.
func DotQ8_0Q8_0Rows(n int, w, x []byte, dst []float32) { kQ8_0.rows(n, w, x, dst) }

// MatQ8_0Q8_0 is MatQ4KQ8K for Q8_0 weights and activations.
func MatQ8_0Q8_0(n int, w []byte, rows int, x []byte, cols int, dst []float32, ldd int) {
	kQ8_0.tile(n, w, rows, x, cols, dst, ldd)
}

// DotMXFP4Q8_0 returns the dot product of an MXFP4 weight row w (n/32·17
// bytes: E8M0 exponent, 16 bytes of E2M1 codes) with a Q8_0 activation row
// x, n elements. Twin: quant.DotMXFP4Q8_0. Codes go through a vpshufb
// lookup of kv2+12 (unsigned) and 12·Σx is subtracted: exact int32 block
// sums. AVX2: maddubs; AVX-512: vpdpbusd.
func DotMXFP4Q8_0(n int, w, x []byte) float32 { return kMXFP4.dot(n, w, x) }

// DotMXFP4Q8_0Rows is DotQ4KQ8KRows for MXFP4 weights and Q8_0 activations.
func DotMXFP4Q8_0Rows(n int, w, x []byte, dst []float32) { kMXFP4.rows(n, w, x, dst) }

// MatMXFP4Q8_0 is MatQ4KQ8K for MXFP4 weights and Q8_0 activations.
func MatMXFP4Q8_0(n int, w []byte, rows int, x []byte, cols int, dst []float32, ldd int) {
	kMXFP4.tile(n, w, rows, x, cols, dst, ldd)
}
