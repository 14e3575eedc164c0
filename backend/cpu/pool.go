// Package cpu holds the pure-Go compute kernels of the CPU backend: matrix
// products over quantized weights read in place from the model mapping,
// RMSNorm, RoPE, softmax and SwiGLU, and a worker pool that splits rows
// across threads.
//
// Layouts: activations are row-major float32 matrices [n][cols] (one row per
// token); a weight is ggml-style, Rows rows of Cols elements each, stored as
// consecutive rows of Type blocks (see Weight).
package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Pool runs index ranges on a fixed number of goroutines. The zero value and
// a nil *Pool run everything on the calling goroutine.
type Pool struct {
	threads int
}

// NewPool returns a pool of the given size; threads <= 0 means
// runtime.NumCPU().
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	return &Pool{threads: threads}
}

// Threads returns the number of workers (at least 1).
func (p *Pool) Threads() int {
	if p == nil || p.threads < 1 {
		return 1
	}
	return p.threads
}

// chunksPerThread is how many pieces For cuts its range into per worker, so
// uneven work (causal attention rows, experts with different token counts,
// a worker descheduled by other load) evens out.
const chunksPerThread = 8

// For calls fn(worker, lo, hi) over disjoint ranges covering [0, n). Each
// range holds at least grain items (except possibly the last); worker is in
// [0, Threads()) and is unique among concurrently running calls, so fn may
// use per-worker scratch indexed by it. Ranges are handed out dynamically
// (a worker takes the next range when it finishes one), so a worker may get
// several. For returns when all calls are done.
func (p *Pool) For(n, grain int, fn func(worker, lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	t := p.Threads()
	chunks := (n + grain - 1) / grain
	if chunks < t {
		t = chunks
	}
	if t <= 1 {
		fn(0, 0, n)
		return
	}
	size := max(grain, (n+t*chunksPerThread-1)/(t*chunksPerThread))
	var next atomic.Int64
	work := func(w int) {
		for {
			lo := int(next.Add(int64(size))) - size
			if lo >= n {
				return
			}
			fn(w, lo, min(lo+size, n))
		}
	}
	var wg sync.WaitGroup
	wg.Add(t - 1)
	for w := 1; w < t; w++ {
		go func(w int) {
			defer wg.Done()
			work(w)
		}(w)
	}
	work(0)
	wg.Wait()
}
