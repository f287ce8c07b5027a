// Package postgres is the store of the sidecar for several replicas sharing
// one PostgreSQL database, using github.com/jackc/pgx/v5 (pgxpool).
//
// Replicas share deduplication, idempotency keys and the outbox. Pending
// work (events to deliver, payments and refunds to query) is claimed with
// SELECT … FOR UPDATE SKIP LOCKED and marked with an owner and a lease end,
// so two replicas never hold the same work at once, and the work of a
// replica that dies is claimable again when its lease ends. Events of one
// order key are inserted under a transaction-scoped advisory lock on the
// key, so that their sequence order is also their commit order and a
// claimer never sees a later event of a key before an earlier one.
//
// Migrations run under an advisory lock held by one connection, so that
// replicas starting together apply them once.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// orderKeyLockClass is the first key of the advisory locks taken on order
// keys ("pays" in ASCII); the second is a hash of the key.
const orderKeyLockClass = 0x70617973

// Store is the PostgreSQL implementation of store.Store.
type Store struct {
	pool   *pgxpool.Pool
	schema string
	logger *slog.Logger
}

var _ store.Store = (*Store)(nil)

type config struct {
	schema   string
	maxConns int32
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

// WithMaxConns sets the size of the connection pool. The default is
// pgxpool's (the larger of 4 and the number of CPUs), or pool_max_conns
// from the DSN.
func WithMaxConns(n int32) Option {
	return func(c *config) { c.maxConns = n }
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
	if cfg.maxConns > 0 {
		pcfg.MaxConns = cfg.maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	s := &Store{pool: pool, schema: cfg.schema, logger: cfg.logger}
	if cfg.schema != "" {
		if err := s.createSchema(ctx); err != nil {
			pool.Close()
			return nil, err
		}
	}
	if cfg.migrate {
		if err := s.Migrate(ctx); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *Store) createSchema(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{s.schema}.Sanitize())
	var pgErr *pgconn.PgError
	// Two replicas creating the schema at once may race past IF NOT EXISTS.
	if errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "42P06") {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("postgres: create schema %q: %w", s.schema, err)
	}
	return nil
}

// migrationLockID is the advisory lock that serializes migrations of this
// schema across replicas.
func (s *Store) migrationLockID() int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("paysidecar migrations " + s.schema))
	return int64(h.Sum64() & 0x7fffffffffffffff)
}

// Migrate applies the missing schema migrations under an advisory lock.
func (s *Store) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(s.migrationLockID()),
		lock.WithLockTimeout(1, 300), // retry every second for five minutes
		lock.WithUnlockTimeout(1, 60),
	)
	if err != nil {
		return fmt.Errorf("postgres: migration lock: %w", err)
	}
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close() // does not close the pool
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithDisableGlobalRegistry(true),
		goose.WithSessionLocker(locker),
		goose.WithSlog(s.logger.With("store", "postgres", "schema", s.schema)),
	)
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// Close closes the connection pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// tx runs fn in one transaction.
func (s *Store) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, fn)
}

// dbTime converts t to a parameter, NULL for the zero time.
func dbTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// goTime converts a scanned nullable time back, in UTC.
func goTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// dbJSON converts raw JSON to a parameter, NULL when empty.
func dbJSON(raw []byte) any {
	if len(raw) == 0 {
		return nil
	}
	return string(raw)
}

// goJSON converts scanned JSON back, nil when NULL or empty.
func goJSON(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// conflict turns a unique violation into store.ErrConflict, naming the key
// that was taken; other errors are returned as they are.
func conflict(err error, what string) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		return err
	}
	key := "id"
	for _, k := range []string{"out_trade_no", "out_refund_no", "req_seq_id"} {
		if strings.Contains(pgErr.ConstraintName, k) {
			key = k
		}
	}
	return fmt.Errorf("%w: %s %s already exists", store.ErrConflict, what, key)
}
