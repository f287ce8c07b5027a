package main

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the driver the SQLite store uses
)

// sqliteRaw commits into a SQLite file of its own beside the sidecar's,
// on the same disk, in WAL mode with synchronous=FULL like the store.
type sqliteRaw string

func (dir sqliteRaw) commitRate(ctx context.Context, d time.Duration) (float64, error) {
	db, err := sql.Open("sqlite", filepath.Join(string(dir), "raw.db"))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range []string{`PRAGMA journal_mode=WAL`, `PRAGMA synchronous=FULL`,
		`CREATE TABLE IF NOT EXISTS raw (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return 0, fmt.Errorf("%s: %w", q, err)
		}
	}
	return commitLoop(ctx, d, func(ctx context.Context) error {
		_, err := db.ExecContext(ctx, `INSERT INTO raw (body) VALUES (?)`, rawBody)
		return err
	})
}

// rawBody is a row about the size of a stored notification.
var rawBody = strings.Repeat("x", 512)

// commitLoop runs commit (one autocommitted single-row insert) one after
// another for d and returns commits per second.
func commitLoop(ctx context.Context, d time.Duration, commit func(context.Context) error) (float64, error) {
	began := time.Now()
	n := 0
	for time.Since(began) < d {
		if err := commit(ctx); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(began).Seconds(), nil
}

// postgresStore is a schema of its own on the PostgreSQL server, for the
// sidecar and for the raw commits; drop removes it.
type postgresStore struct {
	dsn, schema string
}

func newPostgresStore(ctx context.Context, dsn string) (*postgresStore, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	s := &postgresStore{dsn: dsn, schema: fmt.Sprintf("bench_%d", time.Now().UnixNano())}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+s.schema); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return s, nil
}

// schemaDSN is the DSN with the schema as search_path.
func (s *postgresStore) schemaDSN() string {
	sep := "?"
	if strings.Contains(s.dsn, "?") {
		sep = "&"
	}
	return s.dsn + sep + "search_path=" + s.schema
}

// env is the environment of a sidecar on this store.
func (s *postgresStore) env() []string {
	return []string{"PAYSIDECAR_STORE__DRIVER=postgres", "PAYSIDECAR_STORE__POSTGRES_DSN=" + s.schemaDSN()}
}

func (s *postgresStore) commitRate(ctx context.Context, d time.Duration) (float64, error) {
	conn, err := pgx.Connect(ctx, s.schemaDSN())
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS raw (id bigserial PRIMARY KEY, body text NOT NULL)`); err != nil {
		return 0, err
	}
	return commitLoop(ctx, d, func(ctx context.Context) error {
		_, err := conn.Exec(ctx, `INSERT INTO raw (body) VALUES ($1)`, rawBody)
		return err
	})
}

// drop removes the schema and everything in it.
func (s *postgresStore) drop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP SCHEMA "+s.schema+" CASCADE")
}
