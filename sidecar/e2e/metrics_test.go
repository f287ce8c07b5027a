package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// scrape returns the sample lines of the sidecar's /metrics.
func (s *sidecar) scrape(t *testing.T) []string {
	t.Helper()
	resp, err := http.Get(s.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return lines
}

var counterRe = regexp.MustCompile(`\bpaysidecar_[a-z0-9_]+_total\b`)

// Every counter an alert or a dashboard panel reads exists from the start,
// so that a rate or a ratio over it is defined before the first event.
func TestAlertedCountersExistFromTheStart(t *testing.T) {
	e := newEnv(t)
	want := map[string]bool{}
	for _, f := range []string{"deploy/prometheus/alerts.yaml", "deploy/grafana/paysidecar.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range counterRe.FindAllString(string(b), -1) {
			want[m] = true
		}
	}
	if len(want) < 5 {
		t.Fatalf("found only %d counters in the alerts and the dashboard", len(want))
	}
	have := map[string]int{}
	for _, l := range e.sc.scrape(t) {
		name := l
		if i := strings.IndexAny(l, "{ "); i >= 0 {
			name = l[:i]
		}
		have[name]++
	}
	var missing []string
	for m := range want {
		if have[m] == 0 {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("counters used by alerts or panels but absent from a fresh sidecar's /metrics: %v", missing)
	}
}

// Requests for random paths and with random methods add no series to the
// app API's metrics.
func TestRandomPathsAddNoSeries(t *testing.T) {
	e := newEnv(t)
	count := func() int {
		n := 0
		for _, l := range e.sc.scrape(t) {
			if strings.HasPrefix(l, "paysidecar_http_server_request_duration_seconds_count") {
				n++
			}
		}
		return n
	}
	batch := func() {
		for range 30 {
			var b [6]byte
			_, _ = rand.Read(b[:])
			w := hex.EncodeToString(b[:])
			for _, r := range []struct{ method, path string }{
				{http.MethodGet, "/" + w},
				{http.MethodGet, "/v1/payments/pay_" + w},
				{"X" + strings.ToUpper(w), "/v1/payments"},
				{http.MethodPost, "/v1/events/evt_" + w + "/replay"},
				{http.MethodGet, "/v1/" + w + "/" + w + "?" + w + "=1"},
			} {
				req, _ := http.NewRequest(r.method, e.sc.API+r.path, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		}
	}
	batch()
	first := count()
	batch()
	if second := count(); first == 0 || second != first {
		t.Fatalf("the app API's series went from %d to %d with more random requests", first, second)
	}
	for _, l := range e.sc.scrape(t) {
		if strings.Contains(l, "pay_") || strings.Contains(l, "evt_") {
			t.Fatalf("a series carries request data: %s", l)
		}
	}
}

// The runtime profiles are served on the admin listener only when
// admin.pprof turns them on.
func TestAdminPprofIsOptIn(t *testing.T) {
	get := func(t *testing.T, url string) int {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	t.Run("off by default", func(t *testing.T) {
		e := newEnv(t)
		if code := get(t, e.sc.Admin+"/debug/pprof/heap"); code != http.StatusNotFound {
			t.Fatalf("GET /debug/pprof/heap = %d, want 404", code)
		}
	})
	t.Run("on", func(t *testing.T) {
		e := newEnv(t, "PAYSIDECAR_ADMIN__PPROF=true")
		for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
			if code := get(t, e.sc.Admin+p); code != http.StatusOK {
				t.Errorf("GET %s = %d, want 200", p, code)
			}
		}
		if code := get(t, e.sc.API+"/debug/pprof/heap"); code == http.StatusOK {
			t.Errorf("the app API serves the profiles too")
		}
	})
}
