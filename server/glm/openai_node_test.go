package glm_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/glmrun/glmrun/server"
)

// TestOpenAINodeClient drives glmserve (glm-tiny, loopback, API key set)
// with the official openai npm package: models, chat streamed and not,
// completions streamed and not, and the SDK's typed 404/400/401 errors
// (server/testdata/openai-client/test.mjs). The package is installed into
// that directory with npm (never globally). Without node or npm, or when the
// install fails, the test skips, except under CI=true where it fails.
func TestOpenAINodeClient(t *testing.T) {
	if testing.Short() {
		t.Skip("node client test skipped in -short mode")
	}
	ci := os.Getenv("CI") == "true"
	skip := func(format string, args ...any) {
		t.Helper()
		if ci {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node not found: %v", err)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		skip("npm not found: %v", err)
	}
	dir, err := filepath.Abs(filepath.Join("..", "testdata", "openai-client"))
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			skip("npm install openai failed (no registry access?): %v\n%s", err, out)
		}
	}

	eng := tinyEngine(t)
	_, url := startTiny(t, server.Config{MaxBatchSize: 4, MaxSeqLen: 512, APIKeys: []string{"sk-glm-test"}})
	_ = eng
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GLM_BASE_URL="+url, "GLM_API_KEY=sk-glm-test")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	t.Logf("node stdout: %s", stdout.String())
	require.NoError(t, err, "node test.mjs failed:\n%s", stderr.String())
	require.Contains(t, stdout.String(), `"ok":true`)
}
