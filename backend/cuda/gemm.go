package cuda

import (
	"math"

	"github.com/glmrun/glmrun/gguf"
)

// Prefill matrix products on tensor cores (kernels/gemm.cu): weights are
// dequantised to f16 one tensor at a time (DequantF16), activations are
// converted or gathered to f16 (ToF16Rows) and GemmF16 multiplies them.

var dequantKernels = map[gguf.TensorType]string{
	gguf.TypeQ4_K: "dequant_f16_q4_K", gguf.TypeQ6_K: "dequant_f16_q6_K", gguf.TypeQ5_0: "dequant_f16_q5_0",
	gguf.TypeQ8_0: "dequant_f16_q8_0", gguf.TypeF32: "dequant_f16_f32", gguf.TypeF16: "dequant_f16_f16",
	gguf.TypeBF16: "dequant_f16_bf16",
}

// SupportsDequantF16 reports whether DequantF16 handles weight type t.
func SupportsDequantF16(t gguf.TensorType) bool { _, ok := dequantKernels[t]; return ok }

// DequantF16 enqueues the conversion of rows x cols weights of type t (GGML
// row layout, rows contiguous) into f16 values in out (row-major, 2 bytes
// each). cols must be a multiple of 32 (and of the type's block size).
func (c *Ctx) DequantF16(w Buffer, t gguf.TensorType, rows, cols int, out Buffer) error {
	const op = "DequantF16"
	name, ok := dequantKernels[t]
	if !ok {
		return errArg(op, "no kernel for weight type %s", t)
	}
	if err := positive(op, "rows", rows, "cols", cols); err != nil {
		return err
	}
	if cols%32 != 0 || cols%t.BlockSize() != 0 {
		return errArg(op, "cols %d must be a multiple of 32 and of the %s block", cols, t)
	}
	rb, err := t.RowBytes(uint64(cols))
	if err != nil {
		return errArg(op, "%v", err)
	}
	if err := need(op, "w", w, int64(rb)*int64(rows)); err != nil {
		return err
	}
	n := int64(rows) * int64(cols)
	if err := need(op, "out", out, 2*n); err != nil {
		return err
	}
	n8 := n / 8
	if ceilDiv64(n8, 256) > math.MaxInt32 {
		return errArg(op, "%d values is too many", n)
	}
	if out.ptr%16 != 0 {
		return errArg(op, "out must be 16-byte aligned")
	}
	return c.launch(name, grid1(int(ceilDiv64(n8, 256))), grid1(256), 0, ptrArg(w), ptrArg(out), uint64(n8))
}

func ceilDiv64(a, b int64) int64 { return (a + b - 1) / b }

// ToF16Rows enqueues dst row r (cols f16 values at element r*dstStride) =
// f16 of src row i/div (cols f32 at element (i/div)*srcStride), i = idx[r]
// (int32 on the device) or r when idx is the zero Buffer, for r < rows. The
// caller guarantees that every idx[r]/div < srcRows.
func (c *Ctx) ToF16Rows(src Buffer, srcStride, srcRows int, idx Buffer, div int, dst Buffer, dstStride, rows, cols int) error {
	const op = "ToF16Rows"
	if err := positive(op, "srcRows", srcRows, "rows", rows, "cols", cols, "div", div); err != nil {
		return err
	}
	if srcStride < cols || dstStride < cols || rows > 65535 {
		return errArg(op, "strides %d, %d smaller than cols %d, or rows %d > 65535", srcStride, dstStride, cols, rows)
	}
	if err := need(op, "src", src, f32Bytes((srcRows-1)*srcStride+cols)); err != nil {
		return err
	}
	if err := need(op, "dst", dst, 2*(int64(rows-1)*int64(dstStride)+int64(cols))); err != nil {
		return err
	}
	if !isZero(idx) {
		if err := need(op, "idx", idx, 4*int64(rows)); err != nil {
			return err
		}
	} else if ceilDiv(rows, div) > srcRows {
		return errArg(op, "%d rows / %d from a source of %d", rows, div, srcRows)
	}
	return c.launch("to_f16_rows", grid2(ceilDiv(cols, 256), rows), grid1(256), 0,
		ptrArg(src), i64Arg(srcStride), optPtr(idx), i32Arg(div), ptrArg(dst), i64Arg(dstStride), i32Arg(cols))
}

// GemmF16 describes a grouped product on tensor cores: for group g <
// Groups, rows i in [RowOff[g], RowOff[g+1]) (RowOff: Groups+1 int32 on the
// device, at most MaxRows rows per group) or, without RowOff, i < NRows:
//
//	Y[g*YGroupStride + yr(i)*LDY + m] = Σ_k A[g*AGroupStride + i*LDA + k] · W[g*WGroupStride + m*K + k]
//
// for m < M, yr(i) = YIdx[i] (int32 on the device) or i. A and W are f16, Y
// f32; strides are in elements. K must be a multiple of 32; LDA,
// AGroupStride and WGroupStride multiples of 8; A and W 16-byte aligned.
type GemmF16 struct {
	A            Buffer
	LDA          int
	AGroupStride int
	RowOff       Buffer
	NRows        int // rows per group without RowOff
	MaxRows      int // largest group with RowOff (sets the grid)
	W            Buffer
	WGroupStride int
	Y            Buffer
	LDY          int
	YGroupStride int
	YIdx         Buffer
	M, K         int
	Groups       int // 0 means 1
	// Tiles (optional, needs RowOff): the 64-row tile list written by
	// ExpertSort ({count, (group, first row) x count} int32 on the device);
	// the grid then has MaxTiles row tiles (at least count, see
	// ExpertTileCap) instead of Groups x ceil(MaxRows/64), so MaxRows need
	// not be known on the host.
	Tiles    Buffer
	MaxTiles int
}

// rowGrid returns the grid's y and z extents for m (rows = 0: nothing to do).
func (m GemmF16) rowGrid(op string, groups int) (y, z int, err error) {
	if !isZero(m.Tiles) {
		if isZero(m.RowOff) {
			return 0, 0, errArg(op, "Tiles needs RowOff")
		}
		if m.MaxTiles <= 0 || m.MaxTiles > 65535 {
			return 0, 0, errArg(op, "MaxTiles %d out of range", m.MaxTiles)
		}
		if err := need(op, "Tiles", m.Tiles, 4*(1+2*int64(m.MaxTiles))); err != nil {
			return 0, 0, err
		}
		return m.MaxTiles, 1, nil
	}
	rows := m.NRows
	if !isZero(m.RowOff) {
		rows = m.MaxRows
	}
	if rows <= 0 {
		return 0, 0, nil
	}
	if groups > 65535 || ceilDiv(rows, 64) > 65535 {
		return 0, 0, errArg(op, "%d groups or %d rows out of range", groups, rows)
	}
	return ceilDiv(rows, 64), groups, nil
}

// checkA checks A (packed rows, groups AGroupStride apart) or, for grouped
// rows, the RowOff table (groups+1 int32).
func (m GemmF16) checkA(op string, groups int) error {
	if !isZero(m.RowOff) {
		return need(op, "RowOff", m.RowOff, 4*int64(groups+1))
	}
	return need(op, "A", m.A, 2*(int64(groups-1)*int64(m.AGroupStride)+int64(m.NRows-1)*int64(m.LDA)+int64(m.K)))
}

// checkY checks that Y is allocated and, for rows that are not scattered
// (no YIdx, no RowOff), that it holds every group's output rows.
func (m GemmF16) checkY(op string, groups int) error {
	if m.Y.ptr == 0 {
		return errArg(op, "Y is a nil buffer")
	}
	if isZero(m.YIdx) && isZero(m.RowOff) {
		return need(op, "Y", m.Y, 4*(int64(groups-1)*int64(m.YGroupStride)+int64(m.NRows-1)*int64(m.LDY)+int64(m.M)))
	}
	return nil
}

// ExpertTileCap returns the most 64-row tiles ExpertSort can list for
// nSlots slots over nExp experts; the tile list takes 1 + 2·cap int32.
func ExpertTileCap(nSlots, nExp int) int { return ceilDiv(nSlots, 64) + nExp }

// ExpertSort enqueues the grouping of nSlots routed slots by expert on the
// device: ids holds nSlots int32 expert ids in [0, nExp) (an id outside
// counts as expert 0); it writes offs (nExp+1 int32: expert e's slots are
// perm[offs[e]:offs[e+1]]), perm (nSlots int32, the slots in expert order,
// any order inside an expert) and tiles (1 + 2·ExpertTileCap int32, the
// GemmF16.Tiles list). No host round trip.
func (c *Ctx) ExpertSort(ids Buffer, nSlots, nExp int, perm, offs, tiles Buffer) error {
	const op = "ExpertSort"
	if err := positive(op, "nSlots", nSlots, "nExp", nExp); err != nil {
		return err
	}
	if nExp > 4096 {
		return errArg(op, "%d experts (at most 4096)", nExp)
	}
	for _, b := range []struct {
		name string
		b    Buffer
		n    int64
	}{{"ids", ids, 4 * int64(nSlots)}, {"perm", perm, 4 * int64(nSlots)}, {"offs", offs, 4 * int64(nExp+1)},
		{"tiles", tiles, 4 * (1 + 2*int64(ExpertTileCap(nSlots, nExp)))}} {
		if err := need(op, b.name, b.b, b.n); err != nil {
			return err
		}
	}
	return c.launch("expert_sort", grid1(1), grid1(1024), 8*nExp, ptrArg(ids), i32Arg(nSlots), i32Arg(nExp),
		ptrArg(perm), ptrArg(offs), ptrArg(tiles))
}

// Gemm enqueues the product described by m. Buffer sizes are checked
// against the strides; with RowOff or YIdx the row indices on the device
// are the caller's responsibility (they must stay inside A and Y).
func (c *Ctx) Gemm(m GemmF16) error {
	const op = "GemmF16"
	groups := max(m.Groups, 1)
	if err := positive(op, "M", m.M, "K", m.K); err != nil {
		return err
	}
	if m.K%32 != 0 || m.LDA%8 != 0 || m.AGroupStride%8 != 0 || m.WGroupStride%8 != 0 || m.LDA < m.K || m.LDY < m.M {
		return errArg(op, "K %d (multiple of 32), LDA %d (multiple of 8, >= K), strides %d, %d (multiples of 8), LDY %d (>= M %d)",
			m.K, m.LDA, m.AGroupStride, m.WGroupStride, m.LDY, m.M)
	}
	if m.A.ptr%16 != 0 || m.W.ptr%16 != 0 {
		return errArg(op, "A and W must be 16-byte aligned")
	}
	gy, gz, err := m.rowGrid(op, groups)
	if err != nil || gy == 0 {
		return err // gy == 0: no rows in any group
	}
	if err := m.checkA(op, groups); err != nil {
		return err
	}
	if err := need(op, "W", m.W, 2*(int64(groups-1)*int64(m.WGroupStride)+int64(m.M)*int64(m.K))); err != nil {
		return err
	}
	if err := m.checkY(op, groups); err != nil {
		return err
	}
	return c.launch("gemm_f16", [3]uint32{uint32(ceilDiv(m.M, 64)), uint32(gy), uint32(gz)}, grid1(128), 0,
		ptrArg(m.A), i64Arg(m.LDA), i64Arg(m.AGroupStride), optPtr(m.RowOff), i32Arg(m.NRows), optPtr(m.Tiles),
		ptrArg(m.W), i64Arg(m.WGroupStride), ptrArg(m.Y), i64Arg(m.LDY), i64Arg(m.YGroupStride), optPtr(m.YIdx),
		i32Arg(m.M), i32Arg(m.K))
}

var gemmWKernels = map[gguf.TensorType]string{
	gguf.TypeQ4_K: "gemm_q4k", gguf.TypeQ6_K: "gemm_w_q6_K", gguf.TypeQ5_0: "gemm_w_q5_0",
	gguf.TypeQ8_0: "gemm_w_q8_0", gguf.TypeF32: "gemm_w_f32", gguf.TypeBF16: "gemm_w_bf16", gguf.TypeF16: "gemm_w_f16",
	gguf.TypeMMFP4: "gemm_w_mmfp4",
}

// SupportsGemmW reports whether GemmW handles weight type t.
func SupportsGemmW(t gguf.TensorType) bool { _, ok := gemmWKernels[t]; return ok }

// GemmW is Gemm with W in its own (GGUF) type t instead of f16: group g's
// M rows of K values start at W + g·M·RowBytes(K) bytes (experts or heads
// contiguous; WGroupStride is ignored) and are dequantised to f16 inside
// the tile loads, so no f16 copy of the weight is made. Q4_K runs a loader
// of its own (gemm_q4k: raw blocks prefetched to registers during the
// tensor-core work, decoded after it); the other types share gemm_body.
// MMFP4: each group is one slab (codes of its M rows, then their scales;
// K a multiple of 128, the slab size a multiple of 16 bytes).
func (c *Ctx) GemmW(m GemmF16, t gguf.TensorType) error {
	const op = "GemmW"
	name, ok := gemmWKernels[t]
	if !ok {
		return errArg(op, "no kernel for weight type %s", t)
	}
	groups := max(m.Groups, 1)
	if err := positive(op, "M", m.M, "K", m.K); err != nil {
		return err
	}
	if m.K%32 != 0 || m.LDA%8 != 0 || m.AGroupStride%8 != 0 || m.LDA < m.K || m.LDY < m.M || m.K%t.BlockSize() != 0 {
		return errArg(op, "K %d (multiple of 32 and of the %s block), LDA %d (multiple of 8, >= K), AGroupStride %d, LDY %d (>= M %d)",
			m.K, t, m.LDA, m.AGroupStride, m.LDY, m.M)
	}
	if m.A.ptr%16 != 0 || m.W.ptr%16 != 0 {
		return errArg(op, "A and W must be 16-byte aligned")
	}
	rb, err := t.RowBytes(uint64(m.K))
	if err != nil {
		return errArg(op, "%v", err)
	}
	rowBytes := int64(rb)
	if t == gguf.TypeF16 && rowBytes%16 != 0 {
		return errArg(op, "f16 rows of %d bytes are not 16-byte aligned", rowBytes)
	}
	groupBytes := int64(m.M) * rowBytes
	if t == gguf.TypeMMFP4 {
		// One slab per group; the kernel addresses a row's codes by
		// K/2 bytes and finds the scales after the group's M code rows.
		if m.K%128 != 0 || groupBytes%16 != 0 {
			return errArg(op, "mmfp4 K %d (multiple of 128) and slab of %d bytes (multiple of 16)", m.K, groupBytes)
		}
		rowBytes = int64(m.K / 2)
	}
	gy, gz, err := m.rowGrid(op, groups)
	if err != nil || gy == 0 {
		return err
	}
	if err := m.checkA(op, groups); err != nil {
		return err
	}
	if err := need(op, "W", m.W, int64(groups)*groupBytes); err != nil {
		return err
	}
	if err := m.checkY(op, groups); err != nil {
		return err
	}
	return c.launch(name, [3]uint32{uint32(ceilDiv(m.M, 64)), uint32(gy), uint32(gz)}, grid1(128), 0,
		ptrArg(m.A), i64Arg(m.LDA), i64Arg(m.AGroupStride), optPtr(m.RowOff), i32Arg(m.NRows), optPtr(m.Tiles),
		ptrArg(m.W), uint64(rowBytes), uint64(groupBytes), ptrArg(m.Y), i64Arg(m.LDY), i64Arg(m.YGroupStride), optPtr(m.YIdx),
		i32Arg(m.M), i32Arg(m.K))
}
