// Package postgres opens the store of the sidecar for several replicas
// sharing one PostgreSQL database. It uses github.com/jackc/pgx/v5 through
// its database/sql driver (pgx/v5/stdlib) and the shared implementation in
// package store/sqlstore; this package holds only what is PostgreSQL's own:
// the connection pool, the schema, the dialect and the migrations.
//
// Replicas share deduplication, idempotency keys and the outbox. Pending
// work (events to deliver, payments and refunds to query) is claimed with
// SELECT … FOR NO KEY UPDATE SKIP LOCKED and marked with an owner and a
// lease end, so two replicas never hold the same work at once, and the work
// of a replica that dies is claimable again when its lease ends. Events of
// one order key are inserted under a transaction-scoped advisory lock on
// the key, so that their sequence order is also their commit order and a
// claimer never sees a later event of a key before an earlier one.
//
// Writes are committed in groups by a few writer goroutines, each running
// one transaction at a time on a connection of the pool (see package
// sqlstore); reads share the pool. A write that loses a deadlock between
// two groups is run again.
//
// Migrations run under an advisory lock held by one connection, so that
// replicas starting together apply them once.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// orderKeyLockClass is the first key of the advisory locks taken on order
// keys ("pays" in ASCII); the second is a hash of the key.
const orderKeyLockClass = 0x70617973

// Store is the PostgreSQL store: the shared implementation on a pool.
type Store struct {
	*sqlstore.Store
	db *sql.DB
}

var _ store.Store = (*Store)(nil)

type config struct {
	schema   string
	maxConns int
	writers  int
	logger   *slog.Logger
	migrate  bool
}

// Option configures Open.
type Option func(*config)

// WithSchema keeps every table in the named schema, which Open creates when
// missing, by setting the connections' search_path to it. The name must be
// a plain lower-case identifier. Tests use it to isolate themselves.
func WithSchema(name string) Option {
	return func(c *config) { c.schema = name }
}

// DefaultMaxConns is the size of the connection pool when neither
// WithMaxConns nor the DSN's pool_max_conns sets it: the larger of 8 and
// twice GOMAXPROCS. Half the pool writes; a writer spends most of a
// transaction waiting for round trips, so on 2 CPUs four writers commit
// about twice the notifications that two do (BenchmarkStore).
func DefaultMaxConns() int { return max(8, 2*runtime.GOMAXPROCS(0)) }

// WithMaxConns sets the size of the connection pool, writers and readers
// together, overriding pool_max_conns in the DSN; 0 keeps the default and
// 1 counts as 2 (a writer and a reader).
func WithMaxConns(n int) Option {
	return func(c *config) { c.maxConns = n }
}

// WithWriters sets the number of writer goroutines, each holding one
// connection of the pool while it commits a group of writes. The default
// is half the pool.
func WithWriters(n int) Option {
	return func(c *config) { c.writers = n }
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

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value string), creates the schema chosen by WithSchema and applies
// the missing migrations.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg := config{migrate: true}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	// pgxpool's parser knows pool_max_conns and keeps it out of the
	// connection's parameters.
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parse error may quote the DSN, password included.
		return nil, fmt.Errorf("postgres: %w: the DSN does not parse", store.ErrInvalid)
	}
	if cfg.schema != "" {
		if !identifier.MatchString(cfg.schema) {
			return nil, fmt.Errorf("postgres: %w: schema %q is not a plain lower-case identifier", store.ErrInvalid, cfg.schema)
		}
		pcfg.ConnConfig.RuntimeParams["search_path"] = cfg.schema
	}
	maxConns := cfg.maxConns
	if maxConns <= 0 {
		maxConns = DefaultMaxConns()
		if strings.Contains(dsn, "pool_max_conns") {
			maxConns = int(pcfg.MaxConns)
		}
	}
	maxConns = max(maxConns, 2)
	writers := cfg.writers
	if writers <= 0 {
		writers = maxConns / 2
	}
	writers = min(writers, maxConns)
	db := stdlib.OpenDB(*pcfg.ConnConfig)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxLifetime(time.Hour)
	db.SetConnMaxIdleTime(30 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if cfg.schema != "" {
		if err := createSchema(ctx, db, cfg.schema); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	d, err := dialect(cfg.schema)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	ss, err := sqlstore.New(sqlstore.Config{Dialect: d, Writer: db, Reader: db, Writers: writers, Logger: cfg.logger.With("schema", cfg.schema)})
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	s := &Store{Store: ss, db: db}
	if cfg.migrate {
		if err := s.Migrate(ctx); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

func createSchema(ctx context.Context, db *sql.DB, schema string) error {
	_, err := db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize())
	// Two replicas creating the schema at once may race past IF NOT EXISTS.
	if code := pgCode(err); code == "23505" || code == "42P06" {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("postgres: create schema %q: %w", schema, err)
	}
	return nil
}

// dialect returns what PostgreSQL's SQL differs in: numbered parameters,
// timestamptz, row locks for the writers of several connections and
// replicas, and the migration lock of the schema.
func dialect(schema string) (sqlstore.Dialect, error) {
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return sqlstore.Dialect{}, fmt.Errorf("postgres: migrations: %w", err)
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte("paysidecar migrations " + schema))
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(int64(h.Sum64()&0x7fffffffffffffff)),
		lock.WithLockTimeout(1, 300), // retry every second for five minutes
		lock.WithUnlockTimeout(1, 60),
	)
	if err != nil {
		return sqlstore.Dialect{}, fmt.Errorf("postgres: migration lock: %w", err)
	}
	return sqlstore.Dialect{
		Name:           "postgres",
		NumberedParams: true,
		Begin:          "BEGIN",
		TimeType:       "timestamptz",
		Time:           func(t time.Time) any { return t },
		LockRow:        " FOR NO KEY UPDATE",
		LockSkip:       " FOR NO KEY UPDATE SKIP LOCKED",
		JSONType:       "json",
		WritableCTE:    true,
		OrderKeyLock:   fmt.Sprintf("SELECT pg_advisory_xact_lock(%d, hashtext(?))", orderKeyLockClass),
		Unique: func(err error) (string, bool) {
			var e *pgconn.PgError
			if errors.As(err, &e) && e.Code == "23505" {
				return e.ConstraintName, true
			}
			return "", false
		},
		ForeignKey: func(err error) bool { return pgCode(err) == "23503" },
		// Far above any batch's work, far below a caller waiting forever.
		WriteTimeout: 30 * time.Second,
		// Deadlock detected, serialization failure.
		Retry:      func(err error) bool { c := pgCode(err); return c == "40P01" || c == "40001" },
		Goose:      goose.DialectPostgres,
		Migrations: migrations,
		Locker:     locker,
	}, nil
}

// pgCode returns the SQLSTATE of a server error, or "".
func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
