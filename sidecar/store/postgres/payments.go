package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/internal/rules"
)

const paymentCols = `id, merchant_id, out_trade_no, flow, trade_type, amount_fen, description,
	req_date, req_seq_id, nkp_seq_id, party_order_id, out_trans_id, status, trans_stat,
	request_hash, pay_params, metadata, buyer, refunded_fen, expires_at, created_at,
	updated_at, finished_at, next_query_at, query_attempts, last_error, upstream_fields`

func scanPayment(row pgx.Row) (store.Payment, error) {
	var (
		p                                              store.Payment
		status                                         string
		payParams, metadata, buyer, upstream           []byte
		expires, created, updated, finished, nextQuery *time.Time
	)
	err := row.Scan(&p.ID, &p.MerchantID, &p.OutTradeNo, &p.Flow, &p.TradeType, &p.AmountFen, &p.Description,
		&p.ReqDate, &p.ReqSeqID, &p.NkpSeqID, &p.PartyOrderID, &p.OutTransID, &status, &p.TransStat,
		&p.RequestHash, &payParams, &metadata, &buyer, &p.RefundedFen, &expires, &created,
		&updated, &finished, &nextQuery, &p.QueryAttempts, &p.LastError, &upstream)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Payment{}, store.ErrNotFound
	}
	if err != nil {
		return store.Payment{}, err
	}
	p.Status = store.Status(status)
	p.PayParams, p.Metadata, p.Buyer, p.UpstreamFields = goJSON(payParams), goJSON(metadata), goJSON(buyer), goJSON(upstream)
	p.ExpiresAt, p.CreatedAt, p.UpdatedAt = goTime(expires), goTime(created), goTime(updated)
	p.FinishedAt, p.NextQueryAt = goTime(finished), goTime(nextQuery)
	return p, nil
}

// CreatePayment inserts p.
func (s *Store) CreatePayment(ctx context.Context, p *store.Payment) error {
	if err := rules.Payment(p); err != nil {
		return fmt.Errorf("postgres: create payment: %w", err)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO payments (`+paymentCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
			$20, $21, $22, $23, $24, $25, $26, $27)`,
		p.ID, p.MerchantID, p.OutTradeNo, p.Flow, p.TradeType, p.AmountFen, p.Description,
		p.ReqDate, p.ReqSeqID, p.NkpSeqID, p.PartyOrderID, p.OutTransID, string(p.Status), p.TransStat,
		p.RequestHash, dbJSON(p.PayParams), dbJSON(p.Metadata), dbJSON(p.Buyer), p.RefundedFen,
		dbTime(p.ExpiresAt), dbTime(p.CreatedAt), dbTime(p.UpdatedAt), dbTime(p.FinishedAt),
		dbTime(p.NextQueryAt), p.QueryAttempts, p.LastError, dbJSON(p.UpstreamFields))
	if err != nil {
		return fmt.Errorf("postgres: create payment %q: %w", p.ID, conflict(err, "payment"))
	}
	return nil
}

func (s *Store) getPayment(ctx context.Context, what, where string, args ...any) (store.Payment, error) {
	p, err := scanPayment(s.pool.QueryRow(ctx, `SELECT `+paymentCols+` FROM payments WHERE `+where, args...))
	if err != nil {
		return store.Payment{}, fmt.Errorf("postgres: get payment %s: %w", what, err)
	}
	return p, nil
}

// GetPayment returns the payment with the id.
func (s *Store) GetPayment(ctx context.Context, id string) (store.Payment, error) {
	return s.getPayment(ctx, fmt.Sprintf("%q", id), `id = $1`, id)
}

// GetPaymentByOutTradeNo returns the merchant's payment with the order
// number.
func (s *Store) GetPaymentByOutTradeNo(ctx context.Context, merchantID, outTradeNo string) (store.Payment, error) {
	return s.getPayment(ctx, fmt.Sprintf("by out_trade_no %q", outTradeNo),
		`merchant_id = $1 AND out_trade_no = $2`, merchantID, outTradeNo)
}

// GetPaymentByReqSeqID returns the merchant's payment with the serial of
// the day.
func (s *Store) GetPaymentByReqSeqID(ctx context.Context, merchantID, reqDate, reqSeqID string) (store.Payment, error) {
	return s.getPayment(ctx, fmt.Sprintf("by req_seq_id %s/%s", reqDate, reqSeqID),
		`merchant_id = $1 AND req_date = $2 AND req_seq_id = $3`, merchantID, reqDate, reqSeqID)
}

// transitionPayment is the body shared by TransitionPayment and
// UpdatePaymentAccepted; it locks the payment row for the transaction.
func (s *Store) transitionPayment(ctx context.Context, id string, t store.Transition, allowNoMove bool,
	accept func(p *store.Payment) bool) (store.Payment, bool, error) {
	var (
		p       store.Payment
		applied bool
	)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		p, err = scanPayment(tx.QueryRow(ctx, `SELECT `+paymentCols+` FROM payments WHERE id = $1
			FOR NO KEY UPDATE`, id))
		if err != nil {
			return err
		}
		if err := rules.Transition(&t, allowNoMove, p.ID, p.ID); err != nil {
			return err
		}
		changed := false
		if accept != nil {
			changed = accept(&p)
		}
		var final bool
		applied, final = rules.ApplyPayment(&p, t)
		if !applied && !changed {
			return nil
		}
		if !applied {
			p.UpdatedAt = t.At
		}
		_, err = tx.Exec(ctx, `UPDATE payments SET status = $1, trans_stat = $2, nkp_seq_id = $3,
				party_order_id = $4, out_trans_id = $5, pay_params = $6, upstream_fields = $7,
				updated_at = $8, finished_at = $9, next_query_at = $10,
				query_owner = CASE WHEN $11 THEN NULL ELSE query_owner END,
				query_lease_until = CASE WHEN $11 THEN NULL ELSE query_lease_until END
			WHERE id = $12`,
			string(p.Status), p.TransStat, p.NkpSeqID, p.PartyOrderID, p.OutTransID, dbJSON(p.PayParams),
			dbJSON(p.UpstreamFields), dbTime(p.UpdatedAt), dbTime(p.FinishedAt), dbTime(p.NextQueryAt),
			final, p.ID)
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		if applied && t.Event != nil {
			if _, err := insertEvent(ctx, tx, t.Event); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return store.Payment{}, false, err
	}
	return p, applied, nil
}

// UpdatePaymentAccepted records the upstream's acceptance of an order.
func (s *Store) UpdatePaymentAccepted(ctx context.Context, id string, nkpSeqID, partyOrderID string,
	payParams json.RawMessage, t store.Transition) (store.Payment, bool, error) {
	if err := rules.JSON("pay_params", payParams); err != nil {
		return store.Payment{}, false, fmt.Errorf("postgres: accept payment %q: %w", id, err)
	}
	p, applied, err := s.transitionPayment(ctx, id, t, true, func(p *store.Payment) bool {
		return rules.AcceptPayment(p, nkpSeqID, partyOrderID, payParams)
	})
	if err != nil {
		return store.Payment{}, false, fmt.Errorf("postgres: accept payment %q: %w", id, err)
	}
	return p, applied, nil
}

// TransitionPayment applies t if it moves the payment forward.
func (s *Store) TransitionPayment(ctx context.Context, id string, t store.Transition) (store.Payment, bool, error) {
	p, applied, err := s.transitionPayment(ctx, id, t, false, nil)
	if err != nil {
		return store.Payment{}, false, fmt.Errorf("postgres: transition payment %q to %s: %w", id, t.To, err)
	}
	return p, applied, nil
}

// RecordPaymentError stores the last error seen for a payment.
func (s *Store) RecordPaymentError(ctx context.Context, id, msg string, at time.Time) error {
	if at.IsZero() {
		at = rules.Now()
	}
	tag, err := s.pool.Exec(ctx, `UPDATE payments SET last_error = $1, updated_at = $2 WHERE id = $3`,
		msg, rules.Time(at), id)
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: record error of payment %q: %w", id, err)
	}
	return nil
}

// ReplaceOrder moves a payment that is not final onto a new upstream
// order.
func (s *Store) ReplaceOrder(ctx context.Context, id, fromDate, fromSeq, toDate, toSeq string,
	payParams json.RawMessage, at time.Time) (store.Payment, error) {
	if err := rules.ReplaceOrder(toDate, toSeq, payParams, &at); err != nil {
		return store.Payment{}, fmt.Errorf("postgres: replace order of payment %q: %w", id, err)
	}
	var p store.Payment
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		p, err = scanPayment(tx.QueryRow(ctx, `SELECT `+paymentCols+` FROM payments WHERE id = $1
			FOR NO KEY UPDATE`, id))
		if err != nil {
			return err
		}
		if err := rules.CanReplaceOrder(p, fromDate, fromSeq); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE payments SET req_date = $1, req_seq_id = $2, nkp_seq_id = '',
				party_order_id = '', pay_params = $3, updated_at = $4 WHERE id = $5`,
			toDate, toSeq, dbJSON(payParams), dbTime(at), id)
		if err != nil {
			return conflict(err, "payment")
		}
		p.ReqDate, p.ReqSeqID, p.NkpSeqID, p.PartyOrderID, p.PayParams, p.UpdatedAt = toDate, toSeq, "", "", payParams, at
		return nil
	})
	if err != nil {
		return store.Payment{}, fmt.Errorf("postgres: replace order of payment %q: %w", id, err)
	}
	return p, nil
}
