//go:build race

package tokenizer

// raceEnabled is true when tests run under the race detector, which slows
// encoding tenfold or more, so speed limits are not checked.
const raceEnabled = true
