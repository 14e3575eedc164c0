package quant

import (
	"math"
	"math/rand/v2"
	"testing"
)

// ggmlFP32ToFP16 is an independent port of ggml's branch-light
// ggml_compute_fp32_to_fp16 (FP16 rounding done by float32 hardware
// arithmetic), used as the oracle for Float32ToFP16.
func ggmlFP32ToFP16(f float32) uint16 {
	base := float32(abs32(f)*0x1p+112) * 0x1p-110
	w := math.Float32bits(f)
	shl1w := w + w
	sign := w & 0x80000000
	bias := shl1w & 0xff000000
	if bias < 0x71000000 {
		bias = 0x71000000
	}
	base = math.Float32frombits(bias>>1+0x07800000) + base
	bits := math.Float32bits(base)
	expBits := (bits >> 13) & 0x00007c00
	mantBits := bits & 0x00000fff
	nonsign := expBits + mantBits
	if shl1w > 0xff000000 {
		nonsign = 0x7e00
	}
	return uint16(sign>>16) | uint16(nonsign)
}

// ggmlFP16ToFP32 is an independent port of ggml_compute_fp16_to_fp32.
func ggmlFP16ToFP32(h uint16) float32 {
	w := uint32(h) << 16
	sign := w & 0x80000000
	twoW := w + w
	normalized := math.Float32frombits(twoW>>4+0xe0<<23) * 0x1p-112
	denormalized := math.Float32frombits(twoW>>17|126<<23) - 0.5
	if twoW < 1<<27 {
		return math.Float32frombits(sign | math.Float32bits(denormalized))
	}
	return math.Float32frombits(sign | math.Float32bits(normalized))
}

func TestFP16ToFloat32AllValues(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		got := FP16ToFloat32(h)
		want := ggmlFP16ToFP32(h)
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("FP16ToFloat32(%#04x) = %#08x, ggml gives %#08x", h, math.Float32bits(got), math.Float32bits(want))
		}
		// Every non-NaN fp16 must survive the round trip exactly.
		if h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
			if back := Float32ToFP16(got); back != h {
				t.Fatalf("round trip of %#04x gave %#04x", h, back)
			}
		}
	}
	// Spot values.
	cases := []struct {
		h    uint16
		want uint32
	}{
		{0x0000, 0x00000000}, {0x8000, 0x80000000}, {0x0001, 0x33800000}, // 2^-24
		{0x03ff, 0x387fc000}, {0x0400, 0x38800000}, {0x3c00, 0x3f800000},
		{0x7bff, 0x477fe000}, {0x7c00, 0x7f800000}, {0xfc00, 0xff800000},
		{0x7e00, 0x7fc00000}, {0x7c01, 0x7fc02000}, {0xfe01, 0xffc02000},
	}
	for _, c := range cases {
		if got := math.Float32bits(FP16ToFloat32(c.h)); got != c.want {
			t.Errorf("FP16ToFloat32(%#04x) = %#08x, want %#08x", c.h, got, c.want)
		}
	}
}

func TestFloat32ToFP16MatchesGGML(t *testing.T) {
	check := func(f float32) {
		t.Helper()
		if got, want := Float32ToFP16(f), ggmlFP32ToFP16(f); got != want {
			t.Fatalf("Float32ToFP16(%g = %#08x) = %#04x, ggml gives %#04x", f, math.Float32bits(f), got, want)
		}
	}
	// Every fp16 value, the midpoints to its neighbours and one float32 ulp
	// either side of them: this covers every rounding boundary, subnormals,
	// overflow to Inf and the tie-to-even cases.
	for i := 0; i < 0x7c00; i++ {
		for _, s := range []uint16{0, 0x8000} {
			a := FP16ToFloat32(uint16(i) | s)
			b := FP16ToFloat32(uint16(i+1) | s)
			if i+1 == 0x7c00 { // midpoint to the (virtual) next binade value 65536
				b = 65536
				if s != 0 {
					b = -65536
				}
			}
			mid := float32((float64(a) + float64(b)) / 2)
			for _, f := range []float32{a, mid, math.Nextafter32(mid, 0), math.Nextafter32(mid, 2*mid), math.Nextafter32(a, 0)} {
				check(f)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 1<<18; i++ {
		check(math.Float32frombits(rng.Uint32()))
	}
	for _, f := range []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), 1e-30, -1e-30, 1e30, 65504, 65519.99, 65520} {
		check(f)
	}
	if h := Float32ToFP16(float32(math.NaN())); h&0x7fff != 0x7e00 {
		t.Errorf("NaN converted to %#04x, want quiet NaN 0x7e00", h)
	}
}

func TestBF16(t *testing.T) {
	cases := []struct {
		f    uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, {0x3f808000, 0x3f80}, // tie, even stays
		{0x3f818000, 0x3f82},                       // tie, odd rounds up
		{0x3f808001, 0x3f81}, {0x7f7fffff, 0x7f80}, // rounds to Inf
		{0x80000000, 0x8000}, {0x7f800000, 0x7f80},
		{0x7f800001, 0x7fc0}, // signalling NaN made quiet
		{0xffc12345, 0xffc1},
	}
	for _, c := range cases {
		if got := Float32ToBF16(math.Float32frombits(c.f)); got != c.want {
			t.Errorf("Float32ToBF16(%#08x) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
	for i := 0; i < 1<<16; i++ {
		f := BF16ToFloat32(uint16(i))
		if math.Float32bits(f) != uint32(i)<<16 {
			t.Fatalf("BF16ToFloat32(%#04x) = %#08x", i, math.Float32bits(f))
		}
		if !math.IsNaN(float64(f)) && Float32ToBF16(f) != uint16(i) {
			t.Fatalf("bf16 round trip of %#04x failed", i)
		}
	}
}
