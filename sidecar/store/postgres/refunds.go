package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/internal/rules"
)

const refundCols = `id, payment_id, merchant_id, out_refund_no, amount_fen, reason, req_date,
	req_seq_id, nkp_seq_id, status, trans_stat, request_hash, created_at, updated_at,
	finished_at, next_query_at, query_attempts, last_error, upstream_fields`

func scanRefund(row pgx.Row) (store.Refund, error) {
	var (
		r                                   store.Refund
		status                              string
		upstream                            []byte
		created, updated, finished, nextQry *time.Time
	)
	err := row.Scan(&r.ID, &r.PaymentID, &r.MerchantID, &r.OutRefundNo, &r.AmountFen, &r.Reason, &r.ReqDate,
		&r.ReqSeqID, &r.NkpSeqID, &status, &r.TransStat, &r.RequestHash, &created, &updated,
		&finished, &nextQry, &r.QueryAttempts, &r.LastError, &upstream)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Refund{}, store.ErrNotFound
	}
	if err != nil {
		return store.Refund{}, err
	}
	r.Status = store.Status(status)
	r.UpstreamFields = goJSON(upstream)
	r.CreatedAt, r.UpdatedAt, r.FinishedAt, r.NextQueryAt = goTime(created), goTime(updated), goTime(finished), goTime(nextQry)
	return r, nil
}

// CreateRefund inserts r.
func (s *Store) CreateRefund(ctx context.Context, r *store.Refund) error {
	if err := rules.Refund(r); err != nil {
		return fmt.Errorf("postgres: create refund: %w", err)
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM payments WHERE id = $1 FOR KEY SHARE`, r.PaymentID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("payment %q: %w", r.PaymentID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO refunds (`+refundCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
			r.ID, r.PaymentID, r.MerchantID, r.OutRefundNo, r.AmountFen, r.Reason, r.ReqDate,
			r.ReqSeqID, r.NkpSeqID, string(r.Status), r.TransStat, r.RequestHash, dbTime(r.CreatedAt),
			dbTime(r.UpdatedAt), dbTime(r.FinishedAt), dbTime(r.NextQueryAt), r.QueryAttempts,
			r.LastError, dbJSON(r.UpstreamFields))
		return conflict(err, "refund")
	})
	if err != nil {
		return fmt.Errorf("postgres: create refund %q: %w", r.ID, err)
	}
	return nil
}

func (s *Store) getRefund(ctx context.Context, what, where string, args ...any) (store.Refund, error) {
	r, err := scanRefund(s.pool.QueryRow(ctx, `SELECT `+refundCols+` FROM refunds WHERE `+where, args...))
	if err != nil {
		return store.Refund{}, fmt.Errorf("postgres: get refund %s: %w", what, err)
	}
	return r, nil
}

// GetRefund returns the refund with the id.
func (s *Store) GetRefund(ctx context.Context, id string) (store.Refund, error) {
	return s.getRefund(ctx, fmt.Sprintf("%q", id), `id = $1`, id)
}

// GetRefundByOutRefundNo returns the merchant's refund with the refund
// number.
func (s *Store) GetRefundByOutRefundNo(ctx context.Context, merchantID, outRefundNo string) (store.Refund, error) {
	return s.getRefund(ctx, fmt.Sprintf("by out_refund_no %q", outRefundNo),
		`merchant_id = $1 AND out_refund_no = $2`, merchantID, outRefundNo)
}

// GetRefundByReqSeqID returns the merchant's refund with the serial of the
// day.
func (s *Store) GetRefundByReqSeqID(ctx context.Context, merchantID, reqDate, reqSeqID string) (store.Refund, error) {
	return s.getRefund(ctx, fmt.Sprintf("by req_seq_id %s/%s", reqDate, reqSeqID),
		`merchant_id = $1 AND req_date = $2 AND req_seq_id = $3`, merchantID, reqDate, reqSeqID)
}

// ListRefunds lists the refunds of a payment, oldest first.
func (s *Store) ListRefunds(ctx context.Context, paymentID string) ([]store.Refund, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+refundCols+` FROM refunds WHERE payment_id = $1
		ORDER BY created_at, id`, paymentID)
	if err != nil {
		return nil, fmt.Errorf("postgres: list refunds of %q: %w", paymentID, err)
	}
	defer rows.Close()
	var out []store.Refund
	for rows.Next() {
		r, err := scanRefund(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list refunds of %q: %w", paymentID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list refunds of %q: %w", paymentID, err)
	}
	return out, nil
}

// TransitionRefund applies t if it moves the refund forward; a success adds
// the amount to the payment in the same transaction.
func (s *Store) TransitionRefund(ctx context.Context, id string, t store.Transition) (store.Refund, bool, error) {
	var (
		r       store.Refund
		applied bool
	)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		r, err = scanRefund(tx.QueryRow(ctx, `SELECT `+refundCols+` FROM refunds WHERE id = $1
			FOR NO KEY UPDATE`, id))
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
		_, err = tx.Exec(ctx, `UPDATE refunds SET status = $1, trans_stat = $2, nkp_seq_id = $3,
				upstream_fields = $4, updated_at = $5, finished_at = $6, next_query_at = $7,
				query_owner = CASE WHEN $8 THEN NULL ELSE query_owner END,
				query_lease_until = CASE WHEN $8 THEN NULL ELSE query_lease_until END
			WHERE id = $9`,
			string(r.Status), r.TransStat, r.NkpSeqID, dbJSON(r.UpstreamFields), dbTime(r.UpdatedAt),
			dbTime(r.FinishedAt), dbTime(r.NextQueryAt), final, r.ID)
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		if t.To == store.StatusSucceeded {
			_, err = tx.Exec(ctx, `UPDATE payments SET refunded_fen = refunded_fen + $1, updated_at = $2
				WHERE id = $3`, r.AmountFen, t.At, r.PaymentID)
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
		return store.Refund{}, false, fmt.Errorf("postgres: transition refund %q to %s: %w", id, t.To, err)
	}
	return r, applied, nil
}
