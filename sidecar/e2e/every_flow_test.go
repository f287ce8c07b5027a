package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sdk/client"
)

// cashierURL returns the first string in the pay parameters that is a
// page of the sandbox's cashier, or "".
func cashierURL(params json.RawMessage, sandboxURL string) string {
	var v any
	if json.Unmarshal(params, &v) != nil {
		return ""
	}
	var find func(any) string
	find = func(v any) string {
		switch t := v.(type) {
		case string:
			if strings.HasPrefix(t, sandboxURL+"/qr/") {
				return t
			}
		case map[string]any:
			for _, e := range t {
				if u := find(e); u != "" {
					return u
				}
			}
		case []any:
			for _, e := range t {
				if u := find(e); u != "" {
					return u
				}
			}
		}
		return ""
	}
	return find(v)
}

// TestEveryFlowPaysEndToEnd pays through every flow the sidecar runs, as
// GET /v1/flows lists them, so that a flow added under plugins/ is paid
// end to end by this test with no edit to it: a payment is created with
// what the flow declares it needs, with one plugin call (the flow's pay
// recipe builds its pay parameters in the host), paid on the sandbox's cashier page when
// its pay parameters lead there (otherwise settled through the sandbox's
// controls), reported succeeded by the API and the webhook, and refunded.
func TestEveryFlowPaysEndToEnd(t *testing.T) {
	e := newEnv(t)
	var list flowList
	if err := e.sc.Client.Do(ctxTimeout(t, 20*time.Second), http.MethodGet, "/v1/flows", nil, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Flows) != len(flowNames) {
		t.Fatalf("flows running %+v, built %v", list.Flows, flowNames)
	}
	for _, f := range list.Flows {
		t.Run(f.Name, func(t *testing.T) {
			req := client.CreatePaymentRequest{
				Flow: f.Name, OutTradeNo: "every-" + f.Name, AmountFen: 3, Description: "every flow · " + f.Name, ClientIP: "203.0.113.10",
			}
			if f.Buyer == "required" {
				req.Buyer = &client.Buyer{OpenID: "o-every-" + f.Name}
			}
			p, err := e.sc.Client.CreatePayment(ctxTimeout(t, 20*time.Second), req)
			if err != nil {
				t.Fatal(err)
			}
			if p.Status != client.StatusProcessing || p.TradeType != f.TradeType || p.Flow != f.Name || len(p.PayParams) == 0 {
				t.Fatalf("payment = %+v", p)
			}
			var params map[string]any
			if err := json.Unmarshal(p.PayParams, &params); err != nil || len(params) == 0 {
				t.Fatalf("pay_params %s are not a JSON object: %v", p.PayParams, err)
			}
			// Every flow here gives a pay recipe with its shape, so the
			// create made one plugin call, not two.
			plugin := `plugin="` + f.Name + `"`
			if n := e.sc.metric("paysidecar_plugin_call_duration_seconds_count", plugin, `method="PayParams"`); n != 0 {
				t.Errorf("%d PayParams calls for one create, want none (the host builds the flow's pay recipe)", int(n))
			}
			if n := e.sc.metric("paysidecar_plugin_call_duration_seconds_count", plugin, `method="ShapeOrder"`); n != 1 {
				t.Errorf("%d ShapeOrder calls for one create, want one", int(n))
			}
			if page := cashierURL(p.PayParams, e.sb.URL); page != "" {
				resp, err := e.sb.HTTP.PostForm(page, url.Values{"action": {"pay"}})
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("paying on the cashier page: HTTP %d", resp.StatusCode)
				}
			} else {
				e.sb.SettlePayment(t, p.ReqDate, p.ReqSeqID, sandbox.ResultPaid)
			}
			paid := e.waitStatus(t, p.ID, client.StatusSucceeded)
			if paid.FinishedAt == nil {
				t.Errorf("succeeded payment has no finished_at")
			}
			if ev := e.waitEvent(t, client.EventPaymentSucceeded, p.ID); ev.Event.Data.Payment.Flow != f.Name || ev.Event.Data.Payment.AmountFen != 3 {
				t.Errorf("event payment = %+v", ev.Event.Data.Payment)
			}
			r, err := e.sc.Client.CreateRefund(ctxTimeout(t, 20*time.Second), p.ID, client.CreateRefundRequest{OutRefundNo: "every-r-" + f.Name, AmountFen: 1})
			if err != nil {
				t.Fatal(err)
			}
			e.sb.SettleRefund(t, r.ReqDate, r.ReqSeqID, sandbox.ResultSucceeded)
			e.waitEvent(t, client.EventRefundSucceeded, r.ID)
		})
	}
}
