package main

import (
	"io"

	"github.com/glmrun/glmrun/gguf"
)

// inspect prints the GGUF header, metadata and tensor table (--inspect).
func inspect(w io.Writer, f *gguf.File, path string, asJSON bool) error {
	return gguf.Dump(w, f, path, asJSON)
}
