package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/reconcile"
)

// runCLI runs the paysidecar binary with args and returns its output and
// exit code.
func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "paysidecar"), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if errOut.Len() > 0 {
		t.Logf("%v stderr: %s", args, errOut.String())
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// TestReconcileThroughTheSidecar trades a day through the sidecar
// (payments paid, failed and closed, partial refunds that succeed and
// fail), reconciles it with the CLI and gets a clean day, then injects one
// difference of each kind into the upstream's statements and gets exactly
// those.
func TestReconcileThroughTheSidecar(t *testing.T) {
	// The sandbox's clock starts at noon of today (Beijing), so that the
	// day's trades stay on one day whenever the test runs, and moves
	// forward only when the test says.
	now := time.Now().In(nkp.Beijing)
	clock := sandboxtest.NewClock(time.Date(now.Year(), now.Month(), now.Day(), 12, 0, 0, 0, nkp.Beijing))
	sb := sandboxtest.Start(t, sandboxtest.WithClock(clock.Now))
	dir := t.TempDir()
	e, api, notify, admin := sidecarEnv(t, sb.URL, dir)
	sc := startSidecar(t, e, api, notify, admin)
	ctx := ctxTimeout(t, 90*time.Second)

	final := func(id string) client.Payment {
		var p client.Payment
		waitFor(t, 20*time.Second, "payment "+id+" final", func() (bool, string) {
			var err error
			p, err = sc.Client.GetPayment(ctx, id)
			if err != nil {
				return false, err.Error()
			}
			return p.Status != client.StatusProcessing && p.Status != client.StatusPending, p.Status
		})
		return p
	}
	pays := map[string]client.Payment{}
	for _, n := range []struct {
		name string
		amt  int64
	}{{"P1", 1000}, {"P2", 333}, {"P3", 100}, {"P4", 250}, {"P5", 500}, {"P6", 120}} {
		p, err := sc.Client.CreatePayment(ctx, client.CreatePaymentRequest{Flow: client.FlowAlipayNative, OutTradeNo: "rec-" + n.name, AmountFen: n.amt, Description: "reconcile"})
		if err != nil {
			t.Fatal(err)
		}
		pays[n.name] = p
	}
	day := pays["P1"].ReqDate
	for _, n := range []string{"P1", "P2", "P4", "P5"} {
		sb.SettlePayment(t, day, pays[n].ReqSeqID, sandbox.ResultPaid)
	}
	sb.SettlePayment(t, day, pays["P3"].ReqSeqID, sandbox.ResultFailed)
	clock.Advance(2 * time.Minute)
	if _, err := sc.Client.ClosePayment(ctx, pays["P6"].ID); err != nil {
		t.Fatal(err)
	}
	for n, p := range pays {
		pays[n] = final(p.ID)
	}
	if pays["P3"].Status != client.StatusFailed || pays["P6"].Status != client.StatusClosed || pays["P1"].Status != client.StatusSucceeded {
		t.Fatalf("payments: %+v", pays)
	}
	refunds := map[string]client.Refund{}
	for _, r := range []struct {
		name, pay string
		amt       int64
		result    string
	}{{"R1", "P2", 111, sandbox.ResultSucceeded}, {"R2", "P1", 50, sandbox.ResultFailed}, {"R3", "P5", 200, sandbox.ResultSucceeded}} {
		rf, err := sc.Client.CreateRefund(ctx, pays[r.pay].ID, client.CreateRefundRequest{OutRefundNo: "rec-" + r.name, AmountFen: r.amt})
		if err != nil {
			t.Fatal(err)
		}
		sb.SettleRefund(t, rf.ReqDate, rf.ReqSeqID, r.result)
		waitFor(t, 20*time.Second, "refund "+r.name+" final", func() (bool, string) {
			got, err := sc.Client.GetRefund(ctx, rf.ID)
			if err != nil {
				return false, err.Error()
			}
			refunds[r.name] = got
			return got.Status == client.StatusSucceeded || got.Status == client.StatusFailed, got.Status
		})
	}

	// A clean day: exit 0.
	out, code := runCLI(t, "reconcile", "--date", day, "--api", api)
	if code != 0 || !strings.Contains(out, "clean") {
		t.Fatalf("clean day: exit %d\n%s", code, out)
	}
	t.Logf("clean day:\n%s", out)

	for _, d := range []sandbox.BillDifference{
		{Kind: sandbox.BillExtraTrade, Date: day, ReqSeqID: "X1", TransAmt: 700},
		{Kind: sandbox.BillAmount, ReqSeqID: pays["P1"].ReqSeqID, TransAmt: 1001},
		{Kind: sandbox.BillState, ReqSeqID: pays["P2"].ReqSeqID},
		{Kind: sandbox.BillOmit, ReqSeqID: refunds["R3"].ReqSeqID},
		{Kind: sandbox.BillMalformed, ReqSeqID: pays["P4"].ReqSeqID},
	} {
		d.HuifuID = sb.HuifuID
		if _, err := sb.Control.AddBillDifference(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	out, code = runCLI(t, "reconcile", "--date", day, "--api", api, "--json", "--refetch")
	if code != 1 {
		t.Fatalf("a day with differences: exit %d\n%s", code, out)
	}
	var rep client.Reconciliation
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	var got []string
	for _, d := range rep.Differences {
		got = append(got, string(d.Kind)+" "+d.ReqSeqID)
	}
	sort.Strings(got)
	want := []string{
		"amount_differs " + pays["P1"].ReqSeqID, "malformed_row " + pays["P4"].ReqSeqID, "missing_in_file " + refunds["R3"].ReqSeqID,
		"missing_in_ledger X1", "state_differs " + pays["P2"].ReqSeqID,
	}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("differences:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	table, code := runCLI(t, "reconcile", "--date", day, "--api", api)
	if code != 1 || !strings.Contains(table, "5 difference(s)") || !strings.Contains(table, "missing_in_ledger") {
		t.Fatalf("table: exit %d\n%s", code, table)
	}
	t.Logf("with differences:\n%s", table)

	// The run, its differences and the parsed statement are on the API,
	// read with the Go client.
	page, err := sc.Client.GetReconciliation(ctx, rep.RunID, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if page.Run.Status != reconcile.StatusDifferences || page.Run.Counts[string(reconcile.MissingInLedger)] != 1 ||
		len(page.Differences) != 2 || page.NextAfter != 2 {
		t.Fatalf("run page = %+v", page)
	}
	var seen []string
	for after := 0; ; {
		page, err := sc.Client.GetReconciliation(ctx, rep.RunID, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Differences {
			seen = append(seen, d.Kind+" "+d.ReqSeqID)
		}
		if after = page.NextAfter; after == 0 {
			break
		}
	}
	sort.Strings(seen)
	if !slices.Equal(seen, want) {
		t.Fatalf("differences paged with the client:\n  %s\nwant\n  %s", strings.Join(seen, "\n  "), strings.Join(want, "\n  "))
	}
	runs, err := sc.Client.ListReconciliations(ctx, time.Time{}, 10)
	// The clean run, the JSON run (rep) and the table's, newest first.
	if err != nil || len(runs) != 3 || runs[1].RunID != rep.RunID || runs[0].Status != reconcile.StatusDifferences ||
		runs[2].Status != reconcile.StatusClean {
		t.Fatalf("runs = %+v, %v; want the three runs, the latest first", runs, err)
	}
	if older, err := sc.Client.ListReconciliations(ctx, runs[0].StartedAt, 10); err != nil || len(older) != len(runs)-1 {
		t.Fatalf("runs before the latest = %+v, %v", older, err)
	}
	var ae *client.APIError
	if _, err := sc.Client.GetReconciliation(ctx, "nope", 0, 0); !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound || ae.Code != "not_found" {
		t.Fatalf("an unknown run: %v", err)
	}
	if _, err := sc.Client.StartReconciliation(ctx, client.StartReconciliationRequest{Date: "2025"}); !errors.As(err, &ae) ||
		ae.StatusCode != http.StatusBadRequest || ae.Code != "invalid_field" || ae.Field != "date" {
		t.Fatalf("a run of a bad date: %v", err)
	}
	again, err := sc.Client.StartReconciliation(ctx, client.StartReconciliationRequest{Date: day})
	if err != nil || again.Status != reconcile.StatusDifferences || again.Trigger != reconcile.TriggerAPI || len(again.Differences) != len(want) {
		t.Fatalf("a run started with the client = %+v, %v", again, err)
	}

	var trades []client.TradeRow
	var rowErrors []client.StatementRowError
	var files []client.StatementFile
	for cursor := ""; ; {
		sp, err := sc.Client.Statement(ctx, day, nkp.BillTrade, cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		var rows []client.TradeRow
		if err := sp.DecodeRows(&rows); err != nil {
			t.Fatal(err)
		}
		trades, rowErrors, files = append(trades, rows...), append(rowErrors, sp.Errors...), sp.Files
		if cursor = sp.NextCursor; cursor == "" {
			break
		}
	}
	byReq := map[string]client.TradeRow{}
	for _, r := range trades {
		byReq[r.ReqSeqID] = r
	}
	if r := byReq["X1"]; r.TransAmtFen != 700 || len(rowErrors) != 1 || rowErrors[0].ReqSeqID != pays["P4"].ReqSeqID || rowErrors[0].Line < 2 {
		t.Fatalf("statement rows: X1 = %+v, errors %+v", r, rowErrors)
	}
	if len(files) != 1 {
		t.Fatalf("statement files = %+v", files)
	}
	body, err := sc.Client.StatementFile(ctx, day, nkp.BillTrade, files[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, body)
	_ = body.Close()
	if err != nil || n != files[0].Size || hex.EncodeToString(h.Sum(nil)) != files[0].SHA256 {
		t.Fatalf("the original file: %d bytes, sha-256 %x, %v; want %+v", n, h.Sum(nil), err, files[0])
	}
	if _, err := sc.Client.StatementFile(ctx, day, nkp.BillTrade, "nope.csv"); !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound {
		t.Fatalf("an unknown file: %v", err)
	}
	// Unknown date: a clear error.
	out, code = runCLI(t, "reconcile", "--date", "2025-01-01", "--api", api)
	if code == 0 || code == 1 {
		t.Fatalf("bad date: exit %d %s", code, out)
	}
}
