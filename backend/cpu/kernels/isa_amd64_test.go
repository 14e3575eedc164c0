package kernels

import "testing"

func TestLevelFrom(t *testing.T) {
	const (
		ecxAll  = cpuid1ECXOSXSAVE | cpuid1ECXAVX | cpuid1ECXFMA | cpuid1ECXF16C
		ebxAVX2 = cpuid7EBXAVX2
		ebx512  = ebxAVX2 | cpuid7EBXBMI2 | cpuid7EBXAVX512F | cpuid7EBXAVX512DQ | cpuid7EBXAVX512BW | cpuid7EBXAVX512VL
	)
	xcr := func(v uint32) func() uint32 { return func() uint32 { return v } }
	for _, c := range []struct {
		name             string
		ecx1, ebx7, ecx7 uint32
		xcr0             uint32
		want             Level
	}{
		{"full", ecxAll, ebx512, cpuid7ECXVNNI, 0xe7, LevelAVX512},
		{"no VNNI", ecxAll, ebx512, 0, 0xe7, LevelAVX2},
		{"OS without ZMM state", ecxAll, ebx512, cpuid7ECXVNNI, 0x07, LevelAVX2},
		{"OS without YMM state", ecxAll, ebx512, cpuid7ECXVNNI, 0x03, LevelGeneric},
		{"no OSXSAVE", ecxAll &^ cpuid1ECXOSXSAVE, ebx512, cpuid7ECXVNNI, 0xe7, LevelGeneric},
		{"no FMA", ecxAll &^ cpuid1ECXFMA, ebx512, cpuid7ECXVNNI, 0xe7, LevelGeneric},
		{"no F16C", ecxAll &^ cpuid1ECXF16C, ebxAVX2, 0, 0x07, LevelGeneric},
		{"AVX2 only", ecxAll, ebxAVX2, 0, 0x07, LevelAVX2},
		{"no AVX512BW", ecxAll, ebx512 &^ cpuid7EBXAVX512BW, cpuid7ECXVNNI, 0xe7, LevelAVX2},
	} {
		if got := levelFrom(c.ecx1, c.ebx7, c.ecx7, xcr(c.xcr0)); got != c.want {
			t.Errorf("%s: levelFrom = %v, want %v", c.name, got, c.want)
		}
	}
}
