package storetest

import (
	"fmt"
	"slices"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

// claimQueries claims due queries and returns the ids, payments first.
func (f *fixture) claimQueries(owner string, now time.Time, lease time.Duration, limit int) []string {
	f.t.Helper()
	ps, rs, err := f.s.ClaimDueQueries(f.ctx, store.Claim{Owner: owner, LeaseUntil: now.Add(lease)}, now, limit)
	if err != nil {
		f.t.Fatalf("ClaimDueQueries(%s): %v", owner, err)
	}
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

func due(at time.Time) func(*store.Payment) {
	return func(p *store.Payment) { p.NextQueryAt = at }
}

var queryTests = []test{
	{"ClaimDueOnly", func(f *fixture) {
		p1 := f.payment(due(f.at(-2 * time.Minute)))
		p2 := f.payment(due(f.at(-time.Minute)), func(p *store.Payment) { p.Status = store.StatusProcessing })
		f.payment(due(f.at(time.Minute)))                                                          // not yet due
		f.payment()                                                                                // never queried
		f.payment(due(f.at(-time.Hour)), func(p *store.Payment) { p.Status = store.StatusClosed }) // final
		paid := f.payment(func(p *store.Payment) { p.Status = store.StatusSucceeded })
		r1 := f.refund(paid, 10, func(r *store.Refund) { r.NextQueryAt = f.at(-90 * time.Second) })
		f.refund(paid, 10, func(r *store.Refund) { r.NextQueryAt = f.at(-time.Hour); r.Status = store.StatusFailed })

		ps, rs, err := f.s.ClaimDueQueries(f.ctx, store.Claim{Owner: "a", LeaseUntil: f.at(time.Minute)}, f.now, 10)
		noErr(f.t, "ClaimDueQueries", err)
		if len(ps) != 2 || ps[0].ID != p1.ID || ps[1].ID != p2.ID || len(rs) != 1 || rs[0].ID != r1.ID {
			f.t.Fatalf("claimed payments %v refunds %v", ps, rs)
		}
		wantEqual(f.t, "claimed payment", ps[0], f.getPayment(p1.ID))
		wantEqual(f.t, "claimed refund", rs[0], f.getRefund(r1.ID))

		if ids := f.claimQueries("b", f.at(59*time.Second), time.Minute, 10); len(ids) != 0 {
			f.t.Fatalf("b claimed %v while a's leases hold", ids)
		}
		got := f.claimQueries("b", f.at(time.Minute), time.Minute, 10)
		// By then the third payment is due too.
		if len(got) != 4 {
			f.t.Fatalf("b claimed %v after a's leases ended, want 4", got)
		}
	}},
	{"LimitCountsBothKindsLongestDueFirst", func(f *fixture) {
		paid := f.payment(func(p *store.Payment) { p.Status = store.StatusSucceeded })
		r1 := f.refund(paid, 10, func(r *store.Refund) { r.NextQueryAt = f.at(-3 * time.Minute) })
		p1 := f.payment(due(f.at(-2 * time.Minute)))
		r2 := f.refund(paid, 10, func(r *store.Refund) { r.NextQueryAt = f.at(-time.Minute) })
		p2 := f.payment(due(f.at(-30 * time.Second)))
		want := [][]string{{r1.ID}, {p1.ID, r2.ID}, {p2.ID}}
		for i, limit := range []int{1, 2, 5} {
			got := f.claimQueries("a", f.now, time.Minute, limit)
			if !slices.Equal(got, want[i]) {
				f.t.Fatalf("claim %d (limit %d) = %v, want %v", i, limit, got, want[i])
			}
		}
		_, _, err := f.s.ClaimDueQueries(f.ctx, store.Claim{Owner: "a", LeaseUntil: f.at(time.Minute)}, f.now, 0)
		wantErr(f.t, "zero limit", err, store.ErrInvalid)
		_, _, err = f.s.ClaimDueQueries(f.ctx, store.Claim{LeaseUntil: f.at(time.Minute)}, f.now, 1)
		wantErr(f.t, "no owner", err, store.ErrInvalid)
	}},
	{"ScheduleQueryReleasesLease", func(f *fixture) {
		p := f.payment(due(f.now))
		paid := f.payment(func(p *store.Payment) { p.Status = store.StatusSucceeded })
		r := f.refund(paid, 10, func(r *store.Refund) { r.NextQueryAt = f.now })
		if ids := f.claimQueries("a", f.now, time.Hour, 10); len(ids) != 2 {
			f.t.Fatalf("claimed %v", ids)
		}
		noErr(f.t, "ScheduleQuery payment", f.s.ScheduleQuery(f.ctx, "payment", p.ID, f.at(time.Minute), 1, "timeout"))
		noErr(f.t, "ScheduleQuery refund", f.s.ScheduleQuery(f.ctx, "refund", r.ID, f.at(2*time.Minute), 3, ""))
		got := f.getPayment(p.ID)
		if !sameTime(got.NextQueryAt, f.at(time.Minute)) || got.QueryAttempts != 1 || got.LastError != "timeout" {
			f.t.Fatalf("scheduled payment %+v", got)
		}
		gotR := f.getRefund(r.ID)
		if !sameTime(gotR.NextQueryAt, f.at(2*time.Minute)) || gotR.QueryAttempts != 3 {
			f.t.Fatalf("scheduled refund %+v", gotR)
		}
		// The leases are released: the next owner gets them when due, long
		// before a's hour-long lease would have ended.
		if ids := f.claimQueries("b", f.at(time.Minute), time.Hour, 10); !slices.Equal(ids, []string{p.ID}) {
			f.t.Fatalf("claimed %v at +1m", ids)
		}
		if ids := f.claimQueries("c", f.at(2*time.Minute), time.Minute, 10); !slices.Equal(ids, []string{r.ID}) {
			f.t.Fatalf("claimed %v at +2m", ids)
		}
		// A zero next stops querying.
		noErr(f.t, "ScheduleQuery stop", f.s.ScheduleQuery(f.ctx, "payment", p.ID, time.Time{}, 2, ""))
		if got := f.getPayment(p.ID); !got.NextQueryAt.IsZero() {
			f.t.Fatalf("NextQueryAt = %v after a stop", got.NextQueryAt)
		}
		if ids := f.claimQueries("d", f.at(time.Hour*24), time.Minute, 10); slices.Contains(ids, p.ID) {
			f.t.Fatalf("claimed %v after stop", ids)
		}
		wantErr(f.t, "unknown kind", f.s.ScheduleQuery(f.ctx, "order", p.ID, f.now, 1, ""), store.ErrInvalid)
		wantErr(f.t, "unknown payment", f.s.ScheduleQuery(f.ctx, "payment", "pay_missing", f.now, 1, ""), store.ErrNotFound)
		wantErr(f.t, "unknown refund", f.s.ScheduleQuery(f.ctx, "refund", "ref_missing", f.now, 1, ""), store.ErrNotFound)
		wantErr(f.t, "negative attempts", f.s.ScheduleQuery(f.ctx, "payment", p.ID, f.now, -1, ""), store.ErrInvalid)
	}},
	{"FinalStateStopsQueries", func(f *fixture) {
		p := f.payment(due(f.now))
		if ids := f.claimQueries("a", f.now, time.Minute, 10); len(ids) != 1 {
			f.t.Fatalf("claimed %v", ids)
		}
		// The notification finishes the payment while a query is running.
		_, applied, err := f.s.TransitionPayment(f.ctx, p.ID, store.Transition{To: store.StatusSucceeded, At: f.now})
		if err != nil || !applied {
			f.t.Fatalf("TransitionPayment = %v, %v", applied, err)
		}
		// The query worker then schedules the next query: it must not revive it.
		noErr(f.t, "ScheduleQuery", f.s.ScheduleQuery(f.ctx, "payment", p.ID, f.at(time.Minute), 1, ""))
		if got := f.getPayment(p.ID); !got.NextQueryAt.IsZero() || got.Status != store.StatusSucceeded {
			f.t.Fatalf("payment %+v", got)
		}
		if ids := f.claimQueries("b", f.at(time.Hour), time.Minute, 10); len(ids) != 0 {
			f.t.Fatalf("claimed a final payment: %v", ids)
		}
	}},
	{"ConcurrentClaimersNeverShare", func(f *fixture) {
		const n = 40
		paid := f.payment(func(p *store.Payment) { p.Status = store.StatusSucceeded })
		for i := range n {
			if i%2 == 0 {
				f.payment(due(f.at(-time.Duration(i) * time.Second)))
			} else {
				f.refund(paid, 1, func(r *store.Refund) { r.NextQueryAt = f.at(-time.Duration(i) * time.Second) })
			}
		}
		claimed := runClaimers(f, 5, n, func(owner string) ([]string, error) {
			ps, rs, err := f.s.ClaimDueQueries(f.ctx, store.Claim{Owner: owner, LeaseUntil: f.at(time.Hour)}, f.now, 3)
			var ids []string
			for _, p := range ps {
				ids = append(ids, p.ID)
			}
			for _, r := range rs {
				ids = append(ids, r.ID)
			}
			return ids, err
		})
		if len(claimed) != n {
			f.t.Fatalf("%d distinct items claimed, want %d: %v", len(claimed), n, fmt.Sprint(claimed))
		}
	}},
}
