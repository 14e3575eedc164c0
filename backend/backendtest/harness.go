// Package backendtest is the conformance suite of backend.Backend: RunAll
// runs every op of a backend, for every weight dtype it lists, on random
// inputs of several shapes (odd sizes, several tokens, expert ids out of
// range, aliasing where allowed) against float64 references computed here
// from the same bytes (weights dequantised by backend/quant), with a
// tolerance per op and dtype derived in the comment next to it. It also
// checks that wrong dtypes, shapes, foreign and freed buffers give errors,
// and that dtypes a backend does not list give ErrNotImplemented.
//
// Inputs are drawn from a seed logged at the start; GLMRUN_TEST_SEED
// replays one.
package backendtest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/glmrun/glmrun/backend"
)

// reporter is the part of testing.TB the checks use; the self-test
// implements it to see whether a check fails.
type reporter interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// check is one conformance test.
type check struct {
	name string
	run  func(h *harness)
}

// harness is the state of one check: the backend under test, the random
// source and the reporter; buffers it allocates are freed by done.
type harness struct {
	t    reporter
	b    backend.Backend
	o    backend.Ops
	caps backend.Capabilities
	r    *rand.Rand
	bufs []backend.Buffer
}

// RunAll runs the whole suite against b as subtests of t. b must be open;
// RunAll does not close it.
func RunAll(t *testing.T, b backend.Backend) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GLMRUN_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("GLMRUN_TEST_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("backend %s, seed %d (GLMRUN_TEST_SEED=%d replays it)", b.Name(), seed, seed)
	for i, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, b, seed+uint64(i))
			defer h.done()
			c.run(h)
		})
	}
}

func newHarness(t reporter, b backend.Backend, seed uint64) *harness {
	return &harness{t: t, b: b, o: b.Ops(), caps: b.Capabilities(), r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// done syncs (so no op still uses a buffer) and frees what the check
// allocated.
func (h *harness) done() {
	_ = h.b.Sync()
	for _, b := range h.bufs {
		b.Free()
	}
	h.bufs = nil
}

// must fails the check on err.
func (h *harness) must(err error, what string) {
	h.t.Helper()
	if err != nil {
		h.t.Fatalf("%s: %v", what, err)
	}
}

// upload allocates a buffer and uploads raw bytes into it.
func (h *harness) upload(dt backend.DType, raw []byte, shape ...int) backend.Buffer {
	h.t.Helper()
	b, err := h.b.Alloc(dt, shape...)
	h.must(err, fmt.Sprintf("Alloc(%s, %v)", dt, shape))
	h.bufs = append(h.bufs, b)
	h.must(h.b.Upload(b, raw), fmt.Sprintf("Upload(%s %v)", dt, shape))
	return b
}

// f32 uploads v as an F32 buffer of shape.
func (h *harness) f32(v []float32, shape ...int) backend.Buffer {
	h.t.Helper()
	return h.upload(backend.F32, f32Bytes(v), shape...)
}

// i32 uploads v as an I32 buffer of shape.
func (h *harness) i32(v []int32, shape ...int) backend.Buffer {
	h.t.Helper()
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(x))
	}
	return h.upload(backend.I32, raw, shape...)
}

// out allocates an F32 (or I32) output poisoned with NaN bits, so values an
// op fails to write are seen.
func (h *harness) out(dt backend.DType, shape ...int) backend.Buffer {
	h.t.Helper()
	n := backend.Elems(shape)
	raw := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(raw[4*i:], 0x7fc00000)
	}
	return h.upload(dt, raw, shape...)
}

// read syncs and downloads an F32 buffer.
func (h *harness) read(b backend.Buffer) []float32 {
	h.t.Helper()
	h.must(h.b.Sync(), "Sync")
	raw := make([]byte, 4*backend.Elems(b.Shape()))
	h.must(h.b.Download(raw, b), "Download")
	return f32From(raw)
}

// readI32 syncs and downloads an I32 buffer.
func (h *harness) readI32(b backend.Buffer) []int32 {
	h.t.Helper()
	h.must(h.b.Sync(), "Sync")
	raw := make([]byte, 4*backend.Elems(b.Shape()))
	h.must(h.b.Download(raw, b), "Download")
	v := make([]int32, len(raw)/4)
	for i := range v {
		v[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return v
}

// gauss returns n normal values of standard deviation sd.
func (h *harness) gauss(n int, sd float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(h.r.NormFloat64() * sd)
	}
	return v
}

func f32Bytes(v []float32) []byte {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	return raw
}

func f32From(raw []byte) []float32 {
	v := make([]float32, len(raw)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return v
}

// u is the unit roundoff of float32.
const u = 1.0 / (1 << 24)

// near compares got with the float64 reference ref element by element:
// |got-ref| <= tol[i] (tol nil: exact to float32 rounding of ref), and a
// NaN ref demands a NaN. It reports the first few violations and a count.
func (h *harness) near(what string, got []float32, ref, tol []float64) {
	h.t.Helper()
	if len(got) != len(ref) {
		h.t.Fatalf("%s: %d values, reference has %d", what, len(got), len(ref))
	}
	bad := 0
	for i, g := range got {
		r := ref[i]
		var ok bool
		switch {
		case math.IsNaN(r):
			ok = math.IsNaN(float64(g))
		case tol == nil:
			ok = g == float32(r)
		default:
			ok = math.Abs(float64(g)-r) <= tol[i]
		}
		if ok {
			continue
		}
		if bad < 5 {
			t := "exact"
			if tol != nil {
				t = fmt.Sprintf("%.3g", tol[i])
			}
			h.t.Errorf("%s: [%d] = %v, want %v (|diff| %.3g, tolerance %s)", what, i, g, r, math.Abs(float64(g)-r), t)
		}
		bad++
	}
	if bad > 5 {
		h.t.Errorf("%s: %d of %d values outside the tolerance", what, bad, len(got))
	}
}

// wantErr checks that err is non-nil and wraps target (nil target: any
// error).
func (h *harness) wantErr(what string, err, target error) {
	h.t.Helper()
	switch {
	case err == nil:
		h.t.Errorf("%s: no error", what)
	case target != nil && !errors.Is(err, target):
		h.t.Errorf("%s: error %q does not wrap %q", what, err, target)
	}
}

// recorder is a reporter that records failures instead of failing a test;
// Fatalf ends the calling goroutine (run checks through runRecorded).
type recorder struct {
	failed bool
	msgs   []string
}

func (r *recorder) Helper()                 {}
func (r *recorder) Logf(f string, a ...any) {}
func (r *recorder) Errorf(f string, a ...any) {
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprintf(f, a...))
}
func (r *recorder) Fatalf(f string, a ...any) { r.Errorf(f, a...); runtime.Goexit() }

// String summarises the first recorded failures.
func (r *recorder) String() string { return fmt.Sprint(r.msgs[:min(3, len(r.msgs))]) }

// runRecorded runs check c against b on its own goroutine with a recorder
// and returns the recorder (for the self-test).
func runRecorded(c check, b backend.Backend, seed uint64) *recorder {
	rec := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h := newHarness(rec, b, seed)
		defer h.done()
		c.run(h)
	}()
	<-done
	return rec
}
