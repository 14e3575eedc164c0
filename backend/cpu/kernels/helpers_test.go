package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// fastLevels returns the SIMD levels this machine can run, each of which the
// tests force in turn (the generic level is the oracle, not a subject).
func fastLevels() []Level {
	var ls []Level
	for l := LevelAVX2; l <= detected; l++ {
		ls = append(ls, l)
	}
	return ls
}

// eachLevel runs f once per available SIMD level with that level forced.
func eachLevel(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	ls := fastLevels()
	if len(ls) == 0 {
		t.Skip("no SIMD level on this machine: only the twins run")
	}
	for _, l := range ls {
		t.Run(l.String(), func(t *testing.T) {
			defer setLevel(l)()
			f(t)
		})
	}
}

const guardLen = 64

var guardF32Val = math.Float32frombits(0x7fc0dead) // a NaN payload nobody computes

// guardedF32 returns a slice of n floats starting off floats into a buffer
// padded with guard values on both sides, plus the whole buffer.
func guardedF32(n, off int) (s, buf []float32) {
	buf = make([]float32, guardLen+off+n+guardLen)
	for i := range buf {
		buf[i] = guardF32Val
	}
	return buf[guardLen+off : guardLen+off+n : guardLen+off+n], buf
}

// checkGuardF32 fails unless every element of buf outside [lo, lo+n) still
// holds the guard value.
func checkGuardF32(t *testing.T, buf []float32, lo, n int) {
	t.Helper()
	for i, v := range buf {
		if (i < lo || i >= lo+n) && math.Float32bits(v) != math.Float32bits(guardF32Val) {
			t.Fatalf("guard element %d (slice is [%d,%d)) overwritten: %v", i, lo, lo+n, v)
		}
	}
}

// bytesAt copies src into a fresh buffer at byte offset off (0..63), so that
// kernels see every alignment, and returns the copy.
func bytesAt(src []byte, off int) []byte {
	buf := make([]byte, off+len(src)+guardLen)
	for i := range buf {
		buf[i] = 0xa5
	}
	b := buf[off : off+len(src) : off+len(src)]
	copy(b, src)
	return b
}

func randF32(r *rand.Rand, n int, scale float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = (r.Float32()*2 - 1) * scale
	}
	return x
}

func absF32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// closeTo reports whether got is within tol of want (NaN equals NaN).
func closeTo(got, want, tol float32) bool {
	if got == want || (got != got && want != want) {
		return true
	}
	return absF32(got-want) <= tol
}
