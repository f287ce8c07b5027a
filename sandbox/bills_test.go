package sandbox_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// bill is a downloaded reconciliation file, split into its parts.
type bill struct {
	raw     []byte
	header  []string
	rows    [][]string
	sumHead []string
	sum     []string
}

// col returns the value of the column whose header carries key, as in
// "交易金额(trans_amt)".
func (b bill) col(t *testing.T, row []string, key string) string {
	t.Helper()
	for i, h := range b.header {
		if strings.HasSuffix(h, "("+key+")") {
			return row[i]
		}
	}
	t.Fatalf("no column %s in %v", key, b.header)
	return ""
}

func fileDetail(t *testing.T, inst *sandboxtest.Instance, billType, fileDate string) nkp.FileDetail {
	t.Helper()
	now := time.Now
	if inst.Config.Clock != nil {
		now = inst.Config.Clock
	}
	// The upstream takes only today's req_date (Beijing time).
	r, err := inst.NKPClient().FileQuery(testCtx(t), nkp.FileQueryRequest{ReqDate: nkp.ReqDate(now()), ReqSeqID: "FQ" + billType, HuifuID: sandbox.DevHuifuID, FileDate: fileDate, BillType: billType})
	if err != nil {
		t.Fatal(err)
	}
	if r.RespCode != nkp.CodeAccepted || len(r.FileDetails) != 1 || len(r.TaskDetails) != 1 || r.TaskDetails[0].TaskStat != nkp.StatSuccess {
		t.Fatalf("filequery %s %s = %+v", billType, fileDate, r)
	}
	fd := r.FileDetails[0]
	if fd.FileName != sandbox.BillFileName(sandbox.DevHuifuID, billType, fd.FileDate) || !strings.HasPrefix(fd.DownloadURL, inst.URL+"/bills/") {
		t.Fatalf("file detail = %+v", fd)
	}
	return fd
}

func fetchBill(t *testing.T, inst *sandboxtest.Instance, billType, fileDate string) bill {
	t.Helper()
	fd := fileDetail(t, inst, billType, fileDate)
	resp, err := inst.HTTP.Get(fd.DownloadURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("download: HTTP %d %s", resp.StatusCode, raw)
	}
	sum := sha256.Sum256(raw)
	if got, want := resp.Header.Get("Repr-Digest"), "sha-256=:"+base64.StdEncoding.EncodeToString(sum[:])+":"; got != want {
		t.Fatalf("Repr-Digest = %q, want %q", got, want)
	}
	if resp.ContentLength != int64(len(raw)) || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("Content-Length %d for %d bytes, Accept-Ranges %q", resp.ContentLength, len(raw), resp.Header.Get("Accept-Ranges"))
	}
	if !bytes.HasPrefix(raw, []byte("\ufeff")) {
		t.Fatal("the file does not start with a UTF-8 byte order mark")
	}
	cr := csv.NewReader(bytes.NewReader(raw[3:]))
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 3 || !strings.HasPrefix(recs[len(recs)-2][0], "总笔数") {
		t.Fatalf("file lacks a header or a summary: %q", recs)
	}
	return bill{raw: raw, header: recs[0], rows: recs[1 : len(recs)-2], sumHead: recs[len(recs)-2], sum: recs[len(recs)-1]}
}

// tradeDay builds a day of activity: two payments paid, one failed, one
// closed, an order of another merchant; one refund succeeded and one
// failed. It returns the serials of the dev merchant's orders.
func tradeDay(t *testing.T, inst *sandboxtest.Instance, clock *sandboxtest.Clock) map[string]string {
	t.Helper()
	placeOrder(t, inst, with(order("B1"), "trans_amt", "10.00"))
	placeOrder(t, inst, with(order("B2"), "trans_amt", "3.33", "trade_type", upstream.TradeAlipayNative, "wx_data", nil))
	placeOrder(t, inst, order("B3"))
	placeOrder(t, inst, order("B5"))
	placeOrder(t, inst, with(order("B4"), "huifu_id", "6666000100000099"))
	clock.Advance(time.Minute)
	inst.SettlePayment(t, day0, "B1", sandbox.ResultPaid)
	inst.SettlePayment(t, day0, "B2", sandbox.ResultPaid)
	inst.SettlePayment(t, day0, "B3", sandbox.ResultFailed)
	wantCode(t, call(t, inst, nkp.PathClose, map[string]any{"req_date": day0, "req_seq_id": "C5", "huifu_id": sandbox.DevHuifuID, "org_req_date": day0, "org_req_seq_id": "B5"}), nkp.CodeAccepted, "")
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
	return seqOf
}

// TestReconciliationFiles builds a day of activity and checks that every
// bill says exactly what the ledger holds.
func TestReconciliationFiles(t *testing.T) {
	inst, clock := start(t)
	seqOf := tradeDay(t, inst, clock)

	trade := fetchBill(t, inst, nkp.BillTrade, day0)
	want := []struct{ seq, typ, stat, amt, fee, settle, org string }{
		{"B1", upstream.TradeWeChatJSAPI, "S", "10.00", "0.06", "9.94", ""},
		{"B2", upstream.TradeAlipayNative, "S", "3.33", "0.02", "3.31", ""},
		{"B3", upstream.TradeWeChatJSAPI, "F", "1.00", "0.00", "0.00", ""},
		{"BR1", nkp.TransRefund, "S", "1.11", "0.00", "-1.11", "B2"},
		{"BR2", nkp.TransRefund, "F", "0.50", "0.00", "0.00", "B1"},
	}
	if len(trade.rows) != len(want) {
		t.Fatalf("trade bill has %d rows, want %d (the closed order and the other merchant's are no part of it): %q", len(trade.rows), len(want), trade.rows)
	}
	for i, w := range want {
		r := trade.rows[i]
		got := []string{trade.col(t, r, "req_seq_id"), trade.col(t, r, "trans_type"), trade.col(t, r, "trans_stat"), trade.col(t, r, "trans_amt"),
			trade.col(t, r, "fee_amt"), trade.col(t, r, "settle_amt"), trade.col(t, r, "org_req_seq_id")}
		if strings.Join(got, ",") != strings.Join([]string{w.seq, w.typ, w.stat, w.amt, w.fee, w.settle, w.org}, ",") {
			t.Errorf("row %d = %v, want %+v", i+1, got, w)
		}
		if trade.col(t, r, "trans_date") != day0 || trade.col(t, r, "huifu_id") != sandbox.DevHuifuID || len(trade.col(t, r, "trans_time")) != 6 {
			t.Errorf("row %d date, time or merchant wrong: %v", i+1, r)
		}
		if w.org == "" && trade.col(t, r, "nkp_seq_id") != seqOf[w.seq] {
			t.Errorf("row %d serial %s, want %s", i+1, trade.col(t, r, "nkp_seq_id"), seqOf[w.seq])
		}
		if w.org != "" && trade.col(t, r, "org_nkp_seq_id") != seqOf[w.org] {
			t.Errorf("row %d original serial %s, want %s", i+1, trade.col(t, r, "org_nkp_seq_id"), seqOf[w.org])
		}
	}
	if got := strings.Join(trade.sum, ","); got != "5,2,13.33,1,1.11,0.08,12.14" {
		t.Errorf("trade summary = %s", got)
	}

	settle := fetchBill(t, inst, nkp.BillSettle, day0)
	wantSettle := strings.Join([]string{day0, sandbox.DevHuifuID, "2", "13.33", "1", "1.11", "0.08", "12.14"}, ",")
	if len(settle.rows) != 1 || strings.Join(settle.rows[0], ",") != wantSettle || strings.Join(settle.sum, ",") != "1,13.33,1.11,0.08,12.14" {
		t.Fatalf("settle bill = %q / %q, want %s", settle.rows, settle.sum, wantSettle)
	}
	if got := fetchBill(t, inst, nkp.BillSettleMon, "202506"); len(got.rows) != 1 || strings.Join(got.rows[0], ",") != wantSettle {
		t.Fatalf("monthly settle bill = %q", got.rows)
	}
	if got := fetchBill(t, inst, nkp.BillTradeMonth, "20250601"); len(got.rows) != len(want) || got.sum[0] != "5" {
		t.Fatalf("monthly trade bill = %q", got.rows)
	}
	if got := fetchBill(t, inst, nkp.BillSplit, day0); len(got.rows) != 0 || strings.Join(got.sum, ",") != "0,0.00" {
		t.Fatalf("split bill = %q %q, want no rows", got.rows, got.sum)
	}
	// The day's settlement is paid out the next day.
	if got := fetchBill(t, inst, nkp.BillWithdrawal, day0); len(got.rows) != 0 {
		t.Fatalf("withdrawal bill of the trading day = %q", got.rows)
	}
	clock.Advance(24 * time.Hour)
	wd := fetchBill(t, inst, nkp.BillWithdrawal, "20250616")
	if len(wd.rows) != 1 || wd.col(t, wd.rows[0], "cash_amt") != "12.14" || wd.col(t, wd.rows[0], "trans_stat") != "S" || strings.Join(wd.sum, ",") != "1,12.14,0.00,12.14" {
		t.Fatalf("withdrawal bill = %q %q", wd.rows, wd.sum)
	}
	// A day without activity has an empty trade bill and a zero settlement.
	if got := fetchBill(t, inst, nkp.BillTrade, "20250614"); len(got.rows) != 0 || got.sum[0] != "0" {
		t.Fatalf("empty day = %q", got.rows)
	}
	if got := fetchBill(t, inst, nkp.BillSettle, "20250614"); len(got.rows) != 1 || got.rows[0][7] != "0.00" {
		t.Fatalf("empty day settle = %q", got.rows)
	}

	today := nkp.ReqDate(clock.Now())
	for _, tc := range []struct{ bill, date, desc string }{
		{"DAILY_BILL", day0, "bill_type"},
		{nkp.BillTrade, "20250617", "future"},
		{nkp.BillTrade, "2025061", "file_date"},
		{nkp.BillTradeMonth, "2025-06", "file_date"},
	} {
		wantCode(t, call(t, inst, nkp.PathFileQuery, map[string]any{"req_date": today, "req_seq_id": "FQX", "huifu_id": sandbox.DevHuifuID, "file_date": tc.date, "bill_type": tc.bill}),
			nkp.CodeBadParams, tc.desc)
	}
	wantCode(t, call(t, inst, nkp.PathFileQuery, map[string]any{"req_date": today, "req_seq_id": "FQX", "huifu_id": sandbox.DevHuifuID, "file_date": day0}),
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

// TestBillDialect checks the serial columns follow the profile.
func TestBillDialect(t *testing.T) {
	inst, clock := start(t, sandboxtest.WithProfile(nkp.ProfileDouGong))
	seqOf := tradeDay(t, inst, clock)
	trade := fetchBill(t, inst, nkp.BillTrade, day0)
	if trade.col(t, trade.rows[0], "hf_seq_id") != seqOf["B1"] || trade.col(t, trade.rows[3], "org_hf_seq_id") != seqOf["B2"] {
		t.Fatalf("dougong serials wrong: %q", trade.rows)
	}
	for _, h := range trade.header {
		if strings.Contains(h, "nkp_seq_id") {
			t.Fatalf("dougong header names %s", h)
		}
	}
}

// TestBillRanges resumes a download with a byte range and checks the
// checksum headers describe the whole file.
func TestBillRanges(t *testing.T) {
	inst, clock := start(t)
	tradeDay(t, inst, clock)
	full := fetchBill(t, inst, nkp.BillTrade, day0)
	fd := fileDetail(t, inst, nkp.BillTrade, day0)
	get := func(h map[string]string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, fd.DownloadURL, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := inst.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	first, _ := get(nil)
	etag := first.Header.Get("ETag")
	sum := sha256.Sum256(full.raw)
	if etag != `"`+hex.EncodeToString(sum[:16])+`"` {
		t.Fatalf("ETag = %s", etag)
	}
	half := len(full.raw) / 2
	resp, tail := get(map[string]string{"Range": "bytes=" + strconv.Itoa(half) + "-", "If-Range": etag})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(tail, full.raw[half:]) || resp.Header.Get("Repr-Digest") != first.Header.Get("Repr-Digest") {
		t.Fatalf("range: HTTP %d, %d bytes, want %d", resp.StatusCode, len(tail), len(full.raw)-half)
	}
	// A file that changed since: the whole new file comes back.
	if _, err := inst.Control.AddBillDifference(testCtx(t), sandbox.BillDifference{Kind: sandbox.BillAmount, HuifuID: sandbox.DevHuifuID, ReqSeqID: "B1", TransAmt: 999}); err != nil {
		t.Fatal(err)
	}
	resp, body := get(map[string]string{"Range": "bytes=" + strconv.Itoa(half) + "-", "If-Range": etag})
	if resp.StatusCode != http.StatusOK || bytes.Equal(body, full.raw) || resp.Header.Get("ETag") == etag {
		t.Fatalf("changed file: HTTP %d, ETag %s", resp.StatusCode, resp.Header.Get("ETag"))
	}
}

// TestBillDifferences injects each kind of difference and checks the files
// report it, and only it.
func TestBillDifferences(t *testing.T) {
	inst, clock := start(t)
	seqOf := tradeDay(t, inst, clock)
	add := func(d sandbox.BillDifference) {
		t.Helper()
		d.HuifuID = sandbox.DevHuifuID
		if _, err := inst.Control.AddBillDifference(testCtx(t), d); err != nil {
			t.Fatal(err)
		}
	}
	add(sandbox.BillDifference{Kind: sandbox.BillExtraTrade, Date: day0, ReqSeqID: "X1", TransAmt: 700})
	add(sandbox.BillDifference{Kind: sandbox.BillAmount, ReqSeqID: "B1", TransAmt: 1001})
	add(sandbox.BillDifference{Kind: sandbox.BillState, ReqSeqID: "B2"})
	add(sandbox.BillDifference{Kind: sandbox.BillOmit, ReqSeqID: "BR1"})
	add(sandbox.BillDifference{Kind: sandbox.BillMalformed, ReqSeqID: "B3"})
	add(sandbox.BillDifference{Kind: sandbox.BillMalformed, Date: day0})
	got, err := inst.Control.BillDifferences(testCtx(t))
	if err != nil || len(got) != 6 {
		t.Fatalf("differences = %+v, %v", got, err)
	}
	trade := fetchBill(t, inst, nkp.BillTrade, day0)
	bySeq := map[string][]string{}
	junk := 0
	for _, r := range trade.rows {
		if len(r) != len(trade.header) {
			junk++
			continue
		}
		bySeq[trade.col(t, r, "req_seq_id")] = r
	}
	if junk != 1 || len(bySeq) != 5 || bySeq["BR1"] != nil {
		t.Fatalf("rows = %q", trade.rows)
	}
	if r := bySeq["X1"]; r == nil || trade.col(t, r, "trans_amt") != "7.00" || trade.col(t, r, "trans_stat") != "S" || trade.col(t, r, "nkp_seq_id") == "" {
		t.Errorf("extra trade = %v", r)
	}
	if r := bySeq["B1"]; trade.col(t, r, "trans_amt") != "10.01" || trade.col(t, r, "nkp_seq_id") != seqOf["B1"] {
		t.Errorf("amount = %v", r)
	}
	if r := bySeq["B2"]; trade.col(t, r, "trans_stat") != "F" || trade.col(t, r, "fee_amt") != "0.00" {
		t.Errorf("state = %v", r)
	}
	if r := bySeq["B3"]; trade.col(t, r, "trans_amt") != "12.3.4" {
		t.Errorf("malformed = %v", r)
	}
	// The settlement follows the file: B1 10.01 and X1 7.00 paid, B2
	// failed, no refund.
	settle := fetchBill(t, inst, nkp.BillSettle, day0)
	if got := strings.Join(settle.rows[0][2:], ","); got != "2,17.01,0,0.00,0.10,16.91" {
		t.Errorf("settlement = %s", got)
	}

	// A pending file has no download yet.
	add(sandbox.BillDifference{Kind: sandbox.BillPending, BillType: nkp.BillSettle, Date: day0})
	now := time.Now
	if inst.Config.Clock != nil {
		now = inst.Config.Clock
	}
	// The upstream takes only today's req_date (Beijing time).
	r, err := inst.NKPClient().FileQuery(testCtx(t), nkp.FileQueryRequest{ReqDate: nkp.ReqDate(now()), ReqSeqID: "FQP", HuifuID: sandbox.DevHuifuID, FileDate: day0, BillType: nkp.BillSettle})
	if err != nil || len(r.FileDetails) != 0 || len(r.TaskDetails) != 1 || r.TaskDetails[0].TaskStat != nkp.StatProcessing {
		t.Fatalf("pending file query = %+v, %v", r, err)
	}
	resp, err := inst.HTTP.Get(settleURL(inst))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("pending download: HTTP %d", resp.StatusCode)
	}

	if err := inst.Control.ClearBillDifferences(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if trade := fetchBill(t, inst, nkp.BillTrade, day0); len(trade.rows) != 5 || trade.sum[0] != "5" {
		t.Fatalf("after clearing: %q", trade.rows)
	}

	for _, bad := range []sandbox.BillDifference{
		{Kind: "nonsense", HuifuID: sandbox.DevHuifuID},
		{Kind: sandbox.BillAmount, HuifuID: sandbox.DevHuifuID, ReqSeqID: "B1"},
		{Kind: sandbox.BillOmit, HuifuID: sandbox.DevHuifuID},
		{Kind: sandbox.BillExtraTrade, HuifuID: sandbox.DevHuifuID, Date: "2025-06-15"},
		{Kind: sandbox.BillState, HuifuID: sandbox.DevHuifuID, ReqSeqID: "B1", TransStat: "P"},
		{Kind: sandbox.BillPending, HuifuID: sandbox.DevHuifuID, BillType: "DAILY", Date: day0},
		{Kind: sandbox.BillOmit, ReqSeqID: "B1"},
	} {
		if _, err := inst.Control.AddBillDifference(testCtx(t), bad); err == nil || !strings.Contains(err.Error(), "bad_request") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if got, _ := inst.Control.BillDifferences(testCtx(t)); len(got) != 0 {
		t.Errorf("refused differences were kept: %+v", got)
	}
}

// settleURL is the download URL of the dev merchant's settlement of day0.
func settleURL(inst *sandboxtest.Instance) string {
	return inst.URL + "/bills/" + sandbox.DevHuifuID + "/" + nkp.BillSettle + "/" + day0 + "/" + sandbox.BillFileName(sandbox.DevHuifuID, nkp.BillSettle, day0)
}
