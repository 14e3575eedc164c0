package glm4moe

import (
	"math"

	"github.com/glmrun/glmrun/backend/cpu"
	"github.com/glmrun/glmrun/backend/cpu/kernels"
)

// minAttnChunk is the fewest cached positions one attention work item
// covers when a token's context is split across workers.
const minAttnChunk = 64

// attnHeadRowsBytes bounds the cached rows (bytes) of one work item that
// are scored head by head, one kernel call per head over all the rows,
// instead of row by row: small enough to stay in L2 across the H passes.
// On the dev CPU, 150 rows of 80 floats against 4 heads: 4.6 µs per head
// pass against 8.6 µs row by row.
var attnHeadRowsBytes = 128 << 10 // a variable so a test can force the row-by-row form

// attnHeadBlock is the number of heads whose queries (or outputs) one pass
// over a token's cached rows handles: 8 heads' 576-float queries (18 KiB)
// stay in L1 while the rows stream past.
const attnHeadBlock = 8

// attendCached computes, for every token i of the pass and every head h,
// ol[i][h] = Σ_j softmax_j(scale·qf[i][h]·K_j)·K_j[0:r_kv] over the cached
// rows j <= pos_i of layer l (spec §4.2 steps 7-8; s.qf holds the absorbed
// queries [n][H][r_kv+d_rope], s.ol receives [n][H][r_kv]).
//
// Work items are (token, chunk of positions). An item scores each cached row
// against all H queries while the row is in cache (the heads share one
// latent row), so the cache is read once per token, and a token's context is
// split into chunks (flash-decoding) when there are fewer tokens than
// workers. Each chunk keeps a running maximum, its exp-sum and its
// unnormalised latent output per head; the chunks are merged at the end.
func (m *Model) attendCached(l int, rows []rowRef, s *scratch) {
	c := m.cfg
	n, H, kvl := len(rows), c.NHead, c.KVLoraRank
	w := c.CacheRow()
	scale := float32(1 / math.Sqrt(float64(c.KeyLengthMLA)))
	maxLen := 0
	for _, r := range rows {
		maxLen = max(maxLen, r.pos+1)
	}
	threads := m.pool.Threads()
	chunks := 1
	for n*chunks < 2*threads && maxLen/(chunks+1) >= minAttnChunk {
		chunks++
	}
	chunkLen := (maxLen + chunks - 1) / chunks
	// Per (token, chunk, head): max score, exp-sum, unnormalised output.
	pm := s.floats(n * chunks * H)
	ps := s.float64s(n * chunks * H)
	var po []float32
	if chunks > 1 {
		po = s.floats(n * chunks * H * kvl)
	}
	for len(s.scores) < threads {
		s.scores = append(s.scores, nil)
	}
	scores := s.scores
	m.pool.For(n*chunks, 1, func(worker, lo, hi int) {
		if cap(scores[worker]) < H*chunkLen {
			scores[worker] = make([]float32, H*chunkLen)
		}
		for it := lo; it < hi; it++ {
			i, ch := it/chunks, it%chunks
			r := rows[i]
			j0, j1 := ch*chunkLen, min((ch+1)*chunkLen, r.pos+1)
			base := it * H
			if j0 >= j1 {
				for h := 0; h < H; h++ {
					pm[base+h] = float32(math.Inf(-1))
				}
				continue
			}
			nj := j1 - j0
			sc := scores[worker][:H*nj]
			// sc[h][j] = q_h·K_j: each cached row against all H queries
			// (stored back to back in qf) in one call.
			// Heads go in groups of attnHeadBlock so a group's queries stay
			// in L1 while the rows stream past.
			if nj*w*4 <= attnHeadRowsBytes {
				// A short span: the rows are contiguous and stay in cache,
				// so one call per head scores all of them (fewer, longer
				// kernel calls than one per row).
				rowsJ := r.c.layers[l][j0*w : j1*w]
				for h := 0; h < H; h++ {
					kernels.DotF32Cols(s.qf[(i*H+h)*w:(i*H+h+1)*w], rowsJ, nj, sc[h*nj:], 1)
				}
			} else {
				for h0 := 0; h0 < H; h0 += attnHeadBlock {
					hc := min(attnHeadBlock, H-h0)
					qg := s.qf[(i*H+h0)*w : (i*H+h0+hc)*w]
					for j := j0; j < j1; j++ {
						kernels.DotF32Cols(r.c.row(l, j), qg, hc, sc[h0*nj+j-j0:], nj)
					}
				}
			}
			for h := 0; h < H; h++ {
				p := sc[h*nj : (h+1)*nj]
				mx := p[0]
				for _, v := range p[1:] {
					mx = max(mx, v)
				}
				kernels.ExpShiftF32(p, scale, mx)
				var sum float64
				for _, e := range p {
					sum += float64(e)
				}
				pm[base+h], ps[base+h] = scale*mx, sum
			}
			// Accumulate Σ e_j·K_j[0:r_kv] per head; with one chunk, directly
			// into ol (normalised below).
			// All heads' outputs are back to back ([H][r_kv]).
			var out []float32
			if chunks == 1 {
				out = s.ol[i*H*kvl : (i+1)*H*kvl]
			} else {
				out = po[base*kvl : (base+H)*kvl]
			}
			clear(out)
			for h0 := 0; h0 < H; h0 += attnHeadBlock {
				hc := min(attnHeadBlock, H-h0)
				og := out[h0*kvl : (h0+hc)*kvl]
				for j := j0; j < j1; j++ {
					kernels.AxpyF32Cols(r.c.row(l, j)[:kvl], sc[h0*nj+j-j0:], nj, og, hc)
				}
			}
		}
	})
	// Merge the chunks: o = Σ_c e^(m_c−M)·o_c / Σ_c e^(m_c−M)·s_c.
	for i := 0; i < n; i++ {
		for h := 0; h < H; h++ {
			o := s.ol[(i*H+h)*kvl : (i*H+h+1)*kvl]
			if chunks == 1 {
				inv := float32(1 / ps[i*H+h])
				for k := range o {
					o[k] *= inv
				}
				continue
			}
			mx := float32(math.Inf(-1))
			for ch := 0; ch < chunks; ch++ {
				mx = max(mx, pm[(i*chunks+ch)*H+h])
			}
			clear(o)
			var sum float64
			for ch := 0; ch < chunks; ch++ {
				k := (i*chunks+ch)*H + h
				if math.IsInf(float64(pm[k]), -1) {
					continue
				}
				f := float32(math.Exp(float64(pm[k] - mx)))
				sum += float64(f) * ps[k]
				cpu.AXPY(o, f, po[k*kvl:(k+1)*kvl])
			}
			inv := float32(1 / sum)
			for k := range o {
				o[k] *= inv
			}
		}
	}
}
