package cpu

import (
	"fmt"

	"github.com/glmrun/glmrun/gguf"
)

// Weight is a 2-D weight matrix stored the ggml way: Rows rows of Cols
// elements, each row RowBytes() bytes of Type blocks, rows consecutive in
// Data. Data usually aliases the read-only model mapping; nothing here
// writes to it. y = W·x means y[r] = Σ_c W[r][c]·x[c].
type Weight struct {
	Type       gguf.TensorType
	Rows, Cols int
	Data       []byte
	rowBytes   int
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

// RowBytes is the size of one row in bytes.
func (w Weight) RowBytes() int { return w.rowBytes }

// Row returns the bytes of row r.
func (w Weight) Row(r int) []byte {
	return w.Data[r*w.rowBytes : (r+1)*w.rowBytes]
}

// SubRows returns rows [r0, r1) as a Weight (no copy); used to pick one expert
// or one head out of a 3-D tensor.
func (w Weight) SubRows(r0, r1 int) Weight {
	return Weight{Type: w.Type, Rows: r1 - r0, Cols: w.Cols, Data: w.Data[r0*w.rowBytes : r1*w.rowBytes], rowBytes: w.rowBytes}
}
