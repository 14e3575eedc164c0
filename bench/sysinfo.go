package bench

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// Build identity printed as build_commit / build_number. They can be set
// with -ldflags "-X github.com/glmrun/glmrun/bench.BuildCommit=abc1234
// -X github.com/glmrun/glmrun/bench.BuildNumber=123"; otherwise the VCS
// revision stamped by go build is used ("unknown" under go run).
var (
	BuildCommit = ""
	BuildNumber = "0"
)

func buildCommit() string {
	if BuildCommit != "" {
		return BuildCommit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if len(rev) > 7 {
			rev = rev[:7]
		}
		if rev != "" {
			if dirty {
				rev += "-dirty"
			}
			return rev
		}
	}
	return "unknown"
}

func buildNumber() int {
	n, err := strconv.Atoi(BuildNumber)
	if err != nil {
		return 0
	}
	return n
}

// cpuInfo returns the CPU brand string (ggml's CPU device description),
// read from /proc/cpuinfo; runtime.GOARCH if unavailable.
func cpuInfo() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// PhysicalCores counts distinct sets of SMT siblings in sysfs (llama.cpp's
// cpu_get_num_physical_cores); runtime.NumCPU() if sysfs is unreadable.
func PhysicalCores() int {
	paths, _ := filepath.Glob("/sys/devices/system/cpu/cpu[0-9]*/topology/thread_siblings")
	seen := map[string]bool{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err == nil {
			seen[strings.TrimSpace(string(b))] = true
		}
	}
	if len(seen) == 0 {
		return runtime.NumCPU()
	}
	return len(seen)
}

// ResetPeakRSS resets the kernel's peak-RSS mark (VmHWM) of this process by
// writing 5 to /proc/self/clear_refs; it reports whether that worked.
func ResetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// PeakRSS returns VmHWM of this process in bytes, or ok=false if
// /proc/self/status cannot be read.
func PeakRSS() (bytes uint64, ok bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, found := strings.CutPrefix(line, "VmHWM:"); found {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				if err == nil {
					return kb * 1024, true
				}
			}
		}
	}
	return 0, false
}

// RAPL reads CPU package energy from the Linux powercap counters
// (<Root>/intel-rapl:N/energy_uj for each top-level zone N).
type RAPL struct {
	zones []raplZone
}

type raplZone struct {
	path     string
	maxRange uint64 // max_energy_range_uj: the counter wraps here
}

// OpenRAPL finds the readable package zones under root
// (/sys/class/powercap on Linux). It returns nil if there is none.
func OpenRAPL(root string) *RAPL {
	dirs, _ := filepath.Glob(filepath.Join(root, "intel-rapl:*"))
	r := &RAPL{}
	for _, d := range dirs {
		if strings.Count(filepath.Base(d), ":") != 1 {
			continue // a sub-zone (core, uncore, dram) is inside its package
		}
		p := filepath.Join(d, "energy_uj")
		if _, err := readUint(p); err != nil {
			continue
		}
		z := raplZone{path: p}
		if m, err := readUint(filepath.Join(d, "max_energy_range_uj")); err == nil {
			z.maxRange = m
		}
		r.zones = append(r.zones, z)
	}
	if len(r.zones) == 0 {
		return nil
	}
	return r
}

func readUint(p string) (uint64, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// Sample reads every zone's counter (microjoules).
func (r *RAPL) Sample() ([]uint64, error) {
	out := make([]uint64, len(r.zones))
	for i, z := range r.zones {
		v, err := readUint(z.path)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// Joules returns the energy between two samples, summed over zones,
// allowing for one counter wrap per zone.
func (r *RAPL) Joules(before, after []uint64) float64 {
	var uj float64
	for i := range r.zones {
		if i >= len(before) || i >= len(after) {
			break
		}
		d := after[i] - before[i]
		if after[i] < before[i] {
			d = r.zones[i].maxRange - before[i] + after[i]
		}
		uj += float64(d)
	}
	return uj / 1e6
}
