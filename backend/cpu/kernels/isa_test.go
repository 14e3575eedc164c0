package kernels

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestEnvSIMD runs this test binary again with GLM_SIMD set and checks the
// level the package chose at start-up.
func TestEnvSIMD(t *testing.T) {
	if os.Getenv("GLM_KERNELS_CHILD") == "1" {
		os.Stdout.WriteString("level=" + CurrentLevel().String() + "\n")
		if err := ConfigError(); err != nil {
			os.Stdout.WriteString("error=" + err.Error() + "\n")
		}
		return
	}
	cases := []struct {
		env, level string
		err        bool
	}{
		{"off", "off", false},
		{"avx2", min(detected, LevelAVX2).String(), false},
		{"", detected.String(), false},
		{"bogus", "off", true},
	}
	for _, c := range cases {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEnvSIMD$", "-test.count=1")
		cmd.Env = append(os.Environ(), "GLM_KERNELS_CHILD=1", EnvSIMD+"="+c.env)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("GLM_SIMD=%q: child failed: %v\n%s", c.env, err, out)
		}
		if !strings.Contains(string(out), "level="+c.level+"\n") {
			t.Errorf("GLM_SIMD=%q: want level %s, child said:\n%s", c.env, c.level, out)
		}
		if got := strings.Contains(string(out), "error="); got != c.err {
			t.Errorf("GLM_SIMD=%q: ConfigError reported=%v, want %v:\n%s", c.env, got, c.err, out)
		}
	}
}
