//go:build !amd64

package kernels

func dotF32(a, b []float32) float32            { return dotF32Generic(a, b) }
func sumSquares(x []float32) float32           { return sumSquaresGeneric(x) }
func dotBF16F32(w []byte, x []float32) float32 { return dotBF16F32Generic(w, x) }
func dotF16F32(w []byte, x []float32) float32  { return dotF16F32Generic(w, x) }
func axpyF32(a float32, x, y []float32)        { axpyF32Generic(a, x, y) }
func scaleF32(a float32, x []float32)          { scaleF32Generic(a, x) }
