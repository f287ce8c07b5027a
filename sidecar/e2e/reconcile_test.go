package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
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
	var rep reconcile.Report
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

	// The run, its differences and the parsed statement are on the API.
	var page reconcile.RunPage
	if err := sc.Client.Do(ctx, http.MethodGet, "/v1/reconciliations/"+rep.RunID+"?limit=2", nil, &page); err != nil {
		t.Fatal(err)
	}
	if page.Run.Status != reconcile.StatusDifferences || len(page.Differences) != 2 || page.NextAfter != 2 {
		t.Fatalf("run page = %+v", page)
	}
	var rows struct {
		Rows   []map[string]any `json:"rows"`
		Errors []map[string]any `json:"errors"`
	}
	if err := sc.Client.Do(ctx, http.MethodGet, "/v1/statements/"+day+"/TRADE_BILL?limit=100", nil, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows.Rows)+len(rows.Errors) == 0 {
		t.Fatalf("statement rows = %+v", rows)
	}
	// Unknown date: a clear error.
	out, code = runCLI(t, "reconcile", "--date", "2025-01-01", "--api", api)
	if code == 0 || code == 1 {
		t.Fatalf("bad date: exit %d %s", code, out)
	}
}
