package kernels

// CPUID bits (Intel SDM vol. 2A, CPUID; XCR0 layout in vol. 1 §13).
const (
	cpuid1ECXFMA     = 1 << 12
	cpuid1ECXOSXSAVE = 1 << 27
	cpuid1ECXAVX     = 1 << 28
	cpuid1ECXF16C    = 1 << 29

	cpuid7EBXAVX2     = 1 << 5
	cpuid7EBXBMI2     = 1 << 8
	cpuid7EBXAVX512F  = 1 << 16
	cpuid7EBXAVX512DQ = 1 << 17
	cpuid7EBXAVX512BW = 1 << 30
	cpuid7EBXAVX512VL = 1 << 31
	cpuid7ECXVNNI     = 1 << 11

	xcr0SSEAVX = 0x06 // XMM and YMM state
	xcr0AVX512 = 0xe0 // opmask, ZMM_Hi256, Hi16_ZMM state
)

// detect reads CPUID and XCR0 and returns the best supported level.
func detect() Level {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return LevelGeneric
	}
	_, _, ecx1, _ := cpuid(1, 0)
	_, ebx7, ecx7, _ := cpuid(7, 0)
	return levelFrom(ecx1, ebx7, ecx7, func() uint32 { xcr0, _ := xgetbv0(); return xcr0 })
}

// levelFrom decides the level from CPUID.1:ECX, CPUID.7.0:EBX/ECX and XCR0
// (read only when the OS has enabled XSAVE).
func levelFrom(ecx1, ebx7, ecx7 uint32, xcr0 func() uint32) Level {
	if ecx1&cpuid1ECXOSXSAVE == 0 {
		return LevelGeneric
	}
	x := xcr0()
	has := func(v, bits uint32) bool { return v&bits == bits }
	if !has(x, xcr0SSEAVX) ||
		!has(ecx1, cpuid1ECXAVX|cpuid1ECXFMA|cpuid1ECXF16C) ||
		!has(ebx7, cpuid7EBXAVX2) {
		return LevelGeneric
	}
	if has(x, xcr0AVX512) &&
		has(ebx7, cpuid7EBXAVX512F|cpuid7EBXAVX512DQ|cpuid7EBXAVX512BW|cpuid7EBXAVX512VL|cpuid7EBXBMI2) &&
		has(ecx7, cpuid7ECXVNNI) {
		return LevelAVX512
	}
	return LevelAVX2
}
