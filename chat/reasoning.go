package chat

import (
	"strings"
)

// Reasoning tags GLM-4.7-Flash writes around its thinking.
const (
	ThinkOpen  = "<think>"
	ThinkClose = "</think>"
)

// The split of a model output into reasoning and content (llama-server's
// reasoning_format "auto"/"deepseek"):
//
//   - With startInReasoning (the prompt ended with "<think>", i.e. thinking
//     on), everything up to the first "</think>" is reasoning and the rest is
//     content. Without it (prompt ended with "</think>"), the output is
//     content, unless it opens with "<think>" (after optional whitespace), in
//     which case that block is parsed as reasoning.
//   - Reasoning has leading and trailing whitespace (space, \t, \n, \v, \f,
//     \r) removed, as llama.cpp's parser does.
//   - Content has its leading newlines (\n, \r) removed; nothing else.
//   - Output that never closes the reasoning is all reasoning.

// SplitReasoning splits a complete model output (see the rules above).
func SplitReasoning(full string, startInReasoning bool) (reasoning, content string) {
	s := full
	if !startInReasoning {
		t := strings.TrimLeft(s, asciiSpace)
		if !strings.HasPrefix(t, ThinkOpen) {
			return "", strings.TrimLeft(full, "\r\n")
		}
		s = t[len(ThinkOpen):]
	}
	i := strings.Index(s, ThinkClose)
	if i < 0 {
		return strings.Trim(s, asciiSpace), ""
	}
	return strings.Trim(s[:i], asciiSpace), strings.TrimLeft(s[i+len(ThinkClose):], "\r\n")
}

// asciiSpace is C's isspace set, which llama.cpp strips reasoning with.
const asciiSpace = " \t\n\v\f\r"

// parser states
const (
	stateProbe     = iota // not in reasoning yet; output may still open with <think>
	stateReasoning        // inside the reasoning block
	stateContent          // after the reasoning
)

// ReasoningParser splits streamed model output into reasoning and content
// deltas. Feeding a text in any chunks to Add, then calling Flush, yields
// (concatenated) exactly SplitReasoning's result: text that might still turn
// out to be part of a tag, or reasoning whitespace that might be trailing,
// is held back until it is decided. Not safe for concurrent use.
type ReasoningParser struct {
	state     int
	pending   string // undecided text
	started   bool   // some reasoning has been emitted (leading space is gone)
	contentNL bool   // still dropping leading newlines of the content
}

// NewReasoningParser returns a parser for one model output. startInReasoning
// is true when the prompt ended with "<think>" (GLM's generation prompt with
// thinking on), so the output begins inside the reasoning.
func NewReasoningParser(startInReasoning bool) *ReasoningParser {
	p := &ReasoningParser{state: stateProbe, contentNL: true}
	if startInReasoning {
		p.state = stateReasoning
	}
	return p
}

// InReasoning reports whether the parser is (so far) inside the reasoning.
func (p *ReasoningParser) InReasoning() bool { return p.state == stateReasoning }

// Add consumes the next chunk of output and returns the reasoning and
// content text that is now certain. Either may be empty.
func (p *ReasoningParser) Add(text string) (reasoning, content string) {
	p.pending += text
	var r, c strings.Builder
	p.step(&r, &c, false)
	return r.String(), c.String()
}

// Flush ends the output and returns whatever was held back.
func (p *ReasoningParser) Flush() (reasoning, content string) {
	var r, c strings.Builder
	p.step(&r, &c, true)
	return r.String(), c.String()
}

// step moves as much pending text as is decided into r and c; final means
// no more text will come.
func (p *ReasoningParser) step(r, c *strings.Builder, final bool) {
	for {
		switch p.state {
		case stateProbe:
			t := strings.TrimLeft(p.pending, asciiSpace)
			switch {
			case strings.HasPrefix(t, ThinkOpen):
				p.pending = t[len(ThinkOpen):]
				p.state = stateReasoning
				continue
			case !final && strings.HasPrefix(ThinkOpen, t):
				return // still could be "<think>" (or only whitespace so far)
			}
			p.state = stateContent
			continue
		case stateReasoning:
			if i := strings.Index(p.pending, ThinkClose); i >= 0 {
				p.emitReasoning(r, strings.TrimRight(p.pending[:i], asciiSpace))
				p.pending = p.pending[i+len(ThinkClose):]
				p.state = stateContent
				continue
			}
			if final {
				p.emitReasoning(r, strings.TrimRight(p.pending, asciiSpace))
				p.pending = ""
				return
			}
			// Hold a suffix that may begin "</think>", and trailing space.
			decided := p.pending[:len(p.pending)-partialSuffix(p.pending, ThinkClose)]
			decided = strings.TrimRight(decided, asciiSpace)
			p.emitReasoning(r, decided)
			p.pending = p.pending[len(decided):]
			return
		default: // stateContent
			s := p.pending
			if p.contentNL {
				s = strings.TrimLeft(s, "\r\n")
				if s != "" {
					p.contentNL = false
				}
			}
			c.WriteString(s)
			p.pending = ""
			return
		}
	}
}

// emitReasoning writes decided reasoning text, dropping leading space until
// some reasoning has been written.
func (p *ReasoningParser) emitReasoning(r *strings.Builder, s string) {
	if !p.started {
		s = strings.TrimLeft(s, asciiSpace)
		if s == "" {
			return
		}
		p.started = true
	}
	r.WriteString(s)
}

// partialSuffix returns the length of the longest suffix of s that is a
// proper prefix of tag.
func partialSuffix(s, tag string) int {
	for n := min(len(tag)-1, len(s)); n > 0; n-- {
		if strings.HasSuffix(s, tag[:n]) {
			return n
		}
	}
	return 0
}
