package storetest

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

var paymentTests = []test{
	{"CreateAndGetByEachKey", func(f *fixture) {
		shanghai := time.FixedZone("CST", 8*3600)
		want := f.payment(func(p *store.Payment) {
			p.PayParams = json.RawMessage(`{"appId":"wx1","package":"prepay_id=1"}`)
			p.UpstreamFields = json.RawMessage(`{"trans_stat":"P"}`)
			p.NkpSeqID = "nkp-1"
			p.PartyOrderID = "party-1"
			p.OutTransID = "out-1"
			p.TransStat = "I"
			p.NextQueryAt = f.at(time.Minute)
			p.QueryAttempts = 2
			p.LastError = "timeout"
			// A time in another zone is stored as the same instant.
			p.CreatedAt = f.now.In(shanghai).Add(123456 * time.Nanosecond)
		})
		got := f.getPayment(want.ID)
		wantEqual(f.t, "GetPayment", got, want)
		if got.Status != store.StatusPending {
			f.t.Fatalf("Status = %q, want the default pending", got.Status)
		}
		if !got.CreatedAt.Equal(f.now.Add(123 * time.Microsecond)) {
			f.t.Fatalf("CreatedAt = %v, want microsecond precision of %v", got.CreatedAt, f.now.Add(123456*time.Nanosecond))
		}
		byOut, err := f.s.GetPaymentByOutTradeNo(f.ctx, want.MerchantID, want.OutTradeNo)
		noErr(f.t, "GetPaymentByOutTradeNo", err)
		wantEqual(f.t, "GetPaymentByOutTradeNo", byOut, want)
		bySeq, err := f.s.GetPaymentByReqSeqID(f.ctx, want.MerchantID, want.ReqDate, want.ReqSeqID)
		noErr(f.t, "GetPaymentByReqSeqID", err)
		wantEqual(f.t, "GetPaymentByReqSeqID", bySeq, want)
	}},
	{"GetByUpstreamSerials", func(f *fixture) {
		want := f.payment(func(p *store.Payment) { p.NkpSeqID, p.PartyOrderID = "nkp-serial-1", "party-serial-1" })
		// A payment not accepted yet has neither; an empty key finds none
		// of them.
		f.payment()
		other := f.payment(func(p *store.Payment) {
			p.MerchantID = "6666000100000002"
			p.NkpSeqID, p.PartyOrderID = "nkp-serial-2", "party-serial-2"
		})
		byNkp, err := f.s.GetPaymentByNkpSeqID(f.ctx, want.MerchantID, "nkp-serial-1")
		noErr(f.t, "GetPaymentByNkpSeqID", err)
		wantEqual(f.t, "GetPaymentByNkpSeqID", byNkp, want)
		byParty, err := f.s.GetPaymentByPartyOrderID(f.ctx, want.MerchantID, "party-serial-1")
		noErr(f.t, "GetPaymentByPartyOrderID", err)
		wantEqual(f.t, "GetPaymentByPartyOrderID", byParty, want)
		for name, err := range map[string]error{
			"an empty nkp_seq_id":            second(f.s.GetPaymentByNkpSeqID(f.ctx, want.MerchantID, "")),
			"an empty party_order_id":        second(f.s.GetPaymentByPartyOrderID(f.ctx, want.MerchantID, "")),
			"another merchant's nkp_seq_id":  second(f.s.GetPaymentByNkpSeqID(f.ctx, want.MerchantID, other.NkpSeqID)),
			"another merchant's party order": second(f.s.GetPaymentByPartyOrderID(f.ctx, want.MerchantID, other.PartyOrderID)),
			"an unknown nkp_seq_id":          second(f.s.GetPaymentByNkpSeqID(f.ctx, want.MerchantID, "nkp-serial-9")),
		} {
			wantErr(f.t, name, err, store.ErrNotFound)
		}
		// Serials recorded when the order is accepted are found too.
		later := f.payment()
		_, _, err = f.s.UpdatePaymentAccepted(f.ctx, later.ID, "nkp-serial-3", "party-serial-3", nil, store.Transition{To: store.StatusProcessing})
		noErr(f.t, "UpdatePaymentAccepted", err)
		got, err := f.s.GetPaymentByPartyOrderID(f.ctx, later.MerchantID, "party-serial-3")
		noErr(f.t, "GetPaymentByPartyOrderID", err)
		if got.ID != later.ID {
			f.t.Fatalf("party_order_id recorded on acceptance finds %s, want %s", got.ID, later.ID)
		}
	}},
	{"CreateFillsDefaults", func(f *fixture) {
		before := time.Now().Add(-time.Second)
		p := store.Payment{ID: "pay_defaults", MerchantID: "m", OutTradeNo: "o", AmountFen: 1, ReqDate: "20250301", ReqSeqID: "s"}
		noErr(f.t, "CreatePayment", f.s.CreatePayment(f.ctx, &p))
		if p.Status != store.StatusPending || p.CreatedAt.Before(before) || !p.UpdatedAt.Equal(p.CreatedAt) {
			f.t.Fatalf("defaults written back = %q %v %v", p.Status, p.CreatedAt, p.UpdatedAt)
		}
		got := f.getPayment(p.ID)
		wantEqual(f.t, "GetPayment", got, p)
		if got.PayParams != nil || got.Metadata != nil || got.Buyer != nil || got.UpstreamFields != nil {
			f.t.Fatalf("absent JSON read back as non-nil: %+v", got)
		}
	}},
	{"CreateRefusesBadInput", func(f *fixture) {
		cases := []struct {
			name string
			mod  func(*store.Payment)
		}{
			{"no id", func(p *store.Payment) { p.ID = "" }},
			{"no merchant", func(p *store.Payment) { p.MerchantID = "" }},
			{"no out_trade_no", func(p *store.Payment) { p.OutTradeNo = "" }},
			{"no req_date", func(p *store.Payment) { p.ReqDate = "" }},
			{"no req_seq_id", func(p *store.Payment) { p.ReqSeqID = "" }},
			{"zero amount", func(p *store.Payment) { p.AmountFen = 0 }},
			{"negative amount", func(p *store.Payment) { p.AmountFen = -5 }},
			{"unknown status", func(p *store.Payment) { p.Status = "paid" }},
			{"bad metadata", func(p *store.Payment) { p.Metadata = json.RawMessage(`{"a":`) }},
			{"bad pay params", func(p *store.Payment) { p.PayParams = json.RawMessage(`nope`) }},
		}
		for _, tc := range cases {
			p := store.Payment{ID: "pay_bad", MerchantID: "m", OutTradeNo: "o", AmountFen: 1, ReqDate: "20250301", ReqSeqID: "s"}
			tc.mod(&p)
			wantErr(f.t, tc.name, f.s.CreatePayment(f.ctx, &p), store.ErrInvalid)
		}
		_, err := f.s.GetPayment(f.ctx, "pay_bad")
		wantErr(f.t, "GetPayment after refusals", err, store.ErrNotFound)
		_, err = f.s.GetPaymentByOutTradeNo(f.ctx, "m", "o")
		wantErr(f.t, "GetPaymentByOutTradeNo after refusals", err, store.ErrNotFound)
	}},
	{"CreateConflicts", func(f *fixture) {
		orig := f.payment()
		cases := []struct {
			name     string
			mod      func(*store.Payment)
			conflict bool
		}{
			{"same id", func(p *store.Payment) { p.ID = orig.ID }, true},
			{"same out_trade_no", func(p *store.Payment) { p.OutTradeNo = orig.OutTradeNo }, true},
			{"same req_seq_id same day", func(p *store.Payment) { p.ReqSeqID = orig.ReqSeqID }, true},
			{"same out_trade_no other merchant", func(p *store.Payment) {
				p.OutTradeNo, p.MerchantID = orig.OutTradeNo, "6666000100000002"
			}, false},
			{"same req_seq_id other day", func(p *store.Payment) { p.ReqSeqID, p.ReqDate = orig.ReqSeqID, "20250302" }, false},
			{"same req_seq_id other merchant", func(p *store.Payment) {
				p.ReqSeqID, p.MerchantID = orig.ReqSeqID, "6666000100000003"
			}, false},
		}
		for _, tc := range cases {
			id := f.next("pay")
			p := store.Payment{ID: id, MerchantID: orig.MerchantID, OutTradeNo: "o" + id, AmountFen: 7,
				ReqDate: orig.ReqDate, ReqSeqID: "s" + id, CreatedAt: f.now}
			tc.mod(&p)
			err := f.s.CreatePayment(f.ctx, &p)
			if tc.conflict {
				wantErr(f.t, tc.name, err, store.ErrConflict)
			} else {
				noErr(f.t, tc.name, err)
			}
		}
		wantEqual(f.t, "original after conflicts", f.getPayment(orig.ID), orig)
	}},
	{"NotFound", func(f *fixture) {
		f.payment()
		_, err := f.s.GetPayment(f.ctx, "pay_missing")
		wantErr(f.t, "GetPayment", err, store.ErrNotFound)
		_, err = f.s.GetPaymentByOutTradeNo(f.ctx, "6666000100000001", "missing")
		wantErr(f.t, "GetPaymentByOutTradeNo", err, store.ErrNotFound)
		_, err = f.s.GetPaymentByReqSeqID(f.ctx, "6666000100000001", "20250301", "missing")
		wantErr(f.t, "GetPaymentByReqSeqID", err, store.ErrNotFound)
		_, _, err = f.s.TransitionPayment(f.ctx, "pay_missing", store.Transition{To: store.StatusSucceeded})
		wantErr(f.t, "TransitionPayment", err, store.ErrNotFound)
		_, _, err = f.s.UpdatePaymentAccepted(f.ctx, "pay_missing", "n", "p", nil, store.Transition{To: store.StatusProcessing})
		wantErr(f.t, "UpdatePaymentAccepted", err, store.ErrNotFound)
		wantErr(f.t, "RecordPaymentError", f.s.RecordPaymentError(f.ctx, "pay_missing", "x", f.now), store.ErrNotFound)
	}},
	{"TransitionsMoveForwardOnly", func(f *fixture) {
		S := store.StatusSucceeded
		cases := []struct {
			from, to store.Status
			applied  bool
		}{
			{store.StatusPending, store.StatusProcessing, true},
			{store.StatusPending, S, true},
			{store.StatusPending, store.StatusClosed, true},
			{store.StatusPending, store.StatusPending, false},
			{store.StatusProcessing, S, true},
			{store.StatusProcessing, store.StatusFailed, true},
			{store.StatusProcessing, store.StatusProcessing, false},
			{store.StatusProcessing, store.StatusPending, false},
			{S, store.StatusProcessing, false}, // a late processing
			{S, store.StatusFailed, false},     // failed after succeeded
			{S, store.StatusClosed, false},
			{S, S, false},
			{store.StatusFailed, S, false},
			{store.StatusClosed, S, false},
		}
		for _, tc := range cases {
			p := f.payment(func(p *store.Payment) {
				p.Status = tc.from
				p.TransStat = "X"
				p.NkpSeqID = "nkp-before"
				p.NextQueryAt = f.at(time.Minute)
			})
			ev := f.event(p.ID)
			at := f.at(time.Hour)
			got, applied, err := f.s.TransitionPayment(f.ctx, p.ID, store.Transition{
				To: tc.to, TransStat: "S", NkpSeqID: "nkp-after", At: at, Event: ev,
				UpstreamFields: json.RawMessage(`{"trans_stat":"S"}`),
			})
			noErr(f.t, string(tc.from)+"->"+string(tc.to), err)
			if applied != tc.applied {
				f.t.Fatalf("%s->%s applied = %v, want %v", tc.from, tc.to, applied, tc.applied)
			}
			stored := f.getPayment(p.ID)
			wantEqual(f.t, "returned vs stored payment", got, stored)
			_, evErr := f.s.GetEvent(f.ctx, ev.ID)
			if !tc.applied {
				wantEqual(f.t, string(tc.from)+"->"+string(tc.to)+" not applied, payment", stored, p)
				wantErr(f.t, "event of a transition not applied", evErr, store.ErrNotFound)
				continue
			}
			noErr(f.t, "event of an applied transition", evErr)
			if stored.Status != tc.to || stored.TransStat != "S" || stored.NkpSeqID != "nkp-after" ||
				string(stored.UpstreamFields) != `{"trans_stat":"S"}` || !sameTime(stored.UpdatedAt, at) {
				f.t.Fatalf("%s->%s stored %+v", tc.from, tc.to, stored)
			}
			if tc.to.Final() {
				if !sameTime(stored.FinishedAt, at) || !stored.NextQueryAt.IsZero() {
					f.t.Fatalf("final state: FinishedAt = %v, NextQueryAt = %v", stored.FinishedAt, stored.NextQueryAt)
				}
			} else if !stored.FinishedAt.IsZero() || !sameTime(stored.NextQueryAt, f.at(time.Minute)) {
				f.t.Fatalf("non-final state: FinishedAt = %v, NextQueryAt = %v", stored.FinishedAt, stored.NextQueryAt)
			}
		}
	}},
	{"TransitionKeepsFieldsThatAreNotGiven", func(f *fixture) {
		p := f.payment(func(p *store.Payment) {
			p.NkpSeqID, p.PartyOrderID, p.OutTransID = "n1", "p1", "o1"
			p.UpstreamFields = json.RawMessage(`{"a":1}`)
		})
		got, applied, err := f.s.TransitionPayment(f.ctx, p.ID, store.Transition{To: store.StatusProcessing, At: f.now})
		noErr(f.t, "TransitionPayment", err)
		if !applied || got.NkpSeqID != "n1" || got.PartyOrderID != "p1" || got.OutTransID != "o1" ||
			string(got.UpstreamFields) != `{"a":1}` {
			f.t.Fatalf("applied = %v, payment %+v", applied, got)
		}
		got, _, err = f.s.TransitionPayment(f.ctx, p.ID, store.Transition{To: store.StatusSucceeded,
			PartyOrderID: "p2", OutTransID: "o2", At: f.now})
		noErr(f.t, "TransitionPayment", err)
		if got.NkpSeqID != "n1" || got.PartyOrderID != "p2" || got.OutTransID != "o2" {
			f.t.Fatalf("payment %+v", got)
		}
	}},
	{"TransitionRefusesBadInput", func(f *fixture) {
		p := f.payment()
		for _, tr := range []store.Transition{
			{To: ""},
			{To: "paid"},
			{To: store.StatusSucceeded, UpstreamFields: json.RawMessage(`{`)},
			{To: store.StatusSucceeded, Event: &store.Event{ID: "", Type: "payment.succeeded", Payload: json.RawMessage(`{}`)}},
			{To: store.StatusSucceeded, Event: &store.Event{ID: "e", Type: "payment.succeeded", Payload: json.RawMessage(`{`)}},
		} {
			_, _, err := f.s.TransitionPayment(f.ctx, p.ID, tr)
			wantErr(f.t, "TransitionPayment", err, store.ErrInvalid)
		}
		wantEqual(f.t, "payment after refusals", f.getPayment(p.ID), p)
		if c := f.counts(); c[store.EventPending] != 0 {
			f.t.Fatalf("events after refusals: %v", c)
		}
	}},
	{"TransitionInsertsEventOnce", func(f *fixture) {
		p := f.payment()
		ev := &store.Event{ID: "evt_paid_" + p.ID, Type: "payment.succeeded", Payload: json.RawMessage(`{"n":1}`)}
		_, applied, err := f.s.TransitionPayment(f.ctx, p.ID, store.Transition{To: store.StatusSucceeded, At: f.at(time.Second), Event: ev})
		noErr(f.t, "TransitionPayment", err)
		if !applied {
			f.t.Fatal("first success not applied")
		}
		got := f.getEvent(ev.ID)
		if got.ObjectID != p.ID || got.OrderKey != p.ID || got.Status != store.EventPending || got.Seq <= 0 ||
			string(got.Payload) != `{"n":1}` || !sameTime(got.CreatedAt, f.at(time.Second)) ||
			!sameTime(got.NextAttemptAt, f.at(time.Second)) {
			f.t.Fatalf("event %+v", got)
		}
		// The same notification again: not applied, no second event.
		dup := &store.Event{ID: ev.ID, Type: "payment.succeeded", Payload: json.RawMessage(`{"n":2}`)}
		_, applied, err = f.s.TransitionPayment(f.ctx, p.ID, store.Transition{To: store.StatusSucceeded, Event: dup})
		noErr(f.t, "TransitionPayment again", err)
		if applied {
			f.t.Fatal("second success applied")
		}
		// An applied transition whose event id exists keeps the first event.
		q := f.payment()
		_, applied, err = f.s.TransitionPayment(f.ctx, q.ID, store.Transition{To: store.StatusSucceeded, Event: dup})
		noErr(f.t, "TransitionPayment with a known event id", err)
		if !applied {
			f.t.Fatal("transition with a known event id not applied")
		}
		if string(f.getEvent(ev.ID).Payload) != `{"n":1}` {
			f.t.Fatal("the existing event was overwritten")
		}
		if c := f.counts(); c[store.EventPending] != 1 {
			f.t.Fatalf("pending events = %d, want 1", c[store.EventPending])
		}
	}},
	{"ConcurrentTransitionsApplyOnce", func(f *fixture) {
		p := f.payment()
		const n = 8
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			applied int
			errs    []error
		)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ev := &store.Event{ID: "evt_" + p.ID + "_succeeded", Type: "payment.succeeded",
					Payload: json.RawMessage(`{"worker":` + string(rune('0'+i)) + `}`)}
				_, ok, err := f.s.TransitionPayment(f.ctx, p.ID, store.Transition{To: store.StatusSucceeded, Event: ev})
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
		if len(errs) > 0 {
			f.t.Fatalf("errors: %v", errs)
		}
		if applied != 1 {
			f.t.Fatalf("%d of %d concurrent transitions applied, want 1", applied, n)
		}
		if c := f.counts(); c[store.EventPending] != 1 {
			f.t.Fatalf("pending events = %d, want 1", c[store.EventPending])
		}
	}},
	{"UpdatePaymentAccepted", func(f *fixture) {
		p := f.payment()
		params := json.RawMessage(`{"appId":"wx1","paySign":"abc"}`)
		got, applied, err := f.s.UpdatePaymentAccepted(f.ctx, p.ID, "nkp-9", "party-9", params,
			store.Transition{To: store.StatusProcessing, TransStat: "P", At: f.at(time.Second)})
		noErr(f.t, "UpdatePaymentAccepted", err)
		if !applied || got.Status != store.StatusProcessing || got.NkpSeqID != "nkp-9" || got.PartyOrderID != "party-9" ||
			string(got.PayParams) != string(params) || got.TransStat != "P" {
			f.t.Fatalf("applied = %v, payment %+v", applied, got)
		}
		wantEqual(f.t, "stored", f.getPayment(p.ID), got)

		// The notification finished the order before the answer was handled:
		// the serials and parameters are kept, the state is not moved back.
		q := f.payment(func(p *store.Payment) { p.Status = store.StatusSucceeded })
		ev := f.event(q.ID)
		got, applied, err = f.s.UpdatePaymentAccepted(f.ctx, q.ID, "nkp-10", "party-10", params,
			store.Transition{To: store.StatusProcessing, TransStat: "P", Event: ev})
		noErr(f.t, "UpdatePaymentAccepted on a finished payment", err)
		if applied || got.Status != store.StatusSucceeded || got.NkpSeqID != "nkp-10" || string(got.PayParams) != string(params) ||
			got.TransStat != q.TransStat {
			f.t.Fatalf("applied = %v, payment %+v", applied, got)
		}
		wantEqual(f.t, "stored", f.getPayment(q.ID), got)
		_, err = f.s.GetEvent(f.ctx, ev.ID)
		wantErr(f.t, "event of a transition not applied", err, store.ErrNotFound)

		// An empty target records the serials only.
		r := f.payment()
		got, applied, err = f.s.UpdatePaymentAccepted(f.ctx, r.ID, "nkp-11", "", nil, store.Transition{})
		noErr(f.t, "UpdatePaymentAccepted without a move", err)
		if applied || got.Status != store.StatusPending || got.NkpSeqID != "nkp-11" || got.PayParams != nil {
			f.t.Fatalf("applied = %v, payment %+v", applied, got)
		}
		_, _, err = f.s.UpdatePaymentAccepted(f.ctx, r.ID, "", "", json.RawMessage(`{`), store.Transition{})
		wantErr(f.t, "bad pay params", err, store.ErrInvalid)
	}},
	{"ReplaceOrder", func(f *fixture) {
		p := f.payment(func(p *store.Payment) { p.NkpSeqID, p.PartyOrderID = "nkp-old", "party-old" })
		record := json.RawMessage(`{"$order":{"request":{"req_seq_id":"seq-new"}}}`)
		got, err := f.s.ReplaceOrder(f.ctx, p.ID, p.ReqDate, p.ReqSeqID, "20250302", "seq-new", record, f.at(time.Minute))
		noErr(f.t, "ReplaceOrder", err)
		if got.ReqDate != "20250302" || got.ReqSeqID != "seq-new" || got.NkpSeqID != "" || got.PartyOrderID != "" ||
			string(got.PayParams) != string(record) || !sameTime(got.UpdatedAt, f.at(time.Minute)) ||
			got.Status != p.Status || got.OutTradeNo != p.OutTradeNo {
			f.t.Fatalf("payment after ReplaceOrder %+v", got)
		}
		wantEqual(f.t, "stored", f.getPayment(p.ID), got)
		bySeq, err := f.s.GetPaymentByReqSeqID(f.ctx, p.MerchantID, "20250302", "seq-new")
		noErr(f.t, "GetPaymentByReqSeqID of the new order", err)
		if bySeq.ID != p.ID {
			f.t.Fatalf("the new serial finds %s, want %s", bySeq.ID, p.ID)
		}
		_, err = f.s.GetPaymentByReqSeqID(f.ctx, p.MerchantID, p.ReqDate, p.ReqSeqID)
		wantErr(f.t, "the old serial", err, store.ErrNotFound)

		// Only from the order the payment stands for: a second replacement
		// from the old order loses.
		_, err = f.s.ReplaceOrder(f.ctx, p.ID, p.ReqDate, p.ReqSeqID, "20250302", "seq-other", record, time.Time{})
		wantErr(f.t, "replace from an order the payment left", err, store.ErrConflict)
		// Not onto a serial another payment has.
		q := f.payment()
		_, err = f.s.ReplaceOrder(f.ctx, p.ID, "20250302", "seq-new", q.ReqDate, q.ReqSeqID, record, time.Time{})
		wantErr(f.t, "replace onto a taken serial", err, store.ErrConflict)
		wantEqual(f.t, "after refused replacements", f.getPayment(p.ID), got)
		// Never a final payment.
		done := f.payment(func(p *store.Payment) { p.Status = store.StatusClosed })
		_, err = f.s.ReplaceOrder(f.ctx, done.ID, done.ReqDate, done.ReqSeqID, "20250302", "seq-done", record, time.Time{})
		wantErr(f.t, "replace the order of a final payment", err, store.ErrConflict)
		_, err = f.s.ReplaceOrder(f.ctx, "pay_nope", "20250301", "x", "20250302", "y", record, time.Time{})
		wantErr(f.t, "unknown payment", err, store.ErrNotFound)
		_, err = f.s.ReplaceOrder(f.ctx, q.ID, q.ReqDate, q.ReqSeqID, "", "y", record, time.Time{})
		wantErr(f.t, "no new date", err, store.ErrInvalid)
		_, err = f.s.ReplaceOrder(f.ctx, q.ID, q.ReqDate, q.ReqSeqID, "20250302", "y", json.RawMessage(`{`), time.Time{})
		wantErr(f.t, "bad pay params", err, store.ErrInvalid)
	}},
	{"RecordPaymentError", func(f *fixture) {
		p := f.payment()
		noErr(f.t, "RecordPaymentError", f.s.RecordPaymentError(f.ctx, p.ID, "upstream 99999999", f.at(time.Minute)))
		got := f.getPayment(p.ID)
		if got.LastError != "upstream 99999999" || !sameTime(got.UpdatedAt, f.at(time.Minute)) || got.Status != p.Status {
			f.t.Fatalf("payment %+v", got)
		}
	}},
}

// second returns the error of a call that also returns a value.
func second[T any](_ T, err error) error { return err }
