package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

// StoreBooks is the LedgerReader and RunStore of the sidecar's store: the
// ledger is its payments and refunds, read in serial order and streamed,
// and the runs and their differences are kept in its tables.
type StoreBooks struct {
	Store store.Reconciliations
}

var (
	_ LedgerReader = StoreBooks{}
	_ RunStore     = StoreBooks{}
)

// Entries implements LedgerReader.
func (b StoreBooks) Entries(ctx context.Context, merchantID string, from, to time.Time, fn func(Entry) error) error {
	return b.Store.LedgerEntries(ctx, merchantID, from, to, func(e store.LedgerEntry) error { return fn(entry(e)) })
}

// Lookup implements LedgerReader.
func (b StoreBooks) Lookup(ctx context.Context, merchantID, reqDate, reqSeqID string) (Entry, bool, error) {
	e, err := b.Store.LookupLedgerEntry(ctx, merchantID, reqDate, reqSeqID)
	if errors.Is(err, store.ErrNotFound) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	return entry(e), true, nil
}

// entry is a ledger entry as the comparison reads it; a final entry ends
// when the upstream says it did, else when the sidecar saw it end.
func entry(e store.LedgerEntry) Entry {
	out := Entry{
		Kind: e.Kind, ID: e.ID, MerchantID: e.MerchantID, ReqDate: e.ReqDate, ReqSeqID: e.ReqSeqID, NkpSeqID: e.NkpSeqID,
		Amount: nkp.Fen(e.AmountFen), Status: e.Status, Refunded: nkp.Fen(e.RefundedFen),
		PaymentReqDate: e.PaymentReqDate, PaymentReqSeqID: e.PaymentReqSeqID,
		PaymentAmount: nkp.Fen(e.PaymentAmountFen), PaymentRefunded: nkp.Fen(e.PaymentRefundedFen),
	}
	if e.Status.Final() {
		out.EndTime = endTime(e.UpstreamFields)
		if out.EndTime.IsZero() {
			out.EndTime = e.FinishedAt
		}
	}
	return out
}

var endTimeKey = []byte(`"end_time":"`)

// endTime finds end_time in the verified upstream fields stored with a
// payment or refund, without decoding the rest.
func endTime(upstream []byte) time.Time {
	i := bytes.Index(upstream, endTimeKey)
	if i < 0 {
		return time.Time{}
	}
	v := upstream[i+len(endTimeKey):]
	if len(v) < 14 {
		return time.Time{}
	}
	t, err := nkp.ParseTimestamp(string(v[:14]))
	if err != nil {
		return time.Time{}
	}
	return t
}

// StartRun implements RunStore.
func (b StoreBooks) StartRun(ctx context.Context, r RunStart) (bool, error) {
	return b.Store.StartReconcileRun(ctx, store.ReconcileRun{ID: r.ID, MerchantID: r.MerchantID, BillDate: r.Date, Trigger: r.Trigger,
		Owner: r.Owner, StartedAt: r.StartedAt, LeaseUntil: r.LeaseUntil}, r.Exclusive)
}

// AddDifferences implements RunStore.
func (b StoreBooks) AddDifferences(ctx context.Context, runID string, diffs []Difference) error {
	rows := make([]store.ReconcileDifference, 0, len(diffs))
	for _, d := range diffs {
		body, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("reconcile: encode difference %d: %w", d.Seq, err)
		}
		rows = append(rows, store.ReconcileDifference{Seq: d.Seq, Kind: string(d.Kind), ReqSeqID: d.ReqSeqID, Body: body})
	}
	return b.Store.AddReconcileDifferences(ctx, runID, rows)
}

// FinishRun implements RunStore.
func (b StoreBooks) FinishRun(ctx context.Context, rep Report) error {
	rep.Differences = nil
	body, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("reconcile: encode run %s: %w", rep.RunID, err)
	}
	err = b.Store.FinishReconcileRun(ctx, store.ReconcileRun{ID: rep.RunID, Status: rep.Status, FinishedAt: rep.FinishedAt,
		Differences: rep.Total(), Report: body, Error: rep.Error})
	return runNotFound(err)
}

// runNotFound adds ErrRunNotFound to the store's ErrNotFound.
func runNotFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrRunNotFound, err)
	}
	return err
}

// report is a stored run as a Report: the columns the store keeps say
// who, when and how it ended; the rest is its stored report.
func report(r store.ReconcileRun) (Report, error) {
	var rep Report
	if len(r.Report) > 0 {
		if err := json.Unmarshal(r.Report, &rep); err != nil {
			return rep, fmt.Errorf("reconcile: decode run %s: %w", r.ID, err)
		}
	}
	rep.RunID, rep.MerchantID, rep.Date, rep.Trigger, rep.Status, rep.Error = r.ID, r.MerchantID, r.BillDate, r.Trigger, r.Status, r.Error
	rep.StartedAt, rep.FinishedAt = r.StartedAt, r.FinishedAt
	return rep, nil
}

// GetRun implements RunStore.
func (b StoreBooks) GetRun(ctx context.Context, id string) (Report, error) {
	r, err := b.Store.GetReconcileRun(ctx, id)
	if err != nil {
		return Report{}, runNotFound(err)
	}
	return report(r)
}

// LatestRun implements RunStore.
func (b StoreBooks) LatestRun(ctx context.Context, merchantID, date string) (Report, error) {
	r, err := b.Store.LatestReconcileRun(ctx, merchantID, date)
	if err != nil {
		return Report{}, runNotFound(err)
	}
	return report(r)
}

// ListRuns implements RunStore.
func (b StoreBooks) ListRuns(ctx context.Context, merchantID string, before time.Time, limit int) ([]Report, error) {
	runs, err := b.Store.ListReconcileRuns(ctx, merchantID, before, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Report, 0, len(runs))
	for _, r := range runs {
		rep, err := report(r)
		if err != nil {
			return nil, err
		}
		out = append(out, rep)
	}
	return out, nil
}

// ListDifferences implements RunStore.
func (b StoreBooks) ListDifferences(ctx context.Context, runID string, afterSeq, limit int) ([]Difference, error) {
	rows, err := b.Store.ListReconcileDifferences(ctx, runID, afterSeq, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Difference, 0, len(rows))
	for _, row := range rows {
		var d Difference
		if err := json.Unmarshal(row.Body, &d); err != nil {
			return nil, fmt.Errorf("reconcile: decode difference %d of run %s: %w", row.Seq, runID, err)
		}
		out = append(out, d)
	}
	return out, nil
}
