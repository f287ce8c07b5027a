package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/reconcile"
	"github.com/paysidecar/paysidecar/sidecar/statements"
	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/sqlite"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if bench != nil {
		_ = os.RemoveAll(bench.dir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// t0 is 2025-06-15 10:00 Beijing time.
var t0 = time.Date(2025, 6, 15, 10, 0, 0, 0, nkp.Beijing)

const day0 = "20250615"

func testCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// world is a sandbox upstream and the sidecar's books: its SQLite store,
// ledger and the reconciliation's books in that store.
type world struct {
	t      *testing.T
	inst   *sandboxtest.Instance
	clock  *sandboxtest.Clock
	st     *sqlite.Store
	led    *ledger.Ledger
	sql    reconcile.StoreBooks
	up     *nkp.Client
	rec    *reconcile.Reconciler
	events []store.Event
	n      int
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, clock: sandboxtest.NewClock(t0)}
	w.inst = sandboxtest.Start(t, sandboxtest.WithClock(w.clock.Now))
	path := filepath.Join(t.TempDir(), "paysidecar.db")
	st, err := sqlite.Open(testCtx(t), path, sqlite.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	w.st = st
	w.led, err = ledger.New(st, ledger.Options{Telemetry: telemetry.Bundle{Now: w.clock.Now, Logger: slog.New(slog.DiscardHandler)},
		Published: func(_ context.Context, e store.Event) { w.events = append(w.events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	w.sql = reconcile.StoreBooks{Store: st}
	w.up = w.inst.NKPClient()
	archive, err := statements.New(statements.Config{Dir: t.TempDir(), MerchantID: sandbox.DevHuifuID, Upstream: w.up, Now: w.clock.Now,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	w.rec, err = reconcile.New(reconcile.Config{SortChunk: 3}, reconcile.Deps{Bills: archive, Ledger: w.sql, Runs: w.sql,
		Settler: w.settler(), Events: reconcile.OutboxEvents{Store: st}, Now: w.clock.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) settler() reconcile.QuerySettler {
	return reconcile.QuerySettler{Upstream: w.up, Ledger: w.led, Now: w.clock.Now}
}

// pay places a payment as the sidecar does: stored pending, ordered
// upstream, accepted.
func (w *world) pay(seq string, amt nkp.Fen) string {
	w.t.Helper()
	ctx := testCtx(w.t)
	w.n++
	p := &store.Payment{ID: "pay_" + seq, MerchantID: sandbox.DevHuifuID, OutTradeNo: "order-" + seq, Flow: "alipay-native",
		TradeType: upstream.TradeAlipayNative, AmountFen: int64(amt), ReqDate: day0, ReqSeqID: seq, ExpiresAt: w.clock.Now().Add(2 * time.Hour)}
	if err := w.st.CreatePayment(ctx, p); err != nil {
		w.t.Fatal(err)
	}
	resp, err := w.up.JSPay(ctx, nkp.JSPayRequest{ReqDate: day0, ReqSeqID: seq, HuifuID: sandbox.DevHuifuID, GoodsDesc: "goods",
		TradeType: upstream.TradeAlipayNative, TransAmt: amt})
	if err != nil || !resp.Accepted() {
		w.t.Fatalf("jspay %s: %+v %v", seq, resp, err)
	}
	if _, _, err := w.st.UpdatePaymentAccepted(ctx, p.ID, resp.NkpSeqID, resp.PartyOrderID, nil,
		store.Transition{To: store.StatusProcessing, TransStat: resp.TransStat}); err != nil {
		w.t.Fatal(err)
	}
	return p.ID
}

// refund refunds part of a paid payment as the sidecar does.
func (w *world) refund(seq, paySeq string, amt nkp.Fen) string {
	w.t.Helper()
	ctx := testCtx(w.t)
	r := &store.Refund{ID: "ref_" + seq, PaymentID: "pay_" + paySeq, MerchantID: sandbox.DevHuifuID, OutRefundNo: "refund-" + seq,
		AmountFen: int64(amt), ReqDate: day0, ReqSeqID: seq}
	if err := w.st.CreateRefund(ctx, r); err != nil {
		w.t.Fatal(err)
	}
	resp, err := w.up.Refund(ctx, nkp.RefundRequest{ReqDate: day0, ReqSeqID: seq, HuifuID: sandbox.DevHuifuID, OrdAmt: amt, OrgReqDate: day0, OrgReqSeqID: paySeq})
	if err != nil || !resp.Accepted() {
		w.t.Fatalf("refund %s: %+v %v", seq, resp, err)
	}
	if _, _, err := w.st.TransitionRefund(ctx, r.ID, store.Transition{To: store.StatusProcessing, TransStat: resp.TransStat, NkpSeqID: resp.NkpSeqID}); err != nil {
		w.t.Fatal(err)
	}
	return r.ID
}

// learn has the sidecar learn the upstream's result, as the reverse query
// does.
func (w *world) learn(kind, seq string) {
	w.t.Helper()
	s := w.settler().Settle(testCtx(w.t), reconcile.Entry{Kind: kind, ID: map[string]string{"payment": "pay_", "refund": "ref_"}[kind] + seq,
		MerchantID: sandbox.DevHuifuID, ReqDate: day0, ReqSeqID: seq})
	if s.Outcome != "settled" {
		w.t.Fatalf("learn %s %s: %+v", kind, seq, s)
	}
}

// tradeDay trades a day: payments paid, failed and closed, partial
// refunds succeeded and failed, and one payment whose result the sidecar
// never learned (P9).
func (w *world) tradeDay() {
	w.t.Helper()
	for seq, amt := range map[string]nkp.Fen{"P1": 1000, "P2": 333, "P3": 100, "P4": 250, "P5": 500, "P6": 120, "P9": 990} {
		w.pay(seq, amt)
	}
	w.clock.Advance(2 * time.Minute)
	for _, seq := range []string{"P1", "P2", "P4", "P5", "P9"} {
		w.inst.SettlePayment(w.t, day0, seq, sandbox.ResultPaid)
	}
	w.inst.SettlePayment(w.t, day0, "P3", sandbox.ResultFailed)
	if resp, err := w.up.Close(testCtx(w.t), nkp.CloseRequest{ReqDate: day0, ReqSeqID: "C6", HuifuID: sandbox.DevHuifuID, OrgReqDate: day0, OrgReqSeqID: "P6"}); err != nil || !resp.Accepted() {
		w.t.Fatalf("close: %+v %v", resp, err)
	}
	for _, seq := range []string{"P1", "P2", "P3", "P4", "P5", "P6"} {
		w.learn("payment", seq)
	}
	w.refund("R1", "P2", 111)
	w.refund("R2", "P1", 50)
	w.refund("R3", "P5", 200)
	w.clock.Advance(time.Minute)
	w.inst.SettleRefund(w.t, day0, "R1", sandbox.ResultSucceeded)
	w.inst.SettleRefund(w.t, day0, "R2", sandbox.ResultFailed)
	w.inst.SettleRefund(w.t, day0, "R3", sandbox.ResultSucceeded)
	for _, seq := range []string{"R1", "R2", "R3"} {
		w.learn("refund", seq)
	}
	w.clock.Advance(time.Hour)
}

func (w *world) inject(d sandbox.BillDifference) {
	w.t.Helper()
	d.HuifuID = sandbox.DevHuifuID
	if _, err := w.inst.Control.AddBillDifference(testCtx(w.t), d); err != nil {
		w.t.Fatal(err)
	}
}

// named lists the differences as "kind serial" strings, sorted.
func named(diffs []reconcile.Difference) []string {
	out := make([]string, 0, len(diffs))
	for _, d := range diffs {
		out = append(out, string(d.Kind)+" "+d.ReqSeqID)
	}
	sort.Strings(out)
	return out
}

// TestReconcileDay trades a day, injects one difference of each kind into
// the upstream's bills, and checks the report names exactly those, that the
// one the sidecar can settle is settled through the ledger, and that a
// second run finds the day clean but for the injected differences.
func TestReconcileDay(t *testing.T) {
	w := newWorld(t)
	w.tradeDay()
	w.inject(sandbox.BillDifference{Kind: sandbox.BillExtraTrade, Date: day0, ReqSeqID: "X1", TransAmt: 700})
	w.inject(sandbox.BillDifference{Kind: sandbox.BillAmount, ReqSeqID: "P1", TransAmt: 1001})
	w.inject(sandbox.BillDifference{Kind: sandbox.BillState, ReqSeqID: "P2"})
	w.inject(sandbox.BillDifference{Kind: sandbox.BillOmit, ReqSeqID: "R3"})
	w.inject(sandbox.BillDifference{Kind: sandbox.BillMalformed, ReqSeqID: "P4"})

	rep, err := w.rec.Run(testCtx(t), day0, reconcile.RunOptions{Trigger: reconcile.TriggerAPI})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"amount_differs P1", "malformed_row P4", "missing_in_file R3", "missing_in_ledger X1", "state_differs P2", "state_differs P9"}
	if got := named(rep.Differences); !slices.Equal(got, want) {
		t.Fatalf("differences:\n  %s\nwant\n  %s\nreport: %+v", strings.Join(got, "\n  "), strings.Join(want, "\n  "), rep.Differences)
	}
	if rep.Status != reconcile.StatusDifferences || rep.Total() != 6 || rep.Counts[reconcile.StateDiffers] != 2 || rep.Settled != 1 {
		t.Fatalf("report = %+v", rep)
	}
	for _, d := range rep.Differences {
		switch d.ReqSeqID {
		case "P9":
			if !d.Settleable || d.Settlement == nil || d.Settlement.Outcome != "settled" || d.Settlement.Status != store.StatusSucceeded || d.FileStat != "S" {
				t.Errorf("P9 = %+v", d)
			}
		case "P2":
			if d.Settleable || d.LedgerStatus != store.StatusSucceeded || d.FileStat != "F" {
				t.Errorf("P2 = %+v", d)
			}
		case "P1":
			if d.LedgerAmountFen != 1000 || d.FileAmountFen != 1001 || d.LedgerID != "pay_P1" || d.Line == 0 {
				t.Errorf("P1 = %+v", d)
			}
		case "P4":
			if !strings.Contains(d.Reason, "12.3.4") || d.LedgerID != "pay_P4" || d.File == "" {
				t.Errorf("P4 = %+v", d)
			}
		case "R3":
			if d.Object != "refund" || d.LedgerStatus != store.StatusSucceeded || d.LedgerAmountFen != 200 {
				t.Errorf("R3 = %+v", d)
			}
		case "X1":
			if d.FileAmountFen != 700 || d.Object != "payment" {
				t.Errorf("X1 = %+v", d)
			}
		}
	}
	// The settled payment went through the ledger, which produced its
	// event.
	p9, err := w.st.GetPayment(testCtx(t), "pay_P9")
	if err != nil || p9.Status != store.StatusSucceeded {
		t.Fatalf("P9 = %+v, %v", p9, err)
	}
	if !slices.ContainsFunc(w.events, func(e store.Event) bool { return e.ID == ledger.EventID("pay_P9", store.StatusSucceeded) }) {
		t.Fatalf("no payment.succeeded event for P9: %+v", w.events)
	}
	// The run is stored with every difference, and its event is in the
	// outbox.
	got, err := w.sql.GetRun(testCtx(t), rep.RunID)
	if err != nil || got.Status != reconcile.StatusDifferences || got.Counts[reconcile.MissingInLedger] != 1 || len(got.Totals) != 1 {
		t.Fatalf("stored run = %+v, %v", got, err)
	}
	diffs, err := w.sql.ListDifferences(testCtx(t), rep.RunID, 0, 100)
	if err != nil || !slices.Equal(named(diffs), want) {
		t.Fatalf("stored differences = %v, %v", named(diffs), err)
	}
	if ev, err := w.st.GetEvent(testCtx(t), "evt_"+rep.RunID); err != nil || ev.Type != reconcile.EventCompleted || !strings.Contains(string(ev.Payload), `"differences":6`) {
		t.Fatalf("event = %+v, %v", ev, err)
	}
	tot := got.Totals[0]
	// Bill: P1 10.01 + P4 unreadable + P5 5.00 + P9 9.90 + X1 7.00 paid,
	// R1 1.11 refunded (R3 left out); ledger: P1, P2, P4, P5, P9 paid.
	if tot.FilePayCount != 4 || tot.FilePayFen != 3191 || tot.FileRefundFen != 111 || tot.LedgerPayCount != 5 || tot.LedgerRefundFen != 311 || tot.Settle == nil {
		t.Fatalf("totals = %+v", tot)
	}

	// Without the injected differences the day is clean.
	if err := w.inst.Control.ClearBillDifferences(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(time.Minute)
	clean := newWorldSharing(t, w)
	rep, err = clean.Run(testCtx(t), day0, reconcile.RunOptions{Trigger: reconcile.TriggerAPI})
	if err != nil || rep.Status != reconcile.StatusClean || rep.Total() != 0 || len(rep.Differences) != 0 {
		t.Fatalf("clean day: %+v, %v", rep, err)
	}
	if rep.FileRecords != 9 || rep.LedgerRecords != 9 {
		t.Fatalf("compared %d bill and %d ledger records, want 9 each (six payments, the closed one is no transaction, three refunds)", rep.FileRecords, rep.LedgerRecords)
	}
	latest, err := w.sql.LatestRun(testCtx(t), sandbox.DevHuifuID, day0)
	if err != nil || latest.RunID != rep.RunID {
		t.Fatalf("latest run = %+v, %v", latest, err)
	}
	runs, err := w.sql.ListRuns(testCtx(t), sandbox.DevHuifuID, time.Time{}, 10)
	if err != nil || len(runs) != 2 || runs[0].RunID != rep.RunID {
		t.Fatalf("runs = %+v, %v", runs, err)
	}
}

// newWorldSharing returns a Reconciler on w's books with a fresh statement
// archive, so the bills are downloaded again.
func newWorldSharing(t *testing.T, w *world) *reconcile.Reconciler {
	archive, err := statements.New(statements.Config{Dir: t.TempDir(), MerchantID: sandbox.DevHuifuID, Upstream: w.up, Now: w.clock.Now,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := reconcile.New(reconcile.Config{}, reconcile.Deps{Bills: archive, Ledger: w.sql, Runs: w.sql, Settler: w.settler(),
		Now: w.clock.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestRefundAboveItsPayment makes the bill report a failed refund as
// succeeded, so that the payment's refunds exceed it.
func TestRefundAboveItsPayment(t *testing.T) {
	w := newWorld(t)
	w.pay("P1", 100)
	w.clock.Advance(time.Minute)
	w.inst.SettlePayment(t, day0, "P1", sandbox.ResultPaid)
	w.learn("payment", "P1")
	w.refund("R1", "P1", 60)
	w.clock.Advance(time.Minute)
	w.inst.SettleRefund(t, day0, "R1", sandbox.ResultSucceeded)
	w.learn("refund", "R1")
	w.refund("R2", "P1", 40)
	w.inst.SettleRefund(t, day0, "R2", sandbox.ResultFailed)
	w.learn("refund", "R2")
	w.inject(sandbox.BillDifference{Kind: sandbox.BillState, ReqSeqID: "R2"})
	w.inject(sandbox.BillDifference{Kind: sandbox.BillAmount, ReqSeqID: "R2", TransAmt: 50})
	rep, err := w.rec.Run(testCtx(t), day0, reconcile.RunOptions{Trigger: reconcile.TriggerAPI})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"amount_differs R2", "refund_exceeds_payment P1", "state_differs R2"}
	if got := named(rep.Differences); !slices.Equal(got, want) {
		t.Fatalf("differences = %v, want %v", got, want)
	}
	for _, d := range rep.Differences {
		if d.Kind == reconcile.RefundExceedsPayment && (!strings.Contains(d.Reason, "1.10") || d.LedgerID != "pay_P1") {
			t.Fatalf("exceeds = %+v", d)
		}
	}
}

// TestScheduledRunOnce claims a day for one scheduled run: a second
// claim, as another replica's, is refused; a failed run releases the
// claim.
func TestScheduledRunOnce(t *testing.T) {
	w := newWorld(t)
	w.tradeDay()
	w.learn("payment", "P9")
	w.inject(sandbox.BillDifference{Kind: sandbox.BillPending, BillType: nkp.BillTrade, Date: day0})
	rep, err := w.rec.Run(testCtx(t), day0, reconcile.RunOptions{Trigger: reconcile.TriggerSchedule})
	if !errors.Is(err, statements.ErrNotReady) || rep.Status != reconcile.StatusFailed {
		t.Fatalf("not ready: %+v, %v", rep, err)
	}
	if err := w.inst.Control.ClearBillDifferences(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	rep, err = w.rec.Run(testCtx(t), day0, reconcile.RunOptions{Trigger: reconcile.TriggerSchedule})
	if err != nil || rep.Status != reconcile.StatusClean {
		t.Fatalf("scheduled run: %+v, %v", rep, err)
	}
	if _, err := newWorldSharing(t, w).Run(testCtx(t), day0, reconcile.RunOptions{Trigger: reconcile.TriggerSchedule}); !errors.Is(err, reconcile.ErrClaimed) {
		t.Fatalf("a second scheduled run of the day: %v", err)
	}
	// A run asked for by a person always runs.
	if rep, err := newWorldSharing(t, w).Run(testCtx(t), day0, reconcile.RunOptions{Trigger: reconcile.TriggerAPI}); err != nil || rep.Status != reconcile.StatusClean {
		t.Fatalf("manual run: %+v, %v", rep, err)
	}
	if _, err := w.rec.Run(testCtx(t), "2025-06-15", reconcile.RunOptions{Trigger: reconcile.TriggerAPI}); !errors.Is(err, reconcile.ErrBadDate) {
		t.Fatalf("bad date: %v", err)
	}
}

// TestClaimRace has many goroutines claim the same day at once: exactly one
// wins.
func TestClaimRace(t *testing.T) {
	w := newWorld(t)
	wins := make(chan bool, 8)
	for i := range 8 {
		go func() {
			ok, err := w.sql.StartRun(context.Background(), reconcile.RunStart{ID: fmt.Sprintf("run%d", i), MerchantID: "m", Date: day0,
				Trigger: reconcile.TriggerSchedule, Owner: fmt.Sprint(i), StartedAt: t0, LeaseUntil: t0.Add(time.Hour), Exclusive: true})
			if err != nil {
				t.Error(err)
			}
			wins <- ok
		}()
	}
	n := 0
	for range 8 {
		if <-wins {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d claims won, want 1", n)
	}
	// After the lease, another owner takes the claim over.
	ok, err := w.sql.StartRun(testCtx(t), reconcile.RunStart{ID: "late", MerchantID: "m", Date: day0, Trigger: reconcile.TriggerSchedule,
		Owner: "x", StartedAt: t0.Add(2 * time.Hour), LeaseUntil: t0.Add(3 * time.Hour), Exclusive: true})
	if err != nil || !ok {
		t.Fatalf("take-over: %v %v", ok, err)
	}
}
