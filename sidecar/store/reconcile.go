package store

import (
	"context"
	"encoding/json"
	"time"
)

// LedgerEntry is a payment or a refund as reconciliation reads it: its
// serials, amount, state and, for a refund, its payment's.
type LedgerEntry struct {
	// Kind is "payment" or "refund".
	Kind       string
	ID         string
	MerchantID string
	ReqDate    string
	ReqSeqID   string
	NkpSeqID   string
	AmountFen  int64
	Status     Status
	// FinishedAt is when the sidecar saw the entry become final.
	FinishedAt time.Time
	// UpstreamFields is the last verified upstream data of the entry.
	UpstreamFields json.RawMessage
	// RefundedFen is, for a payment, the total of its succeeded refunds.
	RefundedFen int64
	// For a refund: its payment's serial, amount and refunded total.
	PaymentReqDate     string
	PaymentReqSeqID    string
	PaymentAmountFen   int64
	PaymentRefundedFen int64
}

// The states of a reconciliation run the store acts on; the others are
// the caller's own.
const (
	// ReconcileRunning is the state of a run that has started.
	ReconcileRunning = "running"
	// ReconcileFailed is the state of a run that failed; an exclusive
	// run that fails releases its claim.
	ReconcileFailed = "failed"
)

// ReconcileRun is one reconciliation run of a merchant's day.
type ReconcileRun struct {
	ID         string
	MerchantID string
	// BillDate is the day reconciled, yyyyMMdd.
	BillDate string
	// Trigger says what started the run ("schedule", "api").
	Trigger string
	Status  string
	// Owner names the process that runs it.
	Owner string
	// LeaseUntil is when the exclusive claim of an owner that stopped
	// answering may be taken over.
	LeaseUntil time.Time
	StartedAt  time.Time
	FinishedAt time.Time
	// Differences counts the run's differences.
	Differences int
	// Report is the caller's JSON account of the result; nil until the
	// run finishes.
	Report json.RawMessage
	Error  string
}

// ReconcileDifference is one difference a run found.
type ReconcileDifference struct {
	// Seq numbers the differences of a run from 1, in the order found.
	Seq      int
	Kind     string
	ReqSeqID string
	// Body is the caller's JSON account of the difference.
	Body json.RawMessage
}

// Reconciliations is the part of the store that reconciliation uses: the
// ledger of payments and refunds read in serial order, and the runs with
// their differences. Its methods follow the rules of Store.
type Reconciliations interface {
	// LedgerEntries calls fn for each payment and refund of merchantID
	// that may belong to a day: those that became final in [from, to)
	// and those not final created before to, ordered by (ReqDate,
	// ReqSeqID) in byte order, payments before refunds on a tie. The rows
	// are streamed, never read whole; an error from fn stops the reading
	// and is returned.
	LedgerEntries(ctx context.Context, merchantID string, from, to time.Time, fn func(LedgerEntry) error) error
	// LookupLedgerEntry returns the merchant's payment or refund with the
	// serial, or ErrNotFound.
	LookupLedgerEntry(ctx context.Context, merchantID, reqDate, reqSeqID string) (LedgerEntry, error)

	// StartReconcileRun stores r in state running and reports whether it
	// started. With exclusive, r claims its merchant's BillDate, so that
	// of several replicas one runs the day: it starts only if no other
	// exclusive run of the day is running with its lease still good
	// (r.StartedAt decides) or has finished without failing. ID,
	// MerchantID, BillDate, Trigger and StartedAt are required, and
	// LeaseUntil with exclusive (ErrInvalid); a taken ID is ErrConflict.
	StartReconcileRun(ctx context.Context, r ReconcileRun, exclusive bool) (bool, error)
	// AddReconcileDifferences appends differences to the run id, all or
	// none. Each Body must be JSON and each Seq positive and new for the
	// run (ErrInvalid, ErrConflict); an unknown run is ErrNotFound.
	AddReconcileDifferences(ctx context.Context, id string, diffs []ReconcileDifference) error
	// FinishReconcileRun stores the result of the run r.ID: Status,
	// FinishedAt, Differences, Report and Error. A run finishing as
	// ReconcileFailed releases its exclusive claim, so that it can be run
	// again. An unknown run is ErrNotFound.
	FinishReconcileRun(ctx context.Context, r ReconcileRun) error
	// GetReconcileRun returns the run with the id, or ErrNotFound.
	GetReconcileRun(ctx context.Context, id string) (ReconcileRun, error)
	// LatestReconcileRun returns the merchant's latest run of a day, or
	// ErrNotFound.
	LatestReconcileRun(ctx context.Context, merchantID, billDate string) (ReconcileRun, error)
	// ListReconcileRuns lists the merchant's runs started before before
	// (zero: any), newest first, at most limit.
	ListReconcileRuns(ctx context.Context, merchantID string, before time.Time, limit int) ([]ReconcileRun, error)
	// ListReconcileDifferences lists the differences of run id with Seq
	// above afterSeq, in order, at most limit; an unknown run has none.
	ListReconcileDifferences(ctx context.Context, id string, afterSeq, limit int) ([]ReconcileDifference, error)
}
