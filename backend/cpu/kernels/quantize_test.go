package kernels

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/glmrun/glmrun/backend/quant"
)

type qzcase struct {
	name         string
	block, bytes int
	fast, twin   func([]float32, []byte)
}

var qzcases = []qzcase{
	{"QuantizeRowQ8K", 256, 292, QuantizeRowQ8K, quant.QuantizeRowQ8K},
	{"QuantizeRowQ8_0", 32, 34, QuantizeRowQ8_0, quant.QuantizeRowQ8_0},
}

// quantInputs returns test rows of nb blocks: random, with ties of +max and
// −max (first occurrence decides the sign of Q8_K's d), exact .5 products
// (rounding mode), zero blocks, single spikes, denormals, huge values.
func quantInputs(r *rand.Rand, n, block int) map[string][]float32 {
	in := map[string][]float32{}
	x := randFloats(r, n)
	in["random"] = x

	tie := append([]float32(nil), x...)
	for b := 0; b+block <= n; b += block {
		i, j := r.IntN(block), r.IntN(block)
		tie[b+i], tie[b+j] = 50, -50
		if r.IntN(2) == 0 {
			tie[b+i], tie[b+j] = -50, 50
		}
	}
	in["tie"] = tie

	half := make([]float32, n) // integers and halves against a 127 max: products hit .5
	for i := range half {
		half[i] = float32(r.IntN(255)-127) / 2
	}
	for b := 0; b+block <= n; b += block {
		half[b+r.IntN(block)] = 127
	}
	in["halves"] = half

	zero := make([]float32, n)
	for b := 0; b+block <= n; b += 2 * block { // every other block nonzero
		for i := 0; i < block; i++ {
			zero[b+i] = float32(r.NormFloat64())
		}
	}
	in["zeroblocks"] = zero

	spike := make([]float32, n)
	for b := 0; b+block <= n; b += block {
		spike[b+r.IntN(block)] = float32(r.NormFloat64()) * 1e3
	}
	in["spike"] = spike

	tiny := make([]float32, n)
	for i := range tiny {
		tiny[i] = math.Float32frombits(uint32(r.IntN(1<<23))) * float32(1-2*r.IntN(2))
	}
	in["denormal"] = tiny

	huge := make([]float32, n)
	for i := range huge {
		huge[i] = float32(r.NormFloat64()) * 1e37
	}
	in["huge"] = huge

	negz := make([]float32, n)
	for i := range negz {
		negz[i] = float32(math.Copysign(0, -1))
	}
	in["negzero"] = negz
	return in
}

func TestQuantizeRows(t *testing.T) {
	for _, c := range qzcases {
		t.Run(c.name, func(t *testing.T) {
			eachLevel(t, func(t *testing.T) {
				r := rand.New(rand.NewPCG(21, uint64(c.block)))
				maxNB := 4096 / c.block
				for nb := 0; nb <= maxNB; nb++ {
					if c.block == 32 && nb > 16 && nb%7 != 0 {
						continue // every length up to 512, then a sample
					}
					n := nb * c.block
					for name, x := range quantInputs(r, n, c.block) {
						want := make([]byte, nb*c.bytes)
						c.twin(x, want)
						off := (nb*11 + len(name)) % 64
						buf := make([]byte, off+len(want)+guardLen)
						for i := range buf {
							buf[i] = 0xa5
						}
						got := buf[off : off+len(want)]
						c.fast(x, got)
						if !bytes.Equal(got, want) {
							i := 0
							for got[i] == want[i] {
								i++
							}
							t.Fatalf("%s n=%d: first difference at byte %d (block %d, offset %d): got %#x want %#x",
								name, n, i, i/c.bytes, i%c.bytes, got[i], want[i])
						}
						for i, v := range buf {
							if (i < off || i >= off+len(want)) && v != 0xa5 {
								t.Fatalf("%s n=%d: guard byte %d overwritten", name, n, i)
							}
						}
					}
				}
			})
		})
	}
}

func TestQuantizeBadShapesPanic(t *testing.T) {
	for _, c := range qzcases {
		for _, bad := range [][2]int{{c.block + 1, 2 * c.bytes}, {2 * c.block, 2*c.bytes - 1}} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s(len(src)=%d, len(dst)=%d): no panic", c.name, bad[0], bad[1])
					}
				}()
				c.fast(make([]float32, bad[0]), make([]byte, bad[1]))
			}()
		}
	}
}

func fuzzQuantize(f *testing.F, c qzcase) {
	f.Add([]byte{1, 2, 3, 4, 0x80, 0x3f, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		nb := len(data) / 4 / c.block
		if nb == 0 {
			nb = 1
		}
		x := make([]float32, nb*c.block)
		for i := range x {
			var u uint32
			if len(data) >= 4 {
				j := (4 * i) % (len(data) - 3)
				u = binary.LittleEndian.Uint32(data[j:])
			}
			v := math.Float32frombits(u)
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				v = float32(int8(u))
			}
			x[i] = v
		}
		want := make([]byte, nb*c.bytes)
		c.twin(x, want)
		for _, l := range fastLevels() {
			restore := setLevel(l)
			got := make([]byte, nb*c.bytes)
			c.fast(x, got)
			restore()
			if !bytes.Equal(got, want) {
				t.Fatalf("%v: fast and twin differ for %v", l, x)
			}
		}
	})
}

func FuzzQuantizeRowQ8K(f *testing.F)  { fuzzQuantize(f, qzcases[0]) }
func FuzzQuantizeRowQ8_0(f *testing.F) { fuzzQuantize(f, qzcases[1]) }

func BenchmarkQuantize(b *testing.B) {
	for _, c := range qzcases {
		for _, n := range []int{2048, 1536, 5120, 10240} {
			x := randFloats(rand.New(rand.NewPCG(1, 1)), n)
			dst := make([]byte, n/c.block*c.bytes)
			for _, l := range append([]Level{LevelGeneric}, fastLevels()...) {
				b.Run(fmt.Sprintf("%s/n=%d/%v", c.name, n, l), func(b *testing.B) {
					defer setLevel(l)()
					b.SetBytes(int64(4 * n))
					for b.Loop() {
						c.fast(x, dst)
					}
				})
			}
		}
	}
}
