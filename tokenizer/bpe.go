package tokenizer

import (
	"strings"
)

// maxCacheEntries bounds the word cache; it is cleared when full.
const maxCacheEntries = 1 << 16

// maxCachedWord is the longest word (in bytes) that is cached.
const maxCachedWord = 64

// Encode tokenizes text and returns its token ids. No BOS or EOS is added (see
// AddBOS).
//
// Special tokens are split out first, as llama.cpp does: for each special
// token, longest text first, every occurrence in the not-yet-matched text
// becomes that token. With parseSpecial the candidates are all control,
// user-defined and unknown tokens (use this for rendered chat prompts, whose
// <|user|>, <think>, ... must become single tokens); without it only
// user-defined tokens are matched (llama.cpp's parse_special=false), so
// "<|user|>" typed by a user is tokenized as plain text. The gaps between
// special tokens are pre-tokenized and BPE-encoded independently.
//
// Invalid UTF-8 does not fail: each byte that does not start a well-formed
// sequence is encoded as U+FFFD, as llama.cpp does.
func (t *Tokenizer) Encode(text string, parseSpecial bool) []int32 {
	out := make([]int32, 0, len(text)/4+4)
	var sc scratch
	for _, fr := range t.partition(text, parseSpecial) {
		if fr.special >= 0 {
			out = append(out, fr.special)
			continue
		}
		out = t.encodeText(text[fr.start:fr.end], out, &sc)
	}
	return out
}

// fragment is a piece of the input: a special token (special >= 0) or the
// raw text text[start:end].
type fragment struct {
	special    int32
	start, end int
}

// partition splits text on special tokens (see Encode).
func (t *Tokenizer) partition(text string, parseSpecial bool) []fragment {
	frags := []fragment{{special: -1, start: 0, end: len(text)}}
	if len(text) == 0 {
		return nil
	}
	var next []fragment
	for _, id := range t.specials {
		ty := t.types[id]
		if !parseSpecial && ty != TypeUserDefined {
			continue
		}
		tok := t.tokens[id]
		found := false
		for _, fr := range frags {
			if fr.special < 0 && strings.Contains(text[fr.start:fr.end], tok) {
				found = true
				break
			}
		}
		if !found {
			continue
		}
		next = next[:0]
		for _, fr := range frags {
			if fr.special >= 0 {
				next = append(next, fr)
				continue
			}
			s := fr.start
			for {
				i := strings.Index(text[s:fr.end], tok)
				if i < 0 {
					break
				}
				if i > 0 {
					next = append(next, fragment{special: -1, start: s, end: s + i})
				}
				next = append(next, fragment{special: id})
				s += i + len(tok)
			}
			if s < fr.end {
				next = append(next, fragment{special: -1, start: s, end: fr.end})
			}
		}
		frags, next = next, frags
	}
	return frags
}

// scratch holds reusable buffers for one Encode call.
type scratch struct {
	cpts []rune
	offs []int32
	cls  []uint8
	syms []symbol
	heap bigramHeap
}

// encodeText pre-tokenizes and BPE-encodes one gap between special tokens.
func (t *Tokenizer) encodeText(text string, out []int32, sc *scratch) []int32 {
	var norm string
	sc.cpts, sc.offs, norm = decodeText(text, sc.cpts, sc.offs)
	sc.cls = splitWords(sc.cpts, sc.cls, func(a, b int) {
		out = t.encodeWord(norm[sc.offs[a]:sc.offs[b]], out, sc)
	})
	return out
}

// encodeWord appends the BPE tokens of one pre-tokenized word (raw bytes).
func (t *Tokenizer) encodeWord(word string, out []int32, sc *scratch) []int32 {
	if len(word) <= maxCachedWord {
		t.cacheMu.Lock()
		ids, ok := t.cache[word]
		t.cacheMu.Unlock()
		if ok {
			return append(out, ids...)
		}
	}
	start := len(out)
	out = t.bpe(word, out, sc)
	if len(word) <= maxCachedWord {
		ids := append([]int32(nil), out[start:]...)
		t.cacheMu.Lock()
		if len(t.cache) >= maxCacheEntries {
			clear(t.cache)
		}
		t.cache[word] = ids
		t.cacheMu.Unlock()
	}
	return out
}

// symbol is one node of the doubly linked list BPE merges over.
type symbol struct {
	id         int32 // interned symbol id; -1 once merged into its left neighbour
	prev, next int32 // neighbour indices, -1 at the ends
}

// bigram is a candidate merge of syms[left] and syms[right].
type bigram struct {
	rank        int32
	left, right int32
	rightID     int32 // syms[right].id when queued, to detect stale entries
	result      int32
}

// bigramHeap is a binary min-heap ordered by (rank, left): the lowest-ranked
// merge goes first and ties go to the leftmost pair, as in llama.cpp.
type bigramHeap []bigram

func (h bigramHeap) less(i, j int) bool {
	return h[i].rank < h[j].rank || (h[i].rank == h[j].rank && h[i].left < h[j].left)
}

func (h *bigramHeap) push(b bigram) {
	*h = append(*h, b)
	q := *h
	i := len(q) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

func (h *bigramHeap) pop() bigram {
	q := *h
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q = q[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(q) && q.less(l, m) {
			m = l
		}
		if r < len(q) && q.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	*h = q
	return top
}

// bpe merges the byte symbols of word by rank and appends the resulting
// token ids. A final symbol that is not a vocabulary token (possible only
// with an inconsistent vocabulary) is emitted as the single-byte tokens of
// its text that exist, as llama.cpp does.
func (t *Tokenizer) bpe(word string, out []int32, sc *scratch) []int32 {
	if word == "" {
		return out
	}
	syms := sc.syms[:0]
	for i := 0; i < len(word); i++ {
		syms = append(syms, symbol{id: t.byteSym[word[i]], prev: int32(i) - 1, next: int32(i) + 1})
	}
	syms[len(syms)-1].next = -1
	h := sc.heap[:0]
	try := func(l, r int32) {
		if l < 0 || r < 0 {
			return
		}
		m, ok := t.merges[uint64(uint32(syms[l].id))<<32|uint64(uint32(syms[r].id))]
		if ok {
			h.push(bigram{rank: m.rank, left: l, right: r, rightID: syms[r].id, result: m.result})
		}
	}
	for i := 1; i < len(syms); i++ {
		try(int32(i-1), int32(i))
	}
	for len(h) > 0 {
		b := h.pop()
		l, r := &syms[b.left], &syms[b.right]
		// Stale if either side was merged away or the right side grew. The
		// left side cannot change while the right one is still its neighbour.
		if l.id < 0 || r.id < 0 || r.id != b.rightID {
			continue
		}
		l.id = b.result
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = b.left
		}
		r.id = -1
		try(l.prev, b.left)
		try(b.left, l.next)
	}
	n := int32(len(t.tokens))
	for i := int32(0); i >= 0; i = syms[i].next {
		id := syms[i].id
		if id < n {
			out = append(out, id)
			continue
		}
		s := t.virtual[id-n]
		for j := 0; j < len(s); j++ {
			if tid, ok := t.toID[s[j:j+1]]; ok {
				out = append(out, tid)
			}
		}
	}
	sc.syms, sc.heap = syms, h
	return out
}
