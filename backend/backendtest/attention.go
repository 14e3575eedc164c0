package backendtest

import (
	"bytes"
	"fmt"
	"math"

	"github.com/glmrun/glmrun/backend"
	"github.com/glmrun/glmrun/backend/quant"
)

// cacheBytes returns the raw bytes of cache values v in dt (F16: rounded to
// nearest even, as every backend must store them) and the values as read
// back.
func cacheBytes(dt backend.DType, v []float32) ([]byte, []float64) {
	raw := make([]byte, 0, 4*len(v))
	back := make([]float64, len(v))
	if dt == backend.F32 {
		raw = f32Bytes(v)
		for i, x := range v {
			back[i] = float64(x)
		}
		return raw, back
	}
	raw = raw[:2*len(v)]
	quant.QuantizeRowF16(v, raw)
	dec := make([]float32, len(v))
	quant.DequantizeRowF16(raw, dec)
	for i, x := range dec {
		back[i] = float64(x)
	}
	return raw, back
}

// readRaw syncs and downloads b's bytes.
func (h *harness) readRaw(b backend.Buffer) []byte {
	h.t.Helper()
	h.must(h.b.Sync(), "Sync")
	n, err := backend.ByteSize(b.DType(), b.Shape())
	h.must(err, "ByteSize")
	raw := make([]byte, n)
	h.must(h.b.Download(raw, b), "Download")
	return raw
}

// checkCacheStore: rows land at their positions (F16 rounded to nearest
// even, bit-exact; F32 exact), columns past the source width and rows not
// stored keep their bytes, and positions outside the cache are skipped.
// The positions of one call are distinct (a repeated one is undefined).
func checkCacheStore(h *harness) {
	for _, dt := range h.caps.CacheTypes {
		for _, c := range []struct{ width, w, capacity int }{{576, 576, 10}, {576, 512, 6}, {64, 33, 4}} {
			pos := []int32{2, int32(c.capacity - 1), int32(c.capacity), -1, 0}
			n := len(pos)
			initial, _ := cacheBytes(dt, h.gauss(c.width*c.capacity, 1))
			src := h.gauss(c.w*n, 1)
			want := append([]byte(nil), initial...)
			es := dt.TypeSize()
			for t, p := range pos {
				if p < 0 || int(p) >= c.capacity {
					continue
				}
				row, _ := cacheBytes(dt, src[t*c.w:(t+1)*c.w])
				copy(want[int(p)*c.width*es:], row)
			}
			cb := h.upload(dt, initial, c.width, c.capacity)
			sb, pb := h.f32(src, c.w, n), h.i32(pos, n)
			h.must(h.o.CacheStore(cb, sb, pb), "CacheStore")
			got := h.readRaw(cb)
			if !bytes.Equal(got, want) {
				for i := range got {
					if got[i] != want[i] {
						h.t.Errorf("CacheStore %s width %d w %d: first wrong byte %d (row %d, column %d)", dt, c.width, c.w, i, i/es/c.width, i/es%c.width)
						break
					}
				}
			}
		}
	}
}

// checkMLAAttention compares absorbed-MLA attention with a float64
// reference over the same (f16-rounded) cache values: GLM-4.7-Flash's
// sizes (D = 576, Dv = 512, 20 heads, scale 1/16), one and several tokens
// with causal key counts, a key count past the capacity (clamped), and a
// small odd configuration.
//
// Tolerance: a backend computes each score s_j = scale·q·K_j in float32
// (tensor-core kernels split q into f16 hi+lo parts, exact to 2^-22
// relative plus 2^-25 absolute for lo parts in the f16 subnormal range), so
// |δs_j| <= scale·((D+8)·u·Σ|q_d·K_jd| + 2^-23·Σ|K_jd|), plus 4u·(|s_j|+
// max s) + 4u for the subtraction of the maximum and exp. Softmax is
// shift-invariant, so score errors within ±δ change the output by
// Σ_j p_j(δ_j - δ̄)(V_j - o), at most 2δ·Σ_j p_j|V_j - o|. The weighted sum
// of L rows in float32 (and its split-and-combine) adds (L+8)·u·Σ_j p_j|V_j|,
// and probabilities rounded to f16 hi+lo (2^-25 absolute each) add
// 2^-24·Σ_j|V_j|.
func checkMLAAttention(h *harness) {
	for _, dt := range h.caps.CacheTypes {
		for _, c := range []struct {
			d, dv, heads, capacity int
			nkv                    []int32
		}{
			{576, 512, 20, 300, []int32{300}},
			{576, 512, 20, 70, []int32{1, 37, 70, 75}},
			{576, 512, 20, 5, []int32{3}},
			{40, 32, 3, 50, []int32{50, 17}},
		} {
			if h.caps.MaxHeads > 0 && c.heads > h.caps.MaxHeads {
				continue
			}
			n := len(c.nkv)
			const scale = 0.0625
			q := h.gauss(c.d*c.heads*n, 1)
			raw, kv := cacheBytes(dt, h.gauss(c.d*c.capacity, 1))
			size := c.dv * c.heads * n
			ref, tol := make([]float64, size), make([]float64, size)
			for t := 0; t < n; t++ {
				L := min(int(c.nkv[t]), c.capacity)
				for hh := 0; hh < c.heads; hh++ {
					qh := q[(t*c.heads+hh)*c.d : (t*c.heads+hh+1)*c.d]
					s, ds := make([]float64, L), make([]float64, L)
					mx := math.Inf(-1)
					for j := 0; j < L; j++ {
						var dot, mag, kmag float64
						for i, qv := range qh {
							k := kv[j*c.d+i]
							dot += float64(qv) * k
							mag += math.Abs(float64(qv) * k)
							kmag += math.Abs(k)
						}
						s[j] = scale * dot
						ds[j] = scale * (float64(c.d+8)*u*mag + kmag/(1<<23))
						mx = math.Max(mx, s[j])
					}
					var sum, delta float64
					p := make([]float64, L)
					for j := 0; j < L; j++ {
						p[j] = math.Exp(s[j] - mx)
						sum += p[j]
						delta = math.Max(delta, ds[j]+4*u*(math.Abs(s[j])+math.Abs(mx))+4*u)
					}
					at := (t*c.heads + hh) * c.dv
					for i := 0; i < c.dv; i++ {
						var o float64
						for j := 0; j < L; j++ {
							p := p[j] / sum
							o += p * kv[j*c.d+i]
						}
						var dev, mag, vsum float64
						for j := 0; j < L; j++ {
							v := kv[j*c.d+i]
							dev += p[j] / sum * math.Abs(v-o)
							mag += p[j] / sum * math.Abs(v)
							vsum += math.Abs(v)
						}
						ref[at+i] = o
						tol[at+i] = 2*delta*dev + float64(L+8)*u*mag + vsum/(1<<24)
					}
				}
			}
			cb := h.upload(dt, raw, c.d, c.capacity)
			qb, nb, ob := h.f32(q, c.d, c.heads, n), h.i32(c.nkv, n), h.out(backend.F32, c.dv, c.heads, n)
			what := fmt.Sprintf("MLAAttention %s D=%d Dv=%d H=%d capacity=%d nkv=%v", dt, c.d, c.dv, c.heads, c.capacity, c.nkv)
			h.must(h.o.MLAAttention(ob, qb, cb, nb, scale), what)
			h.near(what, h.read(ob), ref, tol)
		}
	}
}
