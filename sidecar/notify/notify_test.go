package notify_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/notify"
	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/sqlite"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

const merchant = "6666000100000001"

var (
	keysOnce          sync.Once
	upstreamKey, evil *rsa.PrivateKey
)

func keys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if _, upstreamKey, err = nkp.GenerateKeyPair(2048); err != nil {
			panic(err)
		}
		if _, evil, err = nkp.GenerateKeyPair(2048); err != nil {
			panic(err)
		}
	})
	return upstreamKey, evil
}

// failingStore makes chosen writes fail, to show that nothing is
// acknowledged before it is durable.
type failingStore struct {
	store.Store
	mu             sync.Mutex
	failTransition bool
	failRecord     bool
	hold           chan struct{}
	entered        chan struct{}
	// writes counts the calls that write; reads those of GetPayment and
	// GetRefund (the lookups by req_seq_id are not counted).
	writes, reads atomic.Int64
}

func (s *failingStore) GetPayment(ctx context.Context, id string) (store.Payment, error) {
	s.reads.Add(1)
	return s.Store.GetPayment(ctx, id)
}

func (s *failingStore) GetRefund(ctx context.Context, id string) (store.Refund, error) {
	s.reads.Add(1)
	return s.Store.GetRefund(ctx, id)
}

func (s *failingStore) TransitionRefund(ctx context.Context, id string, t store.Transition) (store.Refund, bool, error) {
	s.writes.Add(1)
	return s.Store.TransitionRefund(ctx, id, t)
}

func (s *failingStore) TransitionPayment(ctx context.Context, id string, t store.Transition) (store.Payment, bool, error) {
	s.writes.Add(1)
	s.mu.Lock()
	fail := s.failTransition
	s.mu.Unlock()
	if fail {
		return store.Payment{}, false, errors.New("disk full")
	}
	return s.Store.TransitionPayment(ctx, id, t)
}

// ApplyNotification fails when either the record or the transition is
// set to fail: it is both in one transaction.
func (s *failingStore) ApplyNotification(ctx context.Context, n store.Notification, t store.Transition) (store.NotificationResult, error) {
	s.writes.Add(1)
	s.mu.Lock()
	fail := s.failRecord || s.failTransition
	s.mu.Unlock()
	if fail {
		return store.NotificationResult{}, errors.New("disk full")
	}
	return s.Store.ApplyNotification(ctx, n, t)
}

func (s *failingStore) RecordNotification(ctx context.Context, n store.Notification) (bool, error) {
	s.writes.Add(1)
	s.mu.Lock()
	fail := s.failRecord
	s.mu.Unlock()
	if fail {
		return false, errors.New("disk full")
	}
	return s.Store.RecordNotification(ctx, n)
}

// GetPaymentByReqSeqID blocks, when the test set hold, until hold is
// closed, after telling entered.
func (s *failingStore) GetPaymentByReqSeqID(ctx context.Context, huifuID, reqDate, reqSeqID string) (store.Payment, error) {
	s.mu.Lock()
	hold, entered := s.hold, s.entered
	s.mu.Unlock()
	if hold != nil {
		entered <- struct{}{}
		<-hold
	}
	return s.Store.GetPaymentByReqSeqID(ctx, huifuID, reqDate, reqSeqID)
}

func (s *failingStore) set(transition, record bool) {
	s.mu.Lock()
	s.failTransition, s.failRecord = transition, record
	s.mu.Unlock()
}

type fixture struct {
	h     *notify.Handler
	clock *clock
	st    *sqlite.Store
	fs    *failingStore
	srv   *httptest.Server
	key   *rsa.PrivateKey
	evil  *rsa.PrivateKey
	reg   *prometheus.Registry
	logs  *syncBuffer
	rec   *tracetest.SpanRecorder
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// clock is a clock the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newFixture(t testing.TB, cfg notify.Config) *fixture {
	t.Helper()
	key, evilKey := keys(t)
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := &fixture{st: st, fs: &failingStore{Store: st}, key: key, evil: evilKey, reg: prometheus.NewRegistry(),
		logs: &syncBuffer{}, rec: tracetest.NewSpanRecorder()}
	logger := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	led, err := ledger.New(f.fs, ledger.Options{Telemetry: telemetry.Bundle{Logger: logger}})
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(f.rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg.Verifier = &key.PublicKey
	f.clock = &clock{t: time.Now()}
	h, err := notify.NewHandler(cfg, f.fs, led, notify.Options{Telemetry: telemetry.Bundle{Logger: logger, Registerer: f.reg, TracerProvider: tp, Now: f.clock.Now}})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) payment(t testing.TB, id string, amount int64) store.Payment {
	t.Helper()
	p := store.Payment{ID: id, MerchantID: merchant, OutTradeNo: "out-" + id, Flow: client.FlowWeChatJSAPI,
		TradeType: upstream.TradeWeChatJSAPI, AmountFen: amount, ReqDate: "20260301", ReqSeqID: "seq-" + id,
		Status: store.StatusProcessing, ExpiresAt: time.Now().Add(time.Hour)}
	if err := f.st.CreatePayment(context.Background(), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) refund(t *testing.T, id, paymentID string, amount int64) store.Refund {
	t.Helper()
	r := store.Refund{ID: id, PaymentID: paymentID, MerchantID: merchant, OutRefundNo: "out-" + id, AmountFen: amount,
		ReqDate: "20260302", ReqSeqID: "seq-" + id, Status: store.StatusProcessing}
	if err := f.st.CreateRefund(context.Background(), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// payData is the resp_data of a payment notification for p.
func payData(p store.Payment, stat string, amount string) map[string]any {
	return map[string]any{
		"resp_code": "00000000", "resp_desc": "success", "huifu_id": p.MerchantID, "req_date": p.ReqDate,
		"req_seq_id": p.ReqSeqID, "nkp_seq_id": "0030default220" + p.ID, "trans_type": upstream.TradeWeChatJSAPI,
		"trans_amt": amount, "trans_stat": stat, "out_trans_id": "4200" + p.ID, "party_order_id": "po" + p.ID,
		"end_time": "20260301101010", "notify_type": "1",
	}
}

func (f *fixture) sign(t testing.TB, data map[string]any) nkp.Notification {
	t.Helper()
	n, err := nkp.SignNotification(f.key, "00000000", "success", data)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *fixture) post(t *testing.T, method, contentType string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+"/notify", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const formType = "application/x-www-form-urlencoded"

func (f *fixture) postForm(t *testing.T, n nkp.Notification) (int, string) {
	t.Helper()
	return f.post(t, http.MethodPost, formType, n.Form().Encode())
}

func (f *fixture) events(t *testing.T) []store.Event {
	t.Helper()
	evs, err := f.st.ListEvents(context.Background(), "", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// recorded reports whether a notification with this resp_data was stored,
// by trying to store it again.
func (f *fixture) recorded(t *testing.T, respData string) bool {
	t.Helper()
	isNew, err := f.st.RecordNotification(context.Background(), store.Notification{
		ID: notify.NotificationID(respData), ReqSeqID: "probe", Kind: "payment", RespData: respData, ReceivedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return !isNew
}

func (f *fixture) metric(t *testing.T, name string, labels map[string]string) float64 {
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
			if m.GetHistogram() != nil {
				return float64(m.GetHistogram().GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestValidNotificationIsStoredBeforeAck(t *testing.T) {
	f := newFixture(t, notify.Config{})
	p := f.payment(t, "pay_1", 1234)
	n := f.sign(t, payData(p, "S", "12.34"))

	code, body := f.postForm(t, n)
	if code != http.StatusOK || body != "RECV_ORD_ID_seq-pay_1" {
		t.Fatalf("answer = %d %q, want 200 RECV_ORD_ID_seq-pay_1", code, body)
	}
	// Everything is in the store by the time the answer arrives.
	got, err := f.st.GetPayment(context.Background(), "pay_1")
	if err != nil || got.Status != store.StatusSucceeded || got.NkpSeqID != "0030default220pay_1" || got.OutTransID != "4200pay_1" {
		t.Fatalf("payment after ack = %+v, %v", got, err)
	}
	evs := f.events(t)
	if len(evs) != 1 || evs[0].ID != ledger.EventID("pay_1", store.StatusSucceeded) || evs[0].Type != client.EventPaymentSucceeded {
		t.Fatalf("events = %+v", evs)
	}
	var ce client.Event
	if err := json.Unmarshal(evs[0].Payload, &ce); err != nil {
		t.Fatal(err)
	}
	if ce.Data.Notification == nil || ce.Data.Notification.RespData != n.RespData || ce.Data.Notification.Sign != n.Sign ||
		ce.Data.Source != ledger.SourceNotification {
		t.Errorf("event keeps the notification as received: %+v", ce.Data)
	}
	if !f.recorded(t, n.RespData) {
		t.Error("notification not recorded")
	}
	if got := f.metric(t, "paysidecar_notify_received_total", map[string]string{"kind": "payment", "result": "applied"}); got != 1 {
		t.Errorf("received{payment,applied} = %v", got)
	}
	if got := f.metric(t, "paysidecar_notify_duration_seconds", nil); got != 1 {
		t.Errorf("duration samples = %v", got)
	}

	// The upstream repeats itself: same answer, no new event.
	for i := 0; i < 3; i++ {
		code, body = f.postForm(t, n)
		if code != http.StatusOK || body != "RECV_ORD_ID_seq-pay_1" {
			t.Fatalf("duplicate answer = %d %q", code, body)
		}
	}
	if evs := f.events(t); len(evs) != 1 {
		t.Errorf("events after duplicates = %d, want 1", len(evs))
	}
	if got := f.metric(t, "paysidecar_notify_received_total", map[string]string{"kind": "payment", "result": "duplicate"}); got != 3 {
		t.Errorf("received{payment,duplicate} = %v, want 3", got)
	}

	// The span carries the event id.
	var found bool
	for _, s := range f.rec.Ended() {
		for _, a := range s.Attributes() {
			if a.Key == "paysidecar.event_id" && a.Value.AsString() == evs[0].ID {
				found = true
			}
		}
	}
	if !found {
		t.Error("no notify span with the event id")
	}
}

func TestForwardOnlyThroughIngress(t *testing.T) {
	f := newFixture(t, notify.Config{})
	p := f.payment(t, "pay_1", 100)
	if code, _ := f.postForm(t, f.sign(t, payData(p, "S", "1.00"))); code != http.StatusOK {
		t.Fatal(code)
	}
	for _, stat := range []string{"P", "I", "F"} {
		late := f.sign(t, payData(p, stat, "1.00"))
		code, body := f.postForm(t, late)
		if code != http.StatusOK || body != "RECV_ORD_ID_seq-pay_1" {
			t.Errorf("late %s: %d %q, want the ack", stat, code, body)
		}
	}
	got, _ := f.st.GetPayment(context.Background(), "pay_1")
	if got.Status != store.StatusSucceeded {
		t.Errorf("status = %s, want succeeded", got.Status)
	}
	if evs := f.events(t); len(evs) != 1 {
		t.Errorf("events = %d, want 1", len(evs))
	}
}

func TestSecurity(t *testing.T) {
	f := newFixture(t, notify.Config{})
	p := f.payment(t, "pay_1", 1000)
	good := f.sign(t, payData(p, "S", "10.00"))

	otherBody := f.sign(t, payData(p, "S", "0.01"))
	byEvil, err := nkp.SignNotification(f.evil, "00000000", "success", payData(p, "S", "10.00"))
	if err != nil {
		t.Fatal(err)
	}
	tampered := good
	tampered.RespData = strings.Replace(good.RespData, `"trans_amt":"10.00"`, `"trans_amt":"0.01"`, 1)
	if tampered.RespData == good.RespData {
		t.Fatal("tampering failed")
	}
	unknown := payData(p, "S", "10.00")
	unknown["req_seq_id"] = "someone-elses"
	noSeq := payData(p, "S", "10.00")
	delete(noSeq, "req_seq_id")
	notJSON := nkp.Notification{RespCode: "00000000", RespData: "not json"}
	notJSON.Sign, _ = nkp.Sign(f.key, []byte(notJSON.RespData))

	form := func(n nkp.Notification, mutate func(url.Values)) string {
		v := n.Form()
		if mutate != nil {
			mutate(v)
		}
		return v.Encode()
	}
	tests := []struct {
		name        string
		method      string
		contentType string
		body        string
		wantCode    int
		wantReason  string
	}{
		{"bad signature", "POST", formType, form(good, func(v url.Values) { v.Set("sign", "AAAA") }), 403, "bad_signature"},
		{"signature not base64", "POST", formType, form(good, func(v url.Values) { v.Set("sign", "*") }), 403, "bad_signature"},
		{"signature of another body", "POST", formType, form(good, func(v url.Values) { v.Set("sign", otherBody.Sign) }), 403, "bad_signature"},
		{"signed by another key", "POST", formType, form(byEvil, nil), 403, "bad_signature"},
		{"tampered amount", "POST", formType, form(tampered, nil), 403, "bad_signature"},
		{"unsigned", "POST", formType, form(good, func(v url.Values) { v.Del("sign") }), 403, "unsigned"},
		{"signed wrong amount", "POST", formType, form(otherBody, nil), 422, "amount_mismatch"},
		{"wrong content type", "POST", "application/json", form(good, nil), 415, "content_type"},
		{"no content type", "POST", "", form(good, nil), 415, "content_type"},
		{"other charset", "POST", formType + "; charset=gbk", form(good, nil), 415, "content_type"},
		{"oversize", "POST", formType, form(good, func(v url.Values) { v.Set("pad", strings.Repeat("x", 70<<10)) }), 413, "oversize"},
		{"GET", "GET", "", "", 405, "method"},
		{"malformed form", "POST", formType, "resp_data=%zz", 400, "malformed"},
		{"no resp_data", "POST", formType, form(good, func(v url.Values) { v.Del("resp_data") }), 400, "malformed"},
		{"resp_data not JSON", "POST", formType, form(notJSON, nil), 400, "bad_data"},
		{"no req_seq_id", "POST", formType, form(f.sign(t, noSeq), nil), 400, "bad_data"},
		{"unknown order", "POST", formType, form(f.sign(t, unknown), nil), 404, "unknown_order"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.metric(t, "paysidecar_notify_rejected_total", map[string]string{"reason": tt.wantReason})
			code, body := f.post(t, tt.method, tt.contentType, tt.body)
			if code != tt.wantCode {
				t.Errorf("answer = %d %q, want %d", code, body, tt.wantCode)
			}
			if strings.HasPrefix(body, "RECV_ORD_ID") {
				t.Errorf("refusal carries an ack: %q", body)
			}
			if got := f.metric(t, "paysidecar_notify_rejected_total", map[string]string{"reason": tt.wantReason}); got != before+1 {
				t.Errorf("rejected{%s} = %v, want %v", tt.wantReason, got, before+1)
			}
			got, _ := f.st.GetPayment(context.Background(), "pay_1")
			if got.Status != store.StatusProcessing || got.NkpSeqID != "" {
				t.Errorf("payment changed: %s %q", got.Status, got.NkpSeqID)
			}
			if evs := f.events(t); len(evs) != 0 {
				t.Errorf("events = %d, want 0", len(evs))
			}
		})
	}
	// (tampered and otherBody share resp_data, as do byEvil and good.)
	for _, n := range []nkp.Notification{otherBody, byEvil, notJSON} {
		if f.recorded(t, n.RespData) {
			t.Errorf("refused notification was recorded: %s", n.RespData)
		}
	}
	// Logs name the reason but never carry a signature or a body.
	logs := f.logs.String()
	for _, secret := range []string{good.Sign[:40], otherBody.Sign[:40], byEvil.Sign[:40], `"trans_amt":"0.01"`, "xxxxxxxxxx"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
	if !strings.Contains(logs, "reason=bad_signature") || !strings.Contains(logs, "reason=amount_mismatch") {
		t.Errorf("logs do not name the reasons:\n%s", logs)
	}

	// After all that, the genuine notification still works, and an old
	// one replayed later is acknowledged and changes nothing.
	if code, body := f.postForm(t, good); code != 200 || body != "RECV_ORD_ID_seq-pay_1" {
		t.Fatalf("genuine: %d %q", code, body)
	}
	if code, body := f.postForm(t, good); code != 200 || body != "RECV_ORD_ID_seq-pay_1" {
		t.Fatalf("replayed: %d %q", code, body)
	}
	if evs := f.events(t); len(evs) != 1 {
		t.Errorf("events = %d, want 1", len(evs))
	}
}

// TestOneWritePerNotification: a notification that moves a payment or a
// refund costs one store write (one commit) and no second read of the
// object; the same result again, which moves nothing, costs one write
// too (the notification is kept).
func TestOneWritePerNotification(t *testing.T) {
	f := newFixture(t, notify.Config{})
	p := f.payment(t, "pay_1", 1000)
	r := f.refund(t, "ref_1", "pay_1", 300)
	refund := map[string]any{"huifu_id": merchant, "req_date": r.ReqDate, "req_seq_id": r.ReqSeqID, "ord_amt": "3.00",
		"trans_stat": "S", "nkp_seq_id": "rn-ref_1", "trans_type": nkp.TransRefund}
	for _, c := range []struct {
		name string
		data map[string]any
	}{
		{"payment", payData(p, "S", "10.00")},
		{"payment, same result again", func() map[string]any {
			d := payData(p, "S", "10.00")
			d["resp_desc"] = "again" // not the same bytes: not answered from the duplicate cache
			return d
		}()},
		{"refund", refund},
	} {
		w, rd := f.fs.writes.Load(), f.fs.reads.Load()
		if code, body := f.postForm(t, f.sign(t, c.data)); code != http.StatusOK || !strings.HasPrefix(body, "RECV_ORD_ID_") {
			t.Fatalf("%s: %d %q", c.name, code, body)
		}
		if n := f.fs.writes.Load() - w; n != 1 {
			t.Errorf("%s: %d store writes, want 1", c.name, n)
		}
		if n := f.fs.reads.Load() - rd; n != 0 {
			t.Errorf("%s: the object was read %d more times after its lookup", c.name, n)
		}
	}
	if got, _ := f.st.GetPayment(context.Background(), "pay_1"); got.Status != store.StatusSucceeded || got.RefundedFen != 300 {
		t.Fatalf("payment after the notifications: %s, refunded %d", got.Status, got.RefundedFen)
	}
}

func TestNothingAckedBeforeDurable(t *testing.T) {
	f := newFixture(t, notify.Config{})
	p := f.payment(t, "pay_1", 100)
	n := f.sign(t, payData(p, "S", "1.00"))

	f.fs.set(false, true)
	if code, body := f.postForm(t, n); code != http.StatusServiceUnavailable || strings.HasPrefix(body, "RECV") {
		t.Fatalf("record failure: %d %q, want 503 without ack", code, body)
	}
	f.fs.set(true, false)
	if code, body := f.postForm(t, n); code != http.StatusServiceUnavailable || strings.HasPrefix(body, "RECV") {
		t.Fatalf("transition failure: %d %q, want 503 without ack", code, body)
	}
	got, _ := f.st.GetPayment(context.Background(), "pay_1")
	if got.Status != store.StatusProcessing || len(f.events(t)) != 0 {
		t.Fatalf("state changed despite the failure: %s", got.Status)
	}
	// Neither try stored anything (the record and the transition are one
	// write); the upstream's retry must apply it.
	f.fs.set(false, false)
	if code, body := f.postForm(t, n); code != 200 || body != "RECV_ORD_ID_seq-pay_1" {
		t.Fatalf("retry: %d %q", code, body)
	}
	got, _ = f.st.GetPayment(context.Background(), "pay_1")
	if got.Status != store.StatusSucceeded || len(f.events(t)) != 1 {
		t.Fatalf("after retry: %s with %d events", got.Status, len(f.events(t)))
	}
	if v := f.metric(t, "paysidecar_notify_rejected_total", map[string]string{"reason": "store_error"}); v != 2 {
		t.Errorf("rejected{store_error} = %v", v)
	}
}

func TestRefundNotifications(t *testing.T) {
	f := newFixture(t, notify.Config{})
	p := f.payment(t, "pay_1", 1000)
	if code, _ := f.postForm(t, f.sign(t, payData(p, "S", "10.00"))); code != 200 {
		t.Fatal(code)
	}
	r1 := f.refund(t, "ref_1", "pay_1", 300)
	r2 := f.refund(t, "ref_2", "pay_1", 200)
	refundData := func(r store.Refund, stat, amt string, withType bool) map[string]any {
		d := map[string]any{"huifu_id": merchant, "req_date": r.ReqDate, "req_seq_id": r.ReqSeqID, "ord_amt": amt,
			"trans_stat": stat, "nkp_seq_id": "rn-" + r.ID, "org_req_seq_id": p.ReqSeqID, "org_req_date": p.ReqDate}
		if withType {
			d["trans_type"] = nkp.TransRefund
		}
		return d
	}
	tests := []struct {
		name     string
		data     map[string]any
		wantCode int
	}{
		{"wrong amount", refundData(r1, "S", "3.01", true), 422},
		{"by trans_type", refundData(r1, "S", "3.00", true), 200},
		{"duplicate", refundData(r1, "S", "3.00", true), 200},
		{"without trans_type", refundData(r2, "F", "2.00", false), 200},
	}
	for _, tt := range tests {
		code, body := f.postForm(t, f.sign(t, tt.data))
		if code != tt.wantCode {
			t.Errorf("%s: %d %q, want %d", tt.name, code, body, tt.wantCode)
		}
		if code == 200 && body != "RECV_ORD_ID_"+tt.data["req_seq_id"].(string) {
			t.Errorf("%s: ack %q", tt.name, body)
		}
	}
	ctx := context.Background()
	g1, _ := f.st.GetRefund(ctx, "ref_1")
	g2, _ := f.st.GetRefund(ctx, "ref_2")
	gp, _ := f.st.GetPayment(ctx, "pay_1")
	if g1.Status != store.StatusSucceeded || g2.Status != store.StatusFailed || gp.RefundedFen != 300 {
		t.Errorf("refunds %s %s, refunded %d", g1.Status, g2.Status, gp.RefundedFen)
	}
	types := []string{}
	for _, e := range f.events(t) {
		types = append(types, e.Type)
	}
	if strings.Join(types, ",") != "payment.succeeded,refund.succeeded,refund.failed" {
		t.Errorf("events = %v", types)
	}
	if v := f.metric(t, "paysidecar_notify_received_total", map[string]string{"kind": "refund", "result": "duplicate"}); v != 1 {
		t.Errorf("received{refund,duplicate} = %v", v)
	}
}

func TestDouGongProfileAndNotifyType(t *testing.T) {
	f := newFixture(t, notify.Config{Profile: nkp.ProfileDouGong})
	p := f.payment(t, "pay_1", 100)
	d := payData(p, "S", "1.00")
	d["hf_seq_id"] = d["nkp_seq_id"]
	delete(d, "nkp_seq_id")

	other := payData(p, "S", "1.00")
	other["notify_type"] = "2"
	if code, body := f.postForm(t, f.sign(t, other)); code != 200 || body != "RECV_ORD_ID_seq-pay_1" {
		t.Fatalf("account notification: %d %q", code, body)
	}
	if got, _ := f.st.GetPayment(context.Background(), "pay_1"); got.Status != store.StatusProcessing {
		t.Fatalf("a non-channel notification changed the payment to %s", got.Status)
	}

	if code, _ := f.postForm(t, f.sign(t, d)); code != 200 {
		t.Fatal(code)
	}
	got, _ := f.st.GetPayment(context.Background(), "pay_1")
	if got.Status != store.StatusSucceeded || got.NkpSeqID != "0030default220pay_1" {
		t.Errorf("dougong notification: %s, serial %q", got.Status, got.NkpSeqID)
	}
}

func TestConcurrentDuplicates(t *testing.T) {
	f := newFixture(t, notify.Config{})
	p := f.payment(t, "pay_1", 100)
	n := f.sign(t, payData(p, "S", "1.00"))
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := f.srv.Client().PostForm(f.srv.URL, n.Form())
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "RECV_ORD_ID_seq-pay_1" {
				t.Errorf("answer %d %q", resp.StatusCode, b)
			}
		}()
	}
	wg.Wait()
	if evs := f.events(t); len(evs) != 1 {
		t.Errorf("events = %d, want 1", len(evs))
	}
}

func TestNewHandlerRefusesBadConfig(t *testing.T) {
	key, _ := keys(t)
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	led, _ := ledger.New(st, ledger.Options{})
	if _, err := notify.NewHandler(notify.Config{}, st, led, notify.Options{}); err == nil {
		t.Error("accepted a handler without the upstream key")
	}
	if _, err := notify.NewHandler(notify.Config{Verifier: &key.PublicKey, Profile: "x"}, st, led, notify.Options{}); err == nil {
		t.Error("accepted an unknown profile")
	}
	if _, err := notify.NewHandler(notify.Config{Verifier: &key.PublicKey}, st, nil, notify.Options{}); err == nil {
		t.Error("accepted a nil ledger")
	}
}

func TestNextUpstreamKey(t *testing.T) {
	_, next, err := nkp.GenerateKeyPair(2048)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, notify.Config{NextVerifier: &next.PublicKey})
	p1, p2 := f.payment(t, "pay_1", 100), f.payment(t, "pay_2", 100)
	if code, body := f.postForm(t, f.sign(t, payData(p1, "S", "1.00"))); code != 200 {
		t.Fatalf("signed with the current key: %d %q", code, body)
	}
	byNext, err := nkp.SignNotification(next, "00000000", "success", payData(p2, "S", "1.00"))
	if err != nil {
		t.Fatal(err)
	}
	if code, body := f.postForm(t, byNext); code != 200 || body != "RECV_ORD_ID_seq-pay_2" {
		t.Fatalf("signed with the next key: %d %q", code, body)
	}
	for key, want := range map[string]float64{nkp.KeyCurrent: 1, nkp.KeyNext: 1} {
		if v := f.metric(t, "paysidecar_notify_verified_total", map[string]string{"key": key}); v != want {
			t.Errorf("verified{%s} = %v, want %v", key, v, want)
		}
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "upstream.public_key_next") || !strings.Contains(logs, nkp.KeyID(&next.PublicKey)) {
		t.Errorf("no log of the switch-over:\n%s", logs)
	}
	pub, _ := nkp.PublicKeyBase64(&next.PublicKey)
	if strings.Contains(logs, pub[40:80]) {
		t.Error("the logs show the key")
	}
	// A handler without the next key refuses what it signs.
	g := newFixture(t, notify.Config{})
	p3 := g.payment(t, "pay_3", 100)
	byNext3, _ := nkp.SignNotification(next, "00000000", "success", payData(p3, "S", "1.00"))
	if code, _ := g.postForm(t, byNext3); code != http.StatusForbidden {
		t.Errorf("next key not configured: %d, want 403", code)
	}
}
