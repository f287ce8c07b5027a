package telemetry_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// TestAdminPprof: the runtime profiles are not served unless WithPprof
// asks for them; then the index, a heap profile and a goroutine dump are.
func TestAdminPprof(t *testing.T) {
	get := func(t *testing.T, h http.Handler, path string) (int, []byte) {
		t.Helper()
		srv := httptest.NewServer(h)
		defer srv.Close()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	paths := []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"}

	off := telemetry.AdminHandler(prometheus.NewRegistry(), nil)
	for _, p := range paths {
		if code, _ := get(t, off, p); code != http.StatusNotFound {
			t.Errorf("by default GET %s = %d, want 404", p, code)
		}
	}
	if code, _ := get(t, off, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}

	on := telemetry.AdminHandler(prometheus.NewRegistry(), nil, telemetry.WithPprof())
	for _, p := range paths {
		if code, body := get(t, on, p); code != http.StatusOK || len(body) == 0 {
			t.Errorf("with pprof GET %s = %d (%d bytes), want 200 with a body", p, code, len(body))
		}
	}
	if _, body := get(t, on, "/debug/pprof/goroutine?debug=1"); !bytes.Contains(body, []byte("goroutine profile:")) {
		t.Errorf("the goroutine dump is not one:\n%.200s", body)
	}
	if code, _ := get(t, on, "/metrics"); code != http.StatusOK {
		t.Errorf("with pprof /metrics = %d", code)
	}
}
