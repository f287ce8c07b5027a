package requery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/requery"
	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/sqlite"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// countingQuerier counts the calls that reach the real client.
type countingQuerier struct {
	q                      requery.Querier
	payments, refunds, cls atomic.Int32
}

func (c *countingQuerier) Call(ctx context.Context, path string, data map[string]any) (map[string]any, error) {
	switch path {
	case nkp.PathPaymentQuery:
		c.payments.Add(1)
	case nkp.PathRefundQuery:
		c.refunds.Add(1)
	case nkp.PathClose:
		c.cls.Add(1)
	}
	return c.q.Call(ctx, path, data)
}

type fixture struct {
	sb    *sandboxtest.Instance
	clock *sandboxtest.Clock
	up    *nkp.Client
	q     *countingQuerier
	st    *sqlite.Store
	led   *ledger.Ledger
	reg   *prometheus.Registry
}

var start = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func newFixture(t *testing.T, opts ...sandboxtest.Option) *fixture {
	t.Helper()
	clock := sandboxtest.NewClock(start)
	sb := sandboxtest.Start(t, append([]sandboxtest.Option{
		sandboxtest.WithClock(clock.Now),
		sandboxtest.WithFaults(sandbox.Faults{Notify: sandbox.NotifyFaults{DropRate: 1}}),
	}, opts...)...)
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := &fixture{sb: sb, clock: clock, up: sb.NKPClient(), st: st, reg: prometheus.NewRegistry()}
	f.q = &countingQuerier{q: f.up}
	f.led, err = ledger.New(st, ledger.Options{Telemetry: telemetry.Bundle{Now: clock.Now, Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) requerier(t *testing.T, cfg requery.Config) *requery.Requerier {
	t.Helper()
	if cfg.Owner == "" {
		cfg.Owner = "replica-a"
	}
	r, err := requery.New(cfg, f.st, f.led, f.q, requery.Options{Telemetry: telemetry.Bundle{Now: f.clock.Now, Registerer: f.reg, Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// order places a payment in the sandbox and stores it as the API would,
// first query due after 15 s. storedTTL is the expiry the sidecar keeps,
// upstreamTTL the time_expire sent upstream.
func (f *fixture) order(t *testing.T, id string, amountFen int64, storedTTL, upstreamTTL time.Duration) store.Payment {
	t.Helper()
	ctx := context.Background()
	now := f.clock.Now()
	wx, _ := nkp.EncodeNested(map[string]any{"openid": "o-" + id})
	req := nkp.JSPayRequest{ReqDate: nkp.ReqDate(now), ReqSeqID: nkp.NewReqSeqID(now), HuifuID: f.sb.HuifuID,
		GoodsDesc: "tea", TradeType: upstream.TradeWeChatJSAPI, TransAmt: nkp.Fen(amountFen),
		TimeExpire: nkp.Timestamp(now.Add(upstreamTTL)), NotifyURL: "http://127.0.0.1:9/notify", WxData: wx}
	resp, err := f.up.JSPay(ctx, req)
	if err != nil || !resp.Accepted() {
		t.Fatalf("jspay: %+v %v", resp, err)
	}
	p := store.Payment{ID: id, MerchantID: f.sb.HuifuID, OutTradeNo: "o-" + id, Flow: client.FlowWeChatJSAPI,
		TradeType: upstream.TradeWeChatJSAPI, AmountFen: amountFen, ReqDate: req.ReqDate, ReqSeqID: req.ReqSeqID,
		NkpSeqID: resp.NkpSeqID, Status: store.StatusProcessing, ExpiresAt: now.Add(storedTTL), CreatedAt: now,
		NextQueryAt: now.Add(15 * time.Second)}
	if err := f.st.CreatePayment(ctx, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) refund(t *testing.T, id string, p store.Payment, amountFen int64) store.Refund {
	t.Helper()
	ctx := context.Background()
	now := f.clock.Now()
	req := nkp.RefundRequest{ReqDate: nkp.ReqDate(now), ReqSeqID: nkp.NewReqSeqID(now), HuifuID: f.sb.HuifuID,
		OrdAmt: nkp.Fen(amountFen), OrgReqDate: p.ReqDate, OrgReqSeqID: p.ReqSeqID, NotifyURL: "http://127.0.0.1:9/notify"}
	resp, err := f.up.Refund(ctx, req)
	if err != nil || !resp.Accepted() {
		t.Fatalf("refund: %+v %v", resp, err)
	}
	r := store.Refund{ID: id, PaymentID: p.ID, MerchantID: f.sb.HuifuID, OutRefundNo: "o-" + id, AmountFen: amountFen,
		ReqDate: req.ReqDate, ReqSeqID: req.ReqSeqID, Status: store.StatusProcessing, CreatedAt: now,
		NextQueryAt: now.Add(15 * time.Second)}
	if err := f.st.CreateRefund(ctx, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) payment(t *testing.T, id string) store.Payment {
	t.Helper()
	p, err := f.st.GetPayment(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) runAt(t *testing.T, r *requery.Requerier, at time.Time) int {
	t.Helper()
	f.clock.Set(at)
	n, err := r.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *fixture) metric(t *testing.T, kind, result string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "paysidecar_requery_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var k, r string
			for _, lp := range m.GetLabel() {
				switch lp.GetName() {
				case "kind":
					k = lp.GetValue()
				case "result":
					r = lp.GetValue()
				}
			}
			if k == kind && r == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func (f *fixture) events(t *testing.T) map[string]store.Event {
	t.Helper()
	evs, err := f.st.ListEvents(context.Background(), "", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.Event{}
	for _, e := range evs {
		out[e.ID] = e
	}
	return out
}

// With the sandbox dropping every notification, payments and refunds
// settled in the sandbox still reach their final events through queries,
// with the ids a notification would have produced.
func TestQueriesFindWhatNotificationsWouldHave(t *testing.T) {
	f := newFixture(t)
	r := f.requerier(t, requery.Config{})
	paid := f.order(t, "pay_paid", 1000, 2*time.Hour, 2*time.Hour)
	failed := f.order(t, "pay_failed", 200, 2*time.Hour, 2*time.Hour)
	open := f.order(t, "pay_open", 300, 2*time.Hour, 2*time.Hour)
	f.sb.SettlePayment(t, paid.ReqDate, paid.ReqSeqID, sandbox.ResultPaid)
	f.sb.SettlePayment(t, failed.ReqDate, failed.ReqSeqID, sandbox.ResultFailed)

	// Nothing is due before 15 s.
	if n := f.runAt(t, r, start.Add(14*time.Second)); n != 0 {
		t.Fatalf("claimed %d before the first query was due", n)
	}
	if n := f.runAt(t, r, start.Add(15*time.Second)); n != 3 {
		t.Fatalf("claimed %d, want 3", n)
	}
	p := f.payment(t, "pay_paid")
	if p.Status != store.StatusSucceeded || p.OutTransID == "" || !p.NextQueryAt.IsZero() {
		t.Errorf("paid: %s out_trans_id %q next %s", p.Status, p.OutTransID, p.NextQueryAt)
	}
	if p := f.payment(t, "pay_failed"); p.Status != store.StatusFailed {
		t.Errorf("failed: %s", p.Status)
	}
	o := f.payment(t, "pay_open")
	if o.Status != store.StatusProcessing || o.QueryAttempts != 1 || !o.NextQueryAt.Equal(start.Add(45*time.Second)) {
		t.Errorf("open: %s attempts %d next %s, want processing, 1, +45s", o.Status, o.QueryAttempts, o.NextQueryAt)
	}
	evs := f.events(t)
	for _, want := range []struct {
		id, typ string
	}{
		{ledger.EventID("pay_paid", store.StatusSucceeded), client.EventPaymentSucceeded},
		{ledger.EventID("pay_failed", store.StatusFailed), client.EventPaymentFailed},
	} {
		e, ok := evs[want.id]
		if !ok || e.Type != want.typ {
			t.Errorf("missing %s %s in %v", want.typ, want.id, evs)
			continue
		}
		var ce client.Event
		if err := json.Unmarshal(e.Payload, &ce); err != nil || ce.Data.Source != ledger.SourceQuery || len(ce.Data.Upstream) == 0 {
			t.Errorf("payload: %+v %v", ce.Data, err)
		}
	}
	if len(evs) != 2 {
		t.Errorf("events = %d, want 2", len(evs))
	}
	if got := f.metric(t, "payment", "final"); got != 2 {
		t.Errorf("requery{payment,final} = %v", got)
	}
	if got := f.metric(t, "payment", "processing"); got != 1 {
		t.Errorf("requery{payment,processing} = %v", got)
	}

	// A refund of the paid order, settled while its notification is
	// dropped.
	f.clock.Set(start.Add(time.Minute))
	rf := f.refund(t, "ref_1", p, 400)
	f.sb.SettleRefund(t, rf.ReqDate, rf.ReqSeqID, sandbox.ResultSucceeded)
	f.sb.SettlePayment(t, open.ReqDate, open.ReqSeqID, sandbox.ResultPaid)
	if n := f.runAt(t, r, start.Add(time.Minute+15*time.Second)); n != 2 {
		t.Fatalf("claimed %d, want the refund and the open payment", n)
	}
	gr, _ := f.st.GetRefund(context.Background(), "ref_1")
	if gr.Status != store.StatusSucceeded || f.payment(t, "pay_paid").RefundedFen != 400 {
		t.Errorf("refund %s, refunded %d", gr.Status, f.payment(t, "pay_paid").RefundedFen)
	}
	if f.payment(t, "pay_open").Status != store.StatusSucceeded {
		t.Error("open payment not settled by the second query")
	}
	evs = f.events(t)
	if _, ok := evs[ledger.EventID("ref_1", store.StatusSucceeded)]; !ok || len(evs) != 4 {
		t.Errorf("events = %v", evs)
	}
	// Nothing left to query.
	if n := f.runAt(t, r, start.Add(48*time.Hour)); n != 0 {
		t.Errorf("claimed %d after everything was final", n)
	}
	// The sandbox really dropped the notifications.
	for _, rec := range f.sb.Notifications(t, sandbox.Filter{}) {
		if rec.State != sandbox.DeliveryDropped {
			t.Errorf("notification %+v was not dropped", rec)
		}
	}
}

func TestScheduleUntilExpiryThenClose(t *testing.T) {
	tests := []struct {
		name         string
		closeExpired bool
		wantStatus   store.Status
		wantResult   string
		wantCloses   int32
	}{
		{"close expired", true, store.StatusClosed, "closed", 1},
		{"leave expired", false, store.StatusProcessing, "expired", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			r := f.requerier(t, requery.Config{CloseExpired: tt.closeExpired})
			// The sidecar gives up after 30 m (+10 m grace) while the
			// upstream would wait two hours, so the close is needed.
			f.order(t, "pay_1", 100, 30*time.Minute, 2*time.Hour)
			var times []time.Duration
			for i := 0; i < 50; i++ {
				p := f.payment(t, "pay_1")
				if p.NextQueryAt.IsZero() {
					break
				}
				times = append(times, p.NextQueryAt.Sub(start))
				f.runAt(t, r, p.NextQueryAt)
			}
			want := []time.Duration{15 * time.Second, 45 * time.Second, 105 * time.Second, 225 * time.Second,
				525 * time.Second, 1125 * time.Second, 1725 * time.Second, 2325 * time.Second, 40 * time.Minute}
			if fmt.Sprint(times) != fmt.Sprint(want) {
				t.Errorf("query times %v, want %v (the last one at expiry plus grace)", times, want)
			}
			p := f.payment(t, "pay_1")
			if p.Status != tt.wantStatus {
				t.Errorf("status = %s, want %s", p.Status, tt.wantStatus)
			}
			if got := f.q.cls.Load(); got != tt.wantCloses {
				t.Errorf("close calls = %d, want %d", got, tt.wantCloses)
			}
			if got := f.metric(t, "payment", tt.wantResult); got != 1 {
				t.Errorf("requery{payment,%s} = %v", tt.wantResult, got)
			}
			evs := f.events(t)
			if tt.closeExpired {
				e, ok := evs[ledger.EventID("pay_1", store.StatusClosed)]
				if !ok || e.Type != client.EventPaymentClosed || len(evs) != 1 {
					t.Errorf("events = %v, want one payment.closed", evs)
				}
				orders, err := f.sb.Control.Orders(context.Background(), sandbox.Filter{ReqSeqID: p.ReqSeqID})
				if err != nil || len(orders) != 1 || orders[0].ClosedBy != "close" {
					t.Errorf("upstream order = %+v (%v), want closed by the close call", orders, err)
				}
			} else {
				if len(evs) != 0 {
					t.Errorf("events = %v, want none", evs)
				}
				if !strings.Contains(p.LastError, "close_expired is off") {
					t.Errorf("last error = %q", p.LastError)
				}
			}
		})
	}
}

// An order the upstream closed by itself at expiry is reported closed by
// the query, without a close call.
func TestUpstreamExpiryReportedClosed(t *testing.T) {
	f := newFixture(t)
	r := f.requerier(t, requery.Config{CloseExpired: true})
	f.order(t, "pay_1", 100, 5*time.Minute, 5*time.Minute)
	f.runAt(t, r, start.Add(6*time.Minute))
	if p := f.payment(t, "pay_1"); p.Status != store.StatusClosed || p.TransStat != "F" {
		t.Fatalf("status %s trans_stat %s", p.Status, p.TransStat)
	}
	if f.q.cls.Load() != 0 {
		t.Error("closed an order the upstream had already closed")
	}
}

func TestUpstreamErrors(t *testing.T) {
	f := newFixture(t)
	r := f.requerier(t, requery.Config{})
	ctx := context.Background()
	p := f.order(t, "pay_1", 1000, time.Hour, time.Hour)
	f.sb.SettlePayment(t, p.ReqDate, p.ReqSeqID, sandbox.ResultPaid)

	// Upstream answers 500 on every call: nothing changes, the query is
	// rescheduled with the error kept.
	if err := f.sb.Control.SetFaults(ctx, sandbox.Faults{
		Notify: sandbox.NotifyFaults{DropRate: 1},
		API:    sandbox.APIFaults{Status500Rate: 1, BeforeProcessing: true, Paths: []string{nkp.PathPaymentQuery}},
	}); err != nil {
		t.Fatal(err)
	}
	f.runAt(t, r, start.Add(15*time.Second))
	got := f.payment(t, "pay_1")
	if got.Status != store.StatusProcessing || got.QueryAttempts != 1 || !got.NextQueryAt.Equal(start.Add(45*time.Second)) ||
		!strings.Contains(got.LastError, "HTTP 500") {
		t.Fatalf("after an upstream error: %s attempts %d next %s error %q", got.Status, got.QueryAttempts, got.NextQueryAt, got.LastError)
	}
	if v := f.metric(t, "payment", "error"); v != 1 {
		t.Errorf("requery{payment,error} = %v, want 1", v)
	}
	if len(f.events(t)) != 0 {
		t.Error("an event was produced without an answer")
	}
	// The upstream recovers.
	if err := f.sb.Control.SetFaults(ctx, sandbox.Faults{Notify: sandbox.NotifyFaults{DropRate: 1}}); err != nil {
		t.Fatal(err)
	}
	f.runAt(t, r, start.Add(45*time.Second))
	if got := f.payment(t, "pay_1"); got.Status != store.StatusSucceeded {
		t.Fatalf("after recovery: %s", got.Status)
	}
}

// A stored amount that disagrees with the upstream's is refused and the
// payment keeps being queried without changing.
func TestAmountMismatch(t *testing.T) {
	f := newFixture(t)
	r := f.requerier(t, requery.Config{})
	ctx := context.Background()
	now := f.clock.Now()
	wx, _ := nkp.EncodeNested(map[string]any{"openid": "o"})
	req := nkp.JSPayRequest{ReqDate: nkp.ReqDate(now), ReqSeqID: nkp.NewReqSeqID(now), HuifuID: f.sb.HuifuID,
		GoodsDesc: "tea", TradeType: upstream.TradeWeChatJSAPI, TransAmt: 1000, NotifyURL: "http://127.0.0.1:9/n", WxData: wx}
	if resp, err := f.up.JSPay(ctx, req); err != nil || !resp.Accepted() {
		t.Fatalf("jspay: %+v %v", resp, err)
	}
	p := store.Payment{ID: "pay_1", MerchantID: f.sb.HuifuID, OutTradeNo: "o", AmountFen: 999, ReqDate: req.ReqDate,
		ReqSeqID: req.ReqSeqID, Status: store.StatusProcessing, CreatedAt: now, NextQueryAt: now}
	if err := f.st.CreatePayment(ctx, &p); err != nil {
		t.Fatal(err)
	}
	f.sb.SettlePayment(t, req.ReqDate, req.ReqSeqID, sandbox.ResultPaid)
	f.runAt(t, r, now)
	got := f.payment(t, "pay_1")
	if got.Status != store.StatusProcessing || !strings.Contains(got.LastError, "amount_mismatch") || got.NextQueryAt.IsZero() {
		t.Fatalf("after a mismatch: %s %q next %s", got.Status, got.LastError, got.NextQueryAt)
	}
	if len(f.events(t)) != 0 {
		t.Error("an event was produced for a mismatched amount")
	}
	if v := f.metric(t, "payment", "amount_mismatch"); v != 1 {
		t.Errorf("requery{payment,amount_mismatch} = %v", v)
	}
}

// A payment that never reached the upstream is queried until its expiry
// and then reported closed.
func TestUnknownUpstream(t *testing.T) {
	f := newFixture(t)
	r := f.requerier(t, requery.Config{})
	ctx := context.Background()
	p := store.Payment{ID: "pay_lost", MerchantID: f.sb.HuifuID, OutTradeNo: "o", AmountFen: 100, ReqDate: nkp.ReqDate(start),
		ReqSeqID: nkp.NewReqSeqID(start), CreatedAt: start, ExpiresAt: start.Add(10 * time.Minute), NextQueryAt: start.Add(15 * time.Second)}
	if err := f.st.CreatePayment(ctx, &p); err != nil {
		t.Fatal(err)
	}
	f.runAt(t, r, start.Add(15*time.Second))
	got := f.payment(t, "pay_lost")
	if got.Status != store.StatusPending || got.NextQueryAt.IsZero() || !strings.Contains(got.LastError, nkp.CodeNotFound) {
		t.Fatalf("before the deadline: %s next %s error %q", got.Status, got.NextQueryAt, got.LastError)
	}
	f.runAt(t, r, start.Add(21*time.Minute))
	if got := f.payment(t, "pay_lost"); got.Status != store.StatusClosed {
		t.Fatalf("after the deadline: %s", got.Status)
	}
	if _, ok := f.events(t)[ledger.EventID("pay_lost", store.StatusClosed)]; !ok {
		t.Error("no payment.closed event")
	}
}

// The sandbox holds a refund in processing past its query window: the
// application gets one refund.requires_attention event (not final; the
// refund is untouched), the counter counts the refund once, querying goes
// on at the slow pace, and once the sandbox settles the refund the next
// slow query produces its ordinary final event.
func TestRefundStillProcessingAfterItsWindow(t *testing.T) {
	f := newFixture(t)
	r := f.requerier(t, requery.Config{RefundMaxAge: time.Hour, RefundSlowInterval: 3 * time.Hour})
	p := f.order(t, "pay_1", 1000, 2*time.Hour, 2*time.Hour)
	f.sb.SettlePayment(t, p.ReqDate, p.ReqSeqID, sandbox.ResultPaid)
	f.runAt(t, r, start.Add(15*time.Second))
	rf := f.refund(t, "ref_1", f.payment(t, "pay_1"), 100)
	get := func() store.Refund {
		t.Helper()
		got, err := f.st.GetRefund(context.Background(), rf.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	refundEvents := func() []store.Event {
		var out []store.Event
		for _, e := range f.events(t) {
			if e.ObjectID == rf.ID {
				out = append(out, e)
			}
		}
		return out
	}
	// On the schedule until the window ends; nothing for the application.
	for get().NextQueryAt.Sub(rf.CreatedAt) < time.Hour {
		f.runAt(t, r, get().NextQueryAt)
		if n := len(refundEvents()); n != 0 {
			t.Fatalf("%d refund events while the refund is in its window", n)
		}
	}
	attention := ledger.AttentionEventID(rf.ID)
	f.runAt(t, r, get().NextQueryAt)
	got := get()
	if got.Status != store.StatusProcessing || !strings.Contains(got.LastError, "query window") {
		t.Fatalf("refund after its window: %s %q", got.Status, got.LastError)
	}
	if slow := got.NextQueryAt.Sub(f.clock.Now()); slow != 3*time.Hour {
		t.Fatalf("next query %s after the window ended, want the slow pace 3h", slow)
	}
	e, ok := f.events(t)[attention]
	if !ok || e.Type != client.EventRefundRequiresAttention || e.ObjectID != rf.ID || e.OrderKey != rf.PaymentID || len(refundEvents()) != 1 {
		t.Fatalf("refund events after the window: %+v", refundEvents())
	}
	var body client.Event
	if err := json.Unmarshal(e.Payload, &body); err != nil {
		t.Fatal(err)
	}
	if body.ID != attention || body.Data.Refund == nil || body.Data.Refund.Status != client.StatusProcessing || body.Data.Refund.ID != rf.ID || body.Data.Source != ledger.SourceQuery {
		t.Fatalf("requires_attention event body %+v", body)
	}
	if v := f.metric(t, "refund", "requires_attention"); v != 1 {
		t.Errorf("requery{refund,requires_attention} = %v", v)
	}

	// Still processing at the next slow query: no second event, counted once.
	f.runAt(t, r, got.NextQueryAt)
	if n := len(refundEvents()); n != 1 {
		t.Fatalf("%d events after a second late query, want the one", n)
	}
	if v := f.counter(t, "paysidecar_refunds_requiring_attention_total"); v != 1 {
		t.Errorf("paysidecar_refunds_requiring_attention_total = %v, want 1", v)
	}
	if v := f.metric(t, "refund", "expired"); v != 0 {
		t.Errorf("requery{refund,expired} = %v: querying stopped", v)
	}

	// The sandbox finishes it; the next slow query makes the final event.
	f.sb.SettleRefund(t, rf.ReqDate, rf.ReqSeqID, sandbox.ResultSucceeded)
	f.runAt(t, r, get().NextQueryAt)
	if got := get(); got.Status != store.StatusSucceeded || !got.NextQueryAt.IsZero() {
		t.Fatalf("after settling: %s next %s", got.Status, got.NextQueryAt)
	}
	final, ok := f.events(t)[ledger.EventID(rf.ID, store.StatusSucceeded)]
	if !ok || final.Type != client.EventRefundSucceeded || final.Seq <= e.Seq {
		t.Fatalf("final event %+v after the attention event (seq %d)", final, e.Seq)
	}
	if v := f.counter(t, "paysidecar_refunds_requiring_attention_total"); v != 1 {
		t.Errorf("paysidecar_refunds_requiring_attention_total = %v after the refund finished, want 1", v)
	}
}

func (f *fixture) counter(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// Two replicas sharing the store query each order once.
func TestReplicasShareWork(t *testing.T) {
	f := newFixture(t)
	a := f.requerier(t, requery.Config{Owner: "a", Concurrency: 2, BatchSize: 3})
	bq := &countingQuerier{q: f.up}
	b, err := requery.New(requery.Config{Owner: "b", Concurrency: 2, BatchSize: 3}, f.st, f.led, bq, requery.Options{Telemetry: telemetry.Bundle{Now: f.clock.Now, Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		f.order(t, fmt.Sprintf("pay_%d", i), 100, time.Hour, time.Hour)
	}
	f.clock.Set(start.Add(15 * time.Second))
	var wg sync.WaitGroup
	for _, rq := range []*requery.Requerier{a, b, a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := rq.RunOnce(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if total := f.q.payments.Load() + bq.payments.Load(); total != 8 {
		t.Errorf("queries = %d (a %d, b %d), want 8", total, f.q.payments.Load(), bq.payments.Load())
	}
}

func TestStartRunsUntilFinal(t *testing.T) {
	f := newFixture(t)
	p := f.order(t, "pay_1", 100, time.Hour, time.Hour)
	f.sb.SettlePayment(t, p.ReqDate, p.ReqSeqID, sandbox.ResultPaid)
	r := f.requerier(t, requery.Config{PollInterval: 10 * time.Millisecond})
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	f.clock.Set(start.Add(time.Minute))
	r.Wake()
	deadline := time.Now().Add(10 * time.Second)
	for f.payment(t, "pay_1").Status != store.StatusSucceeded {
		if time.Now().After(deadline) {
			t.Fatal("the running requerier did not settle the payment")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	f := newFixture(t)
	if _, err := requery.New(requery.Config{Schedule: []time.Duration{time.Second, 0}}, f.st, f.led, f.q, requery.Options{}); err == nil {
		t.Error("accepted a zero schedule step")
	}
	if _, err := requery.New(requery.Config{Lease: time.Second, CallTimeout: time.Second}, f.st, f.led, f.q, requery.Options{}); err == nil {
		t.Error("accepted a lease shorter than two calls")
	}
	if _, err := requery.New(requery.Config{}, f.st, f.led, nil, requery.Options{}); err == nil {
		t.Error("accepted a nil querier")
	}
	c := requery.Config{}
	for i, want := range []time.Duration{15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 10 * time.Minute, 10 * time.Minute} {
		if got := c.Delay(i); got != want {
			t.Errorf("Delay(%d) = %s, want %s", i, got, want)
		}
	}
}

func TestCloseStopsItsGoroutines(t *testing.T) {
	f := newFixture(t)
	before := runtime.NumGoroutine()
	r := f.requerier(t, requery.Config{PollInterval: time.Millisecond})
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d, want at most %d", runtime.NumGoroutine(), before)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
