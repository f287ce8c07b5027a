package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// TestStatementsFetch downloads a day's statements from a sandbox with the
// CLI, which prints one line per file when not on a terminal, then finds
// them kept, and reports a file that is not ready with exit status 1.
func TestStatementsFetch(t *testing.T) {
	sb := sandboxtest.Start(t)
	day := nkp.ReqDate(time.Now())
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte("upstream:\n  base_url: "+sb.URL+"\nreconcile:\n  dir: "+filepath.Join(dir, "statements")+"\nlog:\n  level: error\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "statements", "fetch", "--config", cfgPath, "--date", day)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, bill := range []string{nkp.BillTrade, nkp.BillSettle, nkp.BillSplit, nkp.BillWithdrawal} {
		path := filepath.Join(dir, "statements", sb.HuifuID, day, sandbox.BillFileName(sb.HuifuID, bill, day))
		if !strings.Contains(out, bill+" "+day+": downloaded "+path) || !strings.Contains(out, "sha-256 checked") {
			t.Errorf("no line for %s in:\n%s", bill, out)
		}
		if _, err := os.Stat(path); err != nil {
			t.Error(err)
		}
	}
	out, _, err = run(t, "statements", "fetch", "--config", cfgPath, "--date", day, "--type", nkp.BillTrade)
	if err != nil || !strings.Contains(out, nkp.BillTrade+" "+day+": kept") || strings.Contains(out, nkp.BillSettle) {
		t.Fatalf("second fetch: %v\n%s", err, out)
	}
	if _, err := sb.Control.AddBillDifference(t.Context(), sandbox.BillDifference{Kind: sandbox.BillPending, HuifuID: sb.HuifuID, BillType: nkp.BillSettleMon, Date: day}); err != nil {
		t.Fatal(err)
	}
	out, _, err = run(t, "statements", "fetch", "--config", cfgPath, "--date", day[:6])
	var ex exitStatus
	if !errors.As(err, &ex) || ex.code != 1 || !strings.Contains(out, nkp.BillSettleMon+" "+day[:6]+": pending") || !strings.Contains(out, nkp.BillTradeMonth+" "+day[:6]+": downloaded") {
		t.Fatalf("monthly with one pending: %v\n%s", err, out)
	}
	if _, _, err := run(t, "statements", "fetch", "--config", cfgPath, "--date", day, "--type", "DAILY"); err == nil || !strings.Contains(err.Error(), "DAILY") {
		t.Fatalf("unknown type: %v", err)
	}
}
