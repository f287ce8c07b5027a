package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/internal/rules"
)

const paymentCols = `id, merchant_id, out_trade_no, flow, trade_type, amount_fen, description,
	req_date, req_seq_id, nkp_seq_id, party_order_id, out_trans_id, status, trans_stat,
	request_hash, pay_params, metadata, buyer, refunded_fen, expires_at, created_at,
	updated_at, finished_at, next_query_at, query_attempts, last_error, upstream_fields`

const (
	paymentByID         = `SELECT ` + paymentCols + ` FROM payments WHERE id = ?`
	paymentByOutTradeNo = `SELECT ` + paymentCols + ` FROM payments WHERE merchant_id = ? AND out_trade_no = ?`
	paymentByReqSeqID   = `SELECT ` + paymentCols + ` FROM payments WHERE merchant_id = ? AND req_date = ? AND req_seq_id = ?`
	// The global serial and the channel's order id name one order; the
	// oldest payment wins should two rows ever carry the same.
	paymentByNkpSeqID     = `SELECT ` + paymentCols + ` FROM payments WHERE merchant_id = ? AND nkp_seq_id = ? AND nkp_seq_id <> '' ORDER BY created_at, id LIMIT 1`
	paymentByPartyOrderID = `SELECT ` + paymentCols + ` FROM payments WHERE merchant_id = ? AND party_order_id = ? AND party_order_id <> '' ORDER BY created_at, id LIMIT 1`
)

// paymentDest returns the scan destinations of paymentCols into p.
func paymentDest(p *store.Payment) []any {
	return []any{&p.ID, &p.MerchantID, &p.OutTradeNo, &p.Flow, &p.TradeType, &p.AmountFen, &p.Description,
		&p.ReqDate, &p.ReqSeqID, &p.NkpSeqID, &p.PartyOrderID, &p.OutTransID, &p.Status, &p.TransStat,
		&p.RequestHash, js(&p.PayParams), js(&p.Metadata), js(&p.Buyer), &p.RefundedFen, tm(&p.ExpiresAt),
		tm(&p.CreatedAt), tm(&p.UpdatedAt), tm(&p.FinishedAt), tm(&p.NextQueryAt), &p.QueryAttempts,
		&p.LastError, js(&p.UpstreamFields)}
}

func scanPayment(row scanner) (store.Payment, error) {
	var p store.Payment
	err := row.Scan(paymentDest(&p)...)
	if err != nil {
		return store.Payment{}, notFound(err)
	}
	return p, nil
}

// CreatePayment inserts p.
func (s *Store) CreatePayment(ctx context.Context, p *store.Payment) error {
	if err := rules.Payment(p); err != nil {
		return s.errorf("create payment: %w", err)
	}
	err := s.write(ctx, func(t *txn) error {
		_, err := t.exec(`INSERT INTO payments (`+paymentCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.MerchantID, p.OutTradeNo, p.Flow, p.TradeType, p.AmountFen, p.Description,
			p.ReqDate, p.ReqSeqID, p.NkpSeqID, p.PartyOrderID, p.OutTransID, string(p.Status), p.TransStat,
			p.RequestHash, dbJSON(p.PayParams), dbJSON(p.Metadata), dbJSON(p.Buyer), p.RefundedFen,
			s.time(p.ExpiresAt), s.time(p.CreatedAt), s.time(p.UpdatedAt), s.time(p.FinishedAt),
			s.time(p.NextQueryAt), p.QueryAttempts, p.LastError, dbJSON(p.UpstreamFields))
		return s.conflict(err, "payment")
	})
	if err != nil {
		return s.errorf("create payment %q: %w", p.ID, err)
	}
	return nil
}

// GetPayment returns the payment with the id.
func (s *Store) GetPayment(ctx context.Context, id string) (store.Payment, error) {
	return get(s, ctx, scanPayment, fmt.Sprintf("get payment %q", id), paymentByID, id)
}

// GetPaymentByOutTradeNo returns the merchant's payment with the order
// number.
func (s *Store) GetPaymentByOutTradeNo(ctx context.Context, merchantID, outTradeNo string) (store.Payment, error) {
	return get(s, ctx, scanPayment, fmt.Sprintf("get payment by out_trade_no %q", outTradeNo),
		paymentByOutTradeNo, merchantID, outTradeNo)
}

// GetPaymentByReqSeqID returns the merchant's payment with the serial of
// the day.
func (s *Store) GetPaymentByReqSeqID(ctx context.Context, merchantID, reqDate, reqSeqID string) (store.Payment, error) {
	return get(s, ctx, scanPayment, fmt.Sprintf("get payment by req_seq_id %s/%s", reqDate, reqSeqID),
		paymentByReqSeqID, merchantID, reqDate, reqSeqID)
}

// GetPaymentByNkpSeqID returns the merchant's payment with the upstream's
// global serial.
func (s *Store) GetPaymentByNkpSeqID(ctx context.Context, merchantID, nkpSeqID string) (store.Payment, error) {
	return get(s, ctx, scanPayment, fmt.Sprintf("get payment by nkp_seq_id %q", nkpSeqID),
		paymentByNkpSeqID, merchantID, nkpSeqID)
}

// GetPaymentByPartyOrderID returns the merchant's payment with the
// channel's order id.
func (s *Store) GetPaymentByPartyOrderID(ctx context.Context, merchantID, partyOrderID string) (store.Payment, error) {
	return get(s, ctx, scanPayment, fmt.Sprintf("get payment by party_order_id %q", partyOrderID),
		paymentByPartyOrderID, merchantID, partyOrderID)
}

// notified is a notification that the read of its payment records in the
// same statement (Dialect.WritableCTE), and where to report whether it was
// new.
type notified struct {
	n     store.Notification
	isNew *bool
}

// transitionPayment reads the payment once, locked for the transaction,
// applies t (after accept, when not nil, has recorded what it records) and
// writes the payment and the event. It returns the payment after the call
// and whether t was applied. With rec (only on an engine with
// Dialect.WritableCTE), the read records rec's notification first; with
// that dialect the payment's update and the event's insert are one
// statement too.
func (s *Store) transitionPayment(t *txn, id string, tr store.Transition, allowNoMove bool,
	accept func(p *store.Payment) bool, rec *notified) (store.Payment, bool, error) {
	var (
		p   store.Payment
		err error
	)
	if rec != nil {
		p, *rec.isNew, err = s.recordAndReadPayment(t, rec.n, id)
	} else {
		p, err = scanPayment(t.queryRow(paymentByID+s.d.LockRow, id))
	}
	if err != nil {
		return store.Payment{}, false, err
	}
	if err := rules.Transition(&tr, allowNoMove, p.ID, p.ID); err != nil {
		return store.Payment{}, false, err
	}
	changed := accept != nil && accept(&p)
	applied, final := rules.ApplyPayment(&p, tr)
	if !applied && !changed {
		return p, false, nil
	}
	if !applied {
		p.UpdatedAt = tr.At
	}
	update := `UPDATE payments SET status = ?, trans_stat = ?, nkp_seq_id = ?,
			party_order_id = ?, out_trans_id = ?, pay_params = ?, upstream_fields = ?, updated_at = ?,
			finished_at = ?, next_query_at = ?,
			query_owner = CASE WHEN ? THEN NULL ELSE query_owner END,
			query_lease_until = CASE WHEN ? THEN NULL ELSE query_lease_until END
		WHERE id = ?`
	args := []any{string(p.Status), p.TransStat, p.NkpSeqID, p.PartyOrderID, p.OutTransID, dbJSON(p.PayParams),
		dbJSON(p.UpstreamFields), s.time(p.UpdatedAt), s.time(p.FinishedAt), s.time(p.NextQueryAt),
		final, final, p.ID}
	if applied && tr.Event != nil && s.d.WritableCTE {
		// One statement: the update runs as a data-modifying WITH
		// whatever the insert does.
		if _, err := s.insertEventAfter(t, `WITH payment_update AS (`+update+` RETURNING 1) `, args, tr.Event); err != nil {
			return store.Payment{}, false, err
		}
		return p, applied, nil
	}
	if _, err = t.exec(update, args...); err != nil {
		return store.Payment{}, false, fmt.Errorf("update: %w", err)
	}
	if applied && tr.Event != nil {
		if _, err := s.insertEvent(t, tr.Event); err != nil {
			return store.Payment{}, false, err
		}
	}
	return p, applied, nil
}

// recordAndReadPayment records n unless its id exists and reads payment id
// locked for the transaction, in one statement (Dialect.WritableCTE); it
// reports whether n was new. The insert runs whether or not the payment
// exists; when it does not, the write fails with ErrNotFound and rolls the
// insert back.
func (s *Store) recordAndReadPayment(t *txn, n store.Notification, id string) (store.Payment, bool, error) {
	insert, args := s.notificationInsert(n)
	row := t.queryRow(`WITH notification_insert AS (`+insert+` RETURNING 1)
		SELECT `+paymentCols+`, (SELECT count(*) FROM notification_insert)
		FROM payments WHERE id = ?`+s.d.LockRow, append(args, id)...)
	var (
		p   store.Payment
		ins int64
	)
	err := row.Scan(append(paymentDest(&p), &ins)...)
	if err != nil {
		return store.Payment{}, false, notFound(err)
	}
	return p, ins == 1, nil
}

// UpdatePaymentAccepted records the upstream's acceptance of an order.
func (s *Store) UpdatePaymentAccepted(ctx context.Context, id string, nkpSeqID, partyOrderID string,
	payParams json.RawMessage, tr store.Transition) (store.Payment, bool, error) {
	if err := rules.JSON("pay_params", payParams); err != nil {
		return store.Payment{}, false, s.errorf("accept payment %q: %w", id, err)
	}
	var (
		p       store.Payment
		applied bool
	)
	err := s.write(ctx, func(t *txn) (err error) {
		p, applied, err = s.transitionPayment(t, id, tr, true, func(p *store.Payment) bool {
			return rules.AcceptPayment(p, nkpSeqID, partyOrderID, payParams)
		}, nil)
		return err
	})
	if err != nil {
		return store.Payment{}, false, s.errorf("accept payment %q: %w", id, err)
	}
	return p, applied, nil
}

// TransitionPayment applies t if it moves the payment forward.
func (s *Store) TransitionPayment(ctx context.Context, id string, tr store.Transition) (store.Payment, bool, error) {
	var (
		p       store.Payment
		applied bool
	)
	err := s.write(ctx, func(t *txn) (err error) {
		p, applied, err = s.transitionPayment(t, id, tr, false, nil, nil)
		return err
	})
	if err != nil {
		return store.Payment{}, false, s.errorf("transition payment %q to %s: %w", id, tr.To, err)
	}
	return p, applied, nil
}

// RecordPaymentError stores the last error seen for a payment.
func (s *Store) RecordPaymentError(ctx context.Context, id, msg string, at time.Time) error {
	if at.IsZero() {
		at = rules.Now()
	}
	err := s.write(ctx, func(t *txn) error {
		return found(t.execCount(`UPDATE payments SET last_error = ?, updated_at = ? WHERE id = ?`, msg, s.time(at), id))
	})
	if err != nil {
		return s.errorf("record error of payment %q: %w", id, err)
	}
	return nil
}

// ReplaceOrder moves a payment that is not final onto a new upstream
// order.
func (s *Store) ReplaceOrder(ctx context.Context, id, fromDate, fromSeq, toDate, toSeq string,
	payParams json.RawMessage, at time.Time) (store.Payment, error) {
	if err := rules.ReplaceOrder(toDate, toSeq, payParams, &at); err != nil {
		return store.Payment{}, s.errorf("replace order of payment %q: %w", id, err)
	}
	var p store.Payment
	err := s.write(ctx, func(t *txn) error {
		var err error
		p, err = scanPayment(t.queryRow(paymentByID+s.d.LockRow, id))
		if err != nil {
			return err
		}
		if err := rules.CanReplaceOrder(p, fromDate, fromSeq); err != nil {
			return err
		}
		_, err = t.exec(`UPDATE payments SET req_date = ?, req_seq_id = ?, nkp_seq_id = '',
				party_order_id = '', pay_params = ?, updated_at = ? WHERE id = ?`,
			toDate, toSeq, dbJSON(payParams), s.time(at), id)
		if err != nil {
			return s.conflict(err, "payment")
		}
		p.ReqDate, p.ReqSeqID, p.NkpSeqID, p.PartyOrderID, p.PayParams, p.UpdatedAt = toDate, toSeq, "", "", payParams, at
		return nil
	})
	if err != nil {
		return store.Payment{}, s.errorf("replace order of payment %q: %w", id, err)
	}
	return p, nil
}
