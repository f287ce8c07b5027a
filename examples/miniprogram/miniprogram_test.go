// Package miniprogram_test runs the tests of the example mini-program's
// logic (test/*.test.js) with Node's test runner, so that go test and make
// test cover them.
package miniprogram_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node is required when CI is set: %v", err)
		}
		t.Skipf("node not found: %v", err)
	}
	files, err := filepath.Glob(filepath.Join("test", "*.test.js"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no tests in test/: %v", err)
	}
	// Reading the files lets go test's cache notice when they change.
	sources, _ := filepath.Glob(filepath.Join("*", "*.js"))
	more, _ := filepath.Glob(filepath.Join("pages", "*", "*"))
	for _, f := range append(append(sources, more...), "config.js") {
		if _, err := os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, append([]string{"--test", "--test-reporter=tap"}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "# fail 0") || strings.Contains(string(out), "# pass 0") {
		t.Fatalf("node --test did not pass every test:\n%s", out)
	}
}
