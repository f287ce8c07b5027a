package payments_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"sync"
	"testing"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/payments"
	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// recorder passes calls to the sandbox and keeps what was sent, by path.
type recorder struct {
	up   payments.Upstream
	mu   sync.Mutex
	sent map[string][]map[string]any
}

func (r *recorder) Call(ctx context.Context, path string, data map[string]any) (map[string]any, error) {
	r.mu.Lock()
	r.sent[path] = append(r.sent[path], maps.Clone(data))
	r.mu.Unlock()
	return r.up.Call(ctx, path, data)
}

func (r *recorder) last(t *testing.T, path string) map[string]any {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sent[path]) == 0 {
		t.Fatalf("nothing sent to %s", path)
	}
	return r.sent[path][len(r.sent[path])-1]
}

func (r *recorder) count(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sent[path])
}

// recorded returns a service over the fixture's store and ledger whose
// upstream calls are recorded.
func (f *fixture) recorded(merchants ...string) (*payments.Service, *recorder) {
	f.t.Helper()
	rec := &recorder{up: f.sb.NKPClient(), sent: map[string][]map[string]any{}}
	svc, err := payments.New(payments.Config{MerchantID: f.sb.HuifuID, Merchants: merchants, NotifyURL: "http://127.0.0.1:8001/notify", MaxAmountFen: 100_000},
		payments.Deps{Store: f.st, Ledger: f.led, Upstream: rec, Flows: f.flows, Telemetry: telemetry.Bundle{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		f.t.Fatal(err)
	}
	return svc, rec
}

// orgFields returns the org_ fields of a refund request that name the
// original order, other than org_req_date.
func orgFields(req map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"org_req_seq_id", "org_nkp_seq_id", "org_party_order_id"} {
		if v, ok := req[k]; ok {
			out[k] = v
		}
	}
	return out
}

// A payment the sidecar placed is refunded by each of its four
// identifiers; the refund sent upstream names the original order by the
// identifier given (req_seq_id for the sidecar's id and out_trade_no), and
// the sandbox books each.
func TestRefundByEachIdentifier(t *testing.T) {
	f := newFixture(t)
	svc, rec := f.recorded()
	cases := []struct {
		by    string
		ref   func(p store.Payment) payments.PaymentRef
		field string
		value func(p store.Payment) string
	}{
		{"payment_id", func(p store.Payment) payments.PaymentRef { return payments.PaymentRef{PaymentID: p.ID} },
			"org_req_seq_id", func(p store.Payment) string { return p.ReqSeqID }},
		{"out_trade_no", func(p store.Payment) payments.PaymentRef { return payments.PaymentRef{OutTradeNo: p.OutTradeNo} },
			"org_req_seq_id", func(p store.Payment) string { return p.ReqSeqID }},
		{"nkp_seq_id", func(p store.Payment) payments.PaymentRef { return payments.PaymentRef{NkpSeqID: p.NkpSeqID} },
			"org_nkp_seq_id", func(p store.Payment) string { return p.NkpSeqID }},
		{"party_order_id", func(p store.Payment) payments.PaymentRef {
			return payments.PaymentRef{PartyOrderID: p.PartyOrderID, MerchantID: f.sb.HuifuID}
		}, "org_party_order_id", func(p store.Payment) string { return p.PartyOrderID }},
	}
	for _, c := range cases {
		t.Run(c.by, func(t *testing.T) {
			out, err := f.create(order("by-" + c.by))
			if err != nil {
				t.Fatal(err)
			}
			f.sb.SettlePayment(t, out.Payment.ReqDate, out.Payment.ReqSeqID, sandbox.ResultPaid)
			if p, err := f.svc.Get(f.ctx, out.Payment.ID); err != nil || p.Status != client.StatusSucceeded {
				t.Fatalf("payment = %+v, %v", p, err)
			}
			p := f.stored("by-" + c.by)
			if p.NkpSeqID == "" || p.PartyOrderID == "" {
				t.Fatalf("stored payment lacks its serials: %+v", p)
			}
			queries := rec.count(nkp.PathPaymentQuery)
			booked := f.sb.Stats(t, "").Refunds
			r, created, known, err := svc.RefundBy(f.ctx, payments.RefundByInput{Ref: c.ref(p),
				Request: client.CreateRefundRequest{OutRefundNo: "rf-" + c.by, AmountFen: 3}, AmountGiven: true, Hash: c.by})
			if err != nil || !created || !known || r.PaymentID != p.ID || r.Status != client.StatusProcessing || r.NkpSeqID == "" {
				t.Fatalf("refund = %+v %v %v %v", r, created, known, err)
			}
			sent := rec.last(t, nkp.PathRefund)
			if got, want := orgFields(sent), map[string]any{c.field: c.value(p)}; !maps.Equal(got, want) || sent["org_req_date"] != p.ReqDate {
				t.Fatalf("refund sent with %v org_req_date %v, want %v and %s", got, sent["org_req_date"], want, p.ReqDate)
			}
			if rec.count(nkp.PathPaymentQuery) != queries {
				t.Error("a payment the sidecar holds was looked up upstream")
			}
			if n := f.sb.Stats(t, "").Refunds; n != booked+1 {
				t.Errorf("the sandbox booked %d refunds, want %d", n, booked+1)
			}
			refunds, err := f.sb.Control.Refunds(f.ctx, sandbox.Filter{HuifuID: f.sb.HuifuID})
			if err != nil {
				t.Fatal(err)
			}
			if last := refunds[len(refunds)-1]; last.ReqSeqID != r.ReqSeqID || last.OrgReqSeqID != p.ReqSeqID {
				t.Errorf("the sandbox's last refund %+v is not %s of %s", last, r.ReqSeqID, p.ReqSeqID)
			}
		})
	}
}

// placeOutside places a paid order directly in the sandbox, with an
// upstream client of the merchant's own, as an application that does not
// go through the sidecar would.
func (f *fixture) placeOutside(amountFen int64) nkp.JSPayResponse {
	f.t.Helper()
	now := f.clock.Now()
	req := nkp.JSPayRequest{ReqDate: nkp.ReqDate(now), ReqSeqID: nkp.NewReqSeqID(now), HuifuID: f.sb.HuifuID,
		GoodsDesc: "placed elsewhere", TradeType: upstream.TradeAlipayNative, TransAmt: nkp.Fen(amountFen),
		NotifyURL: "http://127.0.0.1:8001/elsewhere"}
	resp, err := f.sb.NKPClient().JSPay(f.ctx, req)
	if err != nil || !resp.Accepted() {
		f.t.Fatalf("jspay outside the sidecar: %+v %v", resp, err)
	}
	f.sb.SettlePayment(f.t, req.ReqDate, req.ReqSeqID, sandbox.ResultPaid)
	resp.ReqDate, resp.ReqSeqID = req.ReqDate, req.ReqSeqID
	return resp
}

// A payment placed outside the sidecar is found upstream by the
// identifier the refund names (a payment query by that identifier), kept
// like the sidecar's own with a payment.succeeded event whose source is
// "import", and refunded; a second refund finds it in the store.
func TestRefundOfAPaymentPlacedOutside(t *testing.T) {
	f := newFixture(t)
	svc, rec := f.recorded()
	cases := []struct {
		by         string
		ref        func(o nkp.JSPayResponse) payments.PaymentRef
		queryField string
		refundOrg  string
		value      func(o nkp.JSPayResponse) string
	}{
		{"out_trade_no", func(o nkp.JSPayResponse) payments.PaymentRef {
			return payments.PaymentRef{OutTradeNo: o.ReqSeqID, PaymentDate: o.ReqDate}
		}, "org_req_seq_id", "org_req_seq_id", func(o nkp.JSPayResponse) string { return o.ReqSeqID }},
		{"nkp_seq_id", func(o nkp.JSPayResponse) payments.PaymentRef { return payments.PaymentRef{NkpSeqID: o.NkpSeqID} },
			"org_nkp_seq_id", "org_nkp_seq_id", func(o nkp.JSPayResponse) string { return o.NkpSeqID }},
		{"party_order_id", func(o nkp.JSPayResponse) payments.PaymentRef {
			return payments.PaymentRef{PartyOrderID: o.PartyOrderID}
		}, "out_ord_id", "org_party_order_id", func(o nkp.JSPayResponse) string { return o.PartyOrderID }},
	}
	for _, c := range cases {
		t.Run(c.by, func(t *testing.T) {
			o := f.placeOutside(50)
			r, created, known, err := svc.RefundBy(f.ctx, payments.RefundByInput{Ref: c.ref(o),
				Request: client.CreateRefundRequest{OutRefundNo: "out-" + c.by, AmountFen: 20}, AmountGiven: true, Hash: c.by})
			if err != nil || !created || !known || r.Status != client.StatusProcessing {
				t.Fatalf("refund = %+v %v %v %v", r, created, known, err)
			}
			q := rec.last(t, nkp.PathPaymentQuery)
			if q[c.queryField] != c.value(o) || q["org_req_date"] != o.ReqDate {
				t.Fatalf("payment query sent %v, want %s %s", q, c.queryField, c.value(o))
			}
			sent := rec.last(t, nkp.PathRefund)
			if got, want := orgFields(sent), map[string]any{c.refundOrg: c.value(o)}; !maps.Equal(got, want) {
				t.Fatalf("refund sent with %v, want %v", got, want)
			}
			p, err := f.st.GetPayment(f.ctx, r.PaymentID)
			if err != nil {
				t.Fatal(err)
			}
			if p.OutTradeNo != o.ReqSeqID || p.ReqSeqID != o.ReqSeqID || p.ReqDate != o.ReqDate || p.NkpSeqID != o.NkpSeqID ||
				p.PartyOrderID != o.PartyOrderID || p.AmountFen != 50 || p.Status != store.StatusSucceeded ||
				p.TradeType != upstream.TradeAlipayNative || p.Flow != client.FlowAlipayNative {
				t.Fatalf("imported payment %+v", p)
			}
			e, err := f.st.GetEvent(f.ctx, ledger.EventID(p.ID, store.StatusSucceeded))
			if err != nil {
				t.Fatalf("no payment.succeeded event for the imported payment: %v", err)
			}
			var ev client.Event
			if err := json.Unmarshal(e.Payload, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Type != client.EventPaymentSucceeded || ev.Data.Source != ledger.SourceImport || ev.Data.Payment == nil || ev.Data.Payment.ID != p.ID {
				t.Fatalf("import event %+v", ev)
			}

			// Kept like the sidecar's own: the next refund by the same
			// identifier asks the upstream nothing about the payment, and
			// the two refunds together cannot exceed it.
			queries := rec.count(nkp.PathPaymentQuery)
			r2, created, _, err := svc.RefundBy(f.ctx, payments.RefundByInput{Ref: c.ref(o),
				Request: client.CreateRefundRequest{OutRefundNo: "out2-" + c.by, AmountFen: 30}, AmountGiven: true, Hash: c.by + "2"})
			if err != nil || !created || r2.PaymentID != p.ID {
				t.Fatalf("second refund = %+v %v %v", r2, created, err)
			}
			if rec.count(nkp.PathPaymentQuery) != queries {
				t.Error("the imported payment was looked up upstream again")
			}
			_, _, _, err = svc.RefundBy(f.ctx, payments.RefundByInput{Ref: c.ref(o),
				Request: client.CreateRefundRequest{OutRefundNo: "out3-" + c.by, AmountFen: 1}, AmountGiven: true, Hash: c.by + "3"})
			wantCode(t, err, payments.CodeRefundExceedsPayment, "amount_fen")
		})
	}
}

// A refund that names its payment in no way, in several, or badly is
// refused before anything is looked up, stored or sent; one the upstream
// does not know either is not found, and nothing is stored.
func TestRefundByRefusesBadReferences(t *testing.T) {
	f := newFixture(t)
	// A service provider that trades for one more merchant than the
	// default one.
	svc, rec := f.recorded("6666000100000999")
	refund := func(ref payments.PaymentRef) error {
		_, _, _, err := svc.RefundBy(f.ctx, payments.RefundByInput{Ref: ref,
			Request: client.CreateRefundRequest{OutRefundNo: "bad", AmountFen: 1}, AmountGiven: true, Hash: "h"})
		return err
	}
	wantCode(t, refund(payments.PaymentRef{}), payments.CodeMissingField, "payment_id")
	wantCode(t, refund(payments.PaymentRef{OutTradeNo: "a", NkpSeqID: "b"}), payments.CodeInvalidField, "nkp_seq_id")
	wantCode(t, refund(payments.PaymentRef{PaymentID: "pay_x", PartyOrderID: "c"}), payments.CodeInvalidField, "party_order_id")
	wantCode(t, refund(payments.PaymentRef{OutTradeNo: "a", PaymentDate: "2026-01-01"}), payments.CodeInvalidField, "payment_date")
	wantCode(t, refund(payments.PaymentRef{NkpSeqID: "x", MerchantID: "abc"}), payments.CodeInvalidField, "merchant_id")
	wantCode(t, refund(payments.PaymentRef{NkpSeqID: "x", MerchantID: "6666000100000998"}), payments.CodeUnknownMerchant, "merchant_id")
	wantCode(t, refund(payments.PaymentRef{OutTradeNo: "has space"}), payments.CodeInvalidField, "out_trade_no")
	wantCode(t, refund(payments.PaymentRef{PaymentID: "pay_unknown"}), payments.CodeNotFound, "")
	if n := len(rec.sent); n != 0 {
		t.Fatalf("bad references sent %d kinds of call upstream", n)
	}
	wantCode(t, refund(payments.PaymentRef{NkpSeqID: "0030SBX202601010000000999"}), payments.CodeNotFound, "")
	if rec.count(nkp.PathPaymentQuery) != 1 || rec.count(nkp.PathRefund) != 0 {
		t.Fatalf("an unknown payment: %d queries, %d refunds sent", rec.count(nkp.PathPaymentQuery), rec.count(nkp.PathRefund))
	}
	if _, err := f.st.GetRefundByOutRefundNo(f.ctx, f.sb.HuifuID, "bad"); err == nil {
		t.Fatal("a refused refund was stored")
	}
}
