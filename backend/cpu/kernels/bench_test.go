package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// glmLengths are the GLM-4.7-Flash row lengths the benchmarks use.
var glmLengths = []int{2048, 1536, 5120, 10240}

// benchLevels runs f once per level (twin first) as sub-benchmarks.
func benchLevels(b *testing.B, name string, bytes int, f func()) {
	for _, l := range append([]Level{LevelGeneric}, fastLevels()...) {
		b.Run(fmt.Sprintf("%s/%v", name, l), func(b *testing.B) {
			defer setLevel(l)()
			b.SetBytes(int64(bytes))
			for b.Loop() {
				f()
			}
		})
	}
}

func BenchmarkF32(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, n := range glmLengths {
		x, y := randF32(r, n, 1), randF32(r, n, 1)
		w := make([]byte, 2*n)
		benchLevels(b, fmt.Sprintf("DotF32/n=%d", n), 8*n, func() { sink += DotF32(x, y) })
		benchLevels(b, fmt.Sprintf("SumSquares/n=%d", n), 4*n, func() { sink += SumSquares(x) })
		benchLevels(b, fmt.Sprintf("AxpyF32/n=%d", n), 12*n, func() { AxpyF32(1e-9, x, y) })
		benchLevels(b, fmt.Sprintf("ScaleF32/n=%d", n), 8*n, func() { ScaleF32(1, y) })
		benchLevels(b, fmt.Sprintf("DotBF16F32/n=%d", n), 6*n, func() { sink += DotBF16F32(w, x) })
		benchLevels(b, fmt.Sprintf("DotF16F32/n=%d", n), 6*n, func() { sink += DotF16F32(w, x) })
	}
	const n, heads = 576, 20
	a, m := randF32(r, n, 1), randF32(r, heads*n, 1)
	dst := make([]float32, heads)
	benchLevels(b, "DotF32Cols/576x20", 4*n*(heads+1), func() { DotF32Cols(a, m, heads, dst, 1) })
	benchLevels(b, "AxpyF32Cols/576x20", 4*n*(2*heads+1), func() { AxpyF32Cols(a, dst, 1, m, heads) })
}

// BenchmarkMatQuant measures the tile kernels on a 64-row × 16-column
// tile (prefill); bytes are the weight bytes.
func BenchmarkMatQuant(b *testing.B) {
	for _, c := range qcases {
		n := 2048
		nb := n / c.k.block
		r := rand.New(rand.NewPCG(1, 1))
		const rows, cols = 64, 16
		var w, x []byte
		for i := 0; i < rows; i++ {
			w = append(w, c.genW(r, nb, modeReal)...)
		}
		for i := 0; i < cols; i++ {
			x = append(x, c.genX(r, nb, modeReal)...)
		}
		dst := make([]float32, rows*cols)
		benchLevels(b, fmt.Sprintf("Mat%s/n=%d/64x16", c.k.name[3:], n), len(w), func() { c.mat(n, w, rows, x, cols, dst, rows) })
	}
}

func BenchmarkDotMMFP4Q8_0(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, n := range glmLengths {
		q, s := genMMFP4(r, n, modeReal)
		x := genQ8_0(r, n/32, modeReal)
		benchLevels(b, fmt.Sprintf("n=%d", n), len(q)+len(s), func() { sink += DotMMFP4Q8_0(n, q, s, x) })
	}
}
