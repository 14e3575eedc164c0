package quant

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"testing"

	"github.com/glmrun/glmrun/gguf"
)

// goldenInput returns deterministic test data built from a splitmix64
// stream with exact float32 arithmetic only (no transcendental functions),
// so it is identical on every platform and Go version: 8 kinds x 2048
// elements (near-gaussian, positive, outliers, tiny 1e-6, large 300, zero,
// constants, per-block scales 2^-8..2^8).
func goldenInput(seed uint64) []float32 {
	next := func() uint64 {
		seed += 0x9e3779b97f4a7c15
		z := seed
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		return z ^ z>>31
	}
	u := func() float32 { return float32(next()>>40) / (1 << 24) }
	g := func() float32 { return float32(u()+u()+u()+u()-2) * 1.7 }
	var x []float32
	for kind := 0; kind < 8; kind++ {
		blockScale := float32(1)
		for i := 0; i < 2048; i++ {
			var v float32
			switch kind {
			case 0:
				v = g()
			case 1:
				v = float32(u()*3) + 0.5
			case 2:
				v = g() * 0.02
				if next()%64 == 0 {
					v = g() * 3
				}
			case 3:
				v = g() * 1e-6
			case 4:
				v = g() * 300
			case 5:
				v = 0
			case 6:
				v = 0.7
				if i >= 1024 {
					v = -2.5
				}
			case 7:
				if i%32 == 0 {
					blockScale = float32(math.Ldexp(1, int(next()%17)-8))
				}
				v = g() * blockScale
			}
			x = append(x, v)
		}
	}
	return x
}

// goldenDigests are SHA-256 digests, per weight type t, of
//
//	Quantize(t, a) || Quantize(VecDotType(t), b) || VecDot of each 1024-element row (float32 LE)
//
// for a = goldenInput(1), b = goldenInput(2), as produced by llama.cpp's own C code
// (ggml-quants.c quantize_row_*_ref and ggml-cpu/quants.c ggml_vec_dot_*_generic at
// the snapshot named in the quant-formats spec, compiled with gcc 12 -O2, x86-64, no FMA).
// They pin the legacy and MXFP4 quantizers, the activation quantizers and the dot
// products, which the glm-tiny model files do not cover.
var goldenDigests = map[gguf.TensorType]string{
	gguf.TypeQ4_0:  "5f3bd04ba82b81d385d7193ecbf68c397dea828e014b868d89dd7cabb9d69491",
	gguf.TypeQ4_1:  "c42f7cb9277ad5758e55a1b64a3601d7234c2a3e24095c11a972fd1f5588d2ef",
	gguf.TypeQ5_0:  "e05ff7494f905feae9e71512bf25ba4e9e5155f42f60facfbdf33a559fc4d7fc",
	gguf.TypeQ5_1:  "9b8d2c2242759df026b553dd4e85cf3cd4f802f281db5caa3b32077d0d48689b",
	gguf.TypeQ8_0:  "e382ae823586911fe7f0612037dfb566b91e561ecd4503506edd815240d6665b",
	gguf.TypeQ4_K:  "4cebb52e2716978d95f6cc7e05c994115aa0725256acdd23eeef457ee40d7003",
	gguf.TypeQ5_K:  "20309e4c1571e29a4d4ae5474be52dabf96f58bc542a220610bb1faec6cf22a3",
	gguf.TypeQ6_K:  "df1587becd10aea1e8e5b59d0043982180fb04a967bc9e4c9069e4af252d0d36",
	gguf.TypeMXFP4: "e47525b0fb06409860e4612ed06b16e05f9f81ac3a4d68eb0449734696aac887",
}

func goldenRecord(t *testing.T, ty gguf.TensorType, a, b []float32) []byte {
	t.Helper()
	const rowlen = 1024
	vt := VecDotType(ty)
	w := make([]byte, rowBytes(ty, len(a)))
	x := make([]byte, rowBytes(vt, len(b)))
	if err := Quantize(ty, a, w); err != nil {
		t.Fatal(err)
	}
	if err := Quantize(vt, b, x); err != nil {
		t.Fatal(err)
	}
	rec := append(append([]byte{}, w...), x...)
	wr, xr := rowBytes(ty, rowlen), rowBytes(vt, rowlen)
	for r := 0; r < len(a)/rowlen; r++ {
		s, err := VecDot(ty, rowlen, w[r*wr:(r+1)*wr], x[r*xr:(r+1)*xr])
		if err != nil {
			t.Fatal(err)
		}
		rec = binary.LittleEndian.AppendUint32(rec, math.Float32bits(s))
	}
	return rec
}

func TestGoldenAgainstGGML(t *testing.T) {
	a, b := goldenInput(1), goldenInput(2)
	for ty, want := range goldenDigests {
		sum := sha256.Sum256(goldenRecord(t, ty, a, b))
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: digest %s, llama.cpp gives %s", ty, got, want)
		}
	}
	if len(goldenDigests) != 9 {
		t.Errorf("expected 9 golden types, have %d", len(goldenDigests))
	}
}
