//go:build !linux

package cpu

// AdviseHugePages is a no-op where transparent huge pages are not
// available (see the Linux version).
func AdviseHugePages(b []byte) error { return nil }
