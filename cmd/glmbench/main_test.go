package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glmrun/glmrun/backend/cuda"
	"github.com/glmrun/glmrun/bench"
	"github.com/glmrun/glmrun/internal/testdata"
)

// skipIfGPU skips tests of the no-GPU behaviour on a machine where CUDA
// device 0 is usable.
func skipIfGPU(t *testing.T) error {
	t.Helper()
	desc, err := probeCUDA()
	if err == nil {
		t.Skipf("a CUDA device is usable here (%s)", desc)
	}
	return err
}

func TestCUDAProbeWithoutGPU(t *testing.T) {
	err := skipIfGPU(t)
	if !errors.Is(err, cuda.ErrNoDevice) {
		t.Errorf("probe error %v does not wrap cuda.ErrNoDevice", err)
	}
	var out, errb bytes.Buffer
	code := bench.Main([]string{"-m", filepath.Join(t.TempDir(), "absent.gguf"), "--device", "cuda", "-p", "4", "-n", "0"},
		&out, &errb, cudaBackend())
	if code != 1 || !strings.Contains(errb.String(), "-dev CUDA0: no CUDA device: ") || out.Len() != 0 {
		t.Errorf("-dev cuda without a GPU: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := bench.Main([]string{"--list-devices"}, &out, &errb, cudaBackend()); code != 0 ||
		!strings.Contains(out.String(), "CUDA0: not usable: no CUDA device: ") || !strings.Contains(out.String(), "  CPU: ") {
		t.Errorf("--list-devices: exit %d\n%s", code, out.String())
	}
}

func TestAutoFallsBackToCPU(t *testing.T) {
	skipIfGPU(t)
	model := testdata.GLMTiny(t, "glm-tiny-q4_k_m.gguf")
	var out, errb bytes.Buffer
	if code := bench.Main([]string{"-m", model, "-p", "8", "-n", "2", "-r", "1", "-o", "json", "--extra-cols"}, &out, &errb, cudaBackend()); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var tests []map[string]any
	if err := json.Unmarshal(out.Bytes(), &tests); err != nil || len(tests) != 2 {
		t.Fatalf("json: %v\n%s", err, out.String())
	}
	for _, tt := range tests {
		if tt["backends"] != "CPU" || tt["type_k"] != "f32" || tt["devices"] != "auto" || tt["gpu_info"] != "" ||
			tt["gpu_energy_j"] != nil || tt["vram_peak_mib"] != nil || tt["avg_ts"].(float64) <= 0 {
			t.Errorf("auto on a machine without GPU: %v", tt)
		}
	}
	if !strings.Contains(errb.String(), "glmbench: -dev auto: no CUDA device: ") || !strings.Contains(errb.String(), "running on the CPU") {
		t.Errorf("no fallback note on stderr:\n%s", errb.String())
	}
}

func TestLoadCUDARefusesCacheType(t *testing.T) {
	_, err := loadCUDA(bench.LoadOptions{Path: filepath.Join(t.TempDir(), "absent.gguf"), CacheType: "q8_0"})
	if err == nil || !strings.Contains(err.Error(), "cache type q8_0 is not supported on the CUDA backend") {
		t.Errorf("loadCUDA with a q8_0 cache: %v", err)
	}
	b := cudaBackend()
	if b.Name != "CUDA" || b.Device != "CUDA0" || b.CacheTypes[0] != "f16" || b.ExactCacheType != "f32" {
		t.Errorf("backend %+v", b)
	}
}
