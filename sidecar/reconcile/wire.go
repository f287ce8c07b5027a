package reconcile

import (
	"encoding/json"
	"fmt"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/statements"
)

// The API answers in the shapes of package client, with amounts as
// integer fen: nkp.Fen encodes itself as the upstream's yuan string, which
// is right for the upstream's wire and for the reports the store keeps,
// but not for the app API, whose every amount is integer fen.

func wireFile(f statements.File) client.StatementFile {
	return client.StatementFile{MerchantID: f.MerchantID, BillType: f.BillType, FileDate: f.FileDate, Name: f.Name, Size: f.Size,
		SHA256: f.SHA256, Checked: f.Checked, DownloadedAt: f.DownloadedAt}
}

func wireFiles(fs []statements.File) []client.StatementFile {
	out := make([]client.StatementFile, 0, len(fs))
	for _, f := range fs {
		out = append(out, wireFile(f))
	}
	return out
}

func wireSettleRow(r statements.SettleRow) client.SettleRow {
	return client.SettleRow{Line: r.Line, SettleDate: r.SettleDate, HuifuID: r.HuifuID, PayCount: r.PayCount, PayAmtFen: int64(r.PayAmt),
		RefundCount: r.RefundCount, RefundAmtFen: int64(r.RefundAmt), FeeAmtFen: int64(r.FeeAmt), SettleAmtFen: int64(r.SettleAmt)}
}

// wireRow returns a statement row in the API's shape.
func wireRow(row statements.Row) (any, error) {
	switch r := row.(type) {
	case statements.TradeRow:
		return client.TradeRow{Line: r.Line, TransDate: r.TransDate, EndTime: r.EndTime, HuifuID: r.HuifuID, ReqDate: r.ReqDate,
			ReqSeqID: r.ReqSeqID, NkpSeqID: r.NkpSeqID, TransType: r.TransType, TransStat: r.TransStat, TransAmtFen: int64(r.TransAmt),
			FeeAmtFen: int64(r.FeeAmt), SettleAmtFen: int64(r.SettleAmt), OrgReqDate: r.OrgReqDate, OrgReqSeqID: r.OrgReqSeqID,
			OrgNkpSeqID: r.OrgNkpSeqID, PartyOrderID: r.PartyOrderID, OutTransID: r.OutTransID}, nil
	case statements.SettleRow:
		return wireSettleRow(r), nil
	case statements.SplitRow:
		return client.SplitRow{Line: r.Line, SplitDate: r.SplitDate, HuifuID: r.HuifuID, ReqDate: r.ReqDate, ReqSeqID: r.ReqSeqID,
			NkpSeqID: r.NkpSeqID, DivHuifuID: r.DivHuifuID, DivAmtFen: int64(r.DivAmt), TransStat: r.TransStat}, nil
	case statements.WithdrawalRow:
		return client.WithdrawalRow{Line: r.Line, WithdrawDate: r.WithdrawDate, WithdrawTime: r.Time, HuifuID: r.HuifuID,
			ReqSeqID: r.ReqSeqID, NkpSeqID: r.NkpSeqID, CashAmtFen: int64(r.CashAmt), FeeAmtFen: int64(r.FeeAmt),
			RealAmtFen: int64(r.RealAmt), TransStat: r.TransStat, BankAcct: r.BankAcct}, nil
	}
	return nil, fmt.Errorf("reconcile: a statement row of type %T", row)
}

// wirePage returns a page of a statement in the API's shape.
func wirePage(p StatementPage) (client.StatementPage, error) {
	out := client.StatementPage{Date: p.Date, BillType: p.BillType, Files: wireFiles(p.Files), Rows: make([]json.RawMessage, 0, len(p.Rows)),
		Errors: make([]client.StatementRowError, 0, len(p.Errors)), NextCursor: p.NextCursor}
	for _, row := range p.Rows {
		w, err := wireRow(row)
		if err != nil {
			return out, err
		}
		b, err := json.Marshal(w)
		if err != nil {
			return out, fmt.Errorf("reconcile: encode a statement row: %w", err)
		}
		out.Rows = append(out.Rows, b)
	}
	for _, e := range p.Errors {
		out.Errors = append(out.Errors, client.StatementRowError{File: e.File, Line: e.Line, Reason: e.Reason, HuifuID: e.HuifuID,
			ReqDate: e.ReqDate, ReqSeqID: e.ReqSeqID})
	}
	return out, nil
}

func wireDifference(d Difference) client.ReconciliationDifference {
	out := client.ReconciliationDifference{Seq: d.Seq, Kind: string(d.Kind), Object: d.Object, MerchantID: d.MerchantID, ReqDate: d.ReqDate,
		ReqSeqID: d.ReqSeqID, NkpSeqID: d.NkpSeqID, LedgerID: d.LedgerID, LedgerStatus: string(d.LedgerStatus),
		LedgerAmountFen: int64(d.LedgerAmountFen), FileStat: d.FileStat, FileAmountFen: int64(d.FileAmountFen), File: d.File, Line: d.Line,
		Reason: d.Reason, Settleable: d.Settleable}
	if s := d.Settlement; s != nil {
		out.Settlement = &client.ReconciliationSettlement{Outcome: s.Outcome, Status: string(s.Status), Error: s.Error}
	}
	return out
}

func wireDifferences(ds []Difference) []client.ReconciliationDifference {
	if ds == nil {
		return nil
	}
	out := make([]client.ReconciliationDifference, 0, len(ds))
	for _, d := range ds {
		out = append(out, wireDifference(d))
	}
	return out
}

// wireReport returns a run's report in the API's shape.
func wireReport(r Report) client.Reconciliation {
	out := client.Reconciliation{RunID: r.RunID, MerchantID: r.MerchantID, Date: r.Date, Trigger: r.Trigger, Status: r.Status,
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, FileRecords: r.FileRecords, LedgerRecords: r.LedgerRecords,
		Counts: make(map[string]int, len(r.Counts)), Settled: r.Settled, Files: r.Files, Differences: wireDifferences(r.Differences),
		Truncated: r.Truncated, Error: r.Error}
	for k, n := range r.Counts {
		out.Counts[string(k)] = n
	}
	if r.Totals != nil {
		out.Totals = make([]client.ReconciliationTotals, 0, len(r.Totals))
	}
	for _, t := range r.Totals {
		w := client.ReconciliationTotals{MerchantID: t.MerchantID, FilePayCount: t.FilePayCount, FilePayFen: int64(t.FilePayFen),
			FileRefundCount: t.FileRefundCount, FileRefundFen: int64(t.FileRefundFen), FileFeeFen: int64(t.FileFeeFen),
			FileSettleFen: int64(t.FileSettleFen), LedgerPayCount: t.LedgerPayCount, LedgerPayFen: int64(t.LedgerPayFen),
			LedgerRefundCount: t.LedgerRefundCount, LedgerRefundFen: int64(t.LedgerRefundFen)}
		if t.Settle != nil {
			s := wireSettleRow(*t.Settle)
			w.Settle = &s
		}
		out.Totals = append(out.Totals, w)
	}
	return out
}

func wireReports(rs []Report) []client.Reconciliation {
	out := make([]client.Reconciliation, 0, len(rs))
	for _, r := range rs {
		out = append(out, wireReport(r))
	}
	return out
}
