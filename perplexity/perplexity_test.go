package perplexity

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/glmrun/glmrun/internal/testdata"
)

// randEval returns deterministic pseudo-random logits that depend on the
// chunk's tokens and position, so that two evaluators with different seeds
// or noise act like two different models.
type randEval struct {
	vocab int
	seed  uint64
	noise float32 // extra perturbation scale (0 = the base model)
	calls int
}

func (e *randEval) VocabSize() int { return e.vocab }

func (e *randEval) ChunkLogits(tokens []int32, first int) ([]float32, error) {
	e.calls++
	out := make([]float32, (len(tokens)-first)*e.vocab)
	for p := first; p < len(tokens); p++ {
		var h uint64 = 1469598103934665603
		for _, t := range tokens[:p+1] {
			h = (h ^ uint64(t)) * 1099511628211
		}
		r := rand.New(rand.NewPCG(h, 7))
		rn := rand.New(rand.NewPCG(h, e.seed))
		row := out[(p-first)*e.vocab : (p-first+1)*e.vocab]
		for i := range row {
			row[i] = float32(r.NormFloat64()*3) + e.noise*float32(rn.NormFloat64())
		}
	}
	return out, nil
}

func makeTokens(n, vocab int) []int32 {
	r := rand.New(rand.NewPCG(1, 2))
	t := make([]int32, n)
	for i := range t {
		t[i] = int32(r.IntN(vocab))
	}
	return t
}

// refPPL recomputes perplexity in float64 straight from the definition.
func refPPL(ev Evaluator, tokens []int32, nCtx, nChunk int) float64 {
	var sum float64
	n := 0
	V := ev.VocabSize()
	for c := 0; c < nChunk; c++ {
		chunk := tokens[c*nCtx : (c+1)*nCtx]
		lg, _ := ev.ChunkLogits(chunk, nCtx/2)
		for p := nCtx / 2; p < nCtx-1; p++ {
			row := lg[(p-nCtx/2)*V : (p-nCtx/2+1)*V]
			m := math.Inf(-1)
			for _, x := range row {
				m = math.Max(m, float64(x))
			}
			var s float64
			for _, x := range row {
				s += math.Exp(float64(x) - m)
			}
			sum += m + math.Log(s) - float64(row[chunk[p+1]])
			n++
		}
	}
	return math.Exp(sum / float64(n))
}

func TestRunMatchesDefinition(t *testing.T) {
	ev := &randEval{vocab: 97}
	tokens := makeTokens(16*10+5, 97)
	var out, log bytes.Buffer
	res, err := Run(ev, tokens, Options{NCtx: 16, NBatch: 64, Chunks: -1}, &out, &log)
	require.NoError(t, err)
	require.Equal(t, 10, res.NChunks)
	require.Equal(t, 10*(16-8-1), res.TokensScored)
	want := refPPL(&randEval{vocab: 97}, tokens, 16, 10)
	require.InEpsilon(t, want, res.PPL, 1e-5)
	s := out.String()
	require.True(t, strings.HasPrefix(s, "[1]"), s)
	require.Contains(t, s, "[10]")
	require.Contains(t, s, "Final estimate: PPL = ")
	require.Contains(t, log.String(), "calculating perplexity over 10 chunks, n_ctx=16, batch_size=64, n_seq=4")

	// --chunks limits the work.
	res, err = Run(ev, tokens, Options{NCtx: 16, NBatch: 16, Chunks: 3}, &out, &log)
	require.NoError(t, err)
	require.Equal(t, 3, res.NChunks)
	require.InEpsilon(t, refPPL(ev, tokens, 16, 3), res.PPL, 1e-5)
}

func TestRunErrors(t *testing.T) {
	ev := &randEval{vocab: 11}
	var out, log bytes.Buffer
	_, err := Run(ev, makeTokens(20, 11), Options{NCtx: 16, NBatch: 16, Chunks: -1}, &out, &log)
	require.ErrorContains(t, err, "you need at least 32 tokens")
	_, err = Run(ev, makeTokens(100, 11), Options{NCtx: 16, NBatch: 24, Chunks: -1}, &out, &log)
	require.ErrorContains(t, err, "multiple")
}

func TestBOSReplacesFirstToken(t *testing.T) {
	rec := &recordEval{vocab: 13}
	tokens := makeTokens(40, 13)
	var out, log bytes.Buffer
	_, err := Run(rec, tokens, Options{NCtx: 8, NBatch: 8, Chunks: 2, AddBOS: true, BOS: 12}, &out, &log)
	require.NoError(t, err)
	require.Len(t, rec.seen, 2)
	for c, s := range rec.seen {
		require.Equal(t, int32(12), s[0])
		require.Equal(t, tokens[c*8+1:c*8+8], s[1:])
	}
}

type recordEval struct {
	vocab int
	seen  [][]int32
}

func (e *recordEval) VocabSize() int { return e.vocab }
func (e *recordEval) ChunkLogits(tokens []int32, first int) ([]float32, error) {
	e.seen = append(e.seen, append([]int32(nil), tokens...))
	out := make([]float32, (len(tokens)-first)*e.vocab)
	for i := range out {
		out[i] = float32(i % 5)
	}
	return out, nil
}

func saveBase(t *testing.T, ev Evaluator, tokens []int32, nCtx, chunks int) []byte {
	var base, out, log bytes.Buffer
	_, err := Run(ev, tokens, Options{NCtx: nCtx, NBatch: nCtx, Chunks: chunks, Base: &base}, &out, &log)
	require.NoError(t, err)
	return base.Bytes()
}

func TestKLAgainstItselfIsZero(t *testing.T) {
	tokens := makeTokens(32*8, 101)
	data := saveBase(t, &randEval{vocab: 101}, tokens, 32, -1)
	b, err := ReadBase(bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, 32, b.NCtx)
	require.Equal(t, 8, b.NChunk)
	var out, log bytes.Buffer
	r, err := CompareBase(&randEval{vocab: 101}, b, 32, &out, &log)
	require.NoError(t, err)
	require.Less(t, r.MeanKLD, 1e-6)
	require.Equal(t, 1.0, r.SameTop)
	require.InEpsilon(t, r.PPLBase, r.PPL, 1e-4)
	require.Contains(t, out.String(), "====== KL divergence statistics ======")
	require.Contains(t, out.String(), "Same top p: 100.000 ± 0.000 %")
}

// TestKLMatchesDirect checks the quantized-base KL against an exact float64
// KL computed from both models' full logits.
func TestKLMatchesDirect(t *testing.T) {
	tokens := makeTokens(32*6, 101)
	base := &randEval{vocab: 101}
	other := &randEval{vocab: 101, seed: 9, noise: 0.7}
	b, err := ReadBase(bytes.NewReader(saveBase(t, base, tokens, 32, -1)))
	require.NoError(t, err)
	var out, log bytes.Buffer
	r, err := CompareBase(other, b, 32, &out, &log)
	require.NoError(t, err)

	var sum float64
	n := 0
	for c := 0; c < 6; c++ {
		chunk := tokens[c*32 : (c+1)*32]
		lb, _ := base.ChunkLogits(chunk, 16)
		lq, _ := other.ChunkLogits(chunk, 16)
		for p := 0; p < 15; p++ {
			sum += exactKL(lb[p*101:(p+1)*101], lq[p*101:(p+1)*101])
			n++
		}
	}
	want := sum / float64(n)
	require.Greater(t, want, 0.05, "test models must differ")
	require.InEpsilon(t, want, r.MeanKLD, 0.02)
}

// exactKL is KL(base || q) of one row of logits, in float64.
func exactKL(base, q []float32) float64 { return testdata.MeanKL(base, q, len(base)) }

func TestReadBaseRejectsGarbage(t *testing.T) {
	_, err := ReadBase(strings.NewReader("not a logits file at all"))
	require.ErrorContains(t, err, "_logits_")
	_, err = ReadBase(strings.NewReader("_logi"))
	require.Error(t, err)
	hdr := []byte("_logits_\x10\x00\x00\x00\x05\x00\x00\x00\x01\x00\x00\x00")
	hdr = append(hdr, make([]byte, 4*16)...)
	hdr[20] = 9 // token 9 >= vocab 5
	_, err = ReadBase(bytes.NewReader(hdr))
	require.ErrorContains(t, err, "outside the vocabulary")
	var out, log bytes.Buffer
	b, err := ReadBase(bytes.NewReader(saveBase(t, &randEval{vocab: 7}, makeTokens(64, 7), 16, 2)))
	require.NoError(t, err)
	_, err = CompareBase(&randEval{vocab: 8}, b, 16, &out, &log)
	require.ErrorContains(t, err, "inconsistent vocabulary")
	// Truncated rows.
	data := saveBase(t, &randEval{vocab: 7}, makeTokens(64, 7), 16, 2)
	b, err = ReadBase(bytes.NewReader(data[:len(data)-10]))
	require.NoError(t, err)
	_, err = CompareBase(&randEval{vocab: 7}, b, 16, &out, &log)
	require.ErrorContains(t, err, "failed reading log-probs for chunk 2")
}

// TestCompareRefusesLargerContext: a base file made with a larger n_ctx than
// the current context is refused before anything is allocated for it.
func TestCompareRefusesLargerContext(t *testing.T) {
	b, err := ReadBase(bytes.NewReader(saveBase(t, &randEval{vocab: 7}, makeTokens(64, 7), 16, 2)))
	require.NoError(t, err)
	var out, log bytes.Buffer
	_, err = CompareBase(&randEval{vocab: 7}, b, 8, &out, &log)
	require.ErrorContains(t, err, "increase it with -c")
}
