package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/testdata"
)

var (
	tinyOnce sync.Once
	tinyTok  *Tokenizer
	tinyErr  error
)

// tiny loads the glm-tiny vocabulary (skips if the shared files are absent).
func tiny(t testing.TB) *Tokenizer {
	t.Helper()
	path := testdata.GLMTiny(t, "glm-tiny-bf16.gguf")
	tinyOnce.Do(func() {
		f, err := gguf.Open(path)
		if err != nil {
			tinyErr = err
			return
		}
		tinyTok, tinyErr = FromGGUF(f)
	})
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return tinyTok
}

type tokCase struct {
	Text string  `json:"text"`
	IDs  []int32 `json:"ids"`
}

func loadCases(t *testing.T) []tokCase {
	t.Helper()
	f, err := os.Open(testdata.GLMTiny(t, "tokenizer-cases.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []tokCase
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var c tokCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no tokenizer cases")
	}
	return cases
}

// TestReferenceCases reproduces llama.cpp's tokenization of every case in
// tokenizer-cases.jsonl (made with special tokens parsed).
func TestReferenceCases(t *testing.T) {
	tok := tiny(t)
	for i, c := range loadCases(t) {
		got := tok.Encode(c.Text, true)
		if !slices.Equal(got, c.IDs) {
			t.Errorf("case %d %q:\n got %v\nwant %v", i, trunc(c.Text), got, c.IDs)
			continue
		}
		// Control tokens are dropped by Decode, so compare with DecodeSpecial.
		if back := tok.DecodeSpecial(got); back != c.Text {
			t.Errorf("case %d: DecodeSpecial = %q, want %q", i, trunc(back), trunc(c.Text))
		}
	}
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// TestTokensTxtRoundTrip decodes the 256 reference ids and re-encodes them.
func TestTokensTxtRoundTrip(t *testing.T) {
	tok := tiny(t)
	raw, err := os.ReadFile(testdata.GLMTiny(t, "tokens.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int32
	for _, f := range strings.Fields(string(raw)) {
		v, err := strconv.ParseInt(f, 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, int32(v))
	}
	if len(ids) != 256 {
		t.Fatalf("tokens.txt holds %d ids, want 256", len(ids))
	}
	text := tok.DecodeSpecial(ids)
	if !strings.HasPrefix(text, "[gMASK]<sop>") {
		t.Fatalf("decoded text starts %q, want [gMASK]<sop>", trunc(text))
	}
	got := tok.Encode(text, true)
	if !slices.Equal(got, ids) {
		t.Errorf("re-encoding differs:\n got %v\nwant %v", got, ids)
	}
	plain := tok.Decode(ids)
	if plain != strings.TrimPrefix(text, "[gMASK]<sop>") {
		t.Errorf("Decode did not drop exactly the control tokens")
	}
}
