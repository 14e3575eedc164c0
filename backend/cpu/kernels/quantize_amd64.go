package kernels

func quantizeQ8K(nb int, src []float32, dst []byte)  { quantizeQ8KAVX2(nb, &src[0], &dst[0]) }
func quantizeQ8_0(nb int, src []float32, dst []byte) { quantizeQ8_0AVX2(nb, &src[0], &dst[0]) }
