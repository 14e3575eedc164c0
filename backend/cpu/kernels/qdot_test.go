package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/glmrun/glmrun/backend/quant"
	"github.com/glmrun/glmrun/gguf"
)

// genMode selects how random test blocks are drawn.
type genMode int

const (
	// modeRandom: random codes over the full range (−128 included), fp16
	// scales mixing normal, subnormal, zero and large values.
	modeRandom genMode = iota
	// modeExact: power-of-two scales and bounded codes so every float
	// operation is exact in any order: fast and twin must agree bit for bit.
	modeExact
	// modeExtreme: every code at its maximum, every activation −128 or 127,
	// largest sub-block scales.
	modeExtreme
	// modeReal: rows produced by quant's reference quantizers from random
	// floats.
	modeReal
	nModes
)

func (m genMode) String() string {
	return [...]string{"random", "exact", "extreme", "real"}[m]
}

func putF16(b []byte, h uint16) { binary.LittleEndian.PutUint16(b, h) }

// randF16 draws a finite fp16 scale for modeRandom: mostly normal values in
// [2^-14, 4), sometimes zero, subnormal or the largest finite value.
func randF16(r *rand.Rand) uint16 {
	sign := uint16(r.IntN(2)) << 15
	switch r.IntN(16) {
	case 0:
		return 0
	case 1:
		return sign | uint16(1+r.IntN(0x3ff)) // subnormal
	case 2:
		return sign | 0x7bff // 65504
	}
	return sign | uint16(1+r.IntN(16))<<10 | uint16(r.IntN(1024))
}

// pow2F16 is 1 or 1/2 as fp16. Exact mode keeps every scale product within
// a 2-bit exponent span and every integer sum below 2^21, so all float sums
// are exact whatever their order.
func pow2F16(r *rand.Rand) uint16 { return uint16(15-r.IntN(2)) << 10 }

func randF16Mode(r *rand.Rand, m genMode) uint16 {
	switch m {
	case modeExact:
		return pow2F16(r)
	case modeExtreme:
		return 0x3c00
	}
	return randF16(r)
}

// randInt8 draws an activation code: full range (modeRandom), ±4
// (modeExact), −128/127 (modeExtreme).
func randInt8(r *rand.Rand, m genMode) int8 {
	switch m {
	case modeExact:
		return int8(r.IntN(9) - 4)
	case modeExtreme:
		if r.IntN(4) == 0 {
			return 127
		}
		return -128
	}
	return int8(r.IntN(256) - 128)
}

func randFloats(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
		if r.IntN(50) == 0 {
			x[i] *= 20 // outliers, as in real activations
		}
	}
	return x
}

func genQ8K(r *rand.Rand, nb int, m genMode) []byte {
	if m == modeReal {
		b := make([]byte, nb*292)
		quant.QuantizeRowQ8K(randFloats(r, nb*256), b)
		return b
	}
	b := make([]byte, nb*292)
	for i := 0; i < nb; i++ {
		blk := b[i*292 : (i+1)*292]
		d := float32(math.Ldexp(1, -r.IntN(2)))
		if m == modeRandom {
			d = (r.Float32()*2 - 1) * float32(math.Ldexp(1, -r.IntN(20)))
		}
		binary.LittleEndian.PutUint32(blk, math.Float32bits(d))
		for j := 0; j < 16; j++ {
			var s int
			for l := 0; l < 16; l++ {
				q := randInt8(r, m)
				blk[4+16*j+l] = byte(q)
				s += int(q)
			}
			binary.LittleEndian.PutUint16(blk[260+2*j:], uint16(int16(s)))
		}
	}
	return b
}

func genQ8_0(r *rand.Rand, nb int, m genMode) []byte {
	b := make([]byte, nb*34)
	if m == modeReal {
		quant.QuantizeRowQ8_0(randFloats(r, nb*32), b)
		return b
	}
	for i := 0; i < nb; i++ {
		blk := b[i*34 : (i+1)*34]
		putF16(blk, randF16Mode(r, m))
		for j := 2; j < 34; j++ {
			blk[j] = byte(randInt8(r, m))
		}
	}
	return b
}

func randBytes(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
}

func genQ4K(r *rand.Rand, nb int, m genMode) []byte {
	b := make([]byte, nb*144)
	if m == modeReal {
		quant.QuantizeRowQ4K(randFloats(r, nb*256), b)
		return b
	}
	randBytes(r, b)
	for i := 0; i < nb; i++ {
		blk := b[i*144 : (i+1)*144]
		putF16(blk, randF16Mode(r, m))
		putF16(blk[2:], randF16Mode(r, m))
		switch m {
		case modeExact: // sub-block scales and mins <= 3
			for j := 4; j < 16; j++ {
				blk[j] &= 3
			}
		case modeExtreme: // sc = m = 63, every code 15
			for j := 4; j < 144; j++ {
				blk[j] = 0xff
			}
		}
	}
	return b
}

func genQ5K(r *rand.Rand, nb int, m genMode) []byte {
	b := make([]byte, nb*176)
	if m == modeReal {
		quant.QuantizeRowQ5K(randFloats(r, nb*256), b)
		return b
	}
	randBytes(r, b)
	for i := 0; i < nb; i++ {
		blk := b[i*176 : (i+1)*176]
		putF16(blk, randF16Mode(r, m))
		putF16(blk[2:], randF16Mode(r, m))
		switch m {
		case modeExact: // sub-block scales and mins <= 3
			for j := 4; j < 16; j++ {
				blk[j] &= 3
			}
		case modeExtreme: // sc = m = 63, every code 31
			for j := 4; j < 176; j++ {
				blk[j] = 0xff
			}
		}
	}
	return b
}

func genQ6K(r *rand.Rand, nb int, m genMode) []byte {
	b := make([]byte, nb*210)
	if m == modeReal {
		quant.QuantizeRowQ6K(randFloats(r, nb*256), b)
		return b
	}
	randBytes(r, b)
	for i := 0; i < nb; i++ {
		blk := b[i*210 : (i+1)*210]
		putF16(blk[208:], randF16Mode(r, m))
		switch m {
		case modeExact:
			for j := 192; j < 208; j++ {
				blk[j] = byte(int8(r.IntN(7) - 3))
			}
		case modeExtreme: // codes 63, scales −128 / 127
			for j := 0; j < 192; j++ {
				blk[j] = 0xff
			}
			for j := 192; j < 208; j++ {
				blk[j] = byte(0x80 - r.IntN(2))
			}
		}
	}
	return b
}

func genQ5_0(r *rand.Rand, nb int, m genMode) []byte {
	b := make([]byte, nb*22)
	if m == modeReal {
		quant.QuantizeRowQ5_0(randFloats(r, nb*32), b)
		return b
	}
	randBytes(r, b)
	for i := 0; i < nb; i++ {
		blk := b[i*22 : (i+1)*22]
		putF16(blk, randF16Mode(r, m))
		if m == modeExtreme {
			for j := 2; j < 22; j++ {
				blk[j] = byte(0xff * r.IntN(2)) // codes all 31 or all 0 (−16)
			}
		}
	}
	return b
}

func genMXFP4(r *rand.Rand, nb int, m genMode) []byte {
	b := make([]byte, nb*17)
	if m == modeReal {
		quant.QuantizeRowMXFP4(randFloats(r, nb*32), b)
		return b
	}
	randBytes(r, b)
	for i := 0; i < nb; i++ {
		blk := b[i*17 : (i+1)*17]
		switch m {
		case modeRandom:
			blk[0] = byte(100 + r.IntN(40))
			if r.IntN(8) == 0 {
				blk[0] = []byte{0, 1, 2, 200}[r.IntN(4)] // subnormal and large scales
			}
		case modeExact:
			blk[0] = byte(127 + r.IntN(2))
		case modeExtreme: // ±12 codes (7 and 15), subnormal or unit scales
			blk[0] = []byte{0, 1, 128}[r.IntN(3)]
			for j := 1; j < 17; j++ {
				blk[j] = []byte{0x77, 0xff, 0x7f, 0xf7}[r.IntN(4)]
			}
		}
	}
	return b
}

func genQ8_0W(r *rand.Rand, nb int, m genMode) []byte {
	if m == modeExtreme {
		b := make([]byte, nb*34)
		for i := 0; i < nb; i++ {
			putF16(b[i*34:], 0x3c00)
			for j := 2; j < 34; j++ {
				b[i*34+j] = 0x80 // −128 weights against −128 activations
			}
		}
		return b
	}
	if m == modeExact { // any int8 weight, activations are bounded
		b := make([]byte, nb*34)
		randBytes(r, b)
		for i := 0; i < nb; i++ {
			putF16(b[i*34:], pow2F16(r))
		}
		return b
	}
	return genQ8_0(r, nb, m)
}

// qcase ties a kernel to its generators and the magnitude bound of its float
// terms.
type qcase struct {
	k      *qdot
	dot    func(n int, w, x []byte) float32
	rows   func(n int, w, x []byte, dst []float32)
	mat    func(n int, w []byte, rows int, x []byte, cols int, dst []float32, ldd int)
	genW   func(r *rand.Rand, nb int, m genMode) []byte
	genX   func(r *rand.Rand, nb int, m genMode) []byte
	deqW   func(src []byte, dst []float32)
	deqX   func(src []byte, dst []float32)
	maxNB  int
	split  func(w []byte) (a, b []byte) // Q4_K: the d-only and dmin-only copies
	finite bool
}

var qcases = []qcase{
	{k: kQ4K, dot: DotQ4KQ8K, rows: DotQ4KQ8KRows, mat: MatQ4KQ8K, genW: genQ4K, genX: genQ8K,
		deqW: quant.DequantizeRowQ4K, deqX: quant.DequantizeRowQ8K, maxNB: 16, split: splitQ4K},
	{k: kQ5K, dot: DotQ5KQ8K, rows: DotQ5KQ8KRows, mat: MatQ5KQ8K, genW: genQ5K, genX: genQ8K,
		deqW: quant.DequantizeRowQ5K, deqX: quant.DequantizeRowQ8K, maxNB: 16, split: splitQ5K},
	{k: kQ6K, dot: DotQ6KQ8K, rows: DotQ6KQ8KRows, mat: MatQ6KQ8K, genW: genQ6K, genX: genQ8K,
		deqW: quant.DequantizeRowQ6K, deqX: quant.DequantizeRowQ8K, maxNB: 16},
	{k: kQ5_0, dot: DotQ5_0Q8_0, rows: DotQ5_0Q8_0Rows, mat: MatQ5_0Q8_0, genW: genQ5_0, genX: genQ8_0,
		deqW: quant.DequantizeRowQ5_0, deqX: quant.DequantizeRowQ8_0, maxNB: 128},
	{k: kMXFP4, dot: DotMXFP4Q8_0, rows: DotMXFP4Q8_0Rows, mat: MatMXFP4Q8_0, genW: genMXFP4, genX: genQ8_0,
		deqW: quant.DequantizeRowMXFP4, deqX: quant.DequantizeRowQ8_0, maxNB: 128},
	{k: kQ8_0, dot: DotQ8_0Q8_0, rows: DotQ8_0Q8_0Rows, mat: MatQ8_0Q8_0, genW: genQ8_0W, genX: genQ8_0,
		deqW: quant.DequantizeRowQ8_0, deqX: quant.DequantizeRowQ8_0, maxNB: 128},
}

// splitQ5K is splitQ4K for Q5_K blocks (same d/dmin header).
func splitQ5K(w []byte) (a, b []byte) {
	a, b = append([]byte(nil), w...), append([]byte(nil), w...)
	for i := 0; i+176 <= len(w); i += 176 {
		putF16(a[i+2:], 0)
		putF16(b[i:], 0)
	}
	return a, b
}

// splitQ4K returns two copies of the Q4_K row w: one with every dmin zeroed
// (dequantizes to d·sc·q) and one with every d zeroed (to −dmin·m).
func splitQ4K(w []byte) (a, b []byte) {
	a, b = append([]byte(nil), w...), append([]byte(nil), w...)
	for i := 0; i+144 <= len(w); i += 144 {
		putF16(a[i+2:], 0)
		putF16(b[i:], 0)
	}
	return a, b
}

// magnitude returns S = Σ|float terms| of the dot of w and x (see the
// accuracy note in quantdot.go).
func (c *qcase) magnitude(n int, w, x []byte) float64 {
	xs := make([]float32, n)
	c.deqX(x, xs)
	parts := [][]byte{w}
	if c.split != nil {
		a, b := c.split(w)
		parts = [][]byte{a, b}
	}
	var s float64
	ws := make([]float32, n)
	for _, p := range parts {
		c.deqW(p, ws)
		for i := range ws {
			s += math.Abs(float64(ws[i]) * float64(xs[i]))
		}
	}
	return s
}

// check compares the fast result with the twin for one (w, x) pair.
func (c *qcase) check(t testing.TB, m genMode, n int, w, x []byte) {
	t.Helper()
	want := c.k.twin(n, w, x)
	got := c.dot(n, w, x)
	if m == modeExact {
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("%s %v n=%d: fast=%v twin=%v (exact mode: must be bit-identical)", c.k.name, m, n, got, want)
		}
		return
	}
	nb := n / c.k.block
	mag := c.magnitude(n, w, x)
	if !(mag < math.MaxFloat32/4) {
		return // float32 partial sums may overflow in either order: no bound
	}
	tol := float64(nb+16) * (1.0 / (1 << 23)) * mag
	if d := math.Abs(float64(got) - float64(want)); !(d <= tol+1e-37) {
		t.Fatalf("%s %v n=%d: fast=%v twin=%v |diff|=%g > tol %g", c.k.name, m, n, got, want, d, tol)
	}
}

func TestQuantDots(t *testing.T) {
	for _, c := range qcases {
		t.Run(c.k.name, func(t *testing.T) {
			eachLevel(t, func(t *testing.T) {
				r := rand.New(rand.NewPCG(11, uint64(c.k.wBytes)))
				for m := genMode(0); m < nModes; m++ {
					for nb := 0; nb <= c.maxNB; nb++ {
						n := nb * c.k.block
						w, x := c.genW(r, nb, m), c.genX(r, nb, m)
						w, x = bytesAt(w, (nb*7+int(m))%64), bytesAt(x, (nb*13+3*int(m))%64)
						c.check(t, m, n, w, x)
					}
				}
			})
		})
	}
}

func TestQuantDotsOffsets(t *testing.T) {
	for _, c := range qcases {
		t.Run(c.k.name, func(t *testing.T) {
			eachLevel(t, func(t *testing.T) {
				r := rand.New(rand.NewPCG(12, uint64(c.k.wBytes)))
				nb := 2048 / c.k.block
				n := nb * c.k.block
				w, x := c.genW(r, nb, modeExact), c.genX(r, nb, modeExact)
				for off := 0; off < 64; off++ {
					c.check(t, modeExact, n, bytesAt(w, off), bytesAt(x, (off*5)%64))
				}
			})
		})
	}
}

// TestQuantDotRowsMat checks the multi-row and tile forms against the
// single-row kernel (bit-identical: same kernel per element) and that they
// write nothing outside their outputs.
func TestQuantDotRowsMat(t *testing.T) {
	defer func(v int) { tileBytes = v }(tileBytes)
	// One weight row per cache block (exercises the blocking), and all 7
	// rows in one block (the assembly's loop over rows).
	for _, tb := range []int{1, 1 << 20} {
		tileBytes = tb
		testQuantDotRowsMat(t)
	}
}

func testQuantDotRowsMat(t *testing.T) {
	for _, c := range qcases {
		t.Run(fmt.Sprintf("%s/tile%d", c.k.name, tileBytes), func(t *testing.T) {
			for _, l := range append([]Level{LevelGeneric}, fastLevels()...) {
				restore := setLevel(l)
				r := rand.New(rand.NewPCG(13, uint64(c.k.wBytes)))
				nb := 512 / c.k.block
				if c.k.block == 32 {
					nb = 15 // odd: the 32-block kernels' one-block tail
				}
				n := nb * c.k.block
				for _, cols := range []int{14, 15, 13} {
					// 8-column and 4-column groups, then 2 columns (the 2-column
					// kernel where the format has one, else the 4-column kernel
					// on a padded copy), 3 (padded), or 1 single column
					const rows, ldd = 7, 9
					var w, x []byte
					for i := 0; i < rows; i++ {
						w = append(w, c.genW(r, nb, modeRandom)...)
					}
					for i := 0; i < cols; i++ {
						x = append(x, c.genX(r, nb, modeRandom)...)
					}
					w, x = bytesAt(w, 5), bytesAt(x, 9)
					rb, xb := len(w)/rows, len(x)/cols
					dst, buf := guardedF32(rows, 3)
					c.rows(n, w, x[:xb], dst)
					checkGuardF32(t, buf, guardLen+3, rows)
					for i := range dst {
						if want := c.dot(n, w[i*rb:(i+1)*rb], x[:xb]); math.Float32bits(dst[i]) != math.Float32bits(want) {
							t.Fatalf("%v rows[%d]=%v, dot=%v", l, i, dst[i], want)
						}
					}
					tile, buf := guardedF32((cols-1)*ldd+rows, 1)
					for i := range tile {
						tile[i] = -1 // the gaps between columns must stay untouched
					}
					c.mat(n, w, rows, x, cols, tile, ldd)
					checkGuardF32(t, buf, guardLen+1, len(tile))
					for cc := 0; cc < cols; cc++ {
						for i := 0; i < ldd && cc*ldd+i < len(tile); i++ {
							v := tile[cc*ldd+i]
							if i >= rows {
								if v != -1 {
									t.Fatalf("%v tile gap (%d,%d) written: %v", l, cc, i, v)
								}
								continue
							}
							if want := c.dot(n, w[i*rb:(i+1)*rb], x[cc*xb:(cc+1)*xb]); math.Float32bits(v) != math.Float32bits(want) {
								t.Fatalf("%v %d columns: tile(%d,%d)=%v, dot=%v", l, cols, i, cc, v, want)
							}
						}
					}
				}
				restore()
			}
		})
	}
}

func TestQuantDotBadShapesPanic(t *testing.T) {
	for _, c := range qcases {
		for _, bad := range []struct {
			n    int
			w, x int
		}{
			{c.k.block + 1, c.k.wBytes * 2, c.k.xBytes * 2},
			{c.k.block * 2, c.k.wBytes*2 - 1, c.k.xBytes * 2},
			{c.k.block * 2, c.k.wBytes * 2, c.k.xBytes*2 - 1},
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s(n=%d, len(w)=%d, len(x)=%d): no panic", c.k.name, bad.n, bad.w, bad.x)
					}
				}()
				c.dot(bad.n, make([]byte, bad.w), make([]byte, bad.x))
			}()
		}
	}
}

// fuzzQuant builds a (w, x) pair of nb blocks from fuzz data: the bytes are
// used as is except fp16/f32 scales, which are made finite, and the Q8_K
// bsums, which are recomputed (the kernels trust them, as ggml does).
func fuzzQuant(f *testing.F, c qcase) {
	f.Add([]byte{1, 2, 3}, uint8(1))
	f.Add([]byte{0xff, 0x80, 0x7f, 0x00}, uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, nbRaw uint8) {
		nb := int(nbRaw) % 9
		if len(data) == 0 {
			data = []byte{0}
		}
		w := make([]byte, nb*c.k.wBytes)
		x := make([]byte, nb*c.k.xBytes)
		for i := range w {
			w[i] = data[i%len(data)] ^ byte(i*131)
		}
		for i := range x {
			x[i] = data[(i*7)%len(data)] ^ byte(i*37)
		}
		fixF16 := func(b []byte) {
			h := binary.LittleEndian.Uint16(b)
			if h&0x7c00 == 0x7c00 {
				putF16(b, h&^0x4000) // Inf/NaN → finite
			}
		}
		for i := 0; i < nb; i++ {
			wb, xb := w[i*c.k.wBytes:(i+1)*c.k.wBytes], x[i*c.k.xBytes:(i+1)*c.k.xBytes]
			switch c.k {
			case kQ4K, kQ5K:
				fixF16(wb)
				fixF16(wb[2:])
			case kQ6K:
				fixF16(wb[208:])
			case kMXFP4: // every E8M0 exponent is finite
			default:
				fixF16(wb)
			}
			if c.k.xBytes == 292 {
				u := binary.LittleEndian.Uint32(xb)
				if u&0x7f800000 == 0x7f800000 {
					binary.LittleEndian.PutUint32(xb, u&^0x40000000)
				}
				for j := 0; j < 16; j++ {
					var s int
					for l := 0; l < 16; l++ {
						s += int(int8(xb[4+16*j+l]))
					}
					binary.LittleEndian.PutUint16(xb[260+2*j:], uint16(int16(s)))
				}
			} else {
				fixF16(xb)
			}
		}
		if want := c.k.twin(nb*c.k.block, w, x); math.IsInf(float64(want), 0) || math.IsNaN(float64(want)) {
			return
		}
		for _, l := range fastLevels() {
			restore := setLevel(l)
			c.check(t, modeRandom, nb*c.k.block, w, x)
			restore()
		}
	})
}

func FuzzDotQ4KQ8K(f *testing.F)    { fuzzQuant(f, qcases[0]) }
func FuzzDotQ5KQ8K(f *testing.F)    { fuzzQuant(f, qcases[1]) }
func FuzzDotQ6KQ8K(f *testing.F)    { fuzzQuant(f, qcases[2]) }
func FuzzDotQ5_0Q8_0(f *testing.F)  { fuzzQuant(f, qcases[3]) }
func FuzzDotMXFP4Q8_0(f *testing.F) { fuzzQuant(f, qcases[4]) }
func FuzzDotQ8_0Q8_0(f *testing.F)  { fuzzQuant(f, qcases[5]) }

var sink float32

func BenchmarkQuantDots(b *testing.B) {
	for _, c := range qcases {
		for _, n := range []int{2048, 1536, 5120, 10240} {
			if n%c.k.block != 0 {
				continue
			}
			nb := n / c.k.block
			r := rand.New(rand.NewPCG(1, 1))
			w, x := c.genW(r, nb, modeReal), c.genX(r, nb, modeReal)
			for _, l := range append([]Level{LevelGeneric}, fastLevels()...) {
				b.Run(fmt.Sprintf("%s/n=%d/%v", c.k.name, n, l), func(b *testing.B) {
					defer setLevel(l)()
					b.SetBytes(int64(len(w)))
					for b.Loop() {
						sink += c.dot(n, w, x)
					}
				})
			}
		}
	}
}

func TestForType(t *testing.T) {
	for _, tt := range []gguf.TensorType{gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K, gguf.TypeQ5_0, gguf.TypeQ8_0, gguf.TypeMXFP4} {
		k, ok := ForType(tt)
		if !ok || k.Dot == nil || k.Rows == nil || k.Mat == nil {
			t.Fatalf("ForType(%v) = %v, %v", tt, k, ok)
		}
		// The kernel must be the one for tt: compare with quant.VecDot on a
		// real row (tolerance as in check).
		vt := quant.VecDotType(tt)
		r := rand.New(rand.NewPCG(41, uint64(tt)))
		n := 512
		src := randFloats(r, n)
		w := make([]byte, n/tt.BlockSize()*tt.TypeSize())
		if err := quant.Quantize(tt, src, w); err != nil {
			t.Fatal(err)
		}
		x := make([]byte, n/vt.BlockSize()*vt.TypeSize())
		if !QuantizeActivations(vt, randFloats(r, n), x) {
			t.Fatalf("QuantizeActivations(%v) refused", vt)
		}
		want, err := quant.VecDot(tt, n, w, x)
		if err != nil {
			t.Fatal(err)
		}
		if got := k.Dot(n, w, x); math.Abs(float64(got-want)) > 1e-4*math.Abs(float64(want))+1e-3 {
			t.Errorf("ForType(%v).Dot = %v, quant.VecDot = %v", tt, got, want)
		}
	}
	if _, ok := ForType(gguf.TypeQ4_0); ok {
		t.Error("ForType(Q4_0) claims a kernel")
	}
	if QuantizeActivations(gguf.TypeQ8_1, make([]float32, 32), make([]byte, 36)) {
		t.Error("QuantizeActivations(Q8_1) claims support")
	}
}

// FuzzMatQuant drives the tile kernels (4- and 8-column assembly) of every
// quantized type: the tile must equal the single-row kernel bit for bit,
// and the single-row kernel must match the twin (check).
func FuzzMatQuant(f *testing.F) {
	f.Add([]byte{7, 1, 2, 3}, uint8(0), uint8(9))
	f.Add([]byte{0xff, 0x80, 0}, uint8(4), uint8(12))
	f.Fuzz(func(t *testing.T, data []byte, typ, colsRaw uint8) {
		c := qcases[int(typ)%len(qcases)]
		cols := int(colsRaw)%13 + 1
		const rows = 3
		r := rand.New(rand.NewPCG(uint64(len(data)), uint64(typ)<<8|uint64(colsRaw)))
		for _, b := range data {
			r = rand.New(rand.NewPCG(r.Uint64()^uint64(b), uint64(b)))
		}
		nb := 1 + r.IntN(4)
		n := nb * c.k.block
		m := genMode(r.IntN(int(nModes)))
		var w, x []byte
		for i := 0; i < rows; i++ {
			w = append(w, c.genW(r, nb, m)...)
		}
		for i := 0; i < cols; i++ {
			x = append(x, c.genX(r, nb, m)...)
		}
		rb, xb := len(w)/rows, len(x)/cols
		for _, l := range fastLevels() {
			restore := setLevel(l)
			dst := make([]float32, cols*rows)
			c.mat(n, w, rows, x, cols, dst, rows)
			for cc := 0; cc < cols; cc++ {
				for i := 0; i < rows; i++ {
					wi, xc := w[i*rb:(i+1)*rb], x[cc*xb:(cc+1)*xb]
					if want := c.dot(n, wi, xc); math.Float32bits(dst[cc*rows+i]) != math.Float32bits(want) {
						t.Fatalf("%s %v: tile(%d,%d)=%v, dot=%v", c.k.name, l, i, cc, dst[cc*rows+i], want)
					}
					c.check(t, m, n, wi, xc)
				}
			}
			restore()
		}
	})
}
