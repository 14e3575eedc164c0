package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/glmrun/glmrun/backend/quant"
)

// genMMFP4 returns one MMFP4 row of n elements: codes and fp16 scales.
func genMMFP4(r *rand.Rand, n int, m genMode) (q, s []byte) {
	q, s = make([]byte, n/2), make([]byte, n/64)
	if m == modeReal {
		quant.QuantizeRowMMFP4(randFloats(r, n), q, s)
		return q, s
	}
	randBytes(r, q)
	for g := 0; g < n/128; g++ {
		putF16(s[2*g:], randF16Mode(r, m))
		if m == modeExtreme {
			for j := 0; j < 64; j++ {
				q[64*g+j] = []byte{0x77, 0xff, 0x7f, 0xf7}[r.IntN(4)] // ±6 (kv2 ±12)
			}
		}
	}
	return q, s
}

func checkMMFP4Dot(t testing.TB, m genMode, n int, q, s, x []byte) {
	t.Helper()
	want := quant.DotMMFP4Q8_0(n, q, s, x)
	got := DotMMFP4Q8_0(n, q, s, x)
	if m == modeExact {
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("MMFP4 %v n=%d: fast=%v twin=%v (exact mode: must be bit-identical)", m, n, got, want)
		}
		return
	}
	ws, xs := make([]float32, n), make([]float32, n)
	quant.DequantizeRowMMFP4(q, s, ws)
	quant.DequantizeRowQ8_0(x, xs)
	var mag float64
	for i := range ws {
		mag += math.Abs(float64(ws[i]) * float64(xs[i]))
	}
	if !(mag < math.MaxFloat32/4) {
		return
	}
	tol := float64(n/32+16) * (1.0 / (1 << 23)) * mag
	if d := math.Abs(float64(got) - float64(want)); !(d <= tol+1e-37) {
		t.Fatalf("MMFP4 %v n=%d: fast=%v twin=%v |diff|=%g > tol %g", m, n, got, want, d, tol)
	}
}

func TestDotMMFP4Q8_0(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(31, 32))
		for m := genMode(0); m < nModes; m++ {
			for ng := 0; ng <= 32; ng++ {
				n := 128 * ng
				q, s := genMMFP4(r, n, m)
				x := genQ8_0(r, n/32, m)
				off := (ng*7 + int(m)) % 64
				checkMMFP4Dot(t, m, n, bytesAt(q, off), bytesAt(s, (off*3)%64), bytesAt(x, (off*5)%64))
			}
		}
	})
}

func TestMMFP4RowsMat(t *testing.T) {
	for _, l := range append([]Level{LevelGeneric}, fastLevels()...) {
		restore := setLevel(l)
		r := rand.New(rand.NewPCG(33, 34))
		const n, rows, cols, ldd = 512, 5, 3, 7
		var q, s, x []byte
		for i := 0; i < rows; i++ {
			qi, si := genMMFP4(r, n, modeRandom)
			q, s = append(q, qi...), append(s, si...)
		}
		for i := 0; i < cols; i++ {
			x = append(x, genQ8_0(r, n/32, modeRandom)...)
		}
		xb := n / 32 * 34
		dst, buf := guardedF32(rows, 2)
		DotMMFP4Q8_0Rows(n, q, s, x[:xb], dst)
		checkGuardF32(t, buf, guardLen+2, rows)
		tile, tbuf := guardedF32((cols-1)*ldd+rows, 4)
		MatMMFP4Q8_0(n, q, s, rows, x, cols, tile, ldd)
		checkGuardF32(t, tbuf, guardLen+4, len(tile))
		for i := 0; i < rows; i++ {
			qi, si := q[i*n/2:(i+1)*n/2], s[i*n/64:(i+1)*n/64]
			if want := DotMMFP4Q8_0(n, qi, si, x[:xb]); math.Float32bits(dst[i]) != math.Float32bits(want) {
				t.Fatalf("%v rows[%d]=%v, dot=%v", l, i, dst[i], want)
			}
			for c := 0; c < cols; c++ {
				if want := DotMMFP4Q8_0(n, qi, si, x[c*xb:(c+1)*xb]); math.Float32bits(tile[c*ldd+i]) != math.Float32bits(want) {
					t.Fatalf("%v tile(%d,%d)=%v, dot=%v", l, i, c, tile[c*ldd+i], want)
				}
			}
		}
		restore()
	}
}

func FuzzDotMMFP4Q8_0(f *testing.F) {
	f.Add([]byte{1, 2, 3}, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, ngRaw uint8) {
		ng := int(ngRaw) % 6
		n := 128 * ng
		if len(data) == 0 {
			data = []byte{0}
		}
		q, s, x := make([]byte, n/2), make([]byte, n/64), make([]byte, n/32*34)
		for i := range q {
			q[i] = data[i%len(data)] ^ byte(i*29)
		}
		for i := range x {
			x[i] = data[(i*3)%len(data)] ^ byte(i*41)
		}
		fix := func(b []byte) {
			if h := uint16(b[0]) | uint16(b[1])<<8; h&0x7c00 == 0x7c00 {
				b[1] &^= 0x40 // Inf/NaN → finite
			}
		}
		for g := 0; g < ng; g++ {
			s[2*g], s[2*g+1] = data[(7*g)%len(data)], data[(7*g+1)%len(data)]
			fix(s[2*g:])
		}
		for b := 0; b < n/32; b++ {
			fix(x[34*b:])
		}
		if want := quant.DotMMFP4Q8_0(n, q, s, x); math.IsInf(float64(want), 0) || math.IsNaN(float64(want)) {
			return
		}
		for _, l := range fastLevels() {
			restore := setLevel(l)
			checkMMFP4Dot(t, modeRandom, n, q, s, x)
			restore()
		}
	})
}
