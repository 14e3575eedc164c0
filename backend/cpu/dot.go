package cpu

import (
	"fmt"

	"github.com/glmrun/glmrun/backend/cpu/kernels"
	"github.com/glmrun/glmrun/backend/quant"
	"github.com/glmrun/glmrun/gguf"
)

// DotFunc returns the dot product of one weight row w (n elements of the
// weight type) with one activation row xq (n elements quantized to the
// weight type's vec-dot type, quant.VecDotType).
type DotFunc func(n int, w, xq []byte) float32

// dotKernels holds one DotFunc per weight type: the SIMD kernels of package
// kernels where they exist, else quant's pure-Go per-type functions. Every
// entry must agree with quant.VecDot up to float summation order.
var dotKernels = map[gguf.TensorType]DotFunc{
	gguf.TypeF16:   dotF16,
	gguf.TypeBF16:  dotBF16,
	gguf.TypeQ4_0:  quant.DotQ4_0Q8_0,
	gguf.TypeQ4_1:  quant.DotQ4_1Q8_1,
	gguf.TypeQ5_1:  quant.DotQ5_1Q8_1,
	gguf.TypeMXFP4: quant.DotMXFP4Q8_0,
}

// RowsFunc sets dst[r] = dot(weight row r, xq) for r < len(dst): w holds
// len(dst) consecutive weight rows of n elements, xq one activation row
// quantized to the vec-dot type. Decode (one activation row) uses it so a
// kernel call covers a whole run of rows.
type RowsFunc func(n int, w, xq []byte, dst []float32)

// rowsKernels holds the many-rows form for the types package kernels covers.
var rowsKernels = map[gguf.TensorType]RowsFunc{}

// init registers the SIMD kernels of package kernels (kernels.ForType) as
// the dot, rows and tile kernels of every type they cover (Q4_K, Q5_K,
// Q6_K, Q5_0, Q8_0, MXFP4).
func init() {
	for _, t := range []gguf.TensorType{gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K, gguf.TypeQ5_0, gguf.TypeQ8_0, gguf.TypeMXFP4} {
		k, ok := kernels.ForType(t)
		if !ok {
			continue
		}
		dotKernels[t] = DotFunc(k.Dot)
		rowsKernels[t] = RowsFunc(k.Rows)
		tileKernels[t] = TileFunc(k.Mat)
	}
	tileKernels[gguf.TypeF16] = halfTile(kernels.DotF16F32Cols)
	tileKernels[gguf.TypeBF16] = halfTile(kernels.DotBF16F32Cols)
}

// halfTile is the tile kernel of a half-precision weight type: each weight
// row (widened once per group of columns) against all the float32
// activation rows.
func halfTile(cols func(w []byte, b []float32, cols int, dst []float32, ldd int)) TileFunc {
	return func(n int, w []byte, rows int, x []byte, ncols int, dst []float32, ldd int) {
		xf := F32View(x)[:ncols*n]
		for r := 0; r < rows; r++ {
			cols(w[r*2*n:(r+1)*2*n], xf, ncols, dst[r:], ldd)
		}
	}
}

// dotF16 and dotBF16 dot a half-precision weight row with float32
// activations (the vec-dot type of F16/BF16 is F32) using the SIMD kernels.
func dotF16(n int, w, xq []byte) float32  { return kernels.DotF16F32(w, F32View(xq)[:n]) }
func dotBF16(n int, w, xq []byte) float32 { return kernels.DotBF16F32(w, F32View(xq)[:n]) }

// TileFunc sets dst[c·ldd+r] = dot(weight row r, activation row c) for
// r < rows, c < cols: w holds rows consecutive weight rows of n elements, x
// holds cols consecutive activation rows quantized to the vec-dot type.
type TileFunc func(n int, w []byte, rows int, x []byte, cols int, dst []float32, ldd int)

// tileKernels holds the tile (matrix-matrix) kernels used for products over
// several activation rows (prefill); types without one go row by row.
// (registered in init from package kernels).
var tileKernels = map[gguf.TensorType]TileFunc{}

// DotKernel returns the dot kernel for weight type t: the registered fast
// kernel if there is one, else quant's reference VecDot.
func DotKernel(t gguf.TensorType) (DotFunc, error) {
	if f, ok := dotKernels[t]; ok {
		return f, nil
	}
	if err := CheckType(t); err != nil {
		return nil, err
	}
	return func(n int, w, xq []byte) float32 {
		v, _ := quant.VecDot(t, n, w, xq)
		return v
	}, nil
}

func quantizeRow(t gguf.TensorType, src []float32, dst []byte) error {
	if t.BlockSize() == 0 {
		return fmt.Errorf("unknown type %d", uint32(t))
	}
	switch t {
	case gguf.TypeQ8_K:
		if len(src)%256 == 0 && len(dst) == len(src)/256*t.TypeSize() {
			kernels.QuantizeRowQ8K(src, dst)
			return nil
		}
	case gguf.TypeQ8_0:
		if len(src)%32 == 0 && len(dst) == len(src)/32*t.TypeSize() {
			kernels.QuantizeRowQ8_0(src, dst)
			return nil
		}
	}
	return quant.Quantize(t, src, dst)
}
