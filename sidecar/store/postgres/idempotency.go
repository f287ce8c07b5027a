package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/internal/rules"
)

// Stored states of an idempotency record.
const (
	idemRunning = "in_progress"
	idemDone    = "done"
)

// errRetry makes BeginIdempotency try again: the record it collided with
// was deleted before it could be read.
var errRetry = errors.New("idempotency record vanished")

// BeginIdempotency looks up or takes the key.
func (s *Store) BeginIdempotency(ctx context.Context, scope, key, requestHash string, now time.Time,
	lockFor time.Duration) (store.IdemRecord, error) {
	if err := rules.Idempotency(scope, key, requestHash, now, lockFor); err != nil {
		return store.IdemRecord{}, fmt.Errorf("postgres: begin idempotency: %w", err)
	}
	now = rules.Time(now)
	fresh := store.IdemRecord{Scope: scope, Key: key, RequestHash: requestHash, State: store.IdemNew,
		CreatedAt: now, ExpiresAt: rules.Time(now.Add(lockFor))}
	for range 5 {
		var rec store.IdemRecord
		err := s.tx(ctx, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `INSERT INTO idempotency (scope, idem_key, request_hash, state,
					status_code, body, created_at, expires_at)
				VALUES ($1, $2, $3, $4, 0, NULL, $5, $6) ON CONFLICT (scope, idem_key) DO NOTHING`,
				scope, key, requestHash, idemRunning, fresh.CreatedAt, fresh.ExpiresAt)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 1 {
				rec = fresh
				return nil
			}
			var (
				hash, state      string
				code             int
				body             []byte
				created, expires time.Time
			)
			err = tx.QueryRow(ctx, `SELECT request_hash, state, status_code, body, created_at, expires_at
				FROM idempotency WHERE scope = $1 AND idem_key = $2 FOR UPDATE`, scope, key).
				Scan(&hash, &state, &code, &body, &created, &expires)
			if errors.Is(err, pgx.ErrNoRows) {
				return errRetry
			}
			if err != nil {
				return err
			}
			if !expires.After(now) {
				_, err = tx.Exec(ctx, `UPDATE idempotency SET request_hash = $1, state = $2, status_code = 0,
						body = NULL, created_at = $3, expires_at = $4
					WHERE scope = $5 AND idem_key = $6`,
					requestHash, idemRunning, fresh.CreatedAt, fresh.ExpiresAt, scope, key)
				rec = fresh
				return err
			}
			rec = store.IdemRecord{Scope: scope, Key: key, RequestHash: hash, CreatedAt: created.UTC(), ExpiresAt: expires.UTC()}
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
		if errors.Is(err, errRetry) {
			continue
		}
		if err != nil {
			return store.IdemRecord{}, fmt.Errorf("postgres: begin idempotency %s %q: %w", scope, key, err)
		}
		return rec, nil
	}
	return store.IdemRecord{}, fmt.Errorf("postgres: begin idempotency %s %q: %w", scope, key, errRetry)
}

// FinishIdempotency stores the answer for the key.
func (s *Store) FinishIdempotency(ctx context.Context, scope, key string, statusCode int, body []byte,
	expiresAt time.Time) error {
	if statusCode < 100 || statusCode > 599 {
		return fmt.Errorf("postgres: finish idempotency: %w: status code %d", store.ErrInvalid, statusCode)
	}
	if expiresAt.IsZero() {
		return fmt.Errorf("postgres: finish idempotency: %w: expiry is required", store.ErrInvalid)
	}
	if body == nil {
		body = []byte{}
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE idempotency SET state = $1, status_code = $2, body = $3, expires_at = $4
			WHERE scope = $5 AND idem_key = $6 AND state = $7`,
			idemDone, statusCode, body, rules.Time(expiresAt), scope, key, idemRunning)
		if err != nil || tag.RowsAffected() == 1 {
			return err
		}
		var one int
		err = tx.QueryRow(ctx, `SELECT 1 FROM idempotency WHERE scope = $1 AND idem_key = $2`, scope, key).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: the key already has an answer", store.ErrConflict)
	})
	if err != nil {
		return fmt.Errorf("postgres: finish idempotency %s %q: %w", scope, key, err)
	}
	return nil
}

// ReleaseIdempotency forgets an in-progress key.
func (s *Store) ReleaseIdempotency(ctx context.Context, scope, key string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM idempotency WHERE scope = $1 AND idem_key = $2 AND state = $3`,
		scope, key, idemRunning)
	if err != nil {
		return fmt.Errorf("postgres: release idempotency %s %q: %w", scope, key, err)
	}
	return nil
}

// PurgeIdempotency deletes records that expired before now.
func (s *Store) PurgeIdempotency(ctx context.Context, now time.Time) (int, error) {
	if now.IsZero() {
		return 0, fmt.Errorf("postgres: purge idempotency: %w: time is required", store.ErrInvalid)
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency WHERE expires_at <= $1`, rules.Time(now))
	if err != nil {
		return 0, fmt.Errorf("postgres: purge idempotency: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
