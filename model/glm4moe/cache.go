package glm4moe

import "fmt"

// Cache is the latent KV cache of one sequence. For every layer it holds
// Cap() rows of Config.CacheRow() float32 values (kv_lora_rank + rope_dim,
// 576 for GLM-4.7-Flash): row p = [RMSNorm(kv_latent) ; RoPE(k_pe)] of the
// token at position p. The attention value of a token is the first
// kv_lora_rank entries of its row; no separate V is stored.
type Cache struct {
	m      *Model
	layers [][]float32 // [NLayer][cap·width]
	width  int
	n, cap int
	gpu    *gpuCache // device rows when the model runs on CUDA (layers is nil)
	logits []float32 // last-token logits of the latest Forward (CPU), reused
}

// NewCache allocates a cache for up to maxTokens tokens. The memory is
// NLayer·maxTokens·CacheRow·4 bytes (untouched pages are not resident).
func (m *Model) NewCache(maxTokens int) (*Cache, error) {
	if maxTokens <= 0 {
		return nil, fmt.Errorf("glm4moe: cache size %d must be positive", maxTokens)
	}
	w := m.cfg.CacheRow()
	if int64(maxTokens)*int64(w)*int64(m.cfg.NLayer) > 1<<40 {
		return nil, fmt.Errorf("glm4moe: cache of %d tokens is too large", maxTokens)
	}
	c := &Cache{m: m, width: w, cap: maxTokens}
	if m.gpu != nil {
		gc, err := m.gpu.newGPUCache(maxTokens)
		if err != nil {
			return nil, err
		}
		c.gpu = gc
		return c, nil
	}
	c.layers = make([][]float32, m.cfg.NLayer)
	for l := range c.layers {
		c.layers[l] = make([]float32, maxTokens*w)
	}
	return c, nil
}

// Len returns the number of tokens in the cache (the next position).
func (c *Cache) Len() int { return c.n }

// Cap returns the maximum number of tokens.
func (c *Cache) Cap() int { return c.cap }

// Reset empties the cache.
func (c *Cache) Reset() { c.n = 0 }

// Truncate keeps the first n tokens (0 <= n <= Len()).
func (c *Cache) Truncate(n int) error {
	if n < 0 || n > c.n {
		return fmt.Errorf("glm4moe: truncate cache of %d tokens to %d", c.n, n)
	}
	c.n = n
	return nil
}

// row returns the cached row of layer l at position p.
func (c *Cache) row(l, p int) []float32 {
	return c.layers[l][p*c.width : (p+1)*c.width]
}
