package sqlstore

import (
	"context"
	"fmt"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/internal/rules"
)

const refundCols = `id, payment_id, merchant_id, out_refund_no, amount_fen, reason, req_date,
	req_seq_id, nkp_seq_id, status, trans_stat, request_hash, created_at, updated_at,
	finished_at, next_query_at, query_attempts, last_error, upstream_fields`

const (
	refundByID          = `SELECT ` + refundCols + ` FROM refunds WHERE id = ?`
	refundByOutRefundNo = `SELECT ` + refundCols + ` FROM refunds WHERE merchant_id = ? AND out_refund_no = ?`
	refundByReqSeqID    = `SELECT ` + refundCols + ` FROM refunds WHERE merchant_id = ? AND req_date = ? AND req_seq_id = ?`
)

func scanRefund(row scanner) (store.Refund, error) {
	var r store.Refund
	err := row.Scan(&r.ID, &r.PaymentID, &r.MerchantID, &r.OutRefundNo, &r.AmountFen, &r.Reason, &r.ReqDate,
		&r.ReqSeqID, &r.NkpSeqID, &r.Status, &r.TransStat, &r.RequestHash, tm(&r.CreatedAt), tm(&r.UpdatedAt),
		tm(&r.FinishedAt), tm(&r.NextQueryAt), &r.QueryAttempts, &r.LastError, js(&r.UpstreamFields))
	if err != nil {
		return store.Refund{}, notFound(err)
	}
	return r, nil
}

// CreateRefund inserts r. The foreign key on the payment tells an unknown
// payment.
func (s *Store) CreateRefund(ctx context.Context, r *store.Refund) error {
	if err := rules.Refund(r); err != nil {
		return s.errorf("create refund: %w", err)
	}
	err := s.write(ctx, func(t *txn) error {
		_, err := t.exec(`INSERT INTO refunds (`+refundCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.PaymentID, r.MerchantID, r.OutRefundNo, r.AmountFen, r.Reason, r.ReqDate,
			r.ReqSeqID, r.NkpSeqID, string(r.Status), r.TransStat, r.RequestHash, s.time(r.CreatedAt),
			s.time(r.UpdatedAt), s.time(r.FinishedAt), s.time(r.NextQueryAt), r.QueryAttempts,
			r.LastError, dbJSON(r.UpstreamFields))
		if err != nil && s.d.ForeignKey(err) {
			return fmt.Errorf("payment %q: %w", r.PaymentID, store.ErrNotFound)
		}
		return s.conflict(err, "refund")
	})
	if err != nil {
		return s.errorf("create refund %q: %w", r.ID, err)
	}
	return nil
}

// GetRefund returns the refund with the id.
func (s *Store) GetRefund(ctx context.Context, id string) (store.Refund, error) {
	return get(s, ctx, scanRefund, fmt.Sprintf("get refund %q", id), refundByID, id)
}

// GetRefundByOutRefundNo returns the merchant's refund with the refund
// number.
func (s *Store) GetRefundByOutRefundNo(ctx context.Context, merchantID, outRefundNo string) (store.Refund, error) {
	return get(s, ctx, scanRefund, fmt.Sprintf("get refund by out_refund_no %q", outRefundNo),
		refundByOutRefundNo, merchantID, outRefundNo)
}

// GetRefundByReqSeqID returns the merchant's refund with the serial of the
// day.
func (s *Store) GetRefundByReqSeqID(ctx context.Context, merchantID, reqDate, reqSeqID string) (store.Refund, error) {
	return get(s, ctx, scanRefund, fmt.Sprintf("get refund by req_seq_id %s/%s", reqDate, reqSeqID),
		refundByReqSeqID, merchantID, reqDate, reqSeqID)
}

// ListRefunds lists the refunds of a payment, oldest first.
func (s *Store) ListRefunds(ctx context.Context, paymentID string) ([]store.Refund, error) {
	rows, err := s.reader(ctx).query(`SELECT `+refundCols+` FROM refunds WHERE payment_id = ?
		ORDER BY created_at, id`, paymentID)
	if err != nil {
		return nil, s.errorf("list refunds of %q: %w", paymentID, err)
	}
	out, err := scanAll(rows, scanRefund)
	if err != nil {
		return nil, s.errorf("list refunds of %q: %w", paymentID, err)
	}
	return out, nil
}

// transitionRefund reads the refund once, locked for the transaction,
// applies t and writes the refund, the payment's refunded total on success
// and the event.
func (s *Store) transitionRefund(t *txn, id string, tr store.Transition) (store.Refund, bool, error) {
	r, err := scanRefund(t.queryRow(refundByID+s.d.LockRow, id))
	if err != nil {
		return store.Refund{}, false, err
	}
	if err := rules.Transition(&tr, false, r.ID, r.PaymentID); err != nil {
		return store.Refund{}, false, err
	}
	applied, final := rules.ApplyRefund(&r, tr)
	if !applied {
		return r, false, nil
	}
	_, err = t.exec(`UPDATE refunds SET status = ?, trans_stat = ?, nkp_seq_id = ?,
			upstream_fields = ?, updated_at = ?, finished_at = ?, next_query_at = ?,
			query_owner = CASE WHEN ? THEN NULL ELSE query_owner END,
			query_lease_until = CASE WHEN ? THEN NULL ELSE query_lease_until END
		WHERE id = ?`,
		string(r.Status), r.TransStat, r.NkpSeqID, dbJSON(r.UpstreamFields), s.time(r.UpdatedAt),
		s.time(r.FinishedAt), s.time(r.NextQueryAt), final, final, r.ID)
	if err != nil {
		return store.Refund{}, false, fmt.Errorf("update: %w", err)
	}
	if tr.To == store.StatusSucceeded {
		_, err = t.exec(`UPDATE payments SET refunded_fen = refunded_fen + ?, updated_at = ? WHERE id = ?`,
			r.AmountFen, s.time(tr.At), r.PaymentID)
		if err != nil {
			return store.Refund{}, false, fmt.Errorf("add refunded amount to payment %q: %w", r.PaymentID, err)
		}
	}
	if tr.Event != nil {
		if _, err := s.insertEvent(t, tr.Event); err != nil {
			return store.Refund{}, false, err
		}
	}
	return r, true, nil
}

// TransitionRefund applies t if it moves the refund forward; a success adds
// the amount to the payment in the same transaction.
func (s *Store) TransitionRefund(ctx context.Context, id string, tr store.Transition) (store.Refund, bool, error) {
	var (
		r       store.Refund
		applied bool
	)
	err := s.write(ctx, func(t *txn) (err error) {
		r, applied, err = s.transitionRefund(t, id, tr)
		return err
	})
	if err != nil {
		return store.Refund{}, false, s.errorf("transition refund %q to %s: %w", id, tr.To, err)
	}
	return r, applied, nil
}
