// gemm.cu: prefill matrix products on tensor cores.
//
// A prefill pass multiplies many token rows by each weight. Weights are
// dequantised to f16 (dequant_f16_*, one weight tensor at a time into a
// scratch), activations are converted (and, for the routed experts,
// gathered into expert order) to f16 (to_f16_rows), and gemm_f16 computes
// Y = A·Wᵀ with mma.sync m16n8k16 (f16 inputs, f32 accumulation), grouped
// over experts or heads.
#include "common.cuh"

// ---- dequantisation of 8 consecutive values ----
// deq8<WT>(row, k, v): values k..k+7 (k % 8 == 0) of a row of weight type
// WT starting at `row` (rows made of whole blocks; for Q4_K the row must be
// 16-byte aligned, which 144-byte blocks keep when the tensor is). Used by
// the dequant_f16_* kernels and, fused into the tile loads, by gemm_w_*.

enum { WT_F16 = 0, WT_Q4K, WT_Q6K, WT_Q5_0, WT_Q8_0, WT_F32, WT_BF16, WT_MMFP4 };

static __device__ __forceinline__ float ld_f16(const unsigned char *p) {
	const uint16_t u = (uint16_t)p[0] | ((uint16_t)p[1] << 8);
	return __half2float(__ushort_as_half(u));
}

static __device__ __forceinline__ uint32_t sel3(int i, uint32_t a, uint32_t b, uint32_t c) {
	return i == 0 ? a : (i == 1 ? b : c);
}

template <int WT>
static __device__ __forceinline__ void deq8(const unsigned char *__restrict__ row, long long k, float *v) {
	if constexpr (WT == WT_Q4K) {
		// 144-byte blocks of 256: d, dmin (f16), scales[12] (6-bit packed), qs[128]
		const unsigned char *b = row + (k / 256) * 144;
		const int t = (int)((k % 256) / 8), sb = t / 4;
		const uint32_t dd = *(const uint32_t *)b;
		const uint32_t s0 = *(const uint32_t *)(b + 4), s1 = *(const uint32_t *)(b + 8), s2 = *(const uint32_t *)(b + 12);
#define SCB(j) ((sel3((j) >> 2, s0, s1, s2) >> (8 * ((j) & 3))) & 0xff)
		int sc, m;
		if (sb < 4) {
			sc = SCB(sb) & 63;
			m = SCB(sb + 4) & 63;
		} else {
			sc = (SCB(sb + 4) & 0xF) | ((SCB(sb - 4) >> 6) << 4);
			m = (SCB(sb + 4) >> 4) | ((SCB(sb) >> 6) << 4);
		}
#undef SCB
		const float d = __half2float(__ushort_as_half((unsigned short)(dd & 0xffff)));
		const float dmin = __half2float(__ushort_as_half((unsigned short)(dd >> 16)));
		const float d1 = d * (float)sc, m1 = dmin * (float)m;
		const uint2 qv = *(const uint2 *)(b + 16 + 32 * (sb / 2) + (t % 4) * 8);
		const int shift = (sb % 2) * 4;
#pragma unroll
		for (int l = 0; l < 8; l++) {
			const uint32_t byte = ((l < 4 ? qv.x : qv.y) >> (8 * (l & 3))) & 0xff;
			v[l] = d1 * (float)((byte >> shift) & 0xF) - m1;
		}
	} else if constexpr (WT == WT_Q6K) {
		// 210-byte blocks of 256: ql[128], qh[64], scales[16] int8, d
		const unsigned char *b = row + (k / 256) * 210;
		const int t = (int)((k % 256) / 8), s = t / 4, n = s / 4, qq = s % 4, l0 = (t % 4) * 8;
		const unsigned char *ql = b + 64 * n + (qq & 1) * 32 + l0;
		const unsigned char *qh = b + 128 + 32 * n + l0;
		const float dsc = ld_f16(b + 208) * (float)((const signed char *)(b + 192))[8 * n + 2 * qq + l0 / 16];
		const int nshift = (qq >> 1) * 4, hshift = 2 * qq;
#pragma unroll
		for (int l = 0; l < 8; l++) v[l] = dsc * (float)((((ql[l] >> nshift) & 0xF) | (((qh[l] >> hshift) & 3) << 4)) - 32);
	} else if constexpr (WT == WT_Q5_0) {
		// 22-byte blocks of 32: d, qh[4], qs[16]; value j: low bits qs[j] & 0xF
		// (j < 16) or qs[j-16] >> 4, high bit qh bit j
		const unsigned char *b = row + (k / 32) * 22;
		const int j0 = (int)(k % 32);
		const float d = ld_f16(b);
		const uint32_t qh = (uint32_t)b[2] | ((uint32_t)b[3] << 8) | ((uint32_t)b[4] << 16) | ((uint32_t)b[5] << 24);
		const unsigned char *qs = b + 6;
#pragma unroll
		for (int l = 0; l < 8; l++) {
			const int j = j0 + l;
			const int lo = j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
			const int hi = (int)((qh >> j) & 1u) << 4;  // int arithmetic: (lo | hi) - 16 may be negative
			v[l] = d * (float)((lo | hi) - 16);
		}
	} else if constexpr (WT == WT_Q8_0) {
		const unsigned char *b = row + (k / 32) * 34;
		const int j0 = (int)(k % 32);
		const float d = ld_f16(b);
#pragma unroll
		for (int l = 0; l < 8; l++) v[l] = d * (float)(signed char)b[2 + j0 + l];
	} else if constexpr (WT == WT_F32) {
		const float *x = (const float *)row + k;
#pragma unroll
		for (int l = 0; l < 8; l++) v[l] = x[l];
	} else if constexpr (WT == WT_BF16) {
		const uint16_t *x = (const uint16_t *)row + k;
#pragma unroll
		for (int l = 0; l < 8; l++) v[l] = __uint_as_float((uint32_t)x[l] << 16);
	} else {  // WT_F16
		const __half *x = (const __half *)row + k;
#pragma unroll
		for (int l = 0; l < 8; l++) v[l] = __half2float(x[l]);
	}
}

// fp4_deq8: the 8 MMFP4 values held by 8 code bytes c (one half of a
// 16-byte sub-block: the low nibbles, or with hi the high nibbles; see
// matvec.cu for the layout) with fp16 group scale sc (raw bits).
static __device__ __forceinline__ void fp4_deq8(uint2 c, unsigned short sc, bool hi, float *v) {
	const float half = 0.5f * __half2float(__ushort_as_half(sc));
	const int2 wa = fp4_kv2x8((int)c.x), wb = fp4_kv2x8((int)c.y);
	const int a = hi ? wa.y : wa.x, b = hi ? wb.y : wb.x;
#pragma unroll
	for (int l = 0; l < 4; l++) {
		v[l] = half * (float)(signed char)(a >> (8 * l));
		v[4 + l] = half * (float)(signed char)(b >> (8 * l));
	}
}

static __device__ __forceinline__ uint4 pack8(const float *v) {
	__half2 h[4];
#pragma unroll
	for (int i = 0; i < 4; i++) h[i] = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
	uint4 u;
	u.x = *(uint32_t *)&h[0];
	u.y = *(uint32_t *)&h[1];
	u.z = *(uint32_t *)&h[2];
	u.w = *(uint32_t *)&h[3];
	return u;
}

// ---- dequantisation to f16 (one thread per 8 consecutive values) ----
// out holds the tensor's values in row-major order; n8 = values / 8;
// consecutive threads write consecutive 16-byte chunks (coalesced).
#define DEQ_KERNEL(name, WT)                                                                               \
	extern "C" __global__ void name(const unsigned char *__restrict__ w, __half *__restrict__ out, long long n8) { \
		const long long i8 = (long long)blockIdx.x * blockDim.x + threadIdx.x;                            \
		if (i8 >= n8) return;                                                                             \
		float v[8];                                                                                       \
		deq8<WT>(w, i8 * 8, v);                                                                           \
		*(uint4 *)(out + i8 * 8) = pack8(v);                                                              \
	}

DEQ_KERNEL(dequant_f16_q4_K, WT_Q4K)
DEQ_KERNEL(dequant_f16_q6_K, WT_Q6K)
DEQ_KERNEL(dequant_f16_q5_0, WT_Q5_0)
DEQ_KERNEL(dequant_f16_q8_0, WT_Q8_0)
DEQ_KERNEL(dequant_f16_f32, WT_F32)
DEQ_KERNEL(dequant_f16_f16, WT_F16)
DEQ_KERNEL(dequant_f16_bf16, WT_BF16)

// dst row r (cols f16 at dst + r*dst_stride) = f16(src row (idx ? idx[r] : r) / div
// at src + row*src_stride). Grid: (ceil(cols/256), rows).
extern "C" __global__ void to_f16_rows(const float *__restrict__ src, long long src_stride, const int *__restrict__ idx,
                                       int div, __half *__restrict__ dst, long long dst_stride, int cols) {
	const int r = blockIdx.y;
	const int c = blockIdx.x * blockDim.x + threadIdx.x;
	if (c >= cols) return;
	const int s = (idx ? idx[r] : r) / div;
	dst[(size_t)r * dst_stride + c] = __float2half_rn(src[(size_t)s * src_stride + c]);
}

// ---- grouped GEMM on tensor cores ----
//
// Row tiles: without a tile list, block (x, y, z) takes group z's rows
// [row_off[z] + 64y, ...); with one (tiles != NULL, row_off required, grid.z
// = 1), block y takes tile y of tiles = {count, (group, first row) x count}
// as written by expert_sort, and blocks y >= count return at once. The tile
// list lets the routed-expert GEMMs run with no host round trip.
//
// For group g = blockIdx.z (an expert or a head):
//   rows i in [row_off[g], row_off[g+1]) (or [0, n_rows) when row_off is NULL),
//   Y[g*y_group_stride + yr(i)*ldy + m] = sum_k A[g*a_group_stride + i*lda + k] * W[g*w_group_stride + m*K + k]
//   for m < M, with yr(i) = y_idx ? y_idx[i] : i.
// A and W are f16, Y f32. Needs K % 32 == 0, lda, a_group_stride, K and
// w_group_stride multiples of 8 and 16-byte aligned A and W (checked in Go).
// Block: 128 threads (2x2 warps), tile 64 rows x 64 outputs, K step 32; grid:
// (ceil(M/64), ceil(max rows per group / 64), groups).

#define GM_BM 64
#define GM_BN 64
#define GM_BK 32
#define GM_LD (GM_BK + 8)  // padded shared row (halves): conflict-free fragment loads, 16-byte rows

// gm_tile finds the block's group, first row and group end (see above);
// false: the block has no rows.
static __device__ __forceinline__ bool gm_tile(const int *__restrict__ row_off, int n_rows, const int *__restrict__ tiles,
                                               int &grp, int &r0, int &r_end) {
	if (tiles) {
		const int t = blockIdx.y;
		if (t >= tiles[0]) return false;
		grp = tiles[1 + 2 * t];
		r0 = tiles[2 + 2 * t];
		r_end = row_off[grp + 1];
		return r0 < r_end;
	}
	grp = blockIdx.z;
	int r_begin = 0;
	r_end = n_rows;
	if (row_off) {
		r_begin = row_off[grp];
		r_end = row_off[grp + 1];
	}
	r0 = r_begin + blockIdx.y * GM_BM;
	return r0 < r_end;
}

static __device__ __forceinline__ uint32_t gm_ld_h2(const __half *p) { return *(const uint32_t *)p; }

static __device__ __forceinline__ void gm_mma(float *c, const uint32_t *a, uint32_t b0, uint32_t b1) {
	asm volatile(
	    "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
	    : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
	    : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// W row m of group g starts at W + g*w_group_bytes + m*w_row_bytes and holds
// K values of type WT, dequantised to f16 as the tile is loaded (WT_F16:
// plain 16-byte loads). WT_MMFP4: group g is one slab, w_row_bytes = K/2
// (the code bytes of a row) and the rows' scales follow the M code rows.
// The three GEMM kernels below share one block layout: 128 threads, a 64x64
// output tile, warp w computing rows wm = (w/2)*32.. and columns
// wn = (w%2)*32.. of it as 2x4 m16n8 fragments (acc[mt][nt]); lane = 4g + tg.

// gm_zero clears a warp's accumulators.
static __device__ __forceinline__ void gm_zero(float (&acc)[2][4][4]) {
#pragma unroll
	for (int i = 0; i < 2; i++)
#pragma unroll
		for (int j = 0; j < 4; j++) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.0f;
}

// gm_step multiplies one K step of BK values held in shared memory: as
// holds the tile's 64 A rows, ws its 64 W rows, LD halves apart.
template <int BK, int LD>
static __device__ __forceinline__ void gm_step(float (&acc)[2][4][4], const __half *as, const __half *ws, int wm, int wn,
                                               int g, int tg) {
#pragma unroll
	for (int kk = 0; kk < BK; kk += 16) {
		uint32_t a[2][4];
#pragma unroll
		for (int mt = 0; mt < 2; mt++) {
			const __half *ap = as + (wm + mt * 16 + g) * LD + kk + 2 * tg;
			a[mt][0] = gm_ld_h2(ap);
			a[mt][1] = gm_ld_h2(ap + 8 * LD);
			a[mt][2] = gm_ld_h2(ap + 8);
			a[mt][3] = gm_ld_h2(ap + 8 * LD + 8);
		}
#pragma unroll
		for (int nt = 0; nt < 4; nt++) {
			const __half *bp = ws + (wn + nt * 8 + g) * LD + kk + 2 * tg;
			const uint32_t b0 = gm_ld_h2(bp), b1 = gm_ld_h2(bp + 8);
#pragma unroll
			for (int mt = 0; mt < 2; mt++) gm_mma(acc[mt][nt], a[mt], b0, b1);
		}
	}
}

// gm_store writes a warp's accumulators: tile row r (r0 <= r < r_end) to Y
// row y_idx[r] (or r), columns m0.. below M, ldy floats apart.
static __device__ __forceinline__ void gm_store(const float (&acc)[2][4][4], float *__restrict__ Y, long long ldy,
                                                const int *__restrict__ y_idx, int r0, int r_end, int m0, int M, int wm,
                                                int wn, int g, int tg) {
#pragma unroll
	for (int mt = 0; mt < 2; mt++) {
#pragma unroll
		for (int nt = 0; nt < 4; nt++) {
			const int col = m0 + wn + nt * 8 + 2 * tg;
#pragma unroll
			for (int hf = 0; hf < 2; hf++) {
				const int r = r0 + wm + mt * 16 + g + hf * 8;
				if (r < r_end) {
					const int yr = y_idx ? y_idx[r] : r;
					float *yp = Y + (size_t)yr * ldy + col;
					if (col < M) yp[0] = acc[mt][nt][2 * hf];
					if (col + 1 < M) yp[1] = acc[mt][nt][2 * hf + 1];
				}
			}
		}
	}
}

template <int WT>
static __device__ __forceinline__ void gemm_body(const __half *__restrict__ A, long long lda, long long a_group_stride,
                                                 const int *__restrict__ row_off, int n_rows,
                                                 const int *__restrict__ tiles, const unsigned char *__restrict__ W, long long w_row_bytes,
                                                 long long w_group_bytes, float *__restrict__ Y, long long ldy,
                                                 long long y_group_stride, const int *__restrict__ y_idx, int M, int K) {
	__shared__ __align__(16) __half As[2][GM_BM * GM_LD];
	__shared__ __align__(16) __half Ws[2][GM_BN * GM_LD];
	int grp, r0, r_end;
	if (!gm_tile(row_off, n_rows, tiles, grp, r0, r_end)) return;  // whole block
	const int m0 = blockIdx.x * GM_BN;
	A += (size_t)grp * a_group_stride;
	W += (size_t)grp * w_group_bytes;
	Y += (size_t)grp * y_group_stride;
	const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
	const int g = lane >> 2, tg = lane & 3;
	const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;

	float acc[2][4][4];
	gm_zero(acc);

	// Each thread moves 2 x 16 bytes of A and of W per K step. MMFP4 keeps
	// its raw codes and scale in registers (rc, rs) through the mma and
	// decodes them in stash, so the loads are in flight during the mma.
	uint4 ra[2], rw[2];
	uint2 rc[2];
	unsigned short rs[2];
	auto fetch = [&](int k0) {
#pragma unroll
		for (int it = 0; it < 2; it++) {
			const int idx = tid + it * 128, row = idx >> 2, c8 = (idx & 3) * 8;
			const int ar = r0 + row, wr = m0 + row;
			ra[it] = ar < r_end ? *(const uint4 *)(A + (size_t)ar * lda + k0 + c8) : make_uint4(0, 0, 0, 0);
			if (wr < M) {
				if constexpr (WT == WT_F16) {
					rw[it] = *(const uint4 *)(W + (size_t)wr * w_row_bytes + 2 * (size_t)(k0 + c8));
				} else if constexpr (WT == WT_MMFP4) {
					// GM_BK = 32 = one sub-block (16 code bytes) per row and step:
					// c8 0/8 take code bytes 0-7/8-15 (low nibbles), c8 16/24 the
					// same bytes' high nibbles. w_row_bytes = K/2; the group's
					// scales follow its M code rows.
					const int k = k0 + c8;
					rc[it] = *(const uint2 *)(W + (size_t)wr * w_row_bytes + (k / 32) * 16 + (c8 & 8));
					rs[it] = *(const unsigned short *)(W + (size_t)M * w_row_bytes + (size_t)wr * (K / 64) + 2 * (k / 128));
				} else {
					float v[8];
					deq8<WT>(W + (size_t)wr * w_row_bytes, k0 + c8, v);
					rw[it] = pack8(v);
				}
			} else {
				rw[it] = make_uint4(0, 0, 0, 0);
				if constexpr (WT == WT_MMFP4) rc[it] = make_uint2(0, 0), rs[it] = 0;
			}
		}
	};
	auto stash = [&](int buf) {
#pragma unroll
		for (int it = 0; it < 2; it++) {
			const int idx = tid + it * 128, row = idx >> 2, c8 = (idx & 3) * 8;
			if constexpr (WT == WT_MMFP4) {
				float v[8];
				fp4_deq8(rc[it], rs[it], c8 >= 16, v);
				rw[it] = pack8(v);
			}
			*(uint4 *)(As[buf] + row * GM_LD + c8) = ra[it];
			*(uint4 *)(Ws[buf] + row * GM_LD + c8) = rw[it];
		}
	};
	fetch(0);
	stash(0);
	__syncthreads();
	int buf = 0;
	for (int k0 = 0; k0 < K; k0 += GM_BK) {
		const bool more = k0 + GM_BK < K;
		if (more) fetch(k0 + GM_BK);  // global loads in flight during the mma below
		const __half *as = As[buf], *ws = Ws[buf];
		gm_step<GM_BK, GM_LD>(acc, as, ws, wm, wn, g, tg);
		if (more) {
			stash(buf ^ 1);  // the other buffer: nobody reads it during this step
			__syncthreads();
			buf ^= 1;
		}
	}
	gm_store(acc, Y, ldy, y_idx, r0, r_end, m0, M, wm, wn, g, tg);
}

static __device__ __forceinline__ void gm_cp16(void *smem, const void *gmem, int src_bytes) {
	const unsigned sa = (unsigned)__cvta_generic_to_shared(smem);
	asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(sa), "l"(gmem), "r"(src_bytes));
}
static __device__ __forceinline__ void gm_cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
static __device__ __forceinline__ void gm_cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// gemm_f16: both operands f16, so the tiles stream straight into shared
// memory with cp.async, GM_STAGES K steps in flight (the register-staged
// gemm_body keeps only one, which left the loads' latency exposed when a
// GEMM has few blocks per SM). Same tile shape, fragments and epilogue as
// gemm_body.
#define GM_STAGES 4
extern "C" __global__ void __launch_bounds__(128)
gemm_f16(const __half *__restrict__ A, long long lda, long long a_group_stride, const int *__restrict__ row_off, int n_rows,
         const int *__restrict__ tiles, const __half *__restrict__ W, long long w_group_stride, float *__restrict__ Y, long long ldy,
         long long y_group_stride, const int *__restrict__ y_idx, int M, int K) {
	__shared__ __align__(16) __half As[GM_STAGES][GM_BM * GM_LD];
	__shared__ __align__(16) __half Ws[GM_STAGES][GM_BN * GM_LD];
	int grp, r0, r_end;
	if (!gm_tile(row_off, n_rows, tiles, grp, r0, r_end)) return;
	const int m0 = blockIdx.x * GM_BN;
	A += (size_t)grp * a_group_stride;
	W += (size_t)grp * w_group_stride;
	Y += (size_t)grp * y_group_stride;
	const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
	const int g = lane >> 2, tg = lane & 3;
	const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;

	float acc[2][4][4];
	gm_zero(acc);

	// Each thread copies 2 x 16 bytes of A and of W per K step; rows past
	// the end are zero-filled (source size 0, address kept in bounds).
	auto issue = [&](int st, int k0) {
#pragma unroll
		for (int it = 0; it < 2; it++) {
			const int idx = tid + it * 128, row = idx >> 2, c8 = (idx & 3) * 8;
			const int ar = r0 + row, wr = m0 + row;
			const bool aok = ar < r_end, wok = wr < M;
			gm_cp16(As[st] + row * GM_LD + c8, A + (size_t)(aok ? ar : r0) * lda + k0 + c8, aok ? 16 : 0);
			gm_cp16(Ws[st] + row * GM_LD + c8, W + (size_t)(wok ? wr : 0) * K + k0 + c8, wok ? 16 : 0);
		}
	};
	const int KT = K / GM_BK;
#pragma unroll
	for (int st = 0; st < GM_STAGES - 1; st++) {
		if (st < KT) issue(st, st * GM_BK);
		gm_cp_commit();
	}
	for (int kt = 0; kt < KT; kt++) {
		gm_cp_wait<GM_STAGES - 2>();  // step kt landed (this thread's copies)
		__syncthreads();              // everyone's copies; everyone is done with step kt-1's buffer
		const int nk = kt + GM_STAGES - 1;
		if (nk < KT) issue(nk % GM_STAGES, nk * GM_BK);
		gm_cp_commit();  // possibly empty: keeps the group count uniform
		const __half *as = As[kt % GM_STAGES], *ws = Ws[kt % GM_STAGES];
		gm_step<GM_BK, GM_LD>(acc, as, ws, wm, wn, g, tg);
	}
	gm_cp_wait<0>();
	gm_store(acc, Y, ldy, y_idx, r0, r_end, m0, M, wm, wn, g, tg);
}

// gemm_w_*: gemm_f16 with W in its GGUF type (row bytes and group stride in
// bytes), dequantised in the tile loader: no f16 copy of the weight.
#define GEMMW_KERNEL(name, WT)                                                                                          \
	extern "C" __global__ void __launch_bounds__(128)                                                                  \
	name(const __half *__restrict__ A, long long lda, long long a_group_stride, const int *__restrict__ row_off,          \
	     int n_rows, const int *__restrict__ tiles, const unsigned char *__restrict__ W, long long w_row_bytes,          \
	     long long w_group_bytes,                                                                                      \
	     float *__restrict__ Y, long long ldy, long long y_group_stride, const int *__restrict__ y_idx, int M, int K) { \
		gemm_body<WT>(A, lda, a_group_stride, row_off, n_rows, tiles, W, w_row_bytes, w_group_bytes, Y, ldy,            \
		              y_group_stride,                                                                                  \
		              y_idx, M, K);                                                                                     \
	}

GEMMW_KERNEL(gemm_w_q4_K, WT_Q4K)
GEMMW_KERNEL(gemm_w_q6_K, WT_Q6K)
GEMMW_KERNEL(gemm_w_q5_0, WT_Q5_0)
GEMMW_KERNEL(gemm_w_q8_0, WT_Q8_0)
GEMMW_KERNEL(gemm_w_f32, WT_F32)
GEMMW_KERNEL(gemm_w_bf16, WT_BF16)
GEMMW_KERNEL(gemm_w_f16, WT_F16)
GEMMW_KERNEL(gemm_w_mmfp4, WT_MMFP4)

// ---- Q4_K GEMM with the dequantisation in the tile loader ----
//
// gemm_q4k: the product of gemm_w_q4_K (same arguments, same result) with a
// loader built for Q4_K: K steps of 64 values, i.e. two sub-blocks sharing
// one 32-byte run of 4-bit codes. Per step each of 128 threads loads the
// 16-byte block header (d, dmin, packed scales) and 16 bytes of codes of
// one weight row (2 threads per row) into registers before the tensor-core
// work of the current step, and decodes them (32 values) into the shared f16
// tile only after it, so the loads are in flight during the mma; the A tile
// (64 rows x 64 f16) moves the same way. Needs W, w_row_bytes and
// w_group_bytes 16-byte aligned (Q4_K rows of whole 144-byte blocks are).

#define GQ_BK 64
#define GQ_LD (GQ_BK + 8)  // padded shared row (halves)

// q4k_sm: 6-bit scale and min of sub-block sb from the packed scales s0..s2.
static __device__ __forceinline__ void q4k_sm(int sb, uint32_t s0, uint32_t s1, uint32_t s2, int &sc, int &m) {
#define SCB(j) ((sel3((j) >> 2, s0, s1, s2) >> (8 * ((j) & 3))) & 0xff)
	if (sb < 4) {
		sc = SCB(sb) & 63;
		m = SCB(sb + 4) & 63;
	} else {
		sc = (SCB(sb + 4) & 0xF) | ((SCB(sb - 4) >> 6) << 4);
		m = (SCB(sb + 4) >> 4) | ((SCB(sb) >> 6) << 4);
	}
#undef SCB
}

extern "C" __global__ void __launch_bounds__(128)
gemm_q4k(const __half *__restrict__ A, long long lda, long long a_group_stride, const int *__restrict__ row_off,
         int n_rows, const int *__restrict__ tiles, const unsigned char *__restrict__ W, long long w_row_bytes,
         long long w_group_bytes, float *__restrict__ Y, long long ldy, long long y_group_stride,
         const int *__restrict__ y_idx, int M, int K) {
	__shared__ __align__(16) __half As[2][GM_BM * GQ_LD];
	__shared__ __align__(16) __half Ws[2][GM_BN * GQ_LD];
	int grp, r0, r_end;
	if (!gm_tile(row_off, n_rows, tiles, grp, r0, r_end)) return;
	const int m0 = blockIdx.x * GM_BN;
	A += (size_t)grp * a_group_stride;
	W += (size_t)grp * w_group_bytes;
	Y += (size_t)grp * y_group_stride;
	const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
	const int g = lane >> 2, tg = lane & 3;
	const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
	const int wrow = tid >> 1, wh = tid & 1;  // W row of the tile and which 16 code bytes
	const bool wok = m0 + wrow < M;
	const unsigned char *wp = W + (size_t)(wok ? m0 + wrow : 0) * w_row_bytes;

	float acc[2][4][4];
	gm_zero(acc);

	uint4 ra[4], rh, rq;
	auto fetch = [&](int k0) {
#pragma unroll
		for (int it = 0; it < 4; it++) {
			const int idx = tid + it * 128, row = idx >> 3, c8 = (idx & 7) * 8;
			const int ar = r0 + row;
			ra[it] = ar < r_end ? *(const uint4 *)(A + (size_t)ar * lda + k0 + c8) : make_uint4(0, 0, 0, 0);
		}
		if (wok) {
			const unsigned char *b = wp + (size_t)(k0 / 256) * 144;
			rh = *(const uint4 *)b;
			rq = *(const uint4 *)(b + 16 + 32 * ((k0 % 256) / 64) + 16 * wh);
		}
	};
	auto stash = [&](int buf, int k0) {
#pragma unroll
		for (int it = 0; it < 4; it++) {
			const int idx = tid + it * 128, row = idx >> 3, c8 = (idx & 7) * 8;
			*(uint4 *)(As[buf] + row * GQ_LD + c8) = ra[it];
		}
		__half *ws = Ws[buf] + wrow * GQ_LD + 16 * wh;
		if (!wok) {
			const uint4 z = make_uint4(0, 0, 0, 0);
			*(uint4 *)(ws) = z;
			*(uint4 *)(ws + 8) = z;
			*(uint4 *)(ws + 32) = z;
			*(uint4 *)(ws + 40) = z;
			return;
		}
		const int j = (k0 % 256) / 64;  // sub-blocks 2j (low nibbles) and 2j+1 (high nibbles)
		int sc0, m0s, sc1, m1s;
		q4k_sm(2 * j, rh.y, rh.z, rh.w, sc0, m0s);
		q4k_sm(2 * j + 1, rh.y, rh.z, rh.w, sc1, m1s);
		const float d = __half2float(__ushort_as_half((unsigned short)(rh.x & 0xffff)));
		const float dmin = __half2float(__ushort_as_half((unsigned short)(rh.x >> 16)));
		const float dl = d * (float)sc0, ml = dmin * (float)m0s;
		const float dh = d * (float)sc1, mh = dmin * (float)m1s;
		const uint32_t q[4] = {rq.x, rq.y, rq.z, rq.w};
		float lo[16], hi[16];
#pragma unroll
		for (int i = 0; i < 16; i++) {
			const uint32_t byte = (q[i >> 2] >> (8 * (i & 3))) & 0xff;
			lo[i] = dl * (float)(byte & 0xF) - ml;
			hi[i] = dh * (float)(byte >> 4) - mh;
		}
		*(uint4 *)(ws) = pack8(lo);
		*(uint4 *)(ws + 8) = pack8(lo + 8);
		*(uint4 *)(ws + 32) = pack8(hi);
		*(uint4 *)(ws + 40) = pack8(hi + 8);
	};
	fetch(0);
	stash(0, 0);
	__syncthreads();
	int buf = 0;
	for (int k0 = 0; k0 < K; k0 += GQ_BK) {
		const bool more = k0 + GQ_BK < K;
		if (more) fetch(k0 + GQ_BK);  // in flight during the mma below
		const __half *as = As[buf], *ws = Ws[buf];
		gm_step<GQ_BK, GQ_LD>(acc, as, ws, wm, wn, g, tg);
		if (more) {
			stash(buf ^ 1, k0 + GQ_BK);
			__syncthreads();
			buf ^= 1;
		}
	}
	gm_store(acc, Y, ldy, y_idx, r0, r_end, m0, M, wm, wn, g, tg);
}

// ---- routed slots grouped by expert on the device ----
//
// expert_sort: slot s < n_slots chose expert ids[s] (an id outside
// [0, n_exp) counts as expert 0; the router never writes one). Writes
// offs[e] = first position of expert e's slots (offs[n_exp] = n_slots),
// perm[offs[e] .. offs[e+1]) = those slots (in no particular order), and the
// 64-row tile list of gemm_*: tiles[0] = count, tiles[1+2t], tiles[2+2t] =
// (expert, first position) of tile t; at most ceil(n_slots/64) + n_exp tiles.
// One block of 1024 threads; dynamic shared memory 2*n_exp ints.
extern "C" __global__ void __launch_bounds__(1024)
expert_sort(const int *__restrict__ ids, int n_slots, int n_exp, int *__restrict__ perm, int *__restrict__ offs,
            int *__restrict__ tiles) {
	extern __shared__ int es_sm[];
	int *cnt = es_sm, *pos = es_sm + n_exp;
	for (int e = threadIdx.x; e < n_exp; e += blockDim.x) cnt[e] = 0;
	__syncthreads();
	for (int s = threadIdx.x; s < n_slots; s += blockDim.x) {
		const int e = ids[s];
		atomicAdd(&cnt[(e < 0 || e >= n_exp) ? 0 : e], 1);
	}
	__syncthreads();
	if (threadIdx.x == 0) {
		int o = 0, t = 0;
		for (int e = 0; e < n_exp; e++) {
			const int c = cnt[e];
			offs[e] = o;
			pos[e] = o;
			for (int r = 0; r < c; r += GM_BM) {
				tiles[1 + 2 * t] = e;
				tiles[2 + 2 * t] = o + r;
				t++;
			}
			o += c;
		}
		offs[n_exp] = o;
		tiles[0] = t;
	}
	__syncthreads();
	for (int s = threadIdx.x; s < n_slots; s += blockDim.x) {
		int e = ids[s];
		e = (e < 0 || e >= n_exp) ? 0 : e;
		perm[atomicAdd(&pos[e], 1)] = s;
	}
}
