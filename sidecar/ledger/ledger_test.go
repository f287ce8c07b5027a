package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/sqlite"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func TestPaymentStatusFromUpstream(t *testing.T) {
	expires := t0.Add(time.Hour)
	tests := []struct {
		name      string
		stat, bc  string
		expiresAt time.Time
		now       time.Time
		want      store.Status
	}{
		{"success", "S", "", expires, t0, store.StatusSucceeded},
		{"success after expiry is still success", "S", "", expires, expires.Add(time.Hour), store.StatusSucceeded},
		{"failure", "F", "CARD_DECLINED", expires, t0, store.StatusFailed},
		{"failure without expiry", "F", "", time.Time{}, t0, store.StatusFailed},
		{"closed by bank code", "F", nkp.BankCodeOrderClosed, expires, t0, store.StatusClosed},
		{"failure after expiry is closed", "F", "", expires, expires.Add(time.Second), store.StatusClosed},
		{"failure at expiry is failed", "F", "", expires, expires, store.StatusFailed},
		{"processing", "P", "", expires, t0, store.StatusProcessing},
		{"initial", "I", "", expires, t0, store.StatusProcessing},
		{"empty", "", "", expires, t0, store.StatusProcessing},
		{"unknown is not final", "X", "", expires, t0, store.StatusProcessing},
		{"lower case is not understood", "s", "", expires, t0, store.StatusProcessing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ledger.PaymentStatusFromUpstream(tt.stat, tt.bc, tt.expiresAt, tt.now); got != tt.want {
				t.Errorf("PaymentStatusFromUpstream(%q, %q) = %q, want %q", tt.stat, tt.bc, got, tt.want)
			}
		})
	}
}

func TestRefundStatusFromUpstream(t *testing.T) {
	tests := []struct {
		stat string
		want store.Status
	}{
		{"S", store.StatusSucceeded},
		{"F", store.StatusFailed},
		{"P", store.StatusProcessing},
		{"I", store.StatusProcessing},
		{"", store.StatusProcessing},
		{"Z", store.StatusProcessing},
	}
	for _, tt := range tests {
		if got := ledger.RefundStatusFromUpstream(tt.stat); got != tt.want {
			t.Errorf("RefundStatusFromUpstream(%q) = %q, want %q", tt.stat, got, tt.want)
		}
	}
}

func TestEventID(t *testing.T) {
	a := ledger.EventID("pay_1", store.StatusSucceeded)
	if a != ledger.EventID("pay_1", store.StatusSucceeded) {
		t.Fatal("EventID is not deterministic")
	}
	if !strings.HasPrefix(a, "evt_") || len(a) != 4+32 {
		t.Fatalf("EventID = %q, want evt_ and 32 hex digits", a)
	}
	// Golden value: the id is what applications see as webhook-id and must
	// never change between versions (computed independently as the first
	// 16 bytes of SHA-256("pay_1\x00succeeded")).
	if want := "evt_0d9503ef0fa909d97bd684ad5280f73e"; a != want {
		t.Errorf("EventID = %s, want %s", a, want)
	}
	others := []string{
		ledger.EventID("pay_1", store.StatusFailed),
		ledger.EventID("pay_2", store.StatusSucceeded),
		ledger.EventID("pay_1s", "ucceeded"),
	}
	for _, o := range others {
		if o == a {
			t.Errorf("EventID collision: %q", o)
		}
	}
}

func TestConversions(t *testing.T) {
	p := store.Payment{
		ID: "pay_1", MerchantID: "m1", OutTradeNo: "o1", Flow: client.FlowWeChatJSAPI, TradeType: upstream.TradeWeChatJSAPI,
		AmountFen: 1234, Description: "tea", ReqDate: "20260301", ReqSeqID: "r1", NkpSeqID: "n1",
		PartyOrderID: "po", OutTransID: "ot", Status: store.StatusSucceeded, RefundedFen: 34,
		PayParams: json.RawMessage(`{"appId":"wx"}`), Metadata: json.RawMessage(`{"k":"v"}`),
		ExpiresAt: t0.Add(time.Hour), CreatedAt: t0, FinishedAt: t0.Add(time.Minute),
	}
	c := ledger.PaymentToClient(p)
	if c.Object != "payment" || c.ID != "pay_1" || c.AmountFen != 1234 || c.Status != client.StatusSucceeded ||
		c.PartyOrder != "po" || c.OutTransID != "ot" || c.RefundedFen != 34 || c.Metadata["k"] != "v" ||
		string(c.PayParams) != `{"appId":"wx"}` || c.ExpiresAt == nil || !c.ExpiresAt.Equal(p.ExpiresAt) ||
		c.FinishedAt == nil || !c.FinishedAt.Equal(p.FinishedAt) {
		t.Errorf("PaymentToClient = %+v", c)
	}
	p.FinishedAt, p.ExpiresAt, p.Metadata = time.Time{}, time.Time{}, json.RawMessage(`[1]`)
	c = ledger.PaymentToClient(p)
	if c.FinishedAt != nil || c.ExpiresAt != nil || c.Metadata != nil {
		t.Errorf("zero times and bad metadata must be left out: %+v", c)
	}
	r := ledger.RefundToClient(store.Refund{ID: "ref_1", PaymentID: "pay_1", AmountFen: 5, Status: store.StatusFailed, CreatedAt: t0})
	if r.Object != "refund" || r.ID != "ref_1" || r.PaymentID != "pay_1" || r.AmountFen != 5 || r.Status != client.StatusFailed || r.FinishedAt != nil {
		t.Errorf("RefundToClient = %+v", r)
	}
}

// fixture is a ledger over a real SQLite store.
type fixture struct {
	st  *sqlite.Store
	led *ledger.Ledger
	reg *prometheus.Registry

	mu        sync.Mutex
	published []store.Event
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := &fixture{st: st, reg: prometheus.NewRegistry()}
	f.led, err = ledger.New(st, ledger.Options{
		Telemetry: telemetry.Bundle{Now: func() time.Time { return t0.Add(5 * time.Minute) }, Registerer: f.reg},
		Published: func(_ context.Context, e store.Event) {
			f.mu.Lock()
			f.published = append(f.published, e)
			f.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) payment(t *testing.T, id string, amount int64) store.Payment {
	t.Helper()
	p := store.Payment{
		ID: id, MerchantID: "6666000100000001", OutTradeNo: "out-" + id, Flow: client.FlowWeChatJSAPI,
		TradeType: upstream.TradeWeChatJSAPI, AmountFen: amount, Description: "tea", ReqDate: "20260301",
		ReqSeqID: "seq-" + id, Status: store.StatusProcessing, ExpiresAt: t0.Add(2 * time.Hour), CreatedAt: t0,
	}
	if err := f.st.CreatePayment(context.Background(), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) refund(t *testing.T, id, paymentID string, amount int64) store.Refund {
	t.Helper()
	r := store.Refund{
		ID: id, PaymentID: paymentID, MerchantID: "6666000100000001", OutRefundNo: "out-" + id, AmountFen: amount,
		ReqDate: "20260301", ReqSeqID: "seq-" + id, Status: store.StatusProcessing, CreatedAt: t0,
	}
	if err := f.st.CreateRefund(context.Background(), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) events(t *testing.T) []store.Event {
	t.Helper()
	evs, err := f.st.ListEvents(context.Background(), "", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func (f *fixture) publishedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.published)
}

func decodeEvent(t *testing.T, e store.Event) client.Event {
	t.Helper()
	var ce client.Event
	if err := json.Unmarshal(e.Payload, &ce); err != nil {
		t.Fatalf("event payload: %v", err)
	}
	return ce
}

func TestApplyPaymentSucceededOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.payment(t, "pay_1", 1000)
	up := json.RawMessage(`{"trans_stat":"S","trans_amt":"10.00"}`)
	res := ledger.Result{TransStat: "S", NkpSeqID: "nkp-1", PartyOrderID: "po-1", OutTransID: "wx-1",
		Amount: 1000, Upstream: up, Source: ledger.SourceNotification,
		Notification: &client.UpstreamNotification{RespCode: "00000000", RespData: string(up), Sign: "c2ln"}}

	p, applied, err := f.led.ApplyPayment(ctx, "pay_1", res)
	if err != nil || !applied {
		t.Fatalf("ApplyPayment = %v, %v; want applied", applied, err)
	}
	if p.Status != store.StatusSucceeded || p.NkpSeqID != "nkp-1" || p.OutTransID != "wx-1" || p.FinishedAt.IsZero() {
		t.Errorf("payment after success = %+v", p)
	}
	evs := f.events(t)
	if len(evs) != 1 {
		t.Fatalf("events = %d, want 1", len(evs))
	}
	e := evs[0]
	wantID := ledger.EventID("pay_1", store.StatusSucceeded)
	if e.ID != wantID || e.Type != client.EventPaymentSucceeded || e.OrderKey != "pay_1" || e.ObjectID != "pay_1" {
		t.Errorf("event = %+v, want id %s type payment.succeeded keyed by the payment", e, wantID)
	}
	ce := decodeEvent(t, e)
	if ce.ID != e.ID || ce.Type != e.Type || ce.Data.Source != ledger.SourceNotification || ce.Data.Payment == nil ||
		ce.Data.Payment.Status != client.StatusSucceeded || ce.Data.Payment.NkpSeqID != "nkp-1" ||
		ce.Data.Payment.AmountFen != 1000 || ce.Data.Notification == nil || ce.Data.Notification.RespData != string(up) {
		t.Errorf("payload = %+v", ce)
	}
	if f.publishedCount() != 1 {
		t.Errorf("published = %d, want 1", f.publishedCount())
	}

	// The same result again, then the same final state found by a query:
	// nothing changes, no new event, no error.
	for _, src := range []string{ledger.SourceNotification, ledger.SourceQuery} {
		r2 := res
		r2.Source = src
		p2, applied, err := f.led.ApplyPayment(ctx, "pay_1", r2)
		if err != nil || applied {
			t.Fatalf("duplicate from %s: applied=%v err=%v, want unchanged", src, applied, err)
		}
		if p2.Status != store.StatusSucceeded {
			t.Errorf("status after duplicate = %s", p2.Status)
		}
	}
	if n := len(f.events(t)); n != 1 {
		t.Errorf("events after duplicates = %d, want 1", n)
	}
	if f.publishedCount() != 1 {
		t.Errorf("published after duplicates = %d, want 1", f.publishedCount())
	}
	if got := resultsCount(t, f.reg, "payment", "notification", "unchanged"); got != 1 {
		t.Errorf("unchanged counter = %v, want 1", got)
	}
}

// resultsCount reads paysidecar_ledger_results_total for the labels.
func resultsCount(t *testing.T, reg *prometheus.Registry, kind, source, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"kind": kind, "source": source, "result": result}
	for _, mf := range mfs {
		if mf.GetName() != "paysidecar_ledger_results_total" {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestApplyPaymentForwardOnly(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		first      ledger.Result
		then       ledger.Result
		wantStatus store.Status
		wantResult string
	}{
		{"processing after success", ledger.Result{TransStat: "S"}, ledger.Result{TransStat: "P"}, store.StatusSucceeded, "unchanged"},
		{"failure after success", ledger.Result{TransStat: "S"}, ledger.Result{TransStat: "F"}, store.StatusSucceeded, "conflict"},
		{"success after close", ledger.Result{TransStat: "F", BankCode: nkp.BankCodeOrderClosed}, ledger.Result{TransStat: "S"}, store.StatusClosed, "conflict"},
		{"initial after failure", ledger.Result{TransStat: "F"}, ledger.Result{TransStat: "I"}, store.StatusFailed, "unchanged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.payment(t, "pay_1", 100)
			tt.first.Source, tt.then.Source = ledger.SourceNotification, ledger.SourceQuery
			if _, applied, err := f.led.ApplyPayment(ctx, "pay_1", tt.first); err != nil || !applied {
				t.Fatalf("first: applied=%v err=%v", applied, err)
			}
			before := f.events(t)
			p, applied, err := f.led.ApplyPayment(ctx, "pay_1", tt.then)
			if err != nil || applied {
				t.Fatalf("then: applied=%v err=%v, want unchanged without error", applied, err)
			}
			if p.Status != tt.wantStatus {
				t.Errorf("status = %s, want %s", p.Status, tt.wantStatus)
			}
			after := f.events(t)
			if len(after) != len(before) || len(after) != 1 {
				t.Errorf("events before %d, after %d; want 1 and 1", len(before), len(after))
			}
			if got := resultsCount(t, f.reg, "payment", "query", tt.wantResult); got != 1 {
				t.Errorf("%s counter = %v, want 1", tt.wantResult, got)
			}
		})
	}
}

func TestApplyPaymentFinalStates(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		res      ledger.Result
		now      time.Time
		want     store.Status
		wantType string
	}{
		{"failed", ledger.Result{TransStat: "F", BankCode: "DECLINED"}, t0.Add(time.Minute), store.StatusFailed, client.EventPaymentFailed},
		{"closed by bank code", ledger.Result{TransStat: "F", BankCode: nkp.BankCodeOrderClosed}, t0.Add(time.Minute), store.StatusClosed, client.EventPaymentClosed},
		{"failed after expiry", ledger.Result{TransStat: "F"}, t0.Add(3 * time.Hour), store.StatusClosed, client.EventPaymentClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.payment(t, "pay_1", 100)
			tt.res.At = tt.now
			tt.res.Source = ledger.SourceQuery
			p, applied, err := f.led.ApplyPayment(ctx, "pay_1", tt.res)
			if err != nil || !applied || p.Status != tt.want {
				t.Fatalf("ApplyPayment = %s, %v, %v; want %s applied", p.Status, applied, err, tt.want)
			}
			evs := f.events(t)
			if len(evs) != 1 || evs[0].Type != tt.wantType || evs[0].ID != ledger.EventID("pay_1", tt.want) {
				t.Fatalf("events = %+v, want one %s", evs, tt.wantType)
			}
			if ce := decodeEvent(t, evs[0]); ce.Data.Source != ledger.SourceQuery || ce.Data.Notification != nil {
				t.Errorf("payload source = %q notification = %v", ce.Data.Source, ce.Data.Notification)
			}
		})
	}
}

func TestApplyPaymentProcessingMakesNoEvent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := store.Payment{ID: "pay_p", MerchantID: "m", OutTradeNo: "o", AmountFen: 100, ReqDate: "20260301", ReqSeqID: "s", CreatedAt: t0}
	if err := f.st.CreatePayment(ctx, &p); err != nil {
		t.Fatal(err)
	}
	got, applied, err := f.led.ApplyPayment(ctx, "pay_p", ledger.Result{TransStat: "P", NkpSeqID: "n", Source: ledger.SourceQuery})
	if err != nil || !applied || got.Status != store.StatusProcessing || got.NkpSeqID != "n" {
		t.Fatalf("pending → processing: %+v %v %v", got, applied, err)
	}
	if n := len(f.events(t)); n != 0 {
		t.Errorf("events = %d, want none for a non-final state", n)
	}
	if f.publishedCount() != 0 {
		t.Error("published an event for a non-final state")
	}
}

func TestAmountMismatchChangesNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.payment(t, "pay_1", 1000)
	f.refund(t, "ref_1", "pay_1", 300)

	_, applied, err := f.led.ApplyPayment(ctx, "pay_1", ledger.Result{TransStat: "S", Amount: 1, Source: ledger.SourceNotification})
	if !errors.Is(err, ledger.ErrAmountMismatch) || applied {
		t.Fatalf("payment mismatch: applied=%v err=%v, want ErrAmountMismatch", applied, err)
	}
	var ame *ledger.AmountMismatchError
	if !errors.As(err, &ame) || ame.Code() != "amount_mismatch" || ame.Stored != 1000 || ame.Reported != 1 {
		t.Errorf("error = %#v", err)
	}
	_, applied, err = f.led.ApplyRefund(ctx, "ref_1", ledger.Result{TransStat: "S", Amount: 301, Source: ledger.SourceQuery})
	if !errors.Is(err, ledger.ErrAmountMismatch) || applied {
		t.Fatalf("refund mismatch: applied=%v err=%v", applied, err)
	}
	p, _ := f.st.GetPayment(ctx, "pay_1")
	r, _ := f.st.GetRefund(ctx, "ref_1")
	if p.Status != store.StatusProcessing || p.RefundedFen != 0 || r.Status != store.StatusProcessing {
		t.Errorf("state changed: payment %s refunded %d, refund %s", p.Status, p.RefundedFen, r.Status)
	}
	if n := len(f.events(t)); n != 0 {
		t.Errorf("events = %d, want 0", n)
	}
	if got := resultsCount(t, f.reg, "payment", "notification", "amount_mismatch"); got != 1 {
		t.Errorf("payment mismatch counter = %v", got)
	}
	if got := resultsCount(t, f.reg, "refund", "query", "amount_mismatch"); got != 1 {
		t.Errorf("refund mismatch counter = %v", got)
	}
	// A zero amount means "not reported" and passes.
	if _, applied, err := f.led.ApplyPayment(ctx, "pay_1", ledger.Result{TransStat: "S", Source: ledger.SourceQuery}); err != nil || !applied {
		t.Errorf("without amount: applied=%v err=%v", applied, err)
	}
}

func TestApplyRefund(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.payment(t, "pay_1", 1000)
	if _, _, err := f.led.ApplyPayment(ctx, "pay_1", ledger.Result{TransStat: "S", Amount: 1000, Source: ledger.SourceNotification}); err != nil {
		t.Fatal(err)
	}
	f.refund(t, "ref_1", "pay_1", 300)
	f.refund(t, "ref_2", "pay_1", 200)

	r, applied, err := f.led.ApplyRefund(ctx, "ref_1", ledger.Result{TransStat: "S", Amount: 300, NkpSeqID: "rn", Source: ledger.SourceNotification})
	if err != nil || !applied || r.Status != store.StatusSucceeded || r.NkpSeqID != "rn" {
		t.Fatalf("refund success: %+v %v %v", r, applied, err)
	}
	if _, applied, err := f.led.ApplyRefund(ctx, "ref_1", ledger.Result{TransStat: "S", Amount: 300, Source: ledger.SourceQuery}); err != nil || applied {
		t.Fatalf("duplicate refund: applied=%v err=%v", applied, err)
	}
	if _, applied, err := f.led.ApplyRefund(ctx, "ref_2", ledger.Result{TransStat: "F", Source: ledger.SourceQuery}); err != nil || !applied {
		t.Fatalf("refund failure: applied=%v err=%v", applied, err)
	}
	p, err := f.st.GetPayment(ctx, "pay_1")
	if err != nil || p.RefundedFen != 300 {
		t.Errorf("refunded = %d (%v), want 300 counted once", p.RefundedFen, err)
	}
	evs := f.events(t)
	if len(evs) != 3 {
		t.Fatalf("events = %d, want 3", len(evs))
	}
	wantTypes := []string{client.EventPaymentSucceeded, client.EventRefundSucceeded, client.EventRefundFailed}
	for i, e := range evs {
		if e.Type != wantTypes[i] || e.OrderKey != "pay_1" {
			t.Errorf("event %d = %s keyed %s, want %s keyed pay_1", i, e.Type, e.OrderKey, wantTypes[i])
		}
	}
	ce := decodeEvent(t, evs[1])
	if ce.Data.Refund == nil || ce.Data.Refund.ID != "ref_1" || ce.Data.Refund.Status != client.StatusSucceeded || ce.Data.Refund.PaymentID != "pay_1" {
		t.Errorf("refund payload = %+v", ce.Data.Refund)
	}
	if evs[1].ID != ledger.EventID("ref_1", store.StatusSucceeded) {
		t.Errorf("refund event id = %s", evs[1].ID)
	}
}

func TestApplyUnknownObject(t *testing.T) {
	f := newFixture(t)
	_, _, err := f.led.ApplyPayment(context.Background(), "nope", ledger.Result{TransStat: "S"})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", err)
	}
	_, _, err = f.led.ApplyRefund(context.Background(), "nope", ledger.Result{TransStat: "S"})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", err)
	}
}

func TestInvalidUpstreamRefused(t *testing.T) {
	f := newFixture(t)
	f.payment(t, "pay_1", 100)
	_, _, err := f.led.ApplyPayment(context.Background(), "pay_1", ledger.Result{TransStat: "S", Upstream: json.RawMessage(`{`)})
	if err == nil {
		t.Fatal("invalid upstream JSON accepted")
	}
	p, _ := f.st.GetPayment(context.Background(), "pay_1")
	if p.Status != store.StatusProcessing {
		t.Errorf("status = %s", p.Status)
	}
}

// Concurrent duplicates of one result (a notification and a query racing)
// produce exactly one applied transition and one event.
func TestConcurrentDuplicates(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.payment(t, "pay_1", 100)
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := ledger.SourceNotification
			if i%2 == 1 {
				src = ledger.SourceQuery
			}
			_, ok, err := f.led.ApplyPayment(ctx, "pay_1", ledger.Result{TransStat: "S", Amount: 100, Source: src})
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				applied++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if applied != 1 {
		t.Errorf("applied %d times, want 1", applied)
	}
	if n := len(f.events(t)); n != 1 {
		t.Errorf("events = %d, want 1", n)
	}
	if f.publishedCount() != 1 {
		t.Errorf("published = %d, want 1", f.publishedCount())
	}
}
