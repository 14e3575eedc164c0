package backendtest

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/glmrun/glmrun/backend"
	"github.com/glmrun/glmrun/backend/cpu"
)

// wrong is the CPU backend with one op replaced by a subtly wrong version,
// to show that the suite catches such bugs.
type wrong struct {
	backend.Backend
	ops backend.Ops
}

func (w wrong) Ops() backend.Ops { return w.ops }

// bugOps embeds the real ops; each bug overrides one method.
type bugOps struct {
	backend.Ops
	b backend.Backend
}

// edit downloads an F32 buffer, lets f change it and uploads it back.
func (o bugOps) edit(buf backend.Buffer, f func(v []float32)) {
	raw := make([]byte, 4*backend.Elems(buf.Shape()))
	if err := o.b.Download(raw, buf); err != nil {
		panic(err)
	}
	v := make([]float32, len(raw)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	f(v)
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	if err := o.b.Upload(buf, raw); err != nil {
		panic(err)
	}
}

// rmsNormScaled is RMSNorm off by 0.1% (an eps or a mean taken over d-1
// values would look like this).
type rmsNormScaled struct{ bugOps }

func (o rmsNormScaled) RMSNorm(out, x, w backend.Buffer, eps float32) error {
	if err := o.Ops.RMSNorm(out, x, w, eps); err != nil {
		return err
	}
	o.edit(out, func(v []float32) {
		for i := range v {
			v[i] *= 1.001
		}
	})
	return nil
}

// matMulLastRowCopied repeats the second-to-last output row (an off-by-one
// in a row loop).
type matMulLastRowCopied struct{ bugOps }

func (o matMulLastRowCopied) MatMul(out, w, x backend.Buffer) error {
	if err := o.Ops.MatMul(out, w, x); err != nil {
		return err
	}
	m, n := backend.Dims2(out)
	if m > 1 {
		o.edit(out, func(v []float32) {
			for t := 0; t < n; t++ {
				v[t*m+m-1] = v[t*m+m-2]
			}
		})
	}
	return nil
}

// matMulIDZeroOutOfRange writes zeros, not NaN, for ids out of range.
type matMulIDZeroOutOfRange struct{ bugOps }

func (o matMulIDZeroOutOfRange) MatMulID(out, w, x, ids backend.Buffer) error {
	if err := o.Ops.MatMulID(out, w, x, ids); err != nil {
		return err
	}
	o.edit(out, func(v []float32) {
		for i := range v {
			if v[i] != v[i] {
				v[i] = 0
			}
		}
	})
	return nil
}

// routerNoRenorm ignores norm.
type routerNoRenorm struct{ bugOps }

func (o routerNoRenorm) Router(ids, weights, logits, bias backend.Buffer, k int, norm bool, scale float32) error {
	return o.Ops.Router(ids, weights, logits, bias, k, false, scale)
}

// ropeNextPosition rotates every token one position too far.
type ropeNextPosition struct{ bugOps }

func (o ropeNextPosition) RoPE(x, pos backend.Buffer, offset, dims int, base float32) error {
	if err := o.Ops.RoPE(x, pos, offset, dims, base); err != nil {
		return err
	}
	one, err := o.b.Alloc(backend.I32, pos.Shape()...)
	if err != nil {
		return err
	}
	defer one.Free()
	raw := make([]byte, 4*backend.Elems(pos.Shape()))
	for i := 0; i < len(raw); i += 4 {
		binary.LittleEndian.PutUint32(raw[i:], 1)
	}
	if err := o.b.Upload(one, raw); err != nil {
		return err
	}
	return o.Ops.RoPE(x, one, offset, dims, base)
}

// ropeNoop rotates nothing. (A RoPE one position off for every token is
// invisible to attention, which sees only relative positions; RoPE's own
// check catches that one.)
type ropeNoop struct{ bugOps }

func (o ropeNoop) RoPE(x, pos backend.Buffer, offset, dims int, base float32) error { return nil }

// mlaWrongScale uses 1/sqrt(576) instead of the given 1/sqrt(256) (the bug
// ollama shipped).
type mlaWrongScale struct{ bugOps }

func (o mlaWrongScale) MLAAttention(out, q, cache, nkv backend.Buffer, scale float32) error {
	return o.Ops.MLAAttention(out, q, cache, nkv, scale*16/24)
}

// swigluSigmoid uses sigmoid(gate) instead of silu(gate).
type swigluSigmoid struct{ bugOps }

func (o swigluSigmoid) SwiGLU(out, gate, up backend.Buffer) error {
	g := make([]float32, backend.Elems(gate.Shape()))
	o.edit(gate, func(v []float32) { copy(g, v) })
	if err := o.Ops.SwiGLU(out, gate, up); err != nil {
		return err
	}
	o.edit(out, func(v []float32) {
		for i := range v {
			if g[i] != 0 {
				v[i] /= g[i]
			}
		}
	})
	return nil
}

// matMulRefuses claims every product is not implemented (a listed dtype
// must run the shapes of real models).
type matMulRefuses struct{ bugOps }

func (o matMulRefuses) MatMul(out, w, x backend.Buffer) error { return backend.ErrNotImplemented }

// hidesQ4K lists no Q4_K weights while its ops still run them: the
// capabilities are then wrong, which the suite must notice.
type hidesQ4K struct{ wrong }

func (w hidesQ4K) Capabilities() backend.Capabilities {
	c := w.wrong.Capabilities()
	var keep []backend.DType
	for _, t := range c.WeightTypes {
		if t != backend.Q4_K {
			keep = append(keep, t)
		}
	}
	c.WeightTypes = keep
	return c
}

func findCheck(t *testing.T, name string) check {
	for _, c := range checks {
		if c.name == name {
			return c
		}
	}
	t.Fatalf("no check %q", name)
	return check{}
}

// TestSuiteCatchesBugs runs each check against the CPU backend with one
// wrong op and requires the check to fail, and against the plain CPU
// backend (through the same wrapper) and requires it to pass.
func TestSuiteCatchesBugs(t *testing.T) {
	for _, mode := range []cpu.Mode{cpu.Fast, cpu.Exact} {
		be := cpu.NewBackend(2, mode)
		base := bugOps{Ops: be.Ops(), b: be}
		for _, c := range []struct {
			check string
			ops   backend.Ops
		}{
			{"RMSNorm", rmsNormScaled{base}},
			{"MatMul", matMulLastRowCopied{base}},
			{"MatMulID", matMulIDZeroOutOfRange{base}},
			{"Router", routerNoRenorm{base}},
			{"RoPE", ropeNextPosition{base}},
			{"MLAAttention", mlaWrongScale{base}},
			{"SwiGLU", swigluSigmoid{base}},
			{"GLMLayer", mlaWrongScale{base}},
			{"GLMLayer", routerNoRenorm{base}},
			{"GLMLayer", ropeNoop{base}},
		} {
			chk := findCheck(t, c.check)
			if rec := runRecorded(chk, wrong{be, base}, 1); rec.failed {
				t.Errorf("%s mode %s: the check fails on the correct backend: %s", c.check, mode, rec)
			}
			rec := runRecorded(chk, wrong{be, c.ops}, 1)
			if !rec.failed {
				t.Errorf("%s mode %s: a wrong %T passed the check", c.check, mode, c.ops)
			} else {
				t.Logf("%s mode %s: %T caught: %s", c.check, mode, c.ops, rec)
			}
		}
		for _, name := range []string{"MatMul", "MatMulID"} {
			if rec := runRecorded(findCheck(t, name), hidesQ4K{wrong{be, base}}, 1); !rec.failed {
				t.Errorf("%s mode %s: capabilities without q4_K passed while q4_K products run", name, mode)
			}
		}
		if rec := runRecorded(findCheck(t, "MatMul"), wrong{be, matMulRefuses{base}}, 1); !rec.failed {
			t.Errorf("mode %s: a MatMul refusing every shape passed", mode)
		}
		be.Close()
	}
}

// TestRecorderFatal checks the recorder's Fatalf stops the check.
func TestRecorderFatal(t *testing.T) {
	reached := false
	rec := runRecorded(check{"fatal", func(h *harness) {
		h.t.Fatalf("stop")
		reached = true
	}}, cpu.NewBackend(1, cpu.Exact), 1)
	if !rec.failed || reached {
		t.Fatalf("failed=%v, code after Fatalf reached=%v", rec.failed, reached)
	}
}
