package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/internal/rules"
)

const checkoutCols = `id, merchant_id, out_trade_no, flow, amount_fen, description, links, payment_id,
	claimed_at, expires_at, created_at, updated_at`

const checkoutByID = `SELECT ` + checkoutCols + ` FROM checkouts WHERE id = ?`

func scanCheckout(row scanner) (store.Checkout, error) {
	var c store.Checkout
	err := row.Scan(&c.ID, &c.MerchantID, &c.OutTradeNo, &c.Flow, &c.AmountFen, &c.Description, js(&c.Links),
		&c.PaymentID, tm(&c.ClaimedAt), tm(&c.ExpiresAt), tm(&c.CreatedAt), tm(&c.UpdatedAt))
	if err != nil {
		return store.Checkout{}, notFound(err)
	}
	return c, nil
}

// CreateCheckout inserts c.
func (s *Store) CreateCheckout(ctx context.Context, c *store.Checkout) error {
	if err := rules.Checkout(c); err != nil {
		return s.errorf("create checkout: %w", err)
	}
	err := s.write(ctx, func(t *txn) error {
		_, err := t.exec(`INSERT INTO checkouts (`+checkoutCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.MerchantID, c.OutTradeNo, c.Flow, c.AmountFen, c.Description, dbJSON(c.Links), c.PaymentID,
			s.time(c.ClaimedAt), s.time(c.ExpiresAt), s.time(c.CreatedAt), s.time(c.UpdatedAt))
		return s.conflict(err, "checkout")
	})
	if err != nil {
		return s.errorf("create checkout %q: %w", c.ID, err)
	}
	return nil
}

// GetCheckout returns the checkout with the id.
func (s *Store) GetCheckout(ctx context.Context, id string) (store.Checkout, error) {
	return get(s, ctx, scanCheckout, fmt.Sprintf("get checkout %q", id), checkoutByID, id)
}

// ClaimCheckout marks an open checkout as being paid.
func (s *Store) ClaimCheckout(ctx context.Context, id string, now time.Time) (store.Checkout, error) {
	if now.IsZero() {
		now = rules.Now()
	}
	var out store.Checkout
	err := s.write(ctx, func(t *txn) (err error) {
		out, err = updateCheckout(t, id, "claim", `UPDATE checkouts SET claimed_at = ?, updated_at = ?
			WHERE id = ? AND claimed_at IS NULL AND expires_at > ?`,
			s.time(now), s.time(now), id, s.time(now))
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return out, s.errorf("claim checkout %q: %w", id, err)
		}
		return store.Checkout{}, s.errorf("claim checkout %q: %w", id, err)
	}
	return out, nil
}

// ReleaseCheckout undoes a claim that had no effect.
func (s *Store) ReleaseCheckout(ctx context.Context, id string, claimedAt time.Time) error {
	if claimedAt.IsZero() {
		return s.errorf("release checkout %q: %w: claimed_at is required", id, store.ErrInvalid)
	}
	err := s.write(ctx, func(t *txn) error {
		_, err := t.exec(`UPDATE checkouts SET claimed_at = NULL, updated_at = ?
			WHERE id = ? AND claimed_at = ? AND payment_id = ''`,
			s.time(rules.Now()), id, s.time(claimedAt))
		return err
	})
	if err != nil {
		return s.errorf("release checkout %q: %w", id, err)
	}
	return nil
}

// SetCheckoutPayment records the payment a claimed checkout became.
func (s *Store) SetCheckoutPayment(ctx context.Context, id, paymentID string, at time.Time) (store.Checkout, error) {
	if paymentID == "" {
		return store.Checkout{}, s.errorf("set checkout %q payment: %w: payment_id is required", id, store.ErrInvalid)
	}
	if at.IsZero() {
		at = rules.Now()
	}
	var out store.Checkout
	err := s.write(ctx, func(t *txn) (err error) {
		out, err = updateCheckout(t, id, "update", `UPDATE checkouts SET payment_id = ?, updated_at = ?
			WHERE id = ? AND claimed_at IS NOT NULL AND (payment_id = '' OR payment_id = ?)`,
			paymentID, s.time(at), id, paymentID)
		return err
	})
	if err != nil {
		return store.Checkout{}, s.errorf("set checkout %q payment: %w", id, err)
	}
	return out, nil
}

// updateCheckout runs one conditional UPDATE of checkout id (what names it
// in errors) and reads the checkout back. When the condition held for no
// row it returns the checkout as it stands with store.ErrConflict.
func updateCheckout(t *txn, id, what, query string, args ...any) (store.Checkout, error) {
	n, err := t.execCount(query, args...)
	if err != nil {
		return store.Checkout{}, fmt.Errorf("%s: %w", what, err)
	}
	out, err := scanCheckout(t.queryRow(checkoutByID, id))
	if err != nil {
		return store.Checkout{}, err
	}
	if n == 0 {
		return out, store.ErrConflict
	}
	return out, nil
}
