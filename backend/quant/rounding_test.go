package quant

import (
	"encoding/binary"
	"math"
	"testing"
)

// These tests pin each reference quantizer's rounding rule on hand-made
// blocks (roundf vs round-half-even vs truncation), so a quantizer that is
// "close" but not ggml's fails.

func TestQ8_0RoundsHalfAwayFromZero(t *testing.T) {
	x := make([]float32, 32)
	x[0] = 127 // d = 1
	x[1], x[2], x[3], x[4] = 2.5, -2.5, 3.5, 0.49999997
	b := make([]byte, blockQ8_0)
	QuantizeRowQ8_0(x, b)
	if d := fp16At(b); d != 1 {
		t.Fatalf("d = %g", d)
	}
	want := []int8{127, 3, -3, 4, 0}
	for i, w := range want {
		if got := int8(b[2+i]); got != w {
			t.Errorf("q[%d] = %d, want %d", i, got, w)
		}
	}
}

func TestQ8KRoundsHalfToEven(t *testing.T) {
	x := make([]float32, 256)
	x[0] = -127 // signed max is negative: iscale = -127/-127 = 1
	x[1], x[2], x[3], x[17] = 2.5, -2.5, 3.5, 1
	b := make([]byte, blockQ8_K)
	QuantizeRowQ8K(x, b)
	if d := math.Float32frombits(binary.LittleEndian.Uint32(b)); d != 1 {
		t.Fatalf("d = %g", d)
	}
	want := []int8{-127, 2, -2, 4}
	for i, w := range want {
		if got := int8(b[4+i]); got != w {
			t.Errorf("q[%d] = %d, want %d", i, got, w)
		}
	}
	if s0, s1 := int16(binary.LittleEndian.Uint16(b[260:])), int16(binary.LittleEndian.Uint16(b[262:])); s0 != -127+2-2+4 || s1 != 1 {
		t.Errorf("bsums = %d, %d", s0, s1)
	}
	// An all-zero block writes zeros everywhere, bsums included.
	for i := range b {
		b[i] = 0xff
	}
	QuantizeRowQ8K(make([]float32, 256), b)
	for i, v := range b {
		if v != 0 {
			t.Fatalf("zero block byte %d = %#x", i, v)
		}
	}
}

func TestQ4_0AndQ5_0Truncate(t *testing.T) {
	x := make([]float32, 32)
	x[0] = -8 // d = -8/-8 = 1
	x[1], x[2], x[3] = 3.4, 3.6, 8
	b := make([]byte, blockQ4_0)
	QuantizeRowQ4_0(x, b)
	// q = min(15, trunc(x + 8.5)): 3.4 -> 11, 3.6 -> 12, 8 -> 15 (clamped), -8 -> 0
	want := []uint8{0, 11, 12, 15}
	for i, w := range want {
		if got := b[2+i] & 0x0f; got != w {
			t.Errorf("Q4_0 q[%d] = %d, want %d", i, got, w)
		}
	}
	x[0] = 16 // d = 16/-16 = -1: q = trunc(-x + 16.5)
	b5 := make([]byte, blockQ5_0)
	QuantizeRowQ5_0(x, b5)
	if d := fp16At(b5); d != -1 {
		t.Fatalf("Q5_0 d = %g", d)
	}
	y := make([]float32, 32)
	DequantizeRowQ5_0(b5, y)
	wantY := []float32{16, 3, 4, 8}
	for i, w := range wantY {
		if y[i] != w {
			t.Errorf("Q5_0 element %d = %g, want %g", i, y[i], w)
		}
	}
}

func TestMXFP4Codes(t *testing.T) {
	x := make([]float32, 32)
	x[0] = 6 // e = floor(log2 6) - 2 + 127 = 127, unit 1
	x[1], x[2], x[3], x[20] = 2.5, -0.75, 1e-9, -4
	b := make([]byte, blockMXFP4)
	QuantizeRowMXFP4(x, b)
	if b[0] != 127 {
		t.Fatalf("e = %d, want 127", b[0])
	}
	want := map[int]uint8{0: 7, 1: 4, 2: 9, 3: 0, 20: 14}
	for i, w := range want {
		c := b[1+i%16]
		if i >= 16 {
			c >>= 4
		}
		if c&0x0f != w {
			t.Errorf("element %d code %d, want %d", i, c&0x0f, w)
		}
	}
	if E8M0ToFloat32Half(0) != float32(math.Ldexp(1, -128)) || E8M0ToFloat32Half(1) != float32(math.Ldexp(1, -127)) || E8M0ToFloat32Half(130) != 4 {
		t.Error("E8M0ToFloat32Half")
	}
}

func TestQ8_0EvenRoundsHalfToEven(t *testing.T) {
	x := make([]float32, 32)
	x[0] = -127 // id = 1
	x[1], x[2], x[3] = 2.5, -2.5, 3.5
	b := make([]byte, blockQ8_0)
	QuantizeRowQ8_0Even(x, b)
	ref := make([]byte, blockQ8_0)
	QuantizeRowQ8_0(x, ref)
	if fp16At(b) != 1 || fp16At(ref) != 1 {
		t.Fatalf("d = %g / %g, want 1", fp16At(b), fp16At(ref))
	}
	want := []int8{-127, 2, -2, 4}
	for i, w := range want {
		if got := int8(b[2+i]); got != w {
			t.Errorf("q[%d] = %d, want %d", i, got, w)
		}
	}
	if int8(ref[3]) != 3 {
		t.Errorf("reference quantizer gave %d for 2.5, want 3", int8(ref[3]))
	}
}
