package kernels

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestAVX2KernelsStayInAVX2 guards against the register allocator of the
// generator handing an AVX2 kernel one of X16–X31/Y16–Y31 (or a ZMM/opmask
// register): the Go assembler would silently emit an EVEX (AVX-512)
// encoding, which faults on AVX2-only CPUs.
func TestAVX2KernelsStayInAVX2(t *testing.T) {
	src, err := os.ReadFile("kernels_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	bad := regexp.MustCompile(`\b([XY](1[6-9]|2[0-9]|3[01])|Z[0-9]+|K[1-7])\b`)
	var fn string
	n := 0
	for i, line := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(line, "TEXT ") {
			fn = strings.Fields(line)[1]
			if strings.Contains(fn, "AVX2") {
				n++
			}
			continue
		}
		if strings.Contains(fn, "AVX2") && bad.MatchString(line) {
			t.Errorf("kernels_amd64.s:%d: %s uses an AVX-512-only register: %s", i+1, fn, strings.TrimSpace(line))
		}
	}
	if n == 0 {
		t.Fatal("no AVX2 kernels found in kernels_amd64.s")
	}
}
