package payments_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/plugin/mockflow"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/payments"
	"github.com/paysidecar/paysidecar/sidecar/pluginhost"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// checkoutFlows runs the mock as "mini", a flow with launch links that
// needs a buyer, beside "plain", which has none.
type checkoutFlows struct{ f plugin.Flow }

func (c checkoutFlows) Flow(name string) (plugin.Flow, error) {
	if name != "mini" && name != "plain" {
		return nil, fmt.Errorf("flow %s: %w", name, pluginhost.ErrUnknownFlow)
	}
	return c.f, nil
}

func (checkoutFlows) Infos() []plugin.Info {
	return []plugin.Info{
		{Name: "mini", TradeType: upstream.TradeAlipayNative, Buyer: plugin.BuyerRequired, Capabilities: []plugin.Capability{plugin.CapLaunchLinks}},
		{Name: "plain", TradeType: upstream.TradeAlipayNative},
	}
}

// checkoutService is the fixture's service with checkout flows and the
// fixture's clock; a code "bad" is refused by the flow.
func (f *fixture) checkoutService() *payments.Service {
	f.t.Helper()
	f.mock.Override(mockflow.Funcs{ShapeOrder: func(_ context.Context, in plugin.OrderInput) (plugin.OrderShape, error) {
		if in.Buyer.Code == "bad" {
			return plugin.OrderShape{}, &plugin.Error{Code: plugin.CodeCodeInvalid, Field: "code", Message: "bad code"}
		}
		return plugin.OrderShape{TradeType: upstream.TradeAlipayNative}, nil
	}})
	svc, err := payments.New(payments.Config{MerchantID: f.sb.HuifuID, NotifyURL: "http://127.0.0.1:8001/notify", MaxAmountFen: 100_000},
		payments.Deps{Store: f.st, Ledger: f.led, Upstream: f.sb.NKPClient(), Flows: checkoutFlows{f.flows.flow},
			Telemetry: telemetry.Bundle{Logger: slog.New(slog.DiscardHandler), Now: f.clock.Now}})
	if err != nil {
		f.t.Fatal(err)
	}
	return svc
}

func TestCheckoutLifecycle(t *testing.T) {
	f := newFixture(t)
	svc := f.checkoutService()
	c, err := svc.CreateCheckout(f.ctx, payments.CreateCheckoutInput{AmountGiven: true,
		Request: client.CreateCheckoutRequest{OutTradeNo: "c-1", AmountFen: 42, Description: "tea", ExpiresInSeconds: 120}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Flow != "mini" || c.Status != "open" || c.MerchantID != f.sb.HuifuID || !strings.Contains(c.Links.URLScheme, "checkout="+c.ID) ||
		c.Links.URLSchemeExpiresAt == nil || !c.Links.URLSchemeExpiresAt.Equal(c.ExpiresAt) {
		t.Fatalf("checkout = %+v", c)
	}
	if f.requests("/v2/trade/payment/jspay") != 0 {
		t.Fatal("creating a checkout sent an order")
	}
	// A bad code stores nothing and leaves the checkout open.
	_, err = svc.PayCheckout(f.ctx, payments.PayCheckoutInput{CheckoutID: c.ID, Request: client.PayCheckoutRequest{Code: "bad"}})
	wantCode(t, err, payments.CodeCodeInvalid, "code")
	if got, _ := svc.GetCheckout(f.ctx, c.ID); got.Status != "open" {
		t.Fatalf("after a bad code the checkout is %q", got.Status)
	}
	out, err := svc.PayCheckout(f.ctx, payments.PayCheckoutInput{CheckoutID: c.ID, Request: client.PayCheckoutRequest{Code: "good"}})
	if err != nil || out.Payment.OutTradeNo != "c-1" || out.Payment.AmountFen != 42 || out.Payment.Status != "processing" ||
		out.Payment.Metadata["checkout_id"] != c.ID {
		t.Fatalf("PayCheckout = %+v, %v", out, err)
	}
	got, err := svc.GetCheckout(f.ctx, c.ID)
	if err != nil || got.Status != "used" || got.PaymentID != out.Payment.ID || got.Payment == nil {
		t.Fatalf("paid checkout = %+v, %v", got, err)
	}
	_, err = svc.PayCheckout(f.ctx, payments.PayCheckoutInput{CheckoutID: c.ID, Request: client.PayCheckoutRequest{Code: "again"}})
	wantCode(t, err, payments.CodeCheckoutPaid, "")
	if n := f.requests("/v2/trade/payment/jspay"); n != 1 {
		t.Fatalf("%d orders sent, want 1", n)
	}
}

func TestCheckoutExpires(t *testing.T) {
	f := newFixture(t)
	svc := f.checkoutService()
	c, err := svc.CreateCheckout(f.ctx, payments.CreateCheckoutInput{AmountGiven: true,
		Request: client.CreateCheckoutRequest{OutTradeNo: "c-2", AmountFen: 42, Description: "tea", ExpiresInSeconds: 60}})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(61 * time.Second)
	if got, _ := svc.GetCheckout(f.ctx, c.ID); got.Status != "expired" {
		t.Fatalf("status = %q, want expired", got.Status)
	}
	_, err = svc.PayCheckout(f.ctx, payments.PayCheckoutInput{CheckoutID: c.ID, Request: client.PayCheckoutRequest{Code: "good"}})
	wantCode(t, err, payments.CodeCheckoutExpired, "")
	if n := f.requests("/v2/trade/payment/jspay"); n != 0 {
		t.Fatalf("an expired checkout sent %d orders", n)
	}
}

func TestCheckoutRefusesBadRequests(t *testing.T) {
	f := newFixture(t)
	svc := f.checkoutService()
	req := func(mod func(*client.CreateCheckoutRequest)) client.CreateCheckoutRequest {
		r := client.CreateCheckoutRequest{Flow: "mini", OutTradeNo: "c-3", AmountFen: 1, Description: "tea"}
		mod(&r)
		return r
	}
	for _, tc := range []struct {
		req   client.CreateCheckoutRequest
		code  payments.Code
		field string
	}{
		{req(func(r *client.CreateCheckoutRequest) { r.Flow = "plain" }), payments.CodeUnsupported, "flow"},
		{req(func(r *client.CreateCheckoutRequest) { r.Flow = "nope" }), payments.CodeUnknownFlow, "flow"},
		{req(func(r *client.CreateCheckoutRequest) { r.AmountFen = 0 }), payments.CodeAmountInvalid, "amount_fen"},
		{req(func(r *client.CreateCheckoutRequest) { r.OutTradeNo = "a b" }), payments.CodeInvalidField, "out_trade_no"},
		{req(func(r *client.CreateCheckoutRequest) { r.ExpiresInSeconds = 30 }), payments.CodeInvalidField, "expires_in_seconds"},
		{req(func(r *client.CreateCheckoutRequest) { r.MerchantID = "x1" }), payments.CodeInvalidField, "merchant_id"},
	} {
		_, err := svc.CreateCheckout(f.ctx, payments.CreateCheckoutInput{Request: tc.req, AmountGiven: true})
		wantCode(t, err, tc.code, tc.field)
	}
	if calls := f.mock.Calls(); strings.Contains(strings.Join(calls, ","), "LaunchLinks") {
		t.Errorf("a refused checkout asked the flow for links: %v", calls)
	}
}

// TestCheckoutOutTradeNoTakenMeanwhile has the application place a payment
// of its own under a checkout's out_trade_no: paying the checkout is
// refused, and the checkout never names the application's payment.
func TestCheckoutOutTradeNoTakenMeanwhile(t *testing.T) {
	f := newFixture(t)
	svc := f.checkoutService()
	c, err := svc.CreateCheckout(f.ctx, payments.CreateCheckoutInput{AmountGiven: true,
		Request: client.CreateCheckoutRequest{OutTradeNo: "c-4", AmountFen: 42, Description: "tea"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Create(f.ctx, payments.CreateInput{AmountGiven: true, Hash: "app",
		Request: client.CreatePaymentRequest{Flow: "plain", OutTradeNo: "c-4", AmountFen: 42, Description: "tea"}}); err != nil {
		t.Fatal(err)
	}
	_, err = svc.PayCheckout(f.ctx, payments.PayCheckoutInput{CheckoutID: c.ID, Request: client.PayCheckoutRequest{Code: "good"}})
	wantCode(t, err, payments.CodeOutTradeNoConflict, "out_trade_no")
	got, err := svc.GetCheckout(f.ctx, c.ID)
	if err != nil || got.PaymentID != "" || got.Payment != nil || got.Status != "open" {
		t.Fatalf("the checkout after the conflict: %+v, %v", got, err)
	}
}
