package main

import (
	"fmt"
	"os"

	"github.com/glmrun/glmrun/backend/cuda"
	"github.com/glmrun/glmrun/bench"
	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/model/glm4moe"
)

// cudaBackend is glmbench's CUDA backend: glm4moe with Options.Device
// "cuda" on CUDA device 0 (CUDA0). Its KV cache is f16 by default (like
// llama-bench's) or f32 (-ctk f32 -ctv f32: Options.CacheF32). Without cgo
// or a driver, backend/cuda's stubs make the probe fail with ErrNoDevice, so
// -dev auto runs on the CPU and -dev cuda is a clear error.
func cudaBackend() bench.Backend {
	return bench.Backend{Name: "CUDA", Device: "CUDA0", CacheTypes: []string{"f16", "f32"},
		ExactCacheType: "f32", Probe: probeCUDA, Load: loadCUDA}
}

// probeCUDA opens CUDA device 0 (driver, context, kernel module: the checks
// a model load would do first, without uploading anything), describes it
// the way llama-bench's --list-devices does and closes it again.
func probeCUDA() (string, error) {
	d, err := cuda.Open(0)
	if err != nil {
		return "", err
	}
	defer d.Close()
	info := d.Info()
	var free, total uint64
	if err := d.Do(func(c *cuda.Ctx) error {
		var err error
		free, total, err = c.MemInfo()
		return err
	}); err != nil {
		return fmt.Sprintf("%s (%d MiB)", info.Name, info.TotalMem>>20), nil
	}
	return fmt.Sprintf("%s (%d MiB, %d MiB free)", info.Name, total>>20, free>>20), nil
}

// vramBaseline reads the device-wide memory in use on CUDA device 0 through
// NVML before the model is loaded (ok false when NVML gives no memory
// figure). The device is opened only for the reading; this process's
// primary context is therefore part of the baseline.
func vramBaseline() (uint64, bool) {
	d, err := cuda.Open(0)
	if err != nil {
		return 0, false
	}
	defer d.Close()
	t := d.Telemetry()
	return t.MemUsed, t.HasMem
}

// loadCUDA is the CUDA backend's Loader: the model file opened as
// opt.LoadMode says, loaded by glm4moe on CUDA device 0 (weights uploaded at
// load, KV cache in device memory, f16 unless opt.CacheType is "f32").
func loadCUDA(opt bench.LoadOptions) (bench.Engine, error) {
	cacheF32 := false
	switch opt.CacheType {
	case "", "f16":
	case "f32":
		cacheF32 = true
	default:
		return nil, fmt.Errorf("cache type %s is not supported on the CUDA backend (f16 or f32)", opt.CacheType)
	}
	base, baseOK := vramBaseline()
	f, err := bench.OpenGGUF(opt.Path, opt.LoadMode)
	if err != nil {
		return nil, err
	}
	m, err := glm4moe.Load(f, glm4moe.Options{Exact: opt.Exact, Threads: opt.Threads, UBatch: opt.UBatch,
		Device: "cuda", CacheF32: cacheF32})
	if err != nil {
		f.Close()
		return nil, err
	}
	e := &cudaEngine{f: f, m: m, base: base, baseOK: baseOK, cacheF32: cacheF32 || opt.Exact}
	if w, free, total, ok := m.VRAM(); ok {
		fmt.Fprintf(os.Stderr, "glmbench: %s: weights %.2f GiB in VRAM, %.2f of %.2f GiB free\n",
			m.GPUName(), float64(w)/(1<<30), float64(free)/(1<<30), float64(total)/(1<<30))
	}
	return e, nil
}

// cudaEngine is a glm4moe model on CUDA; it implements bench.Engine,
// bench.KVSizer and bench.GPUTelemetry.
type cudaEngine struct {
	f        *gguf.File
	m        *glm4moe.Model
	base     uint64 // device memory in use before the load (NVML), bytes
	baseOK   bool
	cacheF32 bool // f32 cache (CacheF32, or Exact, which always uses f32)
}

func (e *cudaEngine) VocabSize() int  { return e.m.Config().VocabSize }
func (e *cudaEngine) Backend() string { return "CUDA" }
func (e *cudaEngine) Close() error {
	err := e.m.Close()
	if err2 := e.f.Close(); err == nil {
		err = err2
	}
	return err
}

// KVBytes is the size of the latent cache of maxTokens tokens: 2 bytes per
// value (f16), 4 with an f32 cache.
func (e *cudaEngine) KVBytes(maxTokens int) uint64 {
	c := e.m.Config()
	per := uint64(2)
	if e.cacheF32 {
		per = 4
	}
	return uint64(maxTokens) * uint64(c.NLayer) * uint64(c.CacheRow()) * per
}

// GPUName is the CUDA device's name.
func (e *cudaEngine) GPUName() string { return e.m.GPUName() }

// GPUReading is NVML's reading of the device (glm4moe Model.GPUTelemetry).
func (e *cudaEngine) GPUReading() bench.GPUReading {
	t, ok := e.m.GPUTelemetry()
	if !ok {
		return bench.GPUReading{Err: fmt.Errorf("the model is not on a GPU")}
	}
	return bench.GPUReading{PowerW: t.PowerW, HasPower: t.HasPower, EnergyJ: t.EnergyJ, HasEnergy: t.HasEnergy,
		MemUsed: t.MemUsed, HasMem: t.HasMem, Err: t.Err}
}

// VRAMBaseline is the device memory in use before the load.
func (e *cudaEngine) VRAMBaseline() (uint64, bool) { return e.base, e.baseOK }

// VRAMWeights is the device memory of the uploaded weights.
func (e *cudaEngine) VRAMWeights() (uint64, bool) {
	w, _, _, ok := e.m.VRAM()
	if !ok || w < 0 {
		return 0, false
	}
	return uint64(w), true
}

// VRAMFree is the driver's free device memory.
func (e *cudaEngine) VRAMFree() (uint64, bool) {
	_, free, total, ok := e.m.VRAM()
	return free, ok && total > 0
}

func (e *cudaEngine) NewSequence(maxTokens int) (bench.Sequence, error) {
	c, err := e.m.NewCache(maxTokens)
	if err != nil {
		return nil, err
	}
	return &cudaSequence{m: e.m, c: c}, nil
}

// cudaSequence is one device-resident cache; Release frees its device
// memory when the test is done (otherwise it would live until Close).
type cudaSequence struct {
	m *glm4moe.Model
	c *glm4moe.Cache
}

func (s *cudaSequence) Len() int             { return s.c.Len() }
func (s *cudaSequence) Truncate(n int) error { return s.c.Truncate(n) }
func (s *cudaSequence) Release() error       { return s.c.Release() }
func (s *cudaSequence) Decode(tokens []int32) ([]float32, error) {
	out, err := s.m.Forward(s.c, tokens, false)
	if err != nil {
		return nil, fmt.Errorf("decode %d tokens at position %d: %w", len(tokens), s.c.Len(), err)
	}
	return out, nil
}
