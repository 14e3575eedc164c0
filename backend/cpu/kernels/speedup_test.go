//go:build linux

package kernels

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// threadCPU returns the CPU time consumed by the calling OS thread
// (clock_gettime(CLOCK_THREAD_CPUTIME_ID): scheduler runtime, ns precision).
func threadCPU() time.Duration {
	var ts syscall.Timespec
	const clockThreadCPUTimeID = 3
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

// cpuPerOp runs f repeatedly on a locked thread and returns the thread CPU
// time per call, minimum over 4 rounds: unlike wall-clock benchmarks this
// stays meaningful on a loaded machine.
func cpuPerOp(f func()) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	best := time.Duration(1<<63 - 1)
	iters := 1
	for {
		t0 := threadCPU()
		for i := 0; i < iters; i++ {
			f()
		}
		if threadCPU()-t0 > 10*time.Millisecond {
			break
		}
		iters *= 2
	}
	for round := 0; round < 4; round++ {
		t0 := threadCPU()
		for i := 0; i < iters; i++ {
			f()
		}
		best = min(best, (threadCPU()-t0)/time.Duration(iters))
	}
	return best
}

// TestSpeedupReport prints the speedup of every kernel over its twin at the
// GLM row lengths, measured in thread CPU time. Mat rows are per 16×4 tile
// (64 dot products). It runs only with
// GLM_KERNEL_SPEEDUP=1 (it takes about a minute).
func TestSpeedupReport(t *testing.T) {
	if !speedupEnabled() {
		t.Skip("set GLM_KERNEL_SPEEDUP=1 to measure")
	}
	type row struct {
		name string
		n    int
		run  func()
	}
	var rows []row
	r := rand.New(rand.NewPCG(1, 1))
	for _, c := range qcases {
		for _, n := range []int{2048, 1536, 5120, 10240} {
			if n%c.k.block != 0 {
				continue
			}
			nb := n / c.k.block
			w, x := c.genW(r, nb, modeReal), c.genX(r, nb, modeReal)
			rows = append(rows, row{c.k.name, n, func() { sink += c.dot(n, w, x) }})
			const R = 16
			var wr []byte
			for i := 0; i < R; i++ {
				wr = append(wr, w...)
			}
			var xc []byte
			for i := 0; i < 4; i++ {
				xc = append(xc, x...)
			}
			dst := make([]float32, 4*R)
			rows = append(rows, row{"Mat" + c.k.name[3:] + "(16x4)/64", n, func() { c.mat(n, wr, R, xc, 4, dst, R) }})
		}
	}
	for _, n := range []int{2048, 1536, 5120, 10240} {
		q, sc := genMMFP4(r, n, modeReal)
		x := genQ8_0(r, n/32, modeReal)
		rows = append(rows, row{"DotMMFP4Q8_0", n, func() { sink += DotMMFP4Q8_0(n, q, sc, x) }})
	}
	for _, c := range qzcases {
		for _, n := range []int{2048, 1536, 5120, 10240} {
			x := randFloats(r, n)
			dst := make([]byte, n/c.block*c.bytes)
			rows = append(rows, row{c.name, n, func() { c.fast(x, dst) }})
		}
	}
	for _, n := range []int{2048, 1536, 5120, 10240} {
		a, b := randF32(r, n, 1), randF32(r, n, 1)
		wb := make([]byte, 2*n)
		rows = append(rows,
			row{"DotF32", n, func() { sink += DotF32(a, b) }},
			row{"SumSquares", n, func() { sink += SumSquares(a) }},
			row{"AxpyF32", n, func() { AxpyF32(1e-9, a, b) }},
			row{"ScaleF32", n, func() { ScaleF32(1, b) }},
			row{"DotBF16F32", n, func() { sink += DotBF16F32(wb, a) }},
			row{"DotF16F32", n, func() { sink += DotF16F32(wb, a) }},
		)
	}
	fmt.Printf("%-26s %6s %10s %10s %10s %8s %8s\n", "kernel", "n", "twin", "avx2", "avx512", "x avx2", "x avx512")
	for _, rw := range rows {
		var ts [LevelAVX512 + 1]time.Duration
		for l := LevelGeneric; l <= detected; l++ {
			restore := setLevel(l)
			ts[l] = cpuPerOp(rw.run)
			restore()
		}
		sp := func(l Level) string {
			if ts[l] == 0 {
				return "-"
			}
			return fmt.Sprintf("%.1f", float64(ts[0])/float64(ts[l]))
		}
		fmt.Printf("%-26s %6d %10v %10v %10v %8s %8s\n", rw.name, rw.n, ts[0], ts[1], ts[2], sp(1), sp(2))
	}
}

func speedupEnabled() bool { return os.Getenv("GLM_KERNEL_SPEEDUP") == "1" }

// TestF32ColsSpeed compares the column kernels with per-column calls at the
// attention shape (576-float latent rows, 20 heads); GLM_KERNEL_SPEEDUP=1.
func TestF32ColsSpeed(t *testing.T) {
	if !speedupEnabled() {
		t.Skip("set GLM_KERNEL_SPEEDUP=1 to measure")
	}
	r := rand.New(rand.NewPCG(1, 2))
	const n, heads = 576, 20
	a, b := randF32(r, n, 1), randF32(r, heads*n, 1)
	dst, alpha := make([]float32, heads), randF32(r, heads, 1)
	cols := cpuPerOp(func() { DotF32Cols(a, b, heads, dst, 1) })
	one := cpuPerOp(func() {
		for c := 0; c < heads; c++ {
			dst[c] = DotF32(a, b[c*n:(c+1)*n])
		}
	})
	acols := cpuPerOp(func() { AxpyF32Cols(a[:512], alpha, 1, b[:heads*512], heads) })
	aone := cpuPerOp(func() {
		for c := 0; c < heads; c++ {
			AxpyF32(alpha[c], a[:512], b[c*512:(c+1)*512])
		}
	})
	t.Logf("DotF32Cols 576x20: %v vs 20×DotF32 %v (%.2fx); AxpyF32Cols 512x20: %v vs 20×AxpyF32 %v (%.2fx)",
		cols, one, float64(one)/float64(cols), acols, aone, float64(aone)/float64(acols))
}
