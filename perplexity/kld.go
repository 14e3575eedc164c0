package perplexity

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"
)

// The base-logits file is llama.cpp's --kl-divergence-base layout:
//
//	"_logits_" | u32 n_ctx | i32 n_vocab | i32 n_chunk | i32 tokens[n_ctx*n_chunk]
//	then, per chunk, per scored position (n_ctx - 1 - n_ctx/2 of them), a row of
//	nv = 2*ceil(n_vocab/2) + 4 uint16: f32 scale, f32 min_log_prob, then the
//	log-probabilities quantized as q = round((logit - min_logit)/scale),
//	logprob = scale*q + min_log_prob, min_logit = max(min(logits), max-16).
//
// glmperplexity stores it inside a zstd stream (GLM's 154880-token vocabulary
// makes it ~79 MB per chunk otherwise); ReadBase accepts both forms.
const baseMagic = "_logits_"

// rowLen is nv, the uint16 count of one stored row.
func rowLen(nVocab int) int { return 2*((nVocab+1)/2) + 4 }

type baseWriter struct {
	w      io.Writer
	nVocab int
	buf    []byte
}

func (b *baseWriter) header(nCtx uint32, nChunk int32, tokens []int32) error {
	h := []byte(baseMagic)
	h = binary.LittleEndian.AppendUint32(h, nCtx)
	h = binary.LittleEndian.AppendUint32(h, uint32(int32(b.nVocab)))
	h = binary.LittleEndian.AppendUint32(h, uint32(nChunk))
	for _, t := range tokens {
		h = binary.LittleEndian.AppendUint32(h, uint32(t))
	}
	_, err := b.w.Write(h)
	return err
}

// chunk quantizes and writes the log-probabilities of n scored rows and
// returns Σnll, Σnll².
func (b *baseWriter) chunk(logits []float32, next []int32, n int) (float64, float64, error) {
	nv := rowLen(b.nVocab)
	if cap(b.buf) < n*nv*2 {
		b.buf = make([]byte, n*nv*2)
	}
	buf := b.buf[:n*nv*2]
	clear(buf)
	nll := make([]float64, n)
	parallelRows(n, func(i int) {
		row := logits[i*b.nVocab : (i+1)*b.nVocab]
		nll[i] = float64(quantizeLogProbs(row, buf[i*nv*2:(i+1)*nv*2], next[i]))
	})
	var s, s2 float64
	for _, v := range nll {
		s += v
		s2 += v * v
	}
	_, err := b.w.Write(buf)
	return s, s2, err
}

// quantizeLogProbs fills dst (nv uint16, little-endian) as llama.cpp's
// log_softmax(n_vocab, logits, log_prob, tok) does and returns the nll of tok.
func quantizeLogProbs(logits []float32, dst []byte, tok int32) float32 {
	maxL, minL := logits[0], logits[0]
	for _, x := range logits[1:] {
		maxL = max(maxL, x)
		minL = min(minL, x)
	}
	minL = max(minL, maxL-16)
	var sum float64
	for _, x := range logits {
		sum += float64(float32(math.Exp(float64(x - maxL))))
	}
	lse := float32(math.Log(sum))
	minLogProb := minL - maxL - lse
	scale := (maxL - minL) / 65535
	binary.LittleEndian.PutUint32(dst[0:], math.Float32bits(scale))
	binary.LittleEndian.PutUint32(dst[4:], math.Float32bits(minLogProb))
	q := dst[8:]
	if scale != 0 {
		inv := 1 / scale
		for i, x := range logits {
			var v uint16
			if x > minL {
				v = uint16(nearestInt(inv * (x - minL)))
			}
			binary.LittleEndian.PutUint16(q[2*i:], v)
		}
	}
	return maxL + lse - logits[tok]
}

// nearestInt rounds half to even like ggml's nearest_int (valid for |x| < 2^22).
func nearestInt(x float32) int32 {
	return int32(math.RoundToEven(float64(x)))
}

// Base is a reader of a base-logits file.
type Base struct {
	NCtx   int
	NVocab int
	NChunk int
	Tokens []int32 // NCtx*NChunk evaluation tokens
	r      *bufio.Reader
}

// ReadBase reads the header of a base-logits file (raw or zstd-wrapped; the
// caller passes the decompressed stream) and leaves r at the first row.
func ReadBase(r io.Reader) (*Base, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var hdr [20]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, fmt.Errorf("base logits: reading header: %w", err)
	}
	if string(hdr[:8]) != baseMagic {
		return nil, errors.New("base logits: file does not look like a file containing log-probabilities (no _logits_ magic)")
	}
	b := &Base{
		NCtx:   int(binary.LittleEndian.Uint32(hdr[8:])),
		NVocab: int(int32(binary.LittleEndian.Uint32(hdr[12:]))),
		NChunk: int(int32(binary.LittleEndian.Uint32(hdr[16:]))),
		r:      br,
	}
	if b.NCtx < 4 || b.NCtx > 1<<24 || b.NVocab <= 0 || b.NVocab > 1<<24 || b.NChunk <= 0 || b.NChunk > 1<<20 {
		return nil, fmt.Errorf("base logits: implausible header n_ctx=%d n_vocab=%d n_chunk=%d", b.NCtx, b.NVocab, b.NChunk)
	}
	n := b.NCtx * b.NChunk
	if n > 1<<28 {
		return nil, fmt.Errorf("base logits: %d tokens is too many", n)
	}
	raw := make([]byte, 4*n)
	if _, err := io.ReadFull(br, raw); err != nil {
		return nil, fmt.Errorf("base logits: reading %d evaluation tokens: %w", n, err)
	}
	b.Tokens = make([]int32, n)
	for i := range b.Tokens {
		b.Tokens[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
		if b.Tokens[i] < 0 || int(b.Tokens[i]) >= b.NVocab {
			return nil, fmt.Errorf("base logits: token %d at position %d is outside the vocabulary of %d", b.Tokens[i], i, b.NVocab)
		}
	}
	return b, nil
}

// klStats accumulates llama.cpp's kl_divergence_result.
type klStats struct {
	sumNLL, sumNLL2, sumNLLBase, sumNLLBase2, sumNLLNLLBase float64
	sumKLD, sumKLD2                                         float64
	sumPDiff, sumPDiff2, sumPDiff4                          float64
	maxPDiff                                                float32
	nSameTop, count                                         int
}

type tokenKL struct {
	nll, nllBase float32
	kld          float64
	pDiff        float32
	sameTop      bool
}

// klToken compares one row of logits with a stored base row (as llama.cpp's
// log_softmax(n_vocab, logits, base_log_prob, tok, kld)).
func klToken(logits []float32, base []byte, tok int32) tokenKL {
	maxL := logits[0]
	imax := 0
	for i, x := range logits[1:] {
		if x > maxL {
			maxL = x
			imax = i + 1
		}
	}
	var sum float64
	for _, x := range logits {
		sum += float64(float32(math.Exp(float64(x - maxL))))
	}
	lse := float32(math.Log(sum))
	scale := math.Float32frombits(binary.LittleEndian.Uint32(base[0:]))
	minLogProb := math.Float32frombits(binary.LittleEndian.Uint32(base[4:]))
	q := base[8:]
	logp := func(i int) float32 { return scale*float32(binary.LittleEndian.Uint16(q[2*i:])) + minLogProb }
	var t tokenKL
	t.nll = maxL + lse - logits[tok]
	t.nllBase = -logp(int(tok))
	maxL += lse
	imaxBase := -1
	var pMax float32
	for i := range logits {
		pl := logp(i)
		if i == 0 || pl > pMax {
			pMax = pl
			imaxBase = i
		}
		if pl > -16 {
			pb := float32(math.Exp(float64(pl)))
			t.kld += float64(pb * (pl - logits[i] + maxL))
		}
	}
	t.sameTop = imax == imaxBase
	pBase := float32(math.Exp(float64(-t.nllBase)))
	p := float32(math.Exp(float64(-t.nll)))
	t.pDiff = p - pBase
	return t
}

func (s *klStats) add(t tokenKL) {
	nll, nb := float64(t.nll), float64(t.nllBase)
	s.sumNLL += nll
	s.sumNLL2 += float64(t.nll * t.nll)
	s.sumNLLBase += nb
	s.sumNLLBase2 += float64(t.nllBase * t.nllBase)
	s.sumNLLNLLBase += float64(t.nll * t.nllBase)
	s.sumKLD += t.kld
	s.sumKLD2 += t.kld * t.kld
	pd := float64(t.pDiff)
	s.sumPDiff += pd
	pd2 := float64(t.pDiff * t.pDiff)
	s.sumPDiff2 += pd2
	s.sumPDiff4 += pd2 * pd2
	s.maxPDiff = max(s.maxPDiff, float32(math.Abs(pd)))
	if t.sameTop {
		s.nSameTop++
	}
	s.count++
}

func meanUnc(sum, sum2 float64, n int) (float64, float64) {
	if n < 1 {
		return 0, 0
	}
	f := sum / float64(n)
	df := sum2/float64(n) - f*f
	if df > 0 && n > 10 {
		df = math.Sqrt(df / float64(n-1))
	} else {
		df = 0
	}
	return f, df
}

func covariance(a, b, ab float64, n int) float64 {
	if n < 10 {
		return 0
	}
	v := ab/float64(n) - (a/float64(n))*(b/float64(n))
	return v / float64(n-1)
}

// KLResult is the summary of a KL-divergence run.
type KLResult struct {
	MeanKLD, MeanKLDUnc float64
	MedianKLD, MaxKLD   float64
	SameTop             float64 // fraction of tokens whose argmax agrees
	PPL, PPLBase        float64
	PPLRatio            float64 // PPL(Q)/PPL(base)
	Count               int
	Seconds             float64
}

// CompareBase evaluates every chunk of base with ev and prints
// llama-perplexity's --kl-divergence table and summary to out. maxCtx is
// the largest chunk the caller's context holds: a base file computed with a
// larger n_ctx is refused (as llama-perplexity asks for -c >= the file's).
func CompareBase(ev Evaluator, base *Base, maxCtx int, out, log io.Writer) (KLResult, error) {
	if ev.VocabSize() != base.NVocab {
		return KLResult{}, fmt.Errorf("inconsistent vocabulary: the base file has %d tokens, the model %d", base.NVocab, ev.VocabSize())
	}
	if base.NCtx > maxCtx {
		return KLResult{}, fmt.Errorf("the base file was computed with a context of %d tokens, larger than the current context %d: increase it with -c", base.NCtx, maxCtx)
	}
	nCtx, nVocab := base.NCtx, base.NVocab
	first := nCtx / 2
	nScored := nCtx - 1 - first
	nv := rowLen(nVocab)
	rows := make([]byte, nScored*nv*2)
	kldVals := make([]float32, 0, nScored*base.NChunk)
	pDiffVals := make([]float32, 0, nScored*base.NChunk)
	var st klStats
	start := time.Now()
	fmt.Fprintf(log, "kl_divergence: computing over %d chunks, n_ctx=%d\n", base.NChunk, nCtx)
	for i := 0; i < base.NChunk; i++ {
		t0 := time.Now()
		chunk := base.Tokens[i*nCtx : (i+1)*nCtx]
		logits, err := ev.ChunkLogits(chunk, first)
		if err != nil {
			return KLResult{}, fmt.Errorf("chunk %d: %w", i+1, err)
		}
		if len(logits) != (nCtx-first)*nVocab {
			return KLResult{}, fmt.Errorf("chunk %d: evaluator returned %d logits, want %d", i+1, len(logits), (nCtx-first)*nVocab)
		}
		if _, err := io.ReadFull(base.r, rows); err != nil {
			return KLResult{}, fmt.Errorf("failed reading log-probs for chunk %d: %w", i+1, err)
		}
		if i == 0 {
			printETA(log, time.Since(t0).Seconds(), base.NChunk, 1)
			fmt.Fprintln(out)
			fmt.Fprintln(out, "chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p")
		}
		res := make([]tokenKL, nScored)
		next := chunk[first+1:]
		parallelRows(nScored, func(k int) {
			res[k] = klToken(logits[k*nVocab:(k+1)*nVocab], rows[k*nv*2:(k+1)*nv*2], next[k])
		})
		for _, t := range res {
			st.add(t)
			kldVals = append(kldVals, float32(t.kld))
			pDiffVals = append(pDiffVals, t.pDiff)
		}
		printKLRow(out, i+1, &st)
	}
	fmt.Fprintln(out)
	r := summary(&st)
	r.Seconds = time.Since(start).Seconds()
	if st.count >= 100 {
		printKLSummary(out, &st, kldVals, pDiffVals)
	}
	sort.Slice(kldVals, func(a, b int) bool { return kldVals[a] < kldVals[b] })
	r.MedianKLD = float64(median(kldVals))
	r.MaxKLD = float64(kldVals[len(kldVals)-1])
	return r, nil
}

func summary(st *klStats) KLResult {
	lp, _ := meanUnc(st.sumNLL, st.sumNLL2, st.count)
	lb, _ := meanUnc(st.sumNLLBase, st.sumNLLBase2, st.count)
	k, ku := meanUnc(st.sumKLD, st.sumKLD2, st.count)
	return KLResult{
		MeanKLD: k, MeanKLDUnc: ku,
		SameTop: float64(st.nSameTop) / float64(st.count),
		PPL:     math.Exp(lp), PPLBase: math.Exp(lb), PPLRatio: math.Exp(lp - lb),
		Count: st.count,
	}
}

func printKLRow(out io.Writer, chunk int, st *klStats) {
	fmt.Fprintf(out, "%4d", chunk)
	lp, lpu := meanUnc(st.sumNLL, st.sumNLL2, st.count)
	ppl := math.Exp(lp)
	fmt.Fprintf(out, "    %9.4f ± %9.4f", ppl, ppl*lpu)
	lb, lbu := meanUnc(st.sumNLLBase, st.sumNLLBase2, st.count)
	cov := covariance(st.sumNLL, st.sumNLLBase, st.sumNLLNLLBase, st.count)
	fmt.Fprintf(out, "    %10.5f ± %10.5f", lp-lb, math.Sqrt(lpu*lpu+lbu*lbu-2*cov))
	k, ku := meanUnc(st.sumKLD, st.sumKLD2, st.count)
	fmt.Fprintf(out, "    %10.5f ± %10.5f", k, ku)
	mse, mseu := meanUnc(st.sumPDiff2, st.sumPDiff4, st.count)
	rms := math.Sqrt(mse)
	fmt.Fprintf(out, "    %6.3f ± %6.3f %%", 100*rms, 100*0.5/rms*mseu)
	top := float64(st.nSameTop) / float64(st.count)
	fmt.Fprintf(out, "    %6.3f ± %6.3f %%", 100*top, 100*math.Sqrt(top*(1-top)/float64(st.count-1)))
	fmt.Fprintln(out)
}

func median(v []float32) float32 {
	n := len(v)
	if n%2 == 0 {
		return 0.5 * (v[n/2] + v[n/2-1])
	}
	return v[n/2]
}

// percentile interpolates linearly over sorted v, as llama.cpp does (in float32).
func percentile(v []float32, fraction float32) float32 {
	if fraction <= 0 {
		return v[0]
	}
	if fraction >= 1 {
		return v[len(v)-1]
	}
	p := fraction * float32(len(v)-1)
	ip := int(p)
	p -= float32(ip)
	return (1-p)*v[ip] + p*v[min(ip+1, len(v)-1)]
}

func printKLSummary(out io.Writer, st *klStats, kldVals, pDiffVals []float32) {
	sort.Slice(kldVals, func(a, b int) bool { return kldVals[a] < kldVals[b] })
	sort.Slice(pDiffVals, func(a, b int) bool { return pDiffVals[a] < pDiffVals[b] })
	p := func(format string, a ...any) { fmt.Fprintf(out, format, a...) }

	p("====== Perplexity statistics ======\n")
	lp, lpu := meanUnc(st.sumNLL, st.sumNLL2, st.count)
	ppl := math.Exp(lp)
	pplU := ppl * lpu
	p("Mean PPL(Q)                   : %10.6f ± %10.6f\n", ppl, pplU)
	lb, lbu := meanUnc(st.sumNLLBase, st.sumNLLBase2, st.count)
	pplB := math.Exp(lb)
	pplBU := pplB * lbu
	p("Mean PPL(base)                : %10.6f ± %10.6f\n", pplB, pplBU)
	cov := covariance(st.sumNLL, st.sumNLLBase, st.sumNLLNLLBase, st.count)
	p("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100*cov/(lpu*lbu))
	ratio := lp - lb
	ratioU := math.Sqrt(lpu*lpu + lbu*lbu - 2*cov)
	p("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", ratio, ratioU)
	p("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", math.Exp(ratio), math.Exp(ratio)*ratioU)
	pplCov := ppl * pplB * cov
	p("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n", ppl-pplB, math.Sqrt(pplU*pplU+pplBU*pplBU-2*pplCov))
	p("\n")

	p("====== KL divergence statistics ======\n")
	k, ku := meanUnc(st.sumKLD, st.sumKLD2, st.count)
	p("Mean    KLD: %10.6f ± %10.6f\n", k, ku)
	p("Maximum KLD: %10.6f\n", kldVals[len(kldVals)-1])
	for _, q := range []struct {
		label string
		f     float32
	}{{"99.9%", 0.999}, {"99.0%", 0.990}, {"95.0%", 0.950}, {"90.0%", 0.900}} {
		p("%-5s   KLD: %10.6f\n", q.label, percentile(kldVals, q.f))
	}
	p("Median  KLD: %10.6f\n", median(kldVals))
	for _, q := range []struct {
		label string
		f     float32
	}{{"10.0%", 0.100}, {" 5.0%", 0.050}, {" 1.0%", 0.010}, {" 0.1%", 0.001}} {
		p("%s   KLD: %10.6f\n", q.label, percentile(kldVals, q.f))
	}
	p("Minimum KLD: %10.6f\n", kldVals[0])
	p("\n")

	p("====== Token probability statistics ======\n")
	pd, pdu := meanUnc(st.sumPDiff, st.sumPDiff2, st.count)
	p("Mean    Δp: %6.3f ± %5.3f %%\n", 100*pd, 100*pdu)
	p("Maximum Δp: %6.3f%%\n", 100*pDiffVals[len(pDiffVals)-1])
	for _, q := range []struct {
		label string
		f     float32
	}{{"99.9%", 0.999}, {"99.0%", 0.990}, {"95.0%", 0.950}, {"90.0%", 0.900}, {"75.0%", 0.750}} {
		p("%s   Δp: %6.3f%%\n", q.label, 100*percentile(pDiffVals, q.f))
	}
	p("Median  Δp: %6.3f%%\n", 100*median(pDiffVals))
	for _, q := range []struct {
		label string
		f     float32
	}{{"25.0%", 0.250}, {"10.0%", 0.100}, {" 5.0%", 0.050}, {" 1.0%", 0.010}, {" 0.1%", 0.001}} {
		p("%s   Δp: %6.3f%%\n", q.label, 100*percentile(pDiffVals, q.f))
	}
	p("Minimum Δp: %6.3f%%\n", 100*pDiffVals[0])
	mse, mseu := meanUnc(st.sumPDiff2, st.sumPDiff4, st.count)
	rms := math.Sqrt(mse)
	p("RMS Δp    : %6.3f ± %5.3f %%\n", 100*rms, 100*0.5/rms*mseu)
	top := float64(st.nSameTop) / float64(st.count)
	p("Same top p: %6.3f ± %5.3f %%\n", 100*top, 100*math.Sqrt(top*(1-top)/float64(st.count-1)))
}
