package sandbox_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// TestJSPay places one order of each trade type with the typed client and
// checks what the front end needs: a pay_info whose paySign verifies with
// the WeChat key, or a qr_code served by the sandbox.
func TestJSPay(t *testing.T) {
	inst, _ := start(t)
	client := inst.NKPClient()
	tests := []struct {
		name      string
		tradeType string
		wxData    string
		wantAppID string
	}{
		{"jsapi with sub_appid", upstream.TradeWeChatJSAPI, `{"sub_appid":"wxabc","sub_openid":"oUser1"}`, "wxabc"},
		{"jsapi with openid only", upstream.TradeWeChatJSAPI, `{"openid":"oUser2"}`, sandbox.DevWeChatAppID},
		{"mini-program", upstream.TradeWeChatMiniApp, `{"sub_appid":"` + sandbox.DevMiniAppID + `","sub_openid":"oMini"}`, sandbox.DevMiniAppID},
		{"alipay native", upstream.TradeAlipayNative, "", ""},
	}
	seen := map[string]bool{}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := nkp.JSPayRequest{
				ReqDate: day0, ReqSeqID: "JS" + string(rune('A'+i)), HuifuID: sandbox.DevHuifuID,
				GoodsDesc: "商品 & <goods>", TradeType: tc.tradeType, TransAmt: 1234, WxData: tc.wxData,
			}
			resp, err := client.JSPay(testCtx(t), req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.RespCode != nkp.CodeProcessing || resp.TransStat != nkp.StatProcessing || resp.TransAmt != 1234 ||
				resp.ReqSeqID != req.ReqSeqID || resp.NkpSeqID == "" || resp.PartyOrderID == "" {
				t.Fatalf("answer = %+v", resp)
			}
			if seen[resp.NkpSeqID] || seen[resp.PartyOrderID] {
				t.Fatalf("ids are not unique: %+v", resp)
			}
			seen[resp.NkpSeqID], seen[resp.PartyOrderID] = true, true
			if tc.tradeType == upstream.TradeAlipayNative {
				if resp.PayInfo != "" || !strings.HasPrefix(resp.QRCode, inst.URL+"/qr/") {
					t.Fatalf("native answer = %+v, want a qr_code on the sandbox", resp)
				}
				return
			}
			var pi upstream.PayInfo
			if err := json.Unmarshal([]byte(resp.PayInfo), &pi); err != nil {
				t.Fatalf("pay_info %q: %v", resp.PayInfo, err)
			}
			if pi.AppID != tc.wantAppID || pi.SignType != "RSA" || !strings.HasPrefix(pi.Package, "prepay_id=") ||
				len(pi.NonceStr) != 32 || pi.TimeStamp != "1749952800" {
				t.Fatalf("pay_info = %+v", pi)
			}
			msg := pi.AppID + "\n" + pi.TimeStamp + "\n" + pi.NonceStr + "\n" + pi.Package + "\n"
			if err := nkp.Verify(inst.Keys.WeChat.Public, []byte(msg), pi.PaySign); err != nil {
				t.Fatalf("paySign does not verify with the WeChat key: %v", err)
			}
			if nkp.Verify(inst.Keys.Upstream.Public, []byte(msg), pi.PaySign) == nil {
				t.Fatal("paySign verifies with the upstream key; it must be the WeChat key's")
			}
		})
	}
	if st := inst.Stats(t, sandbox.DevHuifuID); st.Orders != 4 || st.OrdersByType[upstream.TradeWeChatJSAPI] != 2 {
		t.Fatalf("stats = %+v", st)
	}
}

// TestJSPayRefusals proves every validation rule answers 10000000 with a
// resp_desc naming the field, and creates no order.
func TestJSPayRefusals(t *testing.T) {
	inst, _ := start(t)
	base := order("BAD")
	tests := []struct {
		name string
		data map[string]any
		desc string
	}{
		{"missing req_date", with(base, "req_date", nil), "req_date is required"},
		{"bad req_date", with(base, "req_date", "2025-06-15"), "req_date"},
		{"missing req_seq_id", with(base, "req_seq_id", nil), "req_seq_id is required"},
		{"bad req_seq_id", with(base, "req_seq_id", "a b"), "req_seq_id"},
		{"missing huifu_id", with(base, "huifu_id", nil), "huifu_id is required"},
		{"missing goods_desc", with(base, "goods_desc", nil), "goods_desc is required"},
		{"missing trade_type", with(base, "trade_type", nil), "trade_type is required"},
		{"unknown trade_type", with(base, "trade_type", "T_MICROPAY"), "trade_type"},
		{"missing trans_amt", with(base, "trans_amt", nil), "trans_amt is required"},
		{"amount three decimals", with(base, "trans_amt", "0.001"), "trans_amt"},
		{"amount exponent", with(base, "trans_amt", "1e2"), "trans_amt"},
		{"amount number", with(base, "trans_amt", 1.5), "trans_amt must be a string"},
		{"amount integer number", with(base, "trans_amt", 100), "trans_amt must be a string"},
		{"amount zero", with(base, "trans_amt", "0.00"), "at least 0.01"},
		{"amount negative", with(base, "trans_amt", "-1.00"), "trans_amt"},
		{"amount no decimals", with(base, "trans_amt", "1"), "trans_amt"},
		{"amount one decimal", with(base, "trans_amt", "1.5"), "trans_amt"},
		{"amount leading zero", with(base, "trans_amt", "01.00"), "trans_amt"},
		{"amount spaces", with(base, "trans_amt", " 1.00"), "trans_amt"},
		{"goods_desc a number", with(base, "goods_desc", 7), "goods_desc must be a string"},
		{"wx_data missing", with(base, "wx_data", nil), "wx_data is required"},
		{"wx_data not JSON", with(base, "wx_data", "{"), "wx_data"},
		{"wx_data an object", with(base, "wx_data", map[string]any{"openid": "o1"}), "wx_data must be a JSON object sent as a string"},
		{"wx_data sub_appid only", with(base, "wx_data", `{"sub_appid":"wx1"}`), "openid"},
		{"wx_data sub_openid only", with(base, "wx_data", `{"sub_openid":"o1"}`), "openid"},
		{"wx_data openid a number", with(base, "wx_data", `{"openid":5}`), "wx_data.openid"},
		{"time_expire bad", with(base, "time_expire", "2025061512"), "time_expire"},
		{"time_expire past", with(base, "time_expire", "20250615095959"), "time_expire"},
		{"notify_url relative", with(base, "notify_url", "/notify"), "notify_url"},
		{"notify_url ftp", with(base, "notify_url", "ftp://h:8000/n"), "notify_url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, call(t, inst, nkp.PathJSPay, tc.data), nkp.CodeBadParams, tc.desc)
		})
	}
	if st := inst.Stats(t, ""); st.Orders != 0 {
		t.Fatalf("refused requests created %d orders", st.Orders)
	}
	// After all refusals the serial is still free.
	placeOrder(t, inst, base)
}

func TestStrictNotifyURL(t *testing.T) {
	strict, _ := start(t, sandboxtest.WithConfig(func(c *sandbox.Config) { c.StrictNotifyURL = true }))
	lax, _ := start(t)
	tests := []struct {
		url        string
		strictDesc string // "" means accepted
	}{
		{"http://127.0.0.1:8000/notify", ""},
		{"https://shop.example:9005/n", ""},
		{"http://127.0.0.1:7999/notify", "port between 8000 and 9005"},
		{"http://127.0.0.1:9006/notify", "port between 8000 and 9005"},
		{"http://shop.example/notify", "port between 8000 and 9005"},
		{"http://127.0.0.1:8080/notify?x=1", "query string"},
	}
	for i, tc := range tests {
		seq := "N" + string(rune('A'+i))
		out := call(t, strict, nkp.PathJSPay, with(order(seq), "notify_url", tc.url))
		if tc.strictDesc == "" {
			wantCode(t, out, nkp.CodeProcessing, "")
		} else {
			wantCode(t, out, nkp.CodeBadParams, tc.strictDesc)
		}
		wantCode(t, call(t, lax, nkp.PathJSPay, with(order(seq), "notify_url", tc.url)), nkp.CodeProcessing, "")
	}
}

func TestDuplicateSerial(t *testing.T) {
	inst, clock := start(t)
	placeOrder(t, inst, order("DUP1"))
	wantCode(t, call(t, inst, nkp.PathJSPay, order("DUP1")), nkp.CodeDuplicate, "DUP1")
	wantCode(t, call(t, inst, nkp.PathJSPay, with(order("DUP1"), "trans_amt", "2.00")), nkp.CodeDuplicate, "")
	// Another day or another merchant may reuse it.
	clock.Advance(24 * time.Hour)
	placeOrder(t, inst, with(order("DUP1"), "req_date", "20250616"))
	clock.Advance(-24 * time.Hour)
	placeOrder(t, inst, with(order("DUP1"), "huifu_id", "6666000100000099"))
	if st := inst.Stats(t, ""); st.Orders != 3 {
		t.Fatalf("orders = %d, want 3", st.Orders)
	}
}

func TestPaymentQuery(t *testing.T) {
	inst, clock := start(t)
	client := inst.NKPClient()
	placed, err := client.JSPay(testCtx(t), nkp.JSPayRequest{ReqDate: day0, ReqSeqID: "Q1", HuifuID: sandbox.DevHuifuID,
		GoodsDesc: "g", TradeType: upstream.TradeAlipayNative, TransAmt: 250})
	if err != nil {
		t.Fatal(err)
	}
	byKey := []nkp.PaymentQueryRequest{
		{HuifuID: sandbox.DevHuifuID, OrgReqDate: day0, OrgReqSeqID: "Q1"},
		{HuifuID: sandbox.DevHuifuID, OrgReqDate: day0, OrgNkpSeqID: placed.NkpSeqID},
		{HuifuID: sandbox.DevHuifuID, OrgReqDate: day0, OutOrdID: placed.PartyOrderID},
	}
	for _, q := range byKey {
		r, err := client.QueryPayment(testCtx(t), q)
		if err != nil {
			t.Fatal(err)
		}
		if r.RespCode != nkp.CodeAccepted || r.TransStat != nkp.StatProcessing || r.TransAmt != 250 || r.OrgReqSeqID != "Q1" || r.EndTime != "" {
			t.Fatalf("query %+v = %+v", q, r)
		}
	}
	clock.Advance(30 * time.Second)
	inst.SettlePayment(t, day0, "Q1", sandbox.ResultPaid)
	r, err := client.QueryPayment(testCtx(t), byKey[0])
	if err != nil {
		t.Fatal(err)
	}
	if r.TransStat != nkp.StatSuccess || r.EndTime != "20250615100030" || r.OutTransID == "" || r.NkpSeqID != placed.NkpSeqID {
		t.Fatalf("paid order = %+v", r)
	}
	notFound := []map[string]any{
		{"huifu_id": sandbox.DevHuifuID, "org_req_date": day0, "org_req_seq_id": "NOPE"},
		{"huifu_id": sandbox.DevHuifuID, "org_req_date": "20250614", "org_req_seq_id": "Q1"},
		{"huifu_id": "6666000100000099", "org_req_date": day0, "org_req_seq_id": "Q1"},
		{"huifu_id": sandbox.DevHuifuID, "org_req_date": day0, "org_nkp_seq_id": "0030NOPE"},
	}
	for _, q := range notFound {
		wantCode(t, call(t, inst, nkp.PathPaymentQuery, q), nkp.CodeNotFound, "")
	}
	wantCode(t, call(t, inst, nkp.PathPaymentQuery, map[string]any{"huifu_id": sandbox.DevHuifuID, "org_req_date": day0}),
		nkp.CodeBadParams, "one of org_req_seq_id, org_nkp_seq_id, out_ord_id")
}

// TestTimeExpire drives the clock past time_expire (and past the default
// two hours) and checks the orders closed by themselves.
func TestTimeExpire(t *testing.T) {
	inst, clock := start(t)
	placeOrder(t, inst, with(order("EXP1"), "time_expire", "20250615101000"))
	placeOrder(t, inst, order("EXP2"))
	query := func(seq string) nkp.PaymentQueryResponse {
		r, err := inst.NKPClient().QueryPayment(testCtx(t), nkp.PaymentQueryRequest{HuifuID: sandbox.DevHuifuID, OrgReqDate: day0, OrgReqSeqID: seq})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	clock.Advance(9*time.Minute + 59*time.Second)
	if r := query("EXP1"); r.TransStat != nkp.StatProcessing {
		t.Fatalf("before time_expire: %+v", r)
	}
	clock.Advance(time.Second)
	r := query("EXP1")
	if r.TransStat != nkp.StatFailure || r.BankCode != sandbox.BankCodeOrderClosed ||
		!strings.Contains(r.BankMessage, "closed") || r.EndTime != "20250615101000" {
		t.Fatalf("after time_expire: %+v", r)
	}
	if r := query("EXP2"); r.TransStat != nkp.StatProcessing {
		t.Fatalf("default expiry came early: %+v", r)
	}
	clock.Advance(2 * time.Hour)
	if r := query("EXP2"); r.TransStat != nkp.StatFailure || r.BankCode != sandbox.BankCodeOrderClosed {
		t.Fatalf("default two hours did not expire the order: %+v", r)
	}
	// An expired order can be neither paid nor refunded.
	if _, err := inst.Control.SettlePayment(testCtx(t), sandbox.SettleRequest{HuifuID: sandbox.DevHuifuID, ReqDate: day0, ReqSeqID: "EXP1", Result: sandbox.ResultPaid}); err == nil {
		t.Fatal("settling an expired order succeeded")
	}
	if st := inst.Stats(t, ""); st.Closed != 2 || st.Paid != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestClose(t *testing.T) {
	inst, clock := start(t)
	client := inst.NKPClient()
	placeOrder(t, inst, order("C1"))
	placeOrder(t, inst, order("C2"))
	closeReq := func(seq, org string) nkp.CloseRequest {
		return nkp.CloseRequest{ReqDate: day0, ReqSeqID: seq, HuifuID: sandbox.DevHuifuID, OrgReqDate: day0, OrgReqSeqID: org}
	}
	clock.Advance(59 * time.Second)
	out := call(t, inst, nkp.PathClose, map[string]any{"req_date": day0, "req_seq_id": "CL0", "huifu_id": sandbox.DevHuifuID, "org_req_date": day0, "org_req_seq_id": "C1"})
	wantCode(t, out, nkp.CodeBadParams, "younger than one minute")
	clock.Advance(time.Second)
	r, err := client.Close(testCtx(t), closeReq("CL0", "C1")) // a refused close does not use up its serial
	if err != nil {
		t.Fatal(err)
	}
	if r.RespCode != nkp.CodeAccepted || r.TransStat != nkp.StatSuccess || r.OrgTransStat != nkp.StatFailure || r.OrgReqSeqID != "C1" {
		t.Fatalf("close = %+v", r)
	}
	wantCode(t, call(t, inst, nkp.PathClose, map[string]any{"req_date": day0, "req_seq_id": "CL0", "huifu_id": sandbox.DevHuifuID, "org_req_date": day0, "org_req_seq_id": "C1"}),
		nkp.CodeDuplicate, "")
	q, err := client.QueryPayment(testCtx(t), nkp.PaymentQueryRequest{HuifuID: sandbox.DevHuifuID, OrgReqDate: day0, OrgReqSeqID: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	if q.TransStat != nkp.StatFailure || q.BankCode != nkp.BankCodeOrderClosed || !strings.Contains(q.BankMessage, "closed") {
		t.Fatalf("closed order query = %+v", q)
	}
	cq, err := client.CloseQuery(testCtx(t), closeReq("CQ1", "C1"))
	if err != nil || cq.TransStat != nkp.StatSuccess {
		t.Fatalf("close query = %+v, %v", cq, err)
	}
	cq, err = client.CloseQuery(testCtx(t), closeReq("CQ2", "C2"))
	if err != nil || cq.TransStat != nkp.StatFailure || cq.OrgTransStat != nkp.StatProcessing {
		t.Fatalf("close query of an open order = %+v, %v", cq, err)
	}
	// Closing again succeeds and changes nothing.
	if r, err := client.Close(testCtx(t), closeReq("CL1", "C1")); err != nil || r.TransStat != nkp.StatSuccess {
		t.Fatalf("second close = %+v, %v", r, err)
	}
	// A paid order cannot be closed; a closed one cannot be paid.
	inst.SettlePayment(t, day0, "C2", sandbox.ResultPaid)
	wantCode(t, call(t, inst, nkp.PathClose, map[string]any{"req_date": day0, "req_seq_id": "CL2", "huifu_id": sandbox.DevHuifuID, "org_req_date": day0, "org_req_seq_id": "C2"}),
		nkp.CodeBadParams, "paid")
	if _, err := inst.Control.SettlePayment(testCtx(t), sandbox.SettleRequest{HuifuID: sandbox.DevHuifuID, ReqDate: day0, ReqSeqID: "C1", Result: sandbox.ResultPaid}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("settling a closed order: %v", err)
	}
	wantCode(t, call(t, inst, nkp.PathClose, map[string]any{"req_date": day0, "req_seq_id": "CL3", "huifu_id": sandbox.DevHuifuID, "org_req_date": day0, "org_req_seq_id": "NOPE"}),
		nkp.CodeNotFound, "")
}

func TestRefunds(t *testing.T) {
	inst, clock := start(t)
	client := inst.NKPClient()
	rcv := newReceiver(t, nil)
	placeOrder(t, inst, with(order("R1"), "trans_amt", "10.00"))
	refund := func(seq string, amt nkp.Fen) nkp.RefundRequest {
		return nkp.RefundRequest{ReqDate: day0, ReqSeqID: seq, HuifuID: sandbox.DevHuifuID, OrdAmt: amt, OrgReqDate: day0, OrgReqSeqID: "R1", NotifyURL: rcv.srv.URL + "/refund"}
	}
	r, err := client.Refund(testCtx(t), refund("RF0", 100))
	if err != nil {
		t.Fatal(err)
	}
	if r.RespCode != nkp.CodeBadParams || !strings.Contains(r.RespDesc, "not paid") {
		t.Fatalf("refund of an unpaid order = %+v", r)
	}
	inst.SettlePayment(t, day0, "R1", sandbox.ResultPaid)
	steps := []struct {
		seq      string
		amt      nkp.Fen
		wantCode string
		settle   string
	}{
		{"RF1", 400, nkp.CodeProcessing, sandbox.ResultSucceeded},
		{"RF2", 500, nkp.CodeProcessing, ""},                   // processing: reserves 5.00
		{"RF3", 101, nkp.CodeBadParams, ""},                    // 4.00 + 5.00 + 1.01 > 10.00
		{"RF4", 100, nkp.CodeProcessing, sandbox.ResultFailed}, // exactly the rest, then fails
		{"RF5", 100, nkp.CodeProcessing, ""},                   // the failed 1.00 is refundable again
		{"RF6", 1, nkp.CodeBadParams, ""},
	}
	for _, s := range steps {
		r, err := client.Refund(testCtx(t), refund(s.seq, s.amt))
		if err != nil {
			t.Fatal(err)
		}
		if r.RespCode != s.wantCode {
			t.Fatalf("refund %s of %s: %+v", s.seq, s.amt, r)
		}
		if s.wantCode == nkp.CodeProcessing && (r.TransStat != nkp.StatProcessing || r.OrdAmt != s.amt || r.NkpSeqID == "" || r.OrgReqSeqID != "R1") {
			t.Fatalf("refund answer = %+v", r)
		}
		if s.settle != "" {
			clock.Advance(time.Second)
			inst.SettleRefund(t, day0, s.seq, s.settle)
		}
	}
	wantCode(t, call(t, inst, nkp.PathRefund, map[string]any{"req_date": day0, "req_seq_id": "RF1", "huifu_id": sandbox.DevHuifuID, "ord_amt": "0.01", "org_req_date": day0, "org_req_seq_id": "R1"}),
		nkp.CodeDuplicate, "")
	wantCode(t, call(t, inst, nkp.PathRefund, map[string]any{"req_date": day0, "req_seq_id": "RF7", "huifu_id": sandbox.DevHuifuID, "ord_amt": "0.01", "org_req_date": day0, "org_req_seq_id": "NOPE"}),
		nkp.CodeNotFound, "")
	wantCode(t, call(t, inst, nkp.PathRefund, map[string]any{"req_date": day0, "req_seq_id": "RF8", "huifu_id": sandbox.DevHuifuID, "ord_amt": "0.001", "org_req_date": day0, "org_req_seq_id": "R1"}),
		nkp.CodeBadParams, "ord_amt")

	q, err := client.QueryRefund(testCtx(t), nkp.RefundQueryRequest{HuifuID: sandbox.DevHuifuID, OrgReqDate: day0, OrgReqSeqID: "RF1"})
	if err != nil || q.TransStat != nkp.StatSuccess || q.OrdAmt != 400 || q.EndTime == "" {
		t.Fatalf("refund query RF1 = %+v, %v", q, err)
	}
	q, err = client.QueryRefund(testCtx(t), nkp.RefundQueryRequest{HuifuID: sandbox.DevHuifuID, OrgReqDate: day0, OrgReqSeqID: "RF4"})
	if err != nil || q.TransStat != nkp.StatFailure || q.BankCode != sandbox.BankCodeRefundFailed {
		t.Fatalf("refund query RF4 = %+v, %v", q, err)
	}
	q, err = client.QueryRefund(testCtx(t), nkp.RefundQueryRequest{HuifuID: sandbox.DevHuifuID, OrgReqDate: day0, OrgNkpSeqID: q.NkpSeqID})
	if err != nil || q.ReqSeqID != "RF4" {
		t.Fatalf("refund query by serial = %+v, %v", q, err)
	}
	wantCode(t, call(t, inst, nkp.PathRefundQuery, map[string]any{"huifu_id": sandbox.DevHuifuID, "org_req_date": day0, "org_req_seq_id": "NOPE"}), nkp.CodeNotFound, "")

	pq, err := client.QueryPayment(testCtx(t), nkp.PaymentQueryRequest{HuifuID: sandbox.DevHuifuID, OrgReqDate: day0, OrgReqSeqID: "R1"})
	if err != nil || pq.RefundedAmt != 400 {
		t.Fatalf("payment after refunds = %+v, %v", pq, err)
	}
	// Two settled refunds were notified, with their own serial and the
	// original payment's.
	recs := inst.WaitNotifications(t, sandbox.Filter{Kind: sandbox.KindRefund}, 5*time.Second, func(r []sandbox.NotificationRecord) bool {
		return len(r) == 2 && sandboxtest.Finished(r)
	})
	var nd nkp.NotifyData
	if err := json.Unmarshal([]byte(recs[0].RespData), &nd); err != nil {
		t.Fatal(err)
	}
	if nd.TransType != nkp.TransRefund || nd.ReqSeqID != "RF1" || nd.OrdAmt != 400 || nd.OrgReqSeqID != "R1" || nd.OrgReqDate != day0 ||
		nd.TransStat != nkp.StatSuccess || nd.NotifyType != nkp.NotifyTypeChannel || recs[0].State != sandbox.DeliveryDelivered {
		t.Fatalf("refund notification = %+v (%s)", nd, recs[0].State)
	}
	if got := rcv.requests(); len(got) != 2 || got[1].form.Get(nkp.FormRespData) == "" {
		t.Fatalf("receiver got %d requests", len(got))
	}
}
