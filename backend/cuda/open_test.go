package cuda_test

import (
	"errors"
	"testing"

	"github.com/glmrun/glmrun/backend/cuda"
)

// TestOpenBadOrdinal runs everywhere (no GPU needed): an ordinal that cannot
// exist fails with an error wrapping ErrNoDevice, whether or not a driver
// is present, and so does any Open on a machine without a driver.
func TestOpenBadOrdinal(t *testing.T) {
	for _, ord := range []int{-1, 1 << 20} {
		d, err := cuda.Open(ord)
		if err == nil {
			d.Close()
			t.Fatalf("Open(%d) succeeded", ord)
		}
		if !errors.Is(err, cuda.ErrNoDevice) {
			t.Fatalf("Open(%d): %v does not wrap ErrNoDevice", ord, err)
		}
		t.Logf("Open(%d): %v", ord, err)
	}
}

func TestBufferSlice(t *testing.T) {
	var zero cuda.Buffer
	if _, err := zero.Slice(0, 1); err == nil {
		t.Error("slice of 1 byte of an empty buffer succeeded")
	}
	if b, err := zero.Slice(0, 0); err != nil || b.Bytes() != 0 {
		t.Errorf("empty slice of an empty buffer: %v, %d bytes", err, b.Bytes())
	}
	for _, c := range []struct{ off, n int64 }{{-1, 1}, {0, -1}, {1, 0}, {0, 1}} {
		if _, err := zero.Slice(c.off, c.n); err == nil {
			t.Errorf("Slice(%d, %d) of an empty buffer succeeded", c.off, c.n)
		}
	}
}

func TestQ81Bytes(t *testing.T) {
	if got := cuda.Q81Bytes(3, 2048); got != 3*64*36 {
		t.Errorf("Q81Bytes(3, 2048) = %d, want %d", got, 3*64*36)
	}
	if got := cuda.MLAScratchBytes(2, 20, 512); got != 4*(2*20*512+2*20*2) {
		t.Errorf("MLAScratchBytes = %d", got)
	}
}
