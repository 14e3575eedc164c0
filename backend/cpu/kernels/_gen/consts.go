package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
)

var consts = map[string]Mem{}

// constBytes returns a read-only data symbol holding b (emitted once).
func constBytes(name string, b []byte) Mem {
	if m, ok := consts[name]; ok {
		return m
	}
	m := GLOBL(name, RODATA|NOPTR)
	for i, v := range b {
		DATA(i, U8(v))
	}
	consts[name] = m
	return m
}

func rep(b []byte, n int) []byte {
	var out []byte
	for len(out) < n {
		out = append(out, b...)
	}
	return out[:n]
}

// constWords returns a read-only symbol of little-endian uint16 words.
func constWords(name string, w []uint16) Mem {
	b := make([]byte, 2*len(w))
	for i, v := range w {
		b[2*i], b[2*i+1] = byte(v), byte(v>>8)
	}
	return constBytes(name, b)
}

func cname(f string, a ...any) string { return fmt.Sprintf(f, a...) }
