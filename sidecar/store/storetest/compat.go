package storetest

import (
	"context"
	_ "embed" // the golden reads of the first schema
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

// v1Reads is what the first store implementation (two packages, one per
// engine, up to commit fee0d05) read back from the database it had just
// written: testdata/v1.sql of each engine holds that database, dumped with
// the engine's own tool. Both engines read the same, and so must every
// later implementation. It is never regenerated.
//
//go:embed testdata/v1.json
var v1Reads []byte

// CheckV1 checks s, opened (and so migrated) on the database of the first
// implementation: it reads what that implementation read, and its writes
// on the old rows keep every rule (leases, sequences, keys, answers).
func CheckV1(t *testing.T, s store.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := time.Date(2025, 3, 1, 10, 0, 0, 123456000, time.UTC)
	at := func(d time.Duration) time.Time { return base.Add(d) }
	noErr(t, "Migrate", s.Migrate(ctx))

	got := map[string]any{}
	var payments []store.Payment
	for _, id := range []string{"pay_1", "pay_2", "pay_3"} {
		p, err := s.GetPayment(ctx, id)
		noErr(t, "GetPayment", err)
		payments = append(payments, p)
	}
	got["payments"] = payments
	refunds, err := s.ListRefunds(ctx, "pay_2")
	noErr(t, "ListRefunds", err)
	got["refunds"] = refunds
	events, err := s.ListEvents(ctx, "", 0, 100)
	noErr(t, "ListEvents", err)
	got["events"] = events
	counts, err := s.CountEvents(ctx)
	noErr(t, "CountEvents", err)
	got["event_counts"] = counts
	var want, have any
	if err := json.Unmarshal(v1Reads, &want); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(got)
	noErr(t, "encode reads", err)
	if err := json.Unmarshal(b, &have); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(have, want) {
		t.Fatalf("reads of the first schema's rows differ:\ngot  %s\nwant %s", b, v1Reads)
	}

	// pay_1 is leased to replica-a for an hour; ref_2 is due.
	ps, rs, err := s.ClaimDueQueries(ctx, store.Claim{Owner: "b", LeaseUntil: at(time.Hour)}, at(30*time.Minute), 10)
	noErr(t, "ClaimDueQueries", err)
	if len(ps) != 0 || len(rs) != 1 || rs[0].ID != "ref_2" {
		t.Fatalf("claimed %v and %v, want ref_2 only", ps, rs)
	}
	ev := &store.Event{ID: "evt_pay_1", Type: "payment.succeeded", Payload: json.RawMessage(`{}`)}
	p, applied, err := s.TransitionPayment(ctx, "pay_1", store.Transition{To: store.StatusSucceeded, TransStat: "S", At: at(31 * time.Minute), Event: ev})
	noErr(t, "TransitionPayment", err)
	if !applied || p.NkpSeqID != "nkp-1" || string(p.PayParams) != `{"appId":"wx1","package":"prepay_id=1"}` || !p.NextQueryAt.IsZero() {
		t.Fatalf("pay_1 after success: %+v", p)
	}
	if ev.Seq <= 3 {
		t.Fatalf("a new event got Seq %d, want it after the old ones (3)", ev.Seq)
	}
	// evt_ref_1 is leased to worker-1; the new event is free.
	claimed, err := s.ClaimEvents(ctx, store.Claim{Owner: "worker-2", LeaseUntil: at(2 * time.Hour)}, at(32*time.Minute), 10)
	noErr(t, "ClaimEvents", err)
	if len(claimed) != 1 || claimed[0].ID != "evt_pay_1" {
		t.Fatalf("claimed %v, want evt_pay_1 only", claimed)
	}
	noErr(t, "CompleteAttempt by the old lease's owner",
		s.CompleteAttempt(ctx, store.Attempt{EventID: "evt_ref_1", Owner: "worker-1", Delivered: true, At: at(33 * time.Minute)}))

	rec, err := s.BeginIdempotency(ctx, "POST /v1/payments", "k-done", "h1", at(time.Hour), time.Minute)
	noErr(t, "BeginIdempotency", err)
	if rec.State != store.IdemDone || rec.StatusCode != 201 || string(rec.Body) != `{"id":"pay_1"}` {
		t.Fatalf("answered key: %+v", rec)
	}
	rec, err = s.BeginIdempotency(ctx, "POST /v1/refunds", "k-running", "h2", at(30*time.Second), time.Minute)
	noErr(t, "BeginIdempotency", err)
	if rec.State != store.IdemInProgress {
		t.Fatalf("running key: %+v", rec)
	}
	isNew, err := s.RecordNotification(ctx, store.Notification{ID: "ntf_1", RespData: "{}"})
	if err != nil || isNew {
		t.Fatalf("the old notification is new again (%v, %v)", isNew, err)
	}
	res, err := s.ApplyNotification(ctx, store.Notification{ID: "ntf_2", Kind: "refund", ObjectID: "ref_2", RespData: "{}"},
		store.Transition{To: store.StatusSucceeded, TransStat: "S", At: at(34 * time.Minute)})
	noErr(t, "ApplyNotification", err)
	if !res.New || !res.Applied || res.Refund.Status != store.StatusSucceeded {
		t.Fatalf("ApplyNotification to ref_2: %+v", res)
	}
	if p, err := s.GetPayment(ctx, "pay_2"); err != nil || p.RefundedFen != 60 {
		t.Fatalf("pay_2 refunded %d fen (%v), want 60", p.RefundedFen, err)
	}
	err = s.CreatePayment(ctx, &store.Payment{ID: "pay_4", MerchantID: "6666000100000001", OutTradeNo: "order-pay_1",
		AmountFen: 1, ReqDate: "20250301", ReqSeqID: "seq-pay_4"})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("an old out_trade_no taken again: %v", err)
	}
}
