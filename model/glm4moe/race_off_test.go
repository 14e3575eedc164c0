//go:build !race

package glm4moe_test

// raceEnabled reports a -race build (see race_on_test.go).
const raceEnabled = false
