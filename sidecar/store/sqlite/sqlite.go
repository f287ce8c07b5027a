// Package sqlite is the embedded store of the sidecar: one SQLite file,
// zero set-up, the default for a single replica. It uses modernc.org/sqlite
// (pure Go, no cgo).
//
// The database runs in WAL mode with foreign keys on and
// synchronous=FULL. All writes go through one connection, whose
// transactions start with BEGIN IMMEDIATE, so writers of this process queue
// in Go instead of failing with SQLITE_BUSY; reads use a separate pool of
// read-only connections, which WAL lets run beside the writer. A busy
// timeout covers the rare waits that remain (a checkpoint, another process
// opening the file).
//
// synchronous=FULL makes the WAL reach stable storage before a commit
// returns. NORMAL would survive a killed process but could lose the last
// commits on power loss or a kernel crash; the notification ingress
// acknowledges the upstream, which then never resends, as soon as the
// write returns, so the store pays one fsync per commit instead.
//
// One process owns a database file at a time.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is the SQLite implementation of store.Store.
type Store struct {
	path   string
	w      *sql.DB // the single writer connection
	r      *sql.DB // read-only connections
	logger *slog.Logger
}

var _ store.Store = (*Store)(nil)

type config struct {
	busyTimeout time.Duration
	readConns   int
	logger      *slog.Logger
	migrate     bool
}

// Option configures Open.
type Option func(*config)

// WithBusyTimeout sets how long a connection waits for a lock held by
// another connection before it fails. The default is 10 seconds.
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) { c.busyTimeout = d }
}

// WithReadConns sets the size of the read-only connection pool. The default
// is 4.
func WithReadConns(n int) Option {
	return func(c *config) { c.readConns = n }
}

// WithLogger sets the logger for migration messages. The default is
// slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithoutMigrate makes Open skip the schema migrations; the caller runs
// Migrate itself.
func WithoutMigrate() Option {
	return func(c *config) { c.migrate = false }
}

// Open opens (or creates) the database file at path, creating its directory
// when missing, and applies the missing migrations.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	cfg := config{busyTimeout: 10 * time.Second, readConns: 4, migrate: true}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if path == "" {
		return nil, fmt.Errorf("sqlite: open: %w: empty path", store.ErrInvalid)
	}
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: open %q: %w: the path must name a file", path, store.ErrInvalid)
	}
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("sqlite: open %q: %w: the path must not contain '?'", path, store.ErrInvalid)
	}
	if cfg.readConns < 1 {
		cfg.readConns = 1
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sqlite: create directory for %q: %w", path, err)
		}
	}
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(cfg.busyTimeout.Milliseconds(), 10))
	q.Set("_foreign_keys", "1")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	wq := cloneValues(q)
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// The writer connection is opened first so that it creates the file
	// and switches it to WAL before any reader connects.
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	rq := cloneValues(q)
	rq.Del("_journal_mode")
	rq.Set("_query_only", "1")
	r, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %q for reading: %w", path, err)
	}
	r.SetMaxOpenConns(cfg.readConns)
	r.SetMaxIdleConns(cfg.readConns)
	s := &Store{path: path, w: w, r: r, logger: cfg.logger}
	if cfg.migrate {
		if err := s.Migrate(ctx); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// Migrate applies the missing schema migrations.
func (s *Store) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	// The provider is not closed: Close would close the writer pool.
	p, err := goose.NewProvider(goose.DialectSQLite3, s.w, fsys,
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(s.logger.With("store", "sqlite")),
	)
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlite: migrate %q: %w", s.path, err)
	}
	return nil
}

// Close closes both connection pools.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// Ping checks that the database answers a query on both pools.
func (s *Store) Ping(ctx context.Context) error {
	for _, db := range []*sql.DB{s.w, s.r} {
		var one int
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			return fmt.Errorf("sqlite: ping %q: %w", s.path, err)
		}
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// write runs fn in one IMMEDIATE transaction on the writer connection.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// dbTime converts t to the stored form: microseconds since the epoch, or
// NULL for the zero time.
func dbTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// goTime converts a stored time back.
func goTime(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

// dbJSON converts raw JSON to the stored form, NULL when empty.
func dbJSON(raw []byte) any {
	if len(raw) == 0 {
		return nil
	}
	return string(raw)
}

// goJSON converts stored JSON back.
func goJSON(v sql.NullString) []byte {
	if !v.Valid || v.String == "" {
		return nil
	}
	return []byte(v.String)
}

// isConstraint reports whether err is a constraint violation of the given
// extended code.
func isConstraint(err error, code int) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == code
}

// conflict turns a unique-constraint violation into store.ErrConflict,
// naming the key that was taken; other errors are returned as they are.
func conflict(err error, what string) error {
	if !isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) && !isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return err
	}
	msg := err.Error()
	key := "id"
	switch {
	case strings.Contains(msg, "out_trade_no"):
		key = "out_trade_no"
	case strings.Contains(msg, "out_refund_no"):
		key = "out_refund_no"
	case strings.Contains(msg, "req_seq_id"):
		key = "req_seq_id"
	}
	return fmt.Errorf("%w: %s %s already exists", store.ErrConflict, what, key)
}

// affected returns the number of rows a statement changed.
func affected(res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("rows affected: %w", err)
	}
	return n, nil
}
