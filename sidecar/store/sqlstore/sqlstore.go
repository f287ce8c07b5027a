// Package sqlstore is the one implementation of store.Store, on
// database/sql. The engines differ only in what a Dialect holds: how
// placeholders and times are written, how rows are locked, how a unique or
// foreign-key violation is recognized, and the migrations. Packages
// store/sqlite and store/postgres open the connection pools, build their
// dialect and hand both to New.
//
// # Group commit
//
// Every write goes through the store's committer: one or more writers,
// each holding one connection, run the writes queued by callers, as many
// of them as are waiting (up to a bound) in one transaction, then commit
// once. Concurrent writers therefore share one commit and one fsync. The
// committer's goroutines, owned by the store, take what is queued; a write
// that finds a writer idle and nothing queued runs at once on its caller's
// goroutine, in a batch of its own as a writer goroutine would have run
// it, which spares the two hand-offs between goroutines. The invariants:
//
//   - A caller is answered only after the commit of the transaction that
//     holds its write: a nil error means the write is durable (on SQLite
//     with synchronous=FULL, on PostgreSQL with its default synchronous
//     commit).
//   - One caller's failing write is reported to that caller alone and
//     leaves nothing; the others in the batch commit. The batch first runs
//     with nothing between its writes; when one fails, that transaction is
//     rolled back and the batch runs again with a savepoint around each
//     write, the failing one rolled back to its savepoint.
//   - A caller whose context ends before its write starts is answered with
//     the context's error, and its write never runs. Once the write has
//     started it runs to the end, and the caller waits for the commit
//     outcome whatever its context says, so that an answer is never a
//     guess.
//   - A write that loses a deadlock or a serialization conflict
//     (PostgreSQL, between replicas or writers) is rolled back and run
//     again in a later batch, a few times at most. A write may therefore
//     run more than once before it commits, and sets its results afresh
//     each time.
//
// Statements are prepared once per connection and kept for the life of the
// store. Reads do not go through the committer: on SQLite they use a pool
// of read-only connections beside the single writer connection; on
// PostgreSQL they share the pool with the writers.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

// Dialect is what the engines differ in. The shared queries are written
// with ? placeholders and the fragments below.
type Dialect struct {
	// Name prefixes every error of the store: "sqlite", "postgres".
	Name string
	// NumberedParams rewrites the ? placeholders to $1, $2, … when the
	// statements are prepared.
	NumberedParams bool
	// Begin starts a write transaction: "BEGIN IMMEDIATE" on SQLite, so
	// that the write lock is taken at once, "BEGIN" on PostgreSQL.
	Begin string
	// TimeType is the column type of times, used where a parameter's type
	// must be spelt out (CAST(? AS TimeType)).
	TimeType string
	// Time converts a non-zero time, already in UTC and truncated to the
	// microsecond, to a query parameter.
	Time func(t time.Time) any
	// LockRow is appended to a SELECT of one row that the transaction then
	// updates, so that a concurrent writer waits for the commit ("" when
	// the engine has a single writer).
	LockRow string
	// LockSkip is appended to a SELECT of rows to claim, so that rows
	// another transaction is claiming are skipped, not waited for.
	LockSkip string
	// LastInsertID means the driver reports the key of an inserted row
	// (sql.Result.LastInsertId), so an insert needs no RETURNING clause,
	// which costs SQLite an ephemeral table and the driver a row set.
	LastInsertID bool
	// WritableCTE means the engine runs an INSERT or UPDATE inside WITH
	// (PostgreSQL), so that statements a write runs one after another are
	// sent as one: a notification's write then costs two round trips to
	// the server instead of four.
	WritableCTE bool
	// JSONType is the column type of JSON, used like TimeType.
	JSONType string
	// OrderKeyLock is a SELECT of one row with one parameter, an event's
	// order key, which the insert of the event reads from before it draws
	// the event's Seq. Where several transactions insert events at once
	// (PostgreSQL) it takes a lock on the key held until the transaction
	// ends, so that the events of one key commit in the order of their
	// Seq.
	OrderKeyLock string
	// Unique reports whether err is a unique-key violation and, if so, a
	// text naming the key (constraint or columns).
	Unique func(err error) (key string, ok bool)
	// ForeignKey reports whether err is a foreign-key violation.
	ForeignKey func(err error) bool
	// Retry reports whether err is a deadlock or serialization failure
	// after which the same write may simply be run again.
	Retry func(err error) bool
	// PointReadsRunToEnd means a read of one row runs without its
	// caller's cancellation (SQLite): such a read takes microseconds, and a
	// cancellable one costs more than that, since both database/sql and
	// the driver start a goroutine per statement to watch the context.
	PointReadsRunToEnd bool
	// WriteTimeout, when positive, bounds each batch's transaction, so
	// that a server that stops answering fails the writes waiting for it
	// instead of holding them forever; the writer then takes a new
	// connection. Zero means no bound (SQLite, whose waits the busy
	// timeout bounds).
	WriteTimeout time.Duration
	// Goose, Migrations and Locker are handed to goose for Migrate; Locker
	// may be nil.
	Goose      goose.Dialect
	Migrations fs.FS
	Locker     lock.SessionLocker
}

// Config is what New needs.
type Config struct {
	Dialect Dialect
	// Writer is the pool the committer writes through: each writer
	// goroutine holds one of its connections for good, and Migrate and
	// Ping use another. Reader serves the reads and may be Writer itself.
	// The store closes both.
	Writer, Reader *sql.DB
	// Writers is the number of writer goroutines, each running one
	// transaction at a time; at least 1 (SQLite must have exactly 1).
	Writers int
	// MaxBatch bounds the number of writes in one transaction; 0 means
	// 256.
	MaxBatch int
	// Logger receives migration messages; slog.Default when nil.
	Logger *slog.Logger
}

// Store is the database/sql implementation of store.Store. Its methods are
// safe for concurrent use.
type Store struct {
	d      Dialect
	w, r   *sql.DB
	rs     *stmtCache // the read pool's statements
	c      *committer
	m      *metrics
	logger *slog.Logger
}

var _ store.Store = (*Store)(nil)

// ErrClosed is returned by a write submitted after Close.
var ErrClosed = errors.New("store closed")

// New returns a store on the pools of cfg and starts its committer. It
// does not migrate; the caller runs Migrate.
func New(cfg Config) (*Store, error) {
	d := cfg.Dialect
	if cfg.Writer == nil || cfg.Reader == nil || d.Name == "" || d.Begin == "" || d.TimeType == "" || d.JSONType == "" ||
		d.OrderKeyLock == "" || d.Time == nil || d.Unique == nil ||
		d.ForeignKey == nil || d.Retry == nil || d.Migrations == nil {
		return nil, errors.New("sqlstore: incomplete configuration")
	}
	if cfg.Writers < 1 {
		cfg.Writers = 1
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Store{
		d: d,
		w: cfg.Writer,
		r: cfg.Reader,

		m:      newMetrics(d.Name),
		logger: cfg.Logger,
	}
	s.rs = newStmtCache(cfg.Reader, &s.d)
	s.c = newCommitter(s, cfg.Writers, cfg.MaxBatch)
	return s, nil
}

// Migrate applies the missing schema migrations. With a Locker in the
// dialect, replicas starting together apply each migration once.
func (s *Store) Migrate(ctx context.Context) error {
	opts := []goose.ProviderOption{
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(s.logger.With("store", s.d.Name)),
	}
	if s.d.Locker != nil {
		opts = append(opts, goose.WithSessionLocker(s.d.Locker))
	}
	// The provider is not closed: Close would close the writer pool.
	p, err := goose.NewProvider(s.d.Goose, s.w, s.d.Migrations, opts...)
	if err != nil {
		return fmt.Errorf("%s: migrations: %w", s.d.Name, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("%s: migrate: %w", s.d.Name, err)
	}
	return nil
}

// Close answers the writes already queued, stops the committer and closes
// the pools.
func (s *Store) Close() error {
	s.c.close()
	errs := []error{s.rs.close(), s.w.Close()}
	if s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	return errors.Join(errs...)
}

// Ping checks that the database answers a query on each pool.
func (s *Store) Ping(ctx context.Context) error {
	dbs := []*sql.DB{s.w}
	if s.r != s.w {
		dbs = append(dbs, s.r)
	}
	for _, db := range dbs {
		var one int
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			return fmt.Errorf("%s: ping: %w", s.d.Name, err)
		}
	}
	return nil
}

// errorf wraps err with the dialect's name and the operation.
func (s *Store) errorf(format string, args ...any) error {
	return fmt.Errorf(s.d.Name+": "+format, args...)
}

// time converts t to a parameter, NULL for the zero time.
func (s *Store) time(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.d.Time(t.UTC().Truncate(time.Microsecond))
}

// nullTime scans a stored time, whatever form the engine returns it in:
// microseconds since the epoch (SQLite) or a time (PostgreSQL). NULL is the
// zero time; values are in UTC.
type nullTime struct{ t *time.Time }

// Scan implements sql.Scanner.
func (n nullTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*n.t = time.Time{}
	case int64:
		*n.t = time.UnixMicro(v).UTC()
	case time.Time:
		*n.t = v.UTC()
	default:
		return fmt.Errorf("scan time: unexpected %T", src)
	}
	return nil
}

// tm returns a scanner for *t.
func tm(t *time.Time) nullTime { return nullTime{t} }

// dbJSON converts raw JSON to a parameter, NULL when empty.
func dbJSON(raw []byte) any {
	if len(raw) == 0 {
		return nil
	}
	return string(raw)
}

// rawJSON scans stored JSON: nil when NULL or empty.
type rawJSON[T ~[]byte] struct{ b *T }

// Scan implements sql.Scanner.
func (j rawJSON[T]) Scan(src any) error {
	*j.b = nil
	switch v := src.(type) {
	case nil:
	case string:
		if v != "" {
			*j.b = T(v)
		}
	case []byte:
		if len(v) > 0 {
			*j.b = T(append([]byte(nil), v...))
		}
	default:
		return fmt.Errorf("scan JSON: unexpected %T", src)
	}
	return nil
}

// js returns a scanner for raw JSON into *b.
func js[T ~[]byte](b *T) rawJSON[T] { return rawJSON[T]{b} }

// conflict turns a unique-key violation into store.ErrConflict naming the
// key that was taken; other errors are returned as they are.
func (s *Store) conflict(err error, what string) error {
	if err == nil {
		return nil
	}
	name, ok := s.d.Unique(err)
	if !ok {
		return err
	}
	key := "id"
	for _, k := range []string{"out_trade_no", "out_refund_no", "req_seq_id"} {
		if strings.Contains(name, k) {
			key = k
		}
	}
	return fmt.Errorf("%w: %s %s already exists", store.ErrConflict, what, key)
}

// found turns the count of rows a statement changed into
// store.ErrNotFound when it is zero.
func found(n int64, err error) error {
	if err == nil && n == 0 {
		return store.ErrNotFound
	}
	return err
}

// get reads one row on the read pool with scan; what names the call in
// the error.
func get[T any](s *Store, ctx context.Context, scan func(scanner) (T, error), what, query string, args ...any) (T, error) {
	v, err := scan(s.reader(ctx).queryRow(query, args...))
	if err != nil {
		return v, s.errorf("%s: %w", what, err)
	}
	return v, nil
}

// notFound turns sql.ErrNoRows into store.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}
