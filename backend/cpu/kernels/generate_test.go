package kernels

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedUpToDate reruns the avo generator in _gen (a nested module)
// into a scratch copy and compares its output with the committed
// kernels_amd64.s and stubs_amd64.go. It needs the avo module (module cache
// or proxy); without it the test skips, except under CI=true where it fails.
func TestGeneratedUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the generator run")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	tmp := t.TempDir()
	gen := filepath.Join(tmp, "_gen")
	if err := os.CopyFS(gen, os.DirFS("_gen")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goBin, "run", ".", "-out", "../kernels_amd64.s", "-stubs", "../stubs_amd64.go", "-pkg", "kernels")
	cmd.Dir = gen
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("generator failed: %v\n%s", err, out)
		}
		t.Skipf("generator could not run (avo not available?): %v\n%s", err, out)
	}
	for _, f := range []string{"kernels_amd64.s", "stubs_amd64.go"} {
		want, err := os.ReadFile(filepath.Join(tmp, f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run `go generate ./backend/cpu/kernels/` and commit the result", f)
		}
	}
}
