package backend

import (
	"fmt"
	"sort"
	"sync"
)

// Options configure Open. Fields a backend does not use are ignored by it
// (and say so in its Opener's documentation).
type Options struct {
	// Device is the device ordinal (cuda: 0-based GPU index).
	Device int
	// Threads is the number of host threads (cpu; <= 0: one per physical
	// core).
	Threads int
}

// Opener opens a backend; each backend package registers one from init.
type Opener func(Options) (Backend, error)

var (
	regMu    sync.Mutex
	registry = map[string]Opener{}
)

// Register makes open available under name. It is called from a backend
// package's init (a blank import selects the backend); it panics on an empty
// name, a nil Opener or a name registered twice, which are programming
// errors of the binary, not input errors.
func Register(name string, open Opener) {
	regMu.Lock()
	defer regMu.Unlock()
	if name == "" || open == nil {
		panic("backend: Register with an empty name or a nil Opener")
	}
	if _, dup := registry[name]; dup {
		panic("backend: Register called twice for " + name)
	}
	registry[name] = open
}

// Open opens the backend registered as name. An unregistered name gives an
// error wrapping ErrUnknownBackend that lists the registered ones.
func Open(name string, opt Options) (Backend, error) {
	regMu.Lock()
	open, ok := registry[name]
	regMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (registered: %v)", ErrUnknownBackend, name, Names())
	}
	return open(opt)
}

// Names returns the registered backend names, sorted.
func Names() []string {
	regMu.Lock()
	defer regMu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
