package sandbox_test

import (
	"encoding/json"
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

// TestUnionPayNative orders a U_NATIVE payment, pays it through the
// cashier page its qr_code opens, and checks the notification and the
// query answer carry the UnionPay part.
func TestUnionPayNative(t *testing.T) {
	inst, _ := start(t)
	rcv := newReceiver(t, nil)
	out := placeOrder(t, inst, with(order("UP1"), "trade_type", upstream.TradeUnionPayNative, "wx_data", nil, "trans_amt", "6.66",
		"unionpay_data", `{"front_url":"https://shop.example/paid"}`, "notify_url", rcv.srv.URL+"/n"))
	qr, _ := out["qr_code"].(string)
	if !strings.HasPrefix(qr, inst.URL+"/qr/") || out["pay_info"] != nil {
		t.Fatalf("answer = %v, want a qr_code to the cashier", out)
	}
	resp, err := inst.HTTP.Get(qr)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("cashier page: HTTP %d", resp.StatusCode)
	}
	resp, err = inst.HTTP.PostForm(qr, url.Values{"action": {"pay"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	inst.WaitNotifications(t, sandbox.Filter{ReqSeqID: "UP1"}, 5*time.Second, sandboxtest.Finished)
	got := rcv.requests()
	if len(got) != 1 {
		t.Fatalf("received %d notifications", len(got))
	}
	n, err := nkp.NotificationFromForm(got[0].form)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Verify(inst.Keys.Upstream.Public); err != nil {
		t.Fatal(err)
	}
	data, err := nkp.DecodeObject([]byte(n.RespData))
	if err != nil {
		t.Fatal(err)
	}
	var unionpay map[string]string
	s, _ := data["unionpay_response"].(string)
	if data["trans_type"] != upstream.TradeUnionPayNative || data["trans_stat"] != nkp.StatSuccess ||
		json.Unmarshal([]byte(s), &unionpay) != nil || unionpay["settle_amt"] != "6.66" || unionpay["voucher_num"] != data["out_trans_id"] {
		t.Fatalf("notification = %s", n.RespData)
	}
	q := call(t, inst, nkp.PathPaymentQuery, map[string]any{"huifu_id": sandbox.DevHuifuID, "org_req_date": day0, "org_req_seq_id": "UP1"})
	if q["trans_stat"] != nkp.StatSuccess || q["unionpay_response"] == nil || q["trade_type"] != upstream.TradeUnionPayNative {
		t.Fatalf("query = %v", q)
	}
	bad := call(t, inst, nkp.PathJSPay, with(order("UP2"), "trade_type", "U_CARD", "wx_data", nil))
	wantCode(t, bad, nkp.CodeBadParams, "U_NATIVE")
}
