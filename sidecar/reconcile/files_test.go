package reconcile_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/reconcile"
	"github.com/paysidecar/paysidecar/sidecar/statements"
)

// fileBills hands out statement files written by a test.
type fileBills struct{ trade, settle []statements.File }

func (fileBills) MerchantID() string { return sandbox.DevHuifuID }
func (f fileBills) Ensure(_ context.Context, bill, _ string) ([]statements.File, error) {
	if bill == nkp.BillSettle {
		return f.settle, nil
	}
	return f.trade, nil
}
func (f fileBills) Refetch(ctx context.Context, bill, date string) ([]statements.File, error) {
	return f.Ensure(ctx, bill, date)
}

func writeFile(t *testing.T, name, body string) statements.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return statements.File{Name: name, Path: path}
}

// TestSettlementAndUnreadableFiles reconciles a trade bill whose
// settlement does not add up, beside a trade file that cannot be read at
// all: each is named, and neither stops the other.
func TestSettlementAndUnreadableFiles(t *testing.T) {
	w := newWorld(t)
	w.pay("P1", 1000)
	w.clock.Advance(2 * time.Minute)
	w.inst.SettlePayment(t, day0, "P1", sandbox.ResultPaid)
	w.learn("payment", "P1")
	good := writeFile(t, "trade.csv", "交易日期(trans_date),交易时间(trans_time),商户号(huifu_id),请求日期(req_date),请求流水号(req_seq_id),全局流水号(nkp_seq_id),交易类型(trans_type),交易状态(trans_stat),交易金额(trans_amt),手续费(fee_amt),结算金额(settle_amt),原请求日期(org_req_date),原请求流水号(org_req_seq_id)\n"+
		"20250615,100200,"+sandbox.DevHuifuID+","+day0+",P1,N1,A_NATIVE,S,10.00,0.06,9.94,,\n")
	bad := writeFile(t, "trade-2.csv", "nothing,that,looks,like,a,header\n")
	settle := writeFile(t, "settle.csv", "settle_date,huifu_id,pay_count,pay_amt,refund_count,refund_amt,fee_amt,settle_amt\n"+
		day0+","+sandbox.DevHuifuID+",1,10.00,0,0.00,0.06,9.95\n")
	rec, err := reconcile.New(reconcile.Config{}, reconcile.Deps{Bills: fileBills{trade: []statements.File{bad, good}, settle: []statements.File{settle}},
		Ledger: w.sql, Runs: w.sql, Now: w.clock.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := rec.Run(testCtx(t), day0, reconcile.RunOptions{Trigger: reconcile.TriggerAPI})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range rep.Differences {
		got = append(got, string(d.Kind)+" "+d.File)
	}
	// The unreadable file makes the sums inexact, so the settlement is
	// not checked while it is there.
	if want := []string{"malformed_row trade-2.csv"}; !slices.Equal(got, want) || rep.FileRecords != 1 || rep.LedgerRecords != 1 {
		t.Fatalf("differences %v, want %v; %d/%d records", got, want, rep.FileRecords, rep.LedgerRecords)
	}
	if !strings.Contains(rep.Differences[0].Reason, "lacks") {
		t.Fatalf("reason = %q", rep.Differences[0].Reason)
	}
	rec, _ = reconcile.New(reconcile.Config{}, reconcile.Deps{Bills: fileBills{trade: []statements.File{good}, settle: []statements.File{settle}},
		Ledger: w.sql, Runs: w.sql, Now: w.clock.Now, Logger: slog.New(slog.DiscardHandler)})
	rep, err = rec.Run(testCtx(t), day0, reconcile.RunOptions{Trigger: reconcile.TriggerAPI})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Differences) != 1 || rep.Differences[0].Kind != reconcile.SettlementDiffers || !strings.Contains(rep.Differences[0].Reason, "settlement 9.94 in the trade bill, 9.95 in the settlement") ||
		rep.Differences[0].File != "settle.csv" {
		t.Fatalf("differences = %+v", rep.Differences)
	}
}
