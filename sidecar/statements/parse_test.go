package statements_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/statements"
)

const tradeHead = "\ufeff交易日期(trans_date),交易时间(trans_time),商户号(huifu_id),请求日期(req_date),请求流水号(req_seq_id),全局流水号(hf_seq_id),交易类型(trans_type),交易状态(trans_stat),交易金额(trans_amt),手续费(fee_amt),结算金额(settle_amt),原请求日期(org_req_date),原请求流水号(org_req_seq_id),原全局流水号(org_hf_seq_id),用户订单号(party_order_id),渠道交易号(out_trans_id)\r\n"

const tradeSum = "总笔数(total_count),支付笔数(pay_count),支付金额(pay_amt),退款笔数(refund_count),退款金额(refund_amt),手续费(fee_amt),结算金额(settle_amt)\r\n"

// readAll reads every row and error of a statement.
func readAll(t *testing.T, body, bill string) ([]statements.Row, []*statements.RowError, error) {
	t.Helper()
	r, err := statements.NewReader(strings.NewReader(body), "f.csv", bill)
	if err != nil {
		return nil, nil, err
	}
	var rows []statements.Row
	var errs []*statements.RowError
	for {
		row, err := r.Next()
		if errors.Is(err, io.EOF) {
			return rows, errs, nil
		}
		var re *statements.RowError
		if errors.As(err, &re) {
			errs = append(errs, re)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
}

// TestParseTrade reads a trade bill in the DouGong dialect into typed rows.
func TestParseTrade(t *testing.T) {
	body := tradeHead +
		"20250615,101500,6666000100000001,20250615,P1,0030A,T_JSAPI,S,`10.00,0.06,9.94,,,,0325,4200\r\n" +
		"20250615,101600,6666000100000001,20250615,R1,0030B,TRANS_REFUND,S,1.11,0.00,-1.11,20250615,P1,0030A,0325,\r\n" +
		tradeSum + "2,1,10.00,1,1.11,0.06,8.83\r\n"
	rows, errs, err := readAll(t, body, nkp.BillTradeMonth)
	if err != nil || len(errs) != 0 || len(rows) != 2 {
		t.Fatalf("rows %v, errors %v, %v", rows, errs, err)
	}
	p := rows[0].(statements.TradeRow)
	want := statements.TradeRow{Line: 2, TransDate: "20250615", EndTime: time.Date(2025, 6, 15, 10, 15, 0, 0, nkp.Beijing), HuifuID: "6666000100000001",
		ReqDate: "20250615", ReqSeqID: "P1", NkpSeqID: "0030A", TransType: upstream.TradeWeChatJSAPI, TransStat: "S", TransAmt: 1000, FeeAmt: 6, SettleAmt: 994,
		PartyOrderID: "0325", OutTransID: "4200"}
	if p != want || !p.EndTime.Equal(want.EndTime) {
		t.Fatalf("payment = %+v\nwant      %+v", p, want)
	}
	r := rows[1].(statements.TradeRow)
	if !r.Refund() || r.OrgNkpSeqID != "0030A" || r.SettleAmt != -111 || r.Line != 3 {
		t.Fatalf("refund = %+v", r)
	}
}

// TestParseProblems feeds records and files that cannot be read: each is
// reported with its line and reason, and the good records around it are
// still read.
func TestParseProblems(t *testing.T) {
	good := "20250615,101500,6666000100000001,20250615,P1,0030A,T_JSAPI,S,10.00,0.06,9.94,,,,,\r\n"
	for _, tc := range []struct {
		name, body string
		rows       int
		line       int
		reason     string
		seq        string
	}{
		{"amount", good + "20250615,101500,6666000100000001,20250615,P2,0030B,T_JSAPI,S,12.3.4,0.06,9.94,,,,,\r\n", 1, 3, `trans_amt "12.3.4" is not an amount`, "P2"},
		{"fields", good + "20250615,25:61:00,6666000100000001,garbage\r\n", 1, 3, "4 fields, the header has 16", ""},
		{"date", "20250615,101500,6666000100000001,2025-06-15,P2,0030B,T_JSAPI,S,1.00,0.00,1.00,,,,,\r\n" + good, 1, 2, "req_date", "P2"},
		{"time", "20250615,1015,6666000100000001,20250615,P2,0030B,T_JSAPI,S,1.00,0.00,1.00,,,,,\r\n" + good, 1, 2, "HHmmss", "P2"},
		{"state", good + "20250615,101500,6666000100000001,20250615,P2,0030B,T_JSAPI,X,1.00,0.00,1.00,,,,,\r\n", 1, 3, "trans_stat", "P2"},
		{"zero", good + "20250615,101500,6666000100000001,20250615,P2,0030B,T_JSAPI,S,0.00,0.00,0.00,,,,,\r\n", 1, 3, "not positive", "P2"},
		{"orphan refund", good + "20250615,101500,6666000100000001,20250615,R2,0030B,TRANS_REFUND,S,1.00,0.00,-1.00,,,,,\r\n", 1, 3, "original", "R2"},
		{"quote", "20250615,101500,\"6666\"0001,20250615,P2,0030B,T_JSAPI,S,1.00,0.00,1.00,,,,,\r\n" + good, 1, 2, "not valid CSV", ""},
		{"summary", good + tradeSum + "1,1,9.00,0,0.00,0.06,9.94\r\n", 1, 4, "pay_amt 9.00, the records add up to 10.00", ""},
		{"count", good + tradeSum + "2,1,10.00,0,0.00,0.06,9.94\r\n", 1, 4, "total_count 2, the file has 1 records", ""},
		{"after summary", good + tradeSum + "1,1,10.00,0,0.00,0.06,9.94\r\n" + good, 1, 5, "after the summary", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, errs, err := readAll(t, tradeHead+tc.body, nkp.BillTrade)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != tc.rows || len(errs) != 1 {
				t.Fatalf("rows %d, errors %v", len(rows), errs)
			}
			e := errs[0]
			if e.File != "f.csv" || e.Line != tc.line || !strings.Contains(e.Reason, tc.reason) || e.ReqSeqID != tc.seq {
				t.Fatalf("error = %+v, want line %d, reason with %q, serial %q", e, tc.line, tc.reason, tc.seq)
			}
		})
	}
	for _, tc := range []struct{ name, body, bill, reason string }{
		{"empty", "", nkp.BillTrade, "empty"},
		{"column", "交易日期(trans_date),商户号(huifu_id)\r\n", nkp.BillTrade, "lacks trans_time"},
		{"bill type", "a\r\n", "DAILY", "unknown bill type"},
	} {
		_, err := statements.NewReader(strings.NewReader(tc.body), "f.csv", tc.bill)
		var fe *statements.FileError
		if !errors.As(err, &fe) || fe.File != "f.csv" || !strings.Contains(fe.Reason, tc.reason) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestParseOtherBills reads a settlement, a payout and a split bill with
// Chinese-only and English-only headers.
func TestParseOtherBills(t *testing.T) {
	rows, errs, err := readAll(t, "结算日期,商户号,支付笔数,支付金额,退款笔数,退款金额,手续费,结算金额\n20250615,66,2,13.33,1,1.11,0.08,12.14\n", nkp.BillSettle)
	if err != nil || len(errs) != 0 || rows[0].(statements.SettleRow) != (statements.SettleRow{Line: 2, SettleDate: day0, HuifuID: "66", PayCount: 2, PayAmt: 1333, RefundCount: 1, RefundAmt: 111, FeeAmt: 8, SettleAmt: 1214}) {
		t.Fatalf("settle: %+v %v %v", rows, errs, err)
	}
	rows, errs, err = readAll(t, "withdraw_date,withdraw_time,huifu_id,req_seq_id,nkp_seq_id,cash_amt,fee_amt,real_amt,trans_stat\n20250616,090000,66,WD1,0030C,12.14,0.00,12.14,S\n", nkp.BillWithdrawal)
	if err != nil || len(errs) != 0 || rows[0].(statements.WithdrawalRow).CashAmt != 1214 || rows[0].(statements.WithdrawalRow).Time.Hour() != 9 {
		t.Fatalf("withdrawal: %+v %v %v", rows, errs, err)
	}
	rows, errs, err = readAll(t, "split_date,huifu_id,req_date,req_seq_id,nkp_seq_id,div_huifu_id,div_amt,trans_stat\n20250615,66,20250615,P1,0030A,77,-1,S\n", nkp.BillSplit)
	if err != nil || len(rows) != 0 || len(errs) != 1 || !strings.Contains(errs[0].Reason, "div_amt") {
		t.Fatalf("split: %+v %v %v", rows, errs, err)
	}
}

// TestCursor reads a file in two pages and gets the same rows and lines.
func TestCursor(t *testing.T) {
	var b strings.Builder
	b.WriteString(tradeHead)
	for _, seq := range []string{"P1", "P2", "P3", "P4"} {
		b.WriteString("20250615,101500,66,20250615," + seq + ",0030A,T_JSAPI,S,1.00,0.00,1.00,,,,,\r\n")
	}
	path := filepath.Join(t.TempDir(), "t.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := statements.Open(path, nkp.BillTrade)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	c := r.Cursor()
	_ = r.Close()
	r, err = statements.OpenAt(path, nkp.BillTrade, c)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	for _, want := range []struct {
		seq  string
		line int
	}{{"P3", 4}, {"P4", 5}} {
		row, err := r.Next()
		if err != nil || row.(statements.TradeRow).ReqSeqID != want.seq || row.LineNo() != want.line {
			t.Fatalf("row = %+v, %v; want %s at line %d", row, err, want.seq, want.line)
		}
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
}
