package cpu

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestAdviseHugePages checks the advice on an unaligned sub-slice of a
// read-only file mapping (as model weights are) and on an empty slice, and
// that the data reads back unchanged.
func TestAdviseHugePages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.bin")
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := syscall.Mmap(int(f.Fd()), 0, len(data), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	if err := AdviseHugePages(m[1234 : len(m)-77]); err == syscall.EINVAL {
		t.Skip("kernel without transparent huge pages")
	} else if err != nil {
		t.Fatalf("AdviseHugePages on a file mapping: %v", err)
	}
	if err := AdviseHugePages(nil); err != nil {
		t.Fatalf("AdviseHugePages(nil): %v", err)
	}
	for i := range m {
		if m[i] != data[i] {
			t.Fatalf("byte %d changed after advice", i)
		}
	}
}
