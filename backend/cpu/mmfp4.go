package cpu

import (
	"fmt"

	"github.com/glmrun/glmrun/backend/quant"
	"github.com/glmrun/glmrun/gguf"
)

// MMFP4 weights (gguf.TypeMMFP4) are stored per 2-D slab: all rows' codes,
// then all rows' fp16 scales (quant.MMFP4Row). A Weight addresses rows by a
// fixed stride, so NewTensorWeight repacks an MMFP4 tensor at load time
// into a heap copy where each row is a one-row slab: its cols/2 code bytes
// immediately followed by its cols/128 scales, RowBytes() = cols/128*66
// bytes. Row, SubRows (any row range, expert or head slices included),
// quant.Dequantize and quant.VecDot then work on MMFP4 rows unchanged.
// The copy costs the tensor's size in memory (no zero-copy mmap for MMFP4
// yet; a slab-aware kernel can remove it).

func init() {
	dotKernels[gguf.TypeMMFP4] = dotMMFP4Row
}

// dotMMFP4Row dots one repacked MMFP4 row (codes then scales) with a Q8_0 row.
func dotMMFP4Row(n int, w, xq []byte) float32 {
	return quant.DotMMFP4Q8_0(n, w[:n/2], w[n/2:n/2+n/64], xq)
}

// CheckWeightType checks a GGUF tensor type for NewTensorWeight: the types
// CheckType accepts, MMFP4 included (NewTensorWeight repacks it into
// addressable rows; a Weight made by NewWeight from raw MMFP4 slab bytes of
// more than one row would be misaddressed).
func CheckWeightType(t gguf.TensorType) error { return CheckType(t) }

// NewTensorWeight builds the Weight of a GGUF tensor of rows x cols elements
// whose 2-D slabs hold slabRows rows each (ne1; rows = slabRows for a matrix,
// slabRows*ne2 for a 3-D expert or head bank). Block types alias data (as
// NewWeight); MMFP4 is repacked into one-row slabs (see above).
func NewTensorWeight(t gguf.TensorType, rows, cols, slabRows int, data []byte) (Weight, error) {
	if t != gguf.TypeMMFP4 {
		return NewWeight(t, rows, cols, data)
	}
	packed, err := RepackMMFP4(data, rows, cols, slabRows)
	if err != nil {
		return Weight{}, err
	}
	return NewWeight(t, rows, cols, packed)
}

// RepackMMFP4 converts rows x cols MMFP4 data laid out as rows/slabRows
// slabs of slabRows rows into rows one-row slabs (row r = its codes, then its
// scales), a new slice of the same size.
func RepackMMFP4(data []byte, rows, cols, slabRows int) ([]byte, error) {
	if slabRows <= 0 || rows <= 0 || rows%slabRows != 0 {
		return nil, fmt.Errorf("cpu: mmfp4 weight of %d rows is not whole slabs of %d rows", rows, slabRows)
	}
	slab, err := quant.MMFP4SlabBytes(slabRows, cols)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	nSlab := rows / slabRows
	if len(data) != nSlab*slab {
		return nil, fmt.Errorf("cpu: mmfp4 weight %d x %d needs %d bytes, have %d", rows, cols, nSlab*slab, len(data))
	}
	qb, sb := cols/2, cols/quant.MMFP4GroupSize*2
	out := make([]byte, len(data))
	for k := 0; k < nSlab; k++ {
		s := data[k*slab : (k+1)*slab]
		for r := 0; r < slabRows; r++ {
			q, sc, err := quant.MMFP4Row(s, slabRows, cols, r)
			if err != nil {
				return nil, fmt.Errorf("cpu: %w", err)
			}
			dst := out[(k*slabRows+r)*(qb+sb):]
			copy(dst[:qb], q)
			copy(dst[qb:qb+sb], sc)
		}
	}
	return out, nil
}

// DequantizeRows dequantizes rows [r0, r1) of w exactly into dst
// ((r1-r0)*w.Cols floats, row-major). Use it instead of quant.Dequantize over
// w.Data[r0*RowBytes():r1*RowBytes()]: that shortcut is right for block types
// but wrong for MMFP4 Weights, whose rows are one-row slabs (several one-row
// slabs are not one slab).
func DequantizeRows(w Weight, r0, r1 int, dst []float32) error {
	if r0 < 0 || r1 > w.Rows || r0 > r1 {
		return fmt.Errorf("cpu: rows [%d, %d) of a %d-row weight", r0, r1, w.Rows)
	}
	if len(dst) != (r1-r0)*w.Cols {
		return fmt.Errorf("cpu: dequantize %d rows of %d: dst has %d floats", r1-r0, w.Cols, len(dst))
	}
	if w.Type != gguf.TypeMMFP4 {
		return quant.Dequantize(w.Type, w.Data[r0*w.rowBytes:r1*w.rowBytes], dst)
	}
	for r := r0; r < r1; r++ {
		if err := quant.Dequantize(w.Type, w.Row(r), dst[(r-r0)*w.Cols:(r-r0+1)*w.Cols]); err != nil {
			return err
		}
	}
	return nil
}
