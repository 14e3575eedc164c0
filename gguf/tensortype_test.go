package gguf

import "testing"

// TestTypeTraits: every named type is Known, sized and found by its name
// (any case); ids that ggml retired or never used, past the table and next
// to MMFP4 are unknown with zero sizes and no name match.
func TestTypeTraits(t *testing.T) {
	named := 0
	for id := range 5000 {
		tt := TensorType(id)
		if !tt.Known() {
			if tt.BlockSize() != 0 || tt.TypeSize() != 0 {
				t.Errorf("unknown type %d has sizes %d/%d", id, tt.BlockSize(), tt.TypeSize())
			}
			if _, err := tt.RowBytes(256); err == nil {
				t.Errorf("unknown type %d sizes a row", id)
			}
			continue
		}
		named++
		if tt.BlockSize() <= 0 || tt.TypeSize() <= 0 {
			t.Errorf("%v: sizes %d/%d", tt, tt.BlockSize(), tt.TypeSize())
		}
		for _, name := range []string{tt.String(), upper(tt.String())} {
			if got, ok := TypeByName(name); !ok || got != tt {
				t.Errorf("TypeByName(%q) = %v, %v; want %v", name, got, ok, tt)
			}
		}
	}
	if named != 33 {
		t.Errorf("%d known types, want 33 (ggml's 32 plus MMFP4)", named)
	}
	for _, id := range []int{4, 5, 31, 32, 33, 36, 37, 38, 40, 4159, 4161} {
		if TensorType(id).Known() {
			t.Errorf("type %d should be unknown", id)
		}
	}
	if got, ok := TypeByName("q4_k"); !ok || got != TypeQ4_K {
		t.Errorf("TypeByName(q4_k) = %v, %v", got, ok)
	}
	if _, ok := TypeByName("q9_K"); ok {
		t.Error("TypeByName(q9_K) found a type")
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
