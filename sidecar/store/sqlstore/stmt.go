package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// stmtCache holds the statements prepared on one pool, by query text.
// database/sql prepares a statement on each connection the first time it
// runs there and keeps it, so a query is parsed once per connection for the
// life of the store.
type stmtCache struct {
	db *sql.DB
	d  *Dialect
	mu sync.Mutex
	m  sync.Map // query text → *sql.Stmt
}

func newStmtCache(db *sql.DB, d *Dialect) *stmtCache {
	return &stmtCache{db: db, d: d}
}

// get returns the statement for query, preparing it on first use.
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := c.m.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := c.db.PrepareContext(ctx, c.d.text(query))
	if err != nil {
		return nil, err
	}
	c.m.Store(query, st)
	return st, nil
}

// close closes every prepared statement.
func (c *stmtCache) close() error {
	var errs []error
	c.m.Range(func(_, v any) bool {
		errs = append(errs, v.(*sql.Stmt).Close())
		return true
	})
	return errors.Join(errs...)
}

// text returns query as the engine reads it: with NumberedParams, the ?
// placeholders become $1, $2, … (the store's queries have no ? inside
// literals).
func (d *Dialect) text(query string) string {
	if !d.NumberedParams {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}

// errRow is a row whose statement could not be prepared.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// db runs statements on the read pool, outside any transaction.
type db struct {
	s   *Store
	ctx context.Context
}

// reader returns the read side of s for a call with ctx.
func (s *Store) reader(ctx context.Context) db { return db{s: s, ctx: ctx} }

func (q db) queryRow(query string, args ...any) scanner {
	ctx := q.ctx
	if q.s.d.PointReadsRunToEnd {
		ctx = context.WithoutCancel(ctx)
	}
	st, err := q.s.rs.get(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

func (q db) query(query string, args ...any) (*sql.Rows, error) {
	st, err := q.s.rs.get(q.ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(q.ctx, args...)
}

// writerConn is the connection a writer goroutine holds for its life,
// with the statements prepared on it.
type writerConn struct {
	conn  *sql.Conn
	d     *Dialect
	stmts map[string]*sql.Stmt
}

// newWriterConn takes a connection from the writer pool for good.
func (s *Store) newWriterConn(ctx context.Context) (*writerConn, error) {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return nil, err
	}
	return &writerConn{conn: conn, d: &s.d, stmts: make(map[string]*sql.Stmt)}, nil
}

// stmt returns the statement for query, preparing it on first use.
func (wc *writerConn) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := wc.stmts[query]; ok {
		return st, nil
	}
	st, err := wc.conn.PrepareContext(ctx, wc.d.text(query))
	if err != nil {
		return nil, err
	}
	wc.stmts[query] = st
	return st, nil
}

// close closes the statements and hands the connection back to the pool.
func (wc *writerConn) close() error {
	var errs []error
	for _, st := range wc.stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(append(errs, wc.conn.Close())...)
}

// txn is the transaction of one batch, as the writes see it. The writer
// goroutine begins and ends it with plain statements on its own
// connection. Its statements run with the batch's context (bounded by the
// dialect's WriteTimeout), never a caller's: one caller giving up would
// abort the transaction of all.
type txn struct {
	s     *Store
	ctx   context.Context
	wc    *writerConn
	began time.Time // the batch's BEGIN, for the commit metrics
}

func (t *txn) exec(query string, args ...any) (sql.Result, error) {
	st, err := t.wc.stmt(t.ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(t.ctx, args...)
}

// execCount runs a statement and returns the number of rows it changed.
func (t *txn) execCount(query string, args ...any) (int64, error) {
	res, err := t.exec(query, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("rows affected: %w", err)
	}
	return n, nil
}

func (t *txn) queryRow(query string, args ...any) scanner {
	st, err := t.wc.stmt(t.ctx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(t.ctx, args...)
}

func (t *txn) query(query string, args ...any) (*sql.Rows, error) {
	st, err := t.wc.stmt(t.ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(t.ctx, args...)
}

// scanAll scans every row with scan and closes rows.
func scanAll[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
