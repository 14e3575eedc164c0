// Package cuda runs GLM-4.7-Flash kernels on NVIDIA GPUs through the CUDA
// driver API, loaded at run time.
//
// # Building
//
// Nothing from the CUDA toolkit is needed to build or to run. On linux with
// cgo, driver_cgo.go dlopens "libcuda.so.1" (shipped with the NVIDIA driver)
// and "libnvidia-ml.so.1" (NVML, optional), declares its own minimal typedefs
// and calls the driver through small C trampolines. Everywhere else
// driver_stub.go provides the same functions returning ErrNoDevice, so
// `go build ./...` and `go vet ./...` work with CGO_ENABLED=0 and on any OS.
//
// The kernels live in kernels/*.cu. tools/cuda/build_kernels.sh compiles them
// with nvcc (on a machine that has it) into kernels/kernels.fatbin, which is
// committed and embedded with go:embed; kernels/kernels.sum holds the SHA-256
// of the sources the fatbin was built from, and an ordinary test fails with
// "stale fatbin" when the sources no longer match. The environment variable
// GLMRUN_CUDA_FATBIN names a fatbin file that replaces the embedded one (used
// to test freshly built kernels without rebuilding the Go binary).
//
// # Threading model
//
// A CUDA context is current per OS thread, and goroutines migrate between
// threads. A Device therefore owns one goroutine that calls
// runtime.LockOSThread, makes the device's primary context current once, and
// then executes submitted work in order. All driver calls happen on that
// goroutine:
//
//   - Device.Do(fn) runs fn(ctx) on the owner goroutine and returns its error.
//     The *Ctx handed to fn is valid only during that call; its methods are the
//     direct (channel-free) driver operations and kernel launchers. Do is
//     safe for concurrent use: calls are serialised.
//   - Convenience methods on Device (Alloc, Free, Upload, Download, Sync) are
//     each one Do round trip. Never call Device methods from inside Do: that
//     deadlocks; use the *Ctx instead.
//   - Every Ctx launch is enqueued on the context's one stream, in order.
//     Ctx.Sync is the only wait point. A sequence of launches may be captured
//     into a CUDA graph (Ctx.BeginCapture / EndCapture) and replayed with
//     Ctx.LaunchGraph; values that change between replays (positions, cache
//     lengths) are therefore read by the kernels from device buffers, never
//     passed by value.
//
// NVML telemetry (Device.Telemetry) is thread-safe and does not go through
// the owner goroutine; each field is reported only when NVML answered.
//
// # Kernels (decode path; each checked on an H200 against float64
// references in the tests)
//
//   - QuantizeQ81: f32 rows -> Q8_1 activation blocks (llama.cpp mmvq convention).
//
//   - MatVec: Q4_K, Q5_0, Q6_K, Q8_0 weights (dp4a on Q8_1 activations) and
//     F32, F16, BF16 weights (f32 activations); plain or expert-indexed
//     (ids read on the device), block-per-row or warp-per-row layouts.
//
//   - RMSNorm, RoPE (interleaved pairs, positions on the device), SwiGLU,
//     Add, WeightedSum (MoE combine), Router (sigmoid + bias top-k,
//     normalise, scale), CacheStoreF16 (latent cache append at a device
//     position), Argmax (greedy sampling).
//
//   - MLADecode: absorbed-MLA decode attention over the f16 latent cache,
//     split over the sequence (flash-decoding) with a combine pass; tensor
//     cores (mma.sync, f16 hi/lo split for f32 accuracy) with cp.async
//     double buffering by default, an f32 CUDA-core fallback.
//
//   - Prefill (kernels/gemm.cu): DequantF16 (Q4_K, Q6_K, Q5_0, Q8_0, BF16,
//     F16, F32 -> f16), ToF16Rows (convert/gather activations), Gemm
//     (grouped f16 mma.sync GEMM, f32 accumulation, row offsets per group
//     and scattered output rows for MoE experts, strided groups for heads)
//     and GemmW (the same with the weight dequantised inside the tile loads;
//     measured slower than DequantF16 + Gemm, kept opt-in). MLADecode with
//     Tokens > 1 runs a causal prefill pass (per-token key counts); F16QP
//     selects plain f16 Q/P (fast path); KVF32 an f32 cache (CUDA cores).
//
//   - GatherRows (embedding lookup by device ids, strided copies),
//     CacheStoreF32, WeightedSumTokens, RMSNormQ81 and SwiGLUQ81 (fused
//     with the Q8_1 quantisation for decode), Spin (profiling helper).
//
// Not yet written: an MMQ-style GEMM reading quantised weights at full
// speed, a multi-token-per-block flash attention for long prefill,
// gate+up / down+combine+residual fusions, sampling other than greedy.
package cuda
