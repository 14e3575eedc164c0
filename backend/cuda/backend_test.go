package cuda_test

import (
	"errors"
	"testing"

	"github.com/glmrun/glmrun/backend"
	"github.com/glmrun/glmrun/backend/backendtest"
	"github.com/glmrun/glmrun/backend/cuda"
)

// TestBackendConformance runs the backend conformance suite
// (backend/backendtest) on device 0. It skips without a device (see
// device: CI=true, no driver); GLMRUN_CUDA_REQUIRE=1 makes that a failure.
func TestBackendConformance(t *testing.T) {
	b := cuda.NewBackend(device(t))
	defer b.Close()
	backendtest.RunAll(t, b)
}

// TestBackendOpenNoDevice runs everywhere: opening the registered "cuda"
// backend on a device that cannot exist fails with ErrNoDevice.
func TestBackendOpenNoDevice(t *testing.T) {
	b, err := backend.Open("cuda", backend.Options{Device: 1 << 20})
	if err == nil {
		b.Close()
		t.Fatal("Open(cuda, device 1<<20) succeeded")
	}
	if !errors.Is(err, cuda.ErrNoDevice) {
		t.Fatalf("Open(cuda, device 1<<20): %v does not wrap ErrNoDevice", err)
	}
}
