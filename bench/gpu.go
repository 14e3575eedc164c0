package bench

import (
	"sync"
	"time"
)

// GPUReading is one telemetry reading of the GPU an engine runs on (NVML on
// CUDA). A value is meaningful only when its Has flag is set.
type GPUReading struct {
	PowerW    float64 // board power now, watts
	HasPower  bool
	EnergyJ   float64 // cumulative energy counter, joules (differences matter)
	HasEnergy bool
	MemUsed   uint64 // device-wide memory in use (all processes), bytes
	HasMem    bool
	Err       error // why something is missing, if it is
}

// GPUTelemetry is implemented by engines that run on a GPU; the CPU engine
// does not implement it and its GPU columns stay null.
type GPUTelemetry interface {
	// GPUName is the device's name ("NVIDIA H100 80GB HBM3").
	GPUName() string
	// GPUReading reads power, energy counter and memory now. It must be
	// safe to call from another goroutine while the engine computes.
	GPUReading() GPUReading
	// VRAMBaseline is the device-wide memory in use before the model was
	// loaded, in bytes (ok false if it could not be read).
	VRAMBaseline() (bytes uint64, ok bool)
	// VRAMWeights is the device memory holding the model's weights, bytes.
	VRAMWeights() (bytes uint64, ok bool)
	// VRAMFree is the free device memory now, bytes (what a new KV cache
	// can use).
	VRAMFree() (bytes uint64, ok bool)
}

// gpuSample is a reading with its time.
type gpuSample struct {
	t time.Time
	r GPUReading
}

// gpuMeter accumulates GPU energy, power and memory over a test's timed
// repetitions: the energy counter's difference around each repetition when
// the counter reads at both ends and advanced, otherwise the trapezoid
// integral of the
// power samples taken every period during the repetition (interfaces.md
// §1.4).
type gpuMeter struct {
	g       GPUTelemetry
	energy  bool // measure power/energy (--energy not off)
	period  time.Duration
	joules  float64
	jOK     bool // every repetition gave an energy figure
	reps    int
	timed   time.Duration
	peakW   float64
	hasPeak bool
	memPeak uint64
	hasMem  bool
	lastErr error

	stop chan struct{}
	done sync.WaitGroup
	mu   sync.Mutex
	cur  []gpuSample
}

func newGPUMeter(g GPUTelemetry, energy bool, period time.Duration) *gpuMeter {
	return &gpuMeter{g: g, energy: energy, period: period, jOK: true}
}

// note folds one reading into the peaks.
func (m *gpuMeter) note(r GPUReading) {
	if r.HasMem && (!m.hasMem || r.MemUsed > m.memPeak) {
		m.memPeak, m.hasMem = r.MemUsed, true
	}
	if m.energy && r.HasPower && (!m.hasPeak || r.PowerW > m.peakW) {
		m.peakW, m.hasPeak = r.PowerW, true
	}
	if r.Err != nil {
		m.lastErr = r.Err
	}
}

// sample reads the GPU once outside a repetition (after allocation and
// warmup), for the memory peak.
func (m *gpuMeter) sample() { m.note(m.g.GPUReading()) }

// begin starts a timed repetition: one reading now and a sampler goroutine.
func (m *gpuMeter) begin() {
	s := gpuSample{time.Now(), m.g.GPUReading()}
	m.mu.Lock()
	m.cur = []gpuSample{s}
	m.mu.Unlock()
	m.stop = make(chan struct{})
	m.done.Add(1)
	go func(stop chan struct{}) {
		defer m.done.Done()
		tick := time.NewTicker(m.period)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				s := gpuSample{time.Now(), m.g.GPUReading()}
				m.mu.Lock()
				m.cur = append(m.cur, s)
				m.mu.Unlock()
			}
		}
	}(m.stop)
}

// abort stops the sampler of a repetition that failed (no-op otherwise).
func (m *gpuMeter) abort() {
	if m.stop != nil {
		close(m.stop)
		m.stop = nil
		m.done.Wait()
	}
}

// end closes a timed repetition of length d and accounts its energy.
func (m *gpuMeter) end(d time.Duration) {
	last := gpuSample{time.Now(), m.g.GPUReading()}
	m.abort()
	m.mu.Lock()
	samples := append(m.cur, last)
	m.cur = nil
	m.mu.Unlock()
	for _, s := range samples {
		m.note(s.r)
	}
	m.reps++
	m.timed += d
	if !m.energy {
		return
	}
	// A counter that did not advance (NVML updates it only every few
	// milliseconds) says nothing about a short repetition: integrate the
	// power samples instead.
	first := samples[0].r
	if first.HasEnergy && last.r.HasEnergy && last.r.EnergyJ > first.EnergyJ {
		m.joules += last.r.EnergyJ - first.EnergyJ
		return
	}
	if j, ok := trapezoidJoules(samples); ok {
		m.joules += j
		return
	}
	m.jOK = false
}

// trapezoidJoules integrates the power samples over time (ok false with
// fewer than two power readings).
func trapezoidJoules(s []gpuSample) (float64, bool) {
	var j float64
	n := 0
	var prev *gpuSample
	for i := range s {
		if !s[i].r.HasPower {
			continue
		}
		if prev != nil {
			dt := s[i].t.Sub(prev.t).Seconds()
			j += dt * (prev.r.PowerW + s[i].r.PowerW) / 2
		}
		prev = &s[i]
		n++
	}
	return j, n >= 2
}

// fill writes the meter's figures into res (fields stay nil where a figure
// is unavailable). kvBytes is the test's cache on the device.
func (m *gpuMeter) fill(res *Result, kvBytes uint64) {
	res.GPUName = m.g.GPUName()
	res.GPUInfo = res.GPUName
	if m.energy && m.reps > 0 && m.jOK {
		j := m.joules
		res.GPUJoules = &j
		if s := m.timed.Seconds(); s > 0 {
			w := j / s
			res.GPUAvgPowerW = &w
		}
	}
	if m.energy && m.hasPeak {
		w := m.peakW
		res.GPUPeakPowerW = &w
	}
	if base, ok := m.g.VRAMBaseline(); ok && m.hasMem {
		var b uint64
		if m.memPeak > base {
			b = m.memPeak - base
		}
		res.VRAMPeak = &b
	}
	if w, ok := m.g.VRAMWeights(); ok {
		res.VRAMWeights = &w
	}
	if kvBytes > 0 {
		kv := kvBytes
		res.VRAMKV = &kv
	}
}
