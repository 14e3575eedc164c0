package glm4moe_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/model/glm4moe"
)

func loadErr(t *testing.T, sm *synthModel) error {
	t.Helper()
	f, err := gguf.Open(sm.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = glm4moe.Load(f, glm4moe.Options{Threads: 1})
	return err
}

func TestLoadErrors(t *testing.T) {
	spec := heldOutSpec()
	t.Run("other architecture", func(t *testing.T) {
		s := spec
		s.arch = "llama"
		err := loadErr(t, buildSynth(t, s, 1, nil))
		if !errors.Is(err, glm4moe.ErrUnsupportedArch) || !strings.Contains(err.Error(), "llama") {
			t.Fatalf("got %v, want ErrUnsupportedArch naming llama", err)
		}
	})
	t.Run("glm4moelite accepted", func(t *testing.T) {
		s := spec
		s.arch = "glm4moelite"
		if err := loadErr(t, buildSynth(t, s, 1, nil)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("glm4moelite without _mla keys", func(t *testing.T) {
		s := spec
		s.arch = "glm4moelite"
		sm := buildSynth(t, s, 1, func(kv map[string]gguf.Value, ts []synthTensor) []synthTensor {
			// ollama's layout: per-head sizes in key_length/value_length.
			kv["glm4moelite.attention.key_length"] = kv["glm4moelite.attention.key_length_mla"]
			kv["glm4moelite.attention.value_length"] = kv["glm4moelite.attention.value_length_mla"]
			delete(kv, "glm4moelite.attention.key_length_mla")
			delete(kv, "glm4moelite.attention.value_length_mla")
			return ts
		})
		f, err := gguf.Open(sm.path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		c, err := glm4moe.LoadConfig(f)
		if err != nil {
			t.Fatal(err)
		}
		if c.KeyLengthMLA != s.nope+s.rope || c.ValueLengthMLA != s.dv || c.KeyLength != s.kvLora+s.rope || c.ValueLength != s.kvLora {
			t.Fatalf("mapped lengths %+v", c)
		}
	})
	t.Run("missing tensor", func(t *testing.T) {
		sm := buildSynth(t, spec, 1, func(_ map[string]gguf.Value, ts []synthTensor) []synthTensor {
			var out []synthTensor
			for _, x := range ts {
				if x.name != "blk.3.attn_v_b.weight" {
					out = append(out, x)
				}
			}
			return out
		})
		err := loadErr(t, sm)
		if !errors.Is(err, glm4moe.ErrMissingTensor) || !strings.Contains(err.Error(), "blk.3.attn_v_b.weight") {
			t.Fatalf("got %v, want ErrMissingTensor naming blk.3.attn_v_b.weight", err)
		}
	})
	t.Run("wrong shape", func(t *testing.T) {
		sm := buildSynth(t, spec, 1, func(_ map[string]gguf.Value, ts []synthTensor) []synthTensor {
			for i := range ts {
				if ts[i].name == "blk.1.attn_q_b.weight" {
					ts[i].dims[1] -= 32 // one head's worth too few rows
					ts[i].vals = ts[i].vals[:ts[i].dims[0]*ts[i].dims[1]]
				}
			}
			return ts
		})
		err := loadErr(t, sm)
		if !errors.Is(err, glm4moe.ErrShape) || !strings.Contains(err.Error(), "blk.1.attn_q_b.weight") {
			t.Fatalf("got %v, want ErrShape naming blk.1.attn_q_b.weight", err)
		}
	})
	t.Run("metadata disagrees", func(t *testing.T) {
		sm := buildSynth(t, spec, 1, func(kv map[string]gguf.Value, ts []synthTensor) []synthTensor {
			kv["deepseek2.attention.kv_lora_rank"] = gguf.Uint32(64)
			kv["deepseek2.attention.key_length"] = gguf.Uint32(72)
			kv["deepseek2.attention.value_length"] = gguf.Uint32(64)
			return ts
		})
		if err := loadErr(t, sm); !errors.Is(err, glm4moe.ErrShape) {
			t.Fatalf("got %v, want ErrShape", err)
		}
	})
	t.Run("missing key", func(t *testing.T) {
		sm := buildSynth(t, spec, 1, func(kv map[string]gguf.Value, ts []synthTensor) []synthTensor {
			delete(kv, "deepseek2.attention.kv_lora_rank")
			return ts
		})
		err := loadErr(t, sm)
		if err == nil || !strings.Contains(err.Error(), "kv_lora_rank") {
			t.Fatalf("got %v, want an error naming kv_lora_rank", err)
		}
	})
	t.Run("unsupported tensor type", func(t *testing.T) {
		sm := buildSynth(t, spec, 1, func(_ map[string]gguf.Value, ts []synthTensor) []synthTensor {
			for i := range ts {
				if ts[i].name == "blk.0.attn_output.weight" {
					ts[i].typ = gguf.TypeI8
					ts[i].raw = make([]byte, len(ts[i].vals))
				}
			}
			return ts
		})
		err := loadErr(t, sm)
		if err == nil || !strings.Contains(err.Error(), "blk.0.attn_output.weight") {
			t.Fatalf("got %v, want an error naming blk.0.attn_output.weight", err)
		}
	})
}

func TestForwardErrors(t *testing.T) {
	sm := buildSynth(t, heldOutSpec(), 2, nil)
	m := loadSynth(t, sm, glm4moe.Options{Threads: 1})
	c, err := m.NewCache(8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Forward(c, synthTokens(9, sm.spec.vocab), false); err == nil || !strings.Contains(err.Error(), "context") {
		t.Fatalf("9 tokens into a context of 8: got %v", err)
	}
	if c.Len() != 0 {
		t.Fatalf("failed Forward changed the cache length to %d", c.Len())
	}
	if _, err := m.Forward(c, []int32{1, int32(sm.spec.vocab)}, false); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("out-of-range id: got %v", err)
	}
	if _, err := m.Forward(c, []int32{-1}, false); err == nil {
		t.Fatal("negative id accepted")
	}
	if _, err := m.Forward(c, synthTokens(8, sm.spec.vocab), false); err != nil {
		t.Fatalf("exactly filling the context: %v", err)
	}
	if _, err := m.Forward(c, []int32{1}, false); err == nil {
		t.Fatal("overflowing a full cache accepted")
	}
	if err := c.Truncate(9); err == nil {
		t.Fatal("Truncate beyond Len accepted")
	}
	if _, err := m.NewCache(0); err == nil {
		t.Fatal("NewCache(0) accepted")
	}
}
