// Package quant converts between float32 and the ggml tensor encodings a
// GLM-4.7-Flash GGUF uses, and holds the pure-Go reference ("twin") dot
// products that every SIMD, CUDA and Metal kernel of this project is tested
// against.
//
// Generic entry points: Dequantize, Quantize, VecDot, VecDotType,
// CanDequantize, CanQuantize, CanVecDot. Hot loops call the allocation-free
// per-type functions directly (DequantizeRowQ4K, QuantizeRowQ8K,
// DotQ4KQ8K, ...); those assume correct sizes: n a multiple of the block
// size and slices at least that long (a short slice panics; the generic
// functions check sizes and return errors instead).
//
// # Block layouts (all multi-byte fields little-endian; quantization runs
// along ne0 and blocks never straddle rows)
//
//	type   elems bytes layout
//	F32        1     4 float32
//	F16        1     2 IEEE binary16
//	BF16       1     2 top half of a float32
//	Q4_0      32    18 fp16 d | qs[16]            x = d*(q-8)
//	Q4_1      32    20 fp16 d | fp16 m | qs[16]   x = d*q + m
//	Q5_0      32    22 fp16 d | qh u32 | qs[16]   x = d*(q-16), bit4 of elem j = qh bit j
//	Q5_1      32    24 fp16 d | fp16 m | qh | qs  x = d*q + m
//	Q8_0      32    34 fp16 d | int8 qs[32]       x = d*q
//	Q8_1      32    36 fp16 d | fp16 s | qs[32]   x = d*q, s = d*Σq
//	Q4_K     256   144 fp16 d | fp16 dmin | scales[12] | qs[128]
//	Q5_K     256   176 fp16 d | fp16 dmin | scales[12] | qh[32] | qs[128]
//	Q6_K     256   210 ql[128] | qh[64] | int8 scales[16] | fp16 d
//	Q8_K     256   292 float32 d | int8 qs[256] | int16 bsums[16]
//	MXFP4     32    17 E8M0 e | qs[16]            x = kv2[q]*2^(e-128)
//	MMFP4    128   66* per slab: quants[N][K/2] then fp16 scales[N][K/128]
//
// In the 32-element legacy blocks and MXFP4, byte j holds element j in its
// low nibble and element j+16 in its high nibble. Q4_K/Q5_K: 8 sub-blocks of
// 32 with 6-bit scale sc_j and 6-bit min m_j (x = d*sc_j*q - dmin*m_j);
// 32-byte chunk c of qs holds sub-block 2c (low nibbles) and 2c+1 (high);
// Q5_K's fifth bit of sub-block j is bit j of qh[l]. Q6_K: 16 sub-blocks of
// 16 with int8 scales, x = d*scale*(q-32). MXFP4/MMFP4 codes are FP4 E2M1
// (±{0, .5, 1, 1.5, 2, 3, 4, 6}, code 8 = -0), stored as the doubled int
// table kv2. *MMFP4 is not a sequence of 66-byte blocks; see mmfp4.go.
//
// # Exactness
//
// Dequantizers are bit-exact with ggml's dequantize_row_* (tested against
// llama.cpp's dequantization of the glm-tiny Q4_K_M model). Quantizers for
// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q4_K, Q5_K, Q6_K, Q8_K and MXFP4 are
// float32 operation-for-operation mirrors of ggml's quantize_row_*_ref
// (tested byte-exact against llama-quantize's output for glm-tiny); Go's
// fused multiply-add is suppressed with explicit float32 conversions so the
// results do not depend on GOARCH. The Dot functions mirror
// ggml_vec_dot_*_generic (same integer sums, same float32 operation order),
// so they match llama.cpp's scalar path bit for bit and its SIMD paths to
// rounding. golden_test.go pins all of this against digests produced by
// llama.cpp's own C code (built without FMA contraction, as ggml-base is on
// x86-64). A build of ggml with FMA contraction (e.g. -march=native) gives
// different K-quant bytes and dot results in the last bits; the glm-tiny
// reference files match the non-contracted arithmetic implemented here.
//
// Known ggml behaviour mirrored on purpose: blocks of very small values
// (|x| ~ 1e-6) lose their fp16 super-scales to underflow, so Q8_0/Q4_0/Q5_0/
// K-quant round trips of such data are poor (error of the order of |x|).
package quant
