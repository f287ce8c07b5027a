package reconcile

import (
	"context"
	"errors"
	"time"
)

// ErrRunNotFound is returned for a run that does not exist.
var ErrRunNotFound = errors.New("reconciliation run not found")

// RunStart describes a run about to start.
type RunStart struct {
	ID         string
	MerchantID string
	Date       string
	Trigger    string
	Owner      string
	StartedAt  time.Time
	// LeaseUntil is when an exclusive claim held by an owner that stopped
	// answering may be taken over.
	LeaseUntil time.Time
	// Exclusive claims the merchant's date: the run starts only if no
	// other exclusive run of the date is running (with its lease still
	// good) or has finished without failing.
	Exclusive bool
}

// RunStore keeps reconciliation runs and their differences.
type RunStore interface {
	// StartRun stores a new run in state running and reports whether it
	// started: false means an exclusive claim on its date is held by
	// another run or done.
	StartRun(ctx context.Context, r RunStart) (bool, error)
	// AddDifferences appends differences to a run.
	AddDifferences(ctx context.Context, runID string, diffs []Difference) error
	// FinishRun stores a run's result (its Differences are not stored
	// again). A failed exclusive run releases its claim, so that it can
	// be run again.
	FinishRun(ctx context.Context, rep Report) error
	// GetRun returns a run without its differences, or ErrRunNotFound.
	GetRun(ctx context.Context, id string) (Report, error)
	// LatestRun returns the merchant's latest run of a date, or
	// ErrRunNotFound.
	LatestRun(ctx context.Context, merchantID, date string) (Report, error)
	// ListRuns lists the merchant's runs, newest first, started before
	// before (zero: any), at most limit.
	ListRuns(ctx context.Context, merchantID string, before time.Time, limit int) ([]Report, error)
	// ListDifferences lists a run's differences with Seq above afterSeq,
	// in order, at most limit.
	ListDifferences(ctx context.Context, runID string, afterSeq, limit int) ([]Difference, error)
}
