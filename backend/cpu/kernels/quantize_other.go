//go:build !amd64

package kernels

import "github.com/glmrun/glmrun/backend/quant"

func quantizeQ8K(nb int, src []float32, dst []byte)  { quant.QuantizeRowQ8K(src, dst) }
func quantizeQ8_0(nb int, src []float32, dst []byte) { quant.QuantizeRowQ8_0(src, dst) }
