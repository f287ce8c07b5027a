package sqlstore

import (
	"context"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/internal/rules"
)

// notificationInsert is the insert of a notification unless its id
// exists, with its arguments.
func (s *Store) notificationInsert(n store.Notification) (string, []any) {
	return `INSERT INTO notifications (id, req_seq_id, kind, object_id, resp_data, received_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		[]any{n.ID, n.ReqSeqID, n.Kind, n.ObjectID, n.RespData, s.time(n.ReceivedAt)}
}

// recordNotification inserts n, already checked, unless its id exists, and
// reports whether it was new.
func (s *Store) recordNotification(t *txn, n store.Notification) (bool, error) {
	query, args := s.notificationInsert(n)
	c, err := t.execCount(query, args...)
	return c == 1, err
}

// RecordNotification stores n unless a notification with its ID exists.
func (s *Store) RecordNotification(ctx context.Context, n store.Notification) (bool, error) {
	if err := rules.Notification(&n); err != nil {
		return false, s.errorf("record notification: %w", err)
	}
	var isNew bool
	err := s.write(ctx, func(t *txn) (err error) {
		isNew, err = s.recordNotification(t, n)
		return err
	})
	if err != nil {
		return false, s.errorf("record notification %q: %w", n.ID, err)
	}
	return isNew, nil
}

// ApplyNotification records n and applies t to the object it names, in
// one transaction.
func (s *Store) ApplyNotification(ctx context.Context, n store.Notification, tr store.Transition) (store.NotificationResult, error) {
	if err := rules.NotificationTarget(&n, tr); err != nil {
		return store.NotificationResult{}, s.errorf("apply notification: %w", err)
	}
	var res store.NotificationResult
	err := s.write(ctx, func(t *txn) (err error) {
		res = store.NotificationResult{}
		if n.Kind == rules.KindPayment && s.d.WritableCTE {
			// The notification is recorded by the statement that reads
			// the payment.
			res.Payment, res.Applied, err = s.transitionPayment(t, n.ObjectID, tr, false, nil, &notified{n: n, isNew: &res.New})
			return err
		}
		if res.New, err = s.recordNotification(t, n); err != nil {
			return err
		}
		if n.Kind == rules.KindPayment {
			res.Payment, res.Applied, err = s.transitionPayment(t, n.ObjectID, tr, false, nil, nil)
		} else {
			res.Refund, res.Applied, err = s.transitionRefund(t, n.ObjectID, tr)
		}
		return err
	})
	if err != nil {
		return store.NotificationResult{}, s.errorf("apply notification %q to %s %q: %w", n.ID, n.Kind, n.ObjectID, err)
	}
	return res, nil
}
