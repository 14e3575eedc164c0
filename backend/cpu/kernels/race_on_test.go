//go:build race

package kernels

// raceEnabled is true under -race, whose checkptr instrumentation rejects
// misaligned *float32 conversions.
const raceEnabled = true
