package chat

import (
	"math/rand"
	"strings"
	"testing"
)

func TestSplitReasoning(t *testing.T) {
	cases := []struct {
		in    string
		start bool
		r, c  string
	}{
		{"Let me think.</think>\n\nThe answer is 4.", true, "Let me think.", "The answer is 4."},
		{"\n  reasoning \n</think>answer\n", true, "reasoning", "answer\n"},
		{"still thinking", true, "still thinking", ""},
		{"a</think>b</think>c", true, "a", "b</think>c"},
		{"</think>", true, "", ""},
		{"", true, "", ""},
		{"r</thi", true, "r</thi", ""},
		{"\n\nplain answer", false, "", "plain answer"},
		{" <think>r</think>\nc", false, "r", "c"},
		{"x<think>r</think>c", false, "", "x<think>r</think>c"},
		{"<thi", false, "", "<thi"},
		{"  ", false, "", "  "},
		{"\r\n\r\nc \n", false, "", "c \n"},
	}
	for _, c := range cases {
		r, cont := SplitReasoning(c.in, c.start)
		if r != c.r || cont != c.c {
			t.Errorf("SplitReasoning(%q, %v) = (%q, %q), want (%q, %q)", c.in, c.start, r, cont, c.r, c.c)
		}
	}
}

var streamTexts = []string{
	"Let me think.</think>\n\nThe answer is 4.",
	"\n  reasoning  with  spaces \n</think>\r\n\nanswer\n\n",
	"a</think>b</think>c",
	"no close tag at all <",
	"ends with partial </thi",
	"ends with partial </think",
	"<</think>>",
	"</</think>",
	"</think>",
	"",
	"  ",
	"<think>opened</think>\nx",
	" \n<think> r </think>c",
	"<thinking about it",
	"\n\nplain",
	"r \n</think>",
	"😀 思考 </think> 答案 😀",
	"</thin</think>k",
}

// collect feeds chunks to a parser and returns the concatenated output.
func collect(chunks []string, start bool) (string, string) {
	p := NewReasoningParser(start)
	var r, c strings.Builder
	for _, ch := range chunks {
		a, b := p.Add(ch)
		r.WriteString(a)
		c.WriteString(b)
	}
	a, b := p.Flush()
	r.WriteString(a)
	c.WriteString(b)
	return r.String(), c.String()
}

// TestReasoningParserChunking: splitting the output at every byte position
// (and into single bytes, and at random) gives SplitReasoning's result.
func TestReasoningParserChunking(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, s := range streamTexts {
		for _, start := range []bool{true, false} {
			wr, wc := SplitReasoning(s, start)
			check := func(how string, chunks []string) {
				t.Helper()
				if r, c := collect(chunks, start); r != wr || c != wc {
					t.Errorf("%q (start=%v) %s: got (%q, %q), want (%q, %q)", s, start, how, r, c, wr, wc)
				}
			}
			check("whole", []string{s})
			for i := 0; i <= len(s); i++ {
				check("split", []string{s[:i], s[i:]})
			}
			var bytesChunks []string
			for i := 0; i < len(s); i++ {
				bytesChunks = append(bytesChunks, s[i:i+1])
			}
			check("bytes", bytesChunks)
			for k := 0; k < 20; k++ {
				var chunks []string
				for rest := s; rest != ""; {
					n := 1 + rng.Intn(min(len(rest), 6))
					chunks = append(chunks, rest[:n])
					rest = rest[n:]
				}
				check("random", chunks)
			}
		}
	}
}

// TestReasoningParserNoPartialTag: content never receives a piece of
// "</think>", and reasoning arrives before the close tag is complete.
func TestReasoningParserNoPartialTag(t *testing.T) {
	p := NewReasoningParser(true)
	out := ""
	for _, ch := range []string{"I think", " so", "</", "thi", "nk", ">", "\n", "\nYes"} {
		r, c := p.Add(ch)
		if strings.Contains(c, "<") || strings.Contains(c, ">") {
			t.Fatalf("content delta %q contains part of the tag", c)
		}
		if strings.Contains(r, "<") {
			t.Fatalf("reasoning delta %q contains part of the tag", r)
		}
		out += r + "|" + c + ";"
	}
	if want := "I think|; so|;|;|;|;|;|;|Yes;"; out != want {
		t.Errorf("deltas %q, want %q", out, want)
	}
	if p.InReasoning() {
		t.Error("parser still in reasoning after </think>")
	}
}

func FuzzReasoningParser(f *testing.F) {
	for _, s := range streamTexts {
		f.Add(s, true, uint8(3))
	}
	f.Fuzz(func(t *testing.T, s string, start bool, step uint8) {
		n := int(step%8) + 1
		var chunks []string
		for i := 0; i < len(s); i += n {
			chunks = append(chunks, s[i:min(len(s), i+n)])
		}
		wr, wc := SplitReasoning(s, start)
		if r, c := collect(chunks, start); r != wr || c != wc {
			t.Fatalf("chunks of %d: got (%q, %q), want (%q, %q)", n, r, c, wr, wc)
		}
	})
}
