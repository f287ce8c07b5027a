package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/app"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/reconcile"
	"github.com/paysidecar/paysidecar/sidecar/statements"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// Exit codes of `paysidecar reconcile`.
const (
	exitDifferences = 1
	exitFailed      = 2
)

func newReconcileCommand() *cobra.Command {
	var date, apiURL, token string
	var asJSON, refetch bool
	cmd := &cobra.Command{
		Use:   "reconcile --date yyyyMMdd",
		Short: "Reconcile a day: the upstream's statements against the sidecar's books, through a running sidecar",
		Long: `Ask a running sidecar to download the day's statements and compare them with
its payments and refunds. Prints a table (or JSON with --json) and exits 0 on a
clean day, 1 when anything differs, 2 when the reconciliation could not run.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := time.Parse(nkp.DateLayout, date); err != nil || len(date) != 8 {
				return exitStatus{code: exitFailed, err: errors.New("reconcile: --date must be a day, yyyyMMdd")}
			}
			base := apiURL
			if base == "" {
				cfg, err := loadConfig(cmd)
				if err != nil {
					return err
				}
				base = "http://" + cfg.API.Listen
			}
			rep, err := requestReconcile(cmd.Context(), base, token, date, refetch)
			if err != nil {
				return exitStatus{code: exitFailed, err: fmt.Errorf("reconcile: %w", err)}
			}
			if asJSON {
				if err := printJSON(cmd, rep); err != nil {
					return err
				}
			} else {
				printReport(cmd.OutOrStdout(), rep)
			}
			if rep.Status != reconcile.StatusClean {
				return exitStatus{code: exitDifferences}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&date, "date", "", "the trade day, yyyyMMdd (Beijing time)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().BoolVar(&refetch, "refetch", false, "download the day's statements again even when they are kept")
	cmd.Flags().StringVar(&apiURL, "api", "", "app API base URL (default: http:// + api.listen)")
	cmd.Flags().StringVar(&token, "token", os.Getenv("PAYSIDECAR_API__TOKEN"), "API token, when api.token is set")
	_ = cmd.MarkFlagRequired("date")
	return cmd
}

// requestReconcile runs the reconciliation of date on the sidecar at base.
func requestReconcile(ctx context.Context, base, token, date string, refetch bool) (*client.Reconciliation, error) {
	body, _ := json.Marshal(map[string]any{"date": date, "refetch": refetch})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/v1/reconciliations", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Minute}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("the sidecar at %s did not answer: %w", base, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e client.ErrorBody
		if json.Unmarshal(raw, &e) == nil && e.Error.Code != "" {
			return nil, fmt.Errorf("%s (%s, HTTP %d)", e.Error.Message, e.Error.Code, resp.StatusCode)
		}
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var rep client.Reconciliation
	if err := json.Unmarshal(raw, &rep); err != nil {
		return nil, fmt.Errorf("decode the report: %w", err)
	}
	return &rep, nil
}

// printReport writes the report as a person reads it.
func printReport(w io.Writer, rep *client.Reconciliation) {
	total := 0
	for _, n := range rep.Counts {
		total += n
	}
	verdict := "clean: the statements and the books match"
	if n := total; n > 0 {
		verdict = fmt.Sprintf("%d difference(s)", n)
	}
	fmt.Fprintf(w, "Reconciliation of %s for merchant %s: %s\n", rep.Date, rep.MerchantID, verdict)
	fmt.Fprintf(w, "Run %s compared %d statement record(s) with %d ledger record(s)", rep.RunID, rep.FileRecords, rep.LedgerRecords)
	if rep.Settled > 0 {
		fmt.Fprintf(w, "; the sidecar settled %d itself", rep.Settled)
	}
	fmt.Fprintf(w, ".\nFiles: %s\n", strings.Join(rep.Files, ", "))
	if len(rep.Differences) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tSERIAL\tOBJECT\tSIDECAR\tSTATEMENT\tWHERE\tDETAIL")
		for _, d := range rep.Differences {
			side := ""
			if d.LedgerStatus != "" {
				side = fmt.Sprintf("%s %s", d.LedgerStatus, nkp.Fen(d.LedgerAmountFen).Yuan())
			}
			stmt := ""
			if d.FileStat != "" {
				stmt = fmt.Sprintf("%s %s", d.FileStat, nkp.Fen(d.FileAmountFen).Yuan())
			}
			where := d.File
			if d.Line > 0 {
				where = fmt.Sprintf("%s:%d", d.File, d.Line)
			}
			detail := d.Reason
			if d.Settlement != nil {
				detail += fmt.Sprintf(" [settled by the sidecar: %s, now %s%s]", d.Settlement.Outcome, d.Settlement.Status, prefixed(" — ", d.Settlement.Error))
			} else if d.Settleable {
				detail += " [the sidecar can settle this]"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Kind, dash(d.ReqSeqID), dash(d.Object), dash(side), dash(stmt), dash(where), detail)
		}
		_ = tw.Flush()
		if rep.Truncated {
			fmt.Fprintf(w, "… and %d more: GET /v1/reconciliations/%s\n", total-len(rep.Differences), rep.RunID)
		}
	}
	if len(rep.Totals) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "MERCHANT\tSOURCE\tPAYMENTS\tPAID\tREFUNDS\tREFUNDED\tFEES\tSETTLEMENT\t")
		for _, t := range rep.Totals {
			fmt.Fprintf(tw, "%s\tstatement\t%d\t%s\t%d\t%s\t%s\t%s\t\n", t.MerchantID, t.FilePayCount, nkp.Fen(t.FilePayFen).Yuan(), t.FileRefundCount, nkp.Fen(t.FileRefundFen).Yuan(), nkp.Fen(t.FileFeeFen).Yuan(), nkp.Fen(t.FileSettleFen).Yuan())
			fmt.Fprintf(tw, "\tsidecar\t%d\t%s\t%d\t%s\t\t\t\n", t.LedgerPayCount, nkp.Fen(t.LedgerPayFen).Yuan(), t.LedgerRefundCount, nkp.Fen(t.LedgerRefundFen).Yuan())
			if s := t.Settle; s != nil {
				fmt.Fprintf(tw, "\tsettlement\t%d\t%s\t%d\t%s\t%s\t%s\t\n", s.PayCount, nkp.Fen(s.PayAmtFen).Yuan(), s.RefundCount, nkp.Fen(s.RefundAmtFen).Yuan(), nkp.Fen(s.FeeAmtFen).Yuan(), nkp.Fen(s.SettleAmtFen).Yuan())
			}
		}
		_ = tw.Flush()
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

func newStatementsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "statements", Short: "Download and keep the upstream's statements (reconciliation files)"}
	var date string
	var types []string
	fetch := &cobra.Command{
		Use:   "fetch --date yyyyMMdd|yyyyMM",
		Short: "Download the statements of a day (daily bills) or a month (monthly bills) into reconcile.dir",
		Long: `Ask the upstream for the statements of a day (TRADE_BILL, SETTLE_BILL,
SPLIT_BILL, WITHDRAWAL_BILL) or of a month (TRADE_BILL_MONTH,
SETTLE_BILL_MONTH), or only those named with --type, and download those not kept
yet into reconcile.dir. A download that breaks resumes where it stopped. Shows a
progress bar on a terminal and one line per file otherwise; exits 1 when a file
could not be fetched or is not ready yet.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			bills := types
			if len(bills) == 0 {
				bills = statements.DailyBills
				if len(date) == 6 {
					bills = statements.MonthlyBills
				}
			}
			for _, b := range bills {
				if _, err := statements.NormalizeDate(b, date); err != nil {
					return err
				}
			}
			log := telemetry.NewLogger(cmd.ErrOrStderr(), cfg.Log.Level, cfg.Log.Format)
			up, err := app.UpstreamClient(cfg, log)
			if err != nil {
				return err
			}
			archive, err := app.StatementArchive(cfg, up, log)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			progress, done := progressFor(out)
			outcomes, err := archive.Fetch(cmd.Context(), date, bills, progress)
			done()
			if err != nil {
				return err
			}
			failed := 0
			for _, o := range outcomes {
				switch o.State {
				case "downloaded", "kept":
					for _, f := range o.Files {
						fmt.Fprintf(out, "%s %s: %s %s (%d bytes, %s checked)\n", o.BillType, o.FileDate, o.State, f.Path, f.Size, f.Checked)
					}
				default:
					failed++
					fmt.Fprintf(out, "%s %s: %s: %v\n", o.BillType, o.FileDate, o.State, o.Err)
				}
			}
			if failed > 0 {
				return exitStatus{code: 1, err: fmt.Errorf("%d of %d statements could not be fetched", failed, len(outcomes))}
			}
			return nil
		},
	}
	fetch.Flags().StringVar(&date, "date", "", "a day yyyyMMdd, or a month yyyyMM")
	fetch.Flags().StringSliceVar(&types, "type", nil, "bill types to fetch (default: the daily or the monthly ones)")
	_ = fetch.MarkFlagRequired("date")
	cmd.AddCommand(fetch)
	return cmd
}

// progressFor returns a progress function drawing a bar per file when out
// is a terminal, and nothing otherwise (the summary lines follow).
func progressFor(out io.Writer) (statements.Progress, func()) {
	f, ok := out.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, func() {}
	}
	bars := map[string]*progressbar.ProgressBar{}
	progress := func(bill, name string, done, total int64) {
		bar := bars[name]
		if bar == nil {
			bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(out), progressbar.OptionSetDescription(bill),
				progressbar.OptionShowBytes(true), progressbar.OptionSetWidth(30), progressbar.OptionClearOnFinish())
			bars[name] = bar
		}
		_ = bar.Set64(done)
	}
	return progress, func() {
		for _, b := range bars {
			_ = b.Finish()
		}
	}
}
