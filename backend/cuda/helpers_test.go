package cuda_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/glmrun/glmrun/backend/cuda"
	"github.com/glmrun/glmrun/backend/quant"
)

var (
	devOnce sync.Once
	dev     *cuda.Device
	devErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if dev != nil {
		dev.Close()
	}
	os.Exit(code)
}

// device returns the shared test device, or skips: under CI=true (CI has no
// GPU) and when no driver/device is present. GLMRUN_CUDA_REQUIRE=1 turns
// the missing-device skip into a failure (set it on the GPU machine).
func device(t testing.TB) *cuda.Device {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Skip("CI=true: CI machines have no GPU; CUDA tests run on the GPU machine")
	}
	devOnce.Do(func() { dev, devErr = cuda.Open(0) })
	if devErr != nil {
		if errors.Is(devErr, cuda.ErrNoDevice) && os.Getenv("GLMRUN_CUDA_REQUIRE") == "" {
			t.Skipf("no CUDA device: %v", devErr)
		}
		t.Fatalf("cuda.Open(0): %v", devErr)
	}
	return dev
}

// newRNG returns a fresh, logged seed so every run draws new inputs and a
// failure can be reproduced with GLMRUN_TEST_SEED.
func newRNG(t testing.TB) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GLMRUN_TEST_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// kit runs a sequence of device operations inside Device.Do, keeping the
// first error (t.Fatal must not be called on the owner goroutine) and
// freeing what it allocated.
type kit struct {
	c    *cuda.Ctx
	err  error
	bufs []cuda.Buffer
}

func (k *kit) check(err error) {
	if k.err == nil && err != nil {
		k.err = err
	}
}

// alloc returns n bytes poisoned with NaN words (0x7fc00000), so unwritten
// outputs are visible.
func (k *kit) alloc(n int64) cuda.Buffer {
	if k.err != nil {
		return cuda.Buffer{}
	}
	n = (n + 3) &^ 3
	b, err := k.c.Alloc(n)
	k.check(err)
	if err == nil {
		k.bufs = append(k.bufs, b)
		k.check(k.c.Fill32(b, 0x7fc00000))
	}
	return b
}

func (k *kit) upload(src []byte) cuda.Buffer {
	b := k.alloc(int64(len(src)))
	if k.err == nil {
		k.check(k.c.Upload(b, src))
	}
	return b
}

func (k *kit) f32(v []float32) cuda.Buffer { return k.upload(f32Bytes(v)) }
func (k *kit) i32(v []int32) cuda.Buffer   { return k.upload(i32Bytes(v)) }

func (k *kit) readF32(b cuda.Buffer, n int) []float32 {
	out := make([]byte, 4*n)
	if k.err == nil {
		k.check(k.c.Download(out, b))
	}
	return bytesF32(out)
}

func (k *kit) readI32(b cuda.Buffer, n int) []int32 {
	out := make([]byte, 4*n)
	if k.err == nil {
		k.check(k.c.Download(out, b))
	}
	r := make([]int32, n)
	for i := range r {
		r[i] = int32(binary.LittleEndian.Uint32(out[4*i:]))
	}
	return r
}

func (k *kit) readBytes(b cuda.Buffer, n int) []byte {
	out := make([]byte, n)
	if k.err == nil {
		k.check(k.c.Download(out, b))
	}
	return out
}

func (k *kit) free() {
	for _, b := range k.bufs {
		_ = k.c.Free(b)
	}
	k.bufs = nil
}

// run executes fn with a kit inside Do and fails the test on any error.
func run(t testing.TB, d *cuda.Device, fn func(k *kit)) {
	t.Helper()
	err := d.Do(func(c *cuda.Ctx) error {
		k := &kit{c: c}
		defer k.free()
		fn(k)
		if k.err == nil {
			k.check(c.Sync())
		}
		return k.err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func i32Bytes(v []int32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return b
}

func bytesF32(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func gauss(r *rand.Rand, n int, sigma float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * sigma)
	}
	return v
}

// relL2 returns ||got - want|| / ||want||; any NaN/Inf in got gives +Inf.
func relL2(got []float32, want []float64) float64 {
	var num, den float64
	for i, w := range want {
		g := float64(got[i])
		if math.IsNaN(g) || math.IsInf(g, 0) {
			return math.Inf(1)
		}
		num += (g - w) * (g - w)
		den += w * w
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

func fp16(v float32) float64 { return float64(quant.FP16ToFloat32(quant.Float32ToFP16(v))) }

// q81 emulates the GPU's quantize_q8_1 for one row: per block of 32,
// amax and the sum reduced in the kernel's butterfly order in f32,
// d = amax/127, q = round(x/d) (half away from zero). Returns q, fp16(d)
// and fp16(sum) per block.
func q81(x []float32) (q []int8, d, s []float64) {
	nb := len(x) / 32
	q = make([]int8, len(x))
	d, s = make([]float64, nb), make([]float64, nb)
	for b := 0; b < nb; b++ {
		xs := x[32*b : 32*b+32]
		var amax float32
		var v [32]float32
		copy(v[:], xs)
		for o := 16; o > 0; o >>= 1 {
			var n [32]float32
			for i := range v {
				n[i] = v[i] + v[i^o]
			}
			v = n
		}
		for _, xv := range xs {
			amax = max(amax, float32(math.Abs(float64(xv))))
		}
		db := amax / 127
		for i, xv := range xs {
			if amax != 0 {
				q[32*b+i] = int8(math.Round(float64(xv / db)))
			}
		}
		d[b], s[b] = fp16(db), fp16(v[0])
	}
	return q, d, s
}
