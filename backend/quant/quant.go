package quant

import (
	"fmt"

	"github.com/glmrun/glmrun/gguf"
)

type rowFuncs struct {
	dequant func(src []byte, dst []float32)
	quant   func(src []float32, dst []byte)
	dot     func(n int, w, x []byte) float32
	dotType gguf.TensorType
}

var funcs = map[gguf.TensorType]rowFuncs{
	gguf.TypeF32:   {DequantizeRowF32, QuantizeRowF32, DotF32F32, gguf.TypeF32},
	gguf.TypeF16:   {DequantizeRowF16, QuantizeRowF16, DotF16F32, gguf.TypeF32},
	gguf.TypeBF16:  {DequantizeRowBF16, QuantizeRowBF16, DotBF16F32, gguf.TypeF32},
	gguf.TypeQ4_0:  {DequantizeRowQ4_0, QuantizeRowQ4_0, DotQ4_0Q8_0, gguf.TypeQ8_0},
	gguf.TypeQ4_1:  {DequantizeRowQ4_1, QuantizeRowQ4_1, DotQ4_1Q8_1, gguf.TypeQ8_1},
	gguf.TypeQ5_0:  {DequantizeRowQ5_0, QuantizeRowQ5_0, DotQ5_0Q8_0, gguf.TypeQ8_0},
	gguf.TypeQ5_1:  {DequantizeRowQ5_1, QuantizeRowQ5_1, DotQ5_1Q8_1, gguf.TypeQ8_1},
	gguf.TypeQ8_0:  {DequantizeRowQ8_0, QuantizeRowQ8_0, DotQ8_0Q8_0, gguf.TypeQ8_0},
	gguf.TypeQ8_1:  {DequantizeRowQ8_1, QuantizeRowQ8_1, nil, 0},
	gguf.TypeQ4_K:  {DequantizeRowQ4K, QuantizeRowQ4K, DotQ4KQ8K, gguf.TypeQ8_K},
	gguf.TypeQ5_K:  {DequantizeRowQ5K, QuantizeRowQ5K, DotQ5KQ8K, gguf.TypeQ8_K},
	gguf.TypeQ6_K:  {DequantizeRowQ6K, QuantizeRowQ6K, DotQ6KQ8K, gguf.TypeQ8_K},
	gguf.TypeQ8_K:  {DequantizeRowQ8K, QuantizeRowQ8K, nil, 0},
	gguf.TypeMXFP4: {DequantizeRowMXFP4, QuantizeRowMXFP4, DotMXFP4Q8_0, gguf.TypeQ8_0},
	gguf.TypeMMFP4: {dequantizeMMFP4Slab, quantizeMMFP4Slab, dotMMFP4Slab, gguf.TypeQ8_0},
}

// dotMMFP4Slab is VecDot's MMFP4 entry: w is a one-row slab (codes n/2
// bytes, then scales n/64 bytes).
func dotMMFP4Slab(n int, w, x []byte) float32 {
	return DotMMFP4Q8_0(n, w[:n/2], w[n/2:n/2+n/64], x)
}

// CanDequantize reports whether Dequantize supports t.
func CanDequantize(t gguf.TensorType) bool { return funcs[t].dequant != nil }

// CanQuantize reports whether Quantize supports t.
func CanQuantize(t gguf.TensorType) bool { return funcs[t].quant != nil }

// CanVecDot reports whether VecDot supports weight type t.
func CanVecDot(t gguf.TensorType) bool { return funcs[t].dot != nil }

// VecDotType is the activation type a weight row of type t is dotted
// against in VecDot, as in ggml's CPU backend: Q8_K for Q4_K/Q5_K/Q6_K; Q8_0
// for Q4_0, Q5_0, Q8_0, MXFP4 and MMFP4; Q8_1 for Q4_1 and Q5_1; F32 for F32,
// F16 and BF16 (ggml itself converts activations to F16/BF16 for those; this
// package dots them against F32 activations). For a type without VecDot
// support it returns t itself; check CanVecDot first.
func VecDotType(t gguf.TensorType) gguf.TensorType {
	if f := funcs[t]; f.dot != nil {
		return f.dotType
	}
	return t
}

// bytesFor returns the exact byte size of n elements of type t, or an error
// naming the problem (unsupported type, negative n, partial block).
func bytesFor(t gguf.TensorType, n int, op string) (int, error) {
	if n < 0 {
		return 0, fmt.Errorf("quant: %s %s: negative element count %d", op, t, n)
	}
	bs := t.BlockSize()
	if n%bs != 0 {
		return 0, fmt.Errorf("quant: %s %s: %d elements is not a multiple of the block size %d", op, t, n, bs)
	}
	return n / bs * t.TypeSize(), nil
}

// Dequantize converts n = len(dst) elements stored as type t in src to
// float32. src must be exactly the bytes of n elements (n/B blocks of S
// bytes, B and S from t.BlockSize/TypeSize), n a multiple of the block size.
// For gguf.TypeMMFP4, src is one whole slab (any rows x cols with
// rows*cols = n; see MMFP4SlabBytes): the result is the row-major matrix.
// The results are bit-exact with ggml's dequantize_row_* functions.
func Dequantize(t gguf.TensorType, src []byte, dst []float32) error {
	f := funcs[t]
	if f.dequant == nil {
		return fmt.Errorf("quant: cannot dequantize tensor type %s (id %d)", t, uint32(t))
	}
	want, err := bytesFor(t, len(dst), "dequantize")
	if err != nil {
		return err
	}
	if len(src) != want {
		return fmt.Errorf("quant: dequantize %s: %d elements need %d bytes, got %d", t, len(dst), want, len(src))
	}
	if len(dst) > 0 {
		f.dequant(src, dst)
	}
	return nil
}

// Quantize converts src (len(src) a multiple of t's block size) to type t in
// dst, which must be exactly the right size. The K-quant and legacy
// quantizers are the reference algorithms, bit-exact with ggml's
// quantize_row_*_ref (no importance matrix); F16/BF16 round to nearest even.
// For gguf.TypeMMFP4, dst is one slab (see Dequantize and QuantizeRowMMFP4).
func Quantize(t gguf.TensorType, src []float32, dst []byte) error {
	f := funcs[t]
	if f.quant == nil {
		return fmt.Errorf("quant: cannot quantize to tensor type %s (id %d)", t, uint32(t))
	}
	want, err := bytesFor(t, len(src), "quantize")
	if err != nil {
		return err
	}
	if len(dst) != want {
		return fmt.Errorf("quant: quantize %s: %d elements need %d bytes, got %d", t, len(src), want, len(dst))
	}
	if len(src) > 0 {
		f.quant(src, dst)
	}
	return nil
}

// VecDot returns the dot product of one weight row w (n elements of type t,
// exactly RowBytes(n) bytes; for MMFP4 a one-row slab) with activations xq
// (n elements already quantized to VecDotType(t), exactly its row bytes).
// It is the pure-Go reference of the SIMD kernels and follows ggml's
// ggml_vec_dot_<t>_<vt>_generic arithmetic (integer sums per block, then
// scale), see the per-type Dot functions.
func VecDot(t gguf.TensorType, n int, w, xq []byte) (float32, error) {
	f := funcs[t]
	if f.dot == nil {
		return 0, fmt.Errorf("quant: no vector dot for tensor type %s (id %d)", t, uint32(t))
	}
	wb, err := bytesFor(t, n, "vecdot")
	if err != nil {
		return 0, err
	}
	xb, err := bytesFor(f.dotType, n, "vecdot")
	if err != nil {
		return 0, err
	}
	if len(w) != wb {
		return 0, fmt.Errorf("quant: vecdot %s: %d elements need %d weight bytes, got %d", t, n, wb, len(w))
	}
	if len(xq) != xb {
		return 0, fmt.Errorf("quant: vecdot %s: %d elements need %d %s activation bytes, got %d", t, n, xb, f.dotType, len(xq))
	}
	if n == 0 {
		return 0, nil
	}
	return f.dot(n, w, xq), nil
}
