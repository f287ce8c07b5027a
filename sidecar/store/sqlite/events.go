package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/internal/rules"
)

const eventCols = `seq, id, type, object_id, order_key, payload, status, attempts,
	next_attempt_at, last_error, created_at, delivered_at`

func scanEvent(row scanner) (store.Event, error) {
	var (
		e                        store.Event
		status, payload          string
		next, created, delivered sql.NullInt64
	)
	err := row.Scan(&e.Seq, &e.ID, &e.Type, &e.ObjectID, &e.OrderKey, &payload, &status, &e.Attempts,
		&next, &e.LastError, &created, &delivered)
	if err != nil {
		return store.Event{}, err
	}
	e.Payload = []byte(payload)
	e.Status = store.EventStatus(status)
	e.NextAttemptAt, e.CreatedAt, e.DeliveredAt = goTime(next), goTime(created), goTime(delivered)
	return e, nil
}

func scanEvents(rows *sql.Rows) ([]store.Event, error) {
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// insertEvent adds e, already checked by rules.Event, unless its id
// exists; it sets e.Seq when the event is new.
func insertEvent(ctx context.Context, tx *sql.Tx, e *store.Event) (bool, error) {
	err := tx.QueryRowContext(ctx, `INSERT INTO events (id, type, object_id, order_key, payload, status,
			attempts, next_attempt_at, last_error, created_at)
		VALUES (?, ?, ?, ?, ?, ?, 0, ?, '', ?)
		ON CONFLICT (id) DO NOTHING RETURNING seq`,
		e.ID, e.Type, e.ObjectID, e.OrderKey, string(e.Payload), string(store.EventPending),
		dbTime(e.NextAttemptAt), dbTime(e.CreatedAt)).Scan(&e.Seq)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("insert event %q: %w", e.ID, err)
	}
	return true, nil
}

// InsertEvent adds e to the outbox unless an event with e.ID exists.
func (s *Store) InsertEvent(ctx context.Context, e *store.Event) (bool, error) {
	ev := *e
	if err := rules.Event(&ev); err != nil {
		return false, fmt.Errorf("sqlite: insert event: %w", err)
	}
	var isNew bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		isNew, err = insertEvent(ctx, tx, &ev)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: %w", err)
	}
	if isNew {
		*e = ev
	}
	return isNew, nil
}

// GetEvent returns the event with the id.
func (s *Store) GetEvent(ctx context.Context, id string) (store.Event, error) {
	e, err := scanEvent(s.r.QueryRowContext(ctx, `SELECT `+eventCols+` FROM events WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Event{}, fmt.Errorf("sqlite: get event %q: %w", id, err)
	}
	return e, nil
}

// ClaimEvents leases up to limit pending events due at now, the oldest
// undelivered event of each order key only.
func (s *Store) ClaimEvents(ctx context.Context, c store.Claim, now time.Time, limit int) ([]store.Event, error) {
	if err := rules.Claim(c, now, limit); err != nil {
		return nil, fmt.Errorf("sqlite: claim events: %w", err)
	}
	now = rules.Time(now)
	var out []store.Event
	err := s.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE events SET lease_owner = ?, lease_until = ?
			WHERE seq IN (
				SELECT e.seq FROM events e
				WHERE e.status = 'pending' AND e.next_attempt_at <= ?
					AND (e.lease_until IS NULL OR e.lease_until <= ?)
					AND NOT EXISTS (
						SELECT 1 FROM events b
						WHERE b.order_key = e.order_key AND b.seq < e.seq AND b.status <> 'delivered')
				ORDER BY e.seq
				LIMIT ?)
			RETURNING `+eventCols,
			c.Owner, dbTime(rules.Time(c.LeaseUntil)), dbTime(now), dbTime(now), limit)
		if err != nil {
			return err
		}
		out, err = scanEvents(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim events for %q: %w", c.Owner, err)
	}
	slices.SortFunc(out, func(a, b store.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// CompleteAttempt records the outcome of a delivery attempt by the lease
// owner.
func (s *Store) CompleteAttempt(ctx context.Context, a store.Attempt) error {
	if err := rules.Attempt(&a); err != nil {
		return fmt.Errorf("sqlite: complete attempt: %w", err)
	}
	status := store.EventPending
	var delivered any
	switch {
	case a.Delivered:
		status, delivered = store.EventDelivered, dbTime(a.At)
	case a.Dead:
		status = store.EventDead
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE events SET status = ?, attempts = attempts + 1,
				last_error = ?, next_attempt_at = ?, delivered_at = ?, lease_owner = NULL, lease_until = NULL
			WHERE id = ? AND status = 'pending' AND lease_owner = ?`,
			string(status), a.Error, dbTime(a.NextAttemptAt), delivered, a.EventID, a.Owner)
		if err != nil {
			return err
		}
		n, err := affected(res)
		if err != nil || n == 1 {
			return err
		}
		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM events WHERE id = ?`, a.EventID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		return store.ErrLeaseLost
	})
	if err != nil {
		return fmt.Errorf("sqlite: complete attempt of event %q by %q: %w", a.EventID, a.Owner, err)
	}
	return nil
}

// ListEvents lists events in a state after the given Seq, oldest first.
func (s *Store) ListEvents(ctx context.Context, status store.EventStatus, afterSeq int64, limit int) ([]store.Event, error) {
	if err := rules.EventStatus(status, true); err != nil {
		return nil, fmt.Errorf("sqlite: list events: %w", err)
	}
	if err := rules.Limit(limit); err != nil {
		return nil, fmt.Errorf("sqlite: list events: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+eventCols+` FROM events
		WHERE (? = '' OR status = ?) AND seq > ? ORDER BY seq LIMIT ?`,
		string(status), string(status), afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list events: %w", err)
	}
	out, err := scanEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list events: %w", err)
	}
	return out, nil
}

// ReplayEvent moves a dead or delivered event back to pending, due at now.
func (s *Store) ReplayEvent(ctx context.Context, id string, now time.Time) error {
	if now.IsZero() {
		now = rules.Now()
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE events SET status = 'pending', attempts = 0,
				next_attempt_at = ?, delivered_at = NULL, lease_owner = NULL, lease_until = NULL
			WHERE id = ? AND status IN ('dead', 'delivered')`, dbTime(rules.Time(now)), id)
		if err != nil {
			return err
		}
		n, err := affected(res)
		if err != nil || n == 1 {
			return err
		}
		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM events WHERE id = ?`, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: replay event %q: %w", id, err)
	}
	return nil
}

// CountEvents counts events by state.
func (s *Store) CountEvents(ctx context.Context) (map[store.EventStatus]int, error) {
	out := map[store.EventStatus]int{store.EventPending: 0, store.EventDelivered: 0, store.EventDead: 0}
	rows, err := s.r.QueryContext(ctx, `SELECT status, count(*) FROM events GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: count events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			st string
			n  int
		)
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("sqlite: count events: %w", err)
		}
		out[store.EventStatus(st)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: count events: %w", err)
	}
	return out, nil
}

// RecordNotification stores n unless a notification with its ID exists.
func (s *Store) RecordNotification(ctx context.Context, n store.Notification) (bool, error) {
	if err := rules.Notification(&n); err != nil {
		return false, fmt.Errorf("sqlite: record notification: %w", err)
	}
	var isNew bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO notifications (id, req_seq_id, kind, object_id,
				resp_data, received_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			n.ID, n.ReqSeqID, n.Kind, n.ObjectID, n.RespData, dbTime(n.ReceivedAt))
		if err != nil {
			return err
		}
		c, err := affected(res)
		isNew = c == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: record notification %q: %w", n.ID, err)
	}
	return isNew, nil
}
