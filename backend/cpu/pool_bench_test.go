package cpu

import "testing"

// BenchmarkPoolFor measures the dispatch cost of one For over trivial work.
func BenchmarkPoolFor(b *testing.B) {
	for _, threads := range []int{2, 16} {
		p := NewPool(threads)
		sink := make([]int, threads)
		b.Run(string(rune('0'+threads/10))+string(rune('0'+threads%10)), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				p.For(1024, 1, func(w, lo, hi int) { sink[w] += hi - lo })
			}
		})
	}
}
