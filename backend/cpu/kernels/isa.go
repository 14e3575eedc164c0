package kernels

import (
	"fmt"
	"os"
	"strings"
)

// EnvSIMD is the environment variable that selects or caps the SIMD level.
const EnvSIMD = "GLM_SIMD"

// Level is an instruction-set level the kernels can run at.
type Level int

// The levels, in increasing order of capability.
const (
	// LevelGeneric runs the pure-Go twins.
	LevelGeneric Level = iota
	// LevelAVX2 needs AVX2, FMA, F16C and OS support for YMM state.
	LevelAVX2
	// LevelAVX512 needs LevelAVX2 plus AVX-512 F/BW/VL/DQ, AVX-512 VNNI,
	// BMI2 and OS support for ZMM and opmask state.
	LevelAVX512
)

// String returns the level's name as GLM_SIMD spells it.
func (l Level) String() string {
	switch l {
	case LevelGeneric:
		return "off"
	case LevelAVX2:
		return "avx2"
	case LevelAVX512:
		return "avx512"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

var (
	// detected is the best level this CPU and OS support.
	detected Level
	// level is the level in use: detected, capped by GLM_SIMD.
	level Level
	// configErr reports an unknown GLM_SIMD value.
	configErr error
)

func init() {
	detected = detect()
	level, configErr = chooseLevel(detected, os.Getenv(EnvSIMD))
}

// chooseLevel applies the GLM_SIMD setting env to the detected level.
func chooseLevel(det Level, env string) (Level, error) {
	switch strings.ToLower(strings.TrimSpace(env)) {
	case "", "auto", "on":
		return det, nil
	case "off", "generic", "go", "0", "false":
		return LevelGeneric, nil
	case "avx2":
		return min(det, LevelAVX2), nil
	case "avx512":
		return min(det, LevelAVX512), nil
	}
	return LevelGeneric, fmt.Errorf("kernels: unknown %s=%q (want off, avx2, avx512 or auto); using the pure-Go kernels", EnvSIMD, env)
}

// CurrentLevel returns the level the kernels run at.
func CurrentLevel() Level { return level }

// DetectedLevel returns the best level the CPU and OS support, ignoring
// GLM_SIMD.
func DetectedLevel() Level { return detected }

// ConfigError returns a non-nil error when GLM_SIMD holds a value the
// package does not know; the kernels then run the pure-Go twins. Commands
// should print it at start-up.
func ConfigError() error { return configErr }

// setLevel forces the level (capped at the detected one) for tests and
// returns a function restoring the previous level.
func setLevel(l Level) (restore func()) {
	prev := level
	level = min(l, detected)
	return func() { level = prev }
}
