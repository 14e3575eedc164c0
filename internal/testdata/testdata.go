// Package testdata locates the project's shared test assets (../shared beside
// the repository root: the glm-tiny oracle model, WikiText-2, the specs).
//
// Where ../shared is absent (a user's own clone) tests that need it skip with
// a message; under CI=true a missing file fails the test instead.
package testdata

import (
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot returns the directory holding go.mod, searched upwards from the
// working directory ("" if none is found).
func RepoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Shared returns the path of rel inside ../shared (e.g.
// Shared(t, "testdata", "glm-tiny", "glm-tiny-bf16.gguf")). If the file does
// not exist the test is skipped, or failed when CI=true.
func Shared(t testing.TB, rel ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{SharedDir()}, rel...)...)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("shared test file missing under CI=true: %v", err)
		}
		t.Skipf("shared test file not available (%v); skipping", err)
	}
	return p
}

// SharedDir returns the shared-assets directory: $GLMRUN_SHARED when set
// (e.g. a copy carried to a GPU machine that has only the repository),
// otherwise ../shared beside the repository root.
func SharedDir() string {
	if d := os.Getenv("GLMRUN_SHARED"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), "..", "shared")
}

// GLMTiny returns the path of a file in ../shared/testdata/glm-tiny.
func GLMTiny(t testing.TB, name string) string {
	t.Helper()
	return Shared(t, "testdata", "glm-tiny", name)
}
