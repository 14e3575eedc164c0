package cpu

import (
	"os"
	"runtime"
	"strings"
)

// PhysicalCores returns the number of physical cores this process may use:
// the distinct (physical id, core id) pairs of /proc/cpuinfo, capped by
// runtime.NumCPU() (which honours the CPU affinity mask). Where cpuinfo is
// unavailable or unhelpful it returns runtime.NumCPU().
func PhysicalCores() int {
	n := runtime.NumCPU()
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return n
	}
	cores := map[string]bool{}
	phys := ""
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "physical id":
			phys = strings.TrimSpace(v)
		case "core id":
			cores[phys+"/"+strings.TrimSpace(v)] = true
		}
	}
	if len(cores) == 0 || len(cores) > n {
		return n
	}
	return len(cores)
}
