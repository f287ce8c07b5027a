package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/internal/rules"
)

// due is a candidate of ClaimDueQueries.
type due struct {
	kind string
	id   string
	at   time.Time
}

// dueCandidates locks up to limit due rows of the table, skipping rows
// that other transactions hold.
func dueCandidates(ctx context.Context, tx pgx.Tx, table, kind string, now time.Time, limit int) ([]due, error) {
	rows, err := tx.Query(ctx, `SELECT id, next_query_at FROM `+table+`
		WHERE next_query_at IS NOT NULL AND next_query_at <= $1
			AND status IN ('pending', 'processing')
			AND (query_lease_until IS NULL OR query_lease_until <= $1)
		ORDER BY next_query_at, id LIMIT $2
		FOR NO KEY UPDATE SKIP LOCKED`, now, limit)
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
		return nil, nil, fmt.Errorf("postgres: claim due queries: %w", err)
	}
	now = rules.Time(now)
	lease := rules.Time(c.LeaseUntil)
	var (
		payments []store.Payment
		refunds  []store.Refund
	)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		payments, refunds = nil, nil
		ps, err := dueCandidates(ctx, tx, "payments", rules.KindPayment, now, limit)
		if err != nil {
			return err
		}
		rs, err := dueCandidates(ctx, tx, "refunds", rules.KindRefund, now, limit)
		if err != nil {
			return err
		}
		all := append(ps, rs...)
		slices.SortStableFunc(all, func(a, b due) int { return a.at.Compare(b.at) })
		if len(all) > limit {
			all = all[:limit]
		}
		var pIDs, rIDs []string
		for _, d := range all {
			if d.kind == rules.KindPayment {
				pIDs = append(pIDs, d.id)
			} else {
				rIDs = append(rIDs, d.id)
			}
		}
		if len(pIDs) > 0 {
			rows, err := tx.Query(ctx, `UPDATE payments SET query_owner = $1, query_lease_until = $2
				WHERE id = ANY($3) RETURNING `+paymentCols, c.Owner, lease, pIDs)
			if err != nil {
				return err
			}
			for rows.Next() {
				p, err := scanPayment(rows)
				if err != nil {
					rows.Close()
					return err
				}
				payments = append(payments, p)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		if len(rIDs) > 0 {
			rows, err := tx.Query(ctx, `UPDATE refunds SET query_owner = $1, query_lease_until = $2
				WHERE id = ANY($3) RETURNING `+refundCols, c.Owner, lease, rIDs)
			if err != nil {
				return err
			}
			for rows.Next() {
				r, err := scanRefund(rows)
				if err != nil {
					rows.Close()
					return err
				}
				refunds = append(refunds, r)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: claim due queries for %q: %w", c.Owner, err)
	}
	slices.SortStableFunc(payments, func(a, b store.Payment) int {
		return cmp.Or(a.NextQueryAt.Compare(b.NextQueryAt), cmp.Compare(a.ID, b.ID))
	})
	slices.SortStableFunc(refunds, func(a, b store.Refund) int {
		return cmp.Or(a.NextQueryAt.Compare(b.NextQueryAt), cmp.Compare(a.ID, b.ID))
	})
	return payments, refunds, nil
}

// ScheduleQuery sets the next reverse query of a payment or refund and
// releases its lease.
func (s *Store) ScheduleQuery(ctx context.Context, kind, id string, next time.Time, attempts int, lastError string) error {
	if err := rules.Kind(kind); err != nil {
		return fmt.Errorf("postgres: schedule query: %w", err)
	}
	if attempts < 0 {
		return fmt.Errorf("postgres: schedule query: %w: negative attempt count", store.ErrInvalid)
	}
	table := "payments"
	if kind == rules.KindRefund {
		table = "refunds"
	}
	tag, err := s.pool.Exec(ctx, `UPDATE `+table+` SET
			next_query_at = CASE WHEN status IN ('pending', 'processing') THEN $1::timestamptz ELSE NULL END,
			query_attempts = $2, last_error = $3, query_owner = NULL, query_lease_until = NULL
		WHERE id = $4`, dbTime(rules.Time(next)), attempts, lastError, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: schedule query of %s %q: %w", kind, id, err)
	}
	return nil
}
