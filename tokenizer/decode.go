package tokenizer

import (
	"unicode/utf8"
)

// buildPieces precomputes every token's output bytes: for normal tokens the
// byte mapping reversed (a character outside GPT-2's byte alphabet is kept as
// its own UTF-8), for all other types the raw vocabulary text.
func (t *Tokenizer) buildPieces() {
	size := 0
	for _, s := range t.tokens {
		size += len(s)
	}
	t.pieceBuf = make([]byte, 0, size)
	t.pieceOff = make([]uint32, 0, len(t.tokens)+1)
	for i, s := range t.tokens {
		t.pieceOff = append(t.pieceOff, uint32(len(t.pieceBuf)))
		if t.types[i] != TypeNormal {
			t.pieceBuf = append(t.pieceBuf, s...)
			continue
		}
		for _, r := range s {
			if b, ok := byteOfRune(r); ok {
				t.pieceBuf = append(t.pieceBuf, b)
			} else {
				t.pieceBuf = utf8.AppendRune(t.pieceBuf, r)
			}
		}
	}
	t.pieceOff = append(t.pieceOff, uint32(len(t.pieceBuf)))
}

// appendPiece appends the text of id as llama.cpp's token_to_piece prints it:
// normal tokens as their bytes; user-defined tokens as their text; control
// and unknown tokens as their text only if special is set; unused, byte and
// undefined types, and out-of-range ids, as nothing.
func (t *Tokenizer) appendPiece(b []byte, id int32, special bool) []byte {
	if id < 0 || int(id) >= len(t.tokens) {
		return b
	}
	switch t.types[id] {
	case TypeNormal, TypeUserDefined:
	case TypeControl, TypeUnknown:
		if !special {
			return b
		}
	default:
		return b
	}
	return append(b, t.pieceBuf[t.pieceOff[id]:t.pieceOff[id+1]]...)
}

// Piece returns the text of one token (see Decode); with special set,
// control tokens such as <|user|> are printed as their text too.
func (t *Tokenizer) Piece(id int32, special bool) string {
	return string(t.appendPiece(nil, id, special))
}

// Decode returns the text of ids: control tokens (type 3) and unknown tokens
// are skipped, user-defined tokens (type 4) are printed as their text, and
// normal tokens are mapped back to their bytes. Out-of-range ids are
// skipped. The result is the plain concatenation of the pieces (no
// clean-up of spaces), so Decode(Encode(s, false)) == s for valid UTF-8 s.
// It may be invalid UTF-8 if ids end or start inside a character.
func (t *Tokenizer) Decode(ids []int32) string {
	var b []byte
	for _, id := range ids {
		b = t.appendPiece(b, id, false)
	}
	return string(b)
}

// DecodeSpecial is Decode with control tokens printed as their text.
func (t *Tokenizer) DecodeSpecial(ids []int32) string {
	var b []byte
	for _, id := range ids {
		b = t.appendPiece(b, id, true)
	}
	return string(b)
}

// StreamDecoder turns a stream of token ids into text without ever splitting
// a UTF-8 character: bytes of a character that is still incomplete are held
// back until the tokens completing it arrive. Not safe for concurrent use.
type StreamDecoder struct {
	t       *Tokenizer
	special bool
	pending []byte
}

// NewDecoder returns a streaming decoder with Decode's rules (control tokens
// skipped).
func (t *Tokenizer) NewDecoder() *StreamDecoder { return &StreamDecoder{t: t} }

// NewSpecialDecoder returns a streaming decoder that prints control tokens as
// their text (DecodeSpecial's rules).
func (t *Tokenizer) NewSpecialDecoder() *StreamDecoder {
	return &StreamDecoder{t: t, special: true}
}

// Add decodes one more token and returns the text that is now complete: all
// pending bytes except a trailing prefix of a multi-byte character that later
// bytes could still complete. Bytes that can never form a valid character are
// passed through as they are.
func (d *StreamDecoder) Add(id int32) string {
	d.pending = d.t.appendPiece(d.pending, id, d.special)
	p := d.pending
	cut := len(p)
	// Find the start of the last character (at most 3 bytes back for an
	// incomplete one) and hold it if it is an incomplete, valid prefix.
	for i := len(p) - 1; i >= 0 && i >= len(p)-3; i-- {
		if p[i]&0xC0 != 0x80 { // not a continuation byte
			if !utf8.FullRune(p[i:]) {
				cut = i
			}
			break
		}
	}
	out := string(p[:cut])
	d.pending = append(d.pending[:0], p[cut:]...)
	return out
}

// Flush returns any held-back bytes (an incomplete character at the end of
// the stream) and resets the decoder.
func (d *StreamDecoder) Flush() string {
	out := string(d.pending)
	d.pending = d.pending[:0]
	return out
}
