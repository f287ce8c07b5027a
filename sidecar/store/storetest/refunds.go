package storetest

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

var refundTests = []test{
	{"CreateAndGetByEachKey", func(f *fixture) {
		p := f.payment(func(p *store.Payment) { p.Status = store.StatusSucceeded })
		want := f.refund(p, 40, func(r *store.Refund) {
			r.NkpSeqID = "nkp-r"
			r.TransStat = "P"
			r.Status = store.StatusProcessing
			r.UpstreamFields = json.RawMessage(`{"x":"y"}`)
			r.NextQueryAt = f.at(time.Minute)
		})
		wantEqual(f.t, "GetRefund", f.getRefund(want.ID), want)
		got, err := f.s.GetRefundByOutRefundNo(f.ctx, want.MerchantID, want.OutRefundNo)
		noErr(f.t, "GetRefundByOutRefundNo", err)
		wantEqual(f.t, "GetRefundByOutRefundNo", got, want)
		got, err = f.s.GetRefundByReqSeqID(f.ctx, want.MerchantID, want.ReqDate, want.ReqSeqID)
		noErr(f.t, "GetRefundByReqSeqID", err)
		wantEqual(f.t, "GetRefundByReqSeqID", got, want)

		def := f.refund(p, 10, func(r *store.Refund) { r.Status, r.CreatedAt, r.UpdatedAt = "", time.Time{}, time.Time{} })
		if def.Status != store.StatusPending || def.CreatedAt.IsZero() {
			f.t.Fatalf("defaults = %q %v", def.Status, def.CreatedAt)
		}
	}},
	{"CreateRefusesBadInputAndConflicts", func(f *fixture) {
		p := f.payment()
		orig := f.refund(p, 10)
		cases := []struct {
			name string
			mod  func(*store.Refund)
			want error
		}{
			{"no id", func(r *store.Refund) { r.ID = "" }, store.ErrInvalid},
			{"no payment", func(r *store.Refund) { r.PaymentID = "" }, store.ErrInvalid},
			{"no merchant", func(r *store.Refund) { r.MerchantID = "" }, store.ErrInvalid},
			{"no out_refund_no", func(r *store.Refund) { r.OutRefundNo = "" }, store.ErrInvalid},
			{"no req_seq_id", func(r *store.Refund) { r.ReqSeqID = "" }, store.ErrInvalid},
			{"zero amount", func(r *store.Refund) { r.AmountFen = 0 }, store.ErrInvalid},
			{"unknown status", func(r *store.Refund) { r.Status = "done" }, store.ErrInvalid},
			{"bad upstream fields", func(r *store.Refund) { r.UpstreamFields = json.RawMessage(`[`) }, store.ErrInvalid},
			{"unknown payment", func(r *store.Refund) { r.PaymentID = "pay_missing" }, store.ErrNotFound},
			{"same id", func(r *store.Refund) { r.ID = orig.ID }, store.ErrConflict},
			{"same out_refund_no", func(r *store.Refund) { r.OutRefundNo = orig.OutRefundNo }, store.ErrConflict},
			{"same req_seq_id", func(r *store.Refund) { r.ReqSeqID = orig.ReqSeqID }, store.ErrConflict},
		}
		for _, tc := range cases {
			r := store.Refund{ID: "ref_bad", PaymentID: p.ID, MerchantID: p.MerchantID, OutRefundNo: "r-bad",
				AmountFen: 5, ReqDate: "20250301", ReqSeqID: "seq-bad"}
			tc.mod(&r)
			wantErr(f.t, tc.name, f.s.CreateRefund(f.ctx, &r), tc.want)
		}
		_, err := f.s.GetRefund(f.ctx, "ref_bad")
		wantErr(f.t, "GetRefund after refusals", err, store.ErrNotFound)
		wantEqual(f.t, "original", f.getRefund(orig.ID), orig)
		// The same out_refund_no at another merchant is fine.
		f.refund(p, 5, func(r *store.Refund) { r.OutRefundNo, r.MerchantID = orig.OutRefundNo, "6666000100000009" })
	}},
	{"NotFoundAndList", func(f *fixture) {
		_, err := f.s.GetRefund(f.ctx, "ref_missing")
		wantErr(f.t, "GetRefund", err, store.ErrNotFound)
		_, err = f.s.GetRefundByOutRefundNo(f.ctx, "m", "missing")
		wantErr(f.t, "GetRefundByOutRefundNo", err, store.ErrNotFound)
		_, err = f.s.GetRefundByReqSeqID(f.ctx, "m", "20250301", "missing")
		wantErr(f.t, "GetRefundByReqSeqID", err, store.ErrNotFound)
		_, _, err = f.s.TransitionRefund(f.ctx, "ref_missing", store.Transition{To: store.StatusSucceeded})
		wantErr(f.t, "TransitionRefund", err, store.ErrNotFound)

		p, other := f.payment(), f.payment()
		r1 := f.refund(p, 10, func(r *store.Refund) { r.CreatedAt = f.at(2 * time.Second) })
		r2 := f.refund(p, 20, func(r *store.Refund) { r.CreatedAt = f.at(time.Second) })
		f.refund(other, 30)
		list, err := f.s.ListRefunds(f.ctx, p.ID)
		noErr(f.t, "ListRefunds", err)
		if len(list) != 2 || list[0].ID != r2.ID || list[1].ID != r1.ID {
			f.t.Fatalf("ListRefunds = %+v, want %s then %s", list, r2.ID, r1.ID)
		}
		wantEqual(f.t, "listed refund", list[1], r1)
		list, err = f.s.ListRefunds(f.ctx, "pay_missing")
		noErr(f.t, "ListRefunds of an unknown payment", err)
		if len(list) != 0 {
			f.t.Fatalf("ListRefunds of an unknown payment = %+v", list)
		}
	}},
	{"SuccessAddsToRefundedOnce", func(f *fixture) {
		p := f.payment(func(p *store.Payment) { p.Status, p.AmountFen = store.StatusSucceeded, 100 })
		a := f.refund(p, 30)
		b := f.refund(p, 20)
		c := f.refund(p, 45)
		steps := []struct {
			refund   store.Refund
			to       store.Status
			applied  bool
			refunded int64
		}{
			{a, store.StatusProcessing, true, 0},
			{a, store.StatusSucceeded, true, 30},
			{a, store.StatusSucceeded, false, 30}, // the notification repeated
			{a, store.StatusFailed, false, 30},    // failed after succeeded
			{a, store.StatusProcessing, false, 30},
			{b, store.StatusFailed, true, 30},
			{b, store.StatusSucceeded, false, 30},
			{c, store.StatusSucceeded, true, 75},
		}
		for i, st := range steps {
			ev := f.event("")
			ev.ObjectID, ev.OrderKey = "", ""
			r, applied, err := f.s.TransitionRefund(f.ctx, st.refund.ID, store.Transition{
				To: st.to, TransStat: "S", NkpSeqID: "nkp-" + st.refund.ID, At: f.at(time.Duration(i+1) * time.Second), Event: ev,
			})
			noErr(f.t, "TransitionRefund", err)
			if applied != st.applied {
				f.t.Fatalf("step %d: %s->%s applied = %v, want %v", i, st.refund.ID, st.to, applied, st.applied)
			}
			wantEqual(f.t, "returned vs stored refund", r, f.getRefund(st.refund.ID))
			if got := f.getPayment(p.ID).RefundedFen; got != st.refunded {
				f.t.Fatalf("step %d: RefundedFen = %d, want %d", i, got, st.refunded)
			}
			stored, evErr := f.s.GetEvent(f.ctx, ev.ID)
			if !applied {
				wantErr(f.t, "event of a refund transition not applied", evErr, store.ErrNotFound)
				continue
			}
			noErr(f.t, "event of an applied refund transition", evErr)
			if stored.OrderKey != p.ID || stored.ObjectID != st.refund.ID {
				f.t.Fatalf("refund event OrderKey = %q ObjectID = %q, want %q and %q", stored.OrderKey, stored.ObjectID, p.ID, st.refund.ID)
			}
			if r.Status != st.to || r.NkpSeqID != "nkp-"+st.refund.ID {
				f.t.Fatalf("refund %+v", r)
			}
			if st.to.Final() && (!sameTime(r.FinishedAt, f.at(time.Duration(i+1)*time.Second)) || !r.NextQueryAt.IsZero()) {
				f.t.Fatalf("final refund FinishedAt = %v NextQueryAt = %v", r.FinishedAt, r.NextQueryAt)
			}
		}
		if got := f.getPayment(p.ID); got.Status != store.StatusSucceeded {
			f.t.Fatalf("payment status = %q after refunds", got.Status)
		}
	}},
	{"ConcurrentSuccessAddsOnce", func(f *fixture) {
		p := f.payment(func(p *store.Payment) { p.Status, p.AmountFen = store.StatusSucceeded, 500 })
		r := f.refund(p, 123)
		const n = 8
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			applied int
			errs    []error
		)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, ok, err := f.s.TransitionRefund(f.ctx, r.ID, store.Transition{To: store.StatusSucceeded})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				if ok {
					applied++
				}
			}()
		}
		wg.Wait()
		if len(errs) > 0 || applied != 1 {
			f.t.Fatalf("applied %d times, errors %v; want once", applied, errs)
		}
		if got := f.getPayment(p.ID).RefundedFen; got != 123 {
			f.t.Fatalf("RefundedFen = %d, want 123", got)
		}
	}},
}
