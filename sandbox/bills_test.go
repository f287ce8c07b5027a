package sandbox_test

import (
	"encoding/csv"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

func fetchBill(t *testing.T, inst *sandboxtest.Instance, bill, fileDate string) [][]string {
	t.Helper()
	r, err := inst.NKPClient().FileQuery(testCtx(t), nkp.FileQueryRequest{ReqDate: day0, ReqSeqID: "FQ" + bill, HuifuID: sandbox.DevHuifuID, FileDate: fileDate, BillType: bill})
	if err != nil {
		t.Fatal(err)
	}
	if r.RespCode != nkp.CodeAccepted || len(r.FileDetails) != 1 || len(r.TaskDetails) != 1 || r.TaskDetails[0].TaskStat != nkp.StatSuccess {
		t.Fatalf("filequery %s %s = %+v", bill, fileDate, r)
	}
	fd := r.FileDetails[0]
	if fd.FileName != sandbox.BillFileName(sandbox.DevHuifuID, bill, fd.FileDate) || !strings.HasPrefix(fd.DownloadURL, inst.URL+"/bills/") {
		t.Fatalf("file detail = %+v", fd)
	}
	resp, err := inst.HTTP.Get(fd.DownloadURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("download: HTTP %d %s", resp.StatusCode, body)
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestReconciliation builds a day of activity and checks that the trade
// and settlement files say exactly what the ledger holds.
func TestReconciliation(t *testing.T) {
	inst, clock := start(t)
	// Day 1: three orders: one paid, one paid then partly refunded, one
	// failed; an order of another merchant, paid.
	placeOrder(t, inst, with(order("B1"), "trans_amt", "10.00"))
	placeOrder(t, inst, with(order("B2"), "trans_amt", "3.33", "trade_type", upstream.TradeAlipayNative, "wx_data", nil))
	placeOrder(t, inst, order("B3"))
	placeOrder(t, inst, with(order("B4"), "huifu_id", "6666000100000099"))
	clock.Advance(time.Minute)
	inst.SettlePayment(t, day0, "B1", sandbox.ResultPaid)
	inst.SettlePayment(t, day0, "B2", sandbox.ResultPaid)
	inst.SettlePayment(t, day0, "B3", sandbox.ResultFailed)
	if _, err := inst.Control.SettlePayment(testCtx(t), sandbox.SettleRequest{HuifuID: "6666000100000099", ReqDate: day0, ReqSeqID: "B4", Result: sandbox.ResultPaid}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, call(t, inst, nkp.PathRefund, map[string]any{"req_date": day0, "req_seq_id": "BR1", "huifu_id": sandbox.DevHuifuID, "ord_amt": "1.11", "org_req_date": day0, "org_req_seq_id": "B2"}), nkp.CodeProcessing, "")
	wantCode(t, call(t, inst, nkp.PathRefund, map[string]any{"req_date": day0, "req_seq_id": "BR2", "huifu_id": sandbox.DevHuifuID, "ord_amt": "0.50", "org_req_date": day0, "org_req_seq_id": "B1"}), nkp.CodeProcessing, "")
	clock.Advance(time.Minute)
	inst.SettleRefund(t, day0, "BR1", sandbox.ResultSucceeded)
	inst.SettleRefund(t, day0, "BR2", sandbox.ResultFailed)
	orders, err := inst.Control.Orders(testCtx(t), sandbox.Filter{HuifuID: sandbox.DevHuifuID})
	if err != nil {
		t.Fatal(err)
	}
	seqOf := map[string]string{}
	for _, o := range orders {
		seqOf[o.ReqSeqID] = o.NkpSeqID
	}

	rows := fetchBill(t, inst, nkp.BillTrade, day0)
	header := rows[0]
	col := func(name string) int {
		for i, h := range header {
			if h == name {
				return i
			}
		}
		t.Fatalf("no column %s in %v", name, header)
		return -1
	}
	if len(rows) != 4 {
		t.Fatalf("trade bill has %d rows, want header + 3: %v", len(rows), rows)
	}
	want := []struct{ seq, typ, amt, fee, org string }{
		{"B1", upstream.TradeWeChatJSAPI, "10.00", "0.06", ""},
		{"B2", upstream.TradeAlipayNative, "3.33", "0.02", ""},
		{"BR1", nkp.TransRefund, "1.11", "0.00", "B2"},
	}
	for i, w := range want {
		r := rows[i+1]
		if r[col("req_seq_id")] != w.seq || r[col("trans_type")] != w.typ || r[col("trans_amt")] != w.amt || r[col("fee_amt")] != w.fee ||
			r[col("org_req_seq_id")] != w.org || r[col("trans_stat")] != nkp.StatSuccess || r[col("trans_date")] != day0 || r[col("huifu_id")] != sandbox.DevHuifuID {
			t.Errorf("row %d = %v, want %+v", i+1, r, w)
		}
		if w.org == "" && r[col("nkp_seq_id")] != seqOf[w.seq] {
			t.Errorf("row %d serial %s, want %s", i+1, r[col("nkp_seq_id")], seqOf[w.seq])
		}
	}

	settle := fetchBill(t, inst, nkp.BillSettle, day0)
	wantSettle := []string{day0, sandbox.DevHuifuID, "2", "13.33", "1", "1.11", "0.08", "12.14"}
	if len(settle) != 2 || strings.Join(settle[1], ",") != strings.Join(wantSettle, ",") {
		t.Fatalf("settle bill = %v, want %v", settle, wantSettle)
	}
	if got := fetchBill(t, inst, nkp.BillSettleMon, "202506"); len(got) != 2 || strings.Join(got[1], ",") != strings.Join(wantSettle, ",") {
		t.Fatalf("monthly settle bill = %v", got)
	}
	if got := fetchBill(t, inst, nkp.BillTradeMonth, "20250601"); len(got) != 4 {
		t.Fatalf("monthly trade bill = %v", got)
	}
	for _, bill := range []string{nkp.BillSplit, nkp.BillWithdrawal} {
		if got := fetchBill(t, inst, bill, day0); len(got) != 1 {
			t.Fatalf("%s = %v, want the header only", bill, got)
		}
	}
	// Another day has an empty trade bill and a zero settlement.
	if got := fetchBill(t, inst, nkp.BillTrade, "20250614"); len(got) != 1 {
		t.Fatalf("empty day = %v", got)
	}
	if got := fetchBill(t, inst, nkp.BillSettle, "20250614"); len(got) != 2 || got[1][7] != "0.00" {
		t.Fatalf("empty day settle = %v", got)
	}

	for _, tc := range []struct{ bill, date, desc string }{
		{"DAILY_BILL", day0, "bill_type"},
		{nkp.BillTrade, "20250616", "future"},
		{nkp.BillTrade, "2025061", "file_date"},
		{nkp.BillTradeMonth, "2025-06", "file_date"},
	} {
		wantCode(t, call(t, inst, nkp.PathFileQuery, map[string]any{"req_date": day0, "req_seq_id": "FQX", "huifu_id": sandbox.DevHuifuID, "file_date": tc.date, "bill_type": tc.bill}),
			nkp.CodeBadParams, tc.desc)
	}
	wantCode(t, call(t, inst, nkp.PathFileQuery, map[string]any{"req_date": day0, "req_seq_id": "FQX", "huifu_id": sandbox.DevHuifuID, "file_date": day0}),
		nkp.CodeBadParams, "bill_type is required")
	for _, path := range []string{"/bills/x/NOPE/20250615/x.csv", "/bills/" + sandbox.DevHuifuID + "/TRADE_BILL/20250615/other.csv"} {
		resp, err := inst.HTTP.Get(inst.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: HTTP %d", path, resp.StatusCode)
		}
	}
}
