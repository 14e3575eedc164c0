// Command _gen generates the amd64 assembly of package kernels with avo.
//
// It lives in its own module so that avo stays out of the root go.mod. Run it
// through `go generate ./backend/cpu/kernels/` (see ../gen.go); the output,
// kernels_amd64.s and stubs_amd64.go, is committed and must equal a fresh run.
package main

import (
	"github.com/mmcloughlin/avo/ir"
	"github.com/mmcloughlin/avo/operand"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/reg"
)

func main() {
	genCPUID()
	genF32()
	genF32Multi()
	genQuantize()
	genQ8_0()
	genQ5_0()
	genMXFP4()
	genMMFP4()
	genQ4K()
	genQ6K()
	genExp()
	Generate()
}

// raw emits an instruction avo's table lacks (the AVX-512 VNNI family): the
// last operand is the accumulator, read and written; all others are read.
// Pass registers only: avo's liveness does not look into memory operands of
// hand-built instructions.
func raw(op string, ops ...operand.Op) {
	Instruction(&ir.Instruction{
		Opcode:   op,
		Operands: ops,
		Inputs:   ops,
		Outputs:  ops[len(ops)-1:],
	})
}

// zeroVec zeroes v with VPXORD v, v, v (EVEX-encodable, so v may be any of
// the 32 vector registers), declared to avo as write-only: avo's own VPXORD
// counts the self-XOR as a read, which would keep v live from function entry.
func zeroVec(v operand.Op) {
	Instruction(&ir.Instruction{
		Opcode:   "VPXORD",
		Operands: []operand.Op{v, v, v},
		Outputs:  []operand.Op{v},
	})
}

// zeroVecs zeroes vs before a level l accumulation: VPXORD in AVX-512
// code (any of the 32 registers), VXORPS in AVX2 code.
func zeroVecs(l level, vs []VecVirtual) {
	for _, v := range vs {
		if l.z {
			zeroVec(v)
		} else {
			VXORPS(v, v, v)
		}
	}
}
