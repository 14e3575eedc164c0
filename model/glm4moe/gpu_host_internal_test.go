package glm4moe

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/glmrun/glmrun/backend/cpu"
	"github.com/glmrun/glmrun/backend/quant"
	"github.com/glmrun/glmrun/gguf"
)

// TestHostF32MMFP4 checks the host-side dequantization the CUDA runner uses
// for weights it has no kernel for: an MMFP4 expert tensor (three slabs of
// codes-then-scales) must come out exactly as each slab dequantizes alone.
func TestHostF32MMFP4(t *testing.T) {
	const experts, rows, cols = 3, 6, 256
	r := rand.New(rand.NewPCG(1, 2))
	slab, err := quant.MMFP4SlabBytes(rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, experts*slab)
	want := make([]float32, experts*rows*cols)
	for e := 0; e < experts; e++ {
		src := make([]float32, rows*cols)
		for i := range src {
			src[i] = float32(r.NormFloat64())
		}
		if err := quant.QuantizeMMFP4(src, rows, cols, data[e*slab:(e+1)*slab]); err != nil {
			t.Fatal(err)
		}
		if err := quant.DequantizeMMFP4(data[e*slab:(e+1)*slab], rows, cols, want[e*rows*cols:(e+1)*rows*cols]); err != nil {
			t.Fatal(err)
		}
	}
	w, err := cpu.NewTensorWeight(gguf.TypeMMFP4, experts*rows, cols, rows, data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := hostF32(w)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("element %d (expert %d, row %d): %v, want %v", i, i/(rows*cols), i/cols%rows, got[i], want[i])
		}
	}
}

// TestDecodeSplitsFor: one MLA split per SM for one-token passes below
// mlaLongContext keys, two per SM from there, and the knob's fixed count at
// every depth.
func TestDecodeSplitsFor(t *testing.T) {
	g := &gpuRunner{decodeSplits: 264} // 132 SMs
	for _, c := range []struct{ kv, want int }{{1, 132}, {8192, 132}, {mlaLongContext - 1, 132}, {mlaLongContext, 264}, {131072, 264}} {
		if got := g.decodeSplitsFor(c.kv); got != c.want {
			t.Errorf("decodeSplitsFor(%d) = %d, want %d", c.kv, got, c.want)
		}
	}
	g = &gpuRunner{decodeSplits: 1}
	if got := g.decodeSplitsFor(10); got != 1 {
		t.Errorf("one SM: decodeSplitsFor(10) = %d, want 1", got)
	}
	g = &gpuRunner{decodeSplits: 396, decodeSplitsFixed: true}
	for _, kv := range []int{1, 100000} {
		if got := g.decodeSplitsFor(kv); got != 396 {
			t.Errorf("fixed: decodeSplitsFor(%d) = %d, want 396", kv, got)
		}
	}
}
