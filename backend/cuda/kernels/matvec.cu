// matvec.cu: matrix-vector products for decode.
//
// Quantised weights (Q4_K, Q5_0, Q6_K, Q8_0, MMFP4) take Q8_1 activations made by
// quantize_q8_1 and use dp4a, as llama.cpp's mmvq does (quant-formats.md
// §3.2). Float weights (BF16, F16, F32) take f32 activations.
//
// Every matvec kernel computes, for slot s = blockIdx.y and row r = blockIdx.x:
//   e = ids ? ids[s] : 0                      (expert id, read on the device)
//   y[s*y_stride + r] = dot(W[e][r][:], x[(s/x_div)*x_stride + :])
// (x_div > 1 lets consecutive slots share an activation row: the k routed
// experts of one token in a prefill batch).
// W is [n_experts][rows][cols] in GGML row layout (blocks along cols), expert
// e starting at W + e*w_expert_stride bytes. x_stride 0 shares one
// activation row between all slots (expert gate/up); an id outside
// [0, n_experts) writes NaN to that slot's rows instead of reading out of
// bounds. Block: MV_THREADS threads; grid: (rows, n_slots), or for the _wr
// (warp-per-row) variants (ceil(rows / 4), n_slots).
#include "common.cuh"

#define MV_THREADS 128

// ---- Q8_1 activation quantisation ----
// x: rows of cols f32 (row r at x + r*x_stride); y: rows of cols/32 blocks.
// Block: 256 threads (8 warps, one Q8_1 block each); grid: (ceil(cols/256), rows).
extern "C" __global__ void __launch_bounds__(256)
quantize_q8_1(const float *__restrict__ x, long long x_stride, block_q8_1 *__restrict__ y, int cols) {
	const int row = blockIdx.y;
	const int nb = cols / QK8_1;
	const int ib = blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
	if (ib >= nb) return;  // uniform per warp
	const int lane = threadIdx.x % WARP;
	const float xi = x[(size_t)row * x_stride + (size_t)ib * QK8_1 + lane];
	const float amax = warp_max(fabsf(xi));
	const float sum = warp_sum(xi);
	const float d = amax / 127.0f;
	const int q = amax == 0.0f ? 0 : (int)roundf(xi / d);
	block_q8_1 *b = y + (size_t)row * nb + ib;
	b->qs[lane] = (int8_t)q;
	if (lane == 0) b->ds = make_half2(__float2half_rn(d), __float2half_rn(sum));
}

// ---- per-type dot products of one thread's share of one weight block ----

// Q4_K: 16 threads per super-block, iqs = 0,2,..,30 (two 32-bit words each).
static __device__ __forceinline__ float vd_q4_K(const block_q4_K *__restrict__ b, const block_q8_1 *__restrict__ bq8, int iqs) {
	const int bq8_offset = 2 * ((iqs / 2) / 4);  // first sub-block (of 32) this thread covers
	const int *q4 = (const int *)(b->qs + 16 * bq8_offset + 4 * ((iqs / 2) % 4));
	const int v0 = q4[0], v1 = q4[4];
	const uint16_t *scales = (const uint16_t *)b->scales;
	const int j = bq8_offset / 2;
	uint16_t sc16, m16;
	if (j < 2) {
		sc16 = scales[j] & 0x3f3f;
		m16 = scales[j + 2] & 0x3f3f;
	} else {
		sc16 = ((scales[j + 2] >> 0) & 0x0f0f) | ((scales[j - 2] & 0xc0c0) >> 2);
		m16 = ((scales[j + 2] >> 4) & 0x0f0f) | ((scales[j] & 0xc0c0) >> 2);
	}
	float sumd = 0.0f, summ = 0.0f;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		const block_q8_1 *q8b = bq8 + bq8_offset + i;
		const float d8 = __low2float(q8b->ds);
		const int *q8 = (const int *)q8b->qs + ((iqs / 2) % 4);
		const int u0 = q8[0], u1 = q8[4];
		const int v0i = (v0 >> (4 * i)) & 0x0F0F0F0F;
		const int v1i = (v1 >> (4 * i)) & 0x0F0F0F0F;
		const int dot1 = dp4a(v1i, u1, dp4a(v0i, u0, 0));
		const int dot2 = dp4a(0x01010101, u1, dp4a(0x01010101, u0, 0));
		const int sc = (sc16 >> (8 * i)) & 0xff, m = (m16 >> (8 * i)) & 0xff;
		sumd += d8 * (float)(dot1 * sc);
		summ += d8 * (float)(dot2 * m);
	}
	return __half2float(b->d) * sumd - __half2float(b->dmin) * summ;
}

// Q6_K: 32 threads per super-block, iqs = 0..31 (one word of ql each).
static __device__ __forceinline__ float vd_q6_K(const block_q6_K *__restrict__ b, const block_q8_1 *__restrict__ bq8, int iqs) {
	const int bq8_offset = 4 * (iqs / 16) + (iqs % 16) / 8;
	const int scale_offset = 8 * (iqs / 16) + (iqs % 16) / 4;
	const int vh_shift = 2 * ((iqs % 16) / 8);
	const int vl = get_int_b2(b->ql, iqs);
	const int vh = get_int_b2(b->qh, 8 * (iqs / 16) + iqs % 8) >> vh_shift;
	const int8_t *scales = b->scales + scale_offset;
	float sumf = 0.0f;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		const block_q8_1 *q8b = bq8 + bq8_offset + 2 * i;
		const int u = get_int_b4(q8b->qs, iqs % 8);
		const float d8 = __low2float(q8b->ds);
		const int sc = scales[4 * i];
		const int vil = (vl >> (4 * i)) & 0x0F0F0F0F;
		const int vih = ((vh >> (4 * i)) << 4) & 0x30303030;
		const int vi = __vsubss4(vil | vih, 0x20202020);
		sumf += d8 * (float)(dp4a(vi, u, 0) * sc);
	}
	return __half2float(b->d) * sumf;
}

// Q5_0: 2 threads per block, iqs = 0 or 2 (two words of qs each).
static __device__ __forceinline__ float vd_q5_0(const block_q5_0 *__restrict__ b, const block_q8_1 *__restrict__ bq8, int iqs) {
	const int qh = get_int_b2(b->qh, 0);
	int sumi = 0;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		const int vl = get_int_b2(b->qs, iqs + i);
		const int vh = qh >> (4 * (iqs + i));
		const int u0 = get_int_b4(bq8->qs, iqs + i);
		const int u1 = get_int_b4(bq8->qs, iqs + i + 4);
		int vi0 = (vl >> 0) & 0x0F0F0F0F;
		vi0 |= (vh << 4) & 0x00000010;
		vi0 |= (vh << 11) & 0x00001000;
		vi0 |= (vh << 18) & 0x00100000;
		vi0 |= (vh << 25) & 0x10000000;
		sumi = dp4a(vi0, u0, sumi);
		int vi1 = (vl >> 4) & 0x0F0F0F0F;
		vi1 |= (vh >> 12) & 0x00000010;
		vi1 |= (vh >> 5) & 0x00001000;
		vi1 |= (vh << 2) & 0x00100000;
		vi1 |= (vh << 9) & 0x10000000;
		sumi = dp4a(vi1, u1, sumi);
	}
	const float2 ds8 = __half22float2(bq8->ds);
	// Each of the 2 threads subtracts half of the block's 16*sum(x) offset.
	return __half2float(b->d) * ((float)sumi * ds8.x - 8.0f * ds8.y);
}

// Q8_0: 4 threads per block, iqs = 0,2,4,6.
static __device__ __forceinline__ float vd_q8_0(const block_q8_0 *__restrict__ b, const block_q8_1 *__restrict__ bq8, int iqs) {
	int sumi = 0;
#pragma unroll
	for (int i = 0; i < 2; i++) sumi = dp4a(get_int_b2(b->qs, iqs + i), get_int_b4(bq8->qs, iqs + i), sumi);
	return __half2float(b->d) * __low2float(bq8->ds) * (float)sumi;
}

static __device__ __forceinline__ void mv_store(float sum, float *y, int row) {
	__shared__ float part[MV_THREADS / WARP];
	sum = warp_sum(sum);
	if (threadIdx.x % WARP == 0) part[threadIdx.x / WARP] = sum;
	__syncthreads();
	if (threadIdx.x == 0) {
		float s = 0.0f;
#pragma unroll
		for (int w = 0; w < MV_THREADS / WARP; w++) s += part[w];
		y[row] = s;
	}
}

// WR (warp rows): false -> the whole block computes one row (long rows);
// true -> each warp computes its own row, MV_THREADS/WARP rows per block
// (short rows, e.g. Q5_0 with 192 columns, where a block per row would leave
// most threads idle). Grid x: rows, or ceil(rows / (MV_THREADS/WARP)) for WR.
template <typename BT, int QK, int QI, int VDR, float (*VD)(const BT *, const block_q8_1 *, int), bool WR>
static __device__ __forceinline__ void mmvq(const char *__restrict__ W, long long w_expert_stride, const int *__restrict__ ids,
                                            int n_experts, const block_q8_1 *__restrict__ xq, long long x_stride,
                                            float *__restrict__ y, long long y_stride, int rows, int cols, int x_div) {
	constexpr int NT = WR ? WARP : MV_THREADS;  // threads per row
	const int row = WR ? blockIdx.x * (MV_THREADS / WARP) + threadIdx.x / WARP : blockIdx.x;
	const int tid = WR ? threadIdx.x % WARP : threadIdx.x;
	const int slot = blockIdx.y;
	if (WR && row >= rows) return;  // whole warp
	const int nb = cols / QK;
	float *ys = y + (size_t)slot * y_stride;
	const int e = ids ? ids[slot] : 0;
	if (e < 0 || e >= n_experts) {
		if (tid == 0) ys[row] = __int_as_float(0x7fc00000);
		return;
	}
	const BT *wrow = (const BT *)(W + (size_t)e * w_expert_stride + (size_t)row * nb * sizeof(BT));
	const block_q8_1 *xr = xq + (size_t)(slot / x_div) * x_stride;
	constexpr int TPB = QI / VDR;  // threads per weight block
	constexpr int BPI = NT / TPB;  // weight blocks per iteration
	const int iqs = VDR * (tid % TPB);
	float sum = 0.0f;
	for (int kbx = tid / TPB; kbx < nb; kbx += BPI) sum += VD(wrow + kbx, xr + kbx * (QK / QK8_1), iqs);
	if (WR) {
		sum = warp_sum(sum);
		if (tid == 0) ys[row] = sum;
	} else {
		mv_store(sum, ys, row);
	}
}

#define MMVQ_KERNEL(name, BT, QK, QI, VDR, VD, WR)                                                                    \
	extern "C" __global__ void __launch_bounds__(MV_THREADS)                                                       \
	name(const char *__restrict__ W, long long w_expert_stride, const int *__restrict__ ids, int n_experts,          \
	     const block_q8_1 *__restrict__ xq, long long x_stride, float *__restrict__ y, long long y_stride, int rows, \
	     int cols, int x_div) {                                                                                     \
		mmvq<BT, QK, QI, VDR, VD, WR>(W, w_expert_stride, ids, n_experts, xq, x_stride, y, y_stride, rows, cols,   \
		                              x_div);                                                                      \
	}

MMVQ_KERNEL(matvec_q4_K, block_q4_K, QK_K, 32, 2, vd_q4_K, false)
MMVQ_KERNEL(matvec_q6_K, block_q6_K, QK_K, 32, 1, vd_q6_K, false)
MMVQ_KERNEL(matvec_q5_0, block_q5_0, QK5_0, 4, 2, vd_q5_0, false)
MMVQ_KERNEL(matvec_q8_0, block_q8_0, QK8_0, 8, 2, vd_q8_0, false)
MMVQ_KERNEL(matvec_q4_K_wr, block_q4_K, QK_K, 32, 2, vd_q4_K, true)
MMVQ_KERNEL(matvec_q6_K_wr, block_q6_K, QK_K, 32, 1, vd_q6_K, true)
MMVQ_KERNEL(matvec_q5_0_wr, block_q5_0, QK5_0, 4, 2, vd_q5_0, true)
MMVQ_KERNEL(matvec_q8_0_wr, block_q8_0, QK8_0, 8, 2, vd_q8_0, true)

// ---- MMFP4 weights (FP4 E2M1 codes, one fp16 scale per 128), Q8_1 activations ----
// A 2-D slab of rows x cols is codes[rows][cols/2] then scales[rows][cols/128]
// (fp16); an expert bank is consecutive slabs (w_expert_stride bytes apart).
// Code byte 16s+j of group g holds element 128g+32s+j (low nibble) and
// 128g+32s+16+j (high nibble): sub-block s of a group pairs with exactly one
// Q8_1 block, its low nibbles with qs[0..15] and high nibbles with qs[16..31].
// Codes decode to kv2 = {0,1,2,3,4,6,8,12, -0,-1,-2,-3,-4,-6,-8,-12} =
// 2*E2M1, so a group's dot is scale/2 * sum_s d8_s * dp4a(kv2, q8).

// Dot of one 32-element sub-block (16 code bytes) with its Q8_1 block,
// without the scales: sum over 32 of kv2[code] * q8.
static __device__ __forceinline__ int fp4_dot32(const uint4 c, const int *__restrict__ u) {
	const int v[4] = {(int)c.x, (int)c.y, (int)c.z, (int)c.w};
	int s = 0;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		const int2 w = fp4_kv2x8(v[i]);
		s = dp4a(w.x, u[i], s);
		s = dp4a(w.y, u[4 + i], s);
	}
	return s;
}

// Same slot/row/expert contract as mmvq. Needs W and w_expert_stride
// 16-byte aligned (checked by the Go launcher) and cols % 128 == 0. Each
// thread takes sub-blocks u = tid, tid+NT, ... (16 code bytes, one uint4).
template <bool WR>
static __device__ __forceinline__ void mv_fp4(const char *__restrict__ W, long long w_expert_stride, const int *__restrict__ ids,
                                              int n_experts, const block_q8_1 *__restrict__ xq, long long x_stride,
                                              float *__restrict__ y, long long y_stride, int rows, int cols, int x_div) {
	constexpr int NT = WR ? WARP : MV_THREADS;
	const int row = WR ? blockIdx.x * (MV_THREADS / WARP) + threadIdx.x / WARP : blockIdx.x;
	const int tid = WR ? threadIdx.x % WARP : threadIdx.x;
	const int slot = blockIdx.y;
	if (WR && row >= rows) return;  // whole warp
	float *ys = y + (size_t)slot * y_stride;
	const int e = ids ? ids[slot] : 0;
	if (e < 0 || e >= n_experts) {
		if (tid == 0) ys[row] = __int_as_float(0x7fc00000);
		return;
	}
	const char *slab = W + (size_t)e * w_expert_stride;
	const uint4 *codes = (const uint4 *)(slab + (size_t)row * (cols / 2));
	const unsigned short *scales = (const unsigned short *)(slab + (size_t)rows * (cols / 2)) + (size_t)row * (cols / 128);
	const block_q8_1 *xr = xq + (size_t)(slot / x_div) * x_stride;
	const int nu = cols / 32;
	float sum = 0.0f;
	// Two sub-blocks per step with all their loads issued first (decode is
	// latency-bound: more bytes in flight per thread).
	int u = tid;
	for (; u + NT < nu; u += 2 * NT) {
		const uint4 c0 = codes[u], c1 = codes[u + NT];
		int q0[8], q1[8];
#pragma unroll
		for (int i = 0; i < 8; i++) {
			q0[i] = get_int_b4(xr[u].qs, i);
			q1[i] = get_int_b4(xr[u + NT].qs, i);
		}
		const float s0 = __half2float(__ushort_as_half(scales[u / 4])) * __low2float(xr[u].ds);
		const float s1 = __half2float(__ushort_as_half(scales[(u + NT) / 4])) * __low2float(xr[u + NT].ds);
		sum += s0 * (float)fp4_dot32(c0, q0) + s1 * (float)fp4_dot32(c1, q1);
	}
	if (u < nu) {
		const float s0 = __half2float(__ushort_as_half(scales[u / 4])) * __low2float(xr[u].ds);
		sum += s0 * (float)fp4_dot32(codes[u], (const int *)xr[u].qs);
	}
	sum *= 0.5f;  // kv2 is twice the E2M1 value
	if (WR) {
		sum = warp_sum(sum);
		if (tid == 0) ys[row] = sum;
	} else {
		mv_store(sum, ys, row);
	}
}

#define MVFP4_KERNEL(name, WR)                                                                                       \
	extern "C" __global__ void __launch_bounds__(MV_THREADS)                                                       \
	name(const char *__restrict__ W, long long w_expert_stride, const int *__restrict__ ids, int n_experts,          \
	     const block_q8_1 *__restrict__ xq, long long x_stride, float *__restrict__ y, long long y_stride, int rows, \
	     int cols, int x_div) {                                                                                     \
		mv_fp4<WR>(W, w_expert_stride, ids, n_experts, xq, x_stride, y, y_stride, rows, cols, x_div);               \
	}

MVFP4_KERNEL(matvec_mmfp4, false)
MVFP4_KERNEL(matvec_mmfp4_wr, true)

// ---- float weights, f32 activations ----

static __device__ __forceinline__ float bf16_to_f32(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }

struct WF32 {
	typedef float T;
	static constexpr int VEC = 4;  // elements per 16-byte load
	static __device__ __forceinline__ float at(const float *w, int i) { return w[i]; }
	static __device__ __forceinline__ float dotv(const float *w, const float *x) {
		const float4 a = *(const float4 *)w, b = *(const float4 *)x;
		return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
	}
};
struct WF16 {
	typedef __half T;
	static constexpr int VEC = 8;
	static __device__ __forceinline__ float at(const __half *w, int i) { return __half2float(w[i]); }
	static __device__ __forceinline__ float dotv(const __half *w, const float *x) {
		const uint4 u = *(const uint4 *)w;
		const float4 x0 = *(const float4 *)x, x1 = *(const float4 *)(x + 4);
		const float2 a = __half22float2(*(const __half2 *)&u.x), b = __half22float2(*(const __half2 *)&u.y);
		const float2 c = __half22float2(*(const __half2 *)&u.z), d = __half22float2(*(const __half2 *)&u.w);
		return a.x * x0.x + a.y * x0.y + b.x * x0.z + b.y * x0.w + c.x * x1.x + c.y * x1.y + d.x * x1.z + d.y * x1.w;
	}
};
struct WBF16 {
	typedef uint16_t T;
	static constexpr int VEC = 8;
	static __device__ __forceinline__ float at(const uint16_t *w, int i) { return bf16_to_f32(w[i]); }
	static __device__ __forceinline__ float dotv(const uint16_t *w, const float *x) {
		const uint4 u = *(const uint4 *)w;
		const float4 x0 = *(const float4 *)x, x1 = *(const float4 *)(x + 4);
		const uint32_t v[4] = {u.x, u.y, u.z, u.w};
		float s = 0.0f;
		const float xs[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
#pragma unroll
		for (int k = 0; k < 4; k++) {
			s += __uint_as_float(v[k] << 16) * xs[2 * k];
			s += __uint_as_float(v[k] & 0xffff0000u) * xs[2 * k + 1];
		}
		return s;
	}
};

template <typename WT>
static __device__ __forceinline__ void mvf(const char *__restrict__ W, long long w_expert_stride, const int *__restrict__ ids,
                                           int n_experts, const float *__restrict__ x, long long x_stride,
                                           float *__restrict__ y, long long y_stride, int rows, int cols, int x_div) {
	typedef typename WT::T T;
	const int row = blockIdx.x, slot = blockIdx.y;
	float *ys = y + (size_t)slot * y_stride;
	const int e = ids ? ids[slot] : 0;
	if (e < 0 || e >= n_experts) {
		if (threadIdx.x == 0) ys[row] = __int_as_float(0x7fc00000);
		return;
	}
	const T *w = (const T *)(W + (size_t)e * w_expert_stride) + (size_t)row * cols;
	const float *xr = x + (size_t)(slot / x_div) * x_stride;
	float sum = 0.0f;
	const bool vec = (cols % WT::VEC) == 0 && ((uintptr_t)w % 16) == 0 && ((uintptr_t)xr % 16) == 0;
	if (vec) {
		for (int c = threadIdx.x * WT::VEC; c < cols; c += MV_THREADS * WT::VEC) sum += WT::dotv(w + c, xr + c);
	} else {
		for (int c = threadIdx.x; c < cols; c += MV_THREADS) sum += WT::at(w, c) * xr[c];
	}
	mv_store(sum, ys, row);
}

#define MVF_KERNEL(name, WT)                                                                                         \
	extern "C" __global__ void __launch_bounds__(MV_THREADS)                                                       \
	name(const char *__restrict__ W, long long w_expert_stride, const int *__restrict__ ids, int n_experts,          \
	     const float *__restrict__ x, long long x_stride, float *__restrict__ y, long long y_stride, int rows,       \
	     int cols, int x_div) {                                                                                     \
		mvf<WT>(W, w_expert_stride, ids, n_experts, x, x_stride, y, y_stride, rows, cols, x_div);                   \
	}

MVF_KERNEL(matvec_f32, WF32)
MVF_KERNEL(matvec_f16, WF16)
MVF_KERNEL(matvec_bf16, WBF16)
