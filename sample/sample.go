// Package sample turns a row of logits into a token id with llama.cpp's
// sampler chain and semantics: repetition penalties -> top-k -> top-p ->
// min-p -> temperature -> a seeded random draw. A temperature <= 0 picks the
// most likely token after the penalties (greedy).
package sample

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Params configures a Sampler. The zero value is not useful; start from
// DefaultParams.
type Params struct {
	Temp             float32 // <= 0: greedy
	TopK             int     // <= 0: off
	TopP             float32 // >= 1: off
	MinP             float32 // <= 0: off
	RepeatPenalty    float32 // 1: off; logits > 0 are divided by it, others multiplied
	RepeatLastN      int     // tokens of history the penalties look at (0: off, -1: all)
	PresencePenalty  float32 // subtracted once from every token seen in the window
	FrequencyPenalty float32 // subtracted per occurrence in the window
	Seed             uint64  // RNG seed: the same seed and inputs give the same tokens
}

// DefaultParams returns llama.cpp's defaults: temp 0.8, top-k 40, top-p 0.95,
// min-p 0.05, repeat penalty 1.0 over the last 64 tokens, no presence or
// frequency penalty.
func DefaultParams() Params {
	return Params{Temp: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1, RepeatLastN: 64}
}

// Sampler draws tokens. It keeps the token history for the penalties (fed by
// Accept) and its own RNG. It is not safe for concurrent use.
type Sampler struct {
	p       Params
	rng     *rand.Rand
	history []int32
	cands   []Candidate
	scratch []float32 // penalised copy of the logits
	guess   kthGuess  // top-k threshold carried from draw to draw
}

// kthGuess carries the k-th best logit of the previous draw (and a margin
// below it) to the next: consecutive logit rows of one sequence have
// similar scales, so "every logit >= kth - margin" usually holds a few more
// than k candidates, found in one branch-predictable pass.
type kthGuess struct {
	ok     bool
	kth    float32
	margin float32
}

// Candidate is one token and its (possibly modified) logit.
type Candidate struct {
	ID    int32
	Logit float32
}

// New returns a Sampler for p.
func New(p Params) *Sampler {
	return &Sampler{p: p, rng: rand.New(rand.NewPCG(p.Seed, p.Seed^0x9e3779b97f4a7c15))}
}

// Params returns the sampler's parameters.
func (s *Sampler) Params() Params { return s.p }

// Accept records id in the history used by the penalties. Call it for every
// prompt token (llama.cpp does) and every generated token.
func (s *Sampler) Accept(id int32) {
	s.history = append(s.history, id)
	// Keep the history bounded.
	if keep := s.p.RepeatLastN; keep >= 0 && len(s.history) > 4*max(keep, 64) {
		s.history = append(s.history[:0], s.history[len(s.history)-keep:]...)
	}
}

// Reset clears the history (the RNG state is kept).
func (s *Sampler) Reset() { s.history = s.history[:0] }

// Sample returns the next token id for logits (one row of vocabulary size).
// logits is not modified. With top-k on, only the k best candidates are
// ever materialised (one pass against a threshold carried from the last
// draw, else one pass with a small heap), so a draw over GLM's
// 154880-token vocabulary costs one scan, not a sort.
func (s *Sampler) Sample(logits []float32) int32 {
	if s.penaltiesActive() {
		s.scratch = append(s.scratch[:0], logits...)
		s.penalize(s.scratch)
		logits = s.scratch
	}
	if s.p.Temp <= 0 {
		return argmaxLogits(logits)
	}
	var c []Candidate
	if k := s.p.TopK; k > 0 && k < len(logits) {
		c = s.topK(logits, k)
		s.cands = c
		c = TopP(c, s.p.TopP)
	} else {
		c = s.cands[:0]
		for i, v := range logits {
			c = append(c, Candidate{ID: int32(i), Logit: v})
		}
		s.cands = c
		c = topPUnsorted(c, s.p.TopP)
	}
	c = MinP(c, s.p.MinP)
	for i := range c {
		c[i].Logit /= s.p.Temp
	}
	return s.draw(c)
}

// topPUnsorted is TopP for candidates in any order: it returns the same
// sorted prefix without sorting the whole vocabulary, by selecting and
// sorting the best 256, 1024, ... until their probability mass reaches p.
func topPUnsorted(c []Candidate, p float32) []Candidate {
	if p >= 1 || len(c) <= 1 {
		sortDesc(c)
		return TopP(c, p)
	}
	m := math.Inf(-1)
	for _, x := range c {
		m = math.Max(m, float64(x.Logit))
	}
	var sum float64
	for _, x := range c {
		sum += math.Exp(float64(x.Logit) - m)
	}
	for k := 256; ; k *= 4 {
		if k >= len(c) {
			sortDesc(c)
			return TopP(c, p)
		}
		quickselect(c, k)
		sortDesc(c[:k])
		var cum float64
		for i, x := range c[:k] {
			cum += math.Exp(float64(x.Logit)-m) / sum
			if cum >= float64(p) {
				return c[:i+1]
			}
		}
	}
}

// argmaxLogits returns the index of the largest logit (the lowest on ties).
func argmaxLogits(l []float32) int32 {
	best := 0
	for i, v := range l {
		if v > l[best] {
			best = i
		}
	}
	return int32(best)
}

// topK returns the k highest logits as candidates sorted highest first
// (ties: lower id first) in s.cands' storage. It first collects every
// logit >= the previous draw's k-th best minus a margin (at most 4k of
// them): when that holds at least k, the k best are all among them, and
// sorting a few dozen beats a heap pass (glm-tiny's reference logits, 256
// consecutive rows of 2304, k = 40: 7.6-10.0 µs a row against 16.7-22.5;
// 154880 normal logits: 161-164 µs against 248-289). Otherwise, or without
// a previous draw, it falls back to topKHeap. The margin halves when a
// guess collects more than 2k and doubles when it misses.
func (s *Sampler) topK(logits []float32, k int) []Candidate {
	g := &s.guess
	if g.ok {
		thr := g.kth - g.margin
		c, ok := collectAtLeast(logits, thr, 4*k, s.cands[:0])
		switch {
		case ok && len(c) >= k:
			if len(c) > 2*k {
				g.margin = max(g.margin/2, 1e-4)
			}
			sortDesc(c)
			g.kth = c[k-1].Logit
			s.cands = c
			return c[:k]
		case ok:
			g.margin *= 2 // too few: the threshold was too high
		default:
			g.margin = max(g.margin/2, 1e-4) // too many
		}
		s.cands = c // keep the storage collectAtLeast may have grown
	}
	c := topKHeap(logits, k, s.cands[:0])
	lo, hi := c[k-1].Logit, c[0].Logit
	// A usable guess needs finite logits; the margin starts at a quarter
	// of the top-k spread (never 0, so it can grow).
	*g = kthGuess{ok: !isInfOrNaN(lo) && !isInfOrNaN(hi), kth: lo, margin: max((hi-lo)/4, 1e-3)}
	return c
}

// collectAtLeast returns, in buf's storage (grown to limit if needed),
// every logit >= thr with its id, in id order; ok is false (and the result
// partial) if there are more than limit. It stores by index rather than
// append: an append in the loop made the scan of GLM's 154880 logits ~1.7x
// slower (255 against 149-167 µs).
func collectAtLeast(logits []float32, thr float32, limit int, buf []Candidate) ([]Candidate, bool) {
	if cap(buf) < limit {
		buf = make([]Candidate, limit)
	}
	c := buf[:limit]
	n := 0
	for i, v := range logits {
		if v >= thr {
			if n == limit {
				return c[:n], false
			}
			c[n] = Candidate{ID: int32(i), Logit: v}
			n++
		}
	}
	return c[:n], true
}

func isInfOrNaN(v float32) bool { return v != v || math.IsInf(float64(v), 0) }

// topKHeap returns the k highest logits as candidates sorted highest first
// (ties: lower id first), using buf's storage. It keeps a min-heap of the k
// best seen so far; most logits fail the single comparison with its root.
func topKHeap(logits []float32, k int, buf []Candidate) []Candidate {
	h := buf[:0]
	for i := 0; i < k; i++ {
		h = append(h, Candidate{ID: int32(i), Logit: logits[i]})
	}
	// worse(a, b): a ranks below b.
	worse := func(a, b Candidate) bool { return a.Logit < b.Logit || (a.Logit == b.Logit && a.ID > b.ID) }
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= k {
				return
			}
			if r := l + 1; r < k && worse(h[r], h[l]) {
				l = r
			}
			if !worse(h[l], h[i]) {
				return
			}
			h[i], h[l] = h[l], h[i]
			i = l
		}
	}
	for i := k/2 - 1; i >= 0; i-- {
		down(i)
	}
	for i := k; i < len(logits); i++ {
		// A later id with an equal logit ranks lower, so only a strictly
		// larger logit can enter.
		if v := logits[i]; v > h[0].Logit {
			h[0] = Candidate{ID: int32(i), Logit: v}
			down(0)
		}
	}
	sortDesc(h)
	return h
}

func (s *Sampler) penaltiesActive() bool {
	return s.p.RepeatLastN != 0 && len(s.history) > 0 &&
		(s.p.RepeatPenalty != 1 || s.p.PresencePenalty != 0 || s.p.FrequencyPenalty != 0)
}

// penalize applies the repetition, presence and frequency penalties to the
// logits of the tokens in the last RepeatLastN history entries (llama.cpp
// semantics).
func (s *Sampler) penalize(l []float32) {
	n := s.p.RepeatLastN
	if n < 0 || n > len(s.history) {
		n = len(s.history)
	}
	counts := map[int32]int{}
	for _, id := range s.history[len(s.history)-n:] {
		counts[id]++
	}
	for id, cnt := range counts {
		if id < 0 || int(id) >= len(l) {
			continue
		}
		v := &l[id]
		if *v <= 0 {
			*v *= s.p.RepeatPenalty
		} else {
			*v /= s.p.RepeatPenalty
		}
		*v -= float32(cnt)*s.p.FrequencyPenalty + s.p.PresencePenalty
	}
}

// sortDesc sorts candidates by logit, highest first (ties by id).
func sortDesc(c []Candidate) {
	if len(c) <= 96 {
		// Insertion sort, its comparison inlined: a top-k's few dozen
		// candidates sort faster than through slices.SortFunc's callback.
		for i := 1; i < len(c); i++ {
			x := c[i]
			j := i
			for j > 0 && (c[j-1].Logit < x.Logit || (c[j-1].Logit == x.Logit && c[j-1].ID > x.ID)) {
				c[j] = c[j-1]
				j--
			}
			c[j] = x
		}
		return
	}
	slices.SortFunc(c, func(a, b Candidate) int {
		switch {
		case a.Logit > b.Logit:
			return -1
		case a.Logit < b.Logit:
			return 1
		}
		return int(a.ID - b.ID)
	})
}

func isSorted(c []Candidate) bool {
	for i := 1; i < len(c); i++ {
		if c[i].Logit > c[i-1].Logit {
			return false
		}
	}
	return true
}

// TopK keeps the k highest-logit candidates, sorted highest first; k <= 0
// keeps all (sorted).
func TopK(c []Candidate, k int) []Candidate {
	if k > 0 && k < len(c) {
		// Partial selection: find the k-th largest by quickselect, then sort k.
		quickselect(c, k)
		c = c[:k]
	}
	if !isSorted(c) {
		sortDesc(c)
	}
	return c
}

// quickselect rearranges c so that its first k entries are the k largest.
func quickselect(c []Candidate, k int) {
	lo, hi := 0, len(c)-1
	for lo < hi {
		p := c[(lo+hi)/2].Logit
		i, j := lo, hi
		for i <= j {
			for c[i].Logit > p {
				i++
			}
			for c[j].Logit < p {
				j--
			}
			if i <= j {
				c[i], c[j] = c[j], c[i]
				i++
				j--
			}
		}
		if k-1 <= j {
			hi = j
		} else if k-1 >= i {
			lo = i
		} else {
			return
		}
	}
}

// probs returns the softmax of the candidates' logits.
func probs(c []Candidate) []float64 {
	m := math.Inf(-1)
	for _, x := range c {
		m = math.Max(m, float64(x.Logit))
	}
	p := make([]float64, len(c))
	var sum float64
	for i, x := range c {
		p[i] = math.Exp(float64(x.Logit) - m)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

// TopP keeps the smallest prefix of c (sorted highest first) whose
// probabilities sum to at least p (at least one candidate); p >= 1 keeps all.
func TopP(c []Candidate, p float32) []Candidate {
	if p >= 1 || len(c) <= 1 {
		return c
	}
	if !isSorted(c) {
		sortDesc(c)
	}
	pr := probs(c)
	var cum float64
	for i, q := range pr {
		cum += q
		if cum >= float64(p) {
			return c[:i+1]
		}
	}
	return c
}

// MinP keeps the candidates whose probability is at least p times the
// largest probability; p <= 0 keeps all.
func MinP(c []Candidate, p float32) []Candidate {
	if p <= 0 || len(c) <= 1 {
		return c
	}
	m := float32(math.Inf(-1))
	for _, x := range c {
		m = max(m, x.Logit)
	}
	thr := m + float32(math.Log(float64(p)))
	out := c[:0]
	for _, x := range c {
		if x.Logit >= thr {
			out = append(out, x)
		}
	}
	return out
}

// draw samples one candidate from the softmax of the logits.
func (s *Sampler) draw(c []Candidate) int32 {
	pr := probs(c)
	u := s.rng.Float64()
	var cum float64
	for i, q := range pr {
		cum += q
		if u < cum {
			return c[i].ID
		}
	}
	return c[len(c)-1].ID
}
