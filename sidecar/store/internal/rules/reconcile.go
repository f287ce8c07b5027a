package rules

import (
	"github.com/paysidecar/paysidecar/sidecar/store"
)

// ReconcileRun checks a run before it starts and sets its state and times
// as the store keeps them.
func ReconcileRun(r *store.ReconcileRun, exclusive bool) error {
	if err := required("reconciliation run", "id", r.ID, "merchant_id", r.MerchantID, "bill_date", r.BillDate,
		"trigger", r.Trigger); err != nil {
		return err
	}
	if r.StartedAt.IsZero() {
		return invalid("reconciliation run started_at is required")
	}
	if exclusive && !r.LeaseUntil.After(r.StartedAt) {
		return invalid("an exclusive reconciliation run's lease must end after it starts")
	}
	r.Status = store.ReconcileRunning
	r.StartedAt, r.LeaseUntil = Time(r.StartedAt), Time(r.LeaseUntil)
	return nil
}

// ReconcileResult checks the result of a run before it is stored.
func ReconcileResult(r *store.ReconcileRun) error {
	if err := required("reconciliation run", "id", r.ID, "status", r.Status); err != nil {
		return err
	}
	if r.Status == store.ReconcileRunning {
		return invalid("a finished reconciliation run cannot be %q", r.Status)
	}
	if r.Differences < 0 {
		return invalid("negative difference count %d", r.Differences)
	}
	r.FinishedAt = Time(r.FinishedAt)
	return JSON("report", r.Report)
}

// ReconcileDifferences checks the differences added to a run.
func ReconcileDifferences(diffs []store.ReconcileDifference) error {
	for _, d := range diffs {
		if d.Seq <= 0 {
			return invalid("difference seq must be positive, got %d", d.Seq)
		}
		if d.Kind == "" {
			return invalid("difference %d has no kind", d.Seq)
		}
		if len(d.Body) == 0 {
			return invalid("difference %d has no body", d.Seq)
		}
		if err := JSON("difference body", d.Body); err != nil {
			return err
		}
	}
	return nil
}
