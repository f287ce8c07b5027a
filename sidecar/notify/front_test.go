package notify_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/notify"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

// serve hands one request from remote to the handler directly, so that a
// test can choose the source address.
func (f *fixture) serve(t *testing.T, remote, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/notify", strings.NewReader(body))
	req.Header.Set("Content-Type", formType)
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

func TestRateLimitPerSource(t *testing.T) {
	f := newFixture(t, notify.Config{Limits: notify.Limits{RatePerSource: 1, BurstPerSource: 3, RateLimitDelay: 200 * time.Millisecond}})
	p := f.payment(t, "pay_1", 100)
	good := f.sign(t, payData(p, "S", "1.00")).Form().Encode()
	const attacker = "198.51.100.7:40000"
	for i := range 3 {
		if rec := f.serve(t, attacker, "resp_data=%7B%7D&sign=AAAA"); rec.Code != http.StatusForbidden {
			t.Fatalf("request %d within the burst: %d, want 403", i, rec.Code)
		}
	}
	// The bucket is empty: even a genuine notification from this source
	// is turned away, with a status the upstream retries on.
	began := time.Now()
	rec := f.serve(t, attacker, good)
	if waited := time.Since(began); waited < 200*time.Millisecond {
		t.Errorf("the 429 came after %s, want at least the 200ms delay", waited)
	}
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || strings.HasPrefix(rec.Body.String(), "RECV") {
		t.Fatalf("over the rate: %d %q, Retry-After %q; want 429 with Retry-After", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	if got, _ := f.st.GetPayment(context.Background(), "pay_1"); got.Status != store.StatusProcessing {
		t.Fatalf("a rate-limited notification changed the payment to %s", got.Status)
	}
	if v := f.metric(t, "paysidecar_notify_rejected_total", map[string]string{"reason": notify.ReasonRateLimited}); v != 1 {
		t.Errorf("rejected{rate_limited} = %v, want 1", v)
	}
	// Another source has its own bucket; so has another /64 of IPv6, while
	// addresses in one /64 share one.
	if rec := f.serve(t, "203.0.113.9:1", good); rec.Code != http.StatusOK {
		t.Fatalf("another source: %d %q", rec.Code, rec.Body)
	}
	for i := range 3 {
		f.serve(t, fmt.Sprintf("[2001:db8:1:2::%x]:1", i+1), "x=1")
	}
	if rec := f.serve(t, "[2001:db8:1:2:ffff::1]:1", "x=1"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("fourth request from one IPv6 /64: %d, want 429", rec.Code)
	}
	if rec := f.serve(t, "[2001:db8:1:3::1]:1", "x=1"); rec.Code == http.StatusTooManyRequests {
		t.Errorf("another IPv6 /64 was limited")
	}
	// The bucket refills at the configured rate.
	f.clock.Advance(time.Second)
	if rec := f.serve(t, attacker, good); rec.Code != http.StatusOK {
		t.Fatalf("after a second: %d %q, want 200", rec.Code, rec.Body)
	}
}

func TestBodyLimit(t *testing.T) {
	f := newFixture(t, notify.Config{MaxBodyBytes: 2048})
	p := f.payment(t, "pay_1", 100)
	good := f.sign(t, payData(p, "S", "1.00")).Form()
	if n := len(good.Encode()); n > 2048 {
		t.Fatalf("the genuine form is %d bytes", n)
	}
	padded := f.sign(t, payData(p, "S", "1.00")).Form()
	padded.Set("pad", strings.Repeat("x", 2048))
	// Declared too large: refused before the body is read.
	if code, _ := f.post(t, http.MethodPost, formType, padded.Encode()); code != http.StatusRequestEntityTooLarge {
		t.Errorf("declared oversize: %d, want 413", code)
	}
	// Sent without a length (chunked): refused when the limit is crossed.
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL, io.MultiReader(strings.NewReader(padded.Encode())))
	req.Header.Set("Content-Type", formType)
	req.ContentLength = -1
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked oversize: %d, want 413", resp.StatusCode)
	}
	if code, body := f.post(t, http.MethodPost, formType, good.Encode()); code != http.StatusOK {
		t.Errorf("genuine within the limit: %d %q", code, body)
	}
}

func TestHeaderLimit(t *testing.T) {
	f := newFixture(t, notify.Config{Limits: notify.Limits{MaxHeaderBytes: 1024}})
	p := f.payment(t, "pay_1", 100)
	srv := httptest.NewUnstartedServer(f.h)
	f.h.ConfigureServer(srv.Config)
	srv.Start()
	t.Cleanup(srv.Close)
	post := func(header int) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(f.sign(t, payData(p, "S", "1.00")).Form().Encode()))
		req.Header.Set("Content-Type", formType)
		req.Header.Set("X-Pad", strings.Repeat("y", header))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	// net/http allows 4 KiB beyond MaxHeaderBytes.
	if code := post(8 << 10); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("8 KiB of headers: %d, want 431", code)
	}
	if code := post(100); code != http.StatusOK {
		t.Errorf("small headers: %d, want 200", code)
	}
}

func TestReadTimeout(t *testing.T) {
	f := newFixture(t, notify.Config{Limits: notify.Limits{ReadTimeout: 200 * time.Millisecond}})
	srv := httptest.NewUnstartedServer(f.h)
	f.h.ConfigureServer(srv.Config)
	srv.Start()
	t.Cleanup(srv.Close)
	// A sender that never finishes its headers is cut off.
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /notify HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("the server did not close a stalled connection: %v", err)
	}
}

// dialFrom connects to addr from the loopback address local.
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// closedByServer reports whether the server closed c without answering.
func closedByServer(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	return n == 0 && err == io.EOF
}

// roundTrip sends one request on c and reads the status.
func roundTrip(t *testing.T, c net.Conn) int {
	t.Helper()
	if _, err := io.WriteString(c, "GET /notify HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func TestConnectionLimits(t *testing.T) {
	f := newFixture(t, notify.Config{Limits: notify.Limits{MaxConns: 3, MaxConnsPerSource: 2}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f.h}
	f.h.ConfigureServer(srv)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(f.h.Listener(ln)) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	addr := ln.Addr().String()

	a1, a2 := dialFrom(t, "127.0.0.2", addr), dialFrom(t, "127.0.0.2", addr)
	for _, c := range []net.Conn{a1, a2} {
		if code := roundTrip(t, c); code != http.StatusMethodNotAllowed {
			t.Fatalf("within the limits: %d", code)
		}
	}
	if a3 := dialFrom(t, "127.0.0.2", addr); !closedByServer(t, a3) {
		t.Error("a third connection from one source was kept")
	}
	b1 := dialFrom(t, "127.0.0.3", addr)
	if code := roundTrip(t, b1); code != http.StatusMethodNotAllowed {
		t.Fatalf("another source: %d", code)
	}
	if c4 := dialFrom(t, "127.0.0.4", addr); !closedByServer(t, c4) {
		t.Error("a fourth connection in all was kept")
	}
	for reason, want := range map[string]float64{"max_conns_per_source": 1, "max_conns": 1} {
		if v := f.metric(t, "paysidecar_notify_connections_refused_total", map[string]string{"reason": reason}); v != want {
			t.Errorf("connections_refused{%s} = %v, want %v", reason, v, want)
		}
	}
	// A closed connection frees its place.
	_ = a1.Close()
	waitUntil(t, "a place to free up", func() bool {
		c := dialFrom(t, "127.0.0.2", addr)
		defer c.Close()
		_, _ = io.WriteString(c, "GET /notify HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusMethodNotAllowed
	})
}

// waitUntil polls cond until it holds, for up to ten seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDuplicateAnsweredFromMemory(t *testing.T) {
	f := newFixture(t, notify.Config{})
	p := f.payment(t, "pay_1", 100)
	n := f.sign(t, payData(p, "S", "1.00"))
	if code, body := f.postForm(t, n); code != http.StatusOK {
		t.Fatalf("first: %d %q", code, body)
	}
	// The store is now down; a duplicate of what was stored is still
	// acknowledged, since it is already durable.
	f.fs.set(true, true)
	for range 3 {
		if code, body := f.postForm(t, n); code != http.StatusOK || body != "RECV_ORD_ID_seq-pay_1" {
			t.Fatalf("duplicate with the store down: %d %q, want the ack", code, body)
		}
	}
	if v := f.metric(t, "paysidecar_notify_duplicate_cache_hits_total", nil); v != 3 {
		t.Errorf("cache hits = %v, want 3", v)
	}
	if v := f.metric(t, "paysidecar_notify_received_total", map[string]string{"kind": "payment", "result": "duplicate"}); v != 3 {
		t.Errorf("received{payment,duplicate} = %v, want 3", v)
	}
	// The same resp_data with any other signature is a forgery, never a
	// duplicate.
	for _, sign := range []string{"AAAA", n.Sign[:len(n.Sign)-4] + "AAA=", f.sign(t, payData(p, "S", "2.00")).Sign} {
		forged := n
		forged.Sign = sign
		if code, body := f.postForm(t, forged); code != http.StatusForbidden || strings.HasPrefix(body, "RECV") {
			t.Errorf("forged copy: %d %q, want 403", code, body)
		}
	}
	// Refused notifications are not remembered: with the store down a
	// new one is refused each time, and nothing is acknowledged.
	late := f.sign(t, payData(p, "F", "1.00"))
	for range 2 {
		if code, _ := f.postForm(t, late); code != http.StatusServiceUnavailable {
			t.Errorf("new notification with the store down: %d, want 503", code)
		}
	}
}

func TestDuplicateCacheBounded(t *testing.T) {
	f := newFixture(t, notify.Config{Limits: notify.Limits{DuplicateCache: 2}})
	var forms []url.Values
	for i := range 3 {
		p := f.payment(t, fmt.Sprintf("pay_%d", i), 100)
		n := f.sign(t, payData(p, "S", "1.00"))
		forms = append(forms, n.Form())
		if code, _ := f.post(t, http.MethodPost, formType, n.Form().Encode()); code != 200 {
			t.Fatal(code)
		}
	}
	// Only the two most recent are remembered; the first goes to the
	// store again, which answers it as the duplicate it is.
	for _, i := range []int{2, 1, 0} {
		if code, _ := f.post(t, http.MethodPost, formType, forms[i].Encode()); code != 200 {
			t.Fatal(code)
		}
	}
	if v := f.metric(t, "paysidecar_notify_duplicate_cache_hits_total", nil); v != 2 {
		t.Errorf("cache hits = %v, want 2", v)
	}
}

// holdInStore posts a notification for p and holds it in the store until
// release, which returns the status it was answered.
func (f *fixture) holdInStore(t *testing.T, p store.Payment) (release func() int) {
	t.Helper()
	hold, entered := make(chan struct{}), make(chan struct{}, 1)
	f.fs.mu.Lock()
	f.fs.hold, f.fs.entered = hold, entered
	f.fs.mu.Unlock()
	answered := make(chan int, 1)
	go func() {
		code, _ := f.postForm(t, f.sign(t, payData(p, "S", "1.00")))
		answered <- code
	}()
	<-entered
	f.fs.mu.Lock()
	f.fs.hold = nil
	f.fs.mu.Unlock()
	return func() int {
		close(hold)
		return <-answered
	}
}

func TestBusyWhenTheGateIsFull(t *testing.T) {
	f := newFixture(t, notify.Config{Limits: notify.Limits{Concurrency: 1, StoreConcurrency: 1, QueueTimeout: 50 * time.Millisecond}})
	p1, p2 := f.payment(t, "pay_1", 100), f.payment(t, "pay_2", 100)
	release := f.holdInStore(t, p1)
	n2 := f.sign(t, payData(p2, "S", "1.00"))
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL, strings.NewReader(n2.Form().Encode()))
	req.Header.Set("Content-Type", formType)
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("while the gate is full: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if v := f.metric(t, "paysidecar_notify_rejected_total", map[string]string{"reason": notify.ReasonBusy}); v != 1 {
		t.Errorf("rejected{busy} = %v, want 1", v)
	}
	if first := release(); first != http.StatusOK {
		t.Errorf("the notification holding the gate: %d", first)
	}
	// The upstream's retry gets through.
	if code, body := f.postForm(t, n2); code != http.StatusOK {
		t.Errorf("retry: %d %q", code, body)
	}
}

// TestWaitingForTheStoreHoldsNoVerificationTurn holds one notification
// in the store with a single verification turn: a second notification is
// still verified and stored, because the store work has its own, wider
// gate (concurrent notifications then share a commit).
func TestWaitingForTheStoreHoldsNoVerificationTurn(t *testing.T) {
	f := newFixture(t, notify.Config{Limits: notify.Limits{Concurrency: 1, StoreConcurrency: 2, QueueTimeout: 50 * time.Millisecond}})
	p1, p2 := f.payment(t, "pay_1", 100), f.payment(t, "pay_2", 100)
	release := f.holdInStore(t, p1)
	if code, body := f.postForm(t, f.sign(t, payData(p2, "S", "1.00"))); code != http.StatusOK {
		t.Errorf("while another waits for the store: %d %q, want 200", code, body)
	}
	if first := release(); first != http.StatusOK {
		t.Errorf("the notification held in the store: %d", first)
	}
	if v := f.metric(t, "paysidecar_notify_rejected_total", map[string]string{"reason": notify.ReasonBusy}); v != 0 {
		t.Errorf("rejected{busy} = %v, want 0", v)
	}
}

func TestRefusalsSampledAndNotTraced(t *testing.T) {
	f := newFixture(t, notify.Config{Limits: notify.Limits{LogRefusals: 3, LogInterval: time.Hour, BurstPerSource: 1000}})
	p := f.payment(t, "pay_1", 100)
	forged := f.sign(t, payData(p, "S", "1.00"))
	forged.Sign = "AAAA"
	const n = 50
	for range n {
		if code, _ := f.postForm(t, forged); code != http.StatusForbidden {
			t.Fatalf("forged: %d", code)
		}
	}
	if v := f.metric(t, "paysidecar_notify_rejected_total", map[string]string{"reason": notify.ReasonBadSignature}); v != n {
		t.Errorf("rejected{bad_signature} = %v, want %d", v, n)
	}
	if got := strings.Count(f.logs.String(), "notification refused: signature does not verify"); got != 3 {
		t.Errorf("%d refusals logged one by one, want 3", got)
	}
	if spans := len(f.rec.Ended()); spans != 0 {
		t.Errorf("%d spans for refusals, want none", spans)
	}
	// When the interval is over, the rest is logged as a count.
	f.clock.Advance(time.Hour)
	f.postForm(t, forged)
	if !strings.Contains(f.logs.String(), "count=47") {
		t.Errorf("no count of the refusals left out:\n%s", f.logs.String())
	}
	// A genuine notification still gets its span.
	if code, _ := f.postForm(t, f.sign(t, payData(p, "S", "1.00"))); code != http.StatusOK {
		t.Fatal(code)
	}
	if spans := len(f.rec.Ended()); spans != 1 {
		t.Errorf("%d spans after a genuine notification, want 1", spans)
	}
}

func TestDuplicatesOfOneNotificationBounded(t *testing.T) {
	f := newFixture(t, notify.Config{Limits: notify.Limits{DuplicateRate: 1, DuplicateBurst: 2, RateLimitDelay: 10 * time.Millisecond}})
	p := f.payment(t, "pay_1", 100)
	good := f.sign(t, payData(p, "S", "1.00")).Form().Encode()
	if rec := f.serve(t, "192.0.2.1:1", good); rec.Code != http.StatusOK {
		t.Fatalf("first: %d", rec.Code)
	}
	// From many sources, the copies share one allowance.
	for i, src := range []string{"192.0.2.2:1", "192.0.2.3:1"} {
		if rec := f.serve(t, src, good); rec.Code != http.StatusOK {
			t.Fatalf("copy %d: %d", i+1, rec.Code)
		}
	}
	rec := f.serve(t, "192.0.2.4:1", good)
	if rec.Code != http.StatusTooManyRequests || strings.HasPrefix(rec.Body.String(), "RECV") {
		t.Fatalf("third copy: %d %q, want 429", rec.Code, rec.Body)
	}
	if v := f.metric(t, "paysidecar_notify_rejected_total", map[string]string{"reason": notify.ReasonDuplicateRate}); v != 1 {
		t.Errorf("rejected{duplicate_rate_limited} = %v, want 1", v)
	}
	// Another notification has its own allowance, and this one's refills.
	other := f.sign(t, payData(f.payment(t, "pay_2", 100), "S", "1.00")).Form().Encode()
	if rec := f.serve(t, "192.0.2.4:1", other); rec.Code != http.StatusOK {
		t.Errorf("another notification: %d", rec.Code)
	}
	f.clock.Advance(time.Second)
	if rec := f.serve(t, "192.0.2.4:1", good); rec.Code != http.StatusOK {
		t.Errorf("a second later: %d", rec.Code)
	}
}
