//go:build !amd64

package kernels

func expShiftF32(x []float32, scale, shift float32) { expShiftF32Generic(x, scale, shift) }
func swigluF32(out, gate, up []float32)             { swigluF32Generic(out, gate, up) }
