// Package storetest is the conformance suite of store.Store. Every
// implementation runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openEmpty(t) })
//	}
//
// The suite covers every method and every rule written in the doc comments
// of package store: natural keys and conflicts, forward-only transitions
// applied atomically with their events, refund totals, idempotency keys,
// notification deduplication, a notification recorded and applied in one
// transaction, ordered and leased event delivery with
// retries, dead letters and replay, leased reverse queries, and the
// reconciliation's ledger reads and runs claimed once per day. Tests that
// claim work run several goroutines at once and check that no piece of work
// is handed out twice.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

// Run runs the suite. open is called once per subtest and must return an
// empty, migrated store that stays usable until the subtest ends (open
// registers its own cleanup). Subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"Lifecycle", lifecycleTests},
		{"Payments", paymentTests},
		{"Refunds", refundTests},
		{"Idempotency", idempotencyTests},
		{"Notifications", notificationTests},
		{"ApplyNotification", applyNotificationTests},
		{"Events", eventTests},
		{"Queries", queryTests},
		{"Reconcile", reconcileTests},
		{"Checkouts", checkoutTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					tc.run(&fixture{t: t, ctx: ctx, s: open(t), now: base})
				})
			}
		})
	}
}

// test is one subtest of the suite.
type test struct {
	name string
	run  func(f *fixture)
}

// base is the suite's clock: a fixed instant, so that leases and due times
// are decided by the test and not by the wall clock.
var base = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// fixture is the state of one subtest.
type fixture struct {
	t   *testing.T
	ctx context.Context
	s   store.Store
	now time.Time
	n   int
}

// next returns a new identifier with the prefix, unique within the subtest.
func (f *fixture) next(prefix string) string {
	f.n++
	return fmt.Sprintf("%s_%04d", prefix, f.n)
}

// at returns the suite's clock moved by d.
func (f *fixture) at(d time.Duration) time.Time { return f.now.Add(d) }

// payment creates a payment, changed by mods before it is stored.
func (f *fixture) payment(mods ...func(*store.Payment)) store.Payment {
	f.t.Helper()
	id := f.next("pay")
	p := store.Payment{
		ID:          id,
		MerchantID:  "6666000100000001",
		OutTradeNo:  "order-" + id,
		Flow:        "wechat-jsapi",
		TradeType:   "T_JSAPI",
		AmountFen:   100,
		Description: "one cup of tea",
		ReqDate:     "20250301",
		ReqSeqID:    "seq" + id,
		RequestHash: "hash-" + id,
		Metadata:    json.RawMessage(`{"cart":"42"}`),
		Buyer:       json.RawMessage(`{"openid":"o-123"}`),
		ExpiresAt:   f.at(2 * time.Hour),
		CreatedAt:   f.now,
		UpdatedAt:   f.now,
	}
	for _, m := range mods {
		m(&p)
	}
	if err := f.s.CreatePayment(f.ctx, &p); err != nil {
		f.t.Fatalf("CreatePayment(%s): %v", p.ID, err)
	}
	return p
}

// refund creates a refund of the payment, changed by mods.
func (f *fixture) refund(p store.Payment, amount int64, mods ...func(*store.Refund)) store.Refund {
	f.t.Helper()
	id := f.next("ref")
	r := store.Refund{
		ID:          id,
		PaymentID:   p.ID,
		MerchantID:  p.MerchantID,
		OutRefundNo: "refund-" + id,
		AmountFen:   amount,
		Reason:      "customer changed their mind",
		ReqDate:     "20250301",
		ReqSeqID:    "seq" + id,
		RequestHash: "hash-" + id,
		CreatedAt:   f.now,
		UpdatedAt:   f.now,
	}
	for _, m := range mods {
		m(&r)
	}
	if err := f.s.CreateRefund(f.ctx, &r); err != nil {
		f.t.Fatalf("CreateRefund(%s): %v", r.ID, err)
	}
	return r
}

// event returns a new event for the order key, not yet inserted.
func (f *fixture) event(orderKey string) *store.Event {
	id := f.next("evt")
	return &store.Event{
		ID:        id,
		Type:      "payment.succeeded",
		ObjectID:  orderKey,
		OrderKey:  orderKey,
		Payload:   json.RawMessage(`{"id":"` + id + `","type":"payment.succeeded"}`),
		CreatedAt: f.now,
	}
}

// insert inserts events and fails the test unless each is new.
func (f *fixture) insert(events ...*store.Event) {
	f.t.Helper()
	for _, e := range events {
		isNew, err := f.s.InsertEvent(f.ctx, e)
		if err != nil || !isNew {
			f.t.Fatalf("InsertEvent(%s) = %v, %v; want new", e.ID, isNew, err)
		}
	}
}

func (f *fixture) getPayment(id string) store.Payment {
	f.t.Helper()
	p, err := f.s.GetPayment(f.ctx, id)
	if err != nil {
		f.t.Fatalf("GetPayment(%s): %v", id, err)
	}
	return p
}

func (f *fixture) getRefund(id string) store.Refund {
	f.t.Helper()
	r, err := f.s.GetRefund(f.ctx, id)
	if err != nil {
		f.t.Fatalf("GetRefund(%s): %v", id, err)
	}
	return r
}

func (f *fixture) getEvent(id string) store.Event {
	f.t.Helper()
	e, err := f.s.GetEvent(f.ctx, id)
	if err != nil {
		f.t.Fatalf("GetEvent(%s): %v", id, err)
	}
	return e
}

// claim claims events and returns their ids in the order returned.
func (f *fixture) claim(owner string, now time.Time, lease time.Duration, limit int) []string {
	f.t.Helper()
	evs, err := f.s.ClaimEvents(f.ctx, store.Claim{Owner: owner, LeaseUntil: now.Add(lease)}, now, limit)
	if err != nil {
		f.t.Fatalf("ClaimEvents(%s): %v", owner, err)
	}
	ids := make([]string, 0, len(evs))
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	return ids
}

// complete records an attempt and fails the test on error.
func (f *fixture) complete(a store.Attempt) {
	f.t.Helper()
	if err := f.s.CompleteAttempt(f.ctx, a); err != nil {
		f.t.Fatalf("CompleteAttempt(%s by %s): %v", a.EventID, a.Owner, err)
	}
}

// counts returns CountEvents and fails the test on error.
func (f *fixture) counts() map[store.EventStatus]int {
	f.t.Helper()
	c, err := f.s.CountEvents(f.ctx)
	if err != nil {
		f.t.Fatalf("CountEvents: %v", err)
	}
	return c
}

// wantErr fails the test unless err wraps want.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error = %v, want %v", what, err, want)
	}
}

// noErr fails the test on err.
func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// sameTime reports whether a and b are the same instant to the
// millisecond, the precision every store must keep.
func sameTime(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() && b.IsZero()
	}
	d := a.Sub(b)
	return d > -time.Millisecond && d < time.Millisecond
}

// equalFields compares two structs field by field, times with sameTime and
// JSON as compact bytes, and reports the differences.
func equalFields(got, want any) []string {
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	var diffs []string
	for i := 0; i < gv.NumField(); i++ {
		name := gv.Type().Field(i).Name
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		switch gt := g.(type) {
		case time.Time:
			wt := w.(time.Time)
			if !sameTime(gt, wt) {
				diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", name, gt, wt))
			} else if !gt.IsZero() && gt.Location() != time.UTC {
				diffs = append(diffs, fmt.Sprintf("%s is in %v, want UTC", name, gt.Location()))
			}
		case json.RawMessage:
			if !bytes.Equal(gt, w.(json.RawMessage)) {
				diffs = append(diffs, fmt.Sprintf("%s = %s, want %s", name, gt, w))
			}
		case []byte:
			if !bytes.Equal(gt, w.([]byte)) {
				diffs = append(diffs, fmt.Sprintf("%s = %q, want %q", name, gt, w))
			}
		default:
			if !reflect.DeepEqual(g, w) {
				diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", name, g, w))
			}
		}
	}
	return diffs
}

// wantEqual fails the test when got and want differ.
func wantEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if d := equalFields(got, want); len(d) > 0 {
		t.Fatalf("%s differs:\n%v", what, d)
	}
}

var lifecycleTests = []test{
	{"MigrateTwiceAndPing", func(f *fixture) {
		noErr(f.t, "Migrate", f.s.Migrate(f.ctx))
		noErr(f.t, "Migrate again", f.s.Migrate(f.ctx))
		noErr(f.t, "Ping", f.s.Ping(f.ctx))
		p := f.payment()
		noErr(f.t, "Migrate with data", f.s.Migrate(f.ctx))
		f.getPayment(p.ID)
	}},
}
