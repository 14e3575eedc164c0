//go:build race

package glm4moe_test

// raceEnabled reports a -race build: sync.Pool then drops items at random,
// so allocation counts are meaningless.
const raceEnabled = true
