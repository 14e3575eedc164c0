package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/reg"
)

func genCPUID() {
	TEXT("cpuid", NOSPLIT, "func(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)")
	Pragma("noescape")
	Doc("cpuid executes CPUID with EAX=leaf, ECX=subleaf.")
	Load(Param("leaf"), EAX)
	Load(Param("subleaf"), ECX)
	CPUID()
	Store(EAX, Return("eax"))
	Store(EBX, Return("ebx"))
	Store(ECX, Return("ecx"))
	Store(EDX, Return("edx"))
	RET()

	TEXT("xgetbv0", NOSPLIT, "func() (eax, edx uint32)")
	Pragma("noescape")
	Doc("xgetbv0 reads XCR0 (the OS-enabled register state) with XGETBV, ECX=0.",
		"Call it only when CPUID.1:ECX.OSXSAVE is set.")
	XORL(ECX, ECX)
	XGETBV()
	Store(EAX, Return("eax"))
	Store(EDX, Return("edx"))
	RET()
}
