package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/internal/rules"
)

// due is a candidate of ClaimDueQueries.
type due struct {
	kind string
	id   string
	at   int64
}

func dueCandidates(ctx context.Context, tx *sql.Tx, table, kind string, now int64, limit int) ([]due, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, next_query_at FROM `+table+`
		WHERE next_query_at IS NOT NULL AND next_query_at <= ?
			AND status IN ('pending', 'processing')
			AND (query_lease_until IS NULL OR query_lease_until <= ?)
		ORDER BY next_query_at, id LIMIT ?`, now, now, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []due
	for rows.Next() {
		d := due{kind: kind}
		if err := rows.Scan(&d.id, &d.at); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ClaimDueQueries leases up to limit unfinished payments and refunds whose
// next reverse query has come, the longest due first.
func (s *Store) ClaimDueQueries(ctx context.Context, c store.Claim, now time.Time, limit int) ([]store.Payment, []store.Refund, error) {
	if err := rules.Claim(c, now, limit); err != nil {
		return nil, nil, fmt.Errorf("sqlite: claim due queries: %w", err)
	}
	nowUS := rules.Time(now).UnixMicro()
	lease := dbTime(rules.Time(c.LeaseUntil))
	var (
		payments []store.Payment
		refunds  []store.Refund
	)
	err := s.write(ctx, func(tx *sql.Tx) error {
		ps, err := dueCandidates(ctx, tx, "payments", rules.KindPayment, nowUS, limit)
		if err != nil {
			return err
		}
		rs, err := dueCandidates(ctx, tx, "refunds", rules.KindRefund, nowUS, limit)
		if err != nil {
			return err
		}
		all := append(ps, rs...)
		slices.SortStableFunc(all, func(a, b due) int { return cmp.Compare(a.at, b.at) })
		if len(all) > limit {
			all = all[:limit]
		}
		for _, d := range all {
			if d.kind == rules.KindPayment {
				p, err := scanPayment(tx.QueryRowContext(ctx, `UPDATE payments SET query_owner = ?,
					query_lease_until = ? WHERE id = ? RETURNING `+paymentCols, c.Owner, lease, d.id))
				if err != nil {
					return err
				}
				payments = append(payments, p)
				continue
			}
			r, err := scanRefund(tx.QueryRowContext(ctx, `UPDATE refunds SET query_owner = ?,
				query_lease_until = ? WHERE id = ? RETURNING `+refundCols, c.Owner, lease, d.id))
			if err != nil {
				return err
			}
			refunds = append(refunds, r)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: claim due queries for %q: %w", c.Owner, err)
	}
	return payments, refunds, nil
}

// ScheduleQuery sets the next reverse query of a payment or refund and
// releases its lease.
func (s *Store) ScheduleQuery(ctx context.Context, kind, id string, next time.Time, attempts int, lastError string) error {
	if err := rules.Kind(kind); err != nil {
		return fmt.Errorf("sqlite: schedule query: %w", err)
	}
	if attempts < 0 {
		return fmt.Errorf("sqlite: schedule query: %w: negative attempt count", store.ErrInvalid)
	}
	table := "payments"
	if kind == rules.KindRefund {
		table = "refunds"
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE `+table+` SET
				next_query_at = CASE WHEN status IN ('pending', 'processing') THEN ? ELSE NULL END,
				query_attempts = ?, last_error = ?, query_owner = NULL, query_lease_until = NULL
			WHERE id = ?`, dbTime(rules.Time(next)), attempts, lastError, id)
		if err != nil {
			return err
		}
		n, err := affected(res)
		if err == nil && n == 0 {
			err = store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: schedule query of %s %q: %w", kind, id, err)
	}
	return nil
}
