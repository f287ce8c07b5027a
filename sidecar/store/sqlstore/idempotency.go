package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/internal/rules"
)

// Stored states of an idempotency record.
const (
	idemRunning = "in_progress"
	idemDone    = "done"
)

// errVanished means the record BeginIdempotency collided with was deleted
// before it could be read.
var errVanished = errors.New("idempotency record vanished")

// BeginIdempotency looks up or takes the key. The key is taken by an
// insert that does nothing on conflict; the record it collided with is
// then read, locked for the transaction, and taken over when expired.
func (s *Store) BeginIdempotency(ctx context.Context, scope, key, requestHash string, now time.Time,
	lockFor time.Duration) (store.IdemRecord, error) {
	if err := rules.Idempotency(scope, key, requestHash, now, lockFor); err != nil {
		return store.IdemRecord{}, s.errorf("begin idempotency: %w", err)
	}
	now = rules.Time(now)
	fresh := store.IdemRecord{Scope: scope, Key: key, RequestHash: requestHash, State: store.IdemNew,
		CreatedAt: now, ExpiresAt: rules.Time(now.Add(lockFor))}
	var rec store.IdemRecord
	err := s.write(ctx, func(t *txn) error {
		// In PostgreSQL each statement sees what committed before it, so
		// a record deleted under the insert is found absent by a retry.
		for range 5 {
			var err error
			rec, err = s.beginIdempotency(t, fresh)
			if !errors.Is(err, errVanished) {
				return err
			}
		}
		return errVanished
	})
	if err != nil {
		return store.IdemRecord{}, s.errorf("begin idempotency %s %q: %w", scope, key, err)
	}
	return rec, nil
}

func (s *Store) beginIdempotency(t *txn, fresh store.IdemRecord) (store.IdemRecord, error) {
	n, err := t.execCount(`INSERT INTO idempotency (scope, idem_key, request_hash, state, status_code, body,
			created_at, expires_at)
		VALUES (?, ?, ?, ?, 0, NULL, ?, ?) ON CONFLICT (scope, idem_key) DO NOTHING`,
		fresh.Scope, fresh.Key, fresh.RequestHash, idemRunning, s.time(fresh.CreatedAt), s.time(fresh.ExpiresAt))
	if err != nil || n == 1 {
		return fresh, err
	}
	rec := store.IdemRecord{Scope: fresh.Scope, Key: fresh.Key}
	var state string
	err = t.queryRow(`SELECT request_hash, state, status_code, body, created_at, expires_at
		FROM idempotency WHERE scope = ? AND idem_key = ?`+s.d.LockRow, fresh.Scope, fresh.Key).
		Scan(&rec.RequestHash, &state, &rec.StatusCode, &rec.Body, tm(&rec.CreatedAt), tm(&rec.ExpiresAt))
	if errors.Is(notFound(err), store.ErrNotFound) {
		return store.IdemRecord{}, errVanished
	}
	if err != nil {
		return store.IdemRecord{}, err
	}
	if !rec.ExpiresAt.After(fresh.CreatedAt) {
		_, err = t.exec(`UPDATE idempotency SET request_hash = ?, state = ?, status_code = 0, body = NULL,
				created_at = ?, expires_at = ?
			WHERE scope = ? AND idem_key = ?`,
			fresh.RequestHash, idemRunning, s.time(fresh.CreatedAt), s.time(fresh.ExpiresAt), fresh.Scope, fresh.Key)
		return fresh, err
	}
	switch {
	case rec.RequestHash != fresh.RequestHash:
		rec.State, rec.StatusCode, rec.Body = store.IdemMismatch, 0, nil
	case state == idemDone:
		rec.State = store.IdemDone
	default:
		rec.State, rec.StatusCode, rec.Body = store.IdemInProgress, 0, nil
	}
	return rec, nil
}

// FinishIdempotency stores the answer for the key.
func (s *Store) FinishIdempotency(ctx context.Context, scope, key string, statusCode int, body []byte,
	expiresAt time.Time) error {
	if statusCode < 100 || statusCode > 599 {
		return s.errorf("finish idempotency: %w: status code %d", store.ErrInvalid, statusCode)
	}
	if expiresAt.IsZero() {
		return s.errorf("finish idempotency: %w: expiry is required", store.ErrInvalid)
	}
	if body == nil {
		body = []byte{}
	}
	err := s.write(ctx, func(t *txn) error {
		n, err := t.execCount(`UPDATE idempotency SET state = ?, status_code = ?, body = ?, expires_at = ?
			WHERE scope = ? AND idem_key = ? AND state = ?`,
			idemDone, statusCode, body, s.time(expiresAt), scope, key, idemRunning)
		if err != nil || n == 1 {
			return err
		}
		ok, err := exists(t, `SELECT 1 FROM idempotency WHERE scope = ? AND idem_key = ?`, scope, key)
		switch {
		case err != nil:
			return err
		case !ok:
			return store.ErrNotFound
		}
		return fmt.Errorf("%w: the key already has an answer", store.ErrConflict)
	})
	if err != nil {
		return s.errorf("finish idempotency %s %q: %w", scope, key, err)
	}
	return nil
}

// ReleaseIdempotency forgets an in-progress key.
func (s *Store) ReleaseIdempotency(ctx context.Context, scope, key string) error {
	err := s.write(ctx, func(t *txn) error {
		_, err := t.exec(`DELETE FROM idempotency WHERE scope = ? AND idem_key = ? AND state = ?`,
			scope, key, idemRunning)
		return err
	})
	if err != nil {
		return s.errorf("release idempotency %s %q: %w", scope, key, err)
	}
	return nil
}

// PurgeIdempotency deletes records that expired before now.
func (s *Store) PurgeIdempotency(ctx context.Context, now time.Time) (int, error) {
	if now.IsZero() {
		return 0, s.errorf("purge idempotency: %w: time is required", store.ErrInvalid)
	}
	var n int64
	err := s.write(ctx, func(t *txn) (err error) {
		n, err = t.execCount(`DELETE FROM idempotency WHERE expires_at <= ?`, s.time(now))
		return err
	})
	if err != nil {
		return 0, s.errorf("purge idempotency: %w", err)
	}
	return int(n), nil
}
