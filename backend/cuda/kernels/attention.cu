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
extern "C" __global__ void __launch_bounds__(ATT_THREADS)
mla_decode_partial(const float *__restrict__ q, long long q_stride, const __half *__restrict__ kv, long long kv_stride,
                   const int *__restrict__ n_kv_ptr, int capacity, int H, int D, int Dv, float scale, float *__restrict__ part_o,
                   float *__restrict__ part_ml) {
	extern __shared__ float smem[];
	float *Qs = smem;
	float *S = Qs + H * D;
	float *alpha = S + H * ATT_TILE;
	float *mrow = alpha + ATT_MAXH;
	float *lrow = mrow + ATT_MAXH;
	__half2 *Ks = (__half2 *)(lrow + ATT_MAXH);
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
			Ks[r * KSTR + c] = ((const __half2 *)(kv + (size_t)(t0 + r) * kv_stride))[c];
		}
		__syncthreads();
		// scores: thread handles (h, t) pairs; lanes of a warp share h
		for (int i = tid; i < H * ATT_TILE; i += ATT_THREADS) {
			const int h = i / ATT_TILE, t = i % ATT_TILE;
			float s = -INFINITY;
			if (t < nt) {
				const float2 *qh = (const float2 *)(Qs + h * D);
				const __half2 *kr = Ks + t * KSTR;
				float a = 0.0f;
				for (int c = 0; c < D2; c++) {
					const float2 kf = __half22float2(kr[c]);
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
				const float2 v = __half22float2(Ks[t * KSTR + c2]);
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

// Pass 2: out[h*out_stride + c] = sum_b exp(m_b - M) o_b[c] / sum_b exp(m_b - M) l_b.
// Grid: H blocks of 256 threads; dynamic shared memory: n_splits floats.
extern "C" __global__ void __launch_bounds__(256)
mla_decode_combine(const float *__restrict__ part_o, const float *__restrict__ part_ml, int n_splits, int H, int Dv,
                   float *__restrict__ out, long long out_stride) {
	extern __shared__ float wsh[];
	__shared__ float scratch[32];
	const int h = blockIdx.x, tid = threadIdx.x;
	float m = -INFINITY;
	for (int b = tid; b < n_splits; b += blockDim.x) m = fmaxf(m, part_ml[((size_t)b * H + h) * 2]);
	m = warp_max(m);
	if (tid % WARP == 0) scratch[tid / WARP] = m;
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
	const float inv = 1.0f / L;
	for (int c = tid; c < Dv; c += blockDim.x) {
		float o = 0.0f;
		for (int b = 0; b < n_splits; b++) {
			const float wb = wsh[b];
			if (wb != 0.0f) o = fmaf(wb, part_o[((size_t)b * H + h) * Dv + c], o);
		}
		out[(size_t)h * out_stride + c] = o * inv;
	}
}
