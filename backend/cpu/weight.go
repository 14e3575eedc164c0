package cpu

import (
	"fmt"

	"github.com/glmrun/glmrun/gguf"
)

// Weight is a 2-D weight matrix stored the ggml way: Rows rows of Cols
// elements, each row RowBytes() bytes of Type blocks, rows consecutive in
// Data. Data usually aliases the read-only model mapping; nothing here
// writes to it. y = W·x means y[r] = Σ_c W[r][c]·x[c].
//
// MMFP4 weights (made by NewTensorWeight) are the exception: Data is the
// tensor's slabs as stored (each slab: all its rows' codes, then all its
// rows' fp16 scales, see quant.MMFP4Row), addressed in place; row r of the
// Weight is row first+r of the tensor. Use Row, SubRows and DequantizeRows,
// never Data[r*RowBytes():...], to reach MMFP4 rows.
type Weight struct {
	Type       gguf.TensorType
	Rows, Cols int
	Data       []byte
	rowBytes   int
	slabRows   int // MMFP4: rows per slab (0 for block types)
	first      int // MMFP4: tensor row of Weight row 0
}

// NewWeight checks that data holds exactly rows rows of cols elements of type
// t and returns the Weight.
func NewWeight(t gguf.TensorType, rows, cols int, data []byte) (Weight, error) {
	if rows < 0 || cols <= 0 {
		return Weight{}, fmt.Errorf("cpu: weight of %d x %d elements", rows, cols)
	}
	rb, err := t.RowBytes(uint64(cols))
	if err != nil {
		return Weight{}, err
	}
	if want := uint64(rows) * rb; uint64(len(data)) != want {
		return Weight{}, fmt.Errorf("cpu: %s weight %d x %d needs %d bytes, have %d", t, rows, cols, want, len(data))
	}
	return Weight{Type: t, Rows: rows, Cols: cols, Data: data, rowBytes: int(rb)}, nil
}

// RowBytes is the size of one row in bytes (for MMFP4: its codes plus its
// scales, which are not adjacent in Data).
func (w Weight) RowBytes() int { return w.rowBytes }

// Row returns the bytes of row r. For block types it aliases Data; for
// MMFP4 it is a new one-row slab (the row's codes then its scales), which
// quant.Dequantize and quant.VecDot accept.
func (w Weight) Row(r int) []byte {
	if w.slabRows > 0 {
		q, s := w.mmfp4Row(r)
		return append(append(make([]byte, 0, len(q)+len(s)), q...), s...)
	}
	return w.Data[r*w.rowBytes : (r+1)*w.rowBytes]
}

// SubRows returns rows [r0, r1) as a Weight (no copy); used to pick one expert
// or one head out of a 3-D tensor.
func (w Weight) SubRows(r0, r1 int) Weight {
	if w.slabRows > 0 {
		s := w
		s.Rows, s.first = r1-r0, w.first+r0
		return s
	}
	return Weight{Type: w.Type, Rows: r1 - r0, Cols: w.Cols, Data: w.Data[r0*w.rowBytes : r1*w.rowBytes], rowBytes: w.rowBytes}
}

// mmfp4Row returns the codes (Cols/2 bytes) and scales (Cols/64 bytes) of
// MMFP4 row r, both aliasing Data.
func (w Weight) mmfp4Row(r int) (codes, scales []byte) {
	q, s := w.mmfp4Run(r, r+1)
	return q, s
}

// mmfp4Run returns the codes and scales of MMFP4 rows [r0, r1), which must
// lie in one slab: (r1-r0)·Cols/2 code bytes and (r1-r0)·Cols/64 scale
// bytes, each region row-major (the layout the kernels' slab-row forms take).
func (w Weight) mmfp4Run(r0, r1 int) (codes, scales []byte) {
	t0 := w.first + r0
	k, i := t0/w.slabRows, t0%w.slabRows
	n := r1 - r0
	qb, sb := w.Cols/2, w.Cols/64
	slab := w.Data[k*w.slabRows*(qb+sb) : (k+1)*w.slabRows*(qb+sb)]
	sOff := w.slabRows * qb
	return slab[i*qb : (i+n)*qb], slab[sOff+i*sb : sOff+(i+n)*sb]
}

// slabEnd returns the end (exclusive, in Weight rows) of the run of rows
// starting at r that stays in one MMFP4 slab, capped at r1.
func (w Weight) slabEnd(r, r1 int) int {
	t := w.first + r
	return min(r1, r+w.slabRows-t%w.slabRows)
}
