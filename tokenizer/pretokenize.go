package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// The GLM-4 pre-tokenizer splits text into words before BPE runs on each one.
// Its Hugging Face form is the cl100k/Llama-3 regex
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//	 ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// Go's regexp has no lookahead, so splitWords below is a hand-written scanner
// that tries the alternatives in order at each position, exactly as
// llama.cpp's unicode_regex_split_custom_llama3 does (which is also how
// llama.cpp runs this regex). Character classes: \p{L} and \p{N} are Unicode
// general categories L* and N*; \s is the Unicode White_Space property
// (\t\n\v\f\r, space, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029,
// U+202F, U+205F, U+3000), which is llama.cpp's whitespace table. The tables
// come from Go's unicode package; llama.cpp's were generated from a possibly
// different Unicode version, so characters assigned in between may differ.

// Character classes, as bit flags.
const (
	clsLetter uint8 = 1 << iota
	clsNumber
	clsSpace
	clsInRange // set for every position inside the text; 0 means "past the end"
)

// classOf returns the class flags of one code point.
func classOf(r rune) uint8 {
	f := clsInRange
	if r < utf8.RuneSelf {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
			f |= clsLetter
		case '0' <= r && r <= '9':
			f |= clsNumber
		case r == ' ' || ('\t' <= r && r <= '\r'):
			f |= clsSpace
		}
		return f
	}
	if unicode.IsLetter(r) {
		f |= clsLetter
	}
	if unicode.IsNumber(r) {
		f |= clsNumber
	}
	if unicode.Is(unicode.White_Space, r) {
		f |= clsSpace
	}
	return f
}

// decodeText converts text to code points the way llama.cpp does
// (unicode_cpts_from_utf8): a lead byte followed by the right number of
// continuation bytes is decoded without further checks (overlong forms and
// surrogates are accepted), and any other byte becomes U+FFFD. It returns the
// code points and their re-encoding (norm), with offs[i] the byte offset of
// code point i in norm and offs[len(cpts)] == len(norm). For valid UTF-8,
// norm == text.
func decodeText(text string, cpts []rune, offs []int32) ([]rune, []int32, string) {
	if cap(cpts) < len(text) {
		cpts = make([]rune, 0, len(text))
		offs = make([]int32, 0, len(text)+1)
	}
	cpts, offs = cpts[:0], offs[:0]
	if utf8.ValidString(text) {
		for i, r := range text {
			cpts = append(cpts, r)
			offs = append(offs, int32(i))
		}
		offs = append(offs, int32(len(text)))
		return cpts, offs, text
	}
	buf := make([]byte, 0, len(text)+8)
	for i := 0; i < len(text); {
		r, n := looseDecode(text, i)
		i += n
		cpts = append(cpts, r)
		offs = append(offs, int32(len(buf)))
		buf = appendCodePoint(buf, r)
	}
	offs = append(offs, int32(len(buf)))
	return cpts, offs, string(buf)
}

// looseDecode decodes the code point at text[i] with llama.cpp's rules and
// returns it and the number of bytes consumed. Code points above U+10FFFF
// (which llama.cpp cannot re-encode) become U+FFFD, consuming one byte.
func looseDecode(text string, i int) (rune, int) {
	c := text[i]
	cont := func(k int) bool { return i+k < len(text) && text[i+k]&0xC0 == 0x80 }
	switch {
	case c < 0x80:
		return rune(c), 1
	case c&0x40 == 0: // stray continuation byte
		return utf8.RuneError, 1
	case c&0x20 == 0:
		if cont(1) {
			return rune(c&0x1F)<<6 | rune(text[i+1]&0x3F), 2
		}
	case c&0x10 == 0:
		if cont(1) && cont(2) {
			return rune(c&0x0F)<<12 | rune(text[i+1]&0x3F)<<6 | rune(text[i+2]&0x3F), 3
		}
	case c&0x08 == 0:
		if cont(1) && cont(2) && cont(3) {
			r := rune(c&0x07)<<18 | rune(text[i+1]&0x3F)<<12 | rune(text[i+2]&0x3F)<<6 | rune(text[i+3]&0x3F)
			if r <= unicode.MaxRune {
				return r, 4
			}
		}
	}
	return utf8.RuneError, 1
}

// appendCodePoint appends the UTF-8 form of r without Go's surrogate check
// (llama.cpp's unicode_cpt_to_utf8 encodes surrogates as three bytes).
func appendCodePoint(b []byte, r rune) []byte {
	switch {
	case r < 0x80:
		return append(b, byte(r))
	case r < 0x800:
		return append(b, 0xC0|byte(r>>6), 0x80|byte(r&0x3F))
	case r < 0x10000:
		return append(b, 0xE0|byte(r>>12), 0x80|byte(r>>6&0x3F), 0x80|byte(r&0x3F))
	default:
		return append(b, 0xF0|byte(r>>18), 0x80|byte(r>>12&0x3F), 0x80|byte(r>>6&0x3F), 0x80|byte(r&0x3F))
	}
}

// asciiLower lower-cases ASCII letters only (the contraction alternatives only
// ever compare against ASCII letters).
func asciiLower(r rune) rune {
	if 'A' <= r && r <= 'Z' {
		return r + ('a' - 'A')
	}
	return r
}

// splitWords runs the GLM-4 pre-tokenizer over cpts and calls emit(start,
// end) for each word, in order, as half-open code point ranges that tile the
// input. cls is scratch space for the class flags.
func splitWords(cpts []rune, cls []uint8, emit func(start, end int)) []uint8 {
	n := len(cpts)
	if cap(cls) < n {
		cls = make([]uint8, 0, n)
	}
	cls = cls[:0]
	for _, r := range cpts {
		cls = append(cls, classOf(r))
	}
	flags := func(i int) uint8 {
		if i < n {
			return cls[i]
		}
		return 0
	}
	prev := 0
	add := func(end int) {
		if end > prev {
			emit(prev, end)
		}
		prev = end
	}
	for pos := 0; pos < n; {
		c := cpts[pos]
		f := cls[pos]

		// (?i:'s|'t|'re|'ve|'m|'ll|'d)
		if c == '\'' && pos+1 < n {
			c1 := asciiLower(cpts[pos+1])
			if c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd' {
				pos += 2
				add(pos)
				continue
			}
			if pos+2 < n {
				c2 := asciiLower(cpts[pos+2])
				if (c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l') {
					pos += 3
					add(pos)
					continue
				}
			}
		}

		// [^\r\n\p{L}\p{N}]?\p{L}+
		if !(c == '\r' || c == '\n' || f&clsNumber != 0) {
			if f&clsLetter != 0 || flags(pos+1)&clsLetter != 0 {
				pos++
				for flags(pos)&clsLetter != 0 {
					pos++
				}
				add(pos)
				continue
			}
		}

		// \p{N}{1,3}
		if f&clsNumber != 0 {
			ini := pos
			for flags(pos)&clsNumber != 0 {
				pos++
				if pos-ini >= 3 {
					add(pos)
					ini = pos
				}
			}
			add(pos)
			continue
		}

		// ' '?[^\s\p{L}\p{N}]+[\r\n]*
		f2 := f
		if c == ' ' {
			f2 = flags(pos + 1)
		}
		if f2&(clsSpace|clsLetter|clsNumber) == 0 {
			if c == ' ' {
				pos++
			}
			for f2&(clsSpace|clsLetter|clsNumber) == 0 && f2 != 0 {
				pos++
				f2 = flags(pos)
			}
			for pos < n && (cpts[pos] == '\r' || cpts[pos] == '\n') {
				pos++
			}
			add(pos)
			continue
		}

		// \s*[\r\n]+ | \s+(?!\S) | \s+
		nws, lastNL := 0, 0
		for flags(pos+nws)&clsSpace != 0 {
			if r := cpts[pos+nws]; r == '\r' || r == '\n' {
				lastNL = pos + nws + 1
			}
			nws++
		}
		switch {
		case lastNL > 0:
			pos = lastNL
		case nws > 1 && pos+nws < n:
			pos += nws - 1 // leave the last space to prefix the next word
		case nws > 0:
			pos += nws
		default:
			pos++ // no alternative matches: a word of one character
		}
		add(pos)
	}
	return cls
}
