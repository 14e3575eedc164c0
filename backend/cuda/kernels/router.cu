// router.cu: MoE expert selection on the device (GLM-4.7-Flash / DeepSeek-V3
// "noaux_tc" gating, model spec §4.3).
#include "common.cuh"
#include <limits.h>

// For token t = blockIdx.x with logits at logits + t*logit_stride
// (n_experts values):
//   s_e   = sigmoid(logit_e)
//   sel_e = s_e + bias_e            (bias may be NULL; used only to choose)
//   E     = the k largest sel_e     (ties: lower expert index first)
//   w_j   = s_{E_j}; if norm: w_j /= max(sum_j w_j, 6.1035e-5); w_j *= scale
// ids[t*k + j] = E_j (descending sel), weights[t*k + j] = w_j.
// Block: n_experts rounded up to a multiple of 32 threads (n_experts <= 1024).
extern "C" __global__ void __launch_bounds__(1024)
router_topk_sigmoid(const float *__restrict__ logits, long long logit_stride, const float *__restrict__ bias, int n_experts,
                    int k, int norm, float scale, int *__restrict__ ids, float *__restrict__ weights) {
	__shared__ float sv[32];
	__shared__ int si[32];
	__shared__ float wsel[64];
	__shared__ int isel[64];
	const int t = blockIdx.x, e = threadIdx.x;
	const int lane = e % WARP, warp = e / WARP, nw = blockDim.x / WARP;
	float s = 0.0f, sel = -INFINITY;
	bool taken = false;
	if (e < n_experts) {
		const float l = logits[(size_t)t * logit_stride + e];
		s = 1.0f / (1.0f + expf(-l));
		sel = bias ? s + bias[e] : s;
	}
	for (int j = 0; j < k; j++) {
		float bv = sel;
		int bi = (e < n_experts && !taken) ? e : INT_MAX;
#pragma unroll
		for (int o = WARP / 2; o > 0; o >>= 1) {
			const float ov = __shfl_xor_sync(0xffffffff, bv, o);
			const int oi = __shfl_xor_sync(0xffffffff, bi, o);
			if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
		}
		if (lane == 0) { sv[warp] = bv; si[warp] = bi; }
		__syncthreads();
		if (e == 0) {
			float v = sv[0];
			int w = si[0];
			for (int i = 1; i < nw; i++)
				if (sv[i] > v || (sv[i] == v && si[i] < w)) { v = sv[i]; w = si[i]; }
			isel[j] = w == INT_MAX ? -1 : w;  // -1: every remaining score was NaN
		}
		__syncthreads();
		if (isel[j] < 0 && e == 0) wsel[j] = __int_as_float(0x7fc00000);
		if (e == isel[j]) {
			wsel[j] = s;
			sel = -INFINITY;
			taken = true;  // never chosen again, even when all others are -inf
		}
		__syncthreads();
	}
	if (e == 0) {
		float sum = 0.0f;
		for (int j = 0; j < k; j++) sum += wsel[j];
		const float inv = norm ? 1.0f / fmaxf(sum, 6.1035e-5f) : 1.0f;
		for (int j = 0; j < k; j++) {
			ids[(size_t)t * k + j] = isel[j];
			weights[(size_t)t * k + j] = wsel[j] * inv * scale;
		}
	}
}
