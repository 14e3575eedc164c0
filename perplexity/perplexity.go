// Package perplexity computes llama-perplexity's numbers: perplexity over
// disjoint chunks of a tokenized text, and the KL-divergence statistics
// between a model and a saved reference ("base") run.
//
// The algorithm matches llama.cpp's tools/perplexity exactly so that figures
// can be compared: the text is tokenized once (BOS only if the vocabulary adds
// one, and then it replaces the first token of every chunk), split into
// n_chunk = min(n_tokens/n_ctx, --chunks) windows of n_ctx tokens, each window
// is evaluated from an empty cache, and only positions n_ctx/2 .. n_ctx-2 are
// scored (each predicting the next token). nll = logsumexp(logits) -
// logit[next] in float32 per token, accumulated in float64.
package perplexity

import (
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"
	"time"
)

// Evaluator runs the model for perplexity. ChunkLogits evaluates tokens as one
// sequence from an empty state (positions 0..len-1) and returns the logits of
// positions first..len-1, row-major [len-first][VocabSize()].
type Evaluator interface {
	ChunkLogits(tokens []int32, first int) ([]float32, error)
	VocabSize() int
}

// Options mirror llama-perplexity's flags.
type Options struct {
	NCtx       int   // -c: tokens per chunk
	NBatch     int   // -b: tokens per decode call (reported; evaluation is per chunk)
	Chunks     int   // --chunks: max chunks, < 0 = all
	OutputType int   // --ppl-output-type: 0 = "[i]ppl," list, 1 = one line per chunk
	AddBOS     bool  // vocabulary adds BOS: it replaces each chunk's first token
	BOS        int32 // BOS id when AddBOS
	// Base, when non-nil, receives llama.cpp's "_logits_" data (header,
	// tokens, then quantized log-probabilities of every scored position):
	// --kl-divergence-base. The caller owns compression and closing.
	Base io.Writer
}

// Result is the outcome of a perplexity run.
type Result struct {
	PPL          float64 // exp(mean nll)
	PPLStderr    float64 // PPL * sqrt(var(nll)/(N-1))
	NChunks      int
	TokensScored int
	Seconds      float64
}

// Run computes perplexity over tokens (already tokenized, BOS included when
// the vocabulary adds one). Running values go to out in llama-perplexity's
// format, log lines to log.
func Run(ev Evaluator, tokens []int32, opt Options, out, log io.Writer) (Result, error) {
	nCtx := opt.NCtx
	if nCtx < 4 {
		return Result{}, fmt.Errorf("context size %d is too small (need at least 4)", nCtx)
	}
	if opt.NBatch <= 0 {
		return Result{}, fmt.Errorf("batch size %d must be positive", opt.NBatch)
	}
	if !(opt.NBatch < nCtx || opt.NBatch%nCtx == 0) {
		return Result{}, fmt.Errorf("batch size %d must be smaller than the context %d or a multiple of it", opt.NBatch, nCtx)
	}
	if len(tokens) < 2*nCtx {
		return Result{}, fmt.Errorf("you need at least %d tokens to evaluate perplexity with a context of %d (the data tokenizes to only %d tokens)", 2*nCtx, nCtx, len(tokens))
	}
	nChunk := len(tokens) / nCtx
	if opt.Chunks >= 0 && opt.Chunks < nChunk {
		nChunk = opt.Chunks
	}
	if nChunk == 0 {
		return Result{}, errors.New("no chunks to evaluate (--chunks 0)")
	}
	nVocab := ev.VocabSize()
	nSeq := max(1, opt.NBatch/nCtx)
	first := nCtx / 2
	nScored := nCtx - 1 - first

	var bw *baseWriter
	if opt.Base != nil {
		bw = &baseWriter{w: opt.Base, nVocab: nVocab}
		if err := bw.header(uint32(nCtx), int32(nChunk), tokens[:nChunk*nCtx]); err != nil {
			return Result{}, err
		}
	}

	fmt.Fprintf(log, "perplexity: calculating perplexity over %d chunks, n_ctx=%d, batch_size=%d, n_seq=%d\n", nChunk, nCtx, opt.NBatch, nSeq)
	start := time.Now()
	var nll, nll2 float64
	count := 0
	chunk := make([]int32, nCtx)
	for i := 0; i < nChunk; i++ {
		t0 := time.Now()
		copy(chunk, tokens[i*nCtx:(i+1)*nCtx])
		if opt.AddBOS {
			chunk[0] = opt.BOS
		}
		logits, err := ev.ChunkLogits(chunk, first)
		if err != nil {
			return Result{}, fmt.Errorf("chunk %d: %w", i+1, err)
		}
		if len(logits) != (nCtx-first)*nVocab {
			return Result{}, fmt.Errorf("chunk %d: evaluator returned %d logits, want %d", i+1, len(logits), (nCtx-first)*nVocab)
		}
		if i == 0 {
			// Chunks are evaluated one at a time, so the first chunk's time
			// is the time per chunk.
			printETA(log, time.Since(t0).Seconds(), nChunk, 1)
		}
		next := tokens[i*nCtx+first+1 : (i+1)*nCtx]
		var s, s2 float64
		if bw != nil {
			s, s2, err = bw.chunk(logits, next, nScored)
			if err != nil {
				return Result{}, err
			}
		} else {
			s, s2 = scoreChunk(logits, nVocab, next, nScored)
		}
		nll += s
		nll2 += s2
		count += nScored
		if opt.OutputType == 0 {
			fmt.Fprintf(out, "[%d]%.4f,", i+1, math.Exp(nll/float64(count)))
		} else {
			av := nll / float64(count)
			av2 := nll2/float64(count) - av*av
			if av2 > 0 {
				av2 = math.Sqrt(av2 / float64(count-1))
			}
			fmt.Fprintf(out, "%8d  %.4f  %4f  %4f\n", i*nCtx, math.Exp(nll/float64(count)), av, av2)
		}
	}
	fmt.Fprintln(out)
	mean := nll / float64(count)
	ppl := math.Exp(mean)
	v := nll2/float64(count) - mean*mean
	if v <= 0 {
		return Result{}, errors.New("unexpected negative standard deviation of log(prob)")
	}
	stderr := math.Sqrt(v/float64(count-1)) * ppl
	fmt.Fprintf(out, "Final estimate: PPL = %.4f +/- %.5f\n", ppl, stderr)
	return Result{PPL: ppl, PPLStderr: stderr, NChunks: nChunk, TokensScored: count, Seconds: time.Since(start).Seconds()}, nil
}

func printETA(log io.Writer, perPass float64, nChunk, nSeq int) {
	fmt.Fprintf(log, "perplexity: %.2f seconds per pass - ETA ", perPass)
	total := int(perPass * float64(nChunk) / float64(nSeq))
	if total >= 3600 {
		fmt.Fprintf(log, "%d hours ", total/3600)
		total %= 3600
	}
	fmt.Fprintf(log, "%.2f minutes\n", float64(total)/60)
}

// scoreChunk returns Σnll and Σnll² over n scored rows; row i of logits
// predicts next[i]. Rows are split over goroutines.
func scoreChunk(logits []float32, nVocab int, next []int32, n int) (float64, float64) {
	nll := make([]float64, n)
	parallelRows(n, func(i int) {
		row := logits[i*nVocab : (i+1)*nVocab]
		nll[i] = float64(NLL(row, next[i]))
	})
	var s, s2 float64
	for _, v := range nll {
		s += v
		s2 += v * v
	}
	return s, s2
}

// NLL returns -log softmax(logits)[tok] computed as llama.cpp does:
// max + log(Σ exp(l - max)) - l[tok], exps in float32, their sum in float64.
func NLL(logits []float32, tok int32) float32 {
	m, lse := maxAndLogSumExp(logits)
	return m + lse - logits[tok]
}

// maxAndLogSumExp returns max(l) and log Σ exp(l - max) (float32 exps,
// float64 sum, as llama.cpp's log_softmax).
func maxAndLogSumExp(l []float32) (float32, float32) {
	m := l[0]
	for _, x := range l[1:] {
		m = max(m, x)
	}
	var sum float64
	for _, x := range l {
		sum += float64(float32(math.Exp(float64(x - m))))
	}
	return m, float32(math.Log(sum))
}

// parallelRows calls f(i) for i in [0,n) on GOMAXPROCS goroutines.
func parallelRows(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}
