package e2e

import (
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// The whole process: a payment the sidecar placed is refunded four times,
// once by each of its identifiers, through POST /v1/refunds; a payment
// placed directly in the sandbox is refunded by its channel order id, its
// import reaches the application as payment.succeeded with source
// "import", and its refund's notification, sent to the sidecar, ends in
// refund.succeeded.
func TestRefundByEveryIdentifierThroughTheProcess(t *testing.T) {
	sb := sandboxtest.Start(t)
	hook := newWebhookSink(t)
	e, api, notify, admin := sidecarEnv(t, sb.URL, t.TempDir(), hook.env()...)
	sc := startSidecar(t, e, api, notify, admin)
	ctx := ctxTimeout(t, 90*time.Second)

	p, err := sc.Client.CreatePayment(ctx, client.CreatePaymentRequest{Flow: client.FlowAlipayNative, OutTradeNo: "four-ways", AmountFen: 100, Description: "four ways"})
	if err != nil {
		t.Fatal(err)
	}
	sb.SettlePayment(t, p.ReqDate, p.ReqSeqID, sandbox.ResultPaid)
	waitFor(t, 20*time.Second, "payment succeeded", func() (bool, string) {
		got, err := sc.Client.GetPayment(ctx, p.ID)
		if err == nil {
			p = got
		}
		return err == nil && got.Status == client.StatusSucceeded && got.NkpSeqID != "" && got.PartyOrder != "", ""
	})
	for i, req := range []client.RefundByRequest{
		{PaymentID: p.ID}, {OutTradeNo: p.OutTradeNo}, {NkpSeqID: p.NkpSeqID}, {PartyOrderID: p.PartyOrder},
	} {
		req.OutRefundNo, req.AmountFen = "four-"+string(rune('a'+i)), 10
		r, err := sc.Client.RefundBy(ctx, req)
		if err != nil || r.PaymentID != p.ID || r.Status != client.StatusProcessing {
			t.Fatalf("refund %+v: %+v %v", req, r, err)
		}
	}
	refunds, err := sb.Control.Refunds(ctx, sandbox.Filter{HuifuID: sb.HuifuID})
	if err != nil || len(refunds) != 4 {
		t.Fatalf("sandbox refunds %+v %v, want 4", refunds, err)
	}
	for _, r := range refunds {
		if r.OrgReqSeqID != p.ReqSeqID {
			t.Errorf("sandbox refund %+v is not of %s", r, p.ReqSeqID)
		}
	}

	now := time.Now()
	order := nkp.JSPayRequest{ReqDate: nkp.ReqDate(now), ReqSeqID: nkp.NewReqSeqID(now), HuifuID: sb.HuifuID,
		GoodsDesc: "elsewhere", TradeType: upstream.TradeAlipayNative, TransAmt: nkp.Fen(70), NotifyURL: "http://127.0.0.1:8999/elsewhere"}
	placed, err := sb.NKPClient().JSPay(ctx, order)
	if err != nil || !placed.Accepted() {
		t.Fatalf("jspay outside the sidecar: %+v %v", placed, err)
	}
	sb.SettlePayment(t, order.ReqDate, order.ReqSeqID, sandbox.ResultPaid)
	r, err := sc.Client.RefundBy(ctx, client.RefundByRequest{PartyOrderID: placed.PartyOrderID, OutRefundNo: "outside-1", AmountFen: 70})
	if err != nil || r.Status != client.StatusProcessing {
		t.Fatalf("refund of a payment placed outside: %+v %v", r, err)
	}
	imported, err := sc.Client.GetPayment(ctx, r.PaymentID)
	if err != nil || imported.OutTradeNo != order.ReqSeqID || imported.AmountFen != 70 || imported.Status != client.StatusSucceeded {
		t.Fatalf("imported payment %+v %v", imported, err)
	}
	sb.SettleRefund(t, r.ReqDate, r.ReqSeqID, sandbox.ResultSucceeded)
	waitFor(t, 30*time.Second, "the imported payment's and its refund's events", func() (bool, string) {
		var paid, refunded bool
		for _, ev := range hook.received() {
			switch {
			case ev.Event.Type == client.EventPaymentSucceeded && ev.Event.Data.Payment != nil && ev.Event.Data.Payment.ID == imported.ID:
				if ev.Event.Data.Source != "import" {
					return false, "payment.succeeded of the imported payment has source " + ev.Event.Data.Source
				}
				paid = true
			case ev.Event.Type == client.EventRefundSucceeded && ev.Event.Data.Refund != nil && ev.Event.Data.Refund.ID == r.ID:
				refunded = paid // in order per payment
			}
		}
		return paid && refunded, ""
	})
}
