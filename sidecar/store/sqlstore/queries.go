package sqlstore

import (
	"context"
	"slices"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/internal/rules"
)

// due is a candidate of ClaimDueQueries.
type due struct {
	kind string
	id   string
	at   time.Time
}

// dueCandidates reads up to limit due rows of the table, locking them
// and skipping rows that other transactions hold.
func (s *Store) dueCandidates(t *txn, table, kind string, now time.Time, limit int) ([]due, error) {
	rows, err := t.query(`SELECT id, next_query_at FROM `+table+`
		WHERE next_query_at IS NOT NULL AND next_query_at <= ?
			AND status IN ('pending', 'processing')
			AND (query_lease_until IS NULL OR query_lease_until <= ?)
		ORDER BY next_query_at, id LIMIT ?`+s.d.LockSkip, s.time(now), s.time(now), limit)
	if err != nil {
		return nil, err
	}
	return scanAll(rows, func(row scanner) (due, error) {
		d := due{kind: kind}
		return d, row.Scan(&d.id, tm(&d.at))
	})
}

// ClaimDueQueries leases up to limit unfinished payments and refunds whose
// next reverse query has come, the longest due first.
func (s *Store) ClaimDueQueries(ctx context.Context, c store.Claim, now time.Time, limit int) ([]store.Payment, []store.Refund, error) {
	if err := rules.Claim(c, now, limit); err != nil {
		return nil, nil, s.errorf("claim due queries: %w", err)
	}
	lease := s.time(c.LeaseUntil)
	var (
		payments []store.Payment
		refunds  []store.Refund
	)
	err := s.write(ctx, func(t *txn) error {
		payments, refunds = nil, nil
		ps, err := s.dueCandidates(t, "payments", rules.KindPayment, now, limit)
		if err != nil {
			return err
		}
		rs, err := s.dueCandidates(t, "refunds", rules.KindRefund, now, limit)
		if err != nil {
			return err
		}
		all := append(ps, rs...)
		slices.SortStableFunc(all, func(a, b due) int { return a.at.Compare(b.at) })
		for _, d := range all[:min(len(all), limit)] {
			if d.kind == rules.KindPayment {
				p, err := scanPayment(t.queryRow(`UPDATE payments SET query_owner = ?, query_lease_until = ?
					WHERE id = ? RETURNING `+paymentCols, c.Owner, lease, d.id))
				if err != nil {
					return err
				}
				payments = append(payments, p)
				continue
			}
			r, err := scanRefund(t.queryRow(`UPDATE refunds SET query_owner = ?, query_lease_until = ?
				WHERE id = ? RETURNING `+refundCols, c.Owner, lease, d.id))
			if err != nil {
				return err
			}
			refunds = append(refunds, r)
		}
		return nil
	})
	if err != nil {
		return nil, nil, s.errorf("claim due queries for %q: %w", c.Owner, err)
	}
	return payments, refunds, nil
}

// ScheduleQuery sets the next reverse query of a payment or refund and
// releases its lease.
func (s *Store) ScheduleQuery(ctx context.Context, kind, id string, next time.Time, attempts int, lastError string) error {
	if err := rules.Kind(kind); err != nil {
		return s.errorf("schedule query: %w", err)
	}
	if attempts < 0 {
		return s.errorf("schedule query: %w: negative attempt count", store.ErrInvalid)
	}
	table := "payments"
	if kind == rules.KindRefund {
		table = "refunds"
	}
	err := s.write(ctx, func(t *txn) error {
		return found(t.execCount(`UPDATE `+table+` SET
				next_query_at = CASE WHEN status IN ('pending', 'processing') THEN CAST(? AS `+s.d.TimeType+`) END,
				query_attempts = ?, last_error = ?, query_owner = NULL, query_lease_until = NULL
			WHERE id = ?`, s.time(next), attempts, lastError, id))
	})
	if err != nil {
		return s.errorf("schedule query of %s %q: %w", kind, id, err)
	}
	return nil
}
