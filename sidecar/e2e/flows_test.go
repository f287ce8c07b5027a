package e2e

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// env starts a sandbox and a sidecar against it, delivering to a webhook
// sink.
type env struct {
	sb   *sandboxtest.Instance
	sc   *sidecar
	hook *webhookSink
}

func newEnv(t *testing.T, extra ...string) *env {
	return newEnvWith(t, nil, extra...)
}

// newEnvWith is newEnv with sandbox options.
func newEnvWith(t *testing.T, opts []sandboxtest.Option, extra ...string) *env {
	t.Helper()
	sb := sandboxtest.Start(t, opts...)
	hook := newWebhookSink(t)
	e, api, notify, admin := sidecarEnv(t, sb.URL, t.TempDir(), append(hook.env(), extra...)...)
	return &env{sb: sb, hook: hook, sc: startSidecar(t, e, api, notify, admin)}
}

// waitStatus polls GET /v1/payments/{id} (the query path) until the
// payment has status.
func (e *env) waitStatus(t *testing.T, id, status string) client.Payment {
	t.Helper()
	var p client.Payment
	waitFor(t, 20*time.Second, "payment "+id+" "+status, func() (bool, string) {
		var err error
		p, err = e.sc.Client.GetPayment(ctxTimeout(t, 10*time.Second), id)
		if err != nil {
			return false, err.Error()
		}
		return p.Status == status, p.Status
	})
	return p
}

// waitEvent waits for a webhook event of type typ about object id.
func (e *env) waitEvent(t *testing.T, typ, id string) received {
	t.Helper()
	var got received
	waitFor(t, 20*time.Second, typ+" for "+id, func() (bool, string) {
		for _, r := range e.hook.received() {
			if r.Event.Type == typ && ((r.Event.Data.Payment != nil && r.Event.Data.Payment.ID == id) || (r.Event.Data.Refund != nil && r.Event.Data.Refund.ID == id)) {
				got = r
				return true, ""
			}
		}
		return false, "events so far: " + strings.Join(typesOf(e.hook.received()), ",")
	})
	return got
}

func typesOf(rs []received) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Event.Type)
	}
	return out
}

func TestFlowsEndToEnd(t *testing.T) {
	// The sandbox drops every notification, so each result below reaches
	// the sidecar through the query path alone.
	e := newEnvWith(t, []sandboxtest.Option{sandboxtest.WithFaults(sandbox.Faults{Notify: sandbox.NotifyFaults{DropRate: 1}})})
	dev := e.sb.Keys

	t.Run("wechat-jsapi", func(t *testing.T) {
		code := e.sb.MintWeChatCode(t, sandbox.DevWeChatAppID, "buyer-jsapi")
		p, err := e.sc.Client.CreatePayment(ctxTimeout(t, 20*time.Second), client.CreatePaymentRequest{
			Flow: client.FlowWeChatJSAPI, OutTradeNo: "jsapi-1", AmountFen: 1, Description: "测试商品 <jsapi> & co",
			Buyer: &client.Buyer{Code: code.Code}, ClientIP: "203.0.113.9",
		})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != client.StatusProcessing || p.TradeType != upstream.TradeWeChatJSAPI || p.AmountFen != 1 || p.NkpSeqID == "" {
			t.Fatalf("payment = %+v", p)
		}
		var pi upstream.PayInfo
		if err := json.Unmarshal(p.PayParams, &pi); err != nil {
			t.Fatalf("pay_params %s: %v", p.PayParams, err)
		}
		if pi.AppID != sandbox.DevWeChatAppID || !strings.HasPrefix(pi.Package, "prepay_id=") || pi.SignType != "RSA" || pi.TimeStamp == "" || pi.NonceStr == "" {
			t.Fatalf("getBrandWCPayRequest parameters = %+v", pi)
		}
		if err := nkp.Verify(dev.WeChat.Public, []byte(sandbox.PaySignMessage(pi)), pi.PaySign); err != nil {
			t.Fatalf("paySign does not verify with the sandbox's WeChat key: %v", err)
		}
		e.sb.SettlePayment(t, p.ReqDate, p.ReqSeqID, sandbox.ResultPaid)
		got := e.waitStatus(t, p.ID, client.StatusSucceeded)
		if got.FinishedAt == nil {
			t.Errorf("succeeded payment has no finished_at")
		}
		ev := e.waitEvent(t, client.EventPaymentSucceeded, p.ID)
		if ev.Event.Data.Payment.AmountFen != 1 || ev.Event.Data.Source != "query" {
			t.Errorf("event payment = %+v", ev.Event.Data.Payment)
		}
	})

	t.Run("wechat-miniapp", func(t *testing.T) {
		code := e.sb.MintWeChatCode(t, sandbox.DevMiniAppID, "buyer-mini")
		p, err := e.sc.Client.CreatePayment(ctxTimeout(t, 20*time.Second), client.CreatePaymentRequest{
			Flow: client.FlowWeChatMiniApp, OutTradeNo: "mini-1", AmountFen: 1234, Description: "mini",
			Buyer: &client.Buyer{Code: code.Code},
		})
		if err != nil {
			t.Fatal(err)
		}
		var pp struct {
			RequestPayment struct {
				TimeStamp, NonceStr, Package, SignType, PaySign string
			} `json:"request_payment"`
			Launch struct{ Username, Path string } `json:"launch"`
		}
		if err := json.Unmarshal(p.PayParams, &pp); err != nil {
			t.Fatalf("pay_params %s: %v", p.PayParams, err)
		}
		rp := pp.RequestPayment
		pi := upstream.PayInfo{AppID: sandbox.DevMiniAppID, TimeStamp: rp.TimeStamp, NonceStr: rp.NonceStr, Package: rp.Package}
		if err := nkp.Verify(dev.WeChat.Public, []byte(sandbox.PaySignMessage(pi)), rp.PaySign); err != nil {
			t.Fatalf("wx.requestPayment paySign does not verify: %v (%s)", err, p.PayParams)
		}
		if !strings.HasPrefix(pp.Launch.Username, "gh_") || !strings.Contains(pp.Launch.Path, "payment_id="+url.QueryEscape(p.ID)) {
			t.Errorf("launch = %+v", pp.Launch)
		}
		e.sb.SettlePayment(t, p.ReqDate, p.ReqSeqID, sandbox.ResultPaid)
		e.waitStatus(t, p.ID, client.StatusSucceeded)
	})

	t.Run("alipay-native", func(t *testing.T) {
		p, err := e.sc.Client.CreatePayment(ctxTimeout(t, 20*time.Second), client.CreatePaymentRequest{
			Flow: client.FlowAlipayNative, OutTradeNo: "ali-1", AmountFen: 99, Description: "alipay",
		})
		if err != nil {
			t.Fatal(err)
		}
		var pp struct {
			QRCode   string `json:"qr_code"`
			DeepLink string `json:"deep_link"`
		}
		if err := json.Unmarshal(p.PayParams, &pp); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(pp.QRCode, e.sb.URL) {
			t.Errorf("qr_code %q is not the sandbox's cashier", pp.QRCode)
		}
		if want := "alipays://platformapi/startapp?saId=10000007&qrcode=" + url.QueryEscape(pp.QRCode); pp.DeepLink != want {
			t.Errorf("deep_link = %q, want %q", pp.DeepLink, want)
		}
		e.sb.SettlePayment(t, p.ReqDate, p.ReqSeqID, sandbox.ResultPaid)
		e.waitStatus(t, p.ID, client.StatusSucceeded)
		if ev := e.waitEvent(t, client.EventPaymentSucceeded, p.ID); ev.Event.Data.Source != "query" {
			t.Errorf("event source = %q, want query", ev.Event.Data.Source)
		}

		failed, err := e.sc.Client.CreatePayment(ctxTimeout(t, 20*time.Second), client.CreatePaymentRequest{
			Flow: client.FlowAlipayNative, OutTradeNo: "ali-2", AmountFen: 98, Description: "alipay declined",
		})
		if err != nil {
			t.Fatal(err)
		}
		e.sb.SettlePayment(t, failed.ReqDate, failed.ReqSeqID, sandbox.ResultFailed)
		e.waitStatus(t, failed.ID, client.StatusFailed)
		e.waitEvent(t, client.EventPaymentFailed, failed.ID)
	})

	t.Run("refund", func(t *testing.T) {
		p, err := e.sc.Client.CreatePayment(ctxTimeout(t, 20*time.Second), client.CreatePaymentRequest{
			Flow: client.FlowAlipayNative, OutTradeNo: "ali-refund", AmountFen: 500, Description: "to refund",
		})
		if err != nil {
			t.Fatal(err)
		}
		e.sb.SettlePayment(t, p.ReqDate, p.ReqSeqID, sandbox.ResultPaid)
		e.waitStatus(t, p.ID, client.StatusSucceeded)
		r1, err := e.sc.Client.CreateRefund(ctxTimeout(t, 20*time.Second), p.ID, client.CreateRefundRequest{OutRefundNo: "r-1", AmountFen: 300})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.sc.Client.CreateRefund(ctxTimeout(t, 20*time.Second), p.ID, client.CreateRefundRequest{OutRefundNo: "r-2", AmountFen: 201})
		var apiErr *client.APIError
		if !errors.As(err, &apiErr) || apiErr.Code != "refund_exceeds_payment" {
			t.Fatalf("refund beyond the paid amount: %v", err)
		}
		e.sb.SettleRefund(t, r1.ReqDate, r1.ReqSeqID, sandbox.ResultSucceeded)
		e.waitEvent(t, client.EventRefundSucceeded, r1.ID)
		waitFor(t, 10*time.Second, "refunded amount", func() (bool, string) {
			got, err := e.sc.Client.GetPayment(ctxTimeout(t, 5*time.Second), p.ID)
			if err != nil {
				return false, err.Error()
			}
			return got.RefundedFen == 300, ""
		})
	})
}
