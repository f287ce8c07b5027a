package sqlite

import (
	"context"
	"database/sql"
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

// BeginIdempotency looks up or takes the key.
func (s *Store) BeginIdempotency(ctx context.Context, scope, key, requestHash string, now time.Time,
	lockFor time.Duration) (store.IdemRecord, error) {
	if err := rules.Idempotency(scope, key, requestHash, now, lockFor); err != nil {
		return store.IdemRecord{}, fmt.Errorf("sqlite: begin idempotency: %w", err)
	}
	now = rules.Time(now)
	var rec store.IdemRecord
	err := s.write(ctx, func(tx *sql.Tx) error {
		var (
			hash, state      string
			code             int
			body             []byte
			created, expires int64
		)
		err := tx.QueryRowContext(ctx, `SELECT request_hash, state, status_code, body, created_at, expires_at
			FROM idempotency WHERE scope = ? AND idem_key = ?`, scope, key).
			Scan(&hash, &state, &code, &body, &created, &expires)
		switch {
		case errors.Is(err, sql.ErrNoRows) || (err == nil && expires <= now.UnixMicro()):
			rec = store.IdemRecord{Scope: scope, Key: key, RequestHash: requestHash, State: store.IdemNew,
				CreatedAt: now, ExpiresAt: rules.Time(now.Add(lockFor))}
			_, err = tx.ExecContext(ctx, `INSERT INTO idempotency (scope, idem_key, request_hash, state,
					status_code, body, created_at, expires_at)
				VALUES (?, ?, ?, ?, 0, NULL, ?, ?)
				ON CONFLICT (scope, idem_key) DO UPDATE SET request_hash = excluded.request_hash,
					state = excluded.state, status_code = 0, body = NULL,
					created_at = excluded.created_at, expires_at = excluded.expires_at`,
				scope, key, requestHash, idemRunning, dbTime(rec.CreatedAt), dbTime(rec.ExpiresAt))
			return err
		case err != nil:
			return err
		}
		rec = store.IdemRecord{Scope: scope, Key: key, RequestHash: hash,
			CreatedAt: time.UnixMicro(created).UTC(), ExpiresAt: time.UnixMicro(expires).UTC()}
		switch {
		case hash != requestHash:
			rec.State = store.IdemMismatch
		case state == idemDone:
			rec.State, rec.StatusCode, rec.Body = store.IdemDone, code, body
		default:
			rec.State = store.IdemInProgress
		}
		return nil
	})
	if err != nil {
		return store.IdemRecord{}, fmt.Errorf("sqlite: begin idempotency %s %q: %w", scope, key, err)
	}
	return rec, nil
}

// FinishIdempotency stores the answer for the key.
func (s *Store) FinishIdempotency(ctx context.Context, scope, key string, statusCode int, body []byte,
	expiresAt time.Time) error {
	if statusCode < 100 || statusCode > 599 {
		return fmt.Errorf("sqlite: finish idempotency: %w: status code %d", store.ErrInvalid, statusCode)
	}
	if expiresAt.IsZero() {
		return fmt.Errorf("sqlite: finish idempotency: %w: expiry is required", store.ErrInvalid)
	}
	if body == nil {
		body = []byte{}
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE idempotency SET state = ?, status_code = ?, body = ?,
				expires_at = ?
			WHERE scope = ? AND idem_key = ? AND state = ?`,
			idemDone, statusCode, body, dbTime(rules.Time(expiresAt)), scope, key, idemRunning)
		if err != nil {
			return err
		}
		n, err := affected(res)
		if err != nil || n == 1 {
			return err
		}
		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM idempotency WHERE scope = ? AND idem_key = ?`, scope, key).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: the key already has an answer", store.ErrConflict)
	})
	if err != nil {
		return fmt.Errorf("sqlite: finish idempotency %s %q: %w", scope, key, err)
	}
	return nil
}

// ReleaseIdempotency forgets an in-progress key.
func (s *Store) ReleaseIdempotency(ctx context.Context, scope, key string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM idempotency WHERE scope = ? AND idem_key = ? AND state = ?`,
			scope, key, idemRunning)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: release idempotency %s %q: %w", scope, key, err)
	}
	return nil
}

// PurgeIdempotency deletes records that expired before now.
func (s *Store) PurgeIdempotency(ctx context.Context, now time.Time) (int, error) {
	if now.IsZero() {
		return 0, fmt.Errorf("sqlite: purge idempotency: %w: time is required", store.ErrInvalid)
	}
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM idempotency WHERE expires_at <= ?`, dbTime(rules.Time(now)))
		if err != nil {
			return err
		}
		n, err = affected(res)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge idempotency: %w", err)
	}
	return int(n), nil
}
