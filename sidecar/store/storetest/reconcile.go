package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

// entries reads LedgerEntries and fails the test on error.
func (f *fixture) entries(merchantID string, from, to time.Time) []store.LedgerEntry {
	f.t.Helper()
	var got []store.LedgerEntry
	err := f.s.LedgerEntries(f.ctx, merchantID, from, to, func(e store.LedgerEntry) error {
		got = append(got, e)
		return nil
	})
	noErr(f.t, "LedgerEntries", err)
	return got
}

// finish moves a payment to a final state at a time, with upstream
// fields when not empty.
func (f *fixture) finish(id string, to store.Status, at time.Time, upstream string) {
	f.t.Helper()
	tr := store.Transition{To: to, At: at}
	if upstream != "" {
		tr.UpstreamFields = json.RawMessage(upstream)
	}
	if _, applied, err := f.s.TransitionPayment(f.ctx, id, tr); err != nil || !applied {
		f.t.Fatalf("TransitionPayment(%s → %s) = %v, %v", id, to, applied, err)
	}
}

// run starts a run of the merchant's day and reports whether it started.
func (f *fixture) run(id, merchantID, day string, at time.Time, exclusive bool) bool {
	f.t.Helper()
	ok, err := f.s.StartReconcileRun(f.ctx, store.ReconcileRun{ID: id, MerchantID: merchantID, BillDate: day, Trigger: "schedule",
		Owner: "replica-" + id, StartedAt: at, LeaseUntil: at.Add(time.Hour)}, exclusive)
	noErr(f.t, "StartReconcileRun "+id, err)
	return ok
}

var reconcileTests = []test{
	{"LedgerEntriesInByteOrderWithinTheWindow", func(f *fixture) {
		in := f.at(2 * time.Hour)
		serial := func(m, seq string) func(*store.Payment) {
			return func(p *store.Payment) { p.MerchantID, p.ReqSeqID = m, seq }
		}
		// Mixed case: byte order puts upper case first, which
		// PostgreSQL's default collation would not.
		b1 := f.payment(serial("m", "b1"), func(p *store.Payment) { p.AmountFen = 100; p.NkpSeqID = "Nb1" })
		f.finish(b1.ID, store.StatusSucceeded, in, `{"trans_stat":"S","end_time":"20250301235959"}`)
		b2 := f.payment(serial("m", "B2"))
		f.finish(b2.ID, store.StatusFailed, in, "")
		a1 := f.payment(serial("m", "a1"))
		old := f.payment(serial("m", "A9"))
		f.finish(old.ID, store.StatusSucceeded, f.at(-72*time.Hour), "")
		late := f.payment(serial("m", "c9"), func(p *store.Payment) { p.CreatedAt = f.at(48 * time.Hour) })
		other := f.payment(serial("other", "c1"))
		f.finish(other.ID, store.StatusSucceeded, in, "")
		r := f.refund(b1, 40, func(r *store.Refund) { r.MerchantID, r.ReqSeqID = "m", "Z1" })
		if _, applied, err := f.s.TransitionRefund(f.ctx, r.ID, store.Transition{To: store.StatusSucceeded, At: in}); err != nil || !applied {
			f.t.Fatalf("TransitionRefund = %v, %v", applied, err)
		}
		// A refund with a payment's serial comes after the payment.
		same := f.refund(b1, 10, func(r *store.Refund) { r.MerchantID, r.ReqSeqID = "m", "b1" })

		got := f.entries("m", f.at(-2*time.Hour), f.at(24*time.Hour))
		var seqs []string
		for _, e := range got {
			seqs = append(seqs, e.Kind+":"+e.ReqSeqID)
		}
		want := []string{"payment:B2", "refund:Z1", "payment:a1", "payment:b1", "refund:b1"}
		if !slices.Equal(seqs, want) {
			f.t.Fatalf("entries %v, want %v (byte order, the window, the merchant)", seqs, want)
		}
		wantEqual(f.t, "payment b1", got[3], store.LedgerEntry{Kind: "payment", ID: b1.ID, MerchantID: "m", ReqDate: b1.ReqDate,
			ReqSeqID: "b1", NkpSeqID: "Nb1", AmountFen: 100, Status: store.StatusSucceeded, FinishedAt: in,
			UpstreamFields: json.RawMessage(`{"trans_stat":"S","end_time":"20250301235959"}`), RefundedFen: 40})
		wantEqual(f.t, "refund Z1", got[1], store.LedgerEntry{Kind: "refund", ID: r.ID, MerchantID: "m", ReqDate: r.ReqDate,
			ReqSeqID: "Z1", AmountFen: 40, Status: store.StatusSucceeded, FinishedAt: in, PaymentReqDate: b1.ReqDate,
			PaymentReqSeqID: "b1", PaymentAmountFen: 100, PaymentRefundedFen: 40})
		if e := got[2]; e.ID != a1.ID || e.Status != store.StatusPending || !e.FinishedAt.IsZero() {
			f.t.Fatalf("unfinished a1 = %+v", e)
		}
		if e := got[4]; e.ID != same.ID || e.Status != store.StatusPending {
			f.t.Fatalf("pending refund = %+v", e)
		}
		// The day the old payment finished holds it alone; the late
		// one is not created before the window's end.
		got = f.entries("m", f.at(-73*time.Hour), f.at(-71*time.Hour))
		if len(got) != 1 || got[0].ID != old.ID {
			f.t.Fatalf("entries of three days before = %+v, want %s only", got, old.ID)
		}
		for _, e := range f.entries("m", f.at(-2*time.Hour), f.at(24*time.Hour)) {
			if e.ID == late.ID {
				f.t.Fatalf("a payment created after the window was read: %+v", e)
			}
		}
	}},
	{"LedgerEntriesStopOnCallbackError", func(f *fixture) {
		for range 5 {
			f.payment()
		}
		stop := errors.New("enough")
		n := 0
		err := f.s.LedgerEntries(f.ctx, "6666000100000001", f.at(-time.Hour), f.at(time.Hour), func(store.LedgerEntry) error {
			n++
			if n == 2 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || n != 2 {
			f.t.Fatalf("LedgerEntries = %v after %d calls, want the callback's error after 2", err, n)
		}
		wantErr(f.t, "LedgerEntries without a merchant", f.s.LedgerEntries(f.ctx, "", f.at(0), f.at(time.Hour),
			func(store.LedgerEntry) error { return nil }), store.ErrInvalid)
	}},
	{"LookupLedgerEntry", func(f *fixture) {
		p := f.payment()
		r := f.refund(p, 30)
		e, err := f.s.LookupLedgerEntry(f.ctx, p.MerchantID, p.ReqDate, p.ReqSeqID)
		if err != nil || e.Kind != "payment" || e.ID != p.ID || e.AmountFen != p.AmountFen {
			f.t.Fatalf("lookup of the payment = %+v, %v", e, err)
		}
		e, err = f.s.LookupLedgerEntry(f.ctx, r.MerchantID, r.ReqDate, r.ReqSeqID)
		if err != nil || e.Kind != "refund" || e.ID != r.ID || e.PaymentReqSeqID != p.ReqSeqID || e.PaymentAmountFen != p.AmountFen {
			f.t.Fatalf("lookup of the refund = %+v, %v", e, err)
		}
		_, err = f.s.LookupLedgerEntry(f.ctx, "another merchant", p.ReqDate, p.ReqSeqID)
		wantErr(f.t, "lookup of another merchant's serial", err, store.ErrNotFound)
	}},
	{"RunsAndDifferences", func(f *fixture) {
		t0 := f.now
		if !f.run("r1", "m", "20250228", t0, true) {
			f.t.Fatal("the first exclusive run did not start")
		}
		if f.run("r2", "m", "20250228", t0.Add(time.Minute), true) {
			f.t.Fatal("two exclusive runs of a day started")
		}
		if !f.run("r2b", "m", "20250227", t0.Add(time.Minute), true) || !f.run("r2c", "other", "20250228", t0.Add(time.Minute), true) {
			f.t.Fatal("a claim on one merchant's day blocked another day or merchant")
		}
		got, err := f.s.GetReconcileRun(f.ctx, "r1")
		noErr(f.t, "GetReconcileRun", err)
		wantEqual(f.t, "running r1", got, store.ReconcileRun{ID: "r1", MerchantID: "m", BillDate: "20250228", Trigger: "schedule",
			Status: store.ReconcileRunning, Owner: "replica-r1", LeaseUntil: t0.Add(time.Hour), StartedAt: t0})
		noErr(f.t, "FinishReconcileRun r1", f.s.FinishReconcileRun(f.ctx, store.ReconcileRun{ID: "r1", Status: store.ReconcileFailed,
			FinishedAt: t0.Add(time.Second), Report: json.RawMessage(`{"error":"not ready"}`), Error: "not ready"}))
		if !f.run("r3", "m", "20250228", t0.Add(2*time.Minute), true) {
			f.t.Fatal("a failed run kept its claim")
		}
		diffs := []store.ReconcileDifference{
			{Seq: 1, Kind: "amount_differs", ReqSeqID: "p1", Body: json.RawMessage(`{"seq":1}`)},
			{Seq: 2, Kind: "missing_in_file", ReqSeqID: "p2", Body: json.RawMessage(`{"seq":2}`)},
		}
		noErr(f.t, "AddReconcileDifferences", f.s.AddReconcileDifferences(f.ctx, "r3", diffs))
		noErr(f.t, "AddReconcileDifferences", f.s.AddReconcileDifferences(f.ctx, "r3",
			[]store.ReconcileDifference{{Seq: 3, Kind: "malformed_row", Body: json.RawMessage(`{"seq":3,"line":7}`)}}))
		// All or none: the new seq 4 is not kept beside the taken seq 3.
		wantErr(f.t, "a difference's seq again", f.s.AddReconcileDifferences(f.ctx, "r3", []store.ReconcileDifference{
			{Seq: 4, Kind: "x", Body: json.RawMessage(`{}`)}, {Seq: 3, Kind: "x", Body: json.RawMessage(`{}`)}}), store.ErrConflict)
		noErr(f.t, "FinishReconcileRun r3", f.s.FinishReconcileRun(f.ctx, store.ReconcileRun{ID: "r3", Status: "differences",
			FinishedAt: t0.Add(3 * time.Minute), Differences: 3, Report: json.RawMessage(`{"file_records":12}`)}))
		if f.run("r4", "m", "20250228", t0.Add(5*time.Hour), true) {
			f.t.Fatal("a finished run's day was claimed again")
		}
		if !f.run("r5", "m", "20250228", t0.Add(6*time.Hour), false) {
			f.t.Fatal("a run that claims nothing did not start")
		}
		got, err = f.s.GetReconcileRun(f.ctx, "r3")
		noErr(f.t, "GetReconcileRun", err)
		wantEqual(f.t, "finished r3", got, store.ReconcileRun{ID: "r3", MerchantID: "m", BillDate: "20250228", Trigger: "schedule",
			Status: "differences", Owner: "replica-r3", LeaseUntil: t0.Add(time.Hour + 2*time.Minute), StartedAt: t0.Add(2 * time.Minute),
			FinishedAt: t0.Add(3 * time.Minute), Differences: 3, Report: json.RawMessage(`{"file_records":12}`)})

		page, err := f.s.ListReconcileDifferences(f.ctx, "r3", 1, 1)
		noErr(f.t, "ListReconcileDifferences", err)
		if len(page) != 1 || page[0].Seq != 2 || page[0].Kind != "missing_in_file" || page[0].ReqSeqID != "p2" || string(page[0].Body) != `{"seq":2}` {
			f.t.Fatalf("difference page = %+v", page)
		}
		all, err := f.s.ListReconcileDifferences(f.ctx, "r3", 0, 100)
		noErr(f.t, "ListReconcileDifferences", err)
		if len(all) != 3 || all[2].Seq != 3 {
			f.t.Fatalf("differences = %+v, want seq 1, 2, 3", all)
		}
		if none, err := f.s.ListReconcileDifferences(f.ctx, "nope", 0, 10); err != nil || none == nil || len(none) != 0 {
			f.t.Fatalf("differences of an unknown run = %#v, %v; want empty", none, err)
		}

		runs, err := f.s.ListReconcileRuns(f.ctx, "m", time.Time{}, 10)
		noErr(f.t, "ListReconcileRuns", err)
		var ids []string
		for _, r := range runs {
			ids = append(ids, r.ID)
		}
		if want := []string{"r5", "r3", "r2b", "r1"}; !slices.Equal(ids, want) {
			f.t.Fatalf("runs %v, want %v (newest first, the merchant's)", ids, want)
		}
		runs, err = f.s.ListReconcileRuns(f.ctx, "m", t0.Add(2*time.Minute), 1)
		noErr(f.t, "ListReconcileRuns", err)
		if len(runs) != 1 || runs[0].ID != "r2b" {
			f.t.Fatalf("the page before r3 = %+v, want r2b", runs)
		}
		if latest, err := f.s.LatestReconcileRun(f.ctx, "m", "20250228"); err != nil || latest.ID != "r5" {
			f.t.Fatalf("latest = %+v, %v; want r5", latest, err)
		}
		_, err = f.s.LatestReconcileRun(f.ctx, "m", "20240101")
		wantErr(f.t, "latest of a day without runs", err, store.ErrNotFound)
		_, err = f.s.GetReconcileRun(f.ctx, "nope")
		wantErr(f.t, "GetReconcileRun of an unknown run", err, store.ErrNotFound)
	}},
	{"RunRefusals", func(f *fixture) {
		f.run("r1", "m", "20250228", f.now, false)
		_, err := f.s.StartReconcileRun(f.ctx, store.ReconcileRun{ID: "r1", MerchantID: "m", BillDate: "20250301", Trigger: "api",
			StartedAt: f.now}, false)
		wantErr(f.t, "a run id again", err, store.ErrConflict)
		_, err = f.s.StartReconcileRun(f.ctx, store.ReconcileRun{ID: "r2", MerchantID: "m", Trigger: "api", StartedAt: f.now}, false)
		wantErr(f.t, "a run without a day", err, store.ErrInvalid)
		_, err = f.s.StartReconcileRun(f.ctx, store.ReconcileRun{ID: "r2", MerchantID: "m", BillDate: "20250301", Trigger: "api",
			StartedAt: f.now}, true)
		wantErr(f.t, "an exclusive run without a lease", err, store.ErrInvalid)
		wantErr(f.t, "finish an unknown run", f.s.FinishReconcileRun(f.ctx, store.ReconcileRun{ID: "nope", Status: "clean"}), store.ErrNotFound)
		wantErr(f.t, "finish as running", f.s.FinishReconcileRun(f.ctx, store.ReconcileRun{ID: "r1", Status: store.ReconcileRunning}), store.ErrInvalid)
		wantErr(f.t, "a report that is not JSON", f.s.FinishReconcileRun(f.ctx, store.ReconcileRun{ID: "r1", Status: "clean",
			Report: json.RawMessage(`{`)}), store.ErrInvalid)
		wantErr(f.t, "differences of an unknown run", f.s.AddReconcileDifferences(f.ctx, "nope",
			[]store.ReconcileDifference{{Seq: 1, Kind: "x", Body: json.RawMessage(`{}`)}}), store.ErrNotFound)
		wantErr(f.t, "a difference that is not JSON", f.s.AddReconcileDifferences(f.ctx, "r1",
			[]store.ReconcileDifference{{Seq: 1, Kind: "x", Body: json.RawMessage(`nope`)}}), store.ErrInvalid)
		got, err := f.s.GetReconcileRun(f.ctx, "r1")
		noErr(f.t, "GetReconcileRun", err)
		if got.Status != store.ReconcileRunning || got.BillDate != "20250228" {
			f.t.Fatalf("r1 after refused calls = %+v", got)
		}
		if d, err := f.s.ListReconcileDifferences(f.ctx, "r1", 0, 10); err != nil || len(d) != 0 {
			f.t.Fatalf("refused differences were stored: %+v, %v", d, err)
		}
	}},
	{"DeadOwnersClaimIsTakenOver", func(f *fixture) {
		if !f.run("r1", "m", "20250228", f.now, true) {
			f.t.Fatal("r1 did not start")
		}
		// r1's lease ends an hour after it started.
		if f.run("r2", "m", "20250228", f.at(59*time.Minute), true) {
			f.t.Fatal("a claim was taken over before its lease ended")
		}
		if !f.run("r3", "m", "20250228", f.at(61*time.Minute), true) {
			f.t.Fatal("the claim of an owner whose lease ended was not taken over")
		}
		if f.run("r4", "m", "20250228", f.at(62*time.Minute), true) {
			f.t.Fatal("the claim taken over was taken again")
		}
	}},
	{"ConcurrentExclusiveRunsStartOnce", func(f *fixture) {
		const workers = 8
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			started []string
			errs    []error
		)
		for i := range workers {
			wg.Go(func() {
				id := fmt.Sprintf("run-%d", i)
				ok, err := f.s.StartReconcileRun(f.ctx, store.ReconcileRun{ID: id, MerchantID: "m", BillDate: "20250228",
					Trigger: "schedule", Owner: id, StartedAt: f.now, LeaseUntil: f.at(time.Hour)}, true)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				if ok {
					started = append(started, id)
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 || len(started) != 1 {
			f.t.Fatalf("%d replicas claiming one day: started %v, errors %v; want exactly one started", workers, started, errs)
		}
	}},
}

// CheckInterimReconcile checks s, opened (and so migrated) on a database
// that holds the reconciliation tables and runs written by the version
// that kept them apart from the store, with their own migrations: run
// "r-old" of merchant "m" and day "20250228", finished with two
// differences, and "r-claim", an exclusive run of day "20250301" still
// running with its lease good until 2025-03-01T11:00:00Z. The store keeps
// them, and their claims.
func CheckInterimReconcile(t *testing.T, s store.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	noErr(t, "Migrate", s.Migrate(ctx))
	r, err := s.GetReconcileRun(ctx, "r-old")
	noErr(t, "GetReconcileRun", err)
	if r.Status != "differences" || r.Differences != 2 || r.BillDate != "20250228" || !r.StartedAt.Equal(time.Date(2025, 3, 1, 1, 0, 0, 0, time.UTC)) ||
		!json.Valid(r.Report) || len(r.Report) == 0 {
		t.Fatalf("the earlier version's run = %+v", r)
	}
	d, err := s.ListReconcileDifferences(ctx, "r-old", 0, 10)
	noErr(t, "ListReconcileDifferences", err)
	if len(d) != 2 || d[0].Kind != "amount_differs" || d[1].ReqSeqID != "p2" || !json.Valid(d[1].Body) {
		t.Fatalf("the earlier version's differences = %+v", d)
	}
	start := func(id string, at time.Time) bool {
		ok, err := s.StartReconcileRun(ctx, store.ReconcileRun{ID: id, MerchantID: "m", BillDate: "20250301", Trigger: "schedule",
			StartedAt: at, LeaseUntil: at.Add(time.Hour)}, true)
		noErr(t, "StartReconcileRun", err)
		return ok
	}
	if start("r-new", time.Date(2025, 3, 1, 10, 30, 0, 0, time.UTC)) {
		t.Fatal("the earlier version's claim was lost")
	}
	if !start("r-new", time.Date(2025, 3, 1, 11, 30, 0, 0, time.UTC)) {
		t.Fatal("the earlier version's claim was not taken over after its lease")
	}
	noErr(t, "AddReconcileDifferences", s.AddReconcileDifferences(ctx, "r-old",
		[]store.ReconcileDifference{{Seq: 3, Kind: "malformed_row", Body: json.RawMessage(`{}`)}}))
}
