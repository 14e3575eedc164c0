// elementwise.cu: RMSNorm, interleaved RoPE, SwiGLU, add, weighted sum,
// latent-cache store and argmax. All f32 unless named otherwise.
#include "common.cuh"
#include <limits.h>

// add_rows: when res is not NULL, x[i] += res[i] for the row's cols values
// (stored back into x) before the norm reads it: the residual add of the
// previous block fused into the next norm. Returns the row's sum of squares
// over the block (block_sum's barrier makes the stored x visible to every
// thread of the block).
static __device__ __forceinline__ float add_rows_ss(float *xr, const float *__restrict__ rr, int cols, float *scratch) {
	float ss = 0.0f;
	if (rr) {
		for (int i = threadIdx.x; i < cols; i += blockDim.x) {
			const float v = xr[i] + rr[i];
			xr[i] = v;
			ss += v * v;
		}
	} else {
#pragma unroll 4
		for (int i = threadIdx.x; i < cols; i += blockDim.x) ss += xr[i] * xr[i];
	}
	return block_sum(ss, scratch);
}

// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w   (w may be NULL: no weight),
// after x[r] += res[r] when res is not NULL (then y must not alias x).
// Rows r = blockIdx.x at x + r*x_stride, res + r*res_stride and y +
// r*y_stride; in place (y == x, no res) is fine.
// Block: 256..1024 threads (a multiple of 32).
extern "C" __global__ void __launch_bounds__(1024)
rmsnorm_f32(float *x, long long x_stride, const float *__restrict__ w, float *y, long long y_stride, int cols, float eps,
            const float *__restrict__ res, long long res_stride) {
	__shared__ float scratch[32];
	float *xr = x + (size_t)blockIdx.x * x_stride;
	float *yr = y + (size_t)blockIdx.x * y_stride;
	const float ss = add_rows_ss(xr, res ? res + (size_t)blockIdx.x * res_stride : nullptr, cols, scratch);
	const float scale = rsqrtf(ss / (float)cols + eps);
#pragma unroll 4
	for (int i = threadIdx.x; i < cols; i += blockDim.x) yr[i] = w ? xr[i] * scale * w[i] : xr[i] * scale;
}

// rope_pair rotates pair i of n_dims rotary values at position ps:
// theta_i = ps * base^(-2i/n_dims), angle and sine/cosine in double precision
// (exact to f32 rounding at any position; llama.cpp uses f32 angles, which
// differ by up to ~1e-2 rad at position 1e5).
static __device__ __forceinline__ float2 rope_pair(float x0, float x1, double ps, int i, int n_dims, float freq_base) {
	const double theta = ps * pow((double)freq_base, -2.0 * (double)i / (double)n_dims);
	double s, c;
	sincos(theta, &s, &c);
	return make_float2((float)((double)x0 * c - (double)x1 * s), (float)((double)x0 * s + (double)x1 * c));
}

// Interleaved ("NORM") RoPE on n_dims values starting at column `offset` of
// every head: pairs (2i, 2i+1) rotated by rope_pair. Head h of token t at
// x + t*tok_stride + h*head_stride; the result goes to the same place, or,
// when dst is not NULL, to dst + t*dst_tok_stride + h*dst_head_stride
// (x unchanged). Positions are read from pos[t] on the device.
// Grid: (n_heads, n_tokens); block: 32..256 threads.
extern "C" __global__ void rope_norm_f32(float *x, long long tok_stride, long long head_stride, int offset, int n_dims,
                                         const int *__restrict__ pos, float freq_base, float *dst, long long dst_tok_stride,
                                         long long dst_head_stride) {
	const int h = blockIdx.x, t = blockIdx.y;
	const float *p = x + (size_t)t * tok_stride + (size_t)h * head_stride + offset;
	float *o = dst ? dst + (size_t)t * dst_tok_stride + (size_t)h * dst_head_stride : x + (size_t)t * tok_stride + (size_t)h * head_stride + offset;
	const double ps = (double)pos[t];
	for (int i = threadIdx.x; i < n_dims / 2; i += blockDim.x) {
		const float2 r = rope_pair(p[2 * i], p[2 * i + 1], ps, i, n_dims, freq_base);
		o[2 * i] = r.x;
		o[2 * i + 1] = r.y;
	}
}

// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)). In place ok.
extern "C" __global__ void swiglu_f32(const float *gate, const float *up, float *out, long long n) {
	for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
		const float g = gate[i];
		out[i] = g / (1.0f + expf(-g)) * up[i];
	}
}

// out[i] = a[i] + b[i]. In place ok.
extern "C" __global__ void add_f32(const float *a, const float *b, float *out, long long n) {
	for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
		out[i] = a[i] + b[i];
}

// out[i] = (base ? base[i] : 0) + sum_s w[s] * y[s*y_stride + i], s < n_slots.
// The MoE combine: y holds the experts' down projections, w their router
// weights (on the device). out may alias base. grid.y = token t: token t
// uses base/out + t*n, y + t*n_slots*y_stride and w + t*n_slots.
extern "C" __global__ void weighted_sum_f32(const float *base, const float *__restrict__ y, long long y_stride,
                                            const float *__restrict__ w, int n_slots, float *out, int n) {
	const size_t t = blockIdx.y;
	if (base) base += t * n;
	out += t * n;
	y += t * n_slots * y_stride;
	w += t * n_slots;
	for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
		float acc = base ? base[i] : 0.0f;
		for (int s = 0; s < n_slots; s++) acc += w[s] * y[(size_t)s * y_stride + i];
		out[i] = acc;
	}
}

// Latent cache store: for each token t = blockIdx.x, the width f32 values at
// src + t*src_stride go to row pos[t] of the cache (row p at cache +
// p*cache_stride; a position outside [0, capacity) is skipped), rounded to
// f16 for the f16 cache. Optionally the row is finished on the way (MLA's
// [RMSNorm(latent) ; RoPE(k_pe)]): when norm_w is not NULL, values
// [0, n_norm) are RMS-normalised with weight norm_w and eps; when rope_dims
// > 0, values [n_norm, n_norm+rope_dims) are rotated as rope_norm_f32 does
// (freq_base). src itself is not modified. Block: 256 threads.
template <typename T>
static __device__ __forceinline__ void latent_store(const float *__restrict__ src, long long src_stride, T *cache,
                                                    long long cache_stride, int width, const int *__restrict__ pos,
                                                    int capacity, const float *__restrict__ norm_w, float eps, int n_norm,
                                                    int rope_dims, float freq_base) {
	__shared__ float scratch[32];
	const int t = blockIdx.x;
	const int p = pos[t];
	if (p < 0 || p >= capacity) return;  // uniform per block
	const float *s = src + (size_t)t * src_stride;
	T *d = cache + (size_t)p * cache_stride;
	float scale = 1.0f;
	if (norm_w) {
		float ss = 0.0f;
		for (int i = threadIdx.x; i < n_norm; i += blockDim.x) ss += s[i] * s[i];
		scale = rsqrtf(block_sum(ss, scratch) / (float)n_norm + eps);
	}
	const int r0 = rope_dims > 0 ? n_norm : width, r1 = rope_dims > 0 ? n_norm + rope_dims : width;
	for (int i = threadIdx.x; i < width; i += blockDim.x) {
		if (i >= r0 && i < r1) continue;
		float v = s[i];
		if (norm_w && i < n_norm) v = v * scale * norm_w[i];
		if constexpr (sizeof(T) == 2) {
			d[i] = __float2half_rn(v);
		} else {
			d[i] = v;
		}
	}
	const double ps = (double)p;
	for (int i = threadIdx.x; i < rope_dims / 2; i += blockDim.x) {
		const float2 r = rope_pair(s[r0 + 2 * i], s[r0 + 2 * i + 1], ps, i, rope_dims, freq_base);
		if constexpr (sizeof(T) == 2) {
			d[r0 + 2 * i] = __float2half_rn(r.x);
			d[r0 + 2 * i + 1] = __float2half_rn(r.y);
		} else {
			d[r0 + 2 * i] = r.x;
			d[r0 + 2 * i + 1] = r.y;
		}
	}
}

#define LATENT_STORE_KERNEL(name, T)                                                                                     \
	extern "C" __global__ void __launch_bounds__(256)                                                                  \
	name(const float *__restrict__ src, long long src_stride, T *cache, long long cache_stride, int width,              \
	     const int *__restrict__ pos, int capacity, const float *__restrict__ norm_w, float eps, int n_norm,             \
	     int rope_dims, float freq_base) {                                                                             \
		latent_store<T>(src, src_stride, cache, cache_stride, width, pos, capacity, norm_w, eps, n_norm, rope_dims,     \
		                freq_base);                                                                                     \
	}

LATENT_STORE_KERNEL(cache_store_f16, __half)
LATENT_STORE_KERNEL(cache_store_f32, float)

// out[r] = index of the largest x[r*stride + i], i < n (lowest index on
// ties; NaN ignored; -1 if every value is NaN). Grid: rows; block: 1024.
extern "C" __global__ void __launch_bounds__(1024) argmax_f32(const float *__restrict__ x, long long stride, int n, int *out) {
	__shared__ float sv[32];
	__shared__ int si[32];
	const float *xr = x + (size_t)blockIdx.x * stride;
	float bv = -INFINITY;
	int bi = INT_MAX;
	// 8 independent loads in flight per thread (the loop is latency-bound otherwise)
	int i = threadIdx.x;
	for (; i + 7 * (int)blockDim.x < n; i += 8 * blockDim.x) {
		float v[8];
#pragma unroll
		for (int u = 0; u < 8; u++) v[u] = xr[i + u * blockDim.x];
#pragma unroll
		for (int u = 0; u < 8; u++) {
			const int j = i + u * blockDim.x;
			if (v[u] > bv || (v[u] == bv && j < bi)) { bv = v[u]; bi = j; }
		}
	}
	for (; i < n; i += blockDim.x) {
		const float v = xr[i];
		if (v > bv || (v == bv && i < bi)) { bv = v; bi = i; }
	}
#pragma unroll
	for (int o = WARP / 2; o > 0; o >>= 1) {
		const float ov = __shfl_xor_sync(0xffffffff, bv, o);
		const int oi = __shfl_xor_sync(0xffffffff, bi, o);
		if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
	}
	const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
	if (lane == 0) { sv[warp] = bv; si[warp] = bi; }
	__syncthreads();
	if (warp == 0) {
		const int nw = blockDim.x / WARP;
		bv = lane < nw ? sv[lane] : -INFINITY;
		bi = lane < nw ? si[lane] : INT_MAX;
#pragma unroll
		for (int o = WARP / 2; o > 0; o >>= 1) {
			const float ov = __shfl_xor_sync(0xffffffff, bv, o);
			const int oi = __shfl_xor_sync(0xffffffff, bi, o);
			if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
		}
		if (lane == 0) out[blockIdx.x] = bi == INT_MAX ? -1 : bi;
	}
}


// Row gather/copy: dst row r (at dst + r*dst_stride, cols values) = src row
// idx[r] (or row r when idx is NULL) at src + row*src_stride. A row index
// outside [0, src_rows) fills the destination row with NaN. Used for the
// embedding lookup (idx = token ids on the device), strided sub-row copies
// and picking the rows whose logits are wanted. Grid: (ceil(cols/256), rows).
extern "C" __global__ void gather_rows_f32(const float *__restrict__ src, long long src_stride,
                                           const int *__restrict__ idx, int src_rows, float *__restrict__ dst,
                                           long long dst_stride, int cols) {
	const int r = blockIdx.y;
	const int c = blockIdx.x * blockDim.x + threadIdx.x;
	if (c >= cols) return;
	const int s = idx ? idx[r] : r;
	float *d = dst + (size_t)r * dst_stride;
	d[c] = (s < 0 || s >= src_rows) ? __int_as_float(0x7fc00000) : src[(size_t)s * src_stride + c];
}

// Busy-waits `cycles` SM clock cycles (one thread): holds the stream so that
// the host can enqueue a long sequence of launches ahead of the GPU (used
// when timing kernels one by one with events).
extern "C" __global__ void spin_cycles(long long cycles) {
	const long long t0 = clock64();
	while (clock64() - t0 < cycles) {
	}
}

// Fused decode helpers: the f32 result is written as before and also
// quantised to Q8_1 blocks (same rounding as quantize_q8_1), saving the
// separate quantize launch before a quantised matvec.
static __device__ __forceinline__ void q8_1_store(float v, block_q8_1 *b, int lane) {
	const float amax = warp_max(fabsf(v));
	const float sum = warp_sum(v);
	const float d = amax / 127.0f;
	const int q = amax == 0.0f ? 0 : (int)roundf(v / d);
	b->qs[lane] = (int8_t)q;
	if (lane == 0) b->ds = make_half2(__float2half_rn(d), __float2half_rn(sum));
}

// rmsnorm_f32 (rows = blockIdx.x) plus Q8_1 of each output row into
// q + r*(cols/32). cols % 32 == 0. Block: 256..1024 threads.
// res as in rmsnorm_f32.
extern "C" __global__ void __launch_bounds__(1024)
rmsnorm_q8_1(float *x, long long x_stride, const float *__restrict__ w, float *y, long long y_stride, int cols,
             float eps, block_q8_1 *__restrict__ q, const float *__restrict__ res, long long res_stride) {
	__shared__ float scratch[32];
	float *xr = x + (size_t)blockIdx.x * x_stride;
	float *yr = y + (size_t)blockIdx.x * y_stride;
	const float ss = add_rows_ss(xr, res ? res + (size_t)blockIdx.x * res_stride : nullptr, cols, scratch);
	const float scale = rsqrtf(ss / (float)cols + eps);
	const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, nw = blockDim.x / WARP;
	const int nb = cols / QK8_1;
	block_q8_1 *qr = q + (size_t)blockIdx.x * nb;
	for (int ib = warp; ib < nb; ib += nw) {
		const int i = ib * QK8_1 + lane;
		const float v = w ? xr[i] * scale * w[i] : xr[i] * scale;
		yr[i] = v;
		q8_1_store(v, qr + ib, lane);
	}
}

// out[r][c] = silu(gate[r][c]) * up[r][c] (rows of cols, contiguous) plus
// Q8_1 of each row into q + r*(cols/32). cols % 32 == 0. Block: 256
// threads (8 warps, one Q8_1 block each); grid: (ceil(cols/256), rows).
extern "C" __global__ void __launch_bounds__(256)
swiglu_q8_1(const float *gate, const float *up, float *out, int cols, block_q8_1 *__restrict__ q) {
	const int row = blockIdx.y;
	const int nb = cols / QK8_1;
	const int ib = blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
	if (ib >= nb) return;  // uniform per warp
	const int lane = threadIdx.x % WARP;
	const size_t i = (size_t)row * cols + (size_t)ib * QK8_1 + lane;
	const float g = gate[i];
	const float v = g / (1.0f + expf(-g)) * up[i];
	out[i] = v;
	q8_1_store(v, q + (size_t)row * nb + ib, lane);
}
