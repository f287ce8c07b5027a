package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/internal/rules"
)

const eventCols = `seq, id, type, object_id, order_key, payload, status, attempts,
	next_attempt_at, last_error, created_at, delivered_at`

func scanEvent(row scanner) (store.Event, error) {
	var e store.Event
	err := row.Scan(&e.Seq, &e.ID, &e.Type, &e.ObjectID, &e.OrderKey, js(&e.Payload), &e.Status, &e.Attempts,
		tm(&e.NextAttemptAt), &e.LastError, tm(&e.CreatedAt), tm(&e.DeliveredAt))
	if err != nil {
		return store.Event{}, notFound(err)
	}
	return e, nil
}

// insertEvent adds e, already checked by rules.Event, unless its id
// exists; it sets e.Seq when the event is new. The row is selected from
// the dialect's order-key lock, so the lock is held before Seq is drawn.
func (s *Store) insertEvent(t *txn, e *store.Event) (bool, error) {
	return s.insertEventAfter(t, "", nil, e)
}

// insertEventAfter is insertEvent with the statement prefixed by with, a
// WITH clause whose parameters are withArgs (Dialect.WritableCTE), or
// nothing.
func (s *Store) insertEventAfter(t *txn, with string, withArgs []any, e *store.Event) (bool, error) {
	e.Seq = 0
	query := with + `INSERT INTO events (id, type, object_id, order_key, payload, status,
			attempts, next_attempt_at, last_error, created_at)
		SELECT ?, ?, ?, ?, CAST(? AS ` + s.d.JSONType + `), ?, 0, CAST(? AS ` + s.d.TimeType + `), '',
			CAST(? AS ` + s.d.TimeType + `)
		FROM (` + s.d.OrderKeyLock + `) AS order_key_lock WHERE true
		ON CONFLICT (id) DO NOTHING`
	args := append(slices.Clip(withArgs), e.ID, e.Type, e.ObjectID, e.OrderKey, string(e.Payload), string(store.EventPending),
		s.time(e.NextAttemptAt), s.time(e.CreatedAt), e.OrderKey)
	var err error
	if s.d.LastInsertID && with == "" {
		var res sql.Result
		if res, err = t.exec(query, args...); err == nil {
			var n int64
			if n, err = res.RowsAffected(); err == nil && n == 0 {
				return false, nil
			}
			if err == nil {
				e.Seq, err = res.LastInsertId()
			}
		}
	} else {
		err = notFound(t.queryRow(query+` RETURNING seq`, args...).Scan(&e.Seq))
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
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
		return false, s.errorf("insert event: %w", err)
	}
	var isNew bool
	err := s.write(ctx, func(t *txn) (err error) {
		isNew, err = s.insertEvent(t, &ev)
		return err
	})
	if err != nil {
		return false, s.errorf("%w", err)
	}
	if isNew {
		*e = ev
	}
	return isNew, nil
}

// GetEvent returns the event with the id.
func (s *Store) GetEvent(ctx context.Context, id string) (store.Event, error) {
	return get(s, ctx, scanEvent, fmt.Sprintf("get event %q", id), `SELECT `+eventCols+` FROM events WHERE id = ?`, id)
}

// ClaimEvents leases up to limit pending events due at now, the oldest
// undelivered event of each order key only. Rows another replica is
// claiming at the same moment are skipped, not waited for.
func (s *Store) ClaimEvents(ctx context.Context, c store.Claim, now time.Time, limit int) ([]store.Event, error) {
	if err := rules.Claim(c, now, limit); err != nil {
		return nil, s.errorf("claim events: %w", err)
	}
	var out []store.Event
	err := s.write(ctx, func(t *txn) error {
		rows, err := t.query(`UPDATE events SET lease_owner = ?, lease_until = ?
			WHERE seq IN (
				SELECT e.seq FROM events e
				WHERE e.status = 'pending' AND e.next_attempt_at <= ?
					AND (e.lease_until IS NULL OR e.lease_until <= ?)
					AND NOT EXISTS (
						SELECT 1 FROM events b
						WHERE b.order_key = e.order_key AND b.seq < e.seq AND b.status <> 'delivered')
				ORDER BY e.seq
				LIMIT ?`+s.d.LockSkip+`)
			RETURNING `+eventCols,
			c.Owner, s.time(c.LeaseUntil), s.time(now), s.time(now), limit)
		if err != nil {
			return err
		}
		out, err = scanAll(rows, scanEvent)
		return err
	})
	if err != nil {
		return nil, s.errorf("claim events for %q: %w", c.Owner, err)
	}
	slices.SortFunc(out, func(a, b store.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// exists reports whether the table has a row matching where.
func exists(t *txn, query string, args ...any) (bool, error) {
	var one int
	err := t.queryRow(query, args...).Scan(&one)
	if errors.Is(notFound(err), store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// CompleteAttempt records the outcome of a delivery attempt by the lease
// owner.
func (s *Store) CompleteAttempt(ctx context.Context, a store.Attempt) error {
	if err := rules.Attempt(&a); err != nil {
		return s.errorf("complete attempt: %w", err)
	}
	err := s.write(ctx, func(t *txn) error { return s.completeAttempt(t, a) })
	if err != nil {
		return s.errorf("complete attempt of event %q by %q: %w", a.EventID, a.Owner, err)
	}
	return nil
}

// CompleteAttempts records the outcomes of several delivery attempts in
// one write. An attempt that is not valid, or whose lease is lost, or
// whose event is unknown, gets its own error and changes nothing; the
// others are recorded.
func (s *Store) CompleteAttempts(ctx context.Context, as []store.Attempt) ([]error, error) {
	errs := make([]error, len(as))
	valid := make([]store.Attempt, len(as))
	ok := 0
	for i, a := range as {
		if err := rules.Attempt(&a); err != nil {
			errs[i] = s.errorf("complete attempt: %w", err)
			continue
		}
		valid[i] = a
		ok++
	}
	if ok == 0 {
		return errs, nil
	}
	// Attempts at the same event are recorded one after another, as
	// separate calls would record them; the others by a statement per
	// chunk of attempts.
	seen := make(map[string]bool, len(as))
	together := true
	for i, a := range valid {
		if errs[i] == nil {
			together = together && !seen[a.EventID]
			seen[a.EventID] = true
		}
	}
	own := make([]error, len(as))
	err := s.write(ctx, func(t *txn) error {
		// A write may run again (after a conflict): its outcomes are set
		// afresh.
		clear(own)
		var pending []int // attempts left to record one by one
		for i := range valid {
			if errs[i] == nil {
				pending = append(pending, i)
			}
		}
		if together {
			var err error
			if pending, err = s.completeAttemptsTogether(t, valid, pending); err != nil {
				return err
			}
		}
		for _, i := range pending {
			a := valid[i]
			err := s.completeAttempt(t, a)
			if errors.Is(err, store.ErrLeaseLost) || errors.Is(err, store.ErrNotFound) {
				own[i] = err // changed nothing; the others go on
				continue
			}
			if err != nil {
				return fmt.Errorf("complete attempt of event %q by %q: %w", a.EventID, a.Owner, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.errorf("complete %d attempts: %w", ok, err)
	}
	for i, err := range own {
		if err != nil {
			errs[i] = s.errorf("complete attempt of event %q by %q: %w", as[i].EventID, as[i].Owner, err)
		}
	}
	return errs, nil
}

// completeChunk bounds the attempts of one statement of
// completeAttemptsTogether, and so the number of statements of different
// lengths prepared on a connection.
const completeChunk = 32

// completeAttemptsTogether records the attempts as[i] for i in idx, of
// distinct events, with one statement per chunk of completeChunk
// attempts (one round trip on PostgreSQL rather than one per attempt).
// It returns the indexes of the attempts that changed nothing, whose lease
// is lost or whose event is unknown, for completeAttempt to tell which.
func (s *Store) completeAttemptsTogether(t *txn, as []store.Attempt, idx []int) ([]int, error) {
	var left []int
	for len(idx) > 0 {
		chunk := idx[:min(len(idx), completeChunk)]
		idx = idx[len(chunk):]
		var b strings.Builder
		b.WriteString(`UPDATE events SET status = v.column2, attempts = attempts + 1, last_error = v.column3,
				next_attempt_at = v.column4, delivered_at = v.column5, lease_owner = NULL, lease_until = NULL
			FROM (VALUES `)
		args := make([]any, 0, 6*len(chunk))
		for k, i := range chunk {
			if k > 0 {
				b.WriteString(", ")
			}
			b.WriteString(`(?, ?, ?, CAST(? AS ` + s.d.TimeType + `), CAST(? AS ` + s.d.TimeType + `), ?)`)
			status, delivered := attemptStatus(as[i])
			args = append(args, as[i].EventID, string(status), as[i].Error, s.time(as[i].NextAttemptAt), s.time(delivered), as[i].Owner)
		}
		b.WriteString(`) AS v
			WHERE events.id = v.column1 AND events.status = 'pending' AND events.lease_owner = v.column6
			RETURNING events.id`)
		rows, err := t.query(b.String(), args...)
		if err != nil {
			return nil, fmt.Errorf("complete %d attempts: %w", len(chunk), err)
		}
		done, err := scanAll(rows, func(row scanner) (string, error) {
			var id string
			return id, row.Scan(&id)
		})
		if err != nil {
			return nil, fmt.Errorf("complete %d attempts: %w", len(chunk), err)
		}
		recorded := make(map[string]bool, len(done))
		for _, id := range done {
			recorded[id] = true
		}
		for _, i := range chunk {
			if !recorded[as[i].EventID] {
				left = append(left, i)
			}
		}
	}
	return left, nil
}

// attemptStatus returns the state an attempt leaves its event in, and
// when it was delivered (zero unless it was).
func attemptStatus(a store.Attempt) (store.EventStatus, time.Time) {
	switch {
	case a.Delivered:
		return store.EventDelivered, a.At
	case a.Dead:
		return store.EventDead, time.Time{}
	}
	return store.EventPending, time.Time{}
}

// completeAttempt records a, already checked, in t: ErrLeaseLost when its
// owner no longer holds the lease, ErrNotFound when the event is unknown,
// and in either case nothing is changed.
func (s *Store) completeAttempt(t *txn, a store.Attempt) error {
	status, delivered := attemptStatus(a)
	n, err := t.execCount(`UPDATE events SET status = ?, attempts = attempts + 1,
			last_error = ?, next_attempt_at = ?, delivered_at = ?, lease_owner = NULL, lease_until = NULL
		WHERE id = ? AND status = 'pending' AND lease_owner = ?`,
		string(status), a.Error, s.time(a.NextAttemptAt), s.time(delivered), a.EventID, a.Owner)
	if err != nil || n == 1 {
		return err
	}
	ok, err := exists(t, `SELECT 1 FROM events WHERE id = ?`, a.EventID)
	switch {
	case err != nil:
		return err
	case !ok:
		return store.ErrNotFound
	}
	return store.ErrLeaseLost
}

// ListEvents lists events in a state after the given Seq, oldest first.
func (s *Store) ListEvents(ctx context.Context, status store.EventStatus, afterSeq int64, limit int) ([]store.Event, error) {
	if err := rules.EventStatus(status, true); err != nil {
		return nil, s.errorf("list events: %w", err)
	}
	if err := rules.Limit(limit); err != nil {
		return nil, s.errorf("list events: %w", err)
	}
	rows, err := s.reader(ctx).query(`SELECT `+eventCols+` FROM events
		WHERE (? = '' OR status = ?) AND seq > ? ORDER BY seq LIMIT ?`,
		string(status), string(status), afterSeq, limit)
	if err != nil {
		return nil, s.errorf("list events: %w", err)
	}
	out, err := scanAll(rows, scanEvent)
	if err != nil {
		return nil, s.errorf("list events: %w", err)
	}
	return out, nil
}

// ReplayEvent moves a dead or delivered event back to pending, due at now.
func (s *Store) ReplayEvent(ctx context.Context, id string, now time.Time) error {
	if now.IsZero() {
		now = rules.Now()
	}
	err := s.write(ctx, func(t *txn) error {
		n, err := t.execCount(`UPDATE events SET status = 'pending', attempts = 0,
				next_attempt_at = ?, delivered_at = NULL, lease_owner = NULL, lease_until = NULL
			WHERE id = ? AND status IN ('dead', 'delivered')`, s.time(now), id)
		if err != nil || n == 1 {
			return err
		}
		ok, err := exists(t, `SELECT 1 FROM events WHERE id = ?`, id)
		if err == nil && !ok {
			err = store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return s.errorf("replay event %q: %w", id, err)
	}
	return nil
}

// CountEvents counts events by state.
func (s *Store) CountEvents(ctx context.Context) (map[store.EventStatus]int, error) {
	out := map[store.EventStatus]int{store.EventPending: 0, store.EventDelivered: 0, store.EventDead: 0}
	rows, err := s.reader(ctx).query(`SELECT status, count(*) FROM events GROUP BY status`)
	if err != nil {
		return nil, s.errorf("count events: %w", err)
	}
	type count struct {
		status store.EventStatus
		n      int
	}
	counts, err := scanAll(rows, func(row scanner) (count, error) {
		var c count
		return c, row.Scan(&c.status, &c.n)
	})
	if err != nil {
		return nil, s.errorf("count events: %w", err)
	}
	for _, c := range counts {
		out[c.status] = c.n
	}
	return out, nil
}
