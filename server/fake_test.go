package server_test

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/glmrun/glmrun/server"
)

// fakeEngine is a small deterministic engine for the HTTP-layer tests.
//
// Vocabulary: ids 0..255 are bytes; then the special tokens below. A chat
// reply is scripted: after the last "<|assistant|>" + "<think>" of the
// sequence the model "writes" fakeReply and then <|user|> (an end-of-
// generation token). After "<|assistant|></think>" (thinking off) it writes
// fakeAnswer. Anywhere else (raw completions) it writes the alphabet in a
// cycle and never stops by itself: after a lower-case letter comes the next
// one, after 'z' a space, after anything else 'a'.
type fakeEngine struct {
	answer    string        // replaces fakeAnswer in the scripts when set
	vocabPad  int           // extra never-likely ids after the real vocabulary
	stepDelay time.Duration // sleep per ForwardBatch call (simulated compute)
	failAfter int64         // >0: the n-th ForwardBatch call fails

	calls     atomic.Int64
	tokensIn  atomic.Int64 // tokens fed over all calls
	maxSeqs   atomic.Int64 // largest number of sequences in one ForwardBatch
	maxTokens atomic.Int64 // largest number of tokens in one ForwardBatch
}

const (
	tokEOT = 256 + iota // <|endoftext|>
	tokUser
	tokThink
	tokEndThink
	tokGMask
	tokSop
	tokAssistant
	tokSystem
	tokObservation
	fakeVocab
)

var fakeSpecials = map[int32]string{
	tokEOT: "<|endoftext|>", tokUser: "<|user|>", tokThink: "<think>", tokEndThink: "</think>",
	tokGMask: "[gMASK]", tokSop: "<sop>", tokAssistant: "<|assistant|>", tokSystem: "<|system|>",
	tokObservation: "<|observation|>",
}

const (
	fakeReasoning = "Let me think about it."
	fakeAnswer    = "Hello, world! Ünïcödé 1 2 3."
)

// fakeReply is the scripted output in thinking mode (ids), ending in EOG.
var fakeReply = func() []int32 {
	var ids []int32
	for _, b := range []byte(fakeReasoning) {
		ids = append(ids, int32(b))
	}
	ids = append(ids, tokEndThink)
	for _, b := range []byte(fakeAnswer) {
		ids = append(ids, int32(b))
	}
	return append(ids, tokUser)
}()

var fakeAnswerIDs = func() []int32 {
	var ids []int32
	for _, b := range []byte(fakeAnswer) {
		ids = append(ids, int32(b))
	}
	return append(ids, tokUser)
}()

func (e *fakeEngine) Info() server.ModelInfo {
	return server.ModelInfo{Path: "fake.gguf", NCtxTrain: 4096, NEmbd: 8, NParams: 1234, Size: 5678, FType: "F32", VocabType: "BPE", Device: "fake"}
}

func (e *fakeEngine) RenderChat(msgs []server.ChatMessage, o server.ChatOptions) (string, error) {
	var sb strings.Builder
	sb.WriteString("[gMASK]<sop>")
	for _, m := range msgs {
		switch m.Role {
		case "system":
			sb.WriteString("<|system|>" + m.Content)
		case "user":
			sb.WriteString("<|user|>" + m.Content)
		case "assistant":
			sb.WriteString("<|assistant|></think>" + m.Content)
		case "tool":
			sb.WriteString("<|observation|>" + m.Content)
		default:
			return "", fmt.Errorf("bad role %q", m.Role)
		}
	}
	if o.AddGenerationPrompt {
		if o.EnableThinking {
			sb.WriteString("<|assistant|><think>")
		} else {
			sb.WriteString("<|assistant|></think>")
		}
	}
	return sb.String(), nil
}

func (e *fakeEngine) Tokenize(text string, special bool) ([]int32, error) {
	var ids []int32
	for len(text) > 0 {
		matched := false
		if special {
			for id, s := range fakeSpecials {
				if strings.HasPrefix(text, s) {
					ids = append(ids, id)
					text = text[len(s):]
					matched = true
					break
				}
			}
		}
		if !matched {
			ids = append(ids, int32(text[0]))
			text = text[1:]
		}
	}
	return ids, nil
}

func (e *fakeEngine) Detokenize(ids []int32) (string, error) {
	d := e.NewDecoder()
	var sb strings.Builder
	for _, id := range ids {
		sb.WriteString(d.Add(id))
	}
	sb.WriteString(d.Flush())
	return sb.String(), nil
}

type fakeDecoder struct{ pending []byte }

func (d *fakeDecoder) Add(id int32) string {
	if id >= 256 {
		if id == tokThink || id == tokEndThink {
			return string(d.takeAll()) + fakeSpecials[id]
		}
		return ""
	}
	d.pending = append(d.pending, byte(id))
	// Emit the longest prefix that is complete UTF-8.
	n := len(d.pending)
	for n > 0 && !utf8.Valid(d.pending[:n]) {
		n--
	}
	if n == 0 {
		return ""
	}
	out := string(d.pending[:n])
	d.pending = d.pending[n:]
	return out
}

func (d *fakeDecoder) takeAll() []byte { p := d.pending; d.pending = nil; return p }

func (d *fakeDecoder) Flush() string { return string(d.takeAll()) }

func (e *fakeEngine) NewDecoder() server.TokenDecoder { return &fakeDecoder{} }

// fakeParser splits on "</think>", holding back partial tags.
type fakeParser struct {
	inReasoning bool
	held        string
	stripNL     bool
}

func (p *fakeParser) Add(text string) (string, string) {
	text = p.held + text
	p.held = ""
	var re, co string
	if p.inReasoning {
		if k := strings.Index(text, "</think>"); k >= 0 {
			re = text[:k]
			text = text[k+len("</think>"):]
			p.inReasoning = false
			p.stripNL = true
		} else {
			for n := min(len("</think>")-1, len(text)); n > 0; n-- {
				if strings.HasSuffix(text, "</think>"[:n]) {
					p.held = text[len(text)-n:]
					text = text[:len(text)-n]
					break
				}
			}
			return text, ""
		}
	}
	if p.stripNL {
		text = strings.TrimLeft(text, "\n")
		if text != "" {
			p.stripNL = false
		}
	}
	co = text
	return re, co
}

func (p *fakeParser) Flush() (string, string) {
	h := p.held
	p.held = ""
	if p.inReasoning {
		return h, ""
	}
	return "", h
}

func (e *fakeEngine) NewReasoningParser(start bool) server.ReasoningParser {
	return &fakeParser{inReasoning: start}
}

func (e *fakeEngine) IsEOG(id int32) bool {
	return id == tokEOT || id == tokUser || id == tokObservation
}

func (e *fakeEngine) VocabSize() int { return fakeVocab + e.vocabPad }

type fakeCache struct {
	toks []int32
	cap  int
}

func (c *fakeCache) Len() int { return len(c.toks) }

// Truncate keeps the first n tokens (prompt caching).
func (c *fakeCache) Truncate(n int) error {
	if n < 0 || n > len(c.toks) {
		return fmt.Errorf("fake: truncate to %d of %d", n, len(c.toks))
	}
	c.toks = c.toks[:n]
	return nil
}
func (c *fakeCache) Reset() { c.toks = c.toks[:0] }

func (e *fakeEngine) NewCache(n int) (server.Cache, error) {
	if n <= 0 {
		return nil, fmt.Errorf("cache size %d", n)
	}
	return &fakeCache{cap: n}, nil
}

// scripts returns the thinking-mode and direct-answer scripts.
func (e *fakeEngine) scripts() (reply, answer []int32) {
	if e.answer == "" {
		return fakeReply, fakeAnswerIDs
	}
	for _, b := range []byte(fakeReasoning) {
		reply = append(reply, int32(b))
	}
	reply = append(reply, tokEndThink)
	for _, b := range []byte(e.answer) {
		answer = append(answer, int32(b))
	}
	answer = append(answer, tokObservation)
	return append(reply, answer...), answer
}

// nextToken is the scripted continuation of seq.
func (e *fakeEngine) nextToken(seq []int32) int32 {
	reply, answer := e.scripts()
	for i := len(seq) - 2; i >= 0; i-- {
		if seq[i] == tokAssistant && (seq[i+1] == tokThink || seq[i+1] == tokEndThink) {
			script := reply
			if seq[i+1] == tokEndThink {
				script = answer
			}
			k := len(seq) - (i + 2)
			if k < len(script) {
				return script[k]
			}
			return tokEOT
		}
		if seq[i] == tokUser || seq[i] == tokEOT {
			break
		}
	}
	last := seq[len(seq)-1]
	switch {
	case last >= 'a' && last < 'z':
		return last + 1
	case last == 'z':
		return ' '
	default:
		return 'a'
	}
}

func (e *fakeEngine) ForwardBatch(caches []server.Cache, tokens [][]int32) ([][]float32, error) {
	n := e.calls.Add(1)
	if e.failAfter > 0 && n >= e.failAfter {
		return nil, errors.New("injected compute failure")
	}
	if len(caches) != len(tokens) || len(caches) == 0 {
		return nil, fmt.Errorf("fake: %d caches, %d token lists", len(caches), len(tokens))
	}
	total := 0
	out := make([][]float32, len(caches))
	for i, c := range caches {
		fc := c.(*fakeCache)
		if len(tokens[i]) == 0 {
			return nil, fmt.Errorf("fake: empty token list for sequence %d", i)
		}
		if len(fc.toks)+len(tokens[i]) > fc.cap {
			return nil, fmt.Errorf("fake: cache overflow: %d + %d > %d", len(fc.toks), len(tokens[i]), fc.cap)
		}
		fc.toks = append(fc.toks, tokens[i]...)
		total += len(tokens[i])
		e.tokensIn.Add(int64(len(tokens[i])))
		row := make([]float32, fakeVocab+e.vocabPad)
		row[e.nextToken(fc.toks)] = 10
		out[i] = row
	}
	for {
		m := e.maxSeqs.Load()
		if int64(len(caches)) <= m || e.maxSeqs.CompareAndSwap(m, int64(len(caches))) {
			break
		}
	}
	for {
		m := e.maxTokens.Load()
		if int64(total) <= m || e.maxTokens.CompareAndSwap(m, int64(total)) {
			break
		}
	}
	if e.stepDelay > 0 {
		time.Sleep(e.stepDelay)
	}
	return out, nil
}

// greedySampler picks the largest logit (ties: lowest id).
type greedySampler struct{}

func (greedySampler) Sample(logits []float32) (int32, error) {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	return int32(best), nil
}

func (e *fakeEngine) NewSampler(p server.SamplingParams, prompt []int32) (server.Sampler, error) {
	return greedySampler{}, nil
}
