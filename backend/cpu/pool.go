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
	"time"
)

// Pool runs index ranges on a fixed number of goroutines. The zero value and
// a nil *Pool run everything on the calling goroutine.
//
// Workers are persistent: NewPool's Threads()-1 helper goroutines start on
// the first parallel For and wait for the next one, spinning for a short
// while (spinWait, yielding to other runnable goroutines as they go) before
// parking, so the many small products of a decode step do not each pay a
// goroutine start and a cross-CPU wake-up. They exit
// when the Pool is garbage collected. For calls that overlap (from several
// goroutines, or nested) fall back to goroutines started per call.
type Pool struct {
	threads int
	ws      *workers
}

// NewPool returns a pool of the given size; threads <= 0 means
// runtime.NumCPU().
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	p := &Pool{threads: threads}
	if threads > 1 {
		p.ws = &workers{quit: make(chan struct{}), done: make(chan struct{}, 1)}
	}
	return p
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

// spinWait is how long an idle worker (or For waiting for its workers)
// polls before parking: longer than the gaps between the products of one
// decode step, short enough to cost little on a loaded machine.
const spinWait = 50 * time.Microsecond

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
	j := &poolJob{fn: fn, n: n, t: t, size: max(grain, (n+t*chunksPerThread-1)/(t*chunksPerThread))}
	if p.ws == nil || !p.ws.mu.TryLock() {
		j.spawn()
		return
	}
	defer p.ws.mu.Unlock()
	p.ws.run(p, j)
}

// poolJob is one For call's work, shared by its workers.
type poolJob struct {
	fn          func(worker, lo, hi int)
	n, t, size  int
	next        atomic.Int64
	outstanding atomic.Int32 // helper workers not yet done
}

// work runs ranges of j on worker w until none are left.
func (j *poolJob) work(w int) {
	for {
		lo := int(j.next.Add(int64(j.size))) - j.size
		if lo >= j.n {
			return
		}
		j.fn(w, lo, min(lo+j.size, j.n))
	}
}

// spawn runs j on goroutines started for this call.
func (j *poolJob) spawn() {
	var wg sync.WaitGroup
	wg.Add(j.t - 1)
	for w := 1; w < j.t; w++ {
		go func(w int) {
			defer wg.Done()
			j.work(w)
		}(w)
	}
	j.work(0)
	wg.Wait()
}

// workers are a Pool's persistent helper goroutines (worker ids 1..).
type workers struct {
	mu      sync.Mutex // held by the For using the workers
	started bool
	cur     atomic.Pointer[poolJob]
	wake    []chan struct{} // per worker id; wake[0] unused
	quit    chan struct{}   // closed when the Pool is collected
	done    chan struct{}   // one token per job: its last helper finished
}

// run runs j on the calling goroutine (worker 0) and the helpers.
func (ws *workers) run(p *Pool, j *poolJob) {
	if !ws.started {
		ws.started = true
		ws.wake = make([]chan struct{}, p.threads)
		for w := 1; w < p.threads; w++ {
			ws.wake[w] = make(chan struct{}, 1)
			go ws.loop(w)
		}
		runtime.AddCleanup(p, func(q chan struct{}) { close(q) }, ws.quit)
	}
	j.outstanding.Store(int32(j.t - 1))
	ws.cur.Store(j)
	for w := 1; w < j.t; w++ {
		select {
		case ws.wake[w] <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
	j.work(0)
	t0 := time.Now()
	for i := 0; j.outstanding.Load() != 0; i++ {
		if i&63 == 63 {
			if time.Since(t0) > spinWait {
				break
			}
			runtime.Gosched()
		}
	}
	<-ws.done
}

// loop is helper worker w: it runs its share of every new job.
func (ws *workers) loop(w int) {
	var last *poolJob
	for {
		j := ws.cur.Load()
		if j == last {
			// Spin a little, then park until woken.
			t0 := time.Now()
			for i := 0; j == last; i++ {
				if i&63 == 63 {
					if time.Since(t0) > spinWait {
						select {
						case <-ws.wake[w]:
						case <-ws.quit:
							return
						}
						t0 = time.Now()
					} else {
						// Let runnable goroutines (a server's stream
						// writers) use the spin time.
						runtime.Gosched()
					}
				}
				j = ws.cur.Load()
			}
		}
		last = j
		if w < j.t {
			j.work(w)
			if j.outstanding.Add(-1) == 0 {
				ws.done <- struct{}{}
			}
		}
	}
}
