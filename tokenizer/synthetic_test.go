package tokenizer

import (
	"errors"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// synthetic builds a small vocabulary that needs no shared files: the 256
// byte characters, a few merges, and GLM-style special tokens.
func synthetic(t testing.TB) *Tokenizer {
	t.Helper()
	var toks []string
	var types []TokenType
	for b := 0; b < 256; b++ {
		toks = append(toks, string(byteToRune[b]))
		types = append(types, TypeNormal)
	}
	merges := []string{"Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "Ġ Ġ", "ä ¸", "ä¸ Ń"}
	for _, m := range merges {
		toks = append(toks, strings.ReplaceAll(m, " ", ""))
		types = append(types, TypeNormal)
	}
	specials := []struct {
		s  string
		ty TokenType
	}{{"<|endoftext|>", TypeControl}, {"[gMASK]", TypeControl}, {"<sop>", TypeControl}, {"<|user|>", TypeControl},
		{"<|assistant|>", TypeControl}, {"<|observation|>", TypeControl}, {"<think>", TypeUserDefined}, {"</think>", TypeUserDefined}}
	for _, s := range specials {
		toks = append(toks, s.s)
		types = append(types, s.ty)
	}
	id := func(s string) int32 { return int32(slices.Index(toks, s)) }
	tok, err := New(Config{Model: "gpt2", Pre: "glm4", Tokens: toks, Types: types, Merges: merges,
		BOS: id("[gMASK]"), EOS: id("<|endoftext|>"), EOT: id("<|user|>"), EOM: -1, PAD: -1, UNK: -1})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestNewRejectsBadConfig(t *testing.T) {
	base := Config{Model: "gpt2", Pre: "glm4", Tokens: []string{"a", "b"}, BOS: -1, EOS: -1, EOT: -1, EOM: -1, PAD: -1, UNK: -1}
	cases := map[string]func(c *Config){
		"llama model":   func(c *Config) { c.Model = "llama" },
		"unknown pre":   func(c *Config) { c.Pre = "qwen2" },
		"llama3 pre":    func(c *Config) { c.Pre = "llama-bpe" },
		"empty vocab":   func(c *Config) { c.Tokens = nil },
		"types length":  func(c *Config) { c.Types = []TokenType{TypeNormal} },
		"eos too large": func(c *Config) { c.EOS = 2 },
		"bos negative":  func(c *Config) { c.BOS = -5 },
		"add_bos no id": func(c *Config) { c.AddBOS = true },
	}
	for name, mod := range cases {
		c := base
		mod(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted a bad config", name)
		}
	}
	c := base
	c.Pre = "nope"
	if _, err := New(c); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown pre-tokenizer error = %v, want ErrUnsupported naming it", err)
	}
	for _, p := range SupportedPre {
		c := base
		c.Pre = p
		if _, err := New(c); err != nil {
			t.Errorf("pre %q rejected: %v", p, err)
		}
	}
}

// TestSplitWords checks the pre-tokenizer against hand-derived splits of the
// GLM-4 regex.
func TestSplitWords(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"Hello world", []string{"Hello", " world"}},
		{" Hello  world   ", []string{" Hello", " ", " world", "   "}},
		{"1234567", []string{"123", "456", "7"}},
		{"I'm DON'T they'LL", []string{"I", "'m", " DON", "'T", " they", "'LL"}},
		{"a\n\nb", []string{"a", "\n\n", "b"}},
		{"a \n  b", []string{"a", " \n", " ", " b"}},
		{"x\u00a0y", []string{"x", "\u00a0y"}},
		{"\ttab", []string{"\ttab"}},
		{"foo()  {", []string{"foo", "()", " ", " {"}},
		{"?!\n\nnext", []string{"?!\n\n", "next"}},
		{" ?", []string{" ?"}},
		{"a ", []string{"a", " "}},
		{"日本語", []string{"日本語"}},
		{"x²³", []string{"x", "²³"}}, // superscripts are \p{N}
		{"$100", []string{"$", "100"}},
		{"'", []string{"'"}},
		{"'re'", []string{"'re", "'"}},
		{"\r\n", []string{"\r\n"}},
		{"  \t", []string{"  \t"}},
	}
	for _, c := range cases {
		cpts := []rune(c.in)
		var got []string
		splitWords(cpts, nil, func(a, b int) { got = append(got, string(cpts[a:b])) })
		if !slices.Equal(got, c.want) {
			t.Errorf("split %q = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSyntheticEncode(t *testing.T) {
	tok := synthetic(t)
	id := func(s string) int32 {
		v, ok := tok.ID(s)
		if !ok {
			t.Fatalf("no token %q", s)
		}
		return v
	}
	got := tok.Encode("[gMASK]<|user|>the there<think>中", true)
	want := []int32{id("[gMASK]"), id("<|user|>"), id("t"), id("he"), id("Ġthe"), id("r"), id("e"), id("<think>"), id("ä¸Ń")}
	if !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	// Without parseSpecial, control tokens are text but user-defined ones
	// are still matched (llama.cpp's behaviour).
	got = tok.Encode("<|user|><think>", false)
	if slices.Contains(got, id("<|user|>")) || !slices.Contains(got, id("<think>")) {
		t.Errorf("Encode(parseSpecial=false) = %v: want <|user|> as text and <think> as a token", got)
	}
	if tok.Decode(got) != "<|user|><think>" {
		t.Errorf("Decode = %q", tok.Decode(got))
	}
	if !tok.IsEOG(id("<|endoftext|>")) || !tok.IsEOG(id("<|user|>")) || !tok.IsEOG(id("<|observation|>")) || tok.IsEOG(id("<sop>")) {
		t.Errorf("EOG set wrong: %v", tok.EOGIDs())
	}
	if tok.AddBOS() || tok.BOS() != id("[gMASK]") {
		t.Errorf("AddBOS/BOS wrong")
	}
	if tok.Piece(id("<|user|>"), false) != "" || tok.Piece(id("<|user|>"), true) != "<|user|>" || tok.Piece(id("<think>"), false) != "<think>" {
		t.Errorf("Piece rules for control/user-defined tokens wrong")
	}
	if tok.Decode([]int32{-1, 1 << 30, id("a")}) != "a" {
		t.Errorf("out-of-range ids must be skipped")
	}
	if tok.TokenText(-1) != "" || tok.TokenText(int32(tok.VocabSize())) != "" {
		t.Errorf("TokenText out of range must be empty")
	}
}

// randomText mixes ASCII, whitespace, digits, CJK, emoji and specials.
func randomText(r *rand.Rand, n int) string {
	pool := []string{"a", "Z", "é", "ß", " ", "  ", "\n", "\r\n", "\t", "\u00a0", "\u3000", "1", "42", "'s", "'LL", ".", "?!",
		"中", "文", "😀", "🚀", "\u0301", "<think>", "</think>", "<|user|>", "[gMASK]", "<sop", "\x00", "\x7f", "ǅ", "٣", "Ⅻ"}
	var b strings.Builder
	for i := 0; i < n; i++ {
		if r.Intn(4) == 0 {
			b.WriteRune(rune(r.Intn(0x30000)))
		} else {
			b.WriteString(pool[r.Intn(len(pool))])
		}
	}
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}

// TestRoundTripProperty: DecodeSpecial(Encode(x, true)) == x and
// Decode(Encode(x, false)) == x for valid UTF-8.
func TestRoundTripProperty(t *testing.T) {
	toks := []*Tokenizer{synthetic(t)}
	if tt := maybeTiny(t); tt != nil {
		toks = append(toks, tt)
	}
	r := rand.New(rand.NewSource(1))
	for _, tok := range toks {
		for i := 0; i < 2000; i++ {
			s := randomText(r, r.Intn(40))
			if got := tok.DecodeSpecial(tok.Encode(s, true)); got != s {
				t.Fatalf("DecodeSpecial(Encode(%q, true)) = %q", s, got)
			}
			if got := tok.Decode(tok.Encode(s, false)); got != s {
				t.Fatalf("Decode(Encode(%q, false)) = %q", s, got)
			}
		}
	}
}

// maybeTiny returns the glm-tiny tokenizer if the shared files exist.
func maybeTiny(t *testing.T) *Tokenizer {
	var tok *Tokenizer
	t.Run("glm-tiny", func(t *testing.T) { tok = tiny(t) })
	return tok
}

func TestInvalidUTF8(t *testing.T) {
	tok := synthetic(t)
	for _, s := range []string{"\xff", "a\x80b", "\xe4\xb8", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf7\xbf\xbf\xbf", "<thi\xffnk>"} {
		ids := tok.Encode(s, true)
		if len(ids) == 0 {
			t.Errorf("Encode(%q) produced no tokens", s)
		}
		for _, id := range ids {
			if id < 0 || int(id) >= tok.VocabSize() {
				t.Errorf("Encode(%q): id %d out of range", s, id)
			}
		}
	}
	// A lone invalid byte becomes U+FFFD, as in llama.cpp.
	if got := tok.Decode(tok.Encode("a\xffb", false)); got != "a\uFFFDb" {
		t.Errorf("invalid byte: round trip = %q, want a\\uFFFDb", got)
	}
	// Surrogates and overlong forms are decoded loosely and re-encoded.
	if got := tok.Decode(tok.Encode("\xed\xa0\x80", false)); got != "\xed\xa0\x80" {
		t.Errorf("surrogate: round trip = %q", got)
	}
	if got := tok.Decode(tok.Encode("\xc0\x80", false)); got != "\x00" {
		t.Errorf("overlong NUL: round trip = %q", got)
	}
}

// TestStreamDecoder feeds tokens one at a time and checks that no output
// chunk splits a UTF-8 character and that the concatenation equals Decode.
func TestStreamDecoder(t *testing.T) {
	tok := synthetic(t) // byte-level tokens: multi-byte characters span tokens
	texts := []string{"emoji 😀🚀 ok", "日本語のテキスト", "naïve café", "a\xffb\xe4\xb8", "🚀", "中"}
	r := rand.New(rand.NewSource(2))
	for i := 0; i < 200; i++ {
		texts = append(texts, randomText(r, 20))
	}
	for _, s := range texts {
		ids := tok.Encode(s, true)
		d := tok.NewDecoder()
		var all strings.Builder
		for _, id := range ids {
			chunk := d.Add(id)
			if utf8.ValidString(s) && !utf8.ValidString(chunk) {
				t.Fatalf("%q: chunk %q splits a character", s, chunk)
			}
			all.WriteString(chunk)
		}
		all.WriteString(d.Flush())
		if want := tok.Decode(ids); all.String() != want {
			t.Fatalf("stream of %q = %q, want %q", s, all.String(), want)
		}
	}
	// A character split across tokens comes out whole, once complete.
	d := tok.NewDecoder()
	ids := tok.Encode("😀", false)
	if len(ids) != 4 {
		t.Fatalf("want 4 byte tokens for an emoji, got %v", ids)
	}
	for i, id := range ids[:3] {
		if out := d.Add(id); out != "" {
			t.Fatalf("byte %d emitted %q before the character was complete", i, out)
		}
	}
	if out := d.Add(ids[3]); out != "😀" {
		t.Fatalf("last byte emitted %q, want the emoji", out)
	}
	// An incomplete character at the end comes out at Flush.
	d.Add(ids[0])
	if out := d.Flush(); out != "\xf0" {
		t.Fatalf("Flush = %q", out)
	}
	// Control tokens are skipped by NewDecoder and printed by NewSpecialDecoder.
	u, _ := tok.ID("<|user|>")
	if tok.NewDecoder().Add(u) != "" || tok.NewSpecialDecoder().Add(u) != "<|user|>" {
		t.Fatalf("decoder special-token rules wrong")
	}
}

func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", "Hello world", "  x\n\n\ty", "<|user|>hi<think>", "\xff\xfe", "😀中文", "1234567'S"} {
		f.Add(s)
	}
	tok := synthetic(f)
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s, true)
		for _, id := range ids {
			if id < 0 || int(id) >= tok.VocabSize() {
				t.Fatalf("id %d out of range", id)
			}
		}
		back := tok.DecodeSpecial(ids)
		if utf8.ValidString(s) && back != s {
			t.Fatalf("round trip %q -> %q", s, back)
		}
		d := tok.NewSpecialDecoder()
		var all strings.Builder
		for _, id := range ids {
			all.WriteString(d.Add(id))
		}
		all.WriteString(d.Flush())
		if all.String() != back {
			t.Fatalf("stream decode %q != %q", all.String(), back)
		}
	})
}

// TestConcurrentEncode: Encode may be called from several goroutines (the
// word cache is shared).
func TestConcurrentEncode(t *testing.T) {
	tok := synthetic(t)
	r := rand.New(rand.NewSource(4))
	texts := make([]string, 200)
	want := make([][]int32, len(texts))
	for i := range texts {
		texts[i] = randomText(r, 30)
		want[i] = tok.Encode(texts[i], true)
	}
	errs := make(chan string, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for i := range texts {
				if got := tok.Encode(texts[i], true); !slices.Equal(got, want[i]) {
					errs <- texts[i]
					return
				}
			}
			errs <- ""
		}()
	}
	for g := 0; g < 4; g++ {
		if s := <-errs; s != "" {
			t.Errorf("concurrent Encode(%q) differs", s)
		}
	}
}
