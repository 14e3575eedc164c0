package main

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Token types of tokenizer.ggml.token_type (llama.cpp LLAMA_TOKEN_TYPE_*).
const (
	tokNormal  int32 = 1
	tokControl int32 = 3
	tokUnused  int32 = 5
)

// specialTokens are GLM-4.7-Flash's 36 added tokens in id order; the first
// sits at vocab−60 (154820 in the real 154880-token vocabulary). The layout is
// GLM-4.5's shifted by +3491 (model spec §5).
var specialTokens = []string{
	"<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>",
	"<|system|>", "<|user|>", "<|assistant|>", "<|observation|>",
	"<|begin_of_image|>", "<|end_of_image|>", "<|begin_of_video|>", "<|end_of_video|>",
	"<|begin_of_audio|>", "<|end_of_audio|>", "<|begin_of_transcription|>", "<|end_of_transcription|>",
	"<|code_prefix|>", "<|code_middle|>", "<|code_suffix|>",
	"<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>",
	"<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>",
	"/nothink", "<|begin_of_box|>", "<|end_of_box|>", "<|image|>", "<|video|>",
}

// Offsets inside specialTokens of the ids the metadata names.
const (
	specEndOfText   = 0 // eos, pad, unk
	specGMASK       = 2 // bos
	specUser        = 7 // eot
	specObservation = 9 // eom
)

// vocabTail is the number of ids after the last merged token: 36 specials
// then padding (154880 − 154820).
const vocabTail = 60

// minVocab is the smallest vocabulary the generator builds: the 256 byte
// tokens, a few merges, the specials and the padding.
const minVocab = 256 + 64 + vocabTail

// Vocab is a byte-level BPE vocabulary in GGUF form: token strings in
// GPT-2 byte-to-unicode spelling, their types, the merges ("left right",
// rank = index) and the special ids.
type Vocab struct {
	Tokens []string
	Types  []int32
	Merges []string
	// Special ids: Eos = Pad = Unk = <|endoftext|>, Bos = [gMASK],
	// Eot = <|user|>, Eom = <|observation|>.
	Eos, Bos, Eot, Eom uint32
}

// byteRunes returns GPT-2's bytes_to_unicode table and the byte order of the
// first 256 token ids (printable bytes first, as GPT-2-style vocabularies
// list them).
func byteRunes() (table [256]rune, order []byte) {
	var printable [256]bool
	for b := '!'; b <= '~'; b++ {
		printable[b] = true
	}
	for b := 0xA1; b <= 0xAC; b++ {
		printable[b] = true
	}
	for b := 0xAE; b <= 0xFF; b++ {
		printable[b] = true
	}
	n := 0
	for b := 0; b < 256; b++ {
		if printable[b] {
			table[b] = rune(b)
			order = append(order, byte(b))
		}
	}
	for b := 0; b < 256; b++ {
		if !printable[b] {
			table[b] = rune(256 + n)
			n++
			order = append(order, byte(b))
		}
	}
	return table, order
}

// vocabBuilder grows a vocabulary by left-to-right merges: a new token is
// always (existing prefix) + (one byte token), so every token's prefixes are
// tokens and every merge is consistent with the token list.
type vocabBuilder struct {
	table  [256]rune
	tokens []string
	ids    map[string]int
	merges []string
	limit  int // number of normal (byte + merged) tokens wanted
}

func (b *vocabBuilder) full() bool { return len(b.tokens) >= b.limit }

// addBytes adds the token spelling raw bytes s, creating the missing
// prefixes; it stops silently when the vocabulary is full.
func (b *vocabBuilder) addBytes(s string) {
	if len(s) < 2 {
		return
	}
	prefix := string(b.table[s[0]])
	for i := 1; i < len(s) && !b.full(); i++ {
		ch := string(b.table[s[i]])
		next := prefix + ch
		if _, ok := b.ids[next]; !ok {
			b.ids[next] = len(b.tokens)
			b.tokens = append(b.tokens, next)
			b.merges = append(b.merges, prefix+" "+ch)
		}
		prefix = next
	}
}

// BuildVocab returns the deterministic synthetic vocabulary of nVocab tokens:
// 256 byte tokens, merged tokens up to nVocab−60 (whitespace runs, digit
// groups, punctuation, pronounceable words with and without a leading space
// or capital, CJK characters), the 36 GLM specials, then [PADn] padding.
// The result does not depend on the weight seed.
func BuildVocab(nVocab int) (*Vocab, error) {
	if nVocab < minVocab {
		return nil, fmt.Errorf("vocabulary of %d tokens is below the minimum %d", nVocab, minVocab)
	}
	table, order := byteRunes()
	b := &vocabBuilder{table: table, ids: make(map[string]int, nVocab), limit: nVocab - vocabTail}
	for _, by := range order {
		s := string(table[by])
		b.ids[s] = len(b.tokens)
		b.tokens = append(b.tokens, s)
	}
	r := newRNG(0x676c6d3437, 0x766f636162) // fixed: the vocabulary is the same for every seed

	// Whitespace runs, newline runs and tabs.
	for n := 2; n <= 16; n++ {
		b.addBytes(strings.Repeat(" ", n))
	}
	for n := 2; n <= 4; n++ {
		b.addBytes(strings.Repeat("\n", n))
		b.addBytes(strings.Repeat("\t", n))
		b.addBytes(" " + strings.Repeat("\n", n-1))
	}
	// Digit groups (the pre-tokenizer splits numbers into at most 3 digits).
	for n := 0; n < 1000 && !b.full(); n++ {
		if n >= 10 {
			b.addBytes(fmt.Sprintf("%d", n))
		}
		if n < 100 {
			b.addBytes(fmt.Sprintf("%02d", n))
		}
		b.addBytes(fmt.Sprintf("%03d", n))
	}
	// Punctuation runs, with an optional leading space and trailing newline.
	const punct = ".,;:!?()[]{}<>\"'-_=+*/\\|&%$#@^~`"
	for i := 0; i < len(punct) && !b.full(); i++ {
		p := punct[i : i+1]
		b.addBytes(" " + p)
		b.addBytes(p + "\n")
		for j := 0; j < len(punct) && !b.full(); j += 3 {
			b.addBytes(p + punct[j:j+1])
		}
	}
	// Single letters after a space, then letter pairs.
	for c := byte('a'); c <= 'z' && !b.full(); c++ {
		b.addBytes(" " + string(c))
		b.addBytes(" " + string(c-'a'+'A'))
	}
	for c := byte('a'); c <= 'z' && !b.full(); c++ {
		for d := byte('a'); d <= 'z' && !b.full(); d++ {
			b.addBytes(string([]byte{c, d}))
		}
	}
	// Words and CJK characters until the vocabulary is full.
	const (
		onsets = "b c d f g h j k l m n p r s t v w y z bl br ch cl cr dr fl fr gr pl pr sh st str th tr"
		vowels = "a e i o u a e i o ea ou io ai"
		codas  = " n s t r l m nd ng st nt rs ts ck"
	)
	on, vo, co := strings.Fields(onsets), strings.Fields(vowels), strings.Split(codas, " ")
	for !b.full() {
		if r.intn(0, 9) == 0 {
			c := rune(r.intn(0x4E00, 0x9FA5))
			var buf [4]byte
			n := utf8.EncodeRune(buf[:], c)
			b.addBytes(string(buf[:n]))
			continue
		}
		var w strings.Builder
		for s := r.intn(1, 3); s > 0; s-- {
			w.WriteString(on[r.intn(0, len(on)-1)])
			w.WriteString(vo[r.intn(0, len(vo)-1)])
			w.WriteString(co[r.intn(0, len(co)-1)])
		}
		word := w.String()
		switch x := r.intn(0, 9); {
		case x < 6:
			word = " " + word
		case x < 8:
			word = " " + strings.ToUpper(word[:1]) + word[1:]
		}
		b.addBytes(word)
	}

	v := &Vocab{Tokens: b.tokens, Merges: b.merges}
	v.Types = make([]int32, len(v.Tokens), nVocab)
	for i := range v.Types {
		v.Types[i] = tokNormal
	}
	first := uint32(len(v.Tokens))
	for _, s := range specialTokens {
		v.Tokens = append(v.Tokens, s)
		v.Types = append(v.Types, tokControl)
	}
	for len(v.Tokens) < nVocab {
		v.Tokens = append(v.Tokens, fmt.Sprintf("[PAD%d]", len(v.Tokens)))
		v.Types = append(v.Types, tokUnused)
	}
	v.Eos = first + specEndOfText
	v.Bos = first + specGMASK
	v.Eot = first + specUser
	v.Eom = first + specObservation
	return v, nil
}
