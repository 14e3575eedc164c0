package cpu

import (
	"fmt"

	"github.com/glmrun/glmrun/backend/cpu/kernels"
	"github.com/glmrun/glmrun/backend/quant"
	"github.com/glmrun/glmrun/gguf"
)

// MMFP4 weights (gguf.TypeMMFP4) are stored per 2-D slab: all rows' codes,
// then all rows' fp16 scales (quant.MMFP4Row). NewTensorWeight keeps them in
// place (Data aliases the mapping, no copy) and the Weight addresses rows by
// slab (see Weight): products call the kernels' slab-row forms
// (kernels.DotMMFP4Q8_0Rows, kernels.MatMMFP4Q8_0) on runs of rows within one
// slab.

// CheckWeightType checks a GGUF tensor type for NewTensorWeight: the types
// CheckType accepts, MMFP4 included.
func CheckWeightType(t gguf.TensorType) error { return CheckType(t) }

// NewTensorWeight builds the Weight of a GGUF tensor of rows x cols elements
// whose 2-D slabs hold slabRows rows each (ne1; rows = slabRows for a matrix,
// slabRows*ne2 for a 3-D expert or head bank). The Weight aliases data for
// every type; for MMFP4 it addresses the slabs in place (see Weight).
//
// NewTensorWeight also advises huge pages for data (AdviseHugePages; the
// advice is best-effort and its failure is not an error).
func NewTensorWeight(t gguf.TensorType, rows, cols, slabRows int, data []byte) (Weight, error) {
	if rows > 0 {
		_ = AdviseHugePages(data) // advisory only
	}
	if t != gguf.TypeMMFP4 {
		return NewWeight(t, rows, cols, data)
	}
	if slabRows <= 0 || rows <= 0 || rows%slabRows != 0 {
		return Weight{}, fmt.Errorf("cpu: mmfp4 weight of %d rows is not whole slabs of %d rows", rows, slabRows)
	}
	slab, err := quant.MMFP4SlabBytes(slabRows, cols)
	if err != nil {
		return Weight{}, fmt.Errorf("cpu: %w", err)
	}
	if nSlab := rows / slabRows; len(data) != nSlab*slab {
		return Weight{}, fmt.Errorf("cpu: mmfp4 weight %d x %d needs %d bytes, have %d", rows, cols, nSlab*slab, len(data))
	}
	return Weight{Type: t, Rows: rows, Cols: cols, Data: data, rowBytes: cols/2 + cols/64, slabRows: slabRows}, nil
}

// DequantizeRows dequantizes rows [r0, r1) of w exactly into dst
// ((r1-r0)*w.Cols floats, row-major). Use it instead of quant.Dequantize over
// w.Data[r0*RowBytes():r1*RowBytes()]: that shortcut is right for block types
// but wrong for MMFP4 Weights, whose rows live in slabs.
func DequantizeRows(w Weight, r0, r1 int, dst []float32) error {
	if r0 < 0 || r1 > w.Rows || r0 > r1 {
		return fmt.Errorf("cpu: rows [%d, %d) of a %d-row weight", r0, r1, w.Rows)
	}
	if len(dst) != (r1-r0)*w.Cols {
		return fmt.Errorf("cpu: dequantize %d rows of %d: dst has %d floats", r1-r0, w.Cols, len(dst))
	}
	if w.slabRows == 0 {
		return quant.Dequantize(w.Type, w.Data[r0*w.rowBytes:r1*w.rowBytes], dst)
	}
	for r := r0; r < r1; r++ {
		q, s := w.mmfp4Row(r)
		quant.DequantizeRowMMFP4(q, s, dst[(r-r0)*w.Cols:(r-r0+1)*w.Cols])
	}
	return nil
}

// mmfp4Rows computes rows [r0, r1) of an MMFP4 product job for all its
// tokens, slab run by slab run: out rows of one group for token i start at
// outIdx(r, i).
func (j *job) mmfp4Rows(r0, r1 int) {
	g, n := j.g, j.W.Cols
	k := r0 / g.rows
	xg := j.xq[k*g.n*j.qb : (k+1)*g.n*j.qb]
	for a := r0; a < r1; {
		b := j.W.slabEnd(a, r1)
		q, s := j.W.mmfp4Run(a, b)
		if g.n == 1 {
			o := g.outIdx(a, 0)
			kernels.DotMMFP4Q8_0Rows(n, q, s, xg, j.Out[o:o+b-a])
		} else {
			kernels.MatMMFP4Q8_0(n, q, s, b-a, xg, g.n, j.Out[g.outIdx(a, 0):], g.rows)
		}
		a = b
	}
}
