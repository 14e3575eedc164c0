package gguf

import (
	"fmt"
	"math"
	"math/bits"
)

// TensorType is a ggml tensor element type as stored in a GGUF tensor-info
// record. Values equal ggml's `enum ggml_type` ids; MMFP4 is this project's
// private id (see README, "MMFP4").
type TensorType uint32

// Tensor types. Ids follow ggml.h; 4, 5 and 31..33, 36..38 are retired there.
const (
	TypeF32     TensorType = 0
	TypeF16     TensorType = 1
	TypeQ4_0    TensorType = 2
	TypeQ4_1    TensorType = 3
	TypeQ5_0    TensorType = 6
	TypeQ5_1    TensorType = 7
	TypeQ8_0    TensorType = 8
	TypeQ8_1    TensorType = 9
	TypeQ2_K    TensorType = 10
	TypeQ3_K    TensorType = 11
	TypeQ4_K    TensorType = 12
	TypeQ5_K    TensorType = 13
	TypeQ6_K    TensorType = 14
	TypeQ8_K    TensorType = 15
	TypeIQ2_XXS TensorType = 16
	TypeIQ2_XS  TensorType = 17
	TypeIQ3_XXS TensorType = 18
	TypeIQ1_S   TensorType = 19
	TypeIQ4_NL  TensorType = 20
	TypeIQ3_S   TensorType = 21
	TypeIQ2_S   TensorType = 22
	TypeIQ4_XS  TensorType = 23
	TypeI8      TensorType = 24
	TypeI16     TensorType = 25
	TypeI32     TensorType = 26
	TypeI64     TensorType = 27
	TypeF64     TensorType = 28
	TypeIQ1_M   TensorType = 29
	TypeBF16    TensorType = 30
	TypeTQ1_0   TensorType = 34
	TypeTQ2_0   TensorType = 35
	TypeMXFP4   TensorType = 39
	// TypeMMFP4 is FP4 E2M1 with one fp16 scale per 128 weights, laid out per
	// 2-D slab as quants[N][K/2] followed by scales[N][K/128] (see
	// backend/quant). Private id, clear of ggml's and ik_llama.cpp's ranges.
	TypeMMFP4 TensorType = 4160
)

type typeTraits struct {
	name      string
	blockSize int // elements per block
	typeSize  int // bytes per block
}

// traitsOf returns t's traits; ok is false for an unknown type. A slice
// indexed by id (ggml's ids are small; MMFP4 has its own case): the
// hot paths of the CPU backend ask for block sizes per product.
func traitsOf(t TensorType) (tr typeTraits, ok bool) {
	switch {
	case t == TypeMMFP4:
		tr = mmfp4Traits
	case int(t) < len(traitTable):
		tr = traitTable[t]
	}
	return tr, tr.blockSize > 0
}

var mmfp4Traits = typeTraits{"mmfp4", 128, 66}

var traitTable = [...]typeTraits{
	TypeF32:     {"f32", 1, 4},
	TypeF16:     {"f16", 1, 2},
	TypeQ4_0:    {"q4_0", 32, 18},
	TypeQ4_1:    {"q4_1", 32, 20},
	TypeQ5_0:    {"q5_0", 32, 22},
	TypeQ5_1:    {"q5_1", 32, 24},
	TypeQ8_0:    {"q8_0", 32, 34},
	TypeQ8_1:    {"q8_1", 32, 36},
	TypeQ2_K:    {"q2_K", 256, 84},
	TypeQ3_K:    {"q3_K", 256, 110},
	TypeQ4_K:    {"q4_K", 256, 144},
	TypeQ5_K:    {"q5_K", 256, 176},
	TypeQ6_K:    {"q6_K", 256, 210},
	TypeQ8_K:    {"q8_K", 256, 292},
	TypeIQ2_XXS: {"iq2_xxs", 256, 66},
	TypeIQ2_XS:  {"iq2_xs", 256, 74},
	TypeIQ3_XXS: {"iq3_xxs", 256, 98},
	TypeIQ1_S:   {"iq1_s", 256, 50},
	TypeIQ4_NL:  {"iq4_nl", 32, 18},
	TypeIQ3_S:   {"iq3_s", 256, 110},
	TypeIQ2_S:   {"iq2_s", 256, 82},
	TypeIQ4_XS:  {"iq4_xs", 256, 136},
	TypeI8:      {"i8", 1, 1},
	TypeI16:     {"i16", 1, 2},
	TypeI32:     {"i32", 1, 4},
	TypeI64:     {"i64", 1, 8},
	TypeF64:     {"f64", 1, 8},
	TypeIQ1_M:   {"iq1_m", 256, 56},
	TypeBF16:    {"bf16", 1, 2},
	TypeTQ1_0:   {"tq1_0", 256, 54},
	TypeTQ2_0:   {"tq2_0", 256, 66},
	TypeMXFP4:   {"mxfp4", 32, 17},
}

// Known reports whether t is a tensor type this package can size.
func (t TensorType) Known() bool { _, ok := traitsOf(t); return ok }

// String returns ggml's lower-case type name ("q4_K", "f32", ...).
func (t TensorType) String() string {
	if tr, ok := traitsOf(t); ok {
		return tr.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize is the number of elements in one block (1 for plain types).
// It is 0 for an unknown type.
func (t TensorType) BlockSize() int { tr, _ := traitsOf(t); return tr.blockSize }

// TypeSize is the number of bytes in one block. It is 0 for an unknown type.
func (t TensorType) TypeSize() int { tr, _ := traitsOf(t); return tr.typeSize }

// RowBytes returns the bytes of one row of ne0 elements, or an error if ne0
// is not a multiple of the block size, the type is unknown, or the size
// exceeds 2^63-1 bytes.
func (t TensorType) RowBytes(ne0 uint64) (uint64, error) {
	tr, ok := traitsOf(t)
	if !ok {
		return 0, fmt.Errorf("unknown tensor type %d", uint32(t))
	}
	if ne0%uint64(tr.blockSize) != 0 {
		return 0, fmt.Errorf("row of %d elements is not a multiple of the %s block size %d", ne0, tr.name, tr.blockSize)
	}
	hi, lo := bits.Mul64(ne0/uint64(tr.blockSize), uint64(tr.typeSize))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, fmt.Errorf("row of %d %s elements overflows the byte size", ne0, tr.name)
	}
	return lo, nil
}

// TypeByName returns the tensor type named name (as String prints it,
// case-insensitive).
func TypeByName(name string) (TensorType, bool) {
	for t, tr := range traitTable {
		if tr.blockSize > 0 && equalFold(tr.name, name) {
			return TensorType(t), true
		}
	}
	if equalFold(mmfp4Traits.name, name) {
		return TypeMMFP4, true
	}
	return 0, false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}
