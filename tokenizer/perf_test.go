package tokenizer

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/glmrun/glmrun/internal/testdata"
)

// TestEncodeWikiSpeed encodes WikiText-2's test split (1.3 MB) with the
// glm-tiny vocabulary and checks that it round-trips and is fast.
func TestEncodeWikiSpeed(t *testing.T) {
	tok := tiny(t)
	raw, err := os.ReadFile(testdata.Shared(t, "data", "wiki.test.raw"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	start := time.Now()
	ids := tok.Encode(text, false)
	el := time.Since(start)
	t.Logf("encoded %d bytes to %d tokens in %v (%.1f MB/s)", len(text), len(ids), el, float64(len(text))/1e6/el.Seconds())
	// The limit is loose: it catches accidental quadratic behaviour, not
	// slow machines (about 70 ms of CPU time on one 2026 core).
	if el > 10*time.Second && !raceEnabled {
		t.Errorf("encoding 1.3 MB took %v", el)
	}
	if back := tok.Decode(ids); back != text {
		t.Errorf("wiki text does not round-trip")
	}
}

// bigConfig makes a vocabulary the size of GLM-4.7-Flash's (154880 tokens,
// 321k merges) out of synthetic strings, to time construction.
func bigConfig() Config {
	c := Config{Model: "gpt2", Pre: "glm4", BOS: -1, EOS: -1, EOT: -1, EOM: -1, PAD: -1, UNK: -1}
	for b := 0; b < 256; b++ {
		c.Tokens = append(c.Tokens, string(byteToRune[b]))
	}
	for len(c.Tokens) < 154880 {
		i := len(c.Tokens)
		l, r := c.Tokens[(i*7919)%i], c.Tokens[(i*104729+13)%i]
		if len(l)+len(r) > 24 {
			l, r = c.Tokens[i%256], fmt.Sprintf("%c%d", 'a'+rune(i%26), i)
			c.Tokens = append(c.Tokens, r)
		}
		c.Merges = append(c.Merges, l+" "+r)
		c.Tokens = append(c.Tokens, l+r)
	}
	for len(c.Merges) < 321000 {
		i := len(c.Merges)
		c.Merges = append(c.Merges, c.Tokens[(i*31)%len(c.Tokens)]+" "+c.Tokens[(i*17)%len(c.Tokens)])
	}
	return c
}

func TestLoadSpeed(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	c := bigConfig()
	start := time.Now()
	if _, err := New(c); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	t.Logf("built a %d-token, %d-merge tokenizer in %v", len(c.Tokens), len(c.Merges), el)
	if el > 10*time.Second && !raceEnabled {
		t.Errorf("construction took %v", el)
	}
}

func BenchmarkEncodeWiki(b *testing.B) {
	tok := tiny(b)
	raw, err := os.ReadFile(testdata.Shared(b, "data", "wiki.test.raw"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		tok.Encode(string(raw), false)
	}
}
