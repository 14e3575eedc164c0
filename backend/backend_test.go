package backend_test

import (
	"errors"
	"testing"

	"github.com/glmrun/glmrun/backend"
)

func TestByteSize(t *testing.T) {
	for _, c := range []struct {
		dt    backend.DType
		shape []int
		want  int
	}{
		{backend.F32, []int{7}, 28},
		{backend.F16, []int{3, 2, 2}, 24},
		{backend.I32, []int{5, 1}, 20},
		{backend.Q4_K, []int{256, 3}, 3 * 144},
		{backend.Q5_0, []int{192, 512, 20}, 20 * 512 * 6 * 22},
		{backend.MMFP4, []int{256, 8, 2}, 2 * 8 * 2 * 66},
	} {
		got, err := backend.ByteSize(c.dt, c.shape)
		if err != nil || got != c.want {
			t.Errorf("ByteSize(%s, %v) = %d, %v; want %d", c.dt, c.shape, got, err, c.want)
		}
	}
	for _, c := range []struct {
		dt    backend.DType
		shape []int
	}{
		{backend.F32, nil}, {backend.F32, []int{0}}, {backend.F32, []int{3, -1}}, {backend.Q4_K, []int{100}},
		{backend.MMFP4, []int{64, 2}}, {backend.DType(9999), []int{4}}, {backend.F32, []int{1 << 20, 1 << 20, 1 << 20}},
	} {
		if n, err := backend.ByteSize(c.dt, c.shape); err == nil || !errors.Is(err, backend.ErrShape) {
			t.Errorf("ByteSize(%s, %v) = %d, %v; want an ErrShape error", c.dt, c.shape, n, err)
		}
	}
}

func TestRegistry(t *testing.T) {
	opened := 0
	backend.Register("test-registry", func(backend.Options) (backend.Backend, error) {
		opened++
		return nil, errors.New("test backend opens nothing")
	})
	if _, err := backend.Open("test-registry", backend.Options{}); err == nil || opened != 1 {
		t.Errorf("Open(test-registry): %v after %d calls", err, opened)
	}
	if _, err := backend.Open("no-such-backend", backend.Options{}); !errors.Is(err, backend.ErrUnknownBackend) {
		t.Errorf("Open(no-such-backend): %v, want ErrUnknownBackend", err)
	}
	found := false
	for _, n := range backend.Names() {
		found = found || n == "test-registry"
	}
	if !found {
		t.Errorf("Names() = %v lacks test-registry", backend.Names())
	}
	defer func() {
		if recover() == nil {
			t.Error("a second Register of the same name did not panic")
		}
	}()
	backend.Register("test-registry", func(backend.Options) (backend.Backend, error) { return nil, nil })
}
