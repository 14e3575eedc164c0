package cuda_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestFatbinFresh recomputes the SHA-256 of kernels/*.cu and *.cuh (byte-wise
// name order, contents concatenated) and compares it with kernels.sum, which
// tools/cuda/build_kernels.sh writes together with kernels.fatbin. It needs
// no GPU and runs in CI.
func TestFatbinFresh(t *testing.T) {
	var names []string
	for _, pat := range []string{"*.cu", "*.cuh"} {
		m, err := filepath.Glob(filepath.Join("kernels", pat))
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, m...)
	}
	if len(names) == 0 {
		t.Fatal("no kernel sources in kernels/")
	}
	sort.Slice(names, func(i, j int) bool { return filepath.Base(names[i]) < filepath.Base(names[j]) })
	h := sha256.New()
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	got := hex.EncodeToString(h.Sum(nil))
	want, err := os.ReadFile(filepath.Join("kernels", "kernels.sum"))
	if err != nil {
		t.Fatalf("stale fatbin: run tools/cuda/build_kernels.sh (%v)", err)
	}
	if strings.TrimSpace(string(want)) != got {
		t.Fatalf("stale fatbin: run tools/cuda/build_kernels.sh (sources hash to %s, kernels.sum says %s)", got, strings.TrimSpace(string(want)))
	}
	fi, err := os.Stat(filepath.Join("kernels", "kernels.fatbin"))
	if err != nil || fi.Size() == 0 {
		t.Fatalf("stale fatbin: run tools/cuda/build_kernels.sh (kernels.fatbin missing or empty)")
	}
}
