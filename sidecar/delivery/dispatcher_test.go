package delivery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/delivery"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/sqlite"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func strconvUnix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// fakeClock is the injectable clock of the tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// received is one request as the application saw it.
type received struct {
	ID, Timestamp, Signature, ContentType, TraceParent string
	Body                                               []byte
	Header                                             http.Header
}

// app is the application's webhook endpoint on loopback.
type app struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	reqs    []received
	respond func(n int, r received) int // status for the n-th request (0-based)
}

func newApp(t *testing.T, respond func(n int, r received) int) *app {
	a := &app{t: t, respond: respond}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *app) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := received{
		ID: r.Header.Get(delivery.HeaderID), Timestamp: r.Header.Get(delivery.HeaderTimestamp),
		Signature: r.Header.Get(delivery.HeaderSignature), ContentType: r.Header.Get("Content-Type"),
		TraceParent: r.Header.Get("traceparent"), Body: body, Header: r.Header.Clone(),
	}
	a.mu.Lock()
	n := len(a.reqs)
	a.reqs = append(a.reqs, rec)
	respond := a.respond
	a.mu.Unlock()
	status := http.StatusNoContent
	if respond != nil {
		status = respond(n, rec)
	}
	if status < 0 {
		// Hang until the client gives up.
		<-r.Context().Done()
		return
	}
	w.WriteHeader(status)
}

func (a *app) setRespond(f func(n int, r received) int) {
	a.mu.Lock()
	a.respond = f
	a.mu.Unlock()
}

func (a *app) requests() []received {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.reqs)
}

// fixture is a real SQLite store with a ledger producing real events.
type fixture struct {
	st    *sqlite.Store
	led   *ledger.Ledger
	clock *fakeClock
	reg   *prometheus.Registry
}

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := &fixture{st: st, clock: &fakeClock{t: t0}, reg: prometheus.NewRegistry()}
	f.led, err = ledger.New(st, ledger.Options{Telemetry: telemetry.Bundle{Now: f.clock.Now}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) dispatcher(t *testing.T, cfg delivery.Config, opts delivery.Options) *delivery.Dispatcher {
	t.Helper()
	if cfg.Secret == "" {
		cfg.Secret = secret
	}
	if cfg.Owner == "" {
		cfg.Owner = "replica-a"
	}
	if opts.Telemetry.Now == nil {
		opts.Telemetry.Now = f.clock.Now
	}
	if opts.Rand == nil {
		opts.Rand = func() float64 { return 0.5 }
	}
	if opts.Telemetry.Registerer == nil {
		opts.Telemetry.Registerer = f.reg
	}
	if opts.Telemetry.Logger == nil {
		opts.Telemetry.Logger = slog.New(slog.DiscardHandler)
	}
	d, err := delivery.New(cfg, f.st, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// settle creates a payment that succeeds and then has refunds refunds
// that succeed, producing 1+refunds events keyed by the payment.
func (f *fixture) settle(t *testing.T, id string, refunds int) []string {
	t.Helper()
	ctx := context.Background()
	p := store.Payment{ID: id, MerchantID: "m1", OutTradeNo: "o-" + id, Flow: client.FlowWeChatJSAPI,
		TradeType: upstream.TradeWeChatJSAPI, AmountFen: 10000, ReqDate: "20260301", ReqSeqID: "s-" + id,
		Status: store.StatusProcessing, CreatedAt: f.clock.Now()}
	if err := f.st.CreatePayment(ctx, &p); err != nil {
		t.Fatal(err)
	}
	up := `{"huifu_id":"m1","req_seq_id":"s-` + id + `","trans_stat":"S","trans_amt":"100.00","note":"a&b<c>"}`
	if _, _, err := f.led.ApplyPayment(ctx, id, ledger.Result{TransStat: "S", Amount: 10000, NkpSeqID: "n-" + id,
		Upstream: json.RawMessage(up), Source: ledger.SourceNotification,
		Notification: &client.UpstreamNotification{RespCode: "00000000", RespDesc: "ok", RespData: up, Sign: "c2lnbg=="}}); err != nil {
		t.Fatal(err)
	}
	ids := []string{ledger.EventID(id, store.StatusSucceeded)}
	for i := 0; i < refunds; i++ {
		rid := fmt.Sprintf("%s-r%d", id, i)
		r := store.Refund{ID: rid, PaymentID: id, MerchantID: "m1", OutRefundNo: "o-" + rid, AmountFen: 100,
			ReqDate: "20260301", ReqSeqID: "s-" + rid, Status: store.StatusProcessing, CreatedAt: f.clock.Now()}
		if err := f.st.CreateRefund(ctx, &r); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.led.ApplyRefund(ctx, rid, ledger.Result{TransStat: "S", Amount: 100, Source: ledger.SourceQuery,
			Upstream: json.RawMessage(`{"trans_stat":"S"}`)}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ledger.EventID(rid, store.StatusSucceeded))
	}
	return ids
}

func (f *fixture) event(t *testing.T, id string) store.Event {
	t.Helper()
	e, err := f.st.GetEvent(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// find returns the series of the metric with the labels, if it exists.
func (f *fixture) find(t *testing.T, name string, labels map[string]string) (*dto.Metric, bool) {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			return m, true
		}
	}
	return nil, false
}

func (f *fixture) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	m, ok := f.find(t, name, labels)
	switch {
	case !ok:
		return 0
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetHistogram() != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}

// waitFor polls cond until it holds or the deadline passes. The deadline
// only bounds a failure: a loaded machine running the race detector can
// take many seconds for what takes milliseconds alone.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func runOnce(t *testing.T, d *delivery.Dispatcher) int {
	t.Helper()
	n, err := d.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDeliverySignedJSON(t *testing.T) {
	f := newFixture(t)
	a := newApp(t, nil)
	ids := f.settle(t, "pay_1", 0)
	d := f.dispatcher(t, delivery.Config{URL: a.srv.URL + "/hook"}, delivery.Options{})
	f.clock.Set(t0.Add(3 * time.Second))

	if n := runOnce(t, d); n != 1 {
		t.Fatalf("claimed %d, want 1", n)
	}
	reqs := a.requests()
	if len(reqs) != 1 {
		t.Fatalf("requests = %d, want 1", len(reqs))
	}
	r := reqs[0]
	e := f.event(t, ids[0])
	if r.ID != ids[0] || string(r.Body) != string(e.Payload) || r.ContentType != "application/json" {
		t.Errorf("request id=%s type=%s body=%s; want id %s and the stored payload", r.ID, r.ContentType, r.Body, ids[0])
	}
	if r.Timestamp != strconvUnix(t0.Add(3*time.Second)) {
		t.Errorf("webhook-timestamp = %s, want the attempt time", r.Timestamp)
	}
	if err := delivery.VerifyAt(secret, r.Header, r.Body, time.Minute, f.clock.Now()); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}
	var ce client.Event
	if err := json.Unmarshal(r.Body, &ce); err != nil || ce.ID != ids[0] || ce.Type != client.EventPaymentSucceeded {
		t.Errorf("body = %+v (%v)", ce, err)
	}
	if e.Status != store.EventDelivered || e.Attempts != 1 {
		t.Errorf("event status %s attempts %d, want delivered after 1", e.Status, e.Attempts)
	}
	if got := f.metric(t, "paysidecar_delivery_attempts_total", map[string]string{"result": "delivered"}); got != 1 {
		t.Errorf("delivered attempts = %v", got)
	}
	if got := f.metric(t, "paysidecar_delivery_latency_seconds", nil); got != 1 {
		t.Errorf("latency samples = %v", got)
	}
	if runOnce(t, d) != 0 || len(a.requests()) != 1 {
		t.Error("a delivered event was delivered again")
	}
}

func TestRetryKeepsWebhookID(t *testing.T) {
	f := newFixture(t)
	a := newApp(t, func(n int, _ received) int {
		if n < 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	ids := f.settle(t, "pay_1", 0)
	sched := delivery.Schedule{10 * time.Second, time.Minute}
	d := f.dispatcher(t, delivery.Config{URL: a.srv.URL, Schedule: sched}, delivery.Options{})

	runOnce(t, d)
	e := f.event(t, ids[0])
	// Rand is 0.5: the first retry waits half of 10 s.
	if e.Status != store.EventPending || e.Attempts != 1 || !e.NextAttemptAt.Equal(t0.Add(5*time.Second)) || e.LastError != "HTTP 500" {
		t.Fatalf("after a 500: %+v", e)
	}
	if runOnce(t, d) != 0 {
		t.Fatal("claimed an event before its retry time")
	}
	f.clock.Set(t0.Add(5 * time.Second))
	runOnce(t, d)
	e = f.event(t, ids[0])
	// Second retry: between 10 s and 60 s, half-way is 35 s.
	if e.Attempts != 2 || !e.NextAttemptAt.Equal(t0.Add(40*time.Second)) {
		t.Fatalf("after the second 500: attempts %d next %s", e.Attempts, e.NextAttemptAt)
	}
	f.clock.Set(t0.Add(40 * time.Second))
	runOnce(t, d)
	if e = f.event(t, ids[0]); e.Status != store.EventDelivered || e.Attempts != 3 {
		t.Fatalf("after recovery: %s after %d", e.Status, e.Attempts)
	}
	reqs := a.requests()
	if len(reqs) != 3 {
		t.Fatalf("requests = %d, want 3", len(reqs))
	}
	wantTS := []time.Time{t0, t0.Add(5 * time.Second), t0.Add(40 * time.Second)}
	for i, r := range reqs {
		if r.ID != ids[0] || string(r.Body) != string(reqs[0].Body) {
			t.Errorf("attempt %d: id %s, body changed=%v; want the same id and body", i, r.ID, string(r.Body) != string(reqs[0].Body))
		}
		if r.Timestamp != strconvUnix(wantTS[i]) {
			t.Errorf("attempt %d: timestamp %s, want %s", i, r.Timestamp, strconvUnix(wantTS[i]))
		}
		if err := delivery.VerifyAt(secret, r.Header, r.Body, time.Minute, wantTS[i]); err != nil {
			t.Errorf("attempt %d: %v", i, err)
		}
	}
	if got := f.metric(t, "paysidecar_delivery_attempts_total", map[string]string{"result": "http_error"}); got != 2 {
		t.Errorf("http_error attempts = %v, want 2", got)
	}
}

func TestRetryOnTimeoutAndRedirect(t *testing.T) {
	f := newFixture(t)
	a := newApp(t, func(n int, _ received) int {
		switch n {
		case 0:
			return -1 // hang
		case 1:
			return http.StatusFound
		}
		return http.StatusAccepted
	})
	ids := f.settle(t, "pay_1", 0)
	// The timeout is what the hang costs, and what a loaded machine has
	// for the answers that do come.
	d := f.dispatcher(t, delivery.Config{URL: a.srv.URL, Timeout: time.Second, Schedule: delivery.Schedule{time.Second, time.Second}}, delivery.Options{})

	runOnce(t, d)
	e := f.event(t, ids[0])
	if e.Status != store.EventPending || e.Attempts != 1 || !strings.Contains(e.LastError, "no answer within 1s") {
		t.Fatalf("after a hang: %+v", e)
	}
	f.clock.Set(t0.Add(time.Second))
	runOnce(t, d)
	if e = f.event(t, ids[0]); e.Status != store.EventPending || e.LastError != "HTTP 302" {
		t.Fatalf("a redirect must not count as delivered: %+v", e)
	}
	f.clock.Set(t0.Add(2 * time.Second))
	runOnce(t, d)
	if e = f.event(t, ids[0]); e.Status != store.EventDelivered {
		t.Fatalf("after recovery: %+v", e)
	}
	if got := f.metric(t, "paysidecar_delivery_attempts_total", map[string]string{"result": "timeout"}); got != 1 {
		t.Errorf("timeout attempts = %v", got)
	}
	if n := len(a.requests()); n != 3 {
		t.Errorf("requests = %d, want 3 (the redirect not followed)", n)
	}
}

// A long outage of the application, driven by the fake clock: every event
// is retried on schedule, none is declared dead within a day, and after
// recovery all arrive, in order per payment.
func TestLongOutage(t *testing.T) {
	f := newFixture(t)
	var down = true
	var mu sync.Mutex
	a := newApp(t, func(int, received) int {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	var all [][]string
	for i := 0; i < 4; i++ {
		all = append(all, f.settle(t, fmt.Sprintf("pay_%d", i), 2))
	}
	rnd := 0.0
	d := f.dispatcher(t, delivery.Config{URL: a.srv.URL, Concurrency: 3}, delivery.Options{Rand: func() float64 {
		mu.Lock()
		defer mu.Unlock()
		rnd += 0.37
		if rnd >= 1 {
			rnd -= 1
		}
		return rnd
	}})
	ctx := context.Background()
	outageEnd := t0.Add(26 * time.Hour)
	for rounds := 0; ; rounds++ {
		if rounds > 1000 {
			t.Fatal("outage did not end")
		}
		runOnce(t, d)
		// Jump to the next due attempt.
		pending, err := f.st.ListEvents(ctx, store.EventPending, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) == 0 {
			break
		}
		var next time.Time
		for _, e := range pending {
			if e.Attempts > 0 && (next.IsZero() || e.NextAttemptAt.Before(next)) {
				next = e.NextAttemptAt
			}
		}
		if next.IsZero() {
			continue // only untried events, due now
		}
		if next.After(outageEnd) {
			mu.Lock()
			down = false
			mu.Unlock()
		}
		if next.After(f.clock.Now()) {
			f.clock.Set(next)
		}
	}
	if dead, _ := f.st.ListEvents(ctx, store.EventDead, 0, 100); len(dead) != 0 {
		t.Fatalf("%d events died during a 26 h outage", len(dead))
	}
	// Delivered order per payment: the successful requests of each payment
	// follow the events' order.
	got := map[string][]string{}
	for _, r := range a.requests() {
		var ce client.Event
		if err := json.Unmarshal(r.Body, &ce); err != nil {
			t.Fatal(err)
		}
		key := ""
		if ce.Data.Payment != nil {
			key = ce.Data.Payment.ID
		} else {
			key = ce.Data.Refund.PaymentID
		}
		if slices.Contains(got[key], r.ID) {
			continue // a retry
		}
		got[key] = append(got[key], r.ID)
	}
	for i, ids := range all {
		key := fmt.Sprintf("pay_%d", i)
		if !slices.Equal(got[key], ids) {
			t.Errorf("%s first-seen order %v, want %v", key, got[key], ids)
		}
		for _, id := range ids {
			if e := f.event(t, id); e.Status != store.EventDelivered {
				t.Errorf("%s: %s", id, e.Status)
			}
		}
	}
	// While the first event of a payment was failing, the ones behind it
	// were never tried.
	for _, ids := range all {
		first := f.event(t, ids[0])
		second := f.event(t, ids[1])
		if second.Attempts != 1 || first.Attempts < 10 {
			t.Errorf("attempts: first %d (want ≥10 through the outage), second %d (want 1)", first.Attempts, second.Attempts)
		}
	}
}

func TestExhaustedDeadThenReplay(t *testing.T) {
	f := newFixture(t)
	a := newApp(t, func(int, received) int { return http.StatusBadGateway })
	ids := f.settle(t, "pay_1", 1)
	d := f.dispatcher(t, delivery.Config{URL: a.srv.URL, Schedule: delivery.Schedule{time.Second, 2 * time.Second}}, delivery.Options{Rand: func() float64 { return 0 }})
	ctx := context.Background()

	for i, at := range []time.Duration{0, 0, time.Second} { // delays with Rand 0: 0, then 1 s
		f.clock.Set(t0.Add(at))
		if n := runOnce(t, d); n != 1 {
			t.Fatalf("round %d claimed %d", i, n)
		}
	}
	e := f.event(t, ids[0])
	if e.Status != store.EventDead || e.Attempts != 3 {
		t.Fatalf("after exhausting retries: %s after %d", e.Status, e.Attempts)
	}
	if got := f.metric(t, "paysidecar_delivery_dead_total", nil); got != 1 {
		t.Errorf("dead counter = %v", got)
	}
	// The refund event waits behind the dead payment event.
	f.clock.Set(t0.Add(time.Hour))
	if n := runOnce(t, d); n != 0 {
		t.Fatalf("claimed %d events behind a dead one", n)
	}
	for _, r := range a.requests() {
		if r.ID != ids[0] {
			t.Fatalf("event %s was tried before %s was delivered", r.ID, ids[0])
		}
	}

	a.setRespond(func(int, received) int { return http.StatusOK })
	if err := f.st.ReplayEvent(ctx, ids[0], f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	runOnce(t, d)
	runOnce(t, d)
	for _, id := range ids {
		if e := f.event(t, id); e.Status != store.EventDelivered {
			t.Errorf("%s: %s after replay", id, e.Status)
		}
	}
	reqs := a.requests()
	if last := reqs[len(reqs)-2:]; last[0].ID != ids[0] || last[1].ID != ids[1] {
		t.Errorf("after replay delivered %s, %s; want %v", last[0].ID, last[1].ID, ids)
	}
}

// With real time, many payments and a flaky application, every event is
// delivered, and no event is sent while an earlier event of its payment is
// undelivered.
func TestOrderUnderConcurrency(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	delivered := map[string]bool{}
	order := map[string][]string{} // payment → events in order
	var violations []string
	a := newApp(t, nil)
	const payments = 12
	for i := 0; i < payments; i++ {
		id := fmt.Sprintf("pay_%02d", i)
		order[id] = f.settle(t, id, 3)
	}
	keyOf := map[string]string{}
	for p, ids := range order {
		for _, id := range ids {
			keyOf[id] = p
		}
	}
	a.setRespond(func(n int, r received) int {
		mu.Lock()
		defer mu.Unlock()
		for _, prev := range order[keyOf[r.ID]] {
			if prev == r.ID {
				break
			}
			if !delivered[prev] {
				violations = append(violations, r.ID+" before "+prev)
			}
		}
		if n%3 == 1 {
			return http.StatusInternalServerError
		}
		delivered[r.ID] = true
		return http.StatusOK
	})
	d := f.dispatcher(t, delivery.Config{URL: a.srv.URL, Concurrency: 6, BatchSize: 5, PollInterval: 5 * time.Millisecond,
		Schedule: delivery.Schedule{time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond,
			time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond}},
		delivery.Options{Telemetry: telemetry.Bundle{Now: time.Now}})
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	waitFor(t, "all events delivered", func() bool {
		c, err := f.st.CountEvents(context.Background())
		if err == nil && c[store.EventDead] > 0 {
			t.Fatalf("%d events died", c[store.EventDead])
		}
		return err == nil && c[store.EventDelivered] == payments*4
	})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(violations) > 0 {
		t.Errorf("out of order: %v", violations)
	}
}

func TestPublishedWakesAndLinksSpans(t *testing.T) {
	f := newFixture(t)
	a := newApp(t, nil)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cs := &countingStore{Store: f.st}
	d, err := delivery.New(delivery.Config{URL: a.srv.URL, Secret: secret, PollInterval: time.Hour}, cs, delivery.Options{
		Telemetry: telemetry.Bundle{TracerProvider: tp}, Propagator: propagation.TraceContext{},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	led, err := ledger.New(f.st, ledger.Options{Published: d.Published})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The first claim happens at Start; after it, with an hour between
	// polls, only a wake-up can deliver what follows.
	waitFor(t, "first claim", func() bool { return cs.count() == 1 })
	ctx, notifySpan := tp.Tracer("test").Start(context.Background(), "notify.receive")
	p := store.Payment{ID: "pay_w", MerchantID: "m", OutTradeNo: "o", AmountFen: 1, ReqDate: "20260301", ReqSeqID: "s", Status: store.StatusProcessing}
	if err := f.st.CreatePayment(ctx, &p); err != nil {
		t.Fatal(err)
	}
	if _, _, err := led.ApplyPayment(ctx, "pay_w", ledger.Result{TransStat: "S", Source: ledger.SourceNotification}); err != nil {
		t.Fatal(err)
	}
	notifySpan.End()
	waitFor(t, "delivery woken by the ledger", func() bool { return len(a.requests()) == 1 })
	waitFor(t, "attempt span ended", func() bool { return len(rec.Ended()) >= 2 })
	var attempt sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "webhook.deliver" {
			attempt = s
		}
	}
	if attempt == nil {
		t.Fatal("no webhook.deliver span")
	}
	links := attempt.Links()
	if len(links) != 1 || links[0].SpanContext.SpanID() != notifySpan.SpanContext().SpanID() {
		t.Errorf("attempt links = %+v, want the notification span", links)
	}
	tp0 := a.requests()[0].TraceParent
	if !strings.Contains(tp0, attempt.SpanContext().TraceID().String()) {
		t.Errorf("traceparent %q does not carry the attempt's trace %s", tp0, attempt.SpanContext().TraceID())
	}
}

func TestFormFormat(t *testing.T) {
	f := newFixture(t)
	a := newApp(t, nil)
	ids := f.settle(t, "pay_1", 1)
	d := f.dispatcher(t, delivery.Config{URL: a.srv.URL, Format: delivery.FormatForm}, delivery.Options{})
	runOnce(t, d)
	runOnce(t, d)
	reqs := a.requests()
	if len(reqs) != 2 {
		t.Fatalf("requests = %d", len(reqs))
	}
	for _, r := range reqs {
		if r.ContentType != "application/x-www-form-urlencoded; charset=utf-8" {
			t.Errorf("content type %q", r.ContentType)
		}
		if err := delivery.VerifyAt(secret, r.Header, r.Body, time.Minute, f.clock.Now()); err != nil {
			t.Errorf("%s: %v", r.ID, err)
		}
	}
	// From a notification: the form exactly as received.
	form, err := url.ParseQuery(string(reqs[0].Body))
	if err != nil {
		t.Fatal(err)
	}
	wantData := `{"huifu_id":"m1","req_seq_id":"s-pay_1","trans_stat":"S","trans_amt":"100.00","note":"a&b<c>"}`
	if reqs[0].ID != ids[0] || form.Get("resp_data") != wantData || form.Get("sign") != "c2lnbg==" ||
		form.Get("resp_code") != "00000000" || form.Get("resp_desc") != "ok" {
		t.Errorf("notification form = %v", form)
	}
	// From a query: a notification-shaped resp_data, unsigned.
	form, err = url.ParseQuery(string(reqs[1].Body))
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal([]byte(form.Get("resp_data")), &data); err != nil {
		t.Fatal(err)
	}
	if form.Has("sign") || form.Get("resp_desc") != "query" || data["trans_type"] != nkp.TransRefund ||
		data["trans_stat"] != "S" || data["ord_amt"] != "1.00" || data["req_seq_id"] != "s-pay_1-r0" || data["huifu_id"] != "m1" {
		t.Errorf("query form = %v, data %v", form, data)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		cfg  delivery.Config
	}{
		{"no url", delivery.Config{Secret: secret}},
		{"relative url", delivery.Config{URL: "/hook", Secret: secret}},
		{"ftp url", delivery.Config{URL: "ftp://x/y", Secret: secret}},
		{"no secret", delivery.Config{URL: "http://127.0.0.1:1/"}},
		{"short secret", delivery.Config{URL: "http://127.0.0.1:1/", Secret: "abc"}},
		{"bad format", delivery.Config{URL: "http://127.0.0.1:1/", Secret: secret, Format: "xml"}},
		{"bad schedule", delivery.Config{URL: "http://127.0.0.1:1/", Secret: secret, Schedule: delivery.Schedule{0}}},
		{"lease shorter than timeout", delivery.Config{URL: "http://127.0.0.1:1/", Secret: secret, Timeout: time.Minute, Lease: time.Second}},
		{"bad profile", delivery.Config{URL: "http://127.0.0.1:1/", Secret: secret, Profile: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := delivery.New(tt.cfg, f.st, delivery.Options{})
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") {
				t.Errorf("error reveals the secret: %v", err)
			}
		})
	}
}

// An error talking to the application never carries the webhook URL, which
// may hold credentials.
func TestErrorsHideURL(t *testing.T) {
	f := newFixture(t)
	ids := f.settle(t, "pay_1", 0)
	d := f.dispatcher(t, delivery.Config{URL: "http://user:hunter2@127.0.0.1:1/hook?token=s3cr3t"}, delivery.Options{})
	runOnce(t, d)
	e := f.event(t, ids[0])
	if e.Status != store.EventPending || e.LastError == "" {
		t.Fatalf("event = %+v", e)
	}
	if strings.Contains(e.LastError, "s3cr3t") || strings.Contains(e.LastError, "hunter2") {
		t.Errorf("last error reveals the URL: %q", e.LastError)
	}
}

func TestCloseWithoutStart(t *testing.T) {
	f := newFixture(t)
	d := f.dispatcher(t, delivery.Config{URL: "http://127.0.0.1:1/"}, delivery.Options{})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d.Wake()
	d.Wake() // never blocks
}

// countingStore counts ClaimEvents calls, to tell a poll from a wake-up.
type countingStore struct {
	store.Store
	mu     sync.Mutex
	claims int
}

func (c *countingStore) ClaimEvents(ctx context.Context, cl store.Claim, now time.Time, limit int) ([]store.Event, error) {
	c.mu.Lock()
	c.claims++
	c.mu.Unlock()
	return c.Store.ClaimEvents(ctx, cl, now, limit)
}

func (c *countingStore) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.claims
}

// writeCounter counts the store's delivery bookkeeping calls.
type writeCounter struct {
	countingStore
	completeOne, completeMany, attempts int
}

func (c *writeCounter) CompleteAttempt(ctx context.Context, a store.Attempt) error {
	c.mu.Lock()
	c.completeOne++
	c.mu.Unlock()
	return c.Store.CompleteAttempt(ctx, a)
}

func (c *writeCounter) CompleteAttempts(ctx context.Context, as []store.Attempt) ([]error, error) {
	c.mu.Lock()
	c.completeMany++
	c.attempts += len(as)
	c.mu.Unlock()
	return c.Store.CompleteAttempts(ctx, as)
}

// A batch of attempts costs two store writes, its claim and the record of
// every outcome, whatever the outcomes; each event ends as its own attempt
// went.
func TestBatchBookkeepingIsTwoWrites(t *testing.T) {
	f := newFixture(t)
	a := newApp(t, func(_ int, r received) int {
		if r.ID == ledger.EventID("pay_3", store.StatusSucceeded) {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	var ids []string
	for i := range 5 {
		ids = append(ids, f.settle(t, fmt.Sprintf("pay_%d", i), 0)...)
	}
	wc := &writeCounter{countingStore: countingStore{Store: f.st}}
	d, err := delivery.New(delivery.Config{URL: a.srv.URL, Secret: secret, Concurrency: 2, Owner: "replica-a"}, wc, delivery.Options{
		Telemetry: telemetry.Bundle{Now: f.clock.Now, Logger: slog.New(slog.DiscardHandler)}, Rand: func() float64 { return 0.5 },
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := runOnce(t, d); n != 5 {
		t.Fatalf("claimed %d, want 5", n)
	}
	if wc.count() != 1 || wc.completeMany != 1 || wc.attempts != 5 || wc.completeOne != 0 {
		t.Fatalf("claims %d, CompleteAttempts calls %d with %d attempts, CompleteAttempt calls %d; want 1, 1, 5, 0",
			wc.count(), wc.completeMany, wc.attempts, wc.completeOne)
	}
	for _, id := range ids {
		e := f.event(t, id)
		want := store.EventDelivered
		if id == ledger.EventID("pay_3", store.StatusSucceeded) {
			want = store.EventPending
		}
		if e.Status != want || e.Attempts != 1 {
			t.Errorf("event %s: status %s after %d attempts, want %s after 1", id, e.Status, e.Attempts, want)
		}
	}
	// Every lease was released with the record: the failed event is due
	// again at its retry, claimed by anyone.
	f.clock.Set(t0.Add(time.Hour))
	other, err := f.st.ClaimEvents(context.Background(), store.Claim{Owner: "replica-b", LeaseUntil: t0.Add(2 * time.Hour)}, t0.Add(time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(other) != 1 || other[0].ID != ledger.EventID("pay_3", store.StatusSucceeded) {
		t.Fatalf("another replica claimed %v, want the failed event alone", other)
	}
}

func TestCloseStopsItsGoroutines(t *testing.T) {
	f := newFixture(t)
	f.settle(t, "pay_1", 0)
	before := runtime.NumGoroutine()
	d := f.dispatcher(t, delivery.Config{URL: "http://127.0.0.1:1/", PollInterval: time.Millisecond}, delivery.Options{Telemetry: telemetry.Bundle{Now: time.Now}})
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "an attempt", func() bool { return f.event(t, ledger.EventID("pay_1", store.StatusSucceeded)).Attempts > 0 })
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}
