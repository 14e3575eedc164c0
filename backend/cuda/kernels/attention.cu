// attention.cu: MLA decode attention over the latent cache (absorbed form,
// model spec §4.2 steps 6-8), flash-decoding style.
//
// One query token, H heads sharing one cached row per key token:
//   Q: [H][D] f32 (head h at q + h*q_stride), D = 576 for GLM (512 latent + 64 rope)
//   K: cache rows [n_kv][D] f16 at kv + j*kv_stride; V = K[:, 0:Dv] (Dv = 512)
//   s_h(j) = scale * Q_h . K_j;  p = softmax_j(s_h);  o_h = sum_j p_h(j) * K_j[0:Dv]
// n_kv is read from the device (*n_kv_ptr, clamped to [0, capacity]) so a
// captured graph can be replayed as the cache grows.
//
// Pass 1 (mla_decode_partial): grid = n_splits blocks; split b takes the
// key tokens [b*per, min(n_kv, (b+1)*per)), per = ceil(n_kv/n_splits)
// rounded up to ATT_TILE, so only ceil(n_kv/ATT_TILE) splits are ever busy.
// Each block streams its keys through shared memory ATT_TILE rows at a time,
// reads every K row once for all H heads, and keeps an online softmax per
// head. It writes part_ml[b][h] = (running max m, running sum l) and, for a
// busy split, part_o[b][h][0:Dv] = sum_j exp(s_h(j) - m) * V_j.
// Pass 2 (mla_decode_combine): grid = H blocks; merges the splits.
//
// Limits (checked by the Go launcher): H <= ATT_MAXH, D and Dv even,
// Dv <= 2*ATT_THREADS, Dv <= D, kv_stride even. Arithmetic is f32 on CUDA
// cores; a tensor-core (mma) version is the planned next step.
#include "common.cuh"

#define ATT_TILE 32
#define ATT_THREADS 256
#define ATT_MAXH 32

// Dynamic shared memory for pass 1, in bytes (mirrored in Go: mlaSharedBytes).
//   Qs [H*D] f32 | S [H*TILE] f32 | alpha, m, l [3*MAXH] f32 | Ks [TILE*(D/2+1)] half2
// Several query tokens in one launch (prefill): grid.y = token t. Token t
// reads its queries at q + t*q_tok_stride, its key count at n_kv_ptr[t], and
// writes its partials at part_o + t*n_splits*H*Dv, part_ml + t*n_splits*H*2
// (MLA_TOKEN_OFFSETS); the combine pass (grid.z = token) writes token t's
// output at out + t*out_tok_stride. Decode is the one-token case.
#define MLA_TOKEN_OFFSETS                                        \
	q += (size_t)blockIdx.y * q_tok_stride;                      \
	n_kv_ptr += blockIdx.y;                                      \
	part_o += (size_t)blockIdx.y * gridDim.x * H * Dv;           \
	part_ml += (size_t)blockIdx.y * gridDim.x * H * 2;

// Cache element types of the CUDA-core kernel: f16 (default) or f32 rows,
// staged in shared memory as pairs.
template <typename KT> struct KVPair;
template <> struct KVPair<__half> {
	typedef __half2 T2;
	static __device__ __forceinline__ float2 f2(__half2 v) { return __half22float2(v); }
};
template <> struct KVPair<float> {
	typedef float2 T2;
	static __device__ __forceinline__ float2 f2(float2 v) { return v; }
};

template <typename KT>
static __device__ __forceinline__ void mla_partial_cc(const float *__restrict__ q, long long q_stride,
                                                      const KT *__restrict__ kv, long long kv_stride,
                                                      const int *__restrict__ n_kv_ptr, int capacity, int H, int D,
                                                      int Dv, float scale, float *__restrict__ part_o,
                                                      float *__restrict__ part_ml) {
	typedef typename KVPair<KT>::T2 T2;
	extern __shared__ __align__(16) float smem[];
	float *Qs = smem;
	float *S = Qs + H * D;
	float *alpha = S + H * ATT_TILE;
	float *mrow = alpha + ATT_MAXH;
	float *lrow = mrow + ATT_MAXH;
	T2 *Ks = (T2 *)(lrow + ATT_MAXH);
	const int D2 = D / 2, KSTR = D2 + 1;  // odd row stride (in half2): conflict-free column reads

	const int tid = threadIdx.x, lane = tid % WARP, warp = tid / WARP;
	const int split = blockIdx.x, n_splits = gridDim.x;
	const int n_kv = max(0, min(*n_kv_ptr, capacity));  // never read past the cache
	const int per = ((n_kv + n_splits - 1) / n_splits + ATT_TILE - 1) / ATT_TILE * ATT_TILE;
	const int t_begin = split * per;
	const int t_end = min(n_kv, t_begin + per);

	if (t_begin >= t_end) {  // idle split: contributes nothing
		if (tid < H) {
			part_ml[((size_t)split * H + tid) * 2 + 0] = -INFINITY;
			part_ml[((size_t)split * H + tid) * 2 + 1] = 0.0f;
		}
		return;
	}

	for (int i = tid; i < H * D; i += ATT_THREADS) Qs[i] = q[(size_t)(i / D) * q_stride + i % D];
	if (tid < H) {
		mrow[tid] = -INFINITY;
		lrow[tid] = 0.0f;
	}
	float acc[ATT_MAXH][2];
#pragma unroll
	for (int h = 0; h < ATT_MAXH; h++) acc[h][0] = acc[h][1] = 0.0f;
	const int c2 = tid;  // this thread's V column pair: 2*c2, 2*c2+1
	const bool has_col = 2 * c2 < Dv;
	__syncthreads();

	for (int t0 = t_begin; t0 < t_end; t0 += ATT_TILE) {
		const int nt = min(ATT_TILE, t_end - t0);
		for (int i = tid; i < nt * D2; i += ATT_THREADS) {
			const int r = i / D2, c = i % D2;
			Ks[r * KSTR + c] = ((const T2 *)(kv + (size_t)(t0 + r) * kv_stride))[c];
		}
		__syncthreads();
		// scores: thread handles (h, t) pairs; lanes of a warp share h
		for (int i = tid; i < H * ATT_TILE; i += ATT_THREADS) {
			const int h = i / ATT_TILE, t = i % ATT_TILE;
			float s = -INFINITY;
			if (t < nt) {
				const float2 *qh = (const float2 *)(Qs + h * D);
				const T2 *kr = Ks + t * KSTR;
				float a = 0.0f;
				for (int c = 0; c < D2; c++) {
					const float2 kf = KVPair<KT>::f2(kr[c]);
					const float2 qf = qh[c];
					a = fmaf(qf.x, kf.x, a);
					a = fmaf(qf.y, kf.y, a);
				}
				s = a * scale;
			}
			S[h * ATT_TILE + t] = s;
		}
		__syncthreads();
		// online softmax, one warp per head (ATT_TILE == WARP: lane = token)
		for (int h = warp; h < H; h += ATT_THREADS / WARP) {
			const float s = S[h * ATT_TILE + lane];
			const float mold = mrow[h];
			const float mnew = fmaxf(mold, warp_max(s));
			const float p = lane < nt ? expf(s - mnew) : 0.0f;
			const float ps = warp_sum(p);
			S[h * ATT_TILE + lane] = p;
			if (lane == 0) {
				const float a = mold == -INFINITY ? 0.0f : expf(mold - mnew);
				alpha[h] = a;
				lrow[h] = lrow[h] * a + ps;
				mrow[h] = mnew;
			}
		}
		__syncthreads();
		if (has_col) {
#pragma unroll
			for (int h = 0; h < ATT_MAXH; h++) {
				if (h < H) {
					const float a = alpha[h];
					acc[h][0] *= a;
					acc[h][1] *= a;
				}
			}
			for (int t = 0; t < nt; t++) {
				const float2 v = KVPair<KT>::f2(Ks[t * KSTR + c2]);
#pragma unroll
				for (int h = 0; h < ATT_MAXH; h++) {
					if (h < H) {
						const float p = S[h * ATT_TILE + t];
						acc[h][0] = fmaf(p, v.x, acc[h][0]);
						acc[h][1] = fmaf(p, v.y, acc[h][1]);
					}
				}
			}
		}
		__syncthreads();
	}
	if (has_col) {
#pragma unroll
		for (int h = 0; h < ATT_MAXH; h++) {
			if (h < H) {
				float *o = part_o + ((size_t)split * H + h) * Dv + 2 * c2;
				o[0] = acc[h][0];
				o[1] = acc[h][1];
			}
		}
	}
	if (tid < H) {
		part_ml[((size_t)split * H + tid) * 2 + 0] = mrow[tid];
		part_ml[((size_t)split * H + tid) * 2 + 1] = lrow[tid];
	}
}

extern "C" __global__ void __launch_bounds__(ATT_THREADS)
mla_decode_partial(const float *__restrict__ q, long long q_stride, const __half *__restrict__ kv, long long kv_stride,
                   const int *__restrict__ n_kv_ptr, int capacity, int H, int D, int Dv, float scale, float *__restrict__ part_o,
                   float *__restrict__ part_ml, long long q_tok_stride) {
	MLA_TOKEN_OFFSETS
	mla_partial_cc<__half>(q, q_stride, kv, kv_stride, n_kv_ptr, capacity, H, D, Dv, scale, part_o, part_ml);
}

// The same over an f32 cache (rows of f32; shared memory per
// mlaSharedBytes with 8-byte pairs).
extern "C" __global__ void __launch_bounds__(ATT_THREADS)
mla_decode_partial_f32(const float *__restrict__ q, long long q_stride, const float *__restrict__ kv, long long kv_stride,
                       const int *__restrict__ n_kv_ptr, int capacity, int H, int D, int Dv, float scale,
                       float *__restrict__ part_o, float *__restrict__ part_ml, long long q_tok_stride) {
	MLA_TOKEN_OFFSETS
	mla_partial_cc<float>(q, q_stride, kv, kv_stride, n_kv_ptr, capacity, H, D, Dv, scale, part_o, part_ml);
}

// Pass 2: out[h*out_stride + c] = sum_b exp(m_b - M) o_b[c] / sum_b exp(m_b - M) l_b.
// Grid: (H, ceil(Dv/32)); block 256 = 8 split groups x 32 columns, so the
// reads of the partial outputs run in parallel; dynamic shared memory:
// n_splits floats.
extern "C" __global__ void __launch_bounds__(256)
mla_decode_combine(const float *__restrict__ part_o, const float *__restrict__ part_ml, int n_splits, int H, int Dv,
                   float *__restrict__ out, long long out_stride, long long out_tok_stride) {
	extern __shared__ float wsh[];
	__shared__ float scratch[32];
	__shared__ float red[8][WARP];
	part_o += (size_t)blockIdx.z * n_splits * H * Dv;  // token blockIdx.z (see MLA_TOKEN_OFFSETS)
	part_ml += (size_t)blockIdx.z * n_splits * H * 2;
	out += (size_t)blockIdx.z * out_tok_stride;
	const int h = blockIdx.x, tid = threadIdx.x, lane = tid % WARP, grp = tid / WARP;
	const int c = blockIdx.y * WARP + lane;
	float m = -INFINITY;
	for (int b = tid; b < n_splits; b += blockDim.x) m = fmaxf(m, part_ml[((size_t)b * H + h) * 2]);
	m = warp_max(m);
	if (lane == 0) scratch[grp] = m;
	__syncthreads();
	float M = -INFINITY;
	for (int w = 0; w < (int)blockDim.x / WARP; w++) M = fmaxf(M, scratch[w]);
	float l = 0.0f;
	for (int b = tid; b < n_splits; b += blockDim.x) {
		const float mb = part_ml[((size_t)b * H + h) * 2];
		const float wb = mb == -INFINITY ? 0.0f : expf(mb - M);
		wsh[b] = wb;
		l += wb * part_ml[((size_t)b * H + h) * 2 + 1];
	}
	const float L = block_sum(l, scratch);  // also orders the wsh writes before the reads below
	float o = 0.0f;
	if (c < Dv) {
#pragma unroll 4
		for (int b = grp; b < n_splits; b += 8) {
			const float wb = wsh[b];
			if (wb != 0.0f) o = fmaf(wb, part_o[((size_t)b * H + h) * Dv + c], o);
		}
	}
	red[grp][lane] = o;
	__syncthreads();
	if (grp == 0 && c < Dv) {
		float sum = 0.0f;
#pragma unroll
		for (int g = 0; g < 8; g++) sum += red[g][lane];
		out[(size_t)h * out_stride + c] = sum / L;
	}
}

// ---- tensor-core variant of pass 1 ----
//
// Same contract as mla_decode_partial (same outputs, same scratch layout),
// with both products on tensor cores (mma.sync m16n8k16, f16 inputs, f32
// accumulation). To keep f32 accuracy, Q and P are split into f16 pairs
// hi + lo (hi = f16(x), lo = f16(x - hi)) and each product is two mma; the
// cache is f16 already, so K and V are exact. Heads are padded to 32 (two
// m-tiles; rows >= H are zero fragments).
// Extra limits: D % 16 == 0, Dv % 8 == 0 (Dv <= 512).
// Shared memory (mirrored in Go: mlaMMASharedBytes):
//   Qhi, Qlo [H][D+8] half | Ks [TILE][D+8] half (x2 for _pipe) | S [H][TILE] f32 |
//   Phi, Plo [32][TILE+8] half | alpha, m, l [3*MAXH] f32

static __device__ __forceinline__ void mma16816(float *c, const uint32_t *a, uint32_t b0, uint32_t b1) {
	asm volatile(
	    "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
	    : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
	    : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

static __device__ __forceinline__ uint32_t ld_h2(const __half *p) { return *(const uint32_t *)p; }

static __device__ __forceinline__ uint32_t pack_h2(__half lo, __half hi) {
	return (uint32_t)__half_as_ushort(lo) | ((uint32_t)__half_as_ushort(hi) << 16);
}

static __device__ __forceinline__ void cp_async16(void *smem, const void *gmem, int src_bytes) {
	const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
	asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes));
}
static __device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
static __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// PIPE = true: Q is read with batched 16-byte loads and the K tiles are
// double-buffered with cp.async, so the next tile streams in while the
// current one is computed (needs D % 8 == 0, q and kv 16-byte aligned,
// q_stride % 4 == 0, kv_stride % 8 == 0; smem holds two K tiles).
// LO = false drops the f16 lo halves of Q and P (plain f16 Q and P, as
// llama.cpp's FlashAttention kernels use): half the tensor-core work and
// less shared memory (no Qlo, Plo), at f16 rather than f32 accuracy of the
// scores; used by the fast path.
template <bool PIPE, bool LO>
static __device__ __forceinline__ void mla_partial_mma(const float *__restrict__ q, long long q_stride,
                                                       const __half *__restrict__ kv, long long kv_stride,
                                                       const int *__restrict__ n_kv_ptr, int capacity, int H, int D,
                                                       int Dv, float scale, float *__restrict__ part_o,
                                                       float *__restrict__ part_ml) {
	extern __shared__ __align__(16) unsigned char smem_raw[];
	const int QS = D + 8, PS = ATT_TILE + 8;  // padded row strides (halves): conflict-free fragment loads
	__half *Qhi = (__half *)smem_raw;
	__half *Qlo = Qhi + H * QS;
	__half *Kbuf = Qlo + (LO ? H * QS : 0);  // PIPE: two tiles
	__half *Ks = Kbuf;
	float *S = (float *)(Kbuf + (PIPE ? 2 : 1) * ATT_TILE * QS);
	__half *Phi = (__half *)(S + H * ATT_TILE);
	__half *Plo = Phi + 32 * PS;
	float *alpha = (float *)(Plo + (LO ? 32 * PS : 0));
	float *mrow = alpha + ATT_MAXH;
	float *lrow = mrow + ATT_MAXH;

	const int tid = threadIdx.x, lane = tid % WARP, warp = tid / WARP;
	const int g = lane >> 2, tg = lane & 3;  // mma fragment coordinates
	const int split = blockIdx.x, n_splits = gridDim.x;
	const int n_kv = max(0, min(*n_kv_ptr, capacity));
	const int per = ((n_kv + n_splits - 1) / n_splits + ATT_TILE - 1) / ATT_TILE * ATT_TILE;
	const int t_begin = split * per;
	const int t_end = min(n_kv, t_begin + per);
	if (t_begin >= t_end) {
		if (tid < H) {
			part_ml[((size_t)split * H + tid) * 2 + 0] = -INFINITY;
			part_ml[((size_t)split * H + tid) * 2 + 1] = 0.0f;
		}
		return;
	}
	const int D2 = D / 2, D8 = D / 8;
	// K tile loader for PIPE: 16-byte chunks, rows past the end zero-filled.
	auto issue_tile = [&](int t0, __half *dst) {
		const int nt = min(ATT_TILE, t_end - t0);
		for (int i = tid; i < ATT_TILE * D8; i += ATT_THREADS) {
			const int r = i / D8, c = i % D8;
			const int rr = r < nt ? r : 0;
			cp_async16(dst + r * QS + 8 * c, kv + (size_t)(t0 + rr) * kv_stride + 8 * c, r < nt ? 16 : 0);
		}
		cp_async_commit();
	};
	if (PIPE) issue_tile(t_begin, Kbuf);  // overlaps the Q conversion below
	if (PIPE) {
		const int D4 = D / 4, nq4 = H * D4;
		for (int base = 0; base < nq4; base += 8 * ATT_THREADS) {
			float4 v[8];
#pragma unroll
			for (int u = 0; u < 8; u++) {
				const int i = base + u * ATT_THREADS + tid;
				if (i < nq4) v[u] = *(const float4 *)(q + (size_t)(i / D4) * q_stride + 4 * (i % D4));
			}
#pragma unroll
			for (int u = 0; u < 8; u++) {
				const int i = base + u * ATT_THREADS + tid;
				if (i < nq4) {
					const int h = i / D4, d = 4 * (i % D4);
					const float xs[4] = {v[u].x, v[u].y, v[u].z, v[u].w};
#pragma unroll
					for (int e = 0; e < 4; e++) {
						const __half hi = __float2half_rn(xs[e]);
						Qhi[h * QS + d + e] = hi;
						if (LO) Qlo[h * QS + d + e] = __float2half_rn(xs[e] - __half2float(hi));
					}
				}
			}
		}
	} else {
		for (int i = tid; i < H * D; i += ATT_THREADS) {
			const int h = i / D, d = i % D;
			const float x = q[(size_t)h * q_stride + d];
			const __half hi = __float2half_rn(x);
			Qhi[h * QS + d] = hi;
			if (LO) Qlo[h * QS + d] = __float2half_rn(x - __half2float(hi));
		}
	}
	for (int i = tid; i < (LO ? 2 : 1) * 32 * PS; i += ATT_THREADS) Phi[i] = __float2half_rn(0.0f);  // rows >= H stay zero
	if (tid < H) {
		mrow[tid] = -INFINITY;
		lrow[tid] = 0.0f;
	}
	// PV accumulators: warp owns dv n-tiles warp*8 .. warp*8+7, both m-tiles.
	float acc[2][8][4];
#pragma unroll
	for (int mt = 0; mt < 2; mt++)
#pragma unroll
		for (int j = 0; j < 8; j++) acc[mt][j][0] = acc[mt][j][1] = acc[mt][j][2] = acc[mt][j][3] = 0.0f;
	__syncthreads();

	int buf = 0;
	for (int t0 = t_begin; t0 < t_end; t0 += ATT_TILE) {
		const int nt = min(ATT_TILE, t_end - t0);
		if (PIPE) {
			Ks = Kbuf + buf * ATT_TILE * QS;
			if (t0 + ATT_TILE < t_end) {
				issue_tile(t0 + ATT_TILE, Kbuf + (buf ^ 1) * ATT_TILE * QS);
				cp_async_wait<1>();  // this tile landed; the next one is in flight
			} else {
				cp_async_wait<0>();
			}
			buf ^= 1;
		} else {
			for (int i = tid; i < ATT_TILE * D2; i += ATT_THREADS) {
				const int r = i / D2, c = i % D2;
				__half2 v = __float2half2_rn(0.0f);  // rows past the end are zero (0 * garbage could be NaN)
				if (r < nt) v = ((const __half2 *)(kv + (size_t)(t0 + r) * kv_stride))[c];
				*(__half2 *)(Ks + r * QS + 2 * c) = v;
			}
		}
		__syncthreads();
		// scores: warp -> (m-tile, n-tile) of the 32x32 score tile
		{
			const int mt = warp / 4, ntile = warp % 4;
			const int r0 = mt * 16 + g, r1 = r0 + 8;
			const bool v0 = r0 < H, v1 = r1 < H;
			const __half *kb = Ks + (ntile * 8 + g) * QS + 2 * tg;
			// two accumulator chains (even and odd k steps) so consecutive
			// mma do not wait on each other
			float c[4] = {0.0f, 0.0f, 0.0f, 0.0f}, c2[4] = {0.0f, 0.0f, 0.0f, 0.0f};
			auto kstep = [&](int k0, float *cc) {
				uint32_t ah[4], al[4];
				ah[0] = v0 ? ld_h2(Qhi + r0 * QS + k0 + 2 * tg) : 0u;
				ah[1] = v1 ? ld_h2(Qhi + r1 * QS + k0 + 2 * tg) : 0u;
				ah[2] = v0 ? ld_h2(Qhi + r0 * QS + k0 + 2 * tg + 8) : 0u;
				ah[3] = v1 ? ld_h2(Qhi + r1 * QS + k0 + 2 * tg + 8) : 0u;
				const uint32_t b0 = ld_h2(kb + k0), b1 = ld_h2(kb + k0 + 8);
				mma16816(cc, ah, b0, b1);
				if (LO) {
					al[0] = v0 ? ld_h2(Qlo + r0 * QS + k0 + 2 * tg) : 0u;
					al[1] = v1 ? ld_h2(Qlo + r1 * QS + k0 + 2 * tg) : 0u;
					al[2] = v0 ? ld_h2(Qlo + r0 * QS + k0 + 2 * tg + 8) : 0u;
					al[3] = v1 ? ld_h2(Qlo + r1 * QS + k0 + 2 * tg + 8) : 0u;
					mma16816(cc, al, b0, b1);
				}
			};
			int k0 = 0;
			for (; k0 + 32 <= D; k0 += 32) {
				kstep(k0, c);
				kstep(k0 + 16, c2);
			}
			if (k0 < D) kstep(k0, c);
#pragma unroll
			for (int i = 0; i < 4; i++) c[i] += c2[i];
			const int col = ntile * 8 + 2 * tg;
			if (v0) {
				S[r0 * ATT_TILE + col] = col < nt ? c[0] * scale : -INFINITY;
				S[r0 * ATT_TILE + col + 1] = col + 1 < nt ? c[1] * scale : -INFINITY;
			}
			if (v1) {
				S[r1 * ATT_TILE + col] = col < nt ? c[2] * scale : -INFINITY;
				S[r1 * ATT_TILE + col + 1] = col + 1 < nt ? c[3] * scale : -INFINITY;
			}
		}
		__syncthreads();
		for (int h = warp; h < H; h += ATT_THREADS / WARP) {
			const float s = S[h * ATT_TILE + lane];
			const float mold = mrow[h];
			const float mnew = fmaxf(mold, warp_max(s));
			const float p = lane < nt ? expf(s - mnew) : 0.0f;
			const float ps = warp_sum(p);
			const __half ph = __float2half_rn(p);
			Phi[h * PS + lane] = ph;
			if (LO) Plo[h * PS + lane] = __float2half_rn(p - __half2float(ph));
			if (lane == 0) {
				const float a = mold == -INFINITY ? 0.0f : expf(mold - mnew);
				alpha[h] = a;
				lrow[h] = lrow[h] * a + ps;
				mrow[h] = mnew;
			}
		}
		__syncthreads();
		// PV: O[32 x Dv] += P[32 x 32] * V[32 x Dv]
#pragma unroll
		for (int mt = 0; mt < 2; mt++) {
			const int r0 = mt * 16 + g, r1 = r0 + 8;
			const float a0 = r0 < H ? alpha[r0] : 0.0f, a1 = r1 < H ? alpha[r1] : 0.0f;
#pragma unroll
			for (int j = 0; j < 8; j++) {
				acc[mt][j][0] *= a0;
				acc[mt][j][1] *= a0;
				acc[mt][j][2] *= a1;
				acc[mt][j][3] *= a1;
			}
		}
#pragma unroll
		for (int ks = 0; ks < ATT_TILE / 16; ks++) {
			uint32_t ph[2][4], pl[2][4];
#pragma unroll
			for (int mt = 0; mt < 2; mt++) {
				const int r0 = mt * 16 + g, r1 = r0 + 8, k = ks * 16 + 2 * tg;
				ph[mt][0] = ld_h2(Phi + r0 * PS + k);
				ph[mt][1] = ld_h2(Phi + r1 * PS + k);
				ph[mt][2] = ld_h2(Phi + r0 * PS + k + 8);
				ph[mt][3] = ld_h2(Phi + r1 * PS + k + 8);
				if (LO) {
					pl[mt][0] = ld_h2(Plo + r0 * PS + k);
					pl[mt][1] = ld_h2(Plo + r1 * PS + k);
					pl[mt][2] = ld_h2(Plo + r0 * PS + k + 8);
					pl[mt][3] = ld_h2(Plo + r1 * PS + k + 8);
				}
			}
			const __half *vk = Ks + (ks * 16 + 2 * tg) * QS;
#pragma unroll
			for (int j = 0; j < 8; j++) {
				const int c = (warp * 8 + j) * 8 + g;
				if ((warp * 8 + j) * 8 >= Dv) break;  // uniform per warp
				const uint32_t b0 = pack_h2(vk[c], vk[QS + c]);
				const uint32_t b1 = pack_h2(vk[8 * QS + c], vk[9 * QS + c]);
#pragma unroll
				for (int mt = 0; mt < 2; mt++) {
					mma16816(acc[mt][j], ph[mt], b0, b1);
					if (LO) mma16816(acc[mt][j], pl[mt], b0, b1);
				}
			}
		}
		__syncthreads();
	}
#pragma unroll
	for (int mt = 0; mt < 2; mt++) {
		const int r0 = mt * 16 + g, r1 = r0 + 8;
#pragma unroll
		for (int j = 0; j < 8; j++) {
			const int col = (warp * 8 + j) * 8 + 2 * tg;
			if ((warp * 8 + j) * 8 >= Dv) break;
			if (r0 < H) {
				float *o = part_o + ((size_t)split * H + r0) * Dv + col;
				o[0] = acc[mt][j][0];
				o[1] = acc[mt][j][1];
			}
			if (r1 < H) {
				float *o = part_o + ((size_t)split * H + r1) * Dv + col;
				o[0] = acc[mt][j][2];
				o[1] = acc[mt][j][3];
			}
		}
	}
	if (tid < H) {
		part_ml[((size_t)split * H + tid) * 2 + 0] = mrow[tid];
		part_ml[((size_t)split * H + tid) * 2 + 1] = lrow[tid];
	}
}

extern "C" __global__ void __launch_bounds__(ATT_THREADS)
mla_decode_partial_mma(const float *__restrict__ q, long long q_stride, const __half *__restrict__ kv, long long kv_stride,
                       const int *__restrict__ n_kv_ptr, int capacity, int H, int D, int Dv, float scale,
                       float *__restrict__ part_o, float *__restrict__ part_ml, long long q_tok_stride) {
	MLA_TOKEN_OFFSETS
	mla_partial_mma<false, true>(q, q_stride, kv, kv_stride, n_kv_ptr, capacity, H, D, Dv, scale, part_o, part_ml);
}

extern "C" __global__ void __launch_bounds__(ATT_THREADS)
mla_decode_partial_mma_pipe(const float *__restrict__ q, long long q_stride, const __half *__restrict__ kv,
                            long long kv_stride, const int *__restrict__ n_kv_ptr, int capacity, int H, int D, int Dv,
                            float scale, float *__restrict__ part_o, float *__restrict__ part_ml,
                            long long q_tok_stride) {
	MLA_TOKEN_OFFSETS
	mla_partial_mma<true, true>(q, q_stride, kv, kv_stride, n_kv_ptr, capacity, H, D, Dv, scale, part_o, part_ml);
}

// mla_decode_partial_mma_pipe with f16 Q and P (LO = false).
extern "C" __global__ void __launch_bounds__(ATT_THREADS)
mla_decode_partial_mma_pipe_f16(const float *__restrict__ q, long long q_stride, const __half *__restrict__ kv,
                                long long kv_stride, const int *__restrict__ n_kv_ptr, int capacity, int H, int D,
                                int Dv, float scale, float *__restrict__ part_o, float *__restrict__ part_ml,
                                long long q_tok_stride) {
	MLA_TOKEN_OFFSETS
	mla_partial_mma<true, false>(q, q_stride, kv, kv_stride, n_kv_ptr, capacity, H, D, Dv, scale, part_o, part_ml);
}

// ---- prefill: several query tokens per block ----
//
// mla_prefill_mma_f16: pass 1 of the fast path (f16 Q and P, cp.async
// K tiles through cp.async, MLA_KST deep, as mla_decode_partial_mma_pipe_f16 two deep) for T =
// MLA_PR/H query tokens x H heads per block: row r = i*H + h of MLA_PR is
// head h of token t = blockIdx.y*T + i (t < tokens), so each K tile is read
// once for T tokens instead of once per token, and the tensor-core tiles
// hold 60 real rows of 64 (H = 20) instead of 20 of 32. Grid: (n_splits,
// ceil(tokens/T)). Token t reads its queries at q + t*q_tok_stride (head h
// at + h*q_stride) and its key count at n_kv_ptr[t]; the block's split range
// follows from the largest count among its tokens (the formula of
// mla_partial_mma), and each row masks the keys at or past its own count.
// Partials go where MLA_TOKEN_OFFSETS puts token t's; a row with no key in
// its split writes m = -inf, l = 0 (mla_decode_combine then skips it).
// Needs 2 <= T (H <= 32), D % 16 == 0, Dv % 8 == 0, Dv <= 512 (8 warps x 64
// columns), q, kv 16-byte aligned, q_stride and q_tok_stride % 4 == 0, kv_stride % 8
// == 0 (checked in Go). Shared memory (mirrored in Go: mlaPrefillSharedBytes):
//   Qs [MLA_PR][D+8] half | Ks MLA_KST x [TILE][D+8] half | S [MLA_PR][TILE] f32 |
//   P [MLA_PR][TILE+8] half | alpha, m, l [MLA_PR] f32 | n [MLA_PR] int
#define MLA_PR 64
#define MLA_KST 3  // K tile buffers (mirrored in Go: mlaPrefillKStages)

// ldmatrix: four 8x8 f16 matrices from shared memory, rows addressed by
// lanes 0-7, 8-15, 16-23, 24-31 (16-byte aligned rows); _trans transposes
// each matrix (for the V operand).
static __device__ __forceinline__ void ldsm_x4(uint32_t *r, const __half *p) {
	const unsigned a = (unsigned)__cvta_generic_to_shared(p);
	asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
	             : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
	             : "r"(a));
}
static __device__ __forceinline__ void ldsm_x4_trans(uint32_t *r, const __half *p) {
	const unsigned a = (unsigned)__cvta_generic_to_shared(p);
	asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
	             : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
	             : "r"(a));
}

// pf_pack8: 8 floats to 8 f16 (one 16-byte store).
static __device__ __forceinline__ uint4 pf_pack8(const float *v) {
	uint4 u;
	u.x = pack_h2(__float2half_rn(v[0]), __float2half_rn(v[1]));
	u.y = pack_h2(__float2half_rn(v[2]), __float2half_rn(v[3]));
	u.z = pack_h2(__float2half_rn(v[4]), __float2half_rn(v[5]));
	u.w = pack_h2(__float2half_rn(v[6]), __float2half_rn(v[7]));
	return u;
}
// SK = true (mla_prefill_mma_f16_sk) splits the score product over K
// (D) instead of over key columns: warp w computes rows 32*(w%2) .. +31 x
// all 32 keys of the tile over the quarter w/2 of the D steps, so each
// k-step loads 2 A + 2 B fragments for 8 mma (the plain kernel: 2 + 2 for
// 4), halving the ldmatrix traffic of the score phase (Q is re-read from
// shared memory for every key tile); the four quarter sums go to
// Sp[4][MLA_PR][TILE] f32 (columns XOR-swizzled by (row%4)*8 so the
// fragment stores are conflict-free) and the softmax threads add them.
// V2 (mla_prefill_mma_f16_sk2, with SK): (1) lazy rescaling: a row's
// running max moves only when the tile's max exceeds it by more than
// MLA_LAZY (or on the row's first keys), so P <= e^MLA_LAZY (f16-safe) and
// alpha is exactly 1 on most tiles; a warp skips the O *= alpha pass of an
// m-tile whose 16 rows all have alpha == 1; the partials keep the stale
// max, which the combine pass reads as the reference of o and l, so the
// result is the same function; (2) odd rows read their score halves in
// the other order (conflict-free 16-byte shared loads); (3) 8-byte stores
// of the partial outputs.
#define MLA_LAZY 8.0f
template <bool SK, bool V2>
static __device__ __forceinline__ void mla_prefill_body(const float *__restrict__ q, long long q_stride,
                                                        const __half *__restrict__ kv, long long kv_stride,
                                                        const int *__restrict__ n_kv_ptr, int capacity, int H, int D,
                                                        int Dv, float scale, float *__restrict__ part_o,
                                                        float *__restrict__ part_ml, long long q_tok_stride,
                                                        int tokens) {
	extern __shared__ __align__(16) unsigned char smem_raw[];
	const int QS = D + 8, PS = ATT_TILE + 8;
	__half *Qs = (__half *)smem_raw;
	__half *Kbuf = Qs + MLA_PR * QS;
	float *S = (float *)(Kbuf + MLA_KST * ATT_TILE * QS);
	__half *P = (__half *)(S + (SK ? 4 : 1) * MLA_PR * ATT_TILE);
	float *alpha = (float *)(P + MLA_PR * PS);
	float *mrow = alpha + MLA_PR;
	float *lrow = mrow + MLA_PR;
	int *nrow = (int *)(lrow + MLA_PR);

	const int tid = threadIdx.x, lane = tid % WARP, warp = tid / WARP;
	const int g = lane >> 2, tg = lane & 3;
	const int T = MLA_PR / H;
	const int tok0 = blockIdx.y * T;
	const int ntok = min(T, tokens - tok0);
	const int R = ntok * H;  // real rows
	const int split = blockIdx.x, n_splits = gridDim.x;
	int n_kv = 0;
	for (int i = 0; i < ntok; i++) n_kv = max(n_kv, min(n_kv_ptr[tok0 + i], capacity));
	const int per = ((n_kv + n_splits - 1) / n_splits + ATT_TILE - 1) / ATT_TILE * ATT_TILE;
	const int t_begin = split * per;
	const int t_end = min(n_kv, t_begin + per);
	auto ml_out = [&](int r) { return part_ml + ((size_t)(tok0 + r / H) * n_splits + split) * H * 2 + (r % H) * 2; };
	if (t_begin >= t_end) {
		if (tid < R) {
			float *ml = ml_out(tid);
			ml[0] = -INFINITY;
			ml[1] = 0.0f;
		}
		return;
	}
	const int D8 = D / 8, D4 = D / 4;
	auto issue_tile = [&](int t0, __half *dst) {
		const int nt = min(ATT_TILE, t_end - t0);
		for (int i = tid; i < ATT_TILE * D8; i += ATT_THREADS) {
			const int r = i / D8, c = i % D8;
			const int rr = r < nt ? r : 0;
			cp_async16(dst + r * QS + 8 * c, kv + (size_t)(t0 + rr) * kv_stride + 8 * c, r < nt ? 16 : 0);
		}
		cp_async_commit();
	};
	// K tiles stream through MLA_KST buffers, two tiles ahead of the one
	// being computed; one commit group per tile (empty past the end)
	issue_tile(t_begin, Kbuf);  // both overlap the Q conversion below
	if (t_begin + ATT_TILE < t_end) issue_tile(t_begin + ATT_TILE, Kbuf + ATT_TILE * QS);
	else cp_async_commit();
	for (int i = tid; i < MLA_PR * D4; i += ATT_THREADS) {
		const int r = i / D4, d = 4 * (i % D4);
		float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);  // padding rows: zero queries
		if (r < R) v = *(const float4 *)(q + (size_t)(tok0 + r / H) * q_tok_stride + (size_t)(r % H) * q_stride + d);
		__half2 *dst = (__half2 *)(Qs + r * QS + d);
		dst[0] = __floats2half2_rn(v.x, v.y);
		dst[1] = __floats2half2_rn(v.z, v.w);
	}
	if (tid < MLA_PR) {
		mrow[tid] = -INFINITY;
		lrow[tid] = 0.0f;
		nrow[tid] = tid < R ? max(0, min(n_kv_ptr[tok0 + tid / H], capacity)) : 0;  // 0: every key masked
	}
	// PV accumulators: warp owns dv n-tiles warp*8 .. warp*8+7 of all 4 m-tiles.
	float acc[4][8][4];
#pragma unroll
	for (int mt = 0; mt < 4; mt++)
#pragma unroll
		for (int j = 0; j < 8; j++) acc[mt][j][0] = acc[mt][j][1] = acc[mt][j][2] = acc[mt][j][3] = 0.0f;
	__syncthreads();

	int buf = 0;
	for (int t0 = t_begin; t0 < t_end; t0 += ATT_TILE) {
		const int nt = min(ATT_TILE, t_end - t0);
		const __half *Ks = Kbuf + buf * ATT_TILE * QS;
		cp_async_wait<1>();  // this tile's group is complete (only the next one may be pending)
		__syncthreads();     // everyone's copies landed; everyone finished the previous tile
		{
			const int nb2 = buf == 0 ? MLA_KST - 1 : buf - 1;  // the buffer of the previous tile, now free
			if (t0 + 2 * ATT_TILE < t_end) issue_tile(t0 + 2 * ATT_TILE, Kbuf + nb2 * ATT_TILE * QS);
			else cp_async_commit();
		}
		buf = buf == MLA_KST - 1 ? 0 : buf + 1;
		if (SK) {
			// scores, split over D: warp -> rows 32*(warp%2) .. +31, all 4 key
			// n-tiles, k-steps [kq*KS/4, (kq+1)*KS/4) of KS = D/16
			const int mp = warp & 1, kq = warp >> 1, KS = D / 16;
			const int ks0 = kq * KS / 4, ks1 = (kq + 1) * KS / 4;
			const __half *qa = Qs + (mp * 32 + (lane & 15)) * QS + (lane >> 4) * 8;
			const __half *kb = Ks + ((lane & 7) + ((lane >> 4) << 3)) * QS + ((lane >> 3) & 1) * 8;
			float c[2][4][4];
#pragma unroll
			for (int i = 0; i < 2; i++)
#pragma unroll
				for (int j = 0; j < 4; j++) c[i][j][0] = c[i][j][1] = c[i][j][2] = c[i][j][3] = 0.0f;
			for (int ks = ks0; ks < ks1; ks++) {
				const int k0 = ks * 16;
				uint32_t a0[4], a1[4], b0[4], b1[4];
				ldsm_x4(a0, qa + k0);
				ldsm_x4(a1, qa + 16 * QS + k0);
				ldsm_x4(b0, kb + k0);            // keys 0-15: n-tiles 0, 1
				ldsm_x4(b1, kb + 16 * QS + k0);  // keys 16-31: n-tiles 2, 3
				mma16816(c[0][0], a0, b0[0], b0[1]);
				mma16816(c[0][1], a0, b0[2], b0[3]);
				mma16816(c[0][2], a0, b1[0], b1[1]);
				mma16816(c[0][3], a0, b1[2], b1[3]);
				mma16816(c[1][0], a1, b0[0], b0[1]);
				mma16816(c[1][1], a1, b0[2], b0[3]);
				mma16816(c[1][2], a1, b1[0], b1[1]);
				mma16816(c[1][3], a1, b1[2], b1[3]);
			}
			float *Sq = S + kq * MLA_PR * ATT_TILE;
#pragma unroll
			for (int i = 0; i < 2; i++) {
				const int r0 = mp * 32 + i * 16 + g, r1 = r0 + 8;  // r0 % 4 == r1 % 4 == g % 4
				const int sw = (g & 3) << 3;
#pragma unroll
				for (int j = 0; j < 4; j++) {
					const int col = (j * 8 + 2 * tg) ^ sw;
					*(float2 *)(Sq + r0 * ATT_TILE + col) = make_float2(c[i][j][0], c[i][j][1]);
					*(float2 *)(Sq + r1 * ATT_TILE + col) = make_float2(c[i][j][2], c[i][j][3]);
				}
			}
		} else {
			// scores: warp -> m-tile warp/2, n-tiles 2*(warp%2) and +1 (shared A fragments)
			const int mt = warp >> 1, nb = (warp & 1) * 2;
			const int r0 = mt * 16 + g, r1 = r0 + 8;
			// ldmatrix addresses: A rows mt*16 + lane%16, k half lane/16;
			// K rows (keys) nb*8 + lane%8 (+8 for lanes >= 16), k half (lane/8)%2
			const __half *qa = Qs + (mt * 16 + (lane & 15)) * QS + (lane >> 4) * 8;
			const __half *kb = Ks + (nb * 8 + (lane & 7) + ((lane >> 4) << 3)) * QS + ((lane >> 3) & 1) * 8;
			// four accumulator chains: two n-tiles x two halves of D
			float c0[4] = {0.0f, 0.0f, 0.0f, 0.0f}, c1[4] = {0.0f, 0.0f, 0.0f, 0.0f};
			float c2[4] = {0.0f, 0.0f, 0.0f, 0.0f}, c3[4] = {0.0f, 0.0f, 0.0f, 0.0f};
			const int half = (D / 16) / 2 * 16;
			for (int k0 = 0; k0 < half; k0 += 16) {
				uint32_t a[4], b[4], a2[4], b2[4];
				ldsm_x4(a, qa + k0);
				ldsm_x4(b, kb + k0);
				ldsm_x4(a2, qa + half + k0);
				ldsm_x4(b2, kb + half + k0);
				mma16816(c0, a, b[0], b[1]);
				mma16816(c1, a, b[2], b[3]);
				mma16816(c2, a2, b2[0], b2[1]);
				mma16816(c3, a2, b2[2], b2[3]);
			}
			if (2 * half < D) {  // odd number of 16-wide steps
				uint32_t a[4], b[4];
				ldsm_x4(a, qa + 2 * half);
				ldsm_x4(b, kb + 2 * half);
				mma16816(c0, a, b[0], b[1]);
				mma16816(c1, a, b[2], b[3]);
			}
#pragma unroll
			for (int i = 0; i < 4; i++) {
				c0[i] += c2[i];
				c1[i] += c3[i];
			}
			const int n0 = min(nt, nrow[r0] - t0), n1 = min(nt, nrow[r1] - t0);  // keys of this tile each row sees
			auto store = [&](const float(&cc)[4], int col) {
				S[r0 * ATT_TILE + col] = col < n0 ? cc[0] * scale : -INFINITY;
				S[r0 * ATT_TILE + col + 1] = col + 1 < n0 ? cc[1] * scale : -INFINITY;
				S[r1 * ATT_TILE + col] = col < n1 ? cc[2] * scale : -INFINITY;
				S[r1 * ATT_TILE + col + 1] = col + 1 < n1 ? cc[3] * scale : -INFINITY;
			};
			store(c0, nb * 8 + 2 * tg);
			store(c1, (nb + 1) * 8 + 2 * tg);
		}
		__syncthreads();
		// online softmax: 4 threads per row (MLA_PR * 4 == ATT_THREADS), 8 keys each
		{
			const int r = tid >> 2, qd = tid & 3;
			float sv[8];
			if (SK) {
				const int base = 8 * (qd ^ (r & 3));  // un-swizzle: key columns 8*qd .. +7
				const int nr = min(nt, nrow[r] - t0);
#pragma unroll
				for (int i = 0; i < 8; i++) sv[i] = 0.0f;
				const int o4 = V2 ? (r & 1) * 4 : 0;  // V2: odd rows read the upper half first
#pragma unroll
				for (int kq = 0; kq < 4; kq++) {
					const float *src = S + kq * MLA_PR * ATT_TILE + r * ATT_TILE + base;
					const float4 s0 = *(const float4 *)(src + o4), s1 = *(const float4 *)(src + 4 - o4);
					sv[0] += s0.x, sv[1] += s0.y, sv[2] += s0.z, sv[3] += s0.w;
					sv[4] += s1.x, sv[5] += s1.y, sv[6] += s1.z, sv[7] += s1.w;
				}
				if (V2 && o4) {  // swap the halves back
#pragma unroll
					for (int i = 0; i < 4; i++) {
						const float tmp = sv[i];
						sv[i] = sv[i + 4];
						sv[i + 4] = tmp;
					}
				}
#pragma unroll
				for (int i = 0; i < 8; i++) sv[i] = 8 * qd + i < nr ? sv[i] * scale : -INFINITY;
			} else {
				const float4 s0 = *(const float4 *)(S + r * ATT_TILE + 8 * qd);
				const float4 s1 = *(const float4 *)(S + r * ATT_TILE + 8 * qd + 4);
				sv[0] = s0.x, sv[1] = s0.y, sv[2] = s0.z, sv[3] = s0.w;
				sv[4] = s1.x, sv[5] = s1.y, sv[6] = s1.z, sv[7] = s1.w;
			}
			float mx = sv[0];
#pragma unroll
			for (int i = 1; i < 8; i++) mx = fmaxf(mx, sv[i]);
			mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
			mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
			const float mold = mrow[r];
			float mnew = fmaxf(mold, mx);
			if (V2 && mold != -INFINITY && mx <= mold + MLA_LAZY) mnew = mold;  // lazy: keep the stale max
			float pv[8], ps = 0.0f;
#pragma unroll
			for (int i = 0; i < 8; i++) {
				pv[i] = sv[i] == -INFINITY ? 0.0f : expf(sv[i] - mnew);  // masked (also before the row's first key)
				ps += pv[i];
			}
			ps += __shfl_xor_sync(0xffffffffu, ps, 1);
			ps += __shfl_xor_sync(0xffffffffu, ps, 2);
			*(uint4 *)(P + r * PS + 8 * qd) = pf_pack8(pv);
			if (qd == 0) {  // the quad's reads of mrow/lrow precede this (shuffles above)
				// V2: an unmoved max (also a row with no key yet) scales by exactly 1
				const float a = V2 && mnew == mold ? 1.0f : mold == -INFINITY ? 0.0f : expf(mold - mnew);
				alpha[r] = a;
				lrow[r] = lrow[r] * a + ps;
				mrow[r] = mnew;
			}
		}
		__syncthreads();
		// PV: O[64 x Dv] += P[64 x 32] * V[32 x Dv]
#pragma unroll
		for (int mt = 0; mt < 4; mt++) {
			const float a0 = alpha[mt * 16 + g], a1 = alpha[mt * 16 + g + 8];
			if (V2 && !__any_sync(0xffffffffu, a0 != 1.0f || a1 != 1.0f)) continue;  // warp-uniform
#pragma unroll
			for (int j = 0; j < 8; j++) {
				acc[mt][j][0] *= a0;
				acc[mt][j][1] *= a0;
				acc[mt][j][2] *= a1;
				acc[mt][j][3] *= a1;
			}
		}
#pragma unroll
		for (int ks = 0; ks < ATT_TILE / 16; ks++) {
			uint32_t ph[4][4];
#pragma unroll
			for (int mt = 0; mt < 4; mt++) ldsm_x4(ph[mt], P + (mt * 16 + (lane & 15)) * PS + ks * 16 + (lane >> 4) * 8);
			// V fragments of two dv n-tiles per ldmatrix.trans: keys ks*16 + lane%8
			// (+8 for (lane/8)%2), dv columns n0 (+8 for lanes >= 16); columns
			// past Dv stay inside the padded row and are not used
			const __half *vk = Ks + (ks * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * QS + (lane >> 4) * 8;
#pragma unroll
			for (int jp = 0; jp < 4; jp++) {
				const int n0 = (warp * 8 + 2 * jp) * 8;
				if (n0 >= Dv) break;  // uniform per warp
				uint32_t b[4];
				ldsm_x4_trans(b, vk + n0);
#pragma unroll
				for (int mt = 0; mt < 4; mt++) mma16816(acc[mt][2 * jp], ph[mt], b[0], b[1]);
				if (n0 + 8 < Dv) {
#pragma unroll
					for (int mt = 0; mt < 4; mt++) mma16816(acc[mt][2 * jp + 1], ph[mt], b[2], b[3]);
				}
			}
		}
		// no barrier here: the next tile's first barrier orders the reuse of
		// S, P, alpha and this K buffer
	}
	cp_async_wait<0>();
#pragma unroll
	for (int mt = 0; mt < 4; mt++) {
#pragma unroll
		for (int hf = 0; hf < 2; hf++) {
			const int r = mt * 16 + g + 8 * hf;
			if (r >= R) continue;
			float *o = part_o + ((size_t)(tok0 + r / H) * n_splits + split) * H * Dv + (size_t)(r % H) * Dv;
#pragma unroll
			for (int j = 0; j < 8; j++) {
				const int col = (warp * 8 + j) * 8 + 2 * tg;
				if ((warp * 8 + j) * 8 >= Dv) break;
				if (V2) {
					*(float2 *)(o + col) = make_float2(acc[mt][j][2 * hf], acc[mt][j][2 * hf + 1]);
				} else {
					o[col] = acc[mt][j][2 * hf];
					o[col + 1] = acc[mt][j][2 * hf + 1];
				}
			}
		}
	}
	if (tid < R) {
		float *ml = ml_out(tid);
		ml[0] = mrow[tid];
		ml[1] = lrow[tid];
	}
}

#define MLA_PREFILL_ARGS                                                                                            \
	const float *__restrict__ q, long long q_stride, const __half *__restrict__ kv, long long kv_stride,            \
	    const int *__restrict__ n_kv_ptr, int capacity, int H, int D, int Dv, float scale,                         \
	    float *__restrict__ part_o, float *__restrict__ part_ml, long long q_tok_stride, int tokens
extern "C" __global__ void __launch_bounds__(ATT_THREADS, 1) mla_prefill_mma_f16(MLA_PREFILL_ARGS) {
	mla_prefill_body<false, false>(q, q_stride, kv, kv_stride, n_kv_ptr, capacity, H, D, Dv, scale, part_o, part_ml,
	                        q_tok_stride, tokens);
}
extern "C" __global__ void __launch_bounds__(ATT_THREADS, 1) mla_prefill_mma_f16_sk(MLA_PREFILL_ARGS) {
	mla_prefill_body<true, false>(q, q_stride, kv, kv_stride, n_kv_ptr, capacity, H, D, Dv, scale, part_o, part_ml,
	                              q_tok_stride, tokens);
}
extern "C" __global__ void __launch_bounds__(ATT_THREADS, 1) mla_prefill_mma_f16_sk2(MLA_PREFILL_ARGS) {
	mla_prefill_body<true, true>(q, q_stride, kv, kv_stride, n_kv_ptr, capacity, H, D, Dv, scale, part_o, part_ml,
	                             q_tok_stride, tokens);
}

// mla_combine_tokens: pass 2 for several tokens (prefill), one block per
// token (grid.x = token t, partials where MLA_TOKEN_OFFSETS puts them) over
// all H heads: out[t*out_tok_stride + h*out_stride + c] =
// sum_b exp(m_b - M) o_b[c] / sum_b exp(m_b - M) l_b, as mla_decode_combine
// computes it. mla_decode_combine's grid of H x Dv/32 blocks per token
// (163,840 blocks of 256 threads for 512 tokens) cost more than the
// attention itself in a short prefill; here each thread owns columns
// c = tid, tid + blockDim.x, ... and recomputes the split weights itself.
extern "C" __global__ void __launch_bounds__(256)
mla_combine_tokens(const float *__restrict__ part_o, const float *__restrict__ part_ml, int n_splits, int H, int Dv,
                   float *__restrict__ out, long long out_stride, long long out_tok_stride) {
	const int t = blockIdx.x;
	part_o += (size_t)t * n_splits * H * Dv;
	part_ml += (size_t)t * n_splits * H * 2;
	out += (size_t)t * out_tok_stride;
	for (int h = 0; h < H; h++) {
		float M = -INFINITY;
		for (int b = 0; b < n_splits; b++) M = fmaxf(M, part_ml[((size_t)b * H + h) * 2]);
		float L = 0.0f;
		for (int b = 0; b < n_splits; b++) {
			const float mb = part_ml[((size_t)b * H + h) * 2];
			if (mb != -INFINITY) L += expf(mb - M) * part_ml[((size_t)b * H + h) * 2 + 1];
		}
		for (int c = threadIdx.x; c < Dv; c += blockDim.x) {
			float o = 0.0f;
			for (int b = 0; b < n_splits; b++) {
				const float mb = part_ml[((size_t)b * H + h) * 2];
				if (mb != -INFINITY) o = fmaf(expf(mb - M), part_o[((size_t)b * H + h) * Dv + c], o);
			}
			out[(size_t)h * out_stride + c] = o / L;
		}
	}
}
