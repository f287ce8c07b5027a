package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

func TestHelpersStatementsPassthroughAndClose(t *testing.T) {
	clock := sandboxtest.NewClock(time.Now())
	sb := sandboxtest.Start(t, sandboxtest.WithClock(clock.Now))
	hook := newWebhookSink(t)
	e, api, notify, admin := sidecarEnv(t, sb.URL, t.TempDir(), hook.env()...)
	sc := startSidecar(t, e, api, notify, admin)
	ctx := ctxTimeout(t, 60*time.Second)

	t.Run("authorize url", func(t *testing.T) {
		var out struct{ URL string }
		err := sc.Client.Do(ctx, http.MethodPost, "/v1/oauth/authorize-url",
			map[string]string{"flow": "wechat-jsapi", "redirect_uri": "https://shop.example/pay?x=1", "scope": "snsapi_base", "state": "s1"}, &out)
		if err != nil {
			t.Fatal(err)
		}
		want := sb.URL + "/connect/oauth2/authorize?appid=" + sandbox.DevWeChatAppID + "&redirect_uri=" +
			url.QueryEscape("https://shop.example/pay?x=1") + "&response_type=code&scope=snsapi_base&state=s1#wechat_redirect"
		if out.URL != want {
			t.Fatalf("authorize url\n got %s\nwant %s", out.URL, want)
		}
	})

	t.Run("code exchange", func(t *testing.T) {
		code := sb.MintWeChatCode(t, sandbox.DevWeChatAppID, "alice")
		var id struct {
			OpenID string `json:"openid"`
			AppID  string `json:"app_id"`
		}
		if err := sc.Client.Do(ctx, http.MethodPost, "/v1/oauth/exchange", map[string]string{"flow": "wechat-jsapi", "code": code.Code}, &id); err != nil {
			t.Fatal(err)
		}
		if id.OpenID != sandbox.OpenID(sandbox.DevWeChatAppID, "alice") {
			t.Fatalf("openid = %q", id.OpenID)
		}
		err := sc.Client.Do(ctx, http.MethodPost, "/v1/oauth/exchange", map[string]string{"flow": "wechat-jsapi", "code": code.Code}, &id)
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Code != "code_invalid" || ae.StatusCode != http.StatusBadRequest {
			t.Fatalf("reused code: %v", err)
		}
	})

	t.Run("statements", func(t *testing.T) {
		p, err := sc.Client.CreatePayment(ctx, client.CreatePaymentRequest{Flow: client.FlowAlipayNative, OutTradeNo: "stmt-1", AmountFen: 250, Description: "stmt"})
		if err != nil {
			t.Fatal(err)
		}
		sb.SettlePayment(t, p.ReqDate, p.ReqSeqID, sandbox.ResultPaid)
		var out struct {
			Files []nkp.FileDetail `json:"files"`
		}
		if err := sc.Client.Do(ctx, http.MethodGet, "/v1/statements?date="+nkp.ReqDate(clock.Now())+"&bill_type=TRADE_BILL", nil, &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Files) != 1 || out.Files[0].FileName != sandbox.BillFileName(sb.HuifuID, nkp.BillTrade, nkp.ReqDate(clock.Now())) {
			t.Fatalf("files = %+v", out.Files)
		}
		resp, err := http.Get(out.Files[0].DownloadURL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		csv, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(csv), p.ReqSeqID) || !strings.Contains(string(csv), "2.50") {
			t.Fatalf("statement does not list the payment:\n%s", csv)
		}
		err = sc.Client.Do(ctx, http.MethodGet, "/v1/statements?date=2026-11-01", nil, &out)
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Code != "invalid_field" || ae.Field != "date" {
			t.Fatalf("bad date: %v", err)
		}
	})

	t.Run("passthrough is signed and verified", func(t *testing.T) {
		before := sb.Stats(t, "").Requests[nkp.PathMerchantQuery]
		var out struct {
			Data map[string]any `json:"data"`
		}
		if err := sc.Client.Do(ctx, http.MethodPost, "/v1/upstream"+nkp.PathMerchantQuery, map[string]any{}, &out); err != nil {
			t.Fatal(err)
		}
		if out.Data["resp_code"] == nil || sb.Stats(t, "").Requests[nkp.PathMerchantQuery] != before+1 {
			t.Fatalf("passthrough answer %v", out.Data)
		}
	})

	t.Run("close", func(t *testing.T) {
		p, err := sc.Client.CreatePayment(ctx, client.CreatePaymentRequest{Flow: client.FlowAlipayNative, OutTradeNo: "close-1", AmountFen: 7, Description: "close"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = sc.Client.ClosePayment(ctx, p.ID)
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Code != "upstream_rejected" {
			t.Fatalf("closing an order younger than a minute: %v", err)
		}
		clock.Advance(2 * time.Minute)
		closed, err := sc.Client.ClosePayment(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if closed.Status != client.StatusClosed {
			t.Fatalf("status after close = %s", closed.Status)
		}
		waitFor(t, 20*time.Second, "payment.closed", func() (bool, string) {
			for _, r := range hook.received() {
				if r.Event.Type == client.EventPaymentClosed && r.Event.Data.Payment.ID == p.ID {
					return true, ""
				}
			}
			return false, ""
		})
	})
}

func TestReverseQueryWhenEveryNotificationIsDropped(t *testing.T) {
	sb := sandboxtest.Start(t, sandboxtest.WithFaults(sandbox.Faults{Notify: sandbox.NotifyFaults{DropRate: 1}}))
	hook := newWebhookSink(t)
	e, api, notify, admin := sidecarEnv(t, sb.URL, t.TempDir(), hook.env()...)
	sc := startSidecar(t, e, api, notify, admin)
	ctx := ctxTimeout(t, 60*time.Second)
	want := map[string]string{}
	for i := range 20 {
		p, err := sc.Client.CreatePayment(ctx, client.CreatePaymentRequest{Flow: client.FlowAlipayNative, OutTradeNo: "drop-" + string(rune('a'+i)), AmountFen: 10, Description: "dropped"})
		if err != nil {
			t.Fatal(err)
		}
		result, typ := sandbox.ResultPaid, client.EventPaymentSucceeded
		if i%4 == 0 {
			result, typ = sandbox.ResultFailed, client.EventPaymentFailed
		}
		sb.SettlePayment(t, p.ReqDate, p.ReqSeqID, result)
		want[p.ID] = typ
	}
	waitFor(t, 30*time.Second, "final events through queries", func() (bool, string) {
		got := 0
		for _, r := range hook.received() {
			if p := r.Event.Data.Payment; p != nil && want[p.ID] == r.Event.Type && r.Event.Data.Source == "query" {
				got++
			}
		}
		return got == len(want), ""
	})
	if st := sb.Stats(t, sb.HuifuID); st.Delivered != 0 {
		t.Fatalf("%d notifications were delivered although all were dropped", st.Delivered)
	}
}

func TestApplicationDownThenDeadLettersReplay(t *testing.T) {
	sb := sandboxtest.Start(t)
	hook := newWebhookSink(t)
	var down atomic.Bool
	down.Store(true)
	hook.fail = func() int {
		if down.Load() {
			return http.StatusInternalServerError
		}
		return 0
	}
	e, api, notify, admin := sidecarEnv(t, sb.URL, t.TempDir(), hook.env()...)
	sc := startSidecar(t, e, api, notify, admin)
	ctx := ctxTimeout(t, 90*time.Second)

	// Each payment is paid and then refunded, so it has two events that
	// must arrive in order.
	var payments []client.Payment
	for i := range 10 {
		p, err := sc.Client.CreatePayment(ctx, client.CreatePaymentRequest{Flow: client.FlowAlipayNative, OutTradeNo: "down-" + string(rune('a'+i)), AmountFen: 100, Description: "down"})
		if err != nil {
			t.Fatal(err)
		}
		sb.SettlePayment(t, p.ReqDate, p.ReqSeqID, sandbox.ResultPaid)
		payments = append(payments, p)
	}
	for _, p := range payments {
		waitFor(t, 20*time.Second, "payment succeeded", func() (bool, string) {
			got, err := sc.Client.GetPayment(ctx, p.ID)
			return err == nil && got.Status == client.StatusSucceeded, ""
		})
		r, err := sc.Client.CreateRefund(ctx, p.ID, client.CreateRefundRequest{OutRefundNo: "r-" + p.OutTradeNo, AmountFen: 40})
		if err != nil {
			t.Fatal(err)
		}
		sb.SettleRefund(t, r.ReqDate, r.ReqSeqID, sandbox.ResultSucceeded)
	}
	// With the application down, the payment events exhaust their retries
	// and become dead letters; the refund events wait behind them.
	waitFor(t, 30*time.Second, "dead letters", func() (bool, string) {
		page, err := sc.Client.ListEvents(ctx, "dead", 0, 100)
		if err != nil {
			return false, err.Error()
		}
		return len(page.Data) == len(payments), ""
	})
	if n := len(hook.received()); n != 0 {
		t.Fatalf("%d events arrived while the application was down", n)
	}
	// The refund events are produced when their results arrive, which
	// under load may be after the payment events died.
	waitFor(t, 30*time.Second, "refund events pending behind the dead letters", func() (bool, string) {
		pending, err := sc.Client.ListEvents(ctx, "pending", 0, 100)
		if err != nil {
			return false, err.Error()
		}
		return len(pending.Data) == len(payments), fmt.Sprintf("%d of %d pending", len(pending.Data), len(payments))
	})
	down.Store(false)
	out, err := exec.Command(filepath.Join(binDir, "paysidecar"), "events", "replay", "--all", "--api", sc.API).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "10 dead letters queued") {
		t.Fatalf("paysidecar events replay --all: %v\n%s", err, out)
	}
	waitFor(t, 30*time.Second, "every event delivered", func() (bool, string) {
		return len(hook.received()) == 2*len(payments), ""
	})
	// In order per payment: payment.succeeded before refund.succeeded.
	seen := map[string]bool{}
	for _, r := range hook.received() {
		switch r.Event.Type {
		case client.EventPaymentSucceeded:
			seen[r.Event.Data.Payment.ID] = true
		case client.EventRefundSucceeded:
			if !seen[r.Event.Data.Refund.PaymentID] {
				t.Fatalf("refund %s arrived before its payment's event", r.Event.Data.Refund.ID)
			}
		}
	}
	out, err = exec.Command(filepath.Join(binDir, "paysidecar"), "events", "list", "--status", "dead", "--json", "--api", sc.API).CombinedOutput()
	var dead []client.EventRecord
	if err != nil || json.Unmarshal(out, &dead) != nil || len(dead) != 0 {
		t.Fatalf("dead letters after replay: %v\n%s", err, out)
	}
}
