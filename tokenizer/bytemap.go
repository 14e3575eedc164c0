package tokenizer

// GPT-2 byte-level BPE does not work on raw bytes: every byte is first mapped
// to a printable Unicode character ("bytes_to_unicode" in OpenAI's encoder.py)
// and the vocabulary and merges are written in those characters. Printable
// bytes '!'..'~', '¡'..'¬' and '®'..'ÿ' map to themselves; the other 68 bytes
// map, in increasing byte order, to U+0100, U+0101, ... (so ' ' is 'Ġ' U+0120
// and '\n' is 'Ċ' U+010A).

// byteToRune is the byte -> character table.
var byteToRune [256]rune

// runeToByte is the inverse of byteToRune, indexed by character; entries for
// characters that are not the image of a byte hold -1. Every image lies below
// 0x100+68, so the table is small.
var runeToByte [0x100 + 68]int16

func init() {
	for i := range runeToByte {
		runeToByte[i] = -1
	}
	n := 0
	for b := 0; b < 256; b++ {
		if ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || (0xAE <= b && b <= 0xFF) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = rune(0x100 + n)
			n++
		}
		runeToByte[byteToRune[b]] = int16(b)
	}
}

// byteOfRune returns the byte a character stands for, and false if the
// character is not in the byte alphabet.
func byteOfRune(r rune) (byte, bool) {
	if r < 0 || int(r) >= len(runeToByte) || runeToByte[r] < 0 {
		return 0, false
	}
	return byte(runeToByte[r]), true
}
