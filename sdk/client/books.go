package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// StatementFile is an upstream statement file the sidecar downloaded and
// keeps.
type StatementFile struct {
	MerchantID string `json:"merchant_id"`
	BillType   string `json:"bill_type"`
	FileDate   string `json:"file_date"`
	Name       string `json:"name"`
	Size       int64  `json:"size"`
	SHA256     string `json:"sha256"`
	// Checked is "sha-256" when the upstream's digest was verified, "size"
	// when only the length could be.
	Checked      string    `json:"checked"`
	DownloadedAt time.Time `json:"downloaded_at"`
}

// StatementRowError is a record of a statement that could not be read,
// with its file, line and reason.
type StatementRowError struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Reason   string `json:"reason"`
	HuifuID  string `json:"huifu_id,omitempty"`
	ReqDate  string `json:"req_date,omitempty"`
	ReqSeqID string `json:"req_seq_id,omitempty"`
}

// TradeRow is a record of TRADE_BILL and TRADE_BILL_MONTH. Amounts are
// integer fen; times are Beijing time.
type TradeRow struct {
	Line         int       `json:"line"`
	TransDate    string    `json:"trans_date"`
	EndTime      time.Time `json:"end_time"`
	HuifuID      string    `json:"huifu_id"`
	ReqDate      string    `json:"req_date"`
	ReqSeqID     string    `json:"req_seq_id"`
	NkpSeqID     string    `json:"nkp_seq_id"`
	TransType    string    `json:"trans_type"`
	TransStat    string    `json:"trans_stat"`
	TransAmtFen  int64     `json:"trans_amt_fen"`
	FeeAmtFen    int64     `json:"fee_amt_fen"`
	SettleAmtFen int64     `json:"settle_amt_fen"`
	OrgReqDate   string    `json:"org_req_date,omitempty"`
	OrgReqSeqID  string    `json:"org_req_seq_id,omitempty"`
	OrgNkpSeqID  string    `json:"org_nkp_seq_id,omitempty"`
	PartyOrderID string    `json:"party_order_id,omitempty"`
	OutTransID   string    `json:"out_trans_id,omitempty"`
}

// SettleRow is a record of SETTLE_BILL and SETTLE_BILL_MONTH.
type SettleRow struct {
	Line         int    `json:"line"`
	SettleDate   string `json:"settle_date"`
	HuifuID      string `json:"huifu_id"`
	PayCount     int    `json:"pay_count"`
	PayAmtFen    int64  `json:"pay_amt_fen"`
	RefundCount  int    `json:"refund_count"`
	RefundAmtFen int64  `json:"refund_amt_fen"`
	FeeAmtFen    int64  `json:"fee_amt_fen"`
	SettleAmtFen int64  `json:"settle_amt_fen"`
}

// SplitRow is a record of SPLIT_BILL.
type SplitRow struct {
	Line       int    `json:"line"`
	SplitDate  string `json:"split_date"`
	HuifuID    string `json:"huifu_id"`
	ReqDate    string `json:"req_date"`
	ReqSeqID   string `json:"req_seq_id"`
	NkpSeqID   string `json:"nkp_seq_id"`
	DivHuifuID string `json:"div_huifu_id"`
	DivAmtFen  int64  `json:"div_amt_fen"`
	TransStat  string `json:"trans_stat"`
}

// WithdrawalRow is a record of WITHDRAWAL_BILL.
type WithdrawalRow struct {
	Line         int       `json:"line"`
	WithdrawDate string    `json:"withdraw_date"`
	WithdrawTime time.Time `json:"withdraw_time"`
	HuifuID      string    `json:"huifu_id"`
	ReqSeqID     string    `json:"req_seq_id"`
	NkpSeqID     string    `json:"nkp_seq_id"`
	CashAmtFen   int64     `json:"cash_amt_fen"`
	FeeAmtFen    int64     `json:"fee_amt_fen"`
	RealAmtFen   int64     `json:"real_amt_fen"`
	TransStat    string    `json:"trans_stat"`
	BankAcct     string    `json:"bank_acct,omitempty"`
}

// StatementPage is a page of a statement's parsed records: Rows of the
// bill type's kind (decode them with DecodeRows) and the records that could
// not be read.
type StatementPage struct {
	Date     string              `json:"date"`
	BillType string              `json:"bill_type"`
	Files    []StatementFile     `json:"files"`
	Rows     []json.RawMessage   `json:"rows"`
	Errors   []StatementRowError `json:"errors"`
	// NextCursor continues the listing; empty at the end.
	NextCursor string `json:"next_cursor"`
}

// DecodeRows decodes the page's rows into out, a pointer to a slice of
// TradeRow, SettleRow, SplitRow or WithdrawalRow as the bill type says.
func (p StatementPage) DecodeRows(out any) error {
	raw, err := json.Marshal(p.Rows)
	if err != nil {
		return fmt.Errorf("paysidecar: encode rows: %w", err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("paysidecar: decode %s rows: %w", p.BillType, err)
	}
	return nil
}

// ReconciliationSettlement is what the sidecar did about a difference it
// can settle itself.
type ReconciliationSettlement struct {
	// Outcome is "settled", "open" or "failed".
	Outcome string `json:"outcome"`
	Status  string `json:"status,omitempty"`
	Error   string `json:"error,omitempty"`
}

// ReconciliationDifference is one thing in which the upstream's statement
// and the sidecar's ledger do not match.
type ReconciliationDifference struct {
	Seq             int                       `json:"seq"`
	Kind            string                    `json:"kind"`
	Object          string                    `json:"object,omitempty"`
	MerchantID      string                    `json:"merchant_id,omitempty"`
	ReqDate         string                    `json:"req_date,omitempty"`
	ReqSeqID        string                    `json:"req_seq_id,omitempty"`
	NkpSeqID        string                    `json:"nkp_seq_id,omitempty"`
	LedgerID        string                    `json:"ledger_id,omitempty"`
	LedgerStatus    string                    `json:"ledger_status,omitempty"`
	LedgerAmountFen int64                     `json:"ledger_amount_fen,omitempty"`
	FileStat        string                    `json:"file_stat,omitempty"`
	FileAmountFen   int64                     `json:"file_amount_fen,omitempty"`
	File            string                    `json:"file,omitempty"`
	Line            int                       `json:"line,omitempty"`
	Reason          string                    `json:"reason"`
	Settleable      bool                      `json:"settleable,omitempty"`
	Settlement      *ReconciliationSettlement `json:"settlement,omitempty"`
}

// ReconciliationTotals are one merchant's sums of the day, in fen, from
// the trade bill, the ledger and the settlement bill.
type ReconciliationTotals struct {
	MerchantID        string     `json:"merchant_id"`
	FilePayCount      int        `json:"file_pay_count"`
	FilePayFen        int64      `json:"file_pay_fen"`
	FileRefundCount   int        `json:"file_refund_count"`
	FileRefundFen     int64      `json:"file_refund_fen"`
	FileFeeFen        int64      `json:"file_fee_fen"`
	FileSettleFen     int64      `json:"file_settle_fen"`
	LedgerPayCount    int        `json:"ledger_pay_count"`
	LedgerPayFen      int64      `json:"ledger_pay_fen"`
	LedgerRefundCount int        `json:"ledger_refund_count"`
	LedgerRefundFen   int64      `json:"ledger_refund_fen"`
	Settle            *SettleRow `json:"settle,omitempty"`
}

// Reconciliation is one run comparing a day's trade bill with the
// sidecar's ledger. Status is "running", "clean", "differences" or
// "failed".
type Reconciliation struct {
	RunID         string                 `json:"run_id"`
	MerchantID    string                 `json:"merchant_id"`
	Date          string                 `json:"date"`
	Trigger       string                 `json:"trigger"`
	Status        string                 `json:"status"`
	StartedAt     time.Time              `json:"started_at"`
	FinishedAt    time.Time              `json:"finished_at,omitzero"`
	FileRecords   int                    `json:"file_records"`
	LedgerRecords int                    `json:"ledger_records"`
	Counts        map[string]int         `json:"counts"`
	Settled       int                    `json:"settled"`
	Totals        []ReconciliationTotals `json:"totals"`
	Files         []string               `json:"files"`
	// Differences are the first differences of the run (all of them
	// unless Truncated); GetReconciliation pages through every one.
	Differences []ReconciliationDifference `json:"differences"`
	Truncated   bool                       `json:"truncated,omitempty"`
	Error       string                     `json:"error,omitempty"`
}

// StartReconciliationRequest is the body of POST /v1/reconciliations.
type StartReconciliationRequest struct {
	// Date is the day, yyyyMMdd.
	Date string `json:"date"`
	// Refetch downloads the day's statements again.
	Refetch bool `json:"refetch,omitempty"`
}

// ReconciliationList is the answer of GET /v1/reconciliations.
type ReconciliationList struct {
	Runs []Reconciliation `json:"runs"`
}

// ReconciliationPage is a run with a page of its differences.
type ReconciliationPage struct {
	Run         Reconciliation             `json:"run"`
	Differences []ReconciliationDifference `json:"differences"`
	// NextAfter continues the differences; 0 at the end.
	NextAfter int `json:"next_after"`
}

// Statement returns a page of the parsed records of a day's (or, for the
// monthly bills, a month's) statement, fetching it from the upstream
// first when the sidecar does not keep it yet. cursor is a NextCursor of
// an earlier page or empty; limit 0 means the server's default.
func (c *Client) Statement(ctx context.Context, date, billType, cursor string, limit int) (StatementPage, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out StatementPage
	err := c.Do(ctx, http.MethodGet, "/v1/statements/"+url.PathEscape(date)+"/"+url.PathEscape(billType)+query(q), nil, &out)
	return out, err
}

// StatementFile returns the original bytes of a statement file, named as
// in StatementPage.Files. The caller closes the reader.
func (c *Client) StatementFile(ctx context.Context, date, billType, name string) (io.ReadCloser, error) {
	path := "/v1/statements/" + url.PathEscape(date) + "/" + url.PathEscape(billType) + "/files/" + url.PathEscape(name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("paysidecar: build request: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("paysidecar: GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer func() { _ = resp.Body.Close() }()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, apiError(resp.StatusCode, raw)
	}
	return resp.Body, nil
}

// StartReconciliation reconciles a day now and returns the run's report.
func (c *Client) StartReconciliation(ctx context.Context, req StartReconciliationRequest) (Reconciliation, error) {
	var out Reconciliation
	err := c.Do(ctx, http.MethodPost, "/v1/reconciliations", req, &out)
	return out, err
}

// ListReconciliations lists runs newest first: those started before
// before (zero: any), at most limit (0: the server's default).
func (c *Client) ListReconciliations(ctx context.Context, before time.Time, limit int) ([]Reconciliation, error) {
	q := url.Values{}
	if !before.IsZero() {
		q.Set("before", before.Format(time.RFC3339Nano))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out ReconciliationList
	err := c.Do(ctx, http.MethodGet, "/v1/reconciliations"+query(q), nil, &out)
	return out.Runs, err
}

// GetReconciliation returns a run with its differences numbered above
// after, at most limit (0: the server's default).
func (c *Client) GetReconciliation(ctx context.Context, id string, after, limit int) (ReconciliationPage, error) {
	q := url.Values{}
	if after > 0 {
		q.Set("after", strconv.Itoa(after))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out ReconciliationPage
	err := c.Do(ctx, http.MethodGet, "/v1/reconciliations/"+url.PathEscape(id)+query(q), nil, &out)
	return out, err
}

func query(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}
