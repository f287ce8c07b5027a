package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/internal/rules"
)

const refundCols = `id, payment_id, merchant_id, out_refund_no, amount_fen, reason, req_date,
	req_seq_id, nkp_seq_id, status, trans_stat, request_hash, created_at, updated_at,
	finished_at, next_query_at, query_attempts, last_error, upstream_fields`

func scanRefund(row scanner) (store.Refund, error) {
	var (
		r                                   store.Refund
		status                              string
		upstream                            sql.NullString
		created, updated, finished, nextQry sql.NullInt64
	)
	err := row.Scan(&r.ID, &r.PaymentID, &r.MerchantID, &r.OutRefundNo, &r.AmountFen, &r.Reason, &r.ReqDate,
		&r.ReqSeqID, &r.NkpSeqID, &status, &r.TransStat, &r.RequestHash, &created, &updated,
		&finished, &nextQry, &r.QueryAttempts, &r.LastError, &upstream)
	if err != nil {
		return store.Refund{}, err
	}
	r.Status = store.Status(status)
	r.UpstreamFields = goJSON(upstream)
	r.CreatedAt, r.UpdatedAt, r.FinishedAt, r.NextQueryAt = goTime(created), goTime(updated), goTime(finished), goTime(nextQry)
	return r, nil
}

func getRefund(ctx context.Context, q querier, where string, args ...any) (store.Refund, error) {
	r, err := scanRefund(q.QueryRowContext(ctx, `SELECT `+refundCols+` FROM refunds WHERE `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Refund{}, store.ErrNotFound
	}
	return r, err
}

// CreateRefund inserts r.
func (s *Store) CreateRefund(ctx context.Context, r *store.Refund) error {
	if err := rules.Refund(r); err != nil {
		return fmt.Errorf("sqlite: create refund: %w", err)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM payments WHERE id = ?`, r.PaymentID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("payment %q: %w", r.PaymentID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO refunds (`+refundCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.PaymentID, r.MerchantID, r.OutRefundNo, r.AmountFen, r.Reason, r.ReqDate,
			r.ReqSeqID, r.NkpSeqID, string(r.Status), r.TransStat, r.RequestHash, dbTime(r.CreatedAt),
			dbTime(r.UpdatedAt), dbTime(r.FinishedAt), dbTime(r.NextQueryAt), r.QueryAttempts,
			r.LastError, dbJSON(r.UpstreamFields))
		return conflict(err, "refund")
	})
	if err != nil {
		return fmt.Errorf("sqlite: create refund %q: %w", r.ID, err)
	}
	return nil
}

// GetRefund returns the refund with the id.
func (s *Store) GetRefund(ctx context.Context, id string) (store.Refund, error) {
	r, err := getRefund(ctx, s.r, `id = ?`, id)
	if err != nil {
		return store.Refund{}, fmt.Errorf("sqlite: get refund %q: %w", id, err)
	}
	return r, nil
}

// GetRefundByOutRefundNo returns the merchant's refund with the refund
// number.
func (s *Store) GetRefundByOutRefundNo(ctx context.Context, merchantID, outRefundNo string) (store.Refund, error) {
	r, err := getRefund(ctx, s.r, `merchant_id = ? AND out_refund_no = ?`, merchantID, outRefundNo)
	if err != nil {
		return store.Refund{}, fmt.Errorf("sqlite: get refund by out_refund_no %q: %w", outRefundNo, err)
	}
	return r, nil
}

// GetRefundByReqSeqID returns the merchant's refund with the serial of the
// day.
func (s *Store) GetRefundByReqSeqID(ctx context.Context, merchantID, reqDate, reqSeqID string) (store.Refund, error) {
	r, err := getRefund(ctx, s.r, `merchant_id = ? AND req_date = ? AND req_seq_id = ?`, merchantID, reqDate, reqSeqID)
	if err != nil {
		return store.Refund{}, fmt.Errorf("sqlite: get refund by req_seq_id %s/%s: %w", reqDate, reqSeqID, err)
	}
	return r, nil
}

// ListRefunds lists the refunds of a payment, oldest first.
func (s *Store) ListRefunds(ctx context.Context, paymentID string) ([]store.Refund, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+refundCols+` FROM refunds WHERE payment_id = ?
		ORDER BY created_at, id`, paymentID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list refunds of %q: %w", paymentID, err)
	}
	defer rows.Close()
	var out []store.Refund
	for rows.Next() {
		r, err := scanRefund(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list refunds of %q: %w", paymentID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list refunds of %q: %w", paymentID, err)
	}
	return out, nil
}

// TransitionRefund applies t if it moves the refund forward.
func (s *Store) TransitionRefund(ctx context.Context, id string, t store.Transition) (store.Refund, bool, error) {
	var (
		r       store.Refund
		applied bool
	)
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = getRefund(ctx, tx, `id = ?`, id)
		if err != nil {
			return err
		}
		if err := rules.Transition(&t, false, r.ID, r.PaymentID); err != nil {
			return err
		}
		var final bool
		applied, final = rules.ApplyRefund(&r, t)
		if !applied {
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE refunds SET status = ?, trans_stat = ?, nkp_seq_id = ?,
				upstream_fields = ?, updated_at = ?, finished_at = ?, next_query_at = ?,
				query_owner = CASE WHEN ? THEN NULL ELSE query_owner END,
				query_lease_until = CASE WHEN ? THEN NULL ELSE query_lease_until END
			WHERE id = ?`,
			string(r.Status), r.TransStat, r.NkpSeqID, dbJSON(r.UpstreamFields), dbTime(r.UpdatedAt),
			dbTime(r.FinishedAt), dbTime(r.NextQueryAt), final, final, r.ID)
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		if t.To == store.StatusSucceeded {
			_, err = tx.ExecContext(ctx, `UPDATE payments SET refunded_fen = refunded_fen + ?, updated_at = ?
				WHERE id = ?`, r.AmountFen, dbTime(t.At), r.PaymentID)
			if err != nil {
				return fmt.Errorf("add refunded amount to payment %q: %w", r.PaymentID, err)
			}
		}
		if t.Event != nil {
			if _, err := insertEvent(ctx, tx, t.Event); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return store.Refund{}, false, fmt.Errorf("sqlite: transition refund %q to %s: %w", id, t.To, err)
	}
	return r, applied, nil
}
