package cpu_test

import (
	"errors"
	"testing"

	"github.com/glmrun/glmrun/backend"
	"github.com/glmrun/glmrun/backend/backendtest"
	"github.com/glmrun/glmrun/backend/cpu"
)

// TestBackendConformance runs the backend conformance suite on the host
// backend in both matrix-product modes (Fast: quantised activations as the
// engine runs; Exact: the tight float32 tolerances).
func TestBackendConformance(t *testing.T) {
	for _, mode := range []cpu.Mode{cpu.Fast, cpu.Exact} {
		t.Run(mode.String(), func(t *testing.T) {
			b := cpu.NewBackend(2, mode)
			defer b.Close()
			backendtest.RunAll(t, b)
		})
	}
}

// TestBackendRegistry opens the host backend by name and checks that a
// closed backend refuses its buffers.
func TestBackendRegistry(t *testing.T) {
	b, err := backend.Open("cpu", backend.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "cpu" || b.Capabilities().Threads != 1 {
		t.Errorf("Open(cpu): name %q, %d threads", b.Name(), b.Capabilities().Threads)
	}
	x, err := b.Alloc(backend.F32, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Ops().Add(x, x, x); !errors.Is(err, backend.ErrFreed) {
		t.Errorf("Add after Close: %v, want ErrFreed", err)
	}
	if _, err := b.Alloc(backend.F32, 4); err == nil {
		t.Error("Alloc after Close succeeded")
	}
}
