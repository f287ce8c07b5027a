package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/internal/rules"
)

const eventCols = `seq, id, type, object_id, order_key, payload, status, attempts,
	next_attempt_at, last_error, created_at, delivered_at`

// qualified prefixes every column of a column list with the table name.
func qualified(table, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = table + "." + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

func scanEvent(row pgx.Row) (store.Event, error) {
	var (
		e                        store.Event
		status                   string
		payload                  []byte
		next, created, delivered *time.Time
	)
	err := row.Scan(&e.Seq, &e.ID, &e.Type, &e.ObjectID, &e.OrderKey, &payload, &status, &e.Attempts,
		&next, &e.LastError, &created, &delivered)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Event{}, store.ErrNotFound
	}
	if err != nil {
		return store.Event{}, err
	}
	e.Payload = payload
	e.Status = store.EventStatus(status)
	e.NextAttemptAt, e.CreatedAt, e.DeliveredAt = goTime(next), goTime(created), goTime(delivered)
	return e, nil
}

func scanEvents(rows pgx.Rows) ([]store.Event, error) {
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

// insertEvent adds e, already checked by rules.Event, unless its id exists;
// it sets e.Seq when the event is new. The advisory lock on the order key,
// held until the transaction ends, makes the events of one key commit in
// the order of their seq.
func insertEvent(ctx context.Context, tx pgx.Tx, e *store.Event) (bool, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, orderKeyLockClass, e.OrderKey); err != nil {
		return false, fmt.Errorf("lock order key %q: %w", e.OrderKey, err)
	}
	err := tx.QueryRow(ctx, `INSERT INTO events (id, type, object_id, order_key, payload, status,
			attempts, next_attempt_at, last_error, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, 0, $7, '', $8)
		ON CONFLICT (id) DO NOTHING RETURNING seq`,
		e.ID, e.Type, e.ObjectID, e.OrderKey, string(e.Payload), string(store.EventPending),
		e.NextAttemptAt, e.CreatedAt).Scan(&e.Seq)
	if errors.Is(err, pgx.ErrNoRows) {
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
		return false, fmt.Errorf("postgres: insert event: %w", err)
	}
	var isNew bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		isNew, err = insertEvent(ctx, tx, &ev)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("postgres: %w", err)
	}
	if isNew {
		*e = ev
	}
	return isNew, nil
}

// GetEvent returns the event with the id.
func (s *Store) GetEvent(ctx context.Context, id string) (store.Event, error) {
	e, err := scanEvent(s.pool.QueryRow(ctx, `SELECT `+eventCols+` FROM events WHERE id = $1`, id))
	if err != nil {
		return store.Event{}, fmt.Errorf("postgres: get event %q: %w", id, err)
	}
	return e, nil
}

// ClaimEvents leases up to limit pending events due at now, the oldest
// undelivered event of each order key only. Rows another replica is
// claiming at the same moment are skipped, not waited for.
func (s *Store) ClaimEvents(ctx context.Context, c store.Claim, now time.Time, limit int) ([]store.Event, error) {
	if err := rules.Claim(c, now, limit); err != nil {
		return nil, fmt.Errorf("postgres: claim events: %w", err)
	}
	rows, err := s.pool.Query(ctx, `WITH c AS (
			SELECT e.seq FROM events e
			WHERE e.status = 'pending' AND e.next_attempt_at <= $3
				AND (e.lease_until IS NULL OR e.lease_until <= $3)
				AND NOT EXISTS (
					SELECT 1 FROM events b
					WHERE b.order_key = e.order_key AND b.seq < e.seq AND b.status <> 'delivered')
			ORDER BY e.seq
			LIMIT $4
			FOR UPDATE SKIP LOCKED)
		UPDATE events SET lease_owner = $1, lease_until = $2 FROM c WHERE events.seq = c.seq
		RETURNING `+qualified("events", eventCols),
		c.Owner, rules.Time(c.LeaseUntil), rules.Time(now), limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: claim events for %q: %w", c.Owner, err)
	}
	out, err := scanEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: claim events for %q: %w", c.Owner, err)
	}
	slices.SortFunc(out, func(a, b store.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// CompleteAttempt records the outcome of a delivery attempt by the lease
// owner.
func (s *Store) CompleteAttempt(ctx context.Context, a store.Attempt) error {
	if err := rules.Attempt(&a); err != nil {
		return fmt.Errorf("postgres: complete attempt: %w", err)
	}
	status := store.EventPending
	var delivered any
	switch {
	case a.Delivered:
		status, delivered = store.EventDelivered, a.At
	case a.Dead:
		status = store.EventDead
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE events SET status = $1, attempts = attempts + 1,
				last_error = $2, next_attempt_at = $3, delivered_at = $4, lease_owner = NULL, lease_until = NULL
			WHERE id = $5 AND status = 'pending' AND lease_owner = $6`,
			string(status), a.Error, a.NextAttemptAt, delivered, a.EventID, a.Owner)
		if err != nil || tag.RowsAffected() == 1 {
			return err
		}
		var one int
		err = tx.QueryRow(ctx, `SELECT 1 FROM events WHERE id = $1`, a.EventID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		return store.ErrLeaseLost
	})
	if err != nil {
		return fmt.Errorf("postgres: complete attempt of event %q by %q: %w", a.EventID, a.Owner, err)
	}
	return nil
}

// ListEvents lists events in a state after the given Seq, oldest first.
func (s *Store) ListEvents(ctx context.Context, status store.EventStatus, afterSeq int64, limit int) ([]store.Event, error) {
	if err := rules.EventStatus(status, true); err != nil {
		return nil, fmt.Errorf("postgres: list events: %w", err)
	}
	if err := rules.Limit(limit); err != nil {
		return nil, fmt.Errorf("postgres: list events: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+eventCols+` FROM events
		WHERE ($1 = '' OR status = $1) AND seq > $2 ORDER BY seq LIMIT $3`,
		string(status), afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: list events: %w", err)
	}
	out, err := scanEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: list events: %w", err)
	}
	return out, nil
}

// ReplayEvent moves a dead or delivered event back to pending, due at now.
func (s *Store) ReplayEvent(ctx context.Context, id string, now time.Time) error {
	if now.IsZero() {
		now = rules.Now()
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE events SET status = 'pending', attempts = 0,
				next_attempt_at = $1, delivered_at = NULL, lease_owner = NULL, lease_until = NULL
			WHERE id = $2 AND status IN ('dead', 'delivered')`, rules.Time(now), id)
		if err != nil || tag.RowsAffected() == 1 {
			return err
		}
		var one int
		err = tx.QueryRow(ctx, `SELECT 1 FROM events WHERE id = $1`, id).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: replay event %q: %w", id, err)
	}
	return nil
}

// CountEvents counts events by state.
func (s *Store) CountEvents(ctx context.Context) (map[store.EventStatus]int, error) {
	out := map[store.EventStatus]int{store.EventPending: 0, store.EventDelivered: 0, store.EventDead: 0}
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM events GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("postgres: count events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			st string
			n  int64
		)
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("postgres: count events: %w", err)
		}
		out[store.EventStatus(st)] = int(n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: count events: %w", err)
	}
	return out, nil
}

// RecordNotification stores n unless a notification with its ID exists.
func (s *Store) RecordNotification(ctx context.Context, n store.Notification) (bool, error) {
	if err := rules.Notification(&n); err != nil {
		return false, fmt.Errorf("postgres: record notification: %w", err)
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO notifications (id, req_seq_id, kind, object_id, resp_data, received_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
		n.ID, n.ReqSeqID, n.Kind, n.ObjectID, n.RespData, n.ReceivedAt)
	if err != nil {
		return false, fmt.Errorf("postgres: record notification %q: %w", n.ID, err)
	}
	return tag.RowsAffected() == 1, nil
}
