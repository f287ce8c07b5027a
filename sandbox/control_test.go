package sandbox_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// TestCashier pays an A_NATIVE order through its qr_code page as a person
// would: open the page, press Pay, see it paid, get the notification.
func TestCashier(t *testing.T) {
	inst, _ := start(t)
	rcv := newReceiver(t, nil)
	out := placeOrder(t, inst, with(order("QR1"), "trade_type", upstream.TradeAlipayNative, "wx_data", nil, "trans_amt", "8.88",
		"goods_desc", `<script>alert(1)</script>`, "notify_url", rcv.srv.URL+"/n"))
	placeOrder(t, inst, with(order("QR2"), "trade_type", upstream.TradeAlipayNative, "wx_data", nil))
	qr := out["qr_code"].(string)
	page := func() (int, string) {
		resp, err := inst.HTTP.Get(qr)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := page()
	if status != http.StatusOK || !strings.Contains(body, "8.88") || !strings.Contains(body, `id="pay"`) || !strings.Contains(body, "waiting for payment") {
		t.Fatalf("cashier page HTTP %d:\n%s", status, body)
	}
	if strings.Contains(body, "<script>alert") {
		t.Fatal("goods_desc is not escaped")
	}
	press := func(u, action string) *http.Response {
		resp, err := inst.HTTP.PostForm(u, url.Values{"action": {action}})
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}
	if resp := press(qr, "pay"); resp.StatusCode != http.StatusOK || resp.Request.Method != http.MethodGet {
		t.Fatalf("pay: HTTP %d after %s", resp.StatusCode, resp.Request.Method)
	}
	if _, body := page(); !strings.Contains(body, "paid") || strings.Contains(body, `id="pay"`) {
		t.Fatalf("page after paying:\n%s", body)
	}
	if resp := press(qr, "fail"); resp.StatusCode != http.StatusConflict {
		t.Fatalf("second press: HTTP %d", resp.StatusCode)
	}
	inst.WaitNotifications(t, sandbox.Filter{ReqSeqID: "QR1"}, 5*time.Second, func(r []sandbox.NotificationRecord) bool {
		return len(r) == 1 && r[0].State == sandbox.DeliveryDelivered
	})
	qr2 := strings.Replace(qr, qr[strings.LastIndex(qr, "/")+1:], "", 1)
	orders, err := inst.Control.Orders(testCtx(t), sandbox.Filter{ReqSeqID: "QR2"})
	if err != nil || len(orders) != 1 {
		t.Fatal(orders, err)
	}
	if resp := press(orders[0].QRCode, "fail"); resp.StatusCode != http.StatusOK {
		t.Fatalf("fail: HTTP %d", resp.StatusCode)
	}
	if resp := press(orders[0].QRCode, "steal"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown action: HTTP %d", resp.StatusCode)
	}
	if resp := press(qr2+"nosuchtoken", "pay"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown order: HTTP %d", resp.StatusCode)
	}
	st := inst.Stats(t, sandbox.DevHuifuID)
	if st.Paid != 1 || st.Failed != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

// TestAutoSettle turns auto-settlement on and proves orders and refunds
// settle by themselves, failing at the configured rate deterministically.
func TestAutoSettle(t *testing.T) {
	inst, _ := start(t, sandboxtest.WithSeed(3))
	rcv := newReceiver(t, nil)
	a := sandbox.AutoSettle{Pay: true, PayAfterMS: 5, PayFailRate: 0.5, Refund: true, RefundAfterMS: 5}
	if err := inst.Control.SetAutoSettle(testCtx(t), a); err != nil {
		t.Fatal(err)
	}
	if got, err := inst.Control.AutoSettle(testCtx(t)); err != nil || got != a {
		t.Fatalf("auto-settle = %+v, %v", got, err)
	}
	for i := 0; i < 10; i++ {
		placeOrder(t, inst, with(order(fmt.Sprintf("AS%d", i)), "notify_url", rcv.srv.URL+"/n"))
	}
	waitFor(t, "every order to settle", func() bool {
		st := inst.Stats(t, "")
		return st.Paid+st.Failed == 10
	})
	st := inst.Stats(t, "")
	if st.Paid == 0 || st.Failed == 0 {
		t.Fatalf("fail rate 0.5 gave %+v", st)
	}
	orders, _ := inst.Control.Orders(testCtx(t), sandbox.Filter{})
	for _, o := range orders {
		if o.TransStat == nkp.StatSuccess {
			wantCode(t, call(t, inst, nkp.PathRefund, map[string]any{"req_date": day0, "req_seq_id": "R" + o.ReqSeqID, "huifu_id": sandbox.DevHuifuID,
				"ord_amt": "1.00", "org_req_date": day0, "org_req_seq_id": o.ReqSeqID}), nkp.CodeProcessing, "")
		}
	}
	waitFor(t, "every refund to succeed", func() bool { return inst.Stats(t, "").RefundsSucceeded == st.Paid })
	inst.WaitNotifications(t, sandbox.Filter{Kind: sandbox.KindPayment}, 5*time.Second, func(r []sandbox.NotificationRecord) bool {
		return len(r) == 10 && sandboxtest.Finished(r)
	})
}

// TestControlErrors checks the controls refuse bad input clearly.
func TestControlErrors(t *testing.T) {
	inst, _ := start(t)
	placeOrder(t, inst, order("CE1"))
	ctx := testCtx(t)
	c := inst.Control
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"unknown order", func() error {
			_, err := c.SettlePayment(ctx, sandbox.SettleRequest{HuifuID: sandbox.DevHuifuID, ReqDate: day0, ReqSeqID: "NOPE", Result: sandbox.ResultPaid})
			return err
		}(), "not_found"},
		{"bad payment result", func() error {
			_, err := c.SettlePayment(ctx, sandbox.SettleRequest{HuifuID: sandbox.DevHuifuID, ReqDate: day0, ReqSeqID: "CE1", Result: "succeeded"})
			return err
		}(), "bad_request"},
		{"bad refund result", func() error {
			_, err := c.SettleRefund(ctx, sandbox.SettleRequest{HuifuID: sandbox.DevHuifuID, ReqDate: day0, ReqSeqID: "CE1", Result: sandbox.ResultPaid})
			return err
		}(), "bad_request"},
		{"unknown refund", func() error {
			_, err := c.SettleRefund(ctx, sandbox.SettleRequest{HuifuID: sandbox.DevHuifuID, ReqDate: day0, ReqSeqID: "CE1", Result: sandbox.ResultSucceeded})
			return err
		}(), "not_found"},
		{"rate above one", c.SetFaults(ctx, sandbox.Faults{Notify: sandbox.NotifyFaults{DropRate: 1.5}}), "drop_rate"},
		{"negative latency", c.SetFaults(ctx, sandbox.Faults{API: sandbox.APIFaults{LatencyMS: -1}}), "latency"},
		{"bad auto-settle", c.SetAutoSettle(ctx, sandbox.AutoSettle{PayFailRate: -0.1}), "pay_fail_rate"},
		{"unknown application", func() error {
			_, err := c.SettleApplication(ctx, "NOPE", sandbox.ResultSucceeded)
			return err
		}(), "not_found"},
	}
	for _, tc := range tests {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, tc.err, tc.want)
		}
	}
	if f, err := c.Faults(ctx); err != nil || f.Notify.DropRate != 0 {
		t.Fatalf("a refused fault setting took effect: %+v, %v", f, err)
	}
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/_sandbox/nothing", ""},
		{"POST", sandbox.ControlSettlePayment, "{"},
		{"POST", sandbox.ControlSettlePayment, `{"unknown_field":1}`},
	} {
		req, _ := http.NewRequest(r.method, inst.URL+r.path, strings.NewReader(r.body))
		resp, err := inst.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode/100 != 4 || !strings.Contains(string(b), `"error"`) {
			t.Errorf("%s %s: HTTP %d %s", r.method, r.path, resp.StatusCode, b)
		}
	}
	resp, err := inst.HTTP.Get(inst.URL + "/_sandbox/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !strings.Contains(string(b), sandbox.ControlFaults) {
		t.Fatalf("index = %s", b)
	}
}

// TestStatsProveNothingSent shows how a test elsewhere proves that a
// refused request never reached the upstream: the per-merchant request
// counters stay at zero.
func TestStatsProveNothingSent(t *testing.T) {
	inst, _ := start(t)
	if st := inst.Stats(t, "6666000100000042"); len(st.Requests) != 0 || st.Orders != 0 {
		t.Fatalf("fresh stats = %+v", st)
	}
	placeOrder(t, inst, with(order("ST1"), "huifu_id", "6666000100000042"))
	call(t, inst, nkp.PathPaymentQuery, map[string]any{"huifu_id": "6666000100000042", "org_req_date": day0, "org_req_seq_id": "ST1"})
	st := inst.Stats(t, "6666000100000042")
	if st.Requests[nkp.PathJSPay] != 1 || st.Requests[nkp.PathPaymentQuery] != 1 || st.Orders != 1 || st.OrdersByType[upstream.TradeWeChatJSAPI] != 1 {
		t.Fatalf("stats = %+v", st)
	}
	if other := inst.Stats(t, sandbox.DevHuifuID); other.Orders != 0 || other.Requests[nkp.PathJSPay] != 0 {
		t.Fatalf("another merchant's stats = %+v", other)
	}
}

// TestConcurrentUse places, settles, queries and refunds from several
// goroutines at once, with auto-settlement and notifications running, so
// the race detector sees every shared path.
func TestConcurrentUse(t *testing.T) {
	inst, _ := start(t, sandboxtest.WithAutoSettle(sandbox.AutoSettle{Pay: true, Refund: true}))
	rcv := newReceiver(t, nil)
	const workers, each = 4, 6
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func(w int) {
			client := inst.NKPClient()
			for i := 0; i < each; i++ {
				seq := fmt.Sprintf("CC%d_%d", w, i)
				data := with(order(seq), "notify_url", rcv.srv.URL+"/n")
				if out, err := client.Call(testCtx(t), nkp.PathJSPay, data); err != nil || out["resp_code"] != nkp.CodeProcessing {
					errs <- fmt.Errorf("jspay %s: %v %v", seq, out, err)
					return
				}
				if _, err := client.Call(testCtx(t), nkp.PathPaymentQuery, map[string]any{"huifu_id": sandbox.DevHuifuID, "org_req_date": day0, "org_req_seq_id": seq}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}(w)
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every order to be paid", func() bool { return inst.Stats(t, "").Paid == workers*each })
	inst.WaitNotifications(t, sandbox.Filter{}, 10*time.Second, func(r []sandbox.NotificationRecord) bool {
		return len(r) == workers*each && sandboxtest.Finished(r)
	})
	if st := inst.Stats(t, ""); st.Delivered != workers*each || st.Requests[nkp.PathJSPay] != workers*each {
		t.Fatalf("stats = %+v", st)
	}
}
