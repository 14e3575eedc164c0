package quant

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/glmrun/glmrun/gguf"
)

// TestMMFP4Layout builds a row whose codes are known (scale exactly 1 since
// amax = 6) and checks every nibble position against the spec layout:
// group g, sub-block s, byte 16s+j: low nibble = element 128g+32s+j, high
// nibble = element 128g+32s+16+j.
func TestMMFP4Layout(t *testing.T) {
	vals := []float32{0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6}
	const n = 256
	x := make([]float32, n)
	code := make([]uint8, n)
	for p := range x {
		c := uint8((p*7 + p/16) % 16)
		if c == 8 {
			c = 0 // -0 quantizes to +0
		}
		code[p] = c
		x[p] = vals[c]
	}
	x[5], code[5] = 6, 7 // make sure both groups have amax 6
	x[200], code[200] = -6, 15
	q := make([]byte, n/2)
	s := make([]byte, n/64)
	QuantizeRowMMFP4(x, q, s)
	for g := 0; g < 2; g++ {
		if h := binary.LittleEndian.Uint16(s[2*g:]); h != 0x3c00 {
			t.Fatalf("group %d scale = %#04x, want fp16 1.0", g, h)
		}
		for sb := 0; sb < 4; sb++ {
			for j := 0; j < 16; j++ {
				b := q[64*g+16*sb+j]
				lo, hi := 128*g+32*sb+j, 128*g+32*sb+16+j
				if b&0x0f != code[lo] || b>>4 != code[hi] {
					t.Fatalf("byte %d = %#02x, want low %x (element %d) high %x (element %d)", 64*g+16*sb+j, b, code[lo], lo, code[hi], hi)
				}
			}
		}
	}
	y := make([]float32, n)
	DequantizeRowMMFP4(q, s, y)
	for p := range x {
		if y[p] != x[p] {
			t.Fatalf("element %d: %g came back as %g", p, x[p], y[p])
		}
	}
}

// TestMMFP4TieRule pins the documented tie rule: a value exactly between two
// E2M1 points takes the smaller magnitude; ±tiny values take +0.
func TestMMFP4TieRule(t *testing.T) {
	cases := []struct {
		x    float32
		code uint8
	}{
		{0.25, 0}, {-0.25, 0}, {0.75, 1}, {1.25, 2}, {1.75, 3}, {2.5, 4}, {3.5, 5}, {5, 6},
		{-0.75, 9}, {-1.75, 11}, {-2.5, 12}, {-5, 14}, {-1e-9, 0}, {5.999, 7},
	}
	for _, c := range cases {
		x := make([]float32, 128)
		x[0] = 6 // scale = 1
		x[1] = c.x
		q := make([]byte, 64)
		s := make([]byte, 2)
		QuantizeRowMMFP4(x, q, s)
		if got := q[1] & 0x0f; got != c.code {
			t.Errorf("x = %g: code %d, want %d", c.x, got, c.code)
		}
	}
}

func TestMMFP4SlabAndRows(t *testing.T) {
	const rows, cols = 5, 384
	rng := rand.New(rand.NewPCG(11, 12))
	x := distributions[0].gen(rng, rows*cols)
	size, err := MMFP4SlabBytes(rows, cols)
	if err != nil || size != rows*cols/128*66 {
		t.Fatalf("MMFP4SlabBytes = %d, %v", size, err)
	}
	slab := make([]byte, size)
	if err := QuantizeMMFP4(x, rows, cols, slab); err != nil {
		t.Fatal(err)
	}
	// The generic entry point treats the slab as one unit and agrees.
	viaGeneric := make([]byte, size)
	if err := Quantize(gguf.TypeMMFP4, x, viaGeneric); err != nil || !bytes.Equal(viaGeneric, slab) {
		t.Fatalf("Quantize(MMFP4) differs from QuantizeMMFP4 (err %v)", err)
	}
	all := make([]float32, rows*cols)
	if err := DequantizeMMFP4(slab, rows, cols, all); err != nil {
		t.Fatal(err)
	}
	generic := make([]float32, rows*cols)
	if err := Dequantize(gguf.TypeMMFP4, slab, generic); err != nil {
		t.Fatal(err)
	}
	xq := make([]byte, rowBytes(gguf.TypeQ8_0, cols))
	for r := 0; r < rows; r++ {
		qr, sr, err := MMFP4Row(slab, rows, cols, r)
		if err != nil {
			t.Fatal(err)
		}
		if len(qr) != cols/2 || len(sr) != cols/64 {
			t.Fatalf("row %d: %d code bytes, %d scale bytes", r, len(qr), len(sr))
		}
		// The row's codes and scales must be what quantizing the row alone gives.
		q1, s1 := make([]byte, cols/2), make([]byte, cols/64)
		QuantizeRowMMFP4(x[r*cols:(r+1)*cols], q1, s1)
		if !bytes.Equal(q1, qr) || !bytes.Equal(s1, sr) {
			t.Fatalf("row %d: slab bytes differ from the row quantized alone", r)
		}
		y := make([]float32, cols)
		DequantizeRowMMFP4(qr, sr, y)
		for i := range y {
			if math.Float32bits(y[i]) != math.Float32bits(all[r*cols+i]) || math.Float32bits(y[i]) != math.Float32bits(generic[r*cols+i]) {
				t.Fatalf("row %d element %d: row %g, slab %g, generic %g", r, i, y[i], all[r*cols+i], generic[r*cols+i])
			}
		}
		// The row dot through MMFP4Row equals VecDot on a one-row slab.
		act := distributions[0].gen(rng, cols)
		QuantizeRowQ8_0(act, xq)
		one := append(append([]byte{}, qr...), sr...)
		want, err := VecDot(gguf.TypeMMFP4, cols, one, xq)
		if err != nil {
			t.Fatal(err)
		}
		if got := DotMMFP4Q8_0(cols, qr, sr, xq); got != want {
			t.Fatalf("row %d: DotMMFP4Q8_0 %g, VecDot %g", r, got, want)
		}
	}
}

func TestMMFP4Errors(t *testing.T) {
	slab := make([]byte, 2*128/128*66)
	for _, c := range []struct{ rows, cols, r int }{{2, 100, 0}, {0, 128, 0}, {2, 128, 2}, {2, 128, -1}, {3, 128, 0}} {
		if _, _, err := MMFP4Row(slab, c.rows, c.cols, c.r); err == nil {
			t.Errorf("MMFP4Row(%d x %d, row %d) on %d bytes: no error", c.rows, c.cols, c.r, len(slab))
		}
	}
	if err := DequantizeMMFP4(slab, 2, 128, make([]float32, 255)); err == nil {
		t.Error("DequantizeMMFP4 accepted a short dst")
	}
	if err := QuantizeMMFP4(make([]float32, 256), 2, 128, slab[1:]); err == nil {
		t.Error("QuantizeMMFP4 accepted a short slab")
	}
	if _, err := MMFP4SlabBytes(1, 64); err == nil {
		t.Error("MMFP4SlabBytes accepted cols = 64")
	}
	// An amax beyond fp16 range saturates the scale instead of writing Inf.
	x := make([]float32, 128)
	x[0] = 1e9
	q, s := make([]byte, 64), make([]byte, 2)
	QuantizeRowMMFP4(x, q, s)
	if h := binary.LittleEndian.Uint16(s); h != 0x7bff {
		t.Errorf("huge amax: scale %#04x, want 0x7bff", h)
	}
}
