package quant

import (
	"encoding/binary"
	"fmt"
)

// MMFP4 (gguf.TypeMMFP4, this project's private id 4160): FP4 E2M1 codes with
// one fp16 scale per 128 consecutive elements of a row, stored per 2-D slab
// (one matrix of rows x cols, cols = ne0 = K, rows = N; a 3-D expert tensor
// is E consecutive slabs):
//
//	slab   = quants[rows][cols/2] bytes, then scales[rows][cols/128] fp16 (LE)
//	quants row r, group g (64 bytes), sub-block s = 0..3 (16 bytes each):
//	         byte 16s+j: low nibble = element 128g+32s+j,
//	                     high nibble = element 128g+32s+16+j (j = 0..15)
//	value  = E2M1[code]*scale[r][g] = kv2[code]*(scale/2)
//
// A slab holds rows*cols/128*66 bytes, the (128, 66) block formula, but it is
// not a sequence of 66-byte blocks: row r's codes and scales lie in two
// separate regions (see MMFP4Row). Because both regions are row-major, a
// slab of rows x cols has exactly the bytes of a 1 x rows*cols slab, so the
// generic Dequantize/Quantize treat their src/dst as ONE slab of any shape;
// they must not be given a piece of a slab or several slabs at once.

// MMFP4GroupSize is the number of elements sharing one fp16 scale.
const MMFP4GroupSize = 128

// MMFP4SlabBytes returns the size of a rows x cols MMFP4 slab; cols must be a
// positive multiple of 128 and rows positive.
func MMFP4SlabBytes(rows, cols int) (int, error) {
	if rows <= 0 || cols <= 0 || cols%MMFP4GroupSize != 0 {
		return 0, fmt.Errorf("quant: mmfp4 slab %d x %d: need rows > 0 and cols a positive multiple of %d", rows, cols, MMFP4GroupSize)
	}
	return rows * cols / MMFP4GroupSize * 66, nil
}

// MMFP4Row returns row r of a rows x cols slab: its cols/2 code bytes and its
// cols/128 fp16 scales (2*cols/128 bytes), both sub-slices of slab.
func MMFP4Row(slab []byte, rows, cols, r int) (quants, scales []byte, err error) {
	size, err := MMFP4SlabBytes(rows, cols)
	if err != nil {
		return nil, nil, err
	}
	if len(slab) != size {
		return nil, nil, fmt.Errorf("quant: mmfp4 slab %d x %d needs %d bytes, got %d", rows, cols, size, len(slab))
	}
	if r < 0 || r >= rows {
		return nil, nil, fmt.Errorf("quant: mmfp4 row %d out of range [0, %d)", r, rows)
	}
	qb := cols / 2
	sb := cols / MMFP4GroupSize * 2
	scaleOff := rows * qb
	return slab[r*qb : (r+1)*qb], slab[scaleOff+r*sb : scaleOff+(r+1)*sb], nil
}

// DequantizeRowMMFP4 dequantizes one row of len(dst) elements (a multiple of
// 128) from its codes (len(dst)/2 bytes) and scales (len(dst)/64 bytes).
func DequantizeRowMMFP4(quants, scales []byte, dst []float32) {
	ng := len(dst) / MMFP4GroupSize
	quants = quants[:ng*64]
	scales = scales[:ng*2]
	for g := 0; g < ng; g++ {
		half := fp16At(scales[2*g:]) * 0.5
		q := quants[64*g : 64*g+64]
		y := dst[128*g : 128*g+128]
		for s := 0; s < 4; s++ {
			for j := 0; j < 16; j++ {
				c := q[16*s+j]
				y[32*s+j] = float32(kv2[c&0x0f]) * half
				y[32*s+16+j] = float32(kv2[c>>4]) * half
			}
		}
	}
}

// QuantizeRowMMFP4 quantizes one row src (a multiple of 128 elements) into
// its codes (len(src)/2 bytes) and fp16 scales (len(src)/64 bytes). Per
// 128-group: scale = fp16(amax/6) (clamped to the largest finite fp16,
// 65504); each code is bestIndexFP4(x, scale/2) against the fp16-ROUNDED
// scale, i.e. the E2M1 value nearest to x/scale with ties going to the
// smaller magnitude (and +0 rather than -0), exactly ggml's MXFP4 code rule.
func QuantizeRowMMFP4(src []float32, quants, scales []byte) {
	ng := len(src) / MMFP4GroupSize
	quants = quants[:ng*64]
	scales = scales[:ng*2]
	for g := 0; g < ng; g++ {
		x := src[128*g : 128*g+128]
		var amax float32
		for _, v := range x {
			if a := abs32(v); a > amax {
				amax = a
			}
		}
		h := Float32ToFP16(amax / 6)
		if h&0x7fff >= 0x7c00 {
			h = 0x7bff // 65504
		}
		binary.LittleEndian.PutUint16(scales[2*g:], h)
		half := FP16ToFloat32(h) * 0.5
		q := quants[64*g : 64*g+64]
		for s := 0; s < 4; s++ {
			for j := 0; j < 16; j++ {
				q[16*s+j] = bestIndexFP4(x[32*s+j], half) | bestIndexFP4(x[32*s+16+j], half)<<4
			}
		}
	}
}

// DequantizeMMFP4 dequantizes a rows x cols slab into dst (rows*cols floats,
// row-major).
func DequantizeMMFP4(slab []byte, rows, cols int, dst []float32) error {
	size, err := MMFP4SlabBytes(rows, cols)
	if err != nil {
		return err
	}
	if len(slab) != size || len(dst) != rows*cols {
		return fmt.Errorf("quant: mmfp4 slab %d x %d needs %d bytes and %d floats, got %d and %d", rows, cols, size, rows*cols, len(slab), len(dst))
	}
	dequantizeMMFP4Slab(slab, dst)
	return nil
}

// QuantizeMMFP4 quantizes src (rows*cols floats, row-major) into a rows x
// cols slab dst.
func QuantizeMMFP4(src []float32, rows, cols int, dst []byte) error {
	size, err := MMFP4SlabBytes(rows, cols)
	if err != nil {
		return err
	}
	if len(dst) != size || len(src) != rows*cols {
		return fmt.Errorf("quant: mmfp4 slab %d x %d needs %d floats and %d bytes, got %d and %d", rows, cols, rows*cols, size, len(src), len(dst))
	}
	quantizeMMFP4Slab(src, dst)
	return nil
}

// dequantizeMMFP4Slab treats slab as one row of len(dst) elements (valid for
// any row split, see the layout note above).
func dequantizeMMFP4Slab(slab []byte, dst []float32) {
	n := len(dst)
	DequantizeRowMMFP4(slab[:n/2], slab[n/2:n/2+n/64], dst)
}

func quantizeMMFP4Slab(src []float32, slab []byte) {
	n := len(src)
	QuantizeRowMMFP4(src, slab[:n/2], slab[n/2:n/2+n/64])
}

// DotMMFP4Q8_0 returns the dot product of one MMFP4 row (n elements, a
// multiple of 128: codes n/2 bytes, scales n/64 bytes, e.g. from MMFP4Row)
// with a Q8_0 row x (n/32*34 bytes). Arithmetic (the reference for the SIMD
// and GPU kernels): per group g, for sub-block s = 0..3 an int sum
// isum_s = Σ kv2[code]*q8 over the 32 elements (= Q8_0 block 4g+s);
// acc_g = Σ_s float32(d_x[4g+s]*float32(isum_s)) in s order;
// sumf += float32((scale_g/2)*acc_g) in g order.
func DotMMFP4Q8_0(n int, quants, scales, x []byte) float32 {
	ng := n / MMFP4GroupSize
	quants = quants[:ng*64]
	scales = scales[:ng*2]
	x = x[:ng*4*blockQ8_0]
	var sumf float32
	for g := 0; g < ng; g++ {
		q := quants[64*g : 64*g+64]
		var acc float32
		for s := 0; s < 4; s++ {
			xb := x[(4*g+s)*blockQ8_0 : (4*g+s+1)*blockQ8_0]
			var isum int32
			for j := 0; j < 16; j++ {
				c := q[16*s+j]
				isum += int32(kv2[c&0x0f])*int32(int8(xb[2+j])) + int32(kv2[c>>4])*int32(int8(xb[18+j]))
			}
			acc += float32(fp16At(xb) * float32(isum))
		}
		sumf += float32(fp16At(scales[2*g:]) * 0.5 * acc)
	}
	return sumf
}
