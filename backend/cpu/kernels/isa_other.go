//go:build !amd64

package kernels

// detect returns LevelGeneric: only amd64 has assembly kernels.
func detect() Level { return LevelGeneric }
