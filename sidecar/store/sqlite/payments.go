package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/internal/rules"
)

const paymentCols = `id, merchant_id, out_trade_no, flow, trade_type, amount_fen, description,
	req_date, req_seq_id, nkp_seq_id, party_order_id, out_trans_id, status, trans_stat,
	request_hash, pay_params, metadata, buyer, refunded_fen, expires_at, created_at,
	updated_at, finished_at, next_query_at, query_attempts, last_error, upstream_fields`

type scanner interface {
	Scan(dest ...any) error
}

func scanPayment(row scanner) (store.Payment, error) {
	var (
		p                                              store.Payment
		status                                         string
		payParams, metadata, buyer, upstream           sql.NullString
		expires, created, updated, finished, nextQuery sql.NullInt64
	)
	err := row.Scan(&p.ID, &p.MerchantID, &p.OutTradeNo, &p.Flow, &p.TradeType, &p.AmountFen, &p.Description,
		&p.ReqDate, &p.ReqSeqID, &p.NkpSeqID, &p.PartyOrderID, &p.OutTransID, &status, &p.TransStat,
		&p.RequestHash, &payParams, &metadata, &buyer, &p.RefundedFen, &expires, &created,
		&updated, &finished, &nextQuery, &p.QueryAttempts, &p.LastError, &upstream)
	if err != nil {
		return store.Payment{}, err
	}
	p.Status = store.Status(status)
	p.PayParams, p.Metadata, p.Buyer, p.UpstreamFields = goJSON(payParams), goJSON(metadata), goJSON(buyer), goJSON(upstream)
	p.ExpiresAt, p.CreatedAt, p.UpdatedAt = goTime(expires), goTime(created), goTime(updated)
	p.FinishedAt, p.NextQueryAt = goTime(finished), goTime(nextQuery)
	return p, nil
}

// getPayment reads one payment; where is the condition after WHERE.
func getPayment(ctx context.Context, q querier, where string, args ...any) (store.Payment, error) {
	p, err := scanPayment(q.QueryRowContext(ctx, `SELECT `+paymentCols+` FROM payments WHERE `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Payment{}, store.ErrNotFound
	}
	return p, err
}

// CreatePayment inserts p.
func (s *Store) CreatePayment(ctx context.Context, p *store.Payment) error {
	if err := rules.Payment(p); err != nil {
		return fmt.Errorf("sqlite: create payment: %w", err)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO payments (`+paymentCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.MerchantID, p.OutTradeNo, p.Flow, p.TradeType, p.AmountFen, p.Description,
			p.ReqDate, p.ReqSeqID, p.NkpSeqID, p.PartyOrderID, p.OutTransID, string(p.Status), p.TransStat,
			p.RequestHash, dbJSON(p.PayParams), dbJSON(p.Metadata), dbJSON(p.Buyer), p.RefundedFen,
			dbTime(p.ExpiresAt), dbTime(p.CreatedAt), dbTime(p.UpdatedAt), dbTime(p.FinishedAt),
			dbTime(p.NextQueryAt), p.QueryAttempts, p.LastError, dbJSON(p.UpstreamFields))
		return conflict(err, "payment")
	})
	if err != nil {
		return fmt.Errorf("sqlite: create payment %q: %w", p.ID, err)
	}
	return nil
}

// GetPayment returns the payment with the id.
func (s *Store) GetPayment(ctx context.Context, id string) (store.Payment, error) {
	p, err := getPayment(ctx, s.r, `id = ?`, id)
	if err != nil {
		return store.Payment{}, fmt.Errorf("sqlite: get payment %q: %w", id, err)
	}
	return p, nil
}

// GetPaymentByOutTradeNo returns the merchant's payment with the order
// number.
func (s *Store) GetPaymentByOutTradeNo(ctx context.Context, merchantID, outTradeNo string) (store.Payment, error) {
	p, err := getPayment(ctx, s.r, `merchant_id = ? AND out_trade_no = ?`, merchantID, outTradeNo)
	if err != nil {
		return store.Payment{}, fmt.Errorf("sqlite: get payment by out_trade_no %q: %w", outTradeNo, err)
	}
	return p, nil
}

// GetPaymentByReqSeqID returns the merchant's payment with the serial of
// the day.
func (s *Store) GetPaymentByReqSeqID(ctx context.Context, merchantID, reqDate, reqSeqID string) (store.Payment, error) {
	p, err := getPayment(ctx, s.r, `merchant_id = ? AND req_date = ? AND req_seq_id = ?`, merchantID, reqDate, reqSeqID)
	if err != nil {
		return store.Payment{}, fmt.Errorf("sqlite: get payment by req_seq_id %s/%s: %w", reqDate, reqSeqID, err)
	}
	return p, nil
}

// savePayment writes the mutable columns of p. clearLease releases the
// reverse-query lease.
func savePayment(ctx context.Context, tx *sql.Tx, p *store.Payment, clearLease bool) error {
	_, err := tx.ExecContext(ctx, `UPDATE payments SET status = ?, trans_stat = ?, nkp_seq_id = ?,
			party_order_id = ?, out_trans_id = ?, pay_params = ?, upstream_fields = ?, updated_at = ?,
			finished_at = ?, next_query_at = ?,
			query_owner = CASE WHEN ? THEN NULL ELSE query_owner END,
			query_lease_until = CASE WHEN ? THEN NULL ELSE query_lease_until END
		WHERE id = ?`,
		string(p.Status), p.TransStat, p.NkpSeqID, p.PartyOrderID, p.OutTransID, dbJSON(p.PayParams),
		dbJSON(p.UpstreamFields), dbTime(p.UpdatedAt), dbTime(p.FinishedAt), dbTime(p.NextQueryAt),
		clearLease, clearLease, p.ID)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	return nil
}

// transitionPayment is the body shared by TransitionPayment and
// UpdatePaymentAccepted. accept, when non-nil, changes p before t is
// applied and reports whether it changed anything.
func (s *Store) transitionPayment(ctx context.Context, id string, t store.Transition, allowNoMove bool,
	accept func(p *store.Payment) bool) (store.Payment, bool, error) {
	var (
		p       store.Payment
		applied bool
	)
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		p, err = getPayment(ctx, tx, `id = ?`, id)
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
		if err := savePayment(ctx, tx, &p, final); err != nil {
			return err
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
		return store.Payment{}, false, fmt.Errorf("sqlite: accept payment %q: %w", id, err)
	}
	p, applied, err := s.transitionPayment(ctx, id, t, true, func(p *store.Payment) bool {
		return rules.AcceptPayment(p, nkpSeqID, partyOrderID, payParams)
	})
	if err != nil {
		return store.Payment{}, false, fmt.Errorf("sqlite: accept payment %q: %w", id, err)
	}
	return p, applied, nil
}

// TransitionPayment applies t if it moves the payment forward.
func (s *Store) TransitionPayment(ctx context.Context, id string, t store.Transition) (store.Payment, bool, error) {
	p, applied, err := s.transitionPayment(ctx, id, t, false, nil)
	if err != nil {
		return store.Payment{}, false, fmt.Errorf("sqlite: transition payment %q to %s: %w", id, t.To, err)
	}
	return p, applied, nil
}

// RecordPaymentError stores the last error seen for a payment.
func (s *Store) RecordPaymentError(ctx context.Context, id, msg string, at time.Time) error {
	if at.IsZero() {
		at = rules.Now()
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE payments SET last_error = ?, updated_at = ? WHERE id = ?`,
			msg, dbTime(rules.Time(at)), id)
		if err != nil {
			return err
		}
		n, err := affected(res)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: record error of payment %q: %w", id, err)
	}
	return nil
}

// ReplaceOrder moves a payment that is not final onto a new upstream
// order.
func (s *Store) ReplaceOrder(ctx context.Context, id, fromDate, fromSeq, toDate, toSeq string,
	payParams json.RawMessage, at time.Time) (store.Payment, error) {
	if err := rules.ReplaceOrder(toDate, toSeq, payParams, &at); err != nil {
		return store.Payment{}, fmt.Errorf("sqlite: replace order of payment %q: %w", id, err)
	}
	var p store.Payment
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		p, err = getPayment(ctx, tx, `id = ?`, id)
		if err != nil {
			return err
		}
		if err := rules.CanReplaceOrder(p, fromDate, fromSeq); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE payments SET req_date = ?, req_seq_id = ?, nkp_seq_id = '',
				party_order_id = '', pay_params = ?, updated_at = ? WHERE id = ?`,
			toDate, toSeq, dbJSON(payParams), dbTime(at), id)
		if err != nil {
			return conflict(err, "payment")
		}
		p.ReqDate, p.ReqSeqID, p.NkpSeqID, p.PartyOrderID, p.PayParams, p.UpdatedAt = toDate, toSeq, "", "", payParams, at
		return nil
	})
	if err != nil {
		return store.Payment{}, fmt.Errorf("sqlite: replace order of payment %q: %w", id, err)
	}
	return p, nil
}
