package bench

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Backend is one compute backend glmbench can run the model on. The CPU
// backend is always present (Main adds it when the caller does not); GPU
// backends are registered by the command (cmd/glmbench registers CUDA), so
// this package needs no GPU code of its own.
type Backend struct {
	// Name is the backend's name in the backends field: "CPU", "CUDA".
	Name string
	// Device is the -dev name of its device ("CUDA0"); "" for the CPU.
	Device string
	// CacheTypes are the KV-cache types the backend supports; the first one
	// is its default ("f16" on CUDA, like llama-bench; "f32" on the CPU).
	CacheTypes []string
	// ExactCacheType, if set, is the only cache type --exact runs with on
	// this backend ("f32" on CUDA: exact mode keeps f32 math throughout).
	ExactCacheType string
	// Probe checks that the device is usable and describes it
	// ("NVIDIA H100 80GB HBM3 (81079 MiB, 80520 MiB free)"); nil means
	// always usable. A failing probe makes -dev auto fall back to the CPU and
	// an explicit -dev a clear error.
	Probe func() (string, error)
	// Load opens a model on this backend.
	Load Loader
}

// GPU reports whether the backend is a GPU backend (it has a device name).
func (b *Backend) GPU() bool { return b.Device != "" }

// CPUBackend is glmrun's CPU engine (package glm4moe): f32 KV cache.
func CPUBackend() Backend {
	return Backend{Name: "CPU", CacheTypes: []string{"f32"}, Load: LoadGLM4MoE}
}

// cacheTypeNames are the -ctk/-ctv values llama-bench knows (plus f32, which
// glmrun's CPU engine uses).
var cacheTypeNames = []string{"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"}

// normalizeDevice maps one -dev value to the form printed in the devices
// field: "auto", "none" (the CPU; "cpu" is accepted as ours) or a device
// name such as "CUDA0" ("cuda" is accepted as ours and means CUDA0). Device
// names are matched case-insensitively; llama-bench's multi-device form
// "CUDA0/CUDA1" is refused because glmrun runs on one device.
func normalizeDevice(v string) (string, error) {
	d := strings.TrimSpace(v)
	switch strings.ToLower(d) {
	case "":
		return "", errors.New("no devices specified")
	case "auto":
		return "auto", nil
	case "none", "cpu":
		return "none", nil
	case "cuda", "cuda0":
		return "CUDA0", nil
	}
	if strings.ContainsAny(d, "/;") {
		return "", fmt.Errorf("invalid device: %s (glmrun runs on one device: auto, none, cpu, cuda or CUDA0)", d)
	}
	if strings.HasPrefix(strings.ToLower(d), "cuda") {
		return "", fmt.Errorf("invalid device: %s (glmrun runs on CUDA device 0 only: CUDA0)", d)
	}
	return "", fmt.Errorf("invalid device: %s (use auto, none, cpu, cuda or CUDA0)", d)
}

// deviceSet resolves -dev values to backends, probing each GPU backend at
// most once.
type deviceSet struct {
	backends []Backend // CPU first
	probed   map[string]error
	desc     map[string]string
}

func newDeviceSet(backends []Backend) *deviceSet {
	s := &deviceSet{probed: map[string]error{}, desc: map[string]string{}}
	hasCPU := false
	for _, b := range backends {
		hasCPU = hasCPU || b.Name == "CPU"
	}
	if !hasCPU {
		s.backends = append(s.backends, CPUBackend())
	}
	s.backends = append(s.backends, backends...)
	slices.SortStableFunc(s.backends, func(a, b Backend) int {
		// CPU first; GPUs keep their registration order.
		switch {
		case !a.GPU() && b.GPU():
			return -1
		case a.GPU() && !b.GPU():
			return 1
		}
		return 0
	})
	return s
}

func (s *deviceSet) cpu() *Backend {
	for i := range s.backends {
		if !s.backends[i].GPU() {
			return &s.backends[i]
		}
	}
	return nil
}

// probe runs b's probe once and remembers the answer.
func (s *deviceSet) probe(b *Backend) error {
	if b.Probe == nil {
		return nil
	}
	if err, ok := s.probed[b.Device]; ok {
		return err
	}
	desc, err := b.Probe()
	s.probed[b.Device], s.desc[b.Device] = err, desc
	return err
}

// resolve returns the backend of a normalised -dev value and -ngl value:
// "none" is the CPU; a device name is that GPU (an error wrapping the probe's
// when it is not usable); "auto" is the first usable GPU, else the CPU. A
// GPU backend runs every layer, so ngl 0 selects the CPU (llama-bench's
// -ngl 0 keeps the layers on the host).
func (s *deviceSet) resolve(dev string, ngl int) (*Backend, error) {
	if dev == "none" || ngl == 0 {
		return s.cpu(), nil
	}
	for i := range s.backends {
		b := &s.backends[i]
		if !b.GPU() || (dev != "auto" && !strings.EqualFold(dev, b.Device)) {
			continue
		}
		if err := s.probe(b); err != nil {
			if dev == "auto" {
				continue
			}
			return nil, fmt.Errorf("-dev %s: no %s device: %w", dev, b.Name, err)
		}
		return b, nil
	}
	if dev == "auto" {
		return s.cpu(), nil
	}
	return nil, fmt.Errorf("-dev %s: no %s device: this glmbench was built without that backend", dev, strings.TrimRight(dev, "0123456789"))
}

// autoFallback says why -dev auto ran on the CPU ("" when no GPU backend
// was tried or one was usable).
func (s *deviceSet) autoFallback() string {
	var why []string
	for _, b := range s.backends {
		if err, ok := s.probed[b.Device]; ok && err != nil {
			why = append(why, fmt.Sprintf("no %s device: %v", b.Name, err))
		}
	}
	return strings.Join(why, "; ")
}

// cacheType checks one test's -ctk/-ctv against backend b and returns the
// cache type it runs with ("" means b's default; with exact, b's
// ExactCacheType when it has one).
func cacheType(b *Backend, k, v string, exact bool) (string, error) {
	if k == "" {
		k = v
	}
	if v == "" {
		v = k
	}
	if exact && b.ExactCacheType != "" {
		if k != "" && k != b.ExactCacheType {
			return "", fmt.Errorf("--exact runs with a %s cache on the %s backend, not %s", b.ExactCacheType, b.Name, k)
		}
		k, v = b.ExactCacheType, b.ExactCacheType
	}
	if k == "" {
		return b.CacheTypes[0], nil
	}
	if k != v {
		return "", fmt.Errorf("-ctk %s with -ctv %s: glmrun's latent cache holds keys and values in one row, so both must be the same type", k, v)
	}
	if !slices.Contains(b.CacheTypes, k) {
		return "", fmt.Errorf("cache type %s is not supported on the %s backend (supported: %s)", k, b.Name, strings.Join(b.CacheTypes, ", "))
	}
	return k, nil
}

// ListDevices writes llama-bench's --list-devices answer: every GPU
// backend's device with its description, or why it is not usable, then the
// CPU.
func ListDevices(w io.Writer, backends []Backend) {
	s := newDeviceSet(backends)
	fmt.Fprintln(w, "Available devices:")
	for i := range s.backends {
		b := &s.backends[i]
		if !b.GPU() {
			continue
		}
		if err := s.probe(b); err != nil {
			fmt.Fprintf(w, "  %s: not usable: no %s device: %v\n", b.Device, b.Name, err)
			continue
		}
		fmt.Fprintf(w, "  %s: %s\n", b.Device, s.desc[b.Device])
	}
	fmt.Fprintf(w, "  CPU: %s\n", cpuInfo())
}
