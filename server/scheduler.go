package server

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
)

// This file holds the continuous-batching scheduler (interfaces.md §3.7).
// One goroutine owns the engine. Every step it builds ONE batched forward
// pass: one token from each generating slot plus prefill chunks from slots
// still ingesting their prompt (up to uBatch tokens in all). A finished,
// failed or cancelled sequence frees its slot at once and the next queued
// request joins at the next step. Requests wait in a bounded FIFO queue; a
// request is admitted only when its worst-case KV need (prompt + max_tokens,
// capped by maxSeqLen) fits in the remaining KV budget.

// finish reasons as OpenAI spells them.
const (
	finishStop   = "stop"
	finishLength = "length"
)

// event is one thing a job reports to its HTTP handler.
type event struct {
	Text    string // generated text (stop strings removed)
	Tokens  int    // tokens generated since the previous event
	Done    bool   // the generation ended; Finish, Err and Timings are set
	Finish  string // finishStop or finishLength
	Err     error  // a compute failure
	Timings timings
	// Logprobs has one entry per token reported with this event (EOG
	// tokens excluded) when the job asked for logprobs.
	Logprobs []tokenLogprob
}

// tokenLogprob is a generated token's log-probability under the model's
// raw distribution (log-softmax of the logits) and the n most likely
// alternatives, most likely first.
type tokenLogprob struct {
	ID      int32
	Logprob float32
	Top     []idLogprob
}

type idLogprob struct {
	ID      int32
	Logprob float32
}

// timings are one generation's counts and durations (llama-server's
// "timings" object).
type timings struct {
	PromptN     int // prompt tokens evaluated (not reused from the cache)
	CacheN      int // prompt tokens reused from the cache
	PromptMS    float64
	PredictedN  int
	PredictedMS float64
	QueueMS     float64 // time spent waiting for a slot
	TTFTMS      float64 // submission to the first generated token (or prompt end)
}

// stream is an unbounded, mutex-protected event list between the scheduler
// (producer, never blocks) and one handler (consumer). Several streams of one
// request share a notify channel.
type stream struct {
	mu     sync.Mutex
	events []event
	notify chan struct{} // capacity 1
}

func (st *stream) push(ev event) {
	st.mu.Lock()
	st.events = append(st.events, ev)
	st.mu.Unlock()
	select {
	case st.notify <- struct{}{}:
	default:
	}
}

// drain returns the pending events and clears the list.
func (st *stream) drain() []event {
	st.mu.Lock()
	evs := st.events
	st.events = nil
	st.mu.Unlock()
	return evs
}

// job is one sequence to generate.
type job struct {
	ctx       context.Context // cancelled when the client goes away
	prompt    []int32
	maxTokens int // -1 = until EOG or the context is full
	reserve   int // KV positions reserved: min(len(prompt)+maxTokens, maxSeqLen)
	params    SamplingParams
	stops     []string
	ignoreEOS bool
	// cachePrompt lets the job reuse the longest common prefix of its
	// prompt that a slot's cache still holds from an earlier request.
	cachePrompt bool
	logprobs    int // -1: none; n >= 0: report logprobs with n alternatives
	// Reasoning budget: when inThink and budget >= 0, thinkEnd is forced
	// after budget generated tokens.
	inThink  bool
	budget   int
	thinkEnd []int32
	out      *stream

	submitted time.Time
}

// slot is a sequence being processed; owned by the scheduler goroutine.
type slot struct {
	j        *job
	cache    Cache
	cacheCap int
	sampler  Sampler
	decoder  TokenDecoder
	fed      int   // prompt tokens already in the cache
	cached   int   // prompt tokens reused from the slot's previous request
	next     int32 // sampled token to feed at the next step
	nGen     int
	held     string // text held back because it may start a stop string
	forced   []int32
	inThink  bool
	admitted time.Time
	tPrompt  time.Time      // prompt fully evaluated
	reported int            // tokens already reported in events
	lps      []tokenLogprob // logprobs of tokens not yet reported
}

// scheduler runs the continuous-batching loop.
type scheduler struct {
	eng       Engine
	maxSlots  int
	maxSeqLen int
	kvBudget  int // total KV positions all active slots may reserve
	uBatch    int // tokens per forward pass (decode tokens always fit)
	maxQueue  int
	met       *metrics
	eogIDs    []int32

	mu       sync.Mutex
	queue    []*job
	quitting bool
	wake     chan struct{} // capacity 1
	quit     chan struct{}
	done     chan struct{}

	// snap is the slots' state for /slots, refreshed every loop.
	snapMu sync.Mutex
	snap   []SlotState

	// Scheduler-goroutine state.
	slots  []*slot // len maxSlots; nil = free
	caches []Cache // per slot index, kept for reuse
	capOf  []int
	// cachedToks[i] are the tokens caches[i] holds, in order (nil when unknown,
	// e.g. after a failed pass); they let a later request reuse a prefix.
	cachedToks [][]int32
}

// truncater is implemented by caches that can drop their tail, which prompt
// caching needs.
type truncater interface {
	Truncate(n int) error
}

func newScheduler(eng Engine, maxSlots, maxSeqLen, kvBudget, uBatch, maxQueue int, met *metrics) *scheduler {
	s := &scheduler{
		eng: eng, maxSlots: maxSlots, maxSeqLen: maxSeqLen, kvBudget: kvBudget,
		uBatch: max(uBatch, 1), maxQueue: maxQueue, met: met,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		slots: make([]*slot, maxSlots), caches: make([]Cache, maxSlots), capOf: make([]int, maxSlots),
		cachedToks: make([][]int32, maxSlots),
	}
	for id := 0; id < eng.VocabSize(); id++ {
		if eng.IsEOG(int32(id)) {
			s.eogIDs = append(s.eogIDs, int32(id))
		}
	}
	return s
}

// submitAll queues several jobs atomically (all or none). It fails with
// errQueueFull when they do not fit beside the maxQueue jobs that already
// wait (jobs whose client has gone are dropped first, so they never cause
// a 503), and with errShuttingDown after stop.
func (s *scheduler) submitAll(js []*job) *apiError {
	s.mu.Lock()
	if s.quitting {
		s.mu.Unlock()
		return errShuttingDown
	}
	if len(s.queue)+len(js) > s.maxQueue {
		s.dropCancelled()
	}
	if len(s.queue)+len(js) > s.maxQueue {
		s.mu.Unlock()
		s.met.queueRejected()
		return errQueueFull
	}
	now := time.Now()
	for _, j := range js {
		j.submitted = now
		s.queue = append(s.queue, j)
	}
	s.met.setDeferred(len(s.queue))
	s.mu.Unlock()
	s.poke()
	return nil
}

func (s *scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// stop makes run return once every queued and active job has finished.
// New submissions are refused from now on.
func (s *scheduler) stop() {
	s.mu.Lock()
	if !s.quitting {
		s.quitting = true
		close(s.quit)
	}
	s.mu.Unlock()
	<-s.done
}

// run is the scheduler goroutine.
func (s *scheduler) run() {
	defer close(s.done)
	for {
		s.reapCancelled()
		s.admit()
		active := s.nActive()
		s.met.setProcessing(active)
		s.publish()
		if active == 0 {
			s.mu.Lock()
			idle := len(s.queue) == 0
			quitting := s.quitting
			s.mu.Unlock()
			if idle && quitting {
				return
			}
			if !idle {
				continue // submitted after admit looked: admit it now
			}
			select {
			case <-s.wake:
			case <-s.quit:
			}
			continue
		}
		s.step()
	}
}

func (s *scheduler) nActive() int {
	n := 0
	for _, sl := range s.slots {
		if sl != nil {
			n++
		}
	}
	return n
}

func (s *scheduler) reserved() int {
	r := 0
	for _, sl := range s.slots {
		if sl != nil {
			r += sl.j.reserve
		}
	}
	return r
}

// reapCancelled frees the slots of jobs whose client went away.
func (s *scheduler) reapCancelled() {
	for i, sl := range s.slots {
		if sl != nil && sl.j.ctx.Err() != nil {
			s.met.cancelled()
			s.free(i)
		}
	}
}

// dropCancelled removes queued jobs whose request context is done. The
// caller holds s.mu.
func (s *scheduler) dropCancelled() {
	live := s.queue[:0]
	for _, j := range s.queue {
		if j.ctx.Err() != nil {
			s.met.cancelled()
			continue
		}
		live = append(live, j)
	}
	clear(s.queue[len(live):])
	s.queue = live
}

// admit moves queued jobs into free slots, in FIFO order, while their KV
// reservation fits.
func (s *scheduler) admit() {
	s.mu.Lock()
	defer func() {
		s.met.setDeferred(len(s.queue))
		s.mu.Unlock()
	}()
	for len(s.queue) > 0 {
		j := s.queue[0]
		if j.ctx.Err() != nil {
			s.queue = s.queue[1:]
			s.met.cancelled()
			continue
		}
		free := s.pickSlot(j)
		if free < 0 || s.reserved()+j.reserve > s.kvBudget {
			if s.nActive() > 0 {
				return // wait for a slot or KV room to free up
			}
			// Every slot is free and it still does not fit: it never will.
			// Answer it rather than block the queue.
			s.queue[0] = nil
			s.queue = s.queue[1:]
			j.out.push(event{Done: true, Err: fmt.Errorf("the request needs %d KV positions; the server has %d", j.reserve, s.kvBudget)})
			s.met.computeFailed()
			continue
		}
		s.queue[0] = nil
		s.queue = s.queue[1:]
		if err := s.start(free, j); err != nil {
			j.out.push(event{Done: true, Err: err})
			s.met.computeFailed()
		}
	}
}

// pickSlot returns the free slot whose cache shares the longest prefix with
// j's prompt (the lowest free index when none does), or -1.
func (s *scheduler) pickSlot(j *job) int {
	best, bestN := -1, -1
	for i, sl := range s.slots {
		if sl != nil {
			continue
		}
		n := 0
		if j.cachePrompt && s.caches[i] != nil && s.capOf[i] >= j.reserve {
			n = commonPrefix(s.cachedToks[i], j.prompt)
		}
		if n > bestN {
			best, bestN = i, n
		}
	}
	return best
}

func commonPrefix(a, b []int32) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// start binds j to slot i: a cache with room for its reservation (keeping
// the longest prefix of the prompt it already holds, when allowed), a
// sampler and a decoder.
func (s *scheduler) start(i int, j *job) error {
	reuse := 0
	if s.caches[i] == nil || s.capOf[i] < j.reserve {
		// Each slot gets one cache of maxSeqLen positions, allocated on
		// first use and kept for the server's life (as llama-server's
		// slots), so that no cache is ever replaced: device caches have no
		// explicit free, and memory stays flat.
		c := max(s.maxSeqLen, j.reserve)
		s.caches[i], s.cachedToks[i] = nil, nil
		cache, err := s.eng.NewCache(c)
		if err != nil {
			s.capOf[i] = 0
			return fmt.Errorf("allocating a KV cache of %d tokens: %w", c, err)
		}
		s.caches[i], s.capOf[i] = cache, c
	} else {
		if tr, ok := s.caches[i].(truncater); ok && j.cachePrompt && s.cachedToks[i] != nil {
			// Keep at least one prompt token to evaluate: its logits start
			// the generation.
			reuse = min(commonPrefix(s.cachedToks[i], j.prompt), len(j.prompt)-1)
			if reuse > 0 && tr.Truncate(reuse) != nil {
				reuse = 0
			}
		}
		if reuse == 0 {
			s.caches[i].Reset()
		}
	}
	if s.cachedToks[i] == nil {
		s.cachedToks[i] = make([]int32, 0, len(j.prompt))
	}
	s.cachedToks[i] = append(s.cachedToks[i][:0], j.prompt[:reuse]...)
	smp, err := s.eng.NewSampler(j.params, j.prompt)
	if err != nil {
		return fmt.Errorf("creating the sampler: %w", err)
	}
	s.slots[i] = &slot{
		j: j, cache: s.caches[i], cacheCap: s.capOf[i], sampler: smp, decoder: s.eng.NewDecoder(),
		inThink: j.inThink, admitted: time.Now(), fed: reuse, cached: reuse,
	}
	return nil
}

func (s *scheduler) free(i int) {
	s.slots[i] = nil
}

// step runs one batched forward pass and processes its logits.
func (s *scheduler) step() {
	var (
		idx    []int
		caches []Cache
		toks   [][]int32
		nPre   []int // prompt tokens in this batch per entry (0 for decode)
	)
	budget := s.uBatch
	// Decode tokens first: a generating slot always advances.
	for i, sl := range s.slots {
		if sl != nil && sl.fed == len(sl.j.prompt) {
			idx, caches, toks, nPre = append(idx, i), append(caches, sl.cache), append(toks, []int32{sl.next}), append(nPre, 0)
			budget--
		}
	}
	// Then prefill chunks, oldest admission first.
	for budget > 0 {
		best := -1
		for i, sl := range s.slots {
			if sl == nil || sl.fed == len(sl.j.prompt) || contains(idx, i) {
				continue
			}
			if best < 0 || sl.admitted.Before(s.slots[best].admitted) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		sl := s.slots[best]
		n := min(len(sl.j.prompt)-sl.fed, budget)
		idx, caches, toks, nPre = append(idx, best), append(caches, sl.cache), append(toks, sl.j.prompt[sl.fed:sl.fed+n]), append(nPre, n)
		budget -= n
	}
	if len(idx) == 0 {
		return
	}
	nTokens := 0
	for _, t := range toks {
		nTokens += len(t)
	}
	t0 := time.Now()
	logits, err := s.forward(caches, toks)
	dt := time.Since(t0)
	s.met.decoded(len(idx), nTokens)
	if err == nil && len(logits) != len(idx) {
		err = fmt.Errorf("the engine returned %d logits rows for %d sequences", len(logits), len(idx))
	}
	if err != nil {
		for _, i := range idx {
			s.cachedToks[i] = nil // the cache's contents are unknown now
			s.slots[i].j.out.push(event{Done: true, Err: err})
			s.met.computeFailed()
			s.free(i)
		}
		return
	}
	var picks []pick
	for k, i := range idx {
		sl := s.slots[i]
		if s.cachedToks[i] != nil {
			s.cachedToks[i] = append(s.cachedToks[i], toks[k]...)
		}
		s.met.maxTokens(sl.cache.Len())
		if nPre[k] > 0 {
			sl.fed += nPre[k]
			s.met.promptProcessed(nPre[k], dt.Seconds()*float64(nPre[k])/float64(nTokens))
			if sl.fed < len(sl.j.prompt) {
				continue
			}
			sl.tPrompt = time.Now()
			if sl.j.maxTokens == 0 {
				s.finish(i, finishLength)
				continue
			}
		}
		picks = append(picks, pick{i, logits[k]})
	}
	s.sampleAll(picks)
}

// pick is a slot whose next token is to be sampled from logits.
type pick struct {
	slot   int
	logits []float32
}

// parallelSampleVocab is the vocabulary size from which the slots of a step
// are sampled in parallel: over GLM-4.7-Flash's 154880 logits one draw costs
// on the order of a millisecond, which eight slots in series would add to
// every step; even over glm-tiny's 2304 a draw with the default chain (top-k
// heap, penalties) costs ~0.1 ms, far more than starting a goroutine.
const parallelSampleVocab = 1024

// sampleAll samples every pick; each touches only its own slot, job and
// stream (metrics are locked), so they may run concurrently.
func (s *scheduler) sampleAll(picks []pick) {
	if len(picks) < 2 || s.eng.VocabSize() < parallelSampleVocab {
		for _, p := range picks {
			s.sampleNext(p.slot, p.logits)
		}
		return
	}
	if pr, ok := s.eng.(ParallelRunner); ok {
		pr.ForEach(len(picks), func(k int) { s.sampleNext(picks[k].slot, picks[k].logits) })
		return
	}
	var wg sync.WaitGroup
	for _, p := range picks[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.sampleNext(p.slot, p.logits)
		}()
	}
	s.sampleNext(picks[0].slot, picks[0].logits)
	wg.Wait()
}

// forward calls the engine, turning a panic into an error so that one bad
// batch cannot take the server down.
func (s *scheduler) forward(caches []Cache, toks [][]int32) (out [][]float32, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("forward pass panicked: %v", r)
		}
	}()
	return s.eng.ForwardBatch(caches, toks)
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// sampleNext picks slot i's next token from logits and reports its text.
func (s *scheduler) sampleNext(i int, logits []float32) {
	sl := s.slots[i]
	j := sl.j
	if len(sl.forced) == 0 && sl.inThink && j.budget >= 0 && sl.nGen >= j.budget && len(j.thinkEnd) > 0 {
		sl.forced = append(sl.forced, j.thinkEnd...)
	}
	if len(logits) != s.eng.VocabSize() {
		s.fail(i, fmt.Errorf("logits row has %d values, want %d", len(logits), s.eng.VocabSize()))
		return
	}
	var lse float64
	var raw []float32 // the logits before the sampler may change them
	if j.logprobs >= 0 {
		lse = logSumExp(logits)
		raw = append([]float32(nil), logits...)
	}
	var top []idLogprob
	if j.logprobs > 0 {
		top = topLogprobs(logits, j.logprobs, lse)
	}
	var tok int32
	if len(sl.forced) > 0 {
		tok, sl.forced = sl.forced[0], sl.forced[1:]
	} else {
		if j.ignoreEOS {
			for _, id := range s.eogIDs {
				logits[id] = float32(math.Inf(-1))
			}
		}
		var err error
		tok, err = sl.sampler.Sample(logits)
		if err == nil && (tok < 0 || int(tok) >= s.eng.VocabSize()) {
			err = fmt.Errorf("sampler returned token %d outside the vocabulary", tok)
		}
		if err != nil {
			s.fail(i, err)
			return
		}
	}
	sl.nGen++
	s.met.predicted(1)
	if raw != nil && !(s.eng.IsEOG(tok) && !j.ignoreEOS) {
		sl.lps = append(sl.lps, tokenLogprob{ID: tok, Logprob: float32(float64(raw[tok]) - lse), Top: top})
	}
	if sl.nGen == 1 {
		s.met.firstToken(time.Since(j.submitted))
	}
	if sl.inThink && len(j.thinkEnd) > 0 && tok == j.thinkEnd[len(j.thinkEnd)-1] {
		sl.inThink = false
	}
	if !j.ignoreEOS && s.eng.IsEOG(tok) {
		s.finish(i, finishStop)
		return
	}
	text := sl.held + sl.decoder.Add(tok)
	sl.held = ""
	if cut, ok := findStop(text, j.stops); ok {
		s.emit(sl, text[:cut])
		s.finishWith(i, finishStop, false)
		return
	}
	keep := stopPrefixLen(text, j.stops)
	s.emit(sl, text[:len(text)-keep])
	sl.held = text[len(text)-keep:]

	if j.maxTokens >= 0 && sl.nGen >= j.maxTokens {
		s.finish(i, finishLength)
		return
	}
	if len(j.prompt)+sl.nGen >= min(s.maxSeqLen, sl.cacheCap) {
		s.finish(i, finishLength)
		return
	}
	sl.next = tok
}

// emit reports text and the tokens generated since the last report.
func (s *scheduler) emit(sl *slot, text string) {
	n := sl.nGen - sl.reported
	if text == "" && n == 0 {
		return
	}
	sl.reported = sl.nGen
	sl.j.out.push(event{Text: text, Tokens: n, Logprobs: sl.lps})
	sl.lps = nil
}

// finish ends slot i's generation normally. Unless a stop string ended it,
// text still held back (a partial stop-string match, incomplete UTF-8) is
// real output and is reported first.
func (s *scheduler) finish(i int, reason string) {
	s.finishWith(i, reason, true)
}

func (s *scheduler) finishWith(i int, reason string, flushTail bool) {
	sl := s.slots[i]
	if flushTail {
		tail := sl.held + sl.decoder.Flush()
		if cut, ok := findStop(tail, sl.j.stops); ok {
			tail, reason = tail[:cut], finishStop
		}
		if tail != "" {
			sl.j.out.push(event{Text: tail})
		}
	}
	sl.held = ""
	now := time.Now()
	tm := timings{
		PromptN:    len(sl.j.prompt) - sl.cached,
		CacheN:     sl.cached,
		PredictedN: sl.nGen,
		QueueMS:    ms(sl.admitted.Sub(sl.j.submitted)),
	}
	if !sl.tPrompt.IsZero() {
		tm.PromptMS = ms(sl.tPrompt.Sub(sl.admitted))
		tm.PredictedMS = ms(now.Sub(sl.tPrompt))
	}
	sl.j.out.push(event{Done: true, Finish: reason, Tokens: sl.nGen - sl.reported, Timings: tm, Logprobs: sl.lps})
	s.met.completed(now.Sub(sl.j.submitted), sl.nGen, tm.PredictedMS/1e3)
	s.free(i)
}

// fail ends slot i's generation with err.
func (s *scheduler) fail(i int, err error) {
	s.slots[i].j.out.push(event{Done: true, Err: err})
	s.met.computeFailed()
	s.free(i)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }

// findStop returns the index of the earliest stop-string match in text.
func findStop(text string, stops []string) (int, bool) {
	best := -1
	for _, st := range stops {
		if k := strings.Index(text, st); k >= 0 && (best < 0 || k < best) {
			best = k
		}
	}
	return best, best >= 0
}

// stopPrefixLen is the length of the longest suffix of text that is a proper
// prefix of some stop string (text that must be held back until decided).
func stopPrefixLen(text string, stops []string) int {
	keep := 0
	for _, st := range stops {
		for n := min(len(st)-1, len(text)); n > keep; n-- {
			if strings.HasSuffix(text, st[:n]) {
				keep = n
				break
			}
		}
	}
	return keep
}

// logSumExp is log(sum(exp(x))), computed stably in float64.
func logSumExp(x []float32) float64 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	if math.IsInf(float64(m), -1) {
		return math.Inf(-1)
	}
	var sum float64
	for _, v := range x {
		sum += math.Exp(float64(v - m))
	}
	return float64(m) + math.Log(sum)
}

// topLogprobs returns the n largest logits as log-probabilities, largest
// first (ties: lower id first).
func topLogprobs(x []float32, n int, lse float64) []idLogprob {
	n = min(n, len(x))
	top := make([]idLogprob, 0, n+1)
	for id, v := range x {
		if len(top) == n && v <= top[n-1].Logprob {
			continue
		}
		k := len(top)
		if k < n {
			top = append(top, idLogprob{})
		} else {
			k = n - 1
		}
		for k > 0 && top[k-1].Logprob < v {
			top[k] = top[k-1]
			k--
		}
		top[k] = idLogprob{ID: int32(id), Logprob: v}
	}
	for i := range top {
		top[i].Logprob = float32(float64(top[i].Logprob) - lse)
	}
	return top
}

// SlotState is one slot as GET /slots reports it.
type SlotState struct {
	ID           int  `json:"id"`
	IsProcessing bool `json:"is_processing"`
	NCtx         int  `json:"n_ctx"`           // positions the slot's cache can hold
	NPrompt      int  `json:"n_prompt_tokens"` // prompt of the request in the slot
	NCached      int  `json:"n_cached_tokens"` // prompt tokens reused from the cache
	NDecoded     int  `json:"n_decoded"`       // tokens generated so far
	NPast        int  `json:"n_past"`          // positions in the cache
}

// publish refreshes the /slots snapshot (scheduler goroutine).
func (s *scheduler) publish() {
	snap := make([]SlotState, len(s.slots))
	for i, sl := range s.slots {
		st := SlotState{ID: i, NCtx: s.capOf[i]}
		if s.caches[i] != nil {
			st.NPast = s.caches[i].Len()
		}
		if sl != nil {
			st.IsProcessing = true
			st.NPrompt, st.NCached, st.NDecoded = len(sl.j.prompt), sl.cached, sl.nGen
		}
		snap[i] = st
	}
	s.snapMu.Lock()
	s.snap = snap
	s.snapMu.Unlock()
}

// slotStates returns the latest /slots snapshot.
func (s *scheduler) slotStates() []SlotState {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	if s.snap == nil {
		return make([]SlotState, 0)
	}
	return s.snap
}
