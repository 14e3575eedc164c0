// common.cuh: block layouts and helpers shared by every glmrun kernel.
//
// All kernels are extern "C" so the Go side can find them by name with
// cuModuleGetFunction. Every kernel takes its dimensions as parameters; the
// Go launchers in backend/cuda check sizes before launching.
#pragma once
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>

#define WARP 32

// ---- GGML block layouts (byte-exact, see quant-formats.md §2) ----
// Blocks of 22, 34 and 210 bytes are only 2-byte aligned in a tensor, so
// their 32-bit words are read with two 16-bit loads (get_int_b2).

#define QK8_0 32
typedef struct { __half d; int8_t qs[32]; } block_q8_0;             // 34 B
#define QK5_0 32
typedef struct { __half d; uint8_t qh[4]; uint8_t qs[16]; } block_q5_0;  // 22 B
#define QK_K 256
typedef struct { __half d; __half dmin; uint8_t scales[12]; uint8_t qs[128]; } block_q4_K;  // 144 B
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; __half d; } block_q6_K;  // 210 B
// Q8_1: activation blocks of 32. ds.x = d (scale), ds.y = sum of the
// unquantised inputs (the CUDA convention, used by Q5_0's offset).
#define QK8_1 32
typedef struct { __half2 ds; int8_t qs[32]; } block_q8_1;           // 36 B

static_assert(sizeof(block_q8_0) == 34, "q8_0 size");
static_assert(sizeof(block_q5_0) == 22, "q5_0 size");
static_assert(sizeof(block_q4_K) == 144, "q4_K size");
static_assert(sizeof(block_q6_K) == 210, "q6_K size");
static_assert(sizeof(block_q8_1) == 36, "q8_1 size");

static __device__ __forceinline__ int get_int_b2(const void *x, int i32) {
	const uint16_t *x16 = (const uint16_t *)x;
	return (int)x16[2 * i32] | ((int)x16[2 * i32 + 1] << 16);
}

static __device__ __forceinline__ int get_int_b4(const void *x, int i32) {
	return ((const int *)x)[i32];
}

// fp4_kv2x8: the eight FP4 E2M1 codes of one 32-bit word q (byte i: low
// nibble code a_i, high nibble code b_i) -> their int8 values kv2[code] =
// 2*E2M1(code) = {0,1,2,3,4,6,8,12, -0,-1,...,-12}: .x = kv2[a_0..a_3],
// .y = kv2[b_0..b_3] (MMFP4, used by the matvec and GEMM kernels).
// __byte_perm selects with the low 3 bits of each selector nibble: the
// positive and negative halves of the table are looked up with the code's
// magnitude bits, then its bit 3 picks one of the two (selector 4..7 = the
// second operand); a last pair of permutes splits low and high nibbles.
static __device__ __forceinline__ int2 fp4_kv2x8(int q) {
	const uint32_t pos0 = 0x03020100u, pos1 = 0x0C080604u;  // 0 1 2 3 | 4 6 8 12
	const uint32_t neg0 = 0xFDFEFF00u, neg1 = 0xF4F8FAFCu;  // -0 -1 -2 -3 | -4 -6 -8 -12
	const uint32_t pick = 0x32103210u | (((uint32_t)q & 0x88888888u) >> 1);
	uint32_t r[2];
#pragma unroll
	for (int h = 0; h < 2; h++) {
		const uint32_t sel = (uint32_t)q >> (16 * h);  // nibbles a_2h, b_2h, a_2h+1, b_2h+1
		const uint32_t p = __byte_perm(pos0, pos1, sel), n = __byte_perm(neg0, neg1, sel);
		r[h] = __byte_perm(p, n, pick >> (16 * h));
	}
	return make_int2((int)__byte_perm(r[0], r[1], 0x6420), (int)__byte_perm(r[0], r[1], 0x7531));
}

static __device__ __forceinline__ int dp4a(int a, int b, int c) {
	return __dp4a(a, b, c);
}

static __device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
	for (int o = WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
	return v;
}

static __device__ __forceinline__ float warp_max(float v) {
#pragma unroll
	for (int o = WARP / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, o));
	return v;
}

// block_sum reduces v over the whole block (blockDim.x a multiple of 32, at
// most 1024). scratch must hold 32 floats. Every thread gets the result.
static __device__ __forceinline__ float block_sum(float v, float *scratch) {
	const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
	v = warp_sum(v);
	__syncthreads();
	if (lane == 0) scratch[warp] = v;
	__syncthreads();
	const int nw = blockDim.x / WARP;
	v = lane < nw ? scratch[lane] : 0.0f;
	return warp_sum(v);
}
