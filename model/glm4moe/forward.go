package glm4moe

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/glmrun/glmrun/backend/cpu"
	"github.com/glmrun/glmrun/backend/quant"
)

// Forward appends tokens to c and returns logits: if all, one row of
// VocabSize logits per token ([len(tokens)][vocab], row-major, a new
// slice); otherwise only the last token's [vocab], in a buffer that c owns
// and the next Forward on c overwrites (copy it to keep it; decode then
// allocates no logits per token). Tokens are processed in
// micro-batches of Options.UBatch tokens. It returns an error, leaving c
// unchanged, if a token id is out of range or the cache would overflow.
func (m *Model) Forward(c *Cache, tokens []int32, all bool) ([]float32, error) {
	if c == nil || c.m != m {
		return nil, fmt.Errorf("glm4moe: cache does not belong to this model")
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("glm4moe: no tokens")
	}
	if err := m.checkTokens(c, tokens); err != nil {
		return nil, err
	}
	vocab := m.cfg.VocabSize
	var logits []float32
	if all {
		logits = make([]float32, 0, len(tokens)*vocab)
	}
	start := c.n
	ub := m.opt.UBatch
	for i := 0; i < len(tokens); i += ub {
		j := min(i+ub, len(tokens))
		rows := make([]rowRef, j-i)
		var want []int
		for k := range rows {
			rows[k] = rowRef{c: c, pos: c.n + k}
			if all || i+k == len(tokens)-1 {
				want = append(want, k)
			}
		}
		var dst []float32
		if !all {
			dst = c.logits
		}
		out, err := m.run(rows, tokens[i:j], want, dst)
		if err != nil {
			c.n = start
			return nil, err
		}
		c.n += j - i
		if all {
			logits = append(logits, out...)
		} else if j == len(tokens) {
			logits = out
			if m.gpu == nil {
				c.logits = out
			}
		}
	}
	return logits, nil
}

// ForwardBatch runs one step for several independent sequences in one
// batched pass: tokens[i] (at least one token) are appended to caches[i],
// and the last-token logits ([vocab]) of each sequence are returned (rows
// of one new slice). Weight rows are read once per pass for all sequences.
// Passes hold at most Options.UBatch tokens in total. The caches must be
// distinct.
func (m *Model) ForwardBatch(caches []*Cache, tokens [][]int32) ([][]float32, error) {
	return m.ForwardBatchInto(nil, caches, tokens)
}

// ForwardBatchInto is ForwardBatch writing the logits into buf
// ([len(caches)][vocab], reused when its capacity suffices, else replaced
// by a new slice): the returned rows alias it, so a caller stepping many
// times reuses one buffer instead of allocating len(caches)·vocab floats
// per step.
func (m *Model) ForwardBatchInto(buf []float32, caches []*Cache, tokens [][]int32) ([][]float32, error) {
	if len(caches) != len(tokens) {
		return nil, fmt.Errorf("glm4moe: %d caches for %d token lists", len(caches), len(tokens))
	}
	seen := make(map[*Cache]bool, len(caches))
	var rows []rowRef
	var toks []int32
	last := make([]int, len(caches)) // index in rows of each sequence's last token
	for i, c := range caches {
		if c == nil || c.m != m {
			return nil, fmt.Errorf("glm4moe: cache %d does not belong to this model", i)
		}
		if seen[c] {
			return nil, fmt.Errorf("glm4moe: cache %d appears twice in one batch", i)
		}
		seen[c] = true
		if len(tokens[i]) == 0 {
			return nil, fmt.Errorf("glm4moe: sequence %d has no tokens", i)
		}
		if err := m.checkTokens(c, tokens[i]); err != nil {
			return nil, fmt.Errorf("sequence %d: %w", i, err)
		}
		for k := range tokens[i] {
			rows = append(rows, rowRef{c: c, pos: c.n + k})
		}
		toks = append(toks, tokens[i]...)
		last[i] = len(rows) - 1
	}
	start := make([]int, len(caches))
	for i, c := range caches {
		start[i] = c.n
	}
	out := make([][]float32, len(caches))
	vocab := m.cfg.VocabSize
	if buf != nil && cap(buf) < len(caches)*vocab {
		buf = make([]float32, len(caches)*vocab)
	}
	ub := m.opt.UBatch
	seq := 0
	for i := 0; i < len(rows); i += ub {
		j := min(i+ub, len(rows))
		var want []int
		var wantSeq []int
		for s := seq; s < len(last) && last[s] < j; s++ {
			want = append(want, last[s]-i)
			wantSeq = append(wantSeq, s)
		}
		var dst []float32
		if buf != nil {
			dst = buf[seq*vocab : len(caches)*vocab]
		}
		logits, err := m.run(rows[i:j], toks[i:j], want, dst)
		if err != nil {
			for s, c := range caches {
				c.n = start[s]
			}
			return nil, err
		}
		for k, s := range wantSeq {
			out[s] = logits[k*vocab : (k+1)*vocab : (k+1)*vocab]
		}
		seq += len(wantSeq)
		for _, r := range rows[i:j] {
			r.c.n = max(r.c.n, r.pos+1)
		}
	}
	return out, nil
}

func (m *Model) checkTokens(c *Cache, tokens []int32) error {
	if c.n+len(tokens) > c.cap {
		return fmt.Errorf("glm4moe: %d tokens do not fit in the context: %d of %d positions used", len(tokens), c.n, c.cap)
	}
	for i, t := range tokens {
		if t < 0 || int(t) >= m.cfg.VocabSize {
			return fmt.Errorf("glm4moe: token %d at index %d is out of range [0, %d)", t, i, m.cfg.VocabSize)
		}
	}
	return nil
}

// rowRef places one token of a pass: its sequence's cache and position.
type rowRef struct {
	c   *Cache
	pos int
}

// run computes one pass over n = len(rows) tokens: it writes each token's
// cache row and returns the logits of the rows listed in want
// ([len(want)][vocab]), written into dst when its capacity suffices (CPU
// path), else into a new slice. The caller advances the caches' lengths.
func (m *Model) run(rows []rowRef, tokens []int32, want []int, dst []float32) ([]float32, error) {
	if m.gpu != nil {
		return m.gpu.run(rows, tokens, want)
	}
	c := m.cfg
	n := len(rows)
	d := c.NEmbd
	s := getScratch(c, n)
	defer s.put()
	x := s.floats(n * d)
	for i, t := range tokens {
		if err := quant.Dequantize(m.embd.Type, m.embd.Row(int(t)), x[i*d:(i+1)*d]); err != nil {
			return nil, fmt.Errorf("glm4moe: embedding: %w", err)
		}
	}
	// One rotation table per token, shared by all layers and heads.
	for _, r := range rows {
		s.rope = append(s.rope, cpu.NewRoPETable(r.pos, c.RopeDim, c.RopeFreqBase))
	}
	last := len(m.layers) - 1
	for l := range m.layers {
		if err := m.attention(l, rows, x, s); err != nil {
			return nil, fmt.Errorf("glm4moe: layer %d attention: %w", l, err)
		}
		if l == last && len(want) < n {
			// Only the wanted rows feed the output: the last FFN runs on
			// them alone (none when no logits are wanted), as llama.cpp
			// drops non-output rows at its last layer.
			if len(want) == 0 {
				return nil, nil
			}
			xo := s.floats(len(want) * d)
			for k, r := range want {
				copy(xo[k*d:(k+1)*d], x[r*d:(r+1)*d])
			}
			x, n = xo, len(want)
			want = nil // rows of x are now the wanted rows in order
		}
		if err := m.ffn(l, x, n, s); err != nil {
			return nil, fmt.Errorf("glm4moe: layer %d ffn: %w", l, err)
		}
	}
	if want == nil {
		want = make([]int, n)
		for k := range want {
			want[k] = k
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	h := s.floats(len(want) * d)
	for k, r := range want {
		cpu.RMSNorm(h[k*d:(k+1)*d], x[r*d:(r+1)*d], m.outNrm, c.RMSEps)
	}
	var logits []float32
	if need := len(want) * c.VocabSize; cap(dst) >= need {
		logits = dst[:need]
	} else {
		logits = make([]float32, need)
	}
	if err := m.matmul(logits, m.output, h, len(want)); err != nil {
		return nil, fmt.Errorf("glm4moe: output: %w", err)
	}
	return logits, nil
}

func (m *Model) matmul(out []float32, w cpu.Weight, x []float32, n int) error {
	return cpu.MatMul(m.pool, m.mode, out, w, x, n)
}

// scratch holds the per-pass activation buffers.
type scratch struct {
	a     []float32       // [n][d] normed input
	cq    []float32       // [n][r_q]
	q     []float32       // [n][H·d_qk]
	ckv   []float32       // [n][r_kv+d_rope]
	qh    []float32       // [H][n][d_nope] q_nope, head-major
	qa    []float32       // [H][n][r_kv] absorbed queries, head-major
	qf    []float32       // [n][H][r_kv+d_rope] full absorbed queries
	ol    []float32       // [n][H][r_kv] attention output in latent space
	olh   []float32       // [H][n][r_kv] latent outputs, head-major
	oh    []float32       // [H][n][d_v] head outputs, head-major
	o     []float32       // [n][H·d_v]
	proj  []float32       // [n][d]
	rope  []cpu.RoPETable // [n] rotation of each token's position
	n     int             // tokens the buffers were allocated for
	shape shape           // model shapes they were allocated for

	// Buffers whose sizes vary within a pass (routed experts, router,
	// attention partials), handed out by floats/float64s and reused by the
	// next pass.
	arena   []float32
	off     int
	arena64 []float64
	scores  [][]float32 // per worker: attention scores
	ffn     ffnScratch
}

// poisonScratch makes floats fill its slices with NaN: a test switch that
// proves no caller reads a slice before writing it.
var poisonScratch = false

// floats returns n float32s valid until the scratch is put back. They are
// NOT zeroed (clearing them was 1.5% of a batched decode step): every
// caller overwrites its slice before reading it.
func (s *scratch) floats(n int) []float32 {
	if s.off+n > len(s.arena) {
		// Slices handed out earlier in this pass keep the old array.
		s.arena = make([]float32, max(2*len(s.arena), n, 1<<12))
		s.off = 0
	}
	b := s.arena[s.off : s.off+n : s.off+n]
	s.off += n
	if poisonScratch {
		for i := range b {
			b[i] = float32(math.NaN())
		}
	}
	return b
}

// float64s returns n zeroed float64s; one user per pass (attention).
func (s *scratch) float64s(n int) []float64 {
	if cap(s.arena64) < n {
		s.arena64 = make([]float64, n)
	}
	b := s.arena64[:n]
	clear(b)
	return b
}

// put drops the references the scratch holds into the caller's data and
// returns it to the pool.
func (s *scratch) put() {
	s.ffn.reset()
	s.off = 0
	scratchPool.Put(s)
}

// scratchPool keeps the activation buffers of finished passes for reuse:
// a 512-token prefill needs ~140 MB of them and a decode step ~0.5 MB, so
// allocating them per pass churned the Go heap (more collections, heap
// growth and release between prefill and decode).
var scratchPool sync.Pool

// getScratch returns buffers for a pass of n tokens: a pooled set when one
// was made for the same shapes and at least n tokens, else a new one. The
// buffers are not cleared; every user overwrites (or clears) them.
func getScratch(c Config, n int) *scratch {
	if s, ok := scratchPool.Get().(*scratch); ok && s.n >= n && s.shape == scratchShape(c) {
		return s.resize(c, n)
	}
	return newScratch(c, n)
}

// scratchShape is what a scratch's buffer sizes depend on besides n.
type shape struct{ d, rq, h, qk, w, nope, kvl, dv int }

func scratchShape(c Config) shape {
	return shape{c.NEmbd, c.QLoraRank, c.NHead, c.KeyLengthMLA, c.CacheRow(), c.NopeDim, c.KVLoraRank, c.ValueLengthMLA}
}

// resize reslices every buffer to n tokens (n <= s.n, the allocated size).
func (s *scratch) resize(c Config, n int) *scratch {
	w := c.CacheRow()
	s.a = s.a[:n*c.NEmbd]
	s.cq = s.cq[:n*c.QLoraRank]
	s.q = s.q[:n*c.NHead*c.KeyLengthMLA]
	s.ckv = s.ckv[:n*w]
	s.qh = s.qh[:n*c.NHead*c.NopeDim]
	s.qa = s.qa[:n*c.NHead*c.KVLoraRank]
	s.qf = s.qf[:n*c.NHead*w]
	s.ol = s.ol[:n*c.NHead*c.KVLoraRank]
	s.olh = s.olh[:n*c.NHead*c.KVLoraRank]
	s.oh = s.oh[:n*c.NHead*c.ValueLengthMLA]
	s.o = s.o[:n*c.NHead*c.ValueLengthMLA]
	s.proj = s.proj[:n*c.NEmbd]
	s.rope = s.rope[:0]
	return s
}

func newScratch(c Config, n int) *scratch {
	w := c.CacheRow()
	return &scratch{
		n:     n,
		shape: scratchShape(c),
		a:     make([]float32, n*c.NEmbd),
		cq:    make([]float32, n*c.QLoraRank),
		q:     make([]float32, n*c.NHead*c.KeyLengthMLA),
		ckv:   make([]float32, n*w),
		qh:    make([]float32, n*c.NHead*c.NopeDim),
		qa:    make([]float32, n*c.NHead*c.KVLoraRank),
		qf:    make([]float32, n*c.NHead*w),
		ol:    make([]float32, n*c.NHead*c.KVLoraRank),
		olh:   make([]float32, n*c.NHead*c.KVLoraRank),
		oh:    make([]float32, n*c.NHead*c.ValueLengthMLA),
		o:     make([]float32, n*c.NHead*c.ValueLengthMLA),
		proj:  make([]float32, n*c.NEmbd),
	}
}

// attention runs the absorbed-MLA block of layer l (spec §4.2) and adds its
// output to x ([n][d]).
func (m *Model) attention(l int, rows []rowRef, x []float32, s *scratch) error {
	c := m.cfg
	ly := &m.layers[l]
	n := len(rows)
	d, H := c.NEmbd, c.NHead
	kvl, rd, nope, qk, dv := c.KVLoraRank, c.RopeDim, c.NopeDim, c.KeyLengthMLA, c.ValueLengthMLA
	w := kvl + rd

	cpu.RMSNorm(s.a, x, ly.attnNorm, c.RMSEps)
	// The Q down-projection (or full Q) and the KV projection share their
	// input: one pass.
	if c.QLoraRank > 0 {
		if err := m.batch(cpu.Job{Out: s.cq, W: ly.qa, X: s.a, N: n}, cpu.Job{Out: s.ckv, W: ly.kva, X: s.a, N: n}); err != nil {
			return err
		}
		cpu.RMSNorm(s.cq, s.cq, ly.qaNorm, c.RMSEps)
		if err := m.matmul(s.q, ly.qb, s.cq, n); err != nil {
			return err
		}
	} else if err := m.batch(cpu.Job{Out: s.q, W: ly.q, X: s.a, N: n}, cpu.Job{Out: s.ckv, W: ly.kva, X: s.a, N: n}); err != nil {
		return err
	}
	// Cache rows: [RMSNorm(kv_lat) ; RoPE(k_pe)].
	for i, r := range rows {
		ckv := s.ckv[i*w : (i+1)*w]
		row := r.c.row(l, r.pos)
		cpu.RMSNorm(row[:kvl], ckv[:kvl], ly.kvaNorm, c.RMSEps)
		copy(row[kvl:], ckv[kvl:])
		s.rope[i].Apply(row[kvl:])
	}
	// Absorbed queries: qf[i][h] = [W_kb,h·q_nope ; RoPE(q_pe)], all heads in
	// one grouped product over the head-major gather qh[h][i] = q_nope.
	for h := 0; h < H; h++ {
		for i := 0; i < n; i++ {
			copy(s.qh[(h*n+i)*nope:(h*n+i+1)*nope], s.q[(i*H+h)*qk:])
		}
	}
	if err := cpu.MatMulGroups(m.pool, m.mode, s.qa, ly.kb, H, s.qh, n); err != nil {
		return err
	}
	for h := 0; h < H; h++ {
		for i := range rows {
			dst := s.qf[(i*H+h)*w : (i*H+h+1)*w]
			copy(dst[:kvl], s.qa[(h*n+i)*kvl:(h*n+i+1)*kvl])
			copy(dst[kvl:], s.q[(i*H+h)*qk+nope:(i*H+h+1)*qk])
			s.rope[i].Apply(dst[kvl:])
		}
	}
	// Causal softmax attention over the cached rows (attention.go).
	m.attendCached(l, rows, s)
	// Decompress per head: o_h = W_vb,h·o_lat_h (one grouped product),
	// heads concatenated head-major.
	for h := 0; h < H; h++ {
		for i := 0; i < n; i++ {
			copy(s.olh[(h*n+i)*kvl:(h*n+i+1)*kvl], s.ol[(i*H+h)*kvl:(i*H+h+1)*kvl])
		}
	}
	if err := cpu.MatMulGroups(m.pool, m.mode, s.oh, ly.vb, H, s.olh, n); err != nil {
		return err
	}
	for h := 0; h < H; h++ {
		for i := 0; i < n; i++ {
			copy(s.o[(i*H+h)*dv:(i*H+h+1)*dv], s.oh[(h*n+i)*dv:(h*n+i+1)*dv])
		}
	}
	if err := m.matmul(s.proj, ly.out, s.o, n); err != nil {
		return err
	}
	cpu.Add(x[:n*d], s.proj)
	return nil
}

// ffn runs the FFN block of layer l (spec §4.3) and adds its output to x.
func (m *Model) ffn(l int, x []float32, n int, s *scratch) error {
	c := m.cfg
	ly := &m.layers[l]
	d := c.NEmbd
	h := s.a
	cpu.RMSNorm(h, x, ly.ffnNorm, c.RMSEps)
	if !ly.moe {
		if err := m.swiglu(s.proj, ly.gate, ly.up, ly.down, h, n, s); err != nil {
			return err
		}
		cpu.Add(x[:n*d], s.proj)
		return nil
	}
	// Router in f32 (the router weight is f32 in every real file).
	ne, k := c.NExpert, c.NExpertUsed
	logits := s.floats(n * ne)
	if err := m.matmul(logits, ly.gateInp, h, n); err != nil {
		return err
	}
	f := &s.ffn
	f.routes = slices.Grow(f.routes[:0], ne)[:ne]
	for e := range f.routes {
		f.routes[e] = f.routes[e][:0]
	}
	probs, sel := s.floats(ne), s.floats(ne)
	f.top = slices.Grow(f.top[:0], k)
	for i := 0; i < n; i++ {
		lg := logits[i*ne : (i+1)*ne]
		if c.GatingSigmoid {
			for e, v := range lg {
				probs[e] = cpu.Sigmoid(v)
			}
		} else {
			copy(probs, lg)
			cpu.Softmax(probs)
		}
		for e := range sel {
			sel[e] = probs[e]
			if ly.expBias != nil {
				sel[e] += ly.expBias[e]
			}
		}
		top := topK(f.top[:0], sel, k)
		var sum float32
		for _, e := range top {
			sum += probs[e]
		}
		norm := float32(1)
		if c.ExpertWeightsNorm {
			norm = 1 / max(sum, 6.103515625e-5)
		}
		for _, e := range top {
			f.routes[e] = append(f.routes[e], route{row: i, w: probs[e] * norm * c.ExpertWeightsScale})
		}
	}
	// Routed experts, grouped: each selected expert's weights are read once
	// and applied to all the tokens routed to it. All experts' gate/up
	// products (and the shared expert's) run in one pass, then all downs.
	out := s.proj
	clear(out[:n*d])
	ff := c.NFFExp
	exps := f.exps[:0]
	for e, rs := range f.routes {
		if len(rs) == 0 {
			continue
		}
		ex := expert{e: e, rs: rs, x: s.floats(len(rs) * d), g: s.floats(len(rs) * ff), u: s.floats(len(rs) * ff), y: s.floats(len(rs) * d)}
		for j, r := range rs {
			copy(ex.x[j*d:(j+1)*d], h[r.row*d:(r.row+1)*d])
		}
		exps = append(exps, ex)
	}
	f.exps = exps
	up, down := f.up[:0], f.down[:0]
	for _, ex := range exps {
		e, k := ex.e, len(ex.rs)
		var gw, uw cpu.Weight
		if ly.fused {
			gw = ly.gateExps.SubRows(e*2*ff, e*2*ff+ff)
			uw = ly.gateExps.SubRows(e*2*ff+ff, (e+1)*2*ff)
		} else {
			gw = ly.gateExps.SubRows(e*ff, (e+1)*ff)
			uw = ly.upExps.SubRows(e*ff, (e+1)*ff)
		}
		up = append(up, cpu.Job{Out: ex.g, W: gw, X: ex.x, N: k}, cpu.Job{Out: ex.u, W: uw, X: ex.x, N: k})
		down = append(down, cpu.Job{Out: ex.y, W: ly.downExps.SubRows(e*d, (e+1)*d), X: ex.g, N: k})
	}
	var shG, shU, shY []float32
	if ly.hasSh {
		fs := ly.gateSh.Rows
		shG, shU, shY = s.floats(n*fs), s.floats(n*fs), s.floats(n*d)
		up = append(up, cpu.Job{Out: shG, W: ly.gateSh, X: h, N: n}, cpu.Job{Out: shU, W: ly.upSh, X: h, N: n})
		down = append(down, cpu.Job{Out: shY, W: ly.downSh, X: shG, N: n})
	}
	f.up, f.down = up, down
	if err := m.batch(up...); err != nil {
		return err
	}
	for _, ex := range exps {
		cpu.SwiGLU(ex.g, ex.g, ex.u)
	}
	if ly.hasSh {
		cpu.SwiGLU(shG, shG, shU)
	}
	if err := m.batch(down...); err != nil {
		return err
	}
	for _, ex := range exps {
		for j, r := range ex.rs {
			cpu.AXPY(out[r.row*d:(r.row+1)*d], r.w, ex.y[j*d:(j+1)*d])
		}
	}
	if ly.hasSh {
		cpu.Add(out[:n*d], shY)
	}
	cpu.Add(x[:n*d], out[:n*d])
	return nil
}

// route is one token's share of a routed expert: its row in the pass and
// its gate weight.
type route struct {
	row int
	w   float32
}

// expert is one routed expert's work in a pass: the tokens routed to it and
// their gathered inputs, gate, up and down outputs ([len(rs)][·]).
type expert struct {
	e          int
	rs         []route
	x, g, u, y []float32
}

// ffnScratch holds the routing state of an MoE block, reused across layers
// and passes.
type ffnScratch struct {
	routes   [][]route // [NExpert] tokens routed to each expert
	top      []int
	exps     []expert
	up, down []cpu.Job
}

// reset drops the references into the pass's buffers and weights.
func (f *ffnScratch) reset() {
	clear(f.exps[:cap(f.exps)])
	clear(f.up[:cap(f.up)])
	clear(f.down[:cap(f.down)])
}

// topK returns the indices of the k largest values of v in descending
// order (ties: lower index first, as a stable sort would), appended to
// dst[:0].
func topK(dst []int, v []float32, k int) []int {
	dst = dst[:0]
	for e, x := range v {
		if len(dst) == k && x <= v[dst[k-1]] {
			continue
		}
		// Insert after every kept index whose value is >= x.
		p := len(dst)
		for p > 0 && v[dst[p-1]] < x {
			p--
		}
		if len(dst) < k {
			dst = append(dst, 0)
		}
		copy(dst[p+1:], dst[p:len(dst)-1])
		dst[p] = e
	}
	return dst
}

// swiglu computes out = down·(silu(gate·x) ⊙ up·x) for the n rows of x.
func (m *Model) swiglu(out []float32, gate, up, down cpu.Weight, x []float32, n int, s *scratch) error {
	g := s.floats(n * gate.Rows)
	u := s.floats(n * up.Rows)
	if err := m.batch(cpu.Job{Out: g, W: gate, X: x, N: n}, cpu.Job{Out: u, W: up, X: x, N: n}); err != nil {
		return err
	}
	cpu.SwiGLU(g, g, u)
	return m.matmul(out, down, g, n)
}

// batch runs several products in one parallel pass.
func (m *Model) batch(jobs ...cpu.Job) error {
	return cpu.MatMulBatch(m.pool, m.mode, jobs)
}
