//go:build !race

package tokenizer

// raceEnabled is true when tests run under the race detector.
const raceEnabled = false
