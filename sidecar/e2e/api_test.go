package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sdk/client"
)

type answer struct {
	status   int
	body     []byte
	replayed bool
}

func post(t *testing.T, url, key string, body string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: b, replayed: resp.Header.Get("Idempotent-Replayed") == "true"}
}

func errCode(b []byte) string {
	var eb client.ErrorBody
	_ = json.Unmarshal(b, &eb)
	return eb.Error.Code
}

func orders(t *testing.T, e *env) int {
	return e.sb.Stats(t, e.sb.HuifuID).Orders
}

func TestIdempotency(t *testing.T) {
	e := newEnv(t)
	payURL := e.sc.API + "/v1/payments"
	body := func(out string, amount int) string {
		return fmt.Sprintf(`{"flow":"alipay-native","out_trade_no":%q,"amount_fen":%d,"description":"idem"}`, out, amount)
	}

	t.Run("concurrent twins with one key make one order", func(t *testing.T) {
		before := orders(t, e)
		const n = 8
		answers := make([]answer, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				answers[i] = post(t, payURL, "key-concurrent", body("idem-1", 10))
			}()
		}
		wg.Wait()
		created, inUse, replayed := 0, 0, 0
		var first []byte
		for _, a := range answers {
			switch {
			case a.status == http.StatusCreated && !a.replayed:
				created++
				first = a.body
			case a.status == http.StatusCreated && a.replayed:
				replayed++
			case a.status == http.StatusConflict && errCode(a.body) == "idempotency_key_in_use":
				inUse++
			default:
				t.Errorf("unexpected answer %d %s", a.status, a.body)
			}
		}
		if created != 1 || created+inUse+replayed != n {
			t.Fatalf("created %d, in use %d, replayed %d", created, inUse, replayed)
		}
		if got := orders(t, e) - before; got != 1 {
			t.Fatalf("the upstream got %d orders, want 1", got)
		}
		// Afterwards the first answer is replayed byte for byte.
		again := post(t, payURL, "key-concurrent", body("idem-1", 10))
		if again.status != http.StatusCreated || !again.replayed || !bytes.Equal(bytes.TrimSpace(again.body), bytes.TrimSpace(first)) {
			t.Fatalf("replay = %d %v %s, want the first answer %s", again.status, again.replayed, again.body, first)
		}
	})

	t.Run("same key with another body is refused", func(t *testing.T) {
		before := orders(t, e)
		a := post(t, payURL, "key-mismatch", body("idem-2", 10))
		if a.status != http.StatusCreated {
			t.Fatalf("first: %d %s", a.status, a.body)
		}
		b := post(t, payURL, "key-mismatch", body("idem-2", 11))
		if b.status != http.StatusUnprocessableEntity || errCode(b.body) != "idempotency_key_mismatch" {
			t.Fatalf("mismatch: %d %s", b.status, b.body)
		}
		// Reordered keys and white space are the same request.
		c := post(t, payURL, "key-mismatch", ` {"description":"idem","amount_fen":10, "out_trade_no":"idem-2","flow":"alipay-native"}`)
		if c.status != http.StatusCreated || !c.replayed {
			t.Fatalf("same request in another spelling: %d replayed=%v %s", c.status, c.replayed, c.body)
		}
		if got := orders(t, e) - before; got != 1 {
			t.Fatalf("the upstream got %d orders, want 1", got)
		}
	})

	t.Run("concurrent requests with one key and two bodies", func(t *testing.T) {
		before := orders(t, e)
		const n = 8
		answers := make([]answer, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				answers[i] = post(t, payURL, "key-two-bodies", body("idem-4", 30+i%2))
			}()
		}
		wg.Wait()
		created := 0
		for _, a := range answers {
			switch {
			case a.status == http.StatusCreated && !a.replayed:
				created++
			case a.status == http.StatusCreated && a.replayed,
				a.status == http.StatusConflict && errCode(a.body) == "idempotency_key_in_use",
				a.status == http.StatusUnprocessableEntity && errCode(a.body) == "idempotency_key_mismatch":
			default:
				t.Errorf("unexpected answer %d %s", a.status, a.body)
			}
		}
		if created != 1 {
			t.Fatalf("%d requests created a payment, want 1", created)
		}
		if got := orders(t, e) - before; got != 1 {
			t.Fatalf("the upstream got %d orders, want 1", got)
		}
		// Afterwards the other body is refused as a mismatch, whichever won.
		a, b := post(t, payURL, "key-two-bodies", body("idem-4", 30)), post(t, payURL, "key-two-bodies", body("idem-4", 31))
		if (a.status == http.StatusUnprocessableEntity) == (b.status == http.StatusUnprocessableEntity) {
			t.Fatalf("after the race exactly one body must be refused: %d %s / %d %s", a.status, a.body, b.status, b.body)
		}
	})

	t.Run("a repeated out_trade_no never orders twice", func(t *testing.T) {
		before := orders(t, e)
		const n = 6
		answers := make([]answer, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				answers[i] = post(t, payURL, "", body("idem-3", 20))
			}()
		}
		wg.Wait()
		// One request places the order; a twin that arrives while it is in
		// flight is told to retry, one that arrives after it gets the same
		// payment.
		ids := map[string]bool{}
		created := 0
		for _, a := range answers {
			if a.status == http.StatusConflict && errCode(a.body) == "payment_pending" {
				continue
			}
			if a.status != http.StatusCreated && a.status != http.StatusOK {
				t.Errorf("answer %d %s", a.status, a.body)
				continue
			}
			if a.status == http.StatusCreated {
				created++
			}
			var p client.Payment
			_ = json.Unmarshal(a.body, &p)
			ids[p.ID] = true
		}
		again := post(t, payURL, "", body("idem-3", 20))
		var p client.Payment
		_ = json.Unmarshal(again.body, &p)
		ids[p.ID] = true
		if created != 1 || len(ids) != 1 || again.status != http.StatusOK {
			t.Fatalf("%d created, %d different payments for one out_trade_no, retry answered %d", created, len(ids), again.status)
		}
		if got := orders(t, e) - before; got != 1 {
			t.Fatalf("the upstream got %d orders, want 1", got)
		}
		other := post(t, payURL, "", body("idem-3", 21))
		if other.status != http.StatusConflict || errCode(other.body) != "out_trade_no_conflict" {
			t.Fatalf("out_trade_no with other parameters: %d %s", other.status, other.body)
		}
	})
}

func TestIdempotencyKeyIsScopedToItsPayment(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for _, out := range []string{"scope-a", "scope-b"} {
		p, err := e.sc.Client.CreatePayment(ctxTimeout(t, 20*time.Second), client.CreatePaymentRequest{
			Flow: client.FlowAlipayNative, OutTradeNo: out, AmountFen: 100, Description: "scope",
		})
		if err != nil {
			t.Fatal(err)
		}
		e.sb.SettlePayment(t, p.ReqDate, p.ReqSeqID, sandbox.ResultPaid)
		e.waitStatus(t, p.ID, client.StatusSucceeded)
		ids = append(ids, p.ID)
	}
	// One key on two payments: two refunds, neither a replay of the other
	// nor refused as the same key with another body.
	for i, id := range ids {
		a := post(t, e.sc.API+"/v1/payments/"+id+"/refunds", "same-key", fmt.Sprintf(`{"out_refund_no":"r-scope-%d","amount_fen":10}`, i))
		var r client.Refund
		if err := json.Unmarshal(a.body, &r); err != nil || a.status != http.StatusCreated || a.replayed || r.PaymentID != id {
			t.Fatalf("refund of %s: %d replayed=%v %s", id, a.status, a.replayed, a.body)
		}
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t, "PAYSIDECAR_API__MAX_AMOUNT_FEN=100000", "PAYSIDECAR_API__MAX_BODY_BYTES=4096")
	paid, err := e.sc.Client.CreatePayment(ctxTimeout(t, 20*time.Second), client.CreatePaymentRequest{
		Flow: client.FlowAlipayNative, OutTradeNo: "bad-input-base", AmountFen: 100, Description: "base",
	})
	if err != nil {
		t.Fatal(err)
	}
	e.sb.SettlePayment(t, paid.ReqDate, paid.ReqSeqID, sandbox.ResultPaid)
	e.waitStatus(t, paid.ID, client.StatusSucceeded)

	valid := map[string]any{"flow": "alipay-native", "out_trade_no": "bad-1", "amount_fen": 100, "description": "x"}
	with := func(k string, v any) string {
		m := map[string]any{}
		for kk, vv := range valid {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	refundURL := e.sc.API + "/v1/payments/" + paid.ID + "/refunds"
	cases := []struct {
		name, url, body string
		status          int
		code, field     string
	}{
		{"malformed JSON", "/v1/payments", `{"flow":`, 400, "invalid_json", ""},
		{"not an object", "/v1/payments", `[1,2]`, 400, "invalid_field", ""},
		{"two objects", "/v1/payments", with("flow", "alipay-native") + `{}`, 400, "invalid_json", ""},
		{"empty body", "/v1/payments", ``, 400, "invalid_json", ""},
		{"amount as string", "/v1/payments", with("amount_fen", "1.00"), 400, "invalid_field", "amount_fen"},
		{"amount as float", "/v1/payments", with("amount_fen", 1.5), 400, "invalid_field", "amount_fen"},
		{"amount zero", "/v1/payments", with("amount_fen", 0), 400, "amount_invalid", "amount_fen"},
		{"amount negative", "/v1/payments", with("amount_fen", -5), 400, "amount_invalid", "amount_fen"},
		{"amount above maximum", "/v1/payments", with("amount_fen", 100001), 400, "amount_too_large", "amount_fen"},
		{"unknown flow", "/v1/payments", with("flow", "unionpay"), 400, "unknown_flow", "flow"},
		{"missing flow", "/v1/payments", with("flow", nil), 400, "missing_field", "flow"},
		{"missing buyer", "/v1/payments", with("flow", "wechat-jsapi"), 400, "missing_buyer", "buyer"},
		{"buyer of wrong type", "/v1/payments", with("buyer", "oXyz"), 400, "invalid_field", "buyer"},
		{"unknown field", "/v1/payments", with("amount", 100), 400, "unknown_field", "amount"},
		{"bad out_trade_no", "/v1/payments", with("out_trade_no", "a b"), 400, "invalid_field", "out_trade_no"},
		{"missing description", "/v1/payments", with("description", nil), 400, "missing_field", "description"},
		{"bad client ip", "/v1/payments", with("client_ip", "999.1.1.1"), 400, "invalid_field", "client_ip"},
		{"expiry too short", "/v1/payments", with("expires_in_seconds", 5), 400, "invalid_field", "expires_in_seconds"},
		{"oversize body", "/v1/payments", with("description", strings.Repeat("x", 5000)), 413, "body_too_large", ""},
		{"missing amount", "/v1/payments", with("amount_fen", nil), 400, "missing_field", "amount_fen"},
		{"NUL in description", "/v1/payments", with("description", "tea\u0000"), 400, "invalid_field", "description"},
		{"bidi override in description", "/v1/payments", with("description", "tea \u202egnp.exe"), 400, "invalid_field", "description"},
		{"description not UTF-8", "/v1/payments", strings.Replace(with("description", "tea MARK"), "MARK", "\xff", 1), 400, "invalid_field", "description"},
		{"bidi in metadata", "/v1/payments", with("metadata", map[string]string{"note": "\u2066x"}), 400, "invalid_field", "metadata"},
		{"refund without amount", refundURL, `{"out_refund_no":"r-bad"}`, 400, "missing_field", "amount_fen"},
		{"NUL in refund reason", refundURL, `{"out_refund_no":"r-bad","amount_fen":1,"reason":"a\u0000"}`, 400, "invalid_field", "reason"},
		{"bidi in oauth state", "/v1/oauth/authorize-url", `{"flow":"wechat-jsapi","redirect_uri":"https://shop.example/","state":"\u202e1"}`, 400, "invalid_field", "state"},
		{"refund malformed", refundURL, `{"out_refund_no":`, 400, "invalid_json", ""},
		{"refund amount zero", refundURL, `{"out_refund_no":"r-bad","amount_fen":0}`, 400, "amount_invalid", "amount_fen"},
		{"refund amount wrong type", refundURL, `{"out_refund_no":"r-bad","amount_fen":"1"}`, 400, "invalid_field", "amount_fen"},
		{"refund above payment", refundURL, `{"out_refund_no":"r-bad","amount_fen":101}`, 422, "refund_exceeds_payment", "amount_fen"},
		{"refund unknown field", refundURL, `{"out_refund_no":"r-bad","amount_fen":1,"x":1}`, 400, "unknown_field", "x"},
		{"refund of unknown payment", "/v1/payments/pay_nope/refunds", `{"out_refund_no":"r-bad","amount_fen":1}`, 404, "not_found", ""},
		{"close unknown payment", "/v1/payments/pay_nope/close", `{}`, 404, "not_found", ""},
		{"close with unknown field", "/v1/payments/" + paid.ID + "/close", `{"x":1}`, 400, "unknown_field", "x"},
		{"exchange without code", "/v1/oauth/exchange", `{"flow":"wechat-jsapi"}`, 400, "missing_field", "code"},
		{"exchange with alipay", "/v1/oauth/exchange", `{"flow":"alipay-native","code":"c"}`, 400, "unsupported", "flow"},
		{"authorize without redirect", "/v1/oauth/authorize-url", `{"flow":"wechat-jsapi"}`, 400, "missing_field", "redirect_uri"},
		{"passthrough not allowed", "/v1/upstream/v2/trade/payment/jspay", `{}`, 403, "path_not_allowed", ""},
		{"unknown endpoint", "/v1/nothing", `{}`, 404, "not_found", ""},
	}
	before := e.sb.Stats(t, "")
	for _, path := range []string{"/v1/payments/" + paid.ID + "/close", "/v1/refunds/re_x"} {
		t.Run("DELETE "+path, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodDelete, e.sc.API+path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusMethodNotAllowed || errCode(b) != "method_not_allowed" {
				t.Fatalf("DELETE %s: %d %s", path, resp.StatusCode, b)
			}
		})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := c.url
			if strings.HasPrefix(u, "/") {
				u = e.sc.API + u
			}
			a := post(t, u, "", c.body)
			var eb client.ErrorBody
			if err := json.Unmarshal(a.body, &eb); err != nil {
				t.Fatalf("%d %s is not an error body", a.status, a.body)
			}
			if a.status != c.status || eb.Error.Code != c.code || eb.Error.Field != c.field || eb.Error.Message == "" {
				t.Fatalf("got %d %+v, want %d %s field %q", a.status, eb.Error, c.status, c.code, c.field)
			}
		})
	}
	// Nothing was sent upstream: the sandbox saw no request at all.
	after := e.sb.Stats(t, "")
	for path, n := range after.Requests {
		if n != before.Requests[path] {
			t.Errorf("upstream %s got %d requests during bad input", path, n-before.Requests[path])
		}
	}
	// Nothing was stored.
	var stored client.Payment
	err = e.sc.Client.Do(ctxTimeout(t, 5*time.Second), http.MethodGet, "/v1/payments?out_trade_no=bad-1", nil, &stored)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound {
		t.Fatalf("looking up a refused payment: %v (%+v)", err, stored)
	}
	refunds := struct{ Refunds []client.Refund }{}
	if err := e.sc.Client.Do(ctxTimeout(t, 5*time.Second), http.MethodGet, "/v1/payments/"+paid.ID+"/refunds", nil, &refunds); err != nil || len(refunds.Refunds) != 0 {
		t.Fatalf("refused refunds stored: %v %+v", err, refunds)
	}
	if got := before.Orders; after.Orders != got {
		t.Fatalf("orders changed from %d to %d", got, after.Orders)
	}
}

func TestPluginKilledMidRun(t *testing.T) {
	e := newEnv(t)
	create := func(out string) (client.Payment, error) {
		return e.sc.Client.CreatePayment(ctxTimeout(t, 20*time.Second), client.CreatePaymentRequest{
			Flow: client.FlowAlipayNative, OutTradeNo: out, AmountFen: 5, Description: "plugin restart",
		})
	}
	if _, err := create("kill-0"); err != nil {
		t.Fatal(err)
	}
	before := orders(t, e)
	restarts := e.sc.metric("paysidecar_plugin_restarts_total", `plugin="alipay-native"`)
	pid := e.sc.pluginPID("alipay-native")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Calls fail cleanly with plugin_unavailable until the plugin is back,
	// then succeed; every attempt uses the same out_trade_no.
	unavailable := 0
	var p client.Payment
	waitFor(t, 30*time.Second, "a payment after the plugin restart", func() (bool, string) {
		var err error
		p, err = create("kill-1")
		if err == nil {
			return true, ""
		}
		if ae, ok := err.(*client.APIError); ok && ae.StatusCode == http.StatusServiceUnavailable && ae.Code == "plugin_unavailable" {
			unavailable++
			return false, ae.Error()
		}
		t.Fatalf("unexpected error while the plugin restarts: %v", err)
		return false, ""
	})
	if p.Status != client.StatusProcessing || len(p.PayParams) == 0 {
		t.Fatalf("payment after restart = %+v", p)
	}
	if got := orders(t, e) - before; got != 1 {
		t.Fatalf("the upstream got %d orders for one payment across the restart (%d answers were plugin_unavailable)", got, unavailable)
	}
	waitFor(t, 10*time.Second, "restart counted", func() (bool, string) {
		n := e.sc.metric("paysidecar_plugin_restarts_total", `plugin="alipay-native"`)
		return n > restarts, fmt.Sprint(n)
	})
	if newPID := e.sc.pluginPID("alipay-native"); newPID == pid {
		t.Fatalf("plugin pid unchanged after SIGKILL")
	}
}
