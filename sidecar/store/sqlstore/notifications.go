package sqlstore

import (
	"context"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/internal/rules"
)

// recordNotification inserts n, already checked, unless its id exists, and
// reports whether it was new.
func (s *Store) recordNotification(t *txn, n store.Notification) (bool, error) {
	c, err := t.execCount(`INSERT INTO notifications (id, req_seq_id, kind, object_id, resp_data, received_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		n.ID, n.ReqSeqID, n.Kind, n.ObjectID, n.RespData, s.time(n.ReceivedAt))
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
