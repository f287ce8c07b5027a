package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/internal/rules"
)

// The ledger as reconciliation reads it: one column list for payments and
// one for refunds (joined to their payment), the same in number and type,
// and the window of a day.
const (
	ledgerPaymentCols = `'payment', p.id, p.merchant_id, p.req_date, p.req_seq_id, p.nkp_seq_id, p.amount_fen, p.status,
	p.finished_at, p.upstream_fields, p.refunded_fen, '', '', 0, 0`
	ledgerRefundCols = `'refund', r.id, r.merchant_id, r.req_date, r.req_seq_id, r.nkp_seq_id, r.amount_fen, r.status,
	r.finished_at, r.upstream_fields, 0, p.req_date, p.req_seq_id, p.amount_fen, p.refunded_fen`
	// Final in [from, to), or not final and created before to.
	ledgerPaymentWindow = `p.merchant_id = ? AND ((p.finished_at >= ? AND p.finished_at < ?)
	OR (p.status IN ('pending', 'processing') AND p.created_at < ?))`
	ledgerRefundWindow = `r.merchant_id = ? AND ((r.finished_at >= ? AND r.finished_at < ?)
	OR (r.status IN ('pending', 'processing') AND r.created_at < ?))`
)

// byteOrder returns the ORDER BY of a table's serials in byte order:
// PostgreSQL's default collation is not, so the columns are collated "C"
// there; SQLite compares bytes and reads straight from the unique serial
// index, with no sort.
func (s *Store) byteOrder(alias string) string {
	if s.d.NumberedParams {
		return alias + `.req_date COLLATE "C", ` + alias + `.req_seq_id COLLATE "C"`
	}
	return alias + ".req_date, " + alias + ".req_seq_id"
}

func scanLedgerEntry(row scanner) (store.LedgerEntry, error) {
	var e store.LedgerEntry
	err := row.Scan(&e.Kind, &e.ID, &e.MerchantID, &e.ReqDate, &e.ReqSeqID, &e.NkpSeqID, &e.AmountFen, &e.Status,
		tm(&e.FinishedAt), js(&e.UpstreamFields), &e.RefundedFen, &e.PaymentReqDate, &e.PaymentReqSeqID,
		&e.PaymentAmountFen, &e.PaymentRefundedFen)
	if err != nil {
		return store.LedgerEntry{}, notFound(err)
	}
	return e, nil
}

// ledgerBefore reports whether a comes before b in the order of LedgerEntries.
func ledgerBefore(a, b *store.LedgerEntry) bool {
	if a.ReqDate != b.ReqDate {
		return a.ReqDate < b.ReqDate
	}
	if a.ReqSeqID != b.ReqSeqID {
		return a.ReqSeqID < b.ReqSeqID
	}
	return a.Kind == rules.KindPayment
}

// LedgerEntries streams the merchant's payments and refunds of a day. The
// two tables are read by two queries at once, each in serial order, and
// merged; the call therefore holds two read connections while it runs.
func (s *Store) LedgerEntries(ctx context.Context, merchantID string, from, to time.Time, fn func(store.LedgerEntry) error) error {
	if merchantID == "" || from.IsZero() || !to.After(from) {
		return s.errorf("ledger entries: %w: a merchant and a window [from, to) are required", store.ErrInvalid)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rd := s.reader(ctx)
	f, t := s.time(from), s.time(to)
	pays, err := rd.query(`SELECT `+ledgerPaymentCols+` FROM payments p WHERE `+ledgerPaymentWindow+
		` ORDER BY `+s.byteOrder("p"), merchantID, f, t, t)
	if err != nil {
		return s.errorf("ledger entries: read payments: %w", err)
	}
	defer func() { _ = pays.Close() }()
	refs, err := rd.query(`SELECT `+ledgerRefundCols+` FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE `+
		ledgerRefundWindow+` ORDER BY `+s.byteOrder("r"), merchantID, f, t, t)
	if err != nil {
		return s.errorf("ledger entries: read refunds: %w", err)
	}
	defer func() { _ = refs.Close() }()
	type cursor struct {
		rows *sql.Rows
		e    store.LedgerEntry
		ok   bool
	}
	next := func(c *cursor) error {
		c.ok = c.rows.Next()
		if !c.ok {
			if err := c.rows.Err(); err != nil {
				return s.errorf("ledger entries: %w", err)
			}
			return nil
		}
		var err error
		if c.e, err = scanLedgerEntry(c.rows); err != nil {
			return s.errorf("ledger entries: %w", err)
		}
		return nil
	}
	p, r := &cursor{rows: pays}, &cursor{rows: refs}
	if err := next(p); err != nil {
		return err
	}
	if err := next(r); err != nil {
		return err
	}
	for p.ok || r.ok {
		c := r
		if !r.ok || (p.ok && ledgerBefore(&p.e, &r.e)) {
			c = p
		}
		if err := fn(c.e); err != nil {
			return err
		}
		if err := next(c); err != nil {
			return err
		}
	}
	return nil
}

// LookupLedgerEntry returns the merchant's payment or refund with the
// serial.
func (s *Store) LookupLedgerEntry(ctx context.Context, merchantID, reqDate, reqSeqID string) (store.LedgerEntry, error) {
	const q = `SELECT ` + ledgerPaymentCols + ` FROM payments p WHERE p.merchant_id = ? AND p.req_date = ? AND p.req_seq_id = ?
UNION ALL
SELECT ` + ledgerRefundCols + ` FROM refunds r JOIN payments p ON p.id = r.payment_id
	WHERE r.merchant_id = ? AND r.req_date = ? AND r.req_seq_id = ?`
	return get(s, ctx, scanLedgerEntry, fmt.Sprintf("look up %s/%s", reqDate, reqSeqID), q,
		merchantID, reqDate, reqSeqID, merchantID, reqDate, reqSeqID)
}

// claimKey is what an exclusive run claims: its merchant's day. The
// unique index on reconcile_runs.claim_key lets one run hold it.
func claimKey(merchantID, billDate string) string { return merchantID + "/" + billDate }

// StartReconcileRun stores a new run, claiming its day when exclusive.
func (s *Store) StartReconcileRun(ctx context.Context, r store.ReconcileRun, exclusive bool) (bool, error) {
	if err := rules.ReconcileRun(&r, exclusive); err != nil {
		return false, s.errorf("start reconciliation run: %w", err)
	}
	var claim any
	if exclusive {
		claim = claimKey(r.MerchantID, r.BillDate)
	}
	var started bool
	err := s.write(ctx, func(t *txn) error {
		started = false
		if exclusive {
			// An owner that stopped answering loses its claim.
			if _, err := t.exec(`UPDATE reconcile_runs SET claim_key = NULL
				WHERE claim_key = ? AND status = 'running' AND lease_until < ?`, claim, s.time(r.StartedAt)); err != nil {
				return err
			}
		}
		n, err := t.execCount(`INSERT INTO reconcile_runs (id, merchant_id, bill_date, run_trigger, status, owner,
				claim_key, lease_until, started_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (claim_key) DO NOTHING`,
			r.ID, r.MerchantID, r.BillDate, r.Trigger, r.Status, r.Owner, claim, s.time(r.LeaseUntil), s.time(r.StartedAt))
		started = n == 1
		return s.conflict(err, "reconciliation run")
	})
	if err != nil {
		return false, s.errorf("start reconciliation run %q: %w", r.ID, err)
	}
	return started, nil
}

// AddReconcileDifferences appends differences to a run in one write.
func (s *Store) AddReconcileDifferences(ctx context.Context, id string, diffs []store.ReconcileDifference) error {
	if id == "" {
		return s.errorf("add reconciliation differences: %w: run id is required", store.ErrInvalid)
	}
	if err := rules.ReconcileDifferences(diffs); err != nil {
		return s.errorf("add reconciliation differences to %q: %w", id, err)
	}
	if len(diffs) == 0 {
		return nil
	}
	err := s.write(ctx, func(t *txn) error {
		for _, d := range diffs {
			_, err := t.exec(`INSERT INTO reconcile_differences (run_id, seq, kind, req_seq_id, body) VALUES (?, ?, ?, ?, ?)`,
				id, d.Seq, d.Kind, d.ReqSeqID, dbJSON(d.Body))
			if err != nil && s.d.ForeignKey(err) {
				return store.ErrNotFound
			}
			if err != nil {
				return s.conflict(err, "reconciliation difference")
			}
		}
		return nil
	})
	if err != nil {
		return s.errorf("add reconciliation differences to %q: %w", id, err)
	}
	return nil
}

// FinishReconcileRun stores a run's result; a failed run releases its
// claim.
func (s *Store) FinishReconcileRun(ctx context.Context, r store.ReconcileRun) error {
	if err := rules.ReconcileResult(&r); err != nil {
		return s.errorf("finish reconciliation run: %w", err)
	}
	err := s.write(ctx, func(t *txn) error {
		return found(t.execCount(`UPDATE reconcile_runs SET status = ?, finished_at = ?, differences = ?, report = ?, error = ?,
				claim_key = CASE WHEN ? = '`+store.ReconcileFailed+`' THEN NULL ELSE claim_key END
			WHERE id = ?`, r.Status, s.time(r.FinishedAt), r.Differences, dbJSON(r.Report), r.Error, r.Status, r.ID))
	})
	if err != nil {
		return s.errorf("finish reconciliation run %q: %w", r.ID, err)
	}
	return nil
}

const reconcileRunCols = `id, merchant_id, bill_date, run_trigger, status, owner, lease_until, started_at, finished_at,
	differences, report, error`

func scanReconcileRun(row scanner) (store.ReconcileRun, error) {
	var r store.ReconcileRun
	err := row.Scan(&r.ID, &r.MerchantID, &r.BillDate, &r.Trigger, &r.Status, &r.Owner, tm(&r.LeaseUntil), tm(&r.StartedAt),
		tm(&r.FinishedAt), &r.Differences, js(&r.Report), &r.Error)
	if err != nil {
		return store.ReconcileRun{}, notFound(err)
	}
	return r, nil
}

// GetReconcileRun returns the run with the id.
func (s *Store) GetReconcileRun(ctx context.Context, id string) (store.ReconcileRun, error) {
	return get(s, ctx, scanReconcileRun, fmt.Sprintf("get reconciliation run %q", id),
		`SELECT `+reconcileRunCols+` FROM reconcile_runs WHERE id = ?`, id)
}

// LatestReconcileRun returns the merchant's latest run of a day.
func (s *Store) LatestReconcileRun(ctx context.Context, merchantID, billDate string) (store.ReconcileRun, error) {
	return get(s, ctx, scanReconcileRun, fmt.Sprintf("latest reconciliation run of %s", billDate),
		`SELECT `+reconcileRunCols+` FROM reconcile_runs WHERE merchant_id = ? AND bill_date = ?
			ORDER BY started_at DESC, id DESC LIMIT 1`, merchantID, billDate)
}

// farFuture stands for "no bound" in ListReconcileRuns.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// ListReconcileRuns lists the merchant's runs, newest first.
func (s *Store) ListReconcileRuns(ctx context.Context, merchantID string, before time.Time, limit int) ([]store.ReconcileRun, error) {
	if err := rules.Limit(limit); err != nil {
		return nil, s.errorf("list reconciliation runs: %w", err)
	}
	if before.IsZero() {
		before = farFuture
	}
	rows, err := s.reader(ctx).query(`SELECT `+reconcileRunCols+` FROM reconcile_runs
		WHERE merchant_id = ? AND started_at < ? ORDER BY started_at DESC, id DESC LIMIT ?`, merchantID, s.time(before), limit)
	if err != nil {
		return nil, s.errorf("list reconciliation runs: %w", err)
	}
	runs, err := scanAll(rows, scanReconcileRun)
	if err != nil {
		return nil, s.errorf("list reconciliation runs: %w", err)
	}
	if runs == nil {
		runs = []store.ReconcileRun{}
	}
	return runs, nil
}

// ListReconcileDifferences pages through a run's differences.
func (s *Store) ListReconcileDifferences(ctx context.Context, id string, afterSeq, limit int) ([]store.ReconcileDifference, error) {
	if err := rules.Limit(limit); err != nil {
		return nil, s.errorf("list reconciliation differences: %w", err)
	}
	rows, err := s.reader(ctx).query(`SELECT seq, kind, req_seq_id, body FROM reconcile_differences
		WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?`, id, afterSeq, limit)
	if err != nil {
		return nil, s.errorf("list reconciliation differences of %q: %w", id, err)
	}
	diffs, err := scanAll(rows, func(row scanner) (store.ReconcileDifference, error) {
		var d store.ReconcileDifference
		err := row.Scan(&d.Seq, &d.Kind, &d.ReqSeqID, js(&d.Body))
		return d, err
	})
	if err != nil {
		return nil, s.errorf("list reconciliation differences of %q: %w", id, err)
	}
	if diffs == nil {
		diffs = []store.ReconcileDifference{}
	}
	return diffs, nil
}
