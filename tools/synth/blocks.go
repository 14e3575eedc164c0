package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"

	"github.com/glmrun/glmrun/gguf"
)

// rng is wyrand: a 64-bit generator fast enough to fill gigabytes, seeded
// per chunk so that parallel generation stays deterministic.
type rng struct{ s uint64 }

func newRNG(keys ...uint64) *rng {
	s := uint64(0x9e3779b97f4a7c15)
	for _, k := range keys {
		s = splitmix(s ^ k)
	}
	return &rng{s: s}
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (r *rng) next() uint64 {
	r.s += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(r.s, r.s^0xe7037ed1a0b428db)
	return hi ^ lo
}

// float returns a uniform value in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) * 0x1p-53 }

// uniform returns a uniform value in [lo, hi).
func (r *rng) uniform(lo, hi float64) float64 { return lo + (hi-lo)*r.float() }

// intn returns a uniform integer in [lo, hi].
func (r *rng) intn(lo, hi int) int { return lo + int(r.next()%uint64(hi-lo+1)) }

// fill writes random bytes into b.
func (r *rng) fill(b []byte) {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.next())
	}
	if i < len(b) {
		x := r.next()
		for ; i < len(b); i++ {
			b[i] = byte(x)
			x >>= 8
		}
	}
}

// fp16 converts a finite value to IEEE binary16 bits with
// round-to-nearest-even, subnormals included (real Q6_K files have
// subnormal d for weights of std ~0.02). Values that would round to zero
// become the smallest subnormal, so a scale is never zero; values beyond the
// range saturate to the largest finite value.
func fp16(f float64) uint16 {
	sign := uint16(0)
	if f < 0 {
		sign, f = 0x8000, -f
	}
	if f >= 65504 {
		return sign | 0x7bff
	}
	if f < 0x1p-14 { // subnormal: multiples of 2^-24
		q := uint16(math.RoundToEven(f * 0x1p24))
		return sign | max(q, 1)
	}
	b := math.Float32bits(float32(f))
	e := int(b>>23&0xff) - 127 + 15
	m := b & 0x7fffff
	q := uint32(e)<<10 | m>>13
	rem := m & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && q&1 == 1) {
		q++
	}
	if q >= 0x7c00 {
		q = 0x7bff
	}
	return sign | uint16(q)
}

// fp16Value returns the value of finite fp16 bits h.
func fp16Value(h uint16) float64 {
	e := int(h>>10) & 0x1f
	m := float64(h & 0x3ff)
	var v float64
	if e == 0 {
		v = m * 0x1p-24
	} else {
		v = math.Ldexp(1+m/1024, e-15)
	}
	if h&0x8000 != 0 {
		v = -v
	}
	return v
}

// bf16 converts f to bfloat16 bits with round-to-nearest-even (f finite).
func bf16(f float32) uint16 {
	u := math.Float32bits(f)
	return uint16((u + 0x7fff + (u >> 16 & 1)) >> 16)
}

// Standard deviations of the code distributions when codes are uniform:
// Q4_K codes 0..15, Q6_K codes 0..63 (centred at 32), Q5_0/Q8_0 codes, and
// the E2M1 values ±{0,.5,1,1.5,2,3,4,6}.
const (
	stdU16   = 4.6098 // sqrt((16²-1)/12)
	stdU64   = 18.473 // sqrt((64²-1)/12)
	stdU32   = 9.2331 // sqrt((32²-1)/12)
	stdU256  = 73.901 // sqrt((256²-1)/12)
	stdE2M1  = 2.9262 // sqrt(68.5/8)
	q4kScMid = 48     // mid sub-block scale of the Q4_K generator (codes 32..63)
	q6kScMid = 88     // mid |scale| of the Q6_K generator (48..127)
)

// jitter is the per-block spread of scales around the target magnitude.
func jitter(r *rng) float64 { return r.uniform(0.75, 1.25) }

// genQ4K fills dst (a whole number of 144-byte blocks) with random Q4_K
// blocks whose dequantized weights have standard deviation about sigma and a
// mean near zero: d·sc·q − dmin·m with dmin·m ≈ 7.5·d·sc.
func genQ4K(r *rng, dst []byte, sigma float64) {
	for b := 0; b+144 <= len(dst); b += 144 {
		blk := dst[b : b+144]
		dh := fp16(sigma / (stdU16 * q4kScMid) * jitter(r))
		dv := fp16Value(dh)
		mh := fp16(dv * 8)
		mv := fp16Value(mh)
		binary.LittleEndian.PutUint16(blk[0:], dh)
		binary.LittleEndian.PutUint16(blk[2:], mh)
		var sc, mn [8]uint8
		for j := 0; j < 8; j++ {
			sc[j] = uint8(r.intn(32, 63))
			m := math.Round(float64(sc[j]) * 7.5 * dv / mv)
			mn[j] = uint8(min(63, max(0, m)))
		}
		packScaleMinK4(blk[4:16], sc, mn)
		r.fill(blk[16:144])
	}
}

// packScaleMinK4 packs eight 6-bit scales and mins into the 12-byte Q4_K /
// Q5_K scales field (quant-formats.md §2.6).
func packScaleMinK4(s []byte, sc, mn [8]uint8) {
	for i := range s[:12] {
		s[i] = 0
	}
	for j := 0; j < 4; j++ {
		s[j] = sc[j]
		s[j+4] = mn[j]
	}
	for j := 4; j < 8; j++ {
		s[j+4] = sc[j]&15 | (mn[j]&15)<<4
		s[j-4] |= (sc[j] >> 4) << 6
		s[j] |= (mn[j] >> 4) << 6
	}
}

// genQ6K fills dst (210-byte blocks) with random Q6_K blocks of weight std
// about sigma: random 6-bit codes, int8 sub-block scales of magnitude 48..127
// and random sign, fp16 d last.
func genQ6K(r *rng, dst []byte, sigma float64) {
	for b := 0; b+210 <= len(dst); b += 210 {
		blk := dst[b : b+210]
		r.fill(blk[0:192]) // ql[128], qh[64]
		for i := 0; i < 16; i++ {
			s := int8(r.intn(48, 127))
			if r.next()&1 == 1 {
				s = -s
			}
			blk[192+i] = byte(s)
		}
		binary.LittleEndian.PutUint16(blk[208:], fp16(sigma/(stdU64*q6kScMid)*jitter(r)))
	}
}

// genQ5_0 fills dst (22-byte blocks) with random Q5_0 blocks of std sigma.
func genQ5_0(r *rng, dst []byte, sigma float64) {
	for b := 0; b+22 <= len(dst); b += 22 {
		binary.LittleEndian.PutUint16(dst[b:], fp16(sigma/stdU32*jitter(r)))
		r.fill(dst[b+2 : b+22])
	}
}

// genQ8_0 fills dst (34-byte blocks) with random Q8_0 blocks of std sigma.
func genQ8_0(r *rng, dst []byte, sigma float64) {
	for b := 0; b+34 <= len(dst); b += 34 {
		binary.LittleEndian.PutUint16(dst[b:], fp16(sigma/stdU256*jitter(r)))
		r.fill(dst[b+2 : b+34])
	}
}

// genHalf fills dst with uniform values of std sigma as 16-bit floats
// (bf16 or f16).
func genHalf(r *rng, dst []byte, sigma float64, isBF16 bool) {
	a := sigma * math.Sqrt(3)
	for i := 0; i+2 <= len(dst); i += 2 {
		v := a * (2*r.float() - 1)
		var h uint16
		if isBF16 {
			h = bf16(float32(v))
		} else if v == 0 {
			h = 0
		} else {
			h = fp16(v)
		}
		binary.LittleEndian.PutUint16(dst[i:], h)
	}
}

// genMMFP4Slab fills one MMFP4 slab of n rows by k columns: random E2M1
// codes (quants[n][k/2]) followed by fp16 scales[n][k/128] chosen so the
// weights have std about sigma (quant-formats.md §4.2).
func genMMFP4Slab(r *rng, dst []byte, n, k int, sigma float64) {
	q := n * k / 2
	r.fill(dst[:q])
	for i := q; i+2 <= n*k/2+n*k/128*2; i += 2 {
		binary.LittleEndian.PutUint16(dst[i:], fp16(sigma/stdE2M1*jitter(r)))
	}
}

// genF32 fills dst with the f32 values of a norm, router or bias tensor.
func genF32(r *rng, dst []byte, kind tensorKind, sigma float64) {
	for i := 0; i+4 <= len(dst); i += 4 {
		var v float64
		switch kind {
		case kindNorm:
			v = r.uniform(0.9, 1.1)
		case kindBias:
			v = r.uniform(-0.01, 0.01)
		default:
			v = sigma * math.Sqrt(3) * (2*r.float() - 1)
		}
		binary.LittleEndian.PutUint32(dst[i:], math.Float32bits(float32(v)))
	}
}

// chunkUnit returns the granularity, in bytes, at which a tensor of type t
// and row length ne0 may be cut into independently generated chunks: one
// block for block types, one element for plain types, one whole slab for
// MMFP4 (whose slab keeps its scales after all its codes).
func chunkUnit(t TensorSpec) (uint64, error) {
	switch t.Type {
	case gguf.TypeMMFP4:
		if len(t.Dims) < 2 {
			return 0, fmt.Errorf("tensor %s: mmfp4 needs at least 2 dims", t.Name)
		}
		return t.Dims[0] * t.Dims[1] / 128 * 66, nil
	case gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16, gguf.TypeQ4_K, gguf.TypeQ6_K, gguf.TypeQ5_0, gguf.TypeQ8_0:
		return uint64(t.Type.TypeSize()), nil
	}
	return 0, fmt.Errorf("tensor %s: the generator cannot write type %s", t.Name, t.Type)
}

// genChunk fills dst, a chunk of tensor t made of whole units (chunkUnit),
// with random data drawn from r.
func genChunk(r *rng, t TensorSpec, dst []byte) {
	switch t.Type {
	case gguf.TypeF32:
		genF32(r, dst, t.Kind, t.Sigma)
	case gguf.TypeF16:
		genHalf(r, dst, t.Sigma, false)
	case gguf.TypeBF16:
		genHalf(r, dst, t.Sigma, true)
	case gguf.TypeQ4_K:
		genQ4K(r, dst, t.Sigma)
	case gguf.TypeQ6_K:
		genQ6K(r, dst, t.Sigma)
	case gguf.TypeQ5_0:
		genQ5_0(r, dst, t.Sigma)
	case gguf.TypeQ8_0:
		genQ8_0(r, dst, t.Sigma)
	case gguf.TypeMMFP4:
		n, k := int(t.Dims[1]), int(t.Dims[0])
		slab := n * k / 128 * 66
		for off := 0; off+slab <= len(dst); off += slab {
			genMMFP4Slab(r, dst[off:off+slab], n, k, t.Sigma)
		}
	}
}
