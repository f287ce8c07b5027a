package js_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sdk/js"
)

// TestNode runs the helper's own tests (paysidecar-pay.test.mjs) with
// Node's test runner, so that go test covers them. Without node the test
// is skipped, unless CI is set, where it fails.
func TestNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node is required when CI is set: %v", err)
		}
		t.Skipf("node not found: %v", err)
	}
	// Reading the files lets go test's cache notice when they change.
	for _, f := range []string{js.PayModule, "paysidecar-pay.test.mjs"} {
		if _, err := os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--test", "--test-reporter=tap", "paysidecar-pay.test.mjs").CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "# fail 0") || strings.Contains(string(out), "# pass 0") {
		t.Fatalf("node --test did not pass every test:\n%s", out)
	}
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(http.StripPrefix("/js/", js.Handler()))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/js/" + js.PayModule)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	want, _ := os.ReadFile(js.PayModule)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || string(body) != string(want) {
		t.Fatalf("GET %s: HTTP %d %q, %d bytes", js.PayModule, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	resp, err = http.Get(srv.URL + "/js/paysidecar-pay.test.mjs")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the tests are served: HTTP %d", resp.StatusCode)
	}
}
