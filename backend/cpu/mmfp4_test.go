package cpu

import (
	"math/rand/v2"
	"testing"

	"github.com/glmrun/glmrun/backend/quant"
	"github.com/glmrun/glmrun/gguf"
)

// TestMMFP4WeightRows checks that a 3-D MMFP4 bank, used in place (no copy),
// addresses every row (also through SubRows) as the slab layout defines it,
// and that the fast and exact matmuls (one token: slab-row kernel; several:
// tile kernel) agree with float32 products on the dequantized rows.
func TestMMFP4WeightRows(t *testing.T) {
	const cols, slabRows, banks = 256, 6, 3
	rng := rand.New(rand.NewPCG(1, 2))
	rows := slabRows * banks
	slab, _ := quant.MMFP4SlabBytes(slabRows, cols)
	data := make([]byte, banks*slab)
	want := make([]float32, rows*cols)
	for k := 0; k < banks; k++ {
		src := make([]float32, slabRows*cols)
		for i := range src {
			src[i] = float32(rng.NormFloat64())
		}
		if err := quant.QuantizeMMFP4(src, slabRows, cols, data[k*slab:(k+1)*slab]); err != nil {
			t.Fatal(err)
		}
		if err := quant.DequantizeMMFP4(data[k*slab:(k+1)*slab], slabRows, cols, want[k*slabRows*cols:(k+1)*slabRows*cols]); err != nil {
			t.Fatal(err)
		}
	}
	w, err := NewTensorWeight(gguf.TypeMMFP4, rows, cols, slabRows, data)
	if err != nil {
		t.Fatal(err)
	}
	if &w.Data[0] != &data[0] || len(w.Data) != len(data) {
		t.Fatal("MMFP4 weight does not alias the tensor data")
	}
	if err := CheckWeightType(gguf.TypeMMFP4); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, cols)
	sub := w.SubRows(slabRows+1, 2*slabRows+3) // straddles a slab boundary
	for r := 0; r < rows; r++ {
		if err := quant.Dequantize(gguf.TypeMMFP4, w.Row(r), got); err != nil {
			t.Fatal(err)
		}
		for c := range got {
			if got[c] != want[r*cols+c] {
				t.Fatalf("row %d col %d: %v, want %v", r, c, got[c], want[r*cols+c])
			}
		}
		if r >= slabRows+1 && r < 2*slabRows+3 {
			if string(sub.Row(r-slabRows-1)) != string(w.Row(r)) {
				t.Fatalf("SubRows row %d differs", r)
			}
		}
	}
	// DequantizeRows over a range that straddles slabs.
	part := make([]float32, 9*cols)
	if err := DequantizeRows(w, 4, 13, part); err != nil {
		t.Fatal(err)
	}
	for i, v := range part {
		if v != want[4*cols+i] {
			t.Fatalf("DequantizeRows element %d: %v, want %v", i, v, want[4*cols+i])
		}
	}
	if err := DequantizeRows(w, 4, rows+1, nil); err == nil {
		t.Error("DequantizeRows out of range: no error")
	}
	p := NewPool(2)
	for _, n := range []int{1, 3} {
		x := make([]float32, n*cols)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		for _, mode := range []Mode{Exact, Fast} {
			out := make([]float32, n*rows)
			if err := MatMul(p, mode, out, w, x, n); err != nil {
				t.Fatalf("%s: %v", mode, err)
			}
			// A sub-bank straddling a slab boundary gives the same rows.
			subOut := make([]float32, n*sub.Rows)
			if err := MatMul(p, mode, subOut, sub, x, n); err != nil {
				t.Fatalf("%s sub: %v", mode, err)
			}
			for i := 0; i < n; i++ {
				for r := 0; r < sub.Rows; r++ {
					if subOut[i*sub.Rows+r] != out[i*rows+slabRows+1+r] {
						t.Fatalf("%s n=%d: sub row %d token %d: %v, want %v", mode, n, r, i, subOut[i*sub.Rows+r], out[i*rows+slabRows+1+r])
					}
				}
			}
			xq := make([]byte, cols/32*34)
			for i := 0; i < n; i++ {
				if err := quant.Quantize(gguf.TypeQ8_0, x[i*cols:(i+1)*cols], xq); err != nil {
					t.Fatal(err)
				}
				for r := 0; r < rows; r++ {
					var ref float64
					if mode == Fast {
						// Same Q8_0 activations, original slab addressing.
						k := r / slabRows
						q, sc, err := quant.MMFP4Row(data[k*slab:(k+1)*slab], slabRows, cols, r%slabRows)
						if err != nil {
							t.Fatal(err)
						}
						ref = float64(quant.DotMMFP4Q8_0(cols, q, sc, xq))
					} else {
						for c := 0; c < cols; c++ {
							ref += float64(want[r*cols+c]) * float64(x[i*cols+c])
						}
					}
					if d := float64(out[i*rows+r]) - ref; d > 1e-4 || d < -1e-4 {
						t.Errorf("%s: out[%d][%d] = %v, want %v", mode, i, r, out[i*rows+r], ref)
					}
				}
			}
		}
	}
	if _, err := NewTensorWeight(gguf.TypeMMFP4, rows, cols, 4, data); err == nil {
		t.Error("rows not whole slabs: no error")
	}
	if _, err := NewTensorWeight(gguf.TypeMMFP4, rows, cols, slabRows, data[:len(data)-2]); err == nil {
		t.Error("short data: no error")
	}
}
