package statements_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/statements"
)

// fuzzBills are the bill types whose row parsers FuzzRowParsers drives,
// one of each kind of row, with a header of that kind (the monthly bills
// share the daily bills' parsers).
var fuzzBills = []struct {
	bill, header string
}{
	{nkp.BillTrade, tradeHead},
	{nkp.BillSettle, "结算日期,商户号,支付笔数,支付金额,退款笔数,退款金额,手续费,结算金额\r\n"},
	{nkp.BillSplit, "split_date,huifu_id,req_date,req_seq_id,nkp_seq_id,div_huifu_id,div_amt,trans_stat\r\n"},
	{nkp.BillWithdrawal, "withdraw_date,withdraw_time,huifu_id,req_seq_id,nkp_seq_id,cash_amt,fee_amt,real_amt,trans_stat,bank_acct\r\n"},
	{nkp.BillTradeMonth, tradeHead},
	{nkp.BillSettleMon, "settle_date,huifu_id,pay_count,pay_amt,refund_count,refund_amt,fee_amt,settle_amt\r\n"},
}

// FuzzRowParsers feeds the records after a valid header of every bill
// type to the statement reader. Whatever the records, reading ends, every
// record is either a typed row of the bill's kind or an error naming the
// file, a line and a reason (never a panic, never a silent skip of a
// record that parsed), and what a row holds obeys the parser's promises:
// dates are yyyyMMdd, times are in Beijing time, states are S, F, P, I or
// empty, counts are not negative.
func FuzzRowParsers(f *testing.F) {
	seeds := []string{
		// Trade: a payment, a refund, a bad time, too few fields, bad CSV.
		"20250615,103000,6666000100000001,20250615,P1,0030A,T_JSAPI,S,10.00,0.06,9.94,,,,party1,wx1\r\n" +
			"20250615,110000,6666000100000001,20250615,R1,0030B,TRANS_REFUND,S,1.00,0.00,1.00,20250615,P1,0030A,,\r\n",
		"20250615,25:61:00,6666000100000001,garbage\r\n",
		"20250615,103000,\"unterminated\r\n",
		"20250615,103000,66,20250615,P2,0030C,A_NATIVE,X,abc,0,0,,,,,\r\n" + tradeSum + "1,1,10.00,0,0.00,0.06,9.94\r\n",
		// Settlement, split, withdrawal.
		"20250615,66,2,13.33,1,1.11,0.08,12.14\r\n",
		"20250615,66,-2,13.33,1,1.11,0.08,12.14\r\n",
		"20250615,66,20250615,P1,0030A,77,1.00,S\r\n20250615,66,20250615,P1,0030A,77,-1,S\r\n",
		"20250616,090000,66,WD1,0030C,12.14,0.00,12.14,S,6222***1234\r\n",
		"20250616,9,66,WD1,0030C,12.14,0.00,12.14,Q,\r\n",
		"\r\n\r\n`20250615,66,1,1.00,0,0.00,0.00,1.00\r\n",
	}
	for i := range fuzzBills {
		for _, s := range seeds {
			f.Add(uint8(i), s)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, records string) {
		bill := fuzzBills[int(which)%len(fuzzBills)]
		r, err := statements.NewReader(strings.NewReader(bill.header+records), "f.csv", bill.bill)
		if err != nil {
			t.Fatalf("a valid %s header was refused: %v", bill.bill, err)
		}
		lastRow := 1
		// Each call consumes at least one line or ends the file.
		for range strings.Count(records, "\n") + strings.Count(records, "\r") + 3 {
			row, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			var re *statements.RowError
			var fe *statements.FileError
			switch {
			case errors.As(err, &re):
				if re.File != "f.csv" || re.Line < 2 || re.Reason == "" {
					t.Fatalf("a row error without its file, line or reason: %+v", re)
				}
				continue
			case errors.As(err, &fe):
				if fe.File != "f.csv" || fe.Reason == "" {
					t.Fatalf("a file error without its file or reason: %+v", fe)
				}
				return
			case err != nil:
				t.Fatalf("an error that is neither a row's nor the file's: %T %v", err, err)
			}
			if row.LineNo() <= lastRow {
				t.Fatalf("row at line %d after a row at line %d", row.LineNo(), lastRow)
			}
			lastRow = row.LineNo()
			checkRow(t, bill.bill, row)
		}
		t.Fatalf("reading %q did not end", records)
	})
}

// checkRow checks what the parser promises of a row of the bill type.
func checkRow(t *testing.T, bill string, row statements.Row) {
	t.Helper()
	date := func(name, v string, required bool) {
		if v == "" && !required {
			return
		}
		if _, err := time.ParseInLocation(nkp.DateLayout, v, nkp.Beijing); err != nil || len(v) != 8 {
			t.Fatalf("%s %s = %q, not yyyyMMdd: %+v", bill, name, v, row)
		}
	}
	stat := func(v string) {
		switch v {
		case "", nkp.StatSuccess, nkp.StatFailure, nkp.StatProcessing, nkp.StatInitial:
		default:
			t.Fatalf("%s trans_stat %q: %+v", bill, v, row)
		}
	}
	beijing := func(name string, v time.Time) {
		if !v.IsZero() && v.Location() != nkp.Beijing {
			t.Fatalf("%s %s is in %v, not Beijing time", bill, name, v.Location())
		}
	}
	switch r := row.(type) {
	case statements.TradeRow:
		if statements.Kind(bill) != nkp.BillTrade {
			t.Fatalf("a %s gave a trade row", bill)
		}
		date("trans_date", r.TransDate, true)
		date("req_date", r.ReqDate, true)
		date("org_req_date", r.OrgReqDate, false)
		stat(r.TransStat)
		beijing("end_time", r.EndTime)
	case statements.SettleRow:
		if statements.Kind(bill) != nkp.BillSettle {
			t.Fatalf("a %s gave a settlement row", bill)
		}
		date("settle_date", r.SettleDate, true)
		if r.PayCount < 0 || r.RefundCount < 0 {
			t.Fatalf("negative counts: %+v", r)
		}
	case statements.SplitRow:
		if bill != nkp.BillSplit {
			t.Fatalf("a %s gave a split row", bill)
		}
		date("split_date", r.SplitDate, true)
		stat(r.TransStat)
	case statements.WithdrawalRow:
		if bill != nkp.BillWithdrawal {
			t.Fatalf("a %s gave a withdrawal row", bill)
		}
		date("withdraw_date", r.WithdrawDate, true)
		stat(r.TransStat)
		beijing("withdraw_time", r.Time)
	default:
		t.Fatalf("a row of an unknown type %T", row)
	}
}
