package glm4moe

import (
	"fmt"
	"sort"
	"sync"

	"github.com/glmrun/glmrun/backend/cpu"
	"github.com/glmrun/glmrun/backend/quant"
)

// Forward appends tokens to c and returns logits: if all, one row of
// VocabSize logits per token ([len(tokens)][vocab], row-major); otherwise
// only the last token's [vocab]. Tokens are processed in micro-batches of
// Options.UBatch tokens. It returns an error, leaving c unchanged, if a
// token id is out of range or the cache would overflow.
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
		out, err := m.run(rows, tokens[i:j], want)
		if err != nil {
			c.n = start
			return nil, err
		}
		c.n += j - i
		if all {
			logits = append(logits, out...)
		} else if j == len(tokens) {
			logits = out
		}
	}
	return logits, nil
}

// ForwardBatch runs one step for several independent sequences in one
// batched pass: tokens[i] (at least one token) are appended to caches[i],
// and the last-token logits ([vocab]) of each sequence are returned. Weight
// rows are read once per pass for all sequences. Passes hold at most
// Options.UBatch tokens in total. The caches must be distinct.
func (m *Model) ForwardBatch(caches []*Cache, tokens [][]int32) ([][]float32, error) {
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
		logits, err := m.run(rows[i:j], toks[i:j], want)
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
// ([len(want)][vocab]). The caller advances the caches' lengths.
func (m *Model) run(rows []rowRef, tokens []int32, want []int) ([]float32, error) {
	if m.gpu != nil {
		return m.gpu.run(rows, tokens, want)
	}
	c := m.cfg
	n := len(rows)
	d := c.NEmbd
	x := make([]float32, n*d)
	for i, t := range tokens {
		if err := quant.Dequantize(m.embd.Type, m.embd.Row(int(t)), x[i*d:(i+1)*d]); err != nil {
			return nil, fmt.Errorf("glm4moe: embedding: %w", err)
		}
	}
	s := getScratch(c, n)
	defer scratchPool.Put(s)
	// One rotation table per token, shared by all layers and heads.
	s.rope = make([]cpu.RoPETable, n)
	for i, r := range rows {
		s.rope[i] = cpu.NewRoPETable(r.pos, c.RopeDim, c.RopeFreqBase)
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
			xo := make([]float32, len(want)*d)
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
	h := make([]float32, len(want)*d)
	for k, r := range want {
		cpu.RMSNorm(h[k*d:(k+1)*d], x[r*d:(r+1)*d], m.outNrm, c.RMSEps)
	}
	logits := make([]float32, len(want)*c.VocabSize)
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
	s.rope = nil
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
		if err := m.swiglu(s.proj, ly.gate, ly.up, ly.down, h, n); err != nil {
			return err
		}
		cpu.Add(x[:n*d], s.proj)
		return nil
	}
	// Router in f32 (the router weight is f32 in every real file).
	ne, k := c.NExpert, c.NExpertUsed
	logits := make([]float32, n*ne)
	if err := m.matmul(logits, ly.gateInp, h, n); err != nil {
		return err
	}
	type route struct {
		row int
		w   float32
	}
	routes := make([][]route, ne)
	probs := make([]float32, ne)
	sel := make([]float32, ne)
	idx := make([]int, ne)
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
			idx[e] = e
		}
		sort.SliceStable(idx, func(a, b int) bool { return sel[idx[a]] > sel[idx[b]] })
		top := idx[:k]
		var sum float32
		for _, e := range top {
			sum += probs[e]
		}
		norm := float32(1)
		if c.ExpertWeightsNorm {
			norm = 1 / max(sum, 6.103515625e-5)
		}
		for _, e := range top {
			routes[e] = append(routes[e], route{row: i, w: probs[e] * norm * c.ExpertWeightsScale})
		}
	}
	// Routed experts, grouped: each selected expert's weights are read once
	// and applied to all the tokens routed to it. All experts' gate/up
	// products (and the shared expert's) run in one pass, then all downs.
	out := s.proj
	clear(out[:n*d])
	ff := c.NFFExp
	type expert struct {
		e          int
		rs         []route
		x, g, u, y []float32
	}
	var exps []expert
	for e, rs := range routes {
		if len(rs) == 0 {
			continue
		}
		ex := expert{e: e, rs: rs, x: make([]float32, len(rs)*d), g: make([]float32, len(rs)*ff), u: make([]float32, len(rs)*ff), y: make([]float32, len(rs)*d)}
		for j, r := range rs {
			copy(ex.x[j*d:(j+1)*d], h[r.row*d:(r.row+1)*d])
		}
		exps = append(exps, ex)
	}
	up := make([]cpu.Job, 0, 2*len(exps)+2)
	down := make([]cpu.Job, 0, len(exps)+1)
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
		shG, shU, shY = make([]float32, n*fs), make([]float32, n*fs), make([]float32, n*d)
		up = append(up, cpu.Job{Out: shG, W: ly.gateSh, X: h, N: n}, cpu.Job{Out: shU, W: ly.upSh, X: h, N: n})
		down = append(down, cpu.Job{Out: shY, W: ly.downSh, X: shG, N: n})
	}
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

// swiglu computes out = down·(silu(gate·x) ⊙ up·x) for the n rows of x.
func (m *Model) swiglu(out []float32, gate, up, down cpu.Weight, x []float32, n int) error {
	g := make([]float32, n*gate.Rows)
	u := make([]float32, n*up.Rows)
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
