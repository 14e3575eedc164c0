// Package tokenizer implements GLM-4.7-Flash's tokenizer as llama.cpp runs it
// from GGUF metadata: GPT-2 style byte-level BPE (tokenizer.ggml.model
// "gpt2") with the GLM-4 pre-tokenizer (tokenizer.ggml.pre "glm4").
//
// Encoding: the text is first split on special tokens (see Encode), each
// remaining gap is split into words by the pre-tokenizer (pretokenize.go),
// each word's bytes are mapped to GPT-2's byte alphabet (bytemap.go), and
// merges are applied lowest rank first (bpe.go). Decoding reverses the byte
// mapping. Token ids are int32 indices into tokenizer.ggml.tokens.
//
// A Tokenizer is immutable after construction and safe for concurrent use.
package tokenizer

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/glmrun/glmrun/gguf"
)

// TokenType is a vocabulary entry's tokenizer.ggml.token_type value
// (llama.cpp's llama_token_type).
type TokenType int32

// Token types, numbered as in GGUF.
const (
	TypeUndefined   TokenType = 0
	TypeNormal      TokenType = 1
	TypeUnknown     TokenType = 2
	TypeControl     TokenType = 3
	TypeUserDefined TokenType = 4
	TypeUnused      TokenType = 5
	TypeByte        TokenType = 6
)

// Config is everything a Tokenizer is built from; FromGGUF fills it from a
// file's tokenizer.ggml.* metadata. Special ids are -1 when absent.
type Config struct {
	Model  string      // tokenizer.ggml.model; must be "gpt2"
	Pre    string      // tokenizer.ggml.pre; see SupportedPre
	Tokens []string    // tokenizer.ggml.tokens, indexed by id
	Types  []TokenType // tokenizer.ggml.token_type, same length as Tokens; nil means all normal
	Merges []string    // tokenizer.ggml.merges, "left right", rank = index

	BOS, EOS, EOT, EOM, PAD, UNK int32
	AddBOS                       bool // tokenizer.ggml.add_bos_token
	AddEOS                       bool // tokenizer.ggml.add_eos_token
}

// SupportedPre lists the tokenizer.ggml.pre values this package accepts. All
// of them use the same pre-tokenizer regex and plain rank-ordered merges in
// llama.cpp ("glm4"/"chatglm-bpe" are GLM's; "dbrx" and "smaug-bpe" share the
// regex). Pre-tokenizers with the same regex but other behaviour (the llama3
// family skips merges for whole-word tokens) are rejected.
var SupportedPre = []string{"glm4", "chatglm-bpe", "dbrx", "smaug-bpe"}

// Tokenizer encodes text to token ids and decodes ids to text.
type Tokenizer struct {
	tokens []string
	types  []TokenType
	toID   map[string]int32

	// BPE state. Symbols are interned strings: ids below len(tokens) are
	// vocabulary tokens, higher ids are strings that occur in merges but not
	// in the vocabulary (virtual[id-len(tokens)] holds their text).
	symID   map[string]int32
	virtual []string
	merges  map[uint64]merge // key: left<<32 | right symbol id
	byteSym [256]int32       // symbol of each byte's mapped character

	specials []int32 // control, user-defined and unknown tokens, longest text first

	// pieces holds each token's decoded bytes for NORMAL tokens (the byte
	// mapping reversed) and the raw text for all others: piece(id) =
	// pieceBuf[pieceOff[id]:pieceOff[id+1]].
	pieceBuf []byte
	pieceOff []uint32

	bos, eos, eot, eom, pad, unk int32
	addBOS, addEOS               bool
	eog                          []int32
	isEOG                        map[int32]bool

	cacheMu sync.Mutex
	cache   map[string][]int32
}

// merge is one BPE merge rule: its rank and the symbol it produces.
type merge struct {
	rank   int32
	result int32
}

// ErrUnsupported is wrapped by errors about a tokenizer model or
// pre-tokenizer this package does not implement.
var ErrUnsupported = errors.New("tokenizer: unsupported")

// FromGGUF builds the tokenizer described by f's tokenizer.ggml.* metadata.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	var c Config
	var err error
	if c.Model, err = f.String("tokenizer.ggml.model"); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if c.Model != "gpt2" {
		return nil, fmt.Errorf("%w model %q (tokenizer.ggml.model); only \"gpt2\" (byte-level BPE) is implemented", ErrUnsupported, c.Model)
	}
	if c.Pre, err = f.String("tokenizer.ggml.pre"); err != nil {
		return nil, fmt.Errorf("tokenizer: %w (the pre-tokenizer must be named; supported: %s)", err, strings.Join(SupportedPre, ", "))
	}
	if c.Tokens, err = f.Strings("tokenizer.ggml.tokens"); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if f.Has("tokenizer.ggml.token_type") {
		raw, err := f.Int32s("tokenizer.ggml.token_type")
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		c.Types = make([]TokenType, len(raw))
		for i, v := range raw {
			c.Types[i] = TokenType(v)
		}
	}
	if c.Merges, err = f.Strings("tokenizer.ggml.merges"); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	ids := []struct {
		key string
		dst *int32
	}{
		{"tokenizer.ggml.bos_token_id", &c.BOS},
		{"tokenizer.ggml.eos_token_id", &c.EOS},
		{"tokenizer.ggml.eot_token_id", &c.EOT},
		{"tokenizer.ggml.eom_token_id", &c.EOM},
		{"tokenizer.ggml.padding_token_id", &c.PAD},
		{"tokenizer.ggml.unknown_token_id", &c.UNK},
	}
	for _, s := range ids {
		*s.dst = -1
		if !f.Has(s.key) {
			continue
		}
		v, err := f.Uint32(s.key)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		if v >= uint32(len(c.Tokens)) {
			return nil, fmt.Errorf("tokenizer: %s = %d is outside the vocabulary of %d tokens", s.key, v, len(c.Tokens))
		}
		*s.dst = int32(v)
	}
	for _, b := range []struct {
		key string
		dst *bool
	}{{"tokenizer.ggml.add_bos_token", &c.AddBOS}, {"tokenizer.ggml.add_eos_token", &c.AddEOS}} {
		if f.Has(b.key) {
			if *b.dst, err = f.Bool(b.key); err != nil {
				return nil, fmt.Errorf("tokenizer: %w", err)
			}
		}
	}
	return New(c)
}

// New builds a tokenizer from c. It checks the model and pre-tokenizer names,
// that Types (if given) matches Tokens in length, and that every special id
// is -1 or inside the vocabulary.
func New(c Config) (*Tokenizer, error) {
	if c.Model != "gpt2" {
		return nil, fmt.Errorf("%w model %q; only \"gpt2\" (byte-level BPE) is implemented", ErrUnsupported, c.Model)
	}
	preOK := false
	for _, p := range SupportedPre {
		preOK = preOK || c.Pre == p
	}
	if !preOK {
		return nil, fmt.Errorf("%w pre-tokenizer %q (tokenizer.ggml.pre); supported: %s", ErrUnsupported, c.Pre, strings.Join(SupportedPre, ", "))
	}
	n := len(c.Tokens)
	if n == 0 {
		return nil, errors.New("tokenizer: empty vocabulary (tokenizer.ggml.tokens)")
	}
	if n > 1<<30 {
		return nil, fmt.Errorf("tokenizer: vocabulary of %d tokens is too large", n)
	}
	if c.Types != nil && len(c.Types) != n {
		return nil, fmt.Errorf("tokenizer: %d token types for %d tokens (tokenizer.ggml.token_type)", len(c.Types), n)
	}
	t := &Tokenizer{
		tokens: make([]string, n),
		types:  make([]TokenType, n),
		toID:   make(map[string]int32, n),
		addBOS: c.AddBOS,
		addEOS: c.AddEOS,
		cache:  make(map[string][]int32),
	}
	for i, s := range c.Tokens {
		if s == "" { // as llama.cpp: an empty entry would match everywhere
			s = fmt.Sprintf("[EMPTY_%d]", i)
		}
		t.tokens[i] = s
		t.toID[s] = int32(i) // a duplicate string maps to its last id, as in llama.cpp
		t.types[i] = TypeNormal
		if c.Types != nil {
			t.types[i] = c.Types[i]
		}
	}
	for _, s := range []struct {
		name string
		v    int32
		dst  *int32
	}{{"bos", c.BOS, &t.bos}, {"eos", c.EOS, &t.eos}, {"eot", c.EOT, &t.eot}, {"eom", c.EOM, &t.eom}, {"pad", c.PAD, &t.pad}, {"unk", c.UNK, &t.unk}} {
		if s.v < -1 || s.v >= int32(n) {
			return nil, fmt.Errorf("tokenizer: %s id %d is outside the vocabulary of %d tokens", s.name, s.v, n)
		}
		*s.dst = s.v
	}
	if t.addBOS && t.bos < 0 {
		return nil, errors.New("tokenizer: add_bos_token is set but there is no bos_token_id")
	}
	if t.addEOS && t.eos < 0 {
		return nil, errors.New("tokenizer: add_eos_token is set but there is no eos_token_id")
	}
	t.buildBPE(c.Merges)
	t.buildSpecials()
	t.buildPieces()
	t.buildEOG()
	return t, nil
}

// buildBPE interns symbols and indexes merges by their symbol pair.
func (t *Tokenizer) buildBPE(merges []string) {
	n := int32(len(t.tokens))
	t.symID = make(map[string]int32, len(t.tokens)+len(merges)/8)
	for i := int32(0); i < n; i++ {
		t.symID[t.tokens[i]] = t.toID[t.tokens[i]]
	}
	intern := func(s string) int32 {
		if id, ok := t.symID[s]; ok {
			return id
		}
		id := n + int32(len(t.virtual))
		t.virtual = append(t.virtual, s)
		t.symID[s] = id
		return id
	}
	for b := 0; b < 256; b++ {
		t.byteSym[b] = intern(string(byteToRune[b]))
	}
	t.merges = make(map[uint64]merge, len(merges))
	for rank, m := range merges {
		// llama.cpp splits at the first space after the first byte, so a
		// left side may itself be a space character.
		sp := -1
		if len(m) > 1 {
			if i := strings.IndexByte(m[1:], ' '); i >= 0 {
				sp = i + 1
			}
		}
		if sp < 0 {
			continue // malformed rule: llama.cpp records ("", "") which never matches
		}
		left, right := m[:sp], m[sp+1:]
		if right == "" {
			continue
		}
		l, r := intern(left), intern(right)
		key := uint64(uint32(l))<<32 | uint64(uint32(r))
		if _, dup := t.merges[key]; dup {
			continue // the first (lowest) rank wins, as with std::map::emplace
		}
		t.merges[key] = merge{rank: int32(rank), result: intern(left + right)}
	}
}

// buildSpecials collects the tokens that Encode splits out before BPE:
// control, user-defined and unknown types, longest text first (ties by id).
func (t *Tokenizer) buildSpecials() {
	for id, ty := range t.types {
		if ty == TypeControl || ty == TypeUserDefined || ty == TypeUnknown {
			t.specials = append(t.specials, int32(id))
		}
	}
	sort.SliceStable(t.specials, func(a, b int) bool {
		return len(t.tokens[t.specials[a]]) > len(t.tokens[t.specials[b]])
	})
}

// buildEOG collects the end-of-generation tokens: eos, eot and eom, plus the
// tokens named <|endoftext|>, <|user|> and <|observation|> (GLM's EOG set,
// found by text as llama.cpp does for vocabularies whose metadata lacks ids).
func (t *Tokenizer) buildEOG() {
	t.isEOG = make(map[int32]bool)
	add := func(id int32) {
		if id >= 0 && !t.isEOG[id] {
			t.isEOG[id] = true
			t.eog = append(t.eog, id)
		}
	}
	add(t.eos)
	add(t.eot)
	add(t.eom)
	for _, s := range []string{"<|endoftext|>", "<|user|>", "<|observation|>"} {
		if id, ok := t.toID[s]; ok {
			add(id)
		}
	}
	sort.Slice(t.eog, func(a, b int) bool { return t.eog[a] < t.eog[b] })
}

// VocabSize is the number of tokens (len(tokenizer.ggml.tokens)); valid ids
// are 0..VocabSize()-1.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// TokenText returns the raw vocabulary string of id (in GPT-2's byte
// alphabet for normal tokens), or "" if id is out of range.
func (t *Tokenizer) TokenText(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// TokenType returns the type of id, or TypeUndefined if id is out of range.
func (t *Tokenizer) TokenType(id int32) TokenType {
	if id < 0 || int(id) >= len(t.types) {
		return TypeUndefined
	}
	return t.types[id]
}

// ID looks a token up by its exact vocabulary string (e.g. "<|user|>", or
// "Ġthe" for " the").
func (t *Tokenizer) ID(text string) (int32, bool) {
	id, ok := t.toID[text]
	return id, ok
}

// IsEOG reports whether generating id ends the turn (see EOGIDs).
func (t *Tokenizer) IsEOG(id int32) bool { return t.isEOG[id] }

// EOGIDs returns the end-of-generation ids, ascending: the eos, eot and eom
// ids from the metadata plus any tokens named <|endoftext|>, <|user|> or
// <|observation|>. The caller must not modify the slice.
func (t *Tokenizer) EOGIDs() []int32 { return t.eog }

// BOS returns the bos_token_id, or -1 if there is none. For GLM it is
// [gMASK] but is never added automatically (see AddBOS).
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns the eos_token_id, or -1 if there is none.
func (t *Tokenizer) EOS() int32 { return t.eos }

// AddBOS reports whether the model asks for a BOS token before the prompt
// (tokenizer.ggml.add_bos_token true). Encode never adds one itself: raw
// completion callers should prepend BOS() when this is true. GLM files leave
// it unset (the chat template writes [gMASK]<sop> itself).
func (t *Tokenizer) AddBOS() bool { return t.addBOS }

// AddEOS reports tokenizer.ggml.add_eos_token; Encode never appends EOS.
func (t *Tokenizer) AddEOS() bool { return t.addEOS }
