package cuda

import (
	_ "embed"
	"fmt"
	"math"

	"github.com/glmrun/glmrun/gguf"
)

// embeddedFatbin is kernels/*.cu compiled by tools/cuda/build_kernels.sh
// (SASS for sm_80, sm_86, sm_89, sm_90 plus compute_90 PTX).
//
//go:embed kernels/kernels.fatbin
var embeddedFatbin []byte

// kernelNames lists every kernel the module must provide; Open fails if one
// is missing.
var kernelNames = []string{
	"quantize_q8_1",
	"matvec_q4_K", "matvec_q6_K", "matvec_q5_0", "matvec_q8_0",
	"matvec_q4_K_wr", "matvec_q6_K_wr", "matvec_q5_0_wr", "matvec_q8_0_wr",
	"matvec_f32", "matvec_f16", "matvec_bf16", "matvec_mmfp4", "matvec_mmfp4_wr",
	"rmsnorm_f32", "rmsnorm_q8_1", "swiglu_q8_1", "rope_norm_f32", "swiglu_f32", "add_f32", "weighted_sum_f32",
	"cache_store_f16", "cache_store_f32", "gather_rows_f32", "argmax_f32", "spin_cycles",
	"router_topk_sigmoid",
	"dequant_f16_q4_K", "dequant_f16_q6_K", "dequant_f16_q5_0", "dequant_f16_q8_0", "dequant_f16_f32",
	"dequant_f16_f16", "dequant_f16_bf16", "to_f16_rows", "gemm_f16",
	"gemm_w_q4_K", "gemm_w_q6_K", "gemm_w_q5_0", "gemm_w_q8_0", "gemm_w_f32", "gemm_w_bf16", "gemm_w_f16", "gemm_w_mmfp4",
	"gemm_q4k", "expert_sort",
	"mla_decode_partial", "mla_decode_partial_f32", "mla_decode_partial_mma", "mla_decode_partial_mma_pipe", "mla_decode_partial_mma_pipe_f16", "mla_decode_combine",
	"mla_prefill_mma_f16", "mla_prefill_mma_f16_sk", "mla_prefill_mma_f16_sk2", "mla_combine_tokens",
}

// Q81BlockBytes is the size of one Q8_1 activation block (32 values):
// {f16 d, f16 sum(x)} then 32 int8.
const Q81BlockBytes = 36

// Q81Bytes returns the bytes QuantizeQ81 writes for rows x cols values.
func Q81Bytes(rows, cols int) int64 { return int64(rows) * int64(cols/32) * Q81BlockBytes }

func ptrArg(b Buffer) uint64              { return uint64(b.ptr) }
func i32Arg(v int) uint64                 { return uint64(uint32(int32(v))) }
func i64Arg(v int) uint64                 { return uint64(int64(v)) }
func f32Arg(v float32) uint64             { return uint64(math.Float32bits(v)) }
func grid1(x int) [3]uint32               { return [3]uint32{uint32(x), 1, 1} }
func grid2(x, y int) [3]uint32            { return [3]uint32{uint32(x), uint32(y), 1} }
func optPtr(b Buffer) uint64              { return uint64(b.ptr) } // zero Buffer -> NULL
func ceilDiv(a, b int) int                { return (a + b - 1) / b }
func f32Bytes(n int) int64                { return 4 * int64(n) }
func isZero(b Buffer) bool                { return b.ptr == 0 && b.bytes == 0 }
func errArg(op, f string, a ...any) error { return fmt.Errorf("cuda: "+op+": "+f, a...) }

// need checks that buffer `what` holds at least n bytes.
func need(op, what string, b Buffer, n int64) error {
	if b.ptr == 0 {
		return errArg(op, "%s is a nil buffer", what)
	}
	if b.bytes < n {
		return errArg(op, "%s holds %d bytes, needs %d", what, b.bytes, n)
	}
	return nil
}

func positive(op string, kv ...any) error {
	for i := 0; i+1 < len(kv); i += 2 {
		if v := kv[i+1].(int); v <= 0 {
			return errArg(op, "%s = %d, must be > 0", kv[i], v)
		}
	}
	return nil
}

// QuantizeQ81 enqueues quantisation of rows x cols f32 values (row r at
// element r*xStride of x) into Q8_1 blocks in out (row r at block
// r*cols/32): d = max|x|/127, q = round(x/d), sum = Σx (f16). cols must be
// a multiple of 32.
func (c *Ctx) QuantizeQ81(x Buffer, xStride, rows, cols int, out Buffer) error {
	const op = "QuantizeQ81"
	if err := positive(op, "rows", rows, "cols", cols); err != nil {
		return err
	}
	if cols%32 != 0 || xStride < cols {
		return errArg(op, "cols %d must be a multiple of 32 and <= xStride %d", cols, xStride)
	}
	if err := need(op, "x", x, f32Bytes((rows-1)*xStride+cols)); err != nil {
		return err
	}
	if err := need(op, "out", out, Q81Bytes(rows, cols)); err != nil {
		return err
	}
	return c.launch("quantize_q8_1", grid2(ceilDiv(cols, 256), rows), grid1(256), 0,
		ptrArg(x), i64Arg(xStride), ptrArg(out), i32Arg(cols))
}

// MatVec describes y = W·x for decode, optionally per expert.
//
// W is [NExperts][Rows][Cols] of Type, each row Type.RowBytes(Cols) bytes,
// experts contiguous; for MMFP4 each expert is one slab (all Rows' codes,
// then all Rows' fp16 scales, Rows*RowBytes(Cols) bytes in all; W and the
// slab size 16-byte aligned). For slot s (0 <= s < Slots) the kernel uses expert
// IDs[s] (int32 on the device; when IDs is the zero Buffer, expert 0) and
// writes Y[s*Rows : (s+1)*Rows] (f32). An id outside [0, NExperts) makes
// that slot's outputs NaN. X is the activation: for Q4_K, Q5_0, Q6_K, Q8_0
// and MMFP4 weights Q8_1 blocks from QuantizeQ81 (Cols/32 blocks per row), for
// F32, F16 and BF16 weights f32 values (Cols per row); slot s reads row
// s/XDiv (XDiv 0 means 1), or row 0 for every slot when XShared. Rows of X
// are XStride apart (in Q8_1 blocks for quantised types, in floats
// otherwise; 0 means packed: Cols/32 blocks or Cols floats). Slot s writes
// Y[s*YStride : s*YStride+Rows] (YStride 0 means Rows).
type MatVec struct {
	W        Buffer
	Type     gguf.TensorType
	Rows     int
	Cols     int
	NExperts int // 0 means 1
	IDs      Buffer
	Slots    int // 0 means 1
	X        Buffer
	XShared  bool
	XStride  int
	XDiv     int
	Y        Buffer
	YStride  int
	Mode     MatVecMode // kernel layout for quantised types; zero = automatic
}

// MatVecMode selects how a quantised matvec maps rows to threads.
type MatVecMode int

const (
	// MatVecAuto uses a warp per row when Rows*Slots >= 4096 (enough rows
	// to fill the GPU) or when one warp covers a row in one pass (short
	// rows), else a block of 128 threads per row. Measured on an H200:
	// warp/row wins for 5120x2048 q4_K (4.4 vs 5.9 us), the q6_K LM head
	// (129 vs 196 us), 4 experts of 1536x2048 (5.2 vs 6.6 us) and the
	// per-head attn_k_b/attn_v_b; block/row wins for 768, 1536 and 2048
	// rows (e.g. 2048x5120: 5.0 vs 6.8 us).
	MatVecAuto MatVecMode = iota
	// MatVecBlockPerRow: 128 threads per row.
	MatVecBlockPerRow
	// MatVecWarpPerRow: 32 threads per row, 4 rows per block.
	MatVecWarpPerRow
)

// threadsPerBlock is the number of threads the quantised kernels give one
// weight block (QI/VDR in kernels/matvec.cu).
var threadsPerBlock = map[gguf.TensorType]int{gguf.TypeQ4_K: 16, gguf.TypeQ6_K: 32, gguf.TypeQ5_0: 2, gguf.TypeQ8_0: 4, gguf.TypeMMFP4: 4}

var matvecKernels = map[gguf.TensorType]string{
	gguf.TypeQ4_K: "matvec_q4_K", gguf.TypeQ6_K: "matvec_q6_K", gguf.TypeQ5_0: "matvec_q5_0",
	gguf.TypeQ8_0: "matvec_q8_0", gguf.TypeF32: "matvec_f32", gguf.TypeF16: "matvec_f16",
	gguf.TypeBF16: "matvec_bf16", gguf.TypeMMFP4: "matvec_mmfp4",
}

// IsQuantized reports whether MatVec takes Q8_1 activations for weight type t.
func IsQuantized(t gguf.TensorType) bool {
	return t == gguf.TypeQ4_K || t == gguf.TypeQ6_K || t == gguf.TypeQ5_0 || t == gguf.TypeQ8_0 || t == gguf.TypeMMFP4
}

// SupportsMatVec reports whether MatVec has a kernel for weight type t.
func SupportsMatVec(t gguf.TensorType) bool { _, ok := matvecKernels[t]; return ok }

// MatVec enqueues the product described by m.
func (c *Ctx) MatVec(m MatVec) error {
	const op = "MatVec"
	name, ok := matvecKernels[m.Type]
	if !ok {
		return errArg(op, "no kernel for weight type %s", m.Type)
	}
	ne, slots := max(m.NExperts, 1), max(m.Slots, 1)
	if err := positive(op, "Rows", m.Rows, "Cols", m.Cols); err != nil {
		return err
	}
	if m.Rows > math.MaxInt32/2 || slots > 65535 || ne > math.MaxInt32 {
		return errArg(op, "Rows %d or Slots %d out of range", m.Rows, slots)
	}
	rowBytes, err := m.Type.RowBytes(uint64(m.Cols))
	if err != nil {
		return errArg(op, "%v", err)
	}
	expertBytes := int64(rowBytes) * int64(m.Rows)
	if err := need(op, "W", m.W, expertBytes*int64(ne)); err != nil {
		return err
	}
	if m.Type == gguf.TypeMMFP4 && (m.W.ptr%16 != 0 || expertBytes%16 != 0) {
		return errArg(op, "mmfp4 W (address %#x, %d bytes per slab) must keep 16-byte alignment", uint64(m.W.ptr), expertBytes)
	}
	if isZero(m.IDs) {
		if ne != 1 {
			return errArg(op, "NExperts = %d needs IDs", ne)
		}
	} else if err := need(op, "IDs", m.IDs, 4*int64(slots)); err != nil {
		return err
	}
	xdiv := max(m.XDiv, 1)
	xRows := ceilDiv(slots, xdiv)
	if m.XShared {
		xRows = 1
	}
	xStride, rowBytesX, elemBytes := m.Cols, f32Bytes(m.Cols), int64(4)
	if IsQuantized(m.Type) {
		if m.Cols%32 != 0 {
			return errArg(op, "Cols %d of a quantised weight must be a multiple of 32", m.Cols)
		}
		xStride, rowBytesX, elemBytes = m.Cols/32, Q81Bytes(1, m.Cols), Q81BlockBytes
	}
	if m.XStride != 0 {
		if m.XStride < xStride {
			return errArg(op, "XStride %d smaller than a row (%d)", m.XStride, xStride)
		}
		xStride = m.XStride
	}
	if m.XShared {
		xStride = 0
	}
	if err := need(op, "X", m.X, int64(xRows-1)*int64(xStride)*elemBytes+rowBytesX); err != nil {
		return err
	}
	yStride := m.Rows
	if m.YStride != 0 {
		if m.YStride < m.Rows {
			return errArg(op, "YStride %d < Rows %d", m.YStride, m.Rows)
		}
		yStride = m.YStride
	}
	if err := need(op, "Y", m.Y, f32Bytes((slots-1)*yStride+m.Rows)); err != nil {
		return err
	}
	gridX := m.Rows
	if IsQuantized(m.Type) {
		wr := m.Mode == MatVecWarpPerRow
		if m.Mode == MatVecAuto {
			wr = m.Rows*slots >= 4096 || m.Cols/m.Type.BlockSize()*threadsPerBlock[m.Type] <= 32
		}
		if wr {
			name += "_wr"
			gridX = ceilDiv(m.Rows, 4)
		}
	}
	return c.launch(name, grid2(gridX, slots), grid1(128), 0,
		ptrArg(m.W), uint64(expertBytes), optPtr(m.IDs), i32Arg(ne),
		ptrArg(m.X), i64Arg(xStride), ptrArg(m.Y), i64Arg(yStride), i32Arg(m.Rows), i32Arg(m.Cols), i32Arg(xdiv))
}

// Norm describes a (fused) RMSNorm over Rows rows of Cols f32 values (row r
// at element r*XStride of X, r*ResStride of Res, r*YStride of Y):
//
//	X[r] += Res[r]          when Res is not the zero Buffer (stored in X;
//	                        Y must then not be X: the residual add of the
//	                        previous block fused into the next norm)
//	Y[r] = X[r] / sqrt(mean(X[r]²) + Eps) ⊙ W   (W: Cols f32, or zero: no weight)
//	Q    = Q8_1 of every Y row (row r at block r*Cols/32, as QuantizeQ81
//	       lays it out) when Q is not the zero Buffer; Cols % 32 == 0 then.
//
// Y may equal X when Res is zero.
type Norm struct {
	X         Buffer
	XStride   int
	Res       Buffer
	ResStride int
	W         Buffer
	Y         Buffer
	YStride   int
	Rows      int
	Cols      int
	Eps       float32
	Q         Buffer
}

// RMSNorm enqueues y[r] = x[r] / sqrt(mean(x[r]²) + eps) ⊙ w for rows r
// (row r at element r*xStride of x and r*yStride of y; cols values each).
// w (cols f32) may be the zero Buffer for no weight; y may equal x.
func (c *Ctx) RMSNorm(x Buffer, xStride int, w Buffer, y Buffer, yStride, rows, cols int, eps float32) error {
	return c.NormFused(Norm{X: x, XStride: xStride, W: w, Y: y, YStride: yStride, Rows: rows, Cols: cols, Eps: eps})
}

// RMSNormQ81 is RMSNorm that also writes the Q8_1 quantisation of each
// output row into q (row r at block r*cols/32, as QuantizeQ81 lays it out).
// cols must be a multiple of 32.
func (c *Ctx) RMSNormQ81(x Buffer, xStride int, w Buffer, y Buffer, yStride, rows, cols int, eps float32, q Buffer) error {
	return c.NormFused(Norm{X: x, XStride: xStride, W: w, Y: y, YStride: yStride, Rows: rows, Cols: cols, Eps: eps, Q: q})
}

// NormFused enqueues the norm n describes (see Norm).
func (c *Ctx) NormFused(n Norm) error {
	const op = "RMSNorm"
	if err := positive(op, "rows", n.Rows, "cols", n.Cols); err != nil {
		return err
	}
	if n.XStride < n.Cols || n.YStride < n.Cols {
		return errArg(op, "strides %d, %d smaller than cols %d", n.XStride, n.YStride, n.Cols)
	}
	if err := need(op, "x", n.X, f32Bytes((n.Rows-1)*n.XStride+n.Cols)); err != nil {
		return err
	}
	if err := need(op, "y", n.Y, f32Bytes((n.Rows-1)*n.YStride+n.Cols)); err != nil {
		return err
	}
	if !isZero(n.W) {
		if err := need(op, "w", n.W, f32Bytes(n.Cols)); err != nil {
			return err
		}
	}
	if !isZero(n.Res) {
		if n.ResStride < n.Cols {
			return errArg(op, "residual stride %d smaller than cols %d", n.ResStride, n.Cols)
		}
		if err := need(op, "res", n.Res, f32Bytes((n.Rows-1)*n.ResStride+n.Cols)); err != nil {
			return err
		}
		if n.Y.ptr == n.X.ptr {
			return errArg(op, "y must not alias x when a residual is added")
		}
	}
	grid, block := grid1(n.Rows), grid1(min(1024, max(256, ceilDiv(n.Cols, 2*32)*32)))
	if isZero(n.Q) {
		return c.launch("rmsnorm_f32", grid, block, 0, ptrArg(n.X), i64Arg(n.XStride), optPtr(n.W), ptrArg(n.Y),
			i64Arg(n.YStride), i32Arg(n.Cols), f32Arg(n.Eps), optPtr(n.Res), i64Arg(n.ResStride))
	}
	if n.Cols%32 != 0 {
		return errArg(op, "cols %d must be a multiple of 32 for the Q8_1 output", n.Cols)
	}
	if err := need(op, "q", n.Q, Q81Bytes(n.Rows, n.Cols)); err != nil {
		return err
	}
	return c.launch("rmsnorm_q8_1", grid, block, 0, ptrArg(n.X), i64Arg(n.XStride), optPtr(n.W), ptrArg(n.Y),
		i64Arg(n.YStride), i32Arg(n.Cols), f32Arg(n.Eps), ptrArg(n.Q), optPtr(n.Res), i64Arg(n.ResStride))
}

// SwiGLUQ81 enqueues out = silu(gate) ⊙ up over rows x cols contiguous
// values and the Q8_1 quantisation of each output row into q. cols must be
// a multiple of 32; out may alias gate or up.
func (c *Ctx) SwiGLUQ81(gate, up, out Buffer, rows, cols int, q Buffer) error {
	const op = "SwiGLUQ81"
	if err := positive(op, "rows", rows, "cols", cols); err != nil {
		return err
	}
	if cols%32 != 0 || rows > 65535 {
		return errArg(op, "cols %d must be a multiple of 32, rows %d <= 65535", cols, rows)
	}
	n := rows * cols
	for _, b := range []struct {
		name string
		b    Buffer
	}{{"gate", gate}, {"up", up}, {"out", out}} {
		if err := need(op, b.name, b.b, f32Bytes(n)); err != nil {
			return err
		}
	}
	if err := need(op, "q", q, Q81Bytes(rows, cols)); err != nil {
		return err
	}
	return c.launch("swiglu_q8_1", grid2(ceilDiv(cols, 256), rows), grid1(256), 0,
		ptrArg(gate), ptrArg(up), ptrArg(out), i32Arg(cols), ptrArg(q))
}

// RoPE enqueues interleaved-pair ("NORM") rotary embedding, in place, on
// nDims values starting at column offset of each of nHeads heads of each of
// nTokens tokens: head h of token t starts at element t*tokStride +
// h*headStride of x. Pair i of token t is rotated by pos[t]·base^(-2i/nDims)
// (pos: nTokens int32 on the device).
func (c *Ctx) RoPE(x Buffer, tokStride, headStride, nHeads, nTokens, offset, nDims int, pos Buffer, base float32) error {
	return c.RoPEInto(x, tokStride, headStride, nHeads, nTokens, offset, nDims, pos, base, Buffer{}, 0, 0)
}

// RoPEInto is RoPE that writes the rotated values of head h of token t to
// dst at element t*dstTokStride + h*dstHeadStride (nDims values) and leaves
// x unchanged; with dst the zero Buffer it is RoPE (in place).
func (c *Ctx) RoPEInto(x Buffer, tokStride, headStride, nHeads, nTokens, offset, nDims int, pos Buffer, base float32,
	dst Buffer, dstTokStride, dstHeadStride int) error {
	const op = "RoPE"
	if err := positive(op, "nHeads", nHeads, "nTokens", nTokens, "nDims", nDims); err != nil {
		return err
	}
	if nDims%2 != 0 || offset < 0 || tokStride < 0 || headStride < 0 || dstTokStride < 0 || dstHeadStride < 0 {
		return errArg(op, "nDims %d must be even, offset and strides >= 0", nDims)
	}
	last := (nTokens-1)*tokStride + (nHeads-1)*headStride + offset + nDims
	if err := need(op, "x", x, f32Bytes(last)); err != nil {
		return err
	}
	if !isZero(dst) {
		if err := need(op, "dst", dst, f32Bytes((nTokens-1)*dstTokStride+(nHeads-1)*dstHeadStride+nDims)); err != nil {
			return err
		}
	}
	if err := need(op, "pos", pos, 4*int64(nTokens)); err != nil {
		return err
	}
	return c.launch("rope_norm_f32", grid2(nHeads, nTokens), grid1(min(256, max(32, ceilDiv(nDims/2, 32)*32))), 0,
		ptrArg(x), i64Arg(tokStride), i64Arg(headStride), i32Arg(offset), i32Arg(nDims), ptrArg(pos), f32Arg(base),
		optPtr(dst), i64Arg(dstTokStride), i64Arg(dstHeadStride))
}

func elementwiseGrid(n int) [3]uint32 { return grid1(min(ceilDiv(n, 256), 4096)) }

// SwiGLU enqueues out[i] = silu(gate[i]) · up[i] for n values (out may
// alias gate or up).
func (c *Ctx) SwiGLU(gate, up, out Buffer, n int) error {
	const op = "SwiGLU"
	if err := positive(op, "n", n); err != nil {
		return err
	}
	for _, b := range []struct {
		name string
		b    Buffer
	}{{"gate", gate}, {"up", up}, {"out", out}} {
		if err := need(op, b.name, b.b, f32Bytes(n)); err != nil {
			return err
		}
	}
	return c.launch("swiglu_f32", elementwiseGrid(n), grid1(256), 0, ptrArg(gate), ptrArg(up), ptrArg(out), i64Arg(n))
}

// Add enqueues out[i] = a[i] + b[i] for n values (out may alias a or b).
func (c *Ctx) Add(a, b, out Buffer, n int) error {
	const op = "Add"
	if err := positive(op, "n", n); err != nil {
		return err
	}
	for _, x := range []struct {
		name string
		b    Buffer
	}{{"a", a}, {"b", b}, {"out", out}} {
		if err := need(op, x.name, x.b, f32Bytes(n)); err != nil {
			return err
		}
	}
	return c.launch("add_f32", elementwiseGrid(n), grid1(256), 0, ptrArg(a), ptrArg(b), ptrArg(out), i64Arg(n))
}

// WeightedSum enqueues out[i] = base[i] + Σ_s w[s]·y[s*yStride + i] for
// i < n, s < nSlots (the MoE combine; w: nSlots f32 on the device). base
// may be the zero Buffer (treated as 0) and may alias out.
func (c *Ctx) WeightedSum(base, y Buffer, yStride int, w Buffer, nSlots int, out Buffer, n int) error {
	return c.WeightedSumTokens(base, y, yStride, w, nSlots, out, n, 1)
}

// WeightedSumTokens is WeightedSum for `tokens` tokens at once: token t
// uses base and out at element t*n, y at element t*nSlots*yStride and w at
// element t*nSlots (the prefill MoE combine, slots token-major).
func (c *Ctx) WeightedSumTokens(base, y Buffer, yStride int, w Buffer, nSlots int, out Buffer, n, tokens int) error {
	const op = "WeightedSum"
	if err := positive(op, "n", n, "nSlots", nSlots, "tokens", tokens); err != nil {
		return err
	}
	if yStride < n || tokens > 65535 {
		return errArg(op, "yStride %d < n %d, or tokens %d > 65535", yStride, n, tokens)
	}
	if err := need(op, "y", y, f32Bytes((tokens*nSlots-1)*yStride+n)); err != nil {
		return err
	}
	if err := need(op, "w", w, f32Bytes(tokens*nSlots)); err != nil {
		return err
	}
	if err := need(op, "out", out, f32Bytes(tokens*n)); err != nil {
		return err
	}
	if !isZero(base) {
		if err := need(op, "base", base, f32Bytes(tokens*n)); err != nil {
			return err
		}
	}
	return c.launch("weighted_sum_f32", grid2(min(ceilDiv(n, 256), 4096), tokens), grid1(256), 0,
		optPtr(base), ptrArg(y), i64Arg(yStride), ptrArg(w), i32Arg(nSlots), ptrArg(out), i32Arg(n))
}

// CacheStoreF16 enqueues, for each of nTokens tokens t, the rounding of
// `width` f32 values at element t*srcStride of src to f16 and their store
// into row pos[t] of cache (row p at element p*cacheStride; pos: int32 on
// the device). The cache holds cache.Bytes()/(2*cacheStride) rows; a
// position outside that range is skipped by the kernel.
func (c *Ctx) CacheStoreF16(src Buffer, srcStride int, cache Buffer, cacheStride, width int, pos Buffer, nTokens int) error {
	return c.LatentStore(LatentStore{Src: src, SrcStride: srcStride, Cache: cache, CacheStride: cacheStride, Width: width,
		Pos: pos, Tokens: nTokens})
}

// CacheStoreF32 is CacheStoreF16 for an f32 cache (no rounding; row p at
// element p*cacheStride of cache, which holds cache.Bytes()/(4*cacheStride)
// rows).
func (c *Ctx) CacheStoreF32(src Buffer, srcStride int, cache Buffer, cacheStride, width int, pos Buffer, nTokens int) error {
	return c.LatentStore(LatentStore{Src: src, SrcStride: srcStride, Cache: cache, CacheStride: cacheStride, Width: width,
		Pos: pos, Tokens: nTokens, F32: true})
}

// LatentStore describes the store of Tokens rows of Width f32 values (row t
// at element t*SrcStride of Src) into rows Pos[t] of a latent cache (f16, or
// f32 when F32; row p at element p*CacheStride; Pos int32 on the device, a
// position outside the cache's rows skipped), optionally finishing each row
// on the way, which is MLA's cache row [RMSNorm(latent) ; RoPE(k_pe)]:
//   - NormW (NNorm f32) not zero: values [0, NNorm) are RMS-normalised with
//     weight NormW and Eps;
//   - RopeDims > 0: values [NNorm, NNorm+RopeDims) are rotated as RoPE does,
//     by position Pos[t] and Base.
//
// Src is not modified.
type LatentStore struct {
	Src         Buffer
	SrcStride   int
	Cache       Buffer
	CacheStride int
	Width       int
	Pos         Buffer
	Tokens      int
	F32         bool
	NormW       Buffer
	NNorm       int
	Eps         float32
	RopeDims    int
	Base        float32
}

// LatentStore enqueues the store s describes.
func (c *Ctx) LatentStore(s LatentStore) error {
	op, kernel, elemBytes := "CacheStoreF16", "cache_store_f16", int64(2)
	if s.F32 {
		op, kernel, elemBytes = "CacheStoreF32", "cache_store_f32", 4
	}
	if err := positive(op, "width", s.Width, "nTokens", s.Tokens); err != nil {
		return err
	}
	if s.SrcStride < s.Width || s.CacheStride < s.Width {
		return errArg(op, "strides %d, %d smaller than width %d", s.SrcStride, s.CacheStride, s.Width)
	}
	if s.NNorm < 0 || s.RopeDims < 0 || s.RopeDims%2 != 0 || s.NNorm+s.RopeDims > s.Width ||
		(!isZero(s.NormW) && s.NNorm == 0) || (s.RopeDims > 0 && isZero(s.NormW) && s.NNorm != 0) {
		return errArg(op, "norm of %d and rope of %d values (even) within a width of %d", s.NNorm, s.RopeDims, s.Width)
	}
	if !isZero(s.NormW) {
		if err := need(op, "norm weight", s.NormW, f32Bytes(s.NNorm)); err != nil {
			return err
		}
	}
	if err := need(op, "src", s.Src, f32Bytes((s.Tokens-1)*s.SrcStride+s.Width)); err != nil {
		return err
	}
	if err := need(op, "pos", s.Pos, 4*int64(s.Tokens)); err != nil {
		return err
	}
	capacity := s.Cache.bytes / (elemBytes * int64(s.CacheStride))
	if s.Cache.ptr == 0 || capacity < 1 || capacity > math.MaxInt32 {
		return errArg(op, "cache of %d bytes holds %d rows of stride %d", s.Cache.bytes, capacity, s.CacheStride)
	}
	return c.launch(kernel, grid1(s.Tokens), grid1(256), 0,
		ptrArg(s.Src), i64Arg(s.SrcStride), ptrArg(s.Cache), i64Arg(s.CacheStride), i32Arg(s.Width), ptrArg(s.Pos),
		i32Arg(int(capacity)), optPtr(s.NormW), f32Arg(s.Eps), i32Arg(s.NNorm), i32Arg(s.RopeDims), f32Arg(s.Base))
}

// GatherRows enqueues, for r < rows, dst[r*dstStride : +cols] =
// src[i*srcStride : +cols] with i = idx[r] (int32 on the device) or i = r
// when idx is the zero Buffer. src holds srcRows rows; an index outside
// [0, srcRows) fills the destination row with NaN (f32 values).
func (c *Ctx) GatherRows(src Buffer, srcStride, srcRows int, idx Buffer, dst Buffer, dstStride, rows, cols int) error {
	const op = "GatherRows"
	if err := positive(op, "srcRows", srcRows, "rows", rows, "cols", cols); err != nil {
		return err
	}
	if srcStride < cols || dstStride < cols || rows > 65535 {
		return errArg(op, "strides %d, %d smaller than cols %d, or rows %d > 65535", srcStride, dstStride, cols, rows)
	}
	if err := need(op, "src", src, f32Bytes((srcRows-1)*srcStride+cols)); err != nil {
		return err
	}
	if err := need(op, "dst", dst, f32Bytes((rows-1)*dstStride+cols)); err != nil {
		return err
	}
	if !isZero(idx) {
		if err := need(op, "idx", idx, 4*int64(rows)); err != nil {
			return err
		}
	} else if rows > srcRows {
		return errArg(op, "%d rows from a source of %d", rows, srcRows)
	}
	return c.launch("gather_rows_f32", grid2(ceilDiv(cols, 256), rows), grid1(256), 0,
		ptrArg(src), i64Arg(srcStride), optPtr(idx), i32Arg(srcRows), ptrArg(dst), i64Arg(dstStride), i32Arg(cols))
}

// Spin enqueues a one-thread kernel that busy-waits `cycles` SM clock
// cycles, so that work enqueued after it starts back to back (for timing
// kernels one at a time with events).
func (c *Ctx) Spin(cycles int64) error {
	if cycles < 0 {
		return errArg("Spin", "cycles %d < 0", cycles)
	}
	return c.launch("spin_cycles", grid1(1), grid1(1), 0, uint64(cycles))
}

// Argmax enqueues out[r] = the index of the largest of the n values of row
// r (row r at element r*stride of x), for rows rows; lowest index on ties,
// NaN ignored, -1 when every value is NaN. out: rows int32.
func (c *Ctx) Argmax(x Buffer, stride, n, rows int, out Buffer) error {
	const op = "Argmax"
	if err := positive(op, "n", n, "rows", rows); err != nil {
		return err
	}
	if stride < n {
		return errArg(op, "stride %d < n %d", stride, n)
	}
	if err := need(op, "x", x, f32Bytes((rows-1)*stride+n)); err != nil {
		return err
	}
	if err := need(op, "out", out, 4*int64(rows)); err != nil {
		return err
	}
	return c.launch("argmax_f32", grid1(rows), grid1(1024), 0, ptrArg(x), i64Arg(stride), i32Arg(n), ptrArg(out))
}

// Router enqueues sigmoid top-k expert selection for `tokens` tokens: for
// token t with nExperts logits at element t*logitStride,
// s = sigmoid(logit), the k experts with the largest s + bias are chosen
// (bias: nExperts f32, or the zero Buffer), their unbiased s are divided by
// max(Σs, 6.1035e-5) when norm, then multiplied by scale. Writes
// ids[t*k + j] (int32, in descending biased score) and weights[t*k + j]
// (f32). k <= min(nExperts, 64), nExperts <= 1024.
func (c *Ctx) Router(logits Buffer, logitStride int, bias Buffer, nExperts, k int, norm bool, scale float32, tokens int, ids, weights Buffer) error {
	const op = "Router"
	if err := positive(op, "nExperts", nExperts, "k", k, "tokens", tokens); err != nil {
		return err
	}
	if nExperts > 1024 || k > nExperts || k > 64 || logitStride < nExperts {
		return errArg(op, "nExperts %d (<= 1024), k %d (<= nExperts, <= 64), logitStride %d", nExperts, k, logitStride)
	}
	if err := need(op, "logits", logits, f32Bytes((tokens-1)*logitStride+nExperts)); err != nil {
		return err
	}
	if !isZero(bias) {
		if err := need(op, "bias", bias, f32Bytes(nExperts)); err != nil {
			return err
		}
	}
	if err := need(op, "ids", ids, 4*int64(tokens*k)); err != nil {
		return err
	}
	if err := need(op, "weights", weights, 4*int64(tokens*k)); err != nil {
		return err
	}
	n := 0
	if norm {
		n = 1
	}
	return c.launch("router_topk_sigmoid", grid1(tokens), grid1(ceilDiv(nExperts, 32)*32), 0,
		ptrArg(logits), i64Arg(logitStride), optPtr(bias), i32Arg(nExperts), i32Arg(k), i32Arg(n), f32Arg(scale),
		ptrArg(ids), ptrArg(weights))
}

// MLA decode attention limits (kernels/attention.cu).
const (
	mlaTile    = 32
	mlaThreads = 256
	mlaMaxH    = 32
)

// MLADecode describes one decode step of absorbed MLA attention (see
// kernels/attention.cu): H query heads of D values (Q, head h at element
// h*QStride, f32) against the first NKV rows of an f16 latent cache (row j
// at element j*KVStride of KV; the cache holds KV.Bytes()/(2*KVStride)
// rows), V = the first Dv values of each row. NKV is an int32 on the device
// (so a captured graph can be replayed as the cache grows), clamped to the
// cache's rows. Out (head h at element h*OutStride, Dv f32) =
// softmax(Scale·Q_h·K^T)·V. Splits is the number of sequence splits of the
// first pass (e.g. 2×SMs); Scratch must hold MLAScratchBytes(Splits, H, Dv).
type MLADecode struct {
	Q         Buffer
	QStride   int
	H, D, Dv  int
	KV        Buffer
	KVStride  int
	NKV       Buffer
	Scale     float32
	Splits    int
	Scratch   Buffer
	Out       Buffer
	OutStride int
	// CUDACores forces the f32 CUDA-core kernel for pass 1. By default the
	// tensor-core kernel runs when D%16 == 0 and Dv%8 == 0 (it keeps f32
	// accuracy by splitting Q and P into f16 hi+lo pairs).
	CUDACores bool
	// NoPipeline disables the cp.async double-buffered variant of the
	// tensor-core kernel (used when Q and KV are 16-byte aligned and
	// QStride%4 == 0, KVStride%8 == 0).
	NoPipeline bool
	// F16QP makes the pipelined tensor-core kernel use plain f16 Q and P
	// (no hi/lo split: half the tensor-core work, less shared memory, f16
	// accuracy of the scores, as in llama.cpp's FlashAttention); ignored
	// by the other kernels.
	F16QP bool
	// KVF32 says the cache rows are f32 (KV holds KV.Bytes()/(4*KVStride)
	// rows); the CUDA-core kernel then runs.
	KVF32 bool
	// Tokens > 1 runs several query tokens in one launch (prefill): token t
	// reads Q at element t*QTokStride, its key count NKV[t] (NKV holds
	// Tokens int32) and writes Out at element t*OutTokStride; Scratch must
	// hold Tokens*MLAScratchBytes(Splits, H, Dv). 0 means 1.
	Tokens       int
	QTokStride   int
	OutTokStride int
	// PerToken keeps one query token per block for Tokens > 1. By default
	// the fast path (F16QP, f16 cache, aligned layouts) runs
	// mla_prefill_mma_f16 there: 64/H tokens per block, so each key tile
	// is read once for all of them.
	PerToken bool
	// PrefillSplitK selects mla_prefill_mma_f16_sk for the multi-token
	// kernel: the score product split over D across warps (half the
	// shared-memory fragment loads per key tile, 24 KB more shared memory).
	PrefillSplitK bool
	// PrefillLazy (with PrefillSplitK) selects mla_prefill_mma_f16_sk2:
	// lazy rescaling (a row's running max moves only when a tile exceeds it
	// by more than 8, so most tiles skip the O *= alpha pass),
	// conflict-free score reads and 8-byte partial stores.
	PrefillLazy bool
}

// MLAScratchBytes returns the scratch size MLADecode needs.
func MLAScratchBytes(splits, h, dv int) int64 {
	return 4 * (int64(splits)*int64(h)*int64(dv) + int64(splits)*int64(h)*2)
}

func mlaSharedBytes(h, d int) int {
	return 4*(h*d+h*mlaTile+3*mlaMaxH) + 4*mlaTile*(d/2+1)
}

func mlaMMASharedBytes(h, d int, pipe bool) int {
	return mlaMMASharedBytesLo(h, d, pipe, true)
}

func mlaMMASharedBytesLo(h, d int, pipe, lo bool) int {
	tiles, parts := 1, 1
	if pipe {
		tiles = 2
	}
	if lo {
		parts = 2
	}
	return 2*parts*h*(d+8) + tiles*2*mlaTile*(d+8) + 4*h*mlaTile + 2*parts*32*(mlaTile+8) + 4*3*mlaMaxH
}

// MLAKernel returns the name of the first-pass kernel MLADecode would use
// for a (for benchmarks and logs).
func MLAKernel(a MLADecode) string {
	name, _ := mlaKernel(a)
	return name
}

// mlaPrefillRows is MLA_PR of attention.cu: query rows (tokens x heads)
// per block of mla_prefill_mma_f16.
const mlaPrefillRows = 64

// mlaPrefillKStages is MLA_KST of attention.cu: K tile buffers of
// mla_prefill_mma_f16.
const mlaPrefillKStages = 3

// mlaPrefillSharedBytes mirrors mla_prefill_mma_f16's shared memory
// (201,216 bytes for D = 576: Hopper and A100 class devices only); sk:
// mla_prefill_mma_f16_sk's, whose score buffer holds four partial sums
// (225,792 bytes for D = 576: Hopper only).
func mlaPrefillSharedBytes(d int, sk bool) int {
	sParts := 1
	if sk {
		sParts = 4
	}
	return 2*(mlaPrefillRows*(d+8)+mlaPrefillKStages*mlaTile*(d+8)+mlaPrefillRows*(mlaTile+8)) +
		4*(sParts*mlaPrefillRows*mlaTile+4*mlaPrefillRows)
}

// MLAPrefillSplits picks the sequence splits of a multi-token MLADecode
// (mla_prefill_mma_f16: ceil(tokens/(64/h)) token groups per split) for
// sms multiprocessors, one block each: the count in [1, maxSplits] that
// minimises waves x (key tiles per split + a fixed cost of 4 tiles per
// block), where waves = ceil(groups*splits/sms) and a split holds
// ceil(maxKV/splits) keys in tiles of 32. Ties go to fewer splits (less
// scratch traffic in the combine pass). maxKV is the largest key count of
// the pass. Returns 1 for tokens, h, maxKV, sms or maxSplits < 1.
func MLAPrefillSplits(tokens, h, maxKV, sms, maxSplits int) int {
	if tokens < 1 || h < 1 || h > mlaPrefillRows || maxKV < 1 || sms < 1 || maxSplits < 1 {
		return 1
	}
	groups := ceilDiv(tokens, max(mlaPrefillRows/h, 1))
	best, bestCost := 1, -1
	for s := 1; s <= maxSplits; s++ {
		tiles := ceilDiv(ceilDiv(maxKV, s), mlaTile)
		cost := ceilDiv(groups*s, sms) * (tiles + 4)
		if bestCost < 0 || cost < bestCost {
			best, bestCost = s, cost
		}
		if tiles == 1 {
			break
		}
	}
	return best
}

// mlaPrefillTokens returns the query tokens per block of the multi-token
// prefill kernel for a, or 0 when that kernel does not apply (one token,
// PerToken, the f32-accuracy or CUDA-core paths, or layouts it cannot read;
// MLADecode also falls back when the device's shared memory is too small).
func mlaPrefillTokens(a MLADecode) int {
	t := mlaPrefillRows / a.H
	if a.Tokens <= 1 || a.PerToken || t < 2 || !a.F16QP || a.KVF32 || a.CUDACores || a.NoPipeline || a.D%16 != 0 ||
		a.Dv%8 != 0 || a.Dv > 512 || a.Q.ptr%16 != 0 || a.KV.ptr%16 != 0 || a.QStride%4 != 0 || a.QTokStride%4 != 0 ||
		a.KVStride%8 != 0 {
		return 0
	}
	return t
}

func mlaKernel(a MLADecode) (string, int) {
	if a.KVF32 {
		return "mla_decode_partial_f32", 4*(a.H*a.D+a.H*mlaTile+3*mlaMaxH) + 8*mlaTile*(a.D/2+1)
	}
	if a.CUDACores || a.D%16 != 0 || a.Dv%8 != 0 {
		return "mla_decode_partial", mlaSharedBytes(a.H, a.D)
	}
	if !a.NoPipeline && a.Q.ptr%16 == 0 && a.KV.ptr%16 == 0 && a.QStride%4 == 0 && a.KVStride%8 == 0 {
		if a.F16QP {
			return "mla_decode_partial_mma_pipe_f16", mlaMMASharedBytesLo(a.H, a.D, true, false)
		}
		return "mla_decode_partial_mma_pipe", mlaMMASharedBytes(a.H, a.D, true)
	}
	return "mla_decode_partial_mma", mlaMMASharedBytes(a.H, a.D, false)
}

// MLADecode enqueues the two passes of the attention described by a.
func (c *Ctx) MLADecode(a MLADecode) error {
	const op = "MLADecode"
	if err := positive(op, "H", a.H, "D", a.D, "Dv", a.Dv, "Splits", a.Splits); err != nil {
		return err
	}
	if a.H > mlaMaxH || a.D%2 != 0 || a.Dv%2 != 0 || a.Dv > a.D || a.Dv > 2*mlaThreads || a.KVStride < a.D || a.KVStride%2 != 0 {
		return errArg(op, "H %d (<= %d), D %d, Dv %d (even, Dv <= D, Dv <= %d), KVStride %d (even, >= D)",
			a.H, mlaMaxH, a.D, a.Dv, 2*mlaThreads, a.KVStride)
	}
	if a.QStride < a.D || a.OutStride < a.Dv || a.Splits > 65535 {
		return errArg(op, "QStride %d < D, OutStride %d < Dv, or Splits %d > 65535", a.QStride, a.OutStride, a.Splits)
	}
	tokens := max(a.Tokens, 1)
	if tokens > 65535 || (tokens > 1 && (a.QTokStride < 0 || a.OutTokStride < 0)) {
		return errArg(op, "Tokens %d (<= 65535), QTokStride %d, OutTokStride %d", tokens, a.QTokStride, a.OutTokStride)
	}
	if err := need(op, "Q", a.Q, f32Bytes((tokens-1)*a.QTokStride+(a.H-1)*a.QStride+a.D)); err != nil {
		return err
	}
	if err := need(op, "Out", a.Out, f32Bytes((tokens-1)*a.OutTokStride+(a.H-1)*a.OutStride+a.Dv)); err != nil {
		return err
	}
	if err := need(op, "NKV", a.NKV, 4*int64(tokens)); err != nil {
		return err
	}
	if err := need(op, "Scratch", a.Scratch, int64(tokens)*MLAScratchBytes(a.Splits, a.H, a.Dv)); err != nil {
		return err
	}
	elem := int64(2)
	if a.KVF32 {
		elem = 4
	}
	capacity := a.KV.bytes / (elem * int64(a.KVStride))
	if a.KV.ptr == 0 || capacity < 1 || capacity > math.MaxInt32 {
		return errArg(op, "cache of %d bytes holds %d rows of stride %d", a.KV.bytes, capacity, a.KVStride)
	}
	partO := a.Scratch
	oBytes := 4 * int64(tokens) * int64(a.Splits) * int64(a.H) * int64(a.Dv)
	partML, err := a.Scratch.Slice(oBytes, 4*int64(tokens)*int64(a.Splits)*int64(a.H)*2)
	if err != nil {
		return err
	}
	name, shPre := "mla_prefill_mma_f16", mlaPrefillSharedBytes(a.D, false)
	if a.PrefillSplitK && mlaPrefillSharedBytes(a.D, true) <= c.info.MaxSharedOptin {
		name, shPre = "mla_prefill_mma_f16_sk", mlaPrefillSharedBytes(a.D, true)
		if a.PrefillLazy {
			name = "mla_prefill_mma_f16_sk2"
		}
	}
	if tpb := mlaPrefillTokens(a); tpb > 0 && shPre <= c.info.MaxSharedOptin {
		if err := c.launch(name, grid2(a.Splits, ceilDiv(tokens, tpb)), grid1(mlaThreads),
			shPre, ptrArg(a.Q), i64Arg(a.QStride), ptrArg(a.KV), i64Arg(a.KVStride), ptrArg(a.NKV),
			i32Arg(int(capacity)), i32Arg(a.H), i32Arg(a.D), i32Arg(a.Dv), f32Arg(a.Scale), ptrArg(partO), ptrArg(partML),
			i64Arg(a.QTokStride), i32Arg(tokens)); err != nil {
			return err
		}
		return c.mlaCombine(a, tokens, partO, partML)
	}
	name, shmem := mlaKernel(a)
	if err := c.launch(name, grid2(a.Splits, tokens), grid1(mlaThreads), shmem,
		ptrArg(a.Q), i64Arg(a.QStride), ptrArg(a.KV), i64Arg(a.KVStride), ptrArg(a.NKV), i32Arg(int(capacity)),
		i32Arg(a.H), i32Arg(a.D), i32Arg(a.Dv), f32Arg(a.Scale), ptrArg(partO), ptrArg(partML), i64Arg(a.QTokStride)); err != nil {
		return err
	}
	return c.mlaCombine(a, tokens, partO, partML)
}

// mlaCombine enqueues pass 2: mla_decode_combine for one token (decode),
// mla_combine_tokens (one block per token, all heads) for several.
func (c *Ctx) mlaCombine(a MLADecode, tokens int, partO, partML Buffer) error {
	if tokens > 1 {
		return c.launch("mla_combine_tokens", grid1(tokens), grid1(256), 0, ptrArg(partO), ptrArg(partML), i32Arg(a.Splits),
			i32Arg(a.H), i32Arg(a.Dv), ptrArg(a.Out), i64Arg(a.OutStride), i64Arg(a.OutTokStride))
	}
	return c.launch("mla_decode_combine", [3]uint32{uint32(a.H), uint32(ceilDiv(a.Dv, 32)), uint32(tokens)}, grid1(256), 4*a.Splits,
		ptrArg(partO), ptrArg(partML), i32Arg(a.Splits), i32Arg(a.H), i32Arg(a.Dv), ptrArg(a.Out), i64Arg(a.OutStride),
		i64Arg(a.OutTokStride))
}
