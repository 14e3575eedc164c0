package glm4moe

import (
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// TestTopK compares topK with a stable descending sort (the router's
// former selection) on random values with many ties.
func TestTopK(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for it := 0; it < 2000; it++ {
		n := 1 + r.IntN(70)
		k := 1 + r.IntN(n)
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.IntN(8)) // ties are common
		}
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return v[idx[a]] > v[idx[b]] })
		if got := topK(nil, v, k); !slices.Equal(got, idx[:k]) {
			t.Fatalf("topK(%v, %d) = %v, want %v", v, k, got, idx[:k])
		}
	}
}
