package storetest

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

// notice returns a notification of the object, not yet stored.
func (f *fixture) notice(kind, objectID string) store.Notification {
	id := f.next("ntf")
	return store.Notification{ID: id, ReqSeqID: "seq" + objectID, Kind: kind, ObjectID: objectID,
		RespData: `{"req_seq_id":"seq` + objectID + `","trans_stat":"S","n":"` + id + `"}`, ReceivedAt: f.now}
}

// recorded reports whether a notification with the id is stored, by
// trying to record it again (which records it when it was not).
func (f *fixture) recorded(id string) bool {
	f.t.Helper()
	isNew, err := f.s.RecordNotification(f.ctx, store.Notification{ID: id, RespData: "{}", ReceivedAt: f.now})
	noErr(f.t, "RecordNotification", err)
	return !isNew
}

var applyNotificationTests = []test{
	{"RecordsAndMovesTogether", func(f *fixture) {
		p := f.payment(func(p *store.Payment) { p.NextQueryAt = f.at(time.Minute) })
		n := f.notice("payment", p.ID)
		ev := f.event("")
		ev.ObjectID, ev.OrderKey = "", ""
		tr := store.Transition{To: store.StatusSucceeded, TransStat: "S", NkpSeqID: "nkp-1", OutTransID: "out-1",
			UpstreamFields: json.RawMessage(`{"trans_stat":"S"}`), At: f.at(time.Second), Event: ev}
		res, err := f.s.ApplyNotification(f.ctx, n, tr)
		noErr(f.t, "ApplyNotification", err)
		if !res.New || !res.Applied {
			f.t.Fatalf("first ApplyNotification: new = %v, applied = %v; want both", res.New, res.Applied)
		}
		got := f.getPayment(p.ID)
		wantEqual(f.t, "returned vs stored payment", res.Payment, got)
		wantEqual(f.t, "unused refund", res.Refund, store.Refund{})
		if got.Status != store.StatusSucceeded || got.NkpSeqID != "nkp-1" || got.OutTransID != "out-1" ||
			!sameTime(got.FinishedAt, f.at(time.Second)) || !got.NextQueryAt.IsZero() {
			f.t.Fatalf("payment after the notification: %+v", got)
		}
		stored := f.getEvent(ev.ID)
		if stored.ObjectID != p.ID || stored.OrderKey != p.ID || stored.Seq != ev.Seq || ev.Seq == 0 {
			f.t.Fatalf("event %+v, written back Seq %d", stored, ev.Seq)
		}

		// The same notification again: recorded before, nothing moves,
		// nothing is added.
		again := *ev
		again.Seq = 0
		tr.Event = &again
		res, err = f.s.ApplyNotification(f.ctx, n, tr)
		noErr(f.t, "ApplyNotification again", err)
		if res.New || res.Applied || res.Payment.Status != store.StatusSucceeded {
			f.t.Fatalf("repeated ApplyNotification: %+v", res)
		}
		if c := f.counts(); c[store.EventPending] != 1 {
			f.t.Fatalf("events after a repeat: %v", c)
		}
		if !f.recorded(n.ID) {
			f.t.Fatal("the notification was not recorded")
		}
	}},
	{"RefundAddsToPaymentOnce", func(f *fixture) {
		p := f.payment(func(p *store.Payment) { p.Status = store.StatusSucceeded })
		r := f.refund(p, 40)
		for i, want := range []bool{true, false} {
			ev := f.event("")
			ev.ObjectID, ev.OrderKey = "", ""
			res, err := f.s.ApplyNotification(f.ctx, f.notice("refund", r.ID), store.Transition{To: store.StatusSucceeded, Event: ev})
			noErr(f.t, "ApplyNotification", err)
			if !res.New || res.Applied != want {
				f.t.Fatalf("call %d: %+v, want new and applied = %v", i, res, want)
			}
			wantEqual(f.t, "returned vs stored refund", res.Refund, f.getRefund(r.ID))
			wantEqual(f.t, "unused payment", res.Payment, store.Payment{})
			if want {
				if e := f.getEvent(ev.ID); e.OrderKey != p.ID || e.ObjectID != r.ID {
					f.t.Fatalf("refund event %+v", e)
				}
			}
		}
		if got := f.getPayment(p.ID).RefundedFen; got != 40 {
			f.t.Fatalf("RefundedFen = %d, want 40", got)
		}
	}},
	{"AppliesWhenRecordedBefore", func(f *fixture) {
		// A notification recorded alone (by RecordNotification) still
		// moves its object when applied.
		p := f.payment()
		n := f.notice("payment", p.ID)
		isNew, err := f.s.RecordNotification(f.ctx, n)
		noErr(f.t, "RecordNotification", err)
		if !isNew {
			f.t.Fatal("not new")
		}
		res, err := f.s.ApplyNotification(f.ctx, n, store.Transition{To: store.StatusProcessing})
		noErr(f.t, "ApplyNotification", err)
		if res.New || !res.Applied || res.Payment.Status != store.StatusProcessing {
			f.t.Fatalf("ApplyNotification of a recorded notification: %+v", res)
		}
	}},
	{"RefusalsStoreNothing", func(f *fixture) {
		p := f.payment()
		good := store.Transition{To: store.StatusSucceeded}
		cases := []struct {
			name string
			n    store.Notification
			t    store.Transition
			want error
		}{
			{"unknown payment", f.notice("payment", "pay_missing"), good, store.ErrNotFound},
			{"unknown refund", f.notice("refund", "ref_missing"), good, store.ErrNotFound},
			{"a payment named as a refund", f.notice("refund", p.ID), good, store.ErrNotFound},
			{"no kind", f.notice("", p.ID), good, store.ErrInvalid},
			{"unknown kind", f.notice("order", p.ID), good, store.ErrInvalid},
			{"no object", f.notice("payment", ""), good, store.ErrInvalid},
			{"no target state", f.notice("payment", p.ID), store.Transition{}, store.ErrInvalid},
			{"unknown target state", f.notice("payment", p.ID), store.Transition{To: "paid"}, store.ErrInvalid},
			{"bad upstream fields", f.notice("payment", p.ID), store.Transition{To: store.StatusSucceeded,
				UpstreamFields: json.RawMessage(`{"a"`)}, store.ErrInvalid},
			{"bad event", f.notice("payment", p.ID), store.Transition{To: store.StatusSucceeded,
				Event: &store.Event{ID: "evt_bad", Type: "payment.succeeded", Payload: json.RawMessage(`nope`)}}, store.ErrInvalid},
		}
		for _, tc := range cases {
			_, err := f.s.ApplyNotification(f.ctx, tc.n, tc.t)
			wantErr(f.t, tc.name, err, tc.want)
			if tc.n.ID != "" && f.recorded(tc.n.ID) {
				f.t.Fatalf("%s: the notification was recorded", tc.name)
			}
		}
		_, err := f.s.ApplyNotification(f.ctx, store.Notification{Kind: "payment", ObjectID: p.ID, RespData: "{}"}, good)
		wantErr(f.t, "no id", err, store.ErrInvalid)
		if got := f.getPayment(p.ID); got.Status != store.StatusPending {
			f.t.Fatalf("refusals moved the payment to %q", got.Status)
		}
		if c := f.counts(); c[store.EventPending] != 0 {
			f.t.Fatalf("refusals inserted events: %v", c)
		}
	}},
	{"ConcurrentDuplicatesApplyOnce", func(f *fixture) {
		p := f.payment()
		n := f.notice("payment", p.ID)
		const callers = 8
		var (
			wg               sync.WaitGroup
			mu               sync.Mutex
			fresh, moved     int
			errs             []error
			eventID          = f.next("evt")
			payload          = json.RawMessage(`{"id":"` + eventID + `"}`)
			newTransitionFor = func() store.Transition {
				return store.Transition{To: store.StatusSucceeded, TransStat: "S",
					Event: &store.Event{ID: eventID, Type: "payment.succeeded", Payload: payload}}
			}
		)
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := f.s.ApplyNotification(f.ctx, n, newTransitionFor())
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				if res.New {
					fresh++
				}
				if res.Applied {
					moved++
				}
			}()
		}
		wg.Wait()
		if len(errs) > 0 || fresh != 1 || moved != 1 {
			f.t.Fatalf("%d new and %d applied of %d, errors %v; want one of each", fresh, moved, callers, errs)
		}
		if c := f.counts(); c[store.EventPending] != 1 {
			f.t.Fatalf("events %v, want one", c)
		}
	}},
}
