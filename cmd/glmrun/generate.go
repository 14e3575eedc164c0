package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/glmrun/glmrun/model/glm4moe"
	"github.com/glmrun/glmrun/sample"
	"github.com/glmrun/glmrun/tokenizer"
)

// generation runs one prompt + generation and prints the output.
type generation struct {
	o      *options
	m      *glm4moe.Model
	tok    *tokenizer.Tokenizer
	cache  *glm4moe.Cache
	chat   bool
	params sample.Params
	nCtx   int
	stdout io.Writer
	stderr io.Writer

	interrupt   chan os.Signal // Ctrl-C
	interrupted bool

	out                      *textSink
	nPrompt, nGen, nEval     int
	promptDur, evalDur, ttft time.Duration
}

func (g *generation) run(prompt []int32) error {
	o := g.o
	g.nPrompt = len(prompt)
	if g.chat {
		g.out = newChatSink(g.stdout, g.thinkingWriter(), o.reverse, o.reasoning != "off")
	} else {
		g.out = newRawSink(g.stdout, o.reverse)
		if !o.noDisplay {
			fmt.Fprint(g.stdout, g.tok.Decode(prompt))
		}
	}
	t0 := time.Now()
	var logits []float32
	for i := 0; i < len(prompt); i += o.batch {
		j := min(i+o.batch, len(prompt))
		l, err := g.m.Forward(g.cache, prompt[i:j], false)
		if err != nil {
			return err
		}
		logits = l
	}
	g.promptDur = time.Since(t0)
	s := sample.New(g.params)
	for _, id := range prompt {
		s.Accept(id)
	}
	dec := g.tok.NewDecoder()
	if o.special {
		dec = g.tok.NewSpecialDecoder()
	}
	eog := false
	// Plain greedy decoding asks the model for the next id directly
	// (DecodeGreedy: on CUDA the argmax runs on the GPU and only the id
	// crosses to the host); everything else samples from full logits.
	p := g.params
	greedy := p.Temp <= 0 && !o.ignoreEOS && (p.RepeatLastN == 0 || (p.RepeatPenalty == 1 && p.PresencePenalty == 0 && p.FrequencyPenalty == 0))
	next := int32(-1)
	for {
		if o.nPredict >= 0 && g.nGen >= o.nPredict {
			break
		}
		select {
		case <-g.interrupt:
			g.interrupted = true
			signal.Stop(g.interrupt)
		default:
		}
		if g.interrupted {
			break
		}
		if o.ignoreEOS {
			for _, id := range g.tok.EOGIDs() {
				if int(id) < len(logits) {
					logits[id] = float32(math.Inf(-1))
				}
			}
		}
		id := next
		if id < 0 {
			id = s.Sample(logits)
		}
		s.Accept(id)
		g.nGen++
		if g.nGen == 1 {
			g.ttft = time.Since(t0)
		}
		if g.tok.IsEOG(id) && !o.ignoreEOS {
			eog = true
			break
		}
		if g.out.write(dec.Add(id)) {
			break // stop string
		}
		if o.nPredict > 0 && g.nGen >= o.nPredict {
			break
		}
		if g.cache.Len() >= g.nCtx {
			break // context full (-1 and -2 both stop here: no context shifting)
		}
		t := time.Now()
		if greedy {
			n, err := g.m.DecodeGreedy(g.cache, id)
			if err != nil {
				return err
			}
			next = n
		} else {
			l, err := g.m.Forward(g.cache, []int32{id}, false)
			if err != nil {
				return err
			}
			logits = l
		}
		g.evalDur += time.Since(t)
		g.nEval++
	}
	if !g.out.stopped {
		g.out.write(dec.Flush())
	}
	g.out.finish()
	if eog && !g.chat {
		fmt.Fprint(g.stdout, " [end of text]\n")
	} else {
		fmt.Fprintln(g.stdout)
	}
	return nil
}

func (g *generation) thinkingWriter() io.Writer {
	switch g.o.showThinking {
	case "stdout":
		return g.stdout
	case "off":
		return nil
	}
	return g.stderr
}

func (g *generation) printTimings(load, total time.Duration) {
	w := g.stderr
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	per := func(d time.Duration, n int) (float64, float64) {
		if n == 0 {
			return 0, 0
		}
		p := ms(d) / float64(n)
		if p == 0 {
			return 0, 0
		}
		return p, 1000 / p
	}
	const pfx = "llama_perf_context_print"
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%s:        load time = %10.2f ms\n", pfx, ms(load))
	pp, pt := per(g.promptDur, g.nPrompt)
	fmt.Fprintf(w, "%s: prompt eval time = %10.2f ms / %5d tokens (%8.2f ms per token, %8.2f tokens per second)\n", pfx, ms(g.promptDur), g.nPrompt, pp, pt)
	ep, et := per(g.evalDur, g.nEval)
	fmt.Fprintf(w, "%s:        eval time = %10.2f ms / %5d runs   (%8.2f ms per token, %8.2f tokens per second)\n", pfx, ms(g.evalDur), g.nEval, ep, et)
	fmt.Fprintf(w, "%s:       total time = %10.2f ms / %5d tokens\n", pfx, ms(total), g.nPrompt+g.nGen)
	fmt.Fprintf(w, "glmrun: time to first token = %.2f ms\n", ms(g.ttft))
	if kb, ok := peakRSSKiB(); ok {
		fmt.Fprintf(w, "glmrun: peak RSS = %.1f MiB\n", float64(kb)/1024)
	}
	if !g.o.noTimings {
		fmt.Fprintf(w, "[ Prompt: %.1f t/s | Generation: %.1f t/s ]\n", pt, et)
	}
}

// peakRSSKiB reads VmHWM from /proc/self/status (Linux).
func peakRSSKiB() (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb); err == nil {
				return kb, true
			}
		}
	}
	return 0, false
}

// textSink routes generated text: in chat mode reasoning (up to </think>) to
// the thinking writer framed by [Start thinking]/[End thinking] and the answer
// to stdout; in raw mode everything to stdout. Stop strings end the answer:
// text that could still become a stop string is held back, and the stop
// string itself is not printed.
type textSink struct {
	out, think io.Writer
	stops      []string
	parse      func(string) (reasoning, content string)
	flush      func() (reasoning, content string)
	inThink    bool // inside a framed reasoning block
	pending    string
	stopped    bool
}

func newRawSink(out io.Writer, stops []string) *textSink {
	return &textSink{out: out, stops: stops}
}

// write handles one chunk of decoded text and reports whether a stop string
// was hit.
func (s *textSink) write(text string) bool {
	if s.stopped || text == "" {
		return s.stopped
	}
	if s.parse == nil {
		return s.route("", text)
	}
	return s.route(s.parse(text))
}

// route prints reasoning and content (see write).
func (s *textSink) route(reasoning, content string) bool {
	if s.stopped {
		return true
	}
	if reasoning != "" && s.think != nil {
		if !s.inThink {
			fmt.Fprint(s.think, "[Start thinking]\n")
			s.inThink = true
		}
		fmt.Fprint(s.think, reasoning)
	}
	if content != "" {
		s.endThink()
	}
	if content == "" {
		return false
	}
	s.pending += content
	for _, st := range s.stops {
		if st == "" {
			continue
		}
		if i := strings.Index(s.pending, st); i >= 0 {
			fmt.Fprint(s.out, s.pending[:i])
			s.pending = ""
			s.stopped = true
			return true
		}
	}
	hold := 0
	for _, st := range s.stops {
		for k := min(len(st)-1, len(s.pending)); k > hold; k-- {
			if strings.HasSuffix(s.pending, st[:k]) {
				hold = k
				break
			}
		}
	}
	fmt.Fprint(s.out, s.pending[:len(s.pending)-hold])
	s.pending = s.pending[len(s.pending)-hold:]
	return false
}

func (s *textSink) endThink() {
	if s.inThink {
		fmt.Fprint(s.think, "\n[End thinking]\n\n")
		s.inThink = false
	}
}

// finish prints held-back text and closes an open reasoning block.
func (s *textSink) finish() {
	if s.flush != nil && !s.stopped {
		s.route(s.flush())
	}
	s.endThink()
	if !s.stopped {
		fmt.Fprint(s.out, s.pending)
		s.pending = ""
	}
}
