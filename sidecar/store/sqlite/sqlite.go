// Package sqlite opens the embedded store of the sidecar: one SQLite file,
// zero set-up, the default for a single replica. It uses modernc.org/sqlite
// (pure Go, no cgo) through database/sql and the shared implementation in
// package store/sqlstore; this package holds only what is SQLite's own:
// the file, the pragmas, the dialect and the migrations.
//
// The database runs in WAL mode with foreign keys on and
// synchronous=FULL. All writes go through one connection, owned by the
// store's single writer goroutine, whose transactions start with BEGIN
// IMMEDIATE and carry every write waiting at that moment (group commit:
// one fsync for all of them, each caller answered after it). Reads use a
// separate pool of read-only connections, which WAL lets run beside the
// writer. A busy timeout covers the rare waits that remain (a checkpoint,
// another process opening the file).
//
// synchronous=FULL makes the WAL reach stable storage before a commit
// returns. NORMAL would survive a killed process but could lose the last
// commits on power loss or a kernel crash; the notification ingress
// acknowledges the upstream, which then never resends, as soon as the
// write returns, so the store pays one fsync per commit instead, and group
// commit shares it.
//
// The file holds payments and their buyers, so Open creates it readable by
// its owner only (0600), whatever the umask, and SQLite gives the -wal and
// -shm files the mode of the database file; a directory Open creates is
// 0700.
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
	"github.com/paysidecar/paysidecar/sidecar/store/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is the SQLite store: the shared implementation on one file.
type Store struct {
	*sqlstore.Store
	w *sql.DB // the writer goroutine's connection, and one for migrations
	r *sql.DB // read-only connections
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
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if err := createFile(path, cfg.logger); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(cfg.busyTimeout.Milliseconds(), 10))
	q.Set("_foreign_keys", "1")
	q.Set("_synchronous", "FULL")
	wq := cloneValues(q)
	wq.Set("_journal_mode", "WAL")
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	// The writer goroutine holds one connection; migrations and Ping use
	// the other.
	w.SetMaxOpenConns(2)
	w.SetMaxIdleConns(2)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// The writer connection is opened first so that it switches the file
	// to WAL before any reader connects.
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	rq := cloneValues(q)
	rq.Set("_query_only", "1")
	r, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %q for reading: %w", path, err)
	}
	readConns := max(cfg.readConns, 1)
	r.SetMaxOpenConns(readConns)
	r.SetMaxIdleConns(readConns)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	ss, err := sqlstore.New(sqlstore.Config{Dialect: dialect(), Writer: w, Reader: r, Writers: 1, Logger: cfg.logger})
	if err != nil {
		return nil, errors.Join(err, r.Close(), w.Close())
	}
	s := &Store{Store: ss, w: w, r: r}
	if cfg.migrate {
		if err := s.Migrate(ctx); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("%w (file %q)", err, path)
		}
	}
	return s, nil
}

// checkPath refuses what is not the path of a file.
func checkPath(path string) error {
	switch {
	case path == "":
		return fmt.Errorf("sqlite: open: %w: empty path", store.ErrInvalid)
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		return fmt.Errorf("sqlite: open %q: %w: the path must name a file", path, store.ErrInvalid)
	case strings.ContainsRune(path, '?'):
		return fmt.Errorf("sqlite: open %q: %w: the path must not contain '?'", path, store.ErrInvalid)
	}
	return nil
}

// createFile creates the missing directories of path (0700) and the
// database file itself, empty and 0600, so that SQLite neither creates it
// with its default mode of 0644 minus the umask nor gives that mode to the
// -wal and -shm files, which take the database file's. An existing file is
// left as it is; one that others may read is logged.
func createFile(path string, log *slog.Logger) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("sqlite: create directory for %q: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("sqlite: create %q: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the SQLite file is readable by others than its owner; chmod 600 it and its -wal and -shm files",
			slog.String("path", path), slog.String("mode", fi.Mode().Perm().String()))
	}
	return nil
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// dialect returns what SQLite's SQL differs in: times are INTEGER
// microseconds since the epoch, and there is no row locking, since one
// writer connection serializes every write.
func dialect() sqlstore.Dialect {
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is always there
	}
	return sqlstore.Dialect{
		Name:               "sqlite",
		Begin:              "BEGIN IMMEDIATE",
		TimeType:           "INTEGER",
		JSONType:           "TEXT",
		LastInsertID:       true,
		PointReadsRunToEnd: true,
		// One writer: nothing to lock.
		OrderKeyLock: "SELECT ?",
		Time:         func(t time.Time) any { return t.UnixMicro() },
		Unique: func(err error) (string, bool) {
			if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) || isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
				return err.Error(), true
			}
			return "", false
		},
		ForeignKey: func(err error) bool { return isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) },
		Retry:      func(error) bool { return false },
		Goose:      goose.DialectSQLite3,
		Migrations: migrations,
	}
}

// isConstraint reports whether err is a constraint violation of the given
// extended code.
func isConstraint(err error, code int) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == code
}
