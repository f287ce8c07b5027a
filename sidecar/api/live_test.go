package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The token changes while requests are made concurrently: every request
// is let in or refused by exactly one of the two tokens, the one current
// while it was served, and none fails for any other reason.
func TestSetTokenUnderLoad(t *testing.T) {
	s, _, _ := testServer(t)
	s.SetToken("old-token")
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)

	// phase is 0 before SetToken is called, 1 while it runs, 2 after.
	var phase atomic.Int32
	type result struct {
		token         string
		before, after int32 // phase when the request was sent and answered
		status        int
		err           error
	}
	results := make(chan result, 10000)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent atomic.Int64
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tok := "old-token"
				if (i+w)%2 == 1 {
					tok = "new-token"
				}
				req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/flows", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				r := result{token: tok, before: phase.Load()}
				resp, err := http.DefaultClient.Do(req)
				r.after = phase.Load()
				if err == nil {
					r.status = resp.StatusCode
					_ = resp.Body.Close()
				}
				r.err = err
				sent.Add(1)
				select {
				case results <- r:
				default:
				}
			}
		})
	}
	waitUntil(t, "requests under the old token", func() bool { return sent.Load() >= 200 })
	phase.Store(1)
	s.SetToken("new-token")
	phase.Store(2)
	mark := sent.Load()
	waitUntil(t, "requests under the new token", func() bool { return sent.Load() >= mark+200 })
	close(stop)
	wg.Wait()
	close(results)

	var oldOK, newOK int
	for r := range results {
		if r.err != nil {
			t.Fatalf("request failed: %v", r.err)
		}
		if r.status != http.StatusOK && r.status != http.StatusUnauthorized {
			t.Fatalf("status %d: a request failed for a reason other than its token", r.status)
		}
		ok := r.status == http.StatusOK
		switch {
		case r.after == 0 && ok != (r.token == "old-token"):
			t.Errorf("before the change, %s got %d", r.token, r.status)
		case r.before == 2 && ok != (r.token == "new-token"):
			t.Errorf("after the change, %s got %d", r.token, r.status)
		}
		if ok && r.token == "old-token" {
			oldOK++
		}
		if ok && r.token == "new-token" {
			newOK++
		}
	}
	if oldOK == 0 || newOK == 0 {
		t.Errorf("requests let in: %d by the old token, %d by the new; want both", oldOK, newOK)
	}

	s.SetToken("")
	resp, err := http.Get(srv.URL + "/v1/flows")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("with the token cleared a request without one got %d", resp.StatusCode)
	}
}

// callUpstream answers every passthrough call.
type callUpstream struct {
	noUpstream
	mu    sync.Mutex
	paths []string
}

func (u *callUpstream) Call(_ context.Context, path string, _ map[string]any) (map[string]any, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.paths = append(u.paths, path)
	return map[string]any{"resp_code": "00000000"}, nil
}

func TestSetPassthrough(t *testing.T) {
	s, _, _ := testServer(t)
	up := &callUpstream{}
	s.upstream = up
	s.SetPassthrough([]string{"/v2/a"})
	h := s.Handler()
	call := func(path string) int {
		t.Helper()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/upstream"+path, strings.NewReader(`{}`)))
		if w.Code == http.StatusForbidden && !strings.Contains(w.Body.String(), CodePathNotAllowed) {
			t.Fatalf("403 for another reason: %s", w.Body)
		}
		return w.Code
	}
	if call("/v2/a") != http.StatusOK || call("/v2/b") != http.StatusForbidden {
		t.Fatal("the first list is not the one in force")
	}
	s.SetPassthrough([]string{"/v2/b"})
	if got := call("/v2/a"); got != http.StatusForbidden {
		t.Errorf("a path taken off the list answers %d, want 403", got)
	}
	if got := call("/v2/b"); got != http.StatusOK {
		t.Errorf("a path added to the list answers %d, want 200", got)
	}
	if len(up.paths) != 2 || up.paths[0] != "/v2/a" || up.paths[1] != "/v2/b" {
		t.Errorf("upstream calls %v, want /v2/a then /v2/b", up.paths)
	}
}

// waitUntil polls cond until it holds; the deadline only bounds a
// failure on a loaded machine.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
