package storetest

import (
	"context"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

func (r *roundRobin) LedgerEntries(ctx context.Context, merchantID string, from, to time.Time, fn func(store.LedgerEntry) error) error {
	return r.next().LedgerEntries(ctx, merchantID, from, to, fn)
}

func (r *roundRobin) LookupLedgerEntry(ctx context.Context, merchantID, reqDate, reqSeqID string) (store.LedgerEntry, error) {
	return r.next().LookupLedgerEntry(ctx, merchantID, reqDate, reqSeqID)
}

func (r *roundRobin) StartReconcileRun(ctx context.Context, run store.ReconcileRun, exclusive bool) (bool, error) {
	return r.next().StartReconcileRun(ctx, run, exclusive)
}

func (r *roundRobin) AddReconcileDifferences(ctx context.Context, id string, diffs []store.ReconcileDifference) error {
	return r.next().AddReconcileDifferences(ctx, id, diffs)
}

func (r *roundRobin) FinishReconcileRun(ctx context.Context, run store.ReconcileRun) error {
	return r.next().FinishReconcileRun(ctx, run)
}

func (r *roundRobin) GetReconcileRun(ctx context.Context, id string) (store.ReconcileRun, error) {
	return r.next().GetReconcileRun(ctx, id)
}

func (r *roundRobin) LatestReconcileRun(ctx context.Context, merchantID, billDate string) (store.ReconcileRun, error) {
	return r.next().LatestReconcileRun(ctx, merchantID, billDate)
}

func (r *roundRobin) ListReconcileRuns(ctx context.Context, merchantID string, before time.Time, limit int) ([]store.ReconcileRun, error) {
	return r.next().ListReconcileRuns(ctx, merchantID, before, limit)
}

func (r *roundRobin) ListReconcileDifferences(ctx context.Context, id string, afterSeq, limit int) ([]store.ReconcileDifference, error) {
	return r.next().ListReconcileDifferences(ctx, id, afterSeq, limit)
}
