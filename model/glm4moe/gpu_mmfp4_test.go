package glm4moe_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/testdata"
	"github.com/glmrun/glmrun/model/glm4moe"
	"github.com/glmrun/glmrun/quantize"
)

// TestGPUMMFP4 runs glm-tiny converted to MMFP4 (glmquant's preset) on CUDA,
// where MMFP4 weights stay MMFP4 on the device (the matvec and GEMM kernels
// of backend/cuda), against the CPU's exact logits of the same file, with
// the fast-path tolerances of TestGPUOracle, at -ub 512 and 1. It also
// checks that the weights really stayed 4-bit: the MMFP4 model takes less
// than a third of the device memory of the exact (all f32) load.
func TestGPUMMFP4(t *testing.T) {
	if os.Getenv("CI") == "true" {
		t.Skip("CI=true: CI machines have no GPU; CUDA tests run on the GPU machine")
	}
	toks := readTokens(t)
	in, err := gguf.Open(testdata.GLMTiny(t, "glm-tiny-bf16.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	path := filepath.Join(t.TempDir(), "glm-tiny-mmfp4.gguf")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := quantize.Requantize(in, out, quantize.Options{Preset: quantize.PresetMMFP4, Threads: 2}); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	nMM := 0
	for _, ti := range f.Tensors {
		if ti.Type == gguf.TypeMMFP4 {
			nMM++
		}
	}
	if nMM == 0 {
		t.Fatal("the MMFP4 preset wrote no MMFP4 tensor")
	}
	exact := openGPU(t, path, glm4moe.Options{Exact: true, UBatch: 512}) // skips without a GPU
	exactBytes, _, _, _ := exact.VRAM()
	cpuM, err := glm4moe.Load(f, glm4moe.Options{Exact: true, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	ref := runAll(t, cpuM, toks)
	for _, ub := range []int{512, 1} {
		t.Run("ub"+strconv.Itoa(ub), func(t *testing.T) {
			m := openGPU(t, path, glm4moe.Options{UBatch: ub})
			w, _, _, _ := m.VRAM()
			if 3*w > exactBytes {
				t.Errorf("MMFP4 model uses %d bytes of device memory, exact f32 load %d: MMFP4 weights were not kept 4-bit", w, exactBytes)
			}
			r := compare(runAll(t, m, toks), ref, tinyVocab)
			t.Logf("CUDA MMFP4 (%d MMFP4 tensors) ub %d vs CPU exact: rel_l2 %.3g top1 %.4f KL %.4g; weights %d bytes (exact load %d)",
				nMM, ub, r.relL2, r.top1, r.kl, w, exactBytes)
			if r.kl > 0.03 || r.top1 < 0.80 {
				t.Errorf("fast path: KL %.4g (max 0.03), top-1 %.4f (min 0.80)", r.kl, r.top1)
			}
		})
	}
}
