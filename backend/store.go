package backend

import (
	"fmt"
	"sync"
)

// Store is the buffer bookkeeping a backend implementation shares with the
// others: which buffers belong to this backend instance, which are still
// live, views and their roots, and freeing everything at Close. M is the
// implementation's handle on a buffer's memory (host bytes, a device
// view). The zero Store is not usable; use NewStore.
type Store[M any] struct {
	name    string
	release func(M) error

	mu     sync.Mutex
	live   map[*Tracked[M]]struct{}
	closed bool
}

// NewStore returns the Store of a backend called name (used in error
// messages); release frees the memory of an allocation (not of a view) and
// is called with the Store's lock held, at Free or Close.
func NewStore[M any](name string, release func(M) error) *Store[M] {
	return &Store[M]{name: name, release: release, live: map[*Tracked[M]]struct{}{}}
}

// Tracked is a Buffer of a Store: its dtype, shape and memory handle Mem.
// A view has a root (the allocation it aliases) whose liveness it shares.
type Tracked[M any] struct {
	Mem M

	store *Store[M]
	dt    DType
	shape []int
	root  *Tracked[M] // nil for an allocation
	freed bool
}

// DType is the element type.
func (b *Tracked[M]) DType() DType { return b.dt }

// Shape is the dimensions, innermost first.
func (b *Tracked[M]) Shape() []int { return b.shape }

// Free releases an allocation (idempotent); a view's Free does nothing.
func (b *Tracked[M]) Free() {
	if b.root != nil {
		return
	}
	s := b.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.freed {
		return
	}
	b.freed = true
	delete(s.live, b)
	_ = s.release(b.Mem) // nothing to report to: Free has no error
}

// Add registers a new allocation of dt and shape with memory mem; it fails
// after Close (mem is then the caller's to release).
func (s *Store[M]) Add(dt DType, shape []int, mem M) (*Tracked[M], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("%s: Alloc on a closed backend", s.name)
	}
	b := &Tracked[M]{Mem: mem, store: s, dt: dt, shape: append([]int(nil), shape...)}
	s.live[b] = struct{}{}
	return b, nil
}

// View implements Backend.View: it checks src (CheckView) and returns a
// view whose memory slice(src.Mem, byteOffset, byteLen) makes.
func (s *Store[M]) View(src Buffer, offset int, shape []int, slice func(m M, off, n int) (M, error)) (*Tracked[M], error) {
	b, err := s.Get("View", "src", src)
	if err != nil {
		return nil, err
	}
	off, n, err := CheckView(src, offset, shape)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	mem, err := slice(b.Mem, off, n)
	if err != nil {
		return nil, fmt.Errorf("%s: View: %w", s.name, err)
	}
	root := b
	if b.root != nil {
		root = b.root
	}
	return &Tracked[M]{Mem: mem, store: s, dt: b.dt, shape: append([]int(nil), shape...), root: root}, nil
}

// Get returns b as a live buffer of this Store for the argument name of op:
// nil stays nil (the op's shape check reports a missing required buffer),
// a buffer of another Store gives ErrForeignBuffer, a freed one ErrFreed.
func (s *Store[M]) Get(op, name string, b Buffer) (*Tracked[M], error) {
	if b == nil {
		return nil, nil
	}
	t, ok := b.(*Tracked[M])
	if !ok || t == nil || t.store != s {
		return nil, fmt.Errorf("%s: %s: %s: %w", s.name, op, name, ErrForeignBuffer)
	}
	root := t
	if t.root != nil {
		root = t.root
	}
	s.mu.Lock()
	freed := root.freed
	s.mu.Unlock()
	if freed {
		return nil, fmt.Errorf("%s: %s: %s: %w", s.name, op, name, ErrFreed)
	}
	return t, nil
}

// Mems checks op's buffers, given as (name, Buffer) pairs, with Get and
// returns their memory handles in order (the zero M for a nil buffer).
func (s *Store[M]) Mems(op string, kv ...any) ([]M, error) {
	out := make([]M, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		name, _ := kv[i].(string)
		b, _ := kv[i+1].(Buffer)
		t, err := s.Get(op, name, b)
		if err != nil {
			return nil, err
		}
		var m M
		if t != nil {
			m = t.Mem
		}
		out = append(out, m)
	}
	return out, nil
}

// Transfer checks the buffer of an Upload or Download (op) of n bytes and
// returns its memory handle.
func (s *Store[M]) Transfer(op string, b Buffer, n int) (M, error) {
	var zero M
	t, err := s.Get(op, "buffer", b)
	if err != nil {
		return zero, err
	}
	if err := CheckTransfer(op, b, n); err != nil {
		return zero, fmt.Errorf("%s: %w", s.name, err)
	}
	return t.Mem, nil
}

// Close marks every live buffer freed, releases their memory and refuses
// further Adds. It returns the first release error; a second Close does
// nothing.
func (s *Store[M]) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var first error
	for b := range s.live {
		b.freed = true
		if err := s.release(b.Mem); err != nil && first == nil {
			first = err
		}
	}
	s.live = nil
	return first
}
