// Package sqlstore keeps reconciliation runs and reads the ledger for
// package reconcile on database/sql, for SQLite and PostgreSQL.
//
// It reads the store's payments and refunds tables as they are and owns two
// tables of its own, reconcile_runs and reconcile_differences, created by
// its goose migrations, versioned in their own table
// (reconcile_goose_db_version) so that they never interfere with the
// store's. It implements reconcile.LedgerReader and reconcile.RunStore
// until the store offers them itself; its queries and migrations are meant
// to move into the store unchanged.
//
// The ledger is read by one query for payments and one for refunds, each
// ordered by serial in byte order (COLLATE "C" on PostgreSQL, whose default
// collation is not byte order), streamed row by row and merged; nothing is
// held whole in memory.
package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/reconcile"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

//go:embed migrations
var migrations embed.FS

// Dialect is the SQL engine.
type Dialect string

// The dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Store implements reconcile.LedgerReader and reconcile.RunStore.
type Store struct {
	db *sql.DB
	d  Dialect
}

var (
	_ reconcile.LedgerReader = (*Store)(nil)
	_ reconcile.RunStore     = (*Store)(nil)
)

// New returns a Store on db, an open database of dialect d that holds the
// store's tables.
func New(db *sql.DB, d Dialect) *Store { return &Store{db: db, d: d} }

// Open opens the database the sidecar's store uses: driver "sqlite" with
// path, or "postgres" with a connection string. SQLite transactions take
// the write lock when they begin, and wait for it, so that claims from
// several goroutines queue instead of failing.
func Open(driver, dsn string) (*Store, error) {
	switch driver {
	case "sqlite":
		if dsn == "" || strings.ContainsRune(dsn, '?') {
			return nil, fmt.Errorf("sqlstore: %q is not a SQLite file path", dsn)
		}
		q := url.Values{}
		q.Set("_busy_timeout", "10000")
		q.Set("_foreign_keys", "1")
		q.Set("_journal_mode", "WAL")
		q.Set("_synchronous", "FULL")
		q.Set("_txlock", "immediate")
		db, err := sql.Open("sqlite", dsn+"?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("sqlstore: open %s: %w", dsn, err)
		}
		db.SetMaxOpenConns(4)
		return New(db, SQLite), nil
	case "postgres":
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: open postgres: %w", err)
		}
		db.SetMaxOpenConns(4)
		return New(db, Postgres), nil
	}
	return nil, fmt.Errorf("sqlstore: unknown driver %q", driver)
}

// DB returns the database.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Migrate creates or updates the reconciliation tables.
func (s *Store) Migrate(ctx context.Context, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	sub, err := fs.Sub(migrations, "migrations/"+string(s.d))
	if err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	dialect := goose.DialectSQLite3
	if s.d == Postgres {
		dialect = goose.DialectPostgres
	}
	p, err := goose.NewProvider(dialect, s.db, sub, goose.WithDisableGlobalRegistry(true),
		goose.WithTableName("reconcile_goose_db_version"), goose.WithSlog(log.With("component", "reconcile")))
	if err != nil {
		return fmt.Errorf("sqlstore: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	return nil
}

// q rewrites ? placeholders for PostgreSQL.
func (s *Store) q(query string) string {
	if s.d != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// t is a time as a query argument.
func (s *Store) t(v time.Time) any {
	if v.IsZero() {
		return nil
	}
	if s.d == Postgres {
		return v.UTC()
	}
	return v.UTC().UnixMicro()
}

// scanTime reads a time column of either engine.
func scanTime(v any) time.Time {
	switch x := v.(type) {
	case int64:
		return time.UnixMicro(x).UTC()
	case time.Time:
		return x.UTC()
	}
	return time.Time{}
}

const (
	paymentColumns = `'payment', p.id, p.merchant_id, p.req_date, p.req_seq_id, p.nkp_seq_id, p.amount_fen, p.status, p.finished_at,
       p.upstream_fields, p.refunded_fen, '', '', 0, 0`
	refundColumns = `'refund', r.id, r.merchant_id, r.req_date, r.req_seq_id, r.nkp_seq_id, r.amount_fen, r.status, r.finished_at,
       r.upstream_fields, 0, p.req_date, p.req_seq_id, p.amount_fen, p.refunded_fen`
	// The window: final in [from, to), or not final and created before
	// to.
	paymentWindow = `p.merchant_id = ? AND ((p.finished_at >= ? AND p.finished_at < ?) OR (p.status IN ('pending', 'processing') AND p.created_at < ?))`
	refundWindow  = `r.merchant_id = ? AND ((r.finished_at >= ? AND r.finished_at < ?) OR (r.status IN ('pending', 'processing') AND r.created_at < ?))`
)

// Entries implements reconcile.LedgerReader. Payments and refunds are read
// by two queries, each in serial order (on SQLite straight from the
// tables' unique serial indexes, with no sort), and merged.
func (s *Store) Entries(ctx context.Context, merchantID string, from, to time.Time, fn func(reconcile.Entry) error) error {
	order := func(t string) string {
		if s.d == Postgres {
			return t + `.req_date COLLATE "C", ` + t + `.req_seq_id COLLATE "C"`
		}
		return t + ".req_date, " + t + ".req_seq_id"
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pays, err := s.db.QueryContext(ctx, s.q(`SELECT `+paymentColumns+` FROM payments p WHERE `+paymentWindow+` ORDER BY `+order("p")),
		merchantID, s.t(from), s.t(to), s.t(to))
	if err != nil {
		return fmt.Errorf("sqlstore: read payments: %w", err)
	}
	defer func() { _ = pays.Close() }()
	refs, err := s.db.QueryContext(ctx, s.q(`SELECT `+refundColumns+` FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE `+refundWindow+` ORDER BY `+order("r")),
		merchantID, s.t(from), s.t(to), s.t(to))
	if err != nil {
		return fmt.Errorf("sqlstore: read refunds: %w", err)
	}
	defer func() { _ = refs.Close() }()
	next := func(rows *sql.Rows) (*reconcile.Entry, error) {
		if !rows.Next() {
			if err := rows.Err(); err != nil {
				return nil, fmt.Errorf("sqlstore: read the ledger: %w", err)
			}
			return nil, nil
		}
		e, err := scanEntry(rows)
		return &e, err
	}
	p, err := next(pays)
	if err != nil {
		return err
	}
	r, err := next(refs)
	if err != nil {
		return err
	}
	for p != nil || r != nil {
		takeP := r == nil || (p != nil && (p.ReqDate < r.ReqDate || (p.ReqDate == r.ReqDate && p.ReqSeqID <= r.ReqSeqID)))
		if takeP {
			if err := fn(*p); err != nil {
				return err
			}
			if p, err = next(pays); err != nil {
				return err
			}
			continue
		}
		if err := fn(*r); err != nil {
			return err
		}
		if r, err = next(refs); err != nil {
			return err
		}
	}
	return nil
}

func scanEntry(rows interface{ Scan(...any) error }) (reconcile.Entry, error) {
	var e reconcile.Entry
	var status string
	var finished any
	var upstream []byte
	var amount, refunded, pAmount, pRefunded int64
	if err := rows.Scan(&e.Kind, &e.ID, &e.MerchantID, &e.ReqDate, &e.ReqSeqID, &e.NkpSeqID, &amount, &status, &finished, &upstream,
		&refunded, &e.PaymentReqDate, &e.PaymentReqSeqID, &pAmount, &pRefunded); err != nil {
		return e, fmt.Errorf("sqlstore: read the ledger: %w", err)
	}
	e.Status = store.Status(status)
	e.Amount, e.Refunded, e.PaymentAmount, e.PaymentRefunded = nkp.Fen(amount), nkp.Fen(refunded), nkp.Fen(pAmount), nkp.Fen(pRefunded)
	if e.Status.Final() {
		e.EndTime = endTime(upstream)
		if e.EndTime.IsZero() {
			e.EndTime = scanTime(finished)
		}
	}
	return e, nil
}

var endTimeKey = []byte(`"end_time":"`)

// endTime finds end_time in the verified upstream fields stored with a
// payment or refund, without decoding the rest.
func endTime(upstream []byte) time.Time {
	i := bytes.Index(upstream, endTimeKey)
	if i < 0 {
		return time.Time{}
	}
	v := upstream[i+len(endTimeKey):]
	if len(v) < 14 {
		return time.Time{}
	}
	t, err := nkp.ParseTimestamp(string(v[:14]))
	if err != nil {
		return time.Time{}
	}
	return t
}

// Lookup implements reconcile.LedgerReader.
func (s *Store) Lookup(ctx context.Context, merchantID, reqDate, reqSeqID string) (reconcile.Entry, bool, error) {
	const q = `SELECT ` + paymentColumns + ` FROM payments p WHERE p.merchant_id = ? AND p.req_date = ? AND p.req_seq_id = ?
UNION ALL
SELECT ` + refundColumns + ` FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE r.merchant_id = ? AND r.req_date = ? AND r.req_seq_id = ?`
	row := s.db.QueryRowContext(ctx, s.q(q), merchantID, reqDate, reqSeqID, merchantID, reqDate, reqSeqID)
	e, err := scanEntry(row)
	if errors.Is(err, sql.ErrNoRows) {
		return reconcile.Entry{}, false, nil
	}
	if err != nil {
		return reconcile.Entry{}, false, err
	}
	return e, true, nil
}

// StartRun implements reconcile.RunStore.
func (s *Store) StartRun(ctx context.Context, r reconcile.RunStart) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("sqlstore: start run: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var claim any
	if r.Exclusive {
		key := r.MerchantID + "/" + r.Date
		claim = key
		// An owner that stopped answering loses its claim.
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE reconcile_runs SET claim_key = NULL
WHERE claim_key = ? AND status = 'running' AND lease_until < ?`), key, s.t(r.StartedAt)); err != nil {
			return false, fmt.Errorf("sqlstore: start run: %w", err)
		}
	}
	res, err := tx.ExecContext(ctx, s.q(`INSERT INTO reconcile_runs (id, merchant_id, bill_date, run_trigger, status, owner, claim_key, lease_until, started_at)
VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?) ON CONFLICT (claim_key) DO NOTHING`),
		r.ID, r.MerchantID, r.Date, r.Trigger, r.Owner, claim, s.t(r.LeaseUntil), s.t(r.StartedAt))
	if err != nil {
		return false, fmt.Errorf("sqlstore: start run: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlstore: start run: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("sqlstore: start run: %w", err)
	}
	return n == 1, nil
}

// AddDifferences implements reconcile.RunStore.
func (s *Store) AddDifferences(ctx context.Context, runID string, diffs []reconcile.Difference) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: add differences: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	stmt, err := tx.PrepareContext(ctx, s.q(`INSERT INTO reconcile_differences (run_id, seq, kind, req_seq_id, body) VALUES (?, ?, ?, ?, ?)`))
	if err != nil {
		return fmt.Errorf("sqlstore: add differences: %w", err)
	}
	defer func() { _ = stmt.Close() }()
	for _, d := range diffs {
		body, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("sqlstore: encode difference: %w", err)
		}
		if _, err := stmt.ExecContext(ctx, runID, d.Seq, string(d.Kind), d.ReqSeqID, string(body)); err != nil {
			return fmt.Errorf("sqlstore: add differences: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: add differences: %w", err)
	}
	return nil
}

// FinishRun implements reconcile.RunStore.
func (s *Store) FinishRun(ctx context.Context, rep reconcile.Report) error {
	rep.Differences = nil
	body, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("sqlstore: encode run: %w", err)
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE reconcile_runs SET status = ?, finished_at = ?, differences = ?, report = ?, error = ?,
  claim_key = CASE WHEN ? = 'failed' THEN NULL ELSE claim_key END
WHERE id = ?`), rep.Status, s.t(rep.FinishedAt), rep.Total(), string(body), rep.Error, rep.Status, rep.RunID)
	if err != nil {
		return fmt.Errorf("sqlstore: finish run: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("sqlstore: finish run %s: %w", rep.RunID, reconcile.ErrRunNotFound)
	}
	return nil
}

const runColumns = `id, merchant_id, bill_date, run_trigger, status, started_at, finished_at, error, report`

func scanRun(row interface{ Scan(...any) error }) (reconcile.Report, error) {
	var rep reconcile.Report
	var started, finished any
	var body []byte
	var id, merchant, date, trigger, status, errText string
	if err := row.Scan(&id, &merchant, &date, &trigger, &status, &started, &finished, &errText, &body); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return rep, reconcile.ErrRunNotFound
		}
		return rep, fmt.Errorf("sqlstore: read run: %w", err)
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &rep); err != nil {
			return rep, fmt.Errorf("sqlstore: decode run %s: %w", id, err)
		}
	}
	rep.RunID, rep.MerchantID, rep.Date, rep.Trigger, rep.Status, rep.Error = id, merchant, date, trigger, status, errText
	rep.StartedAt, rep.FinishedAt = scanTime(started), scanTime(finished)
	return rep, nil
}

// GetRun implements reconcile.RunStore.
func (s *Store) GetRun(ctx context.Context, id string) (reconcile.Report, error) {
	return scanRun(s.db.QueryRowContext(ctx, s.q(`SELECT `+runColumns+` FROM reconcile_runs WHERE id = ?`), id))
}

// LatestRun implements reconcile.RunStore.
func (s *Store) LatestRun(ctx context.Context, merchantID, date string) (reconcile.Report, error) {
	return scanRun(s.db.QueryRowContext(ctx, s.q(`SELECT `+runColumns+` FROM reconcile_runs
WHERE merchant_id = ? AND bill_date = ? ORDER BY started_at DESC, id DESC LIMIT 1`), merchantID, date))
}

// ListRuns implements reconcile.RunStore.
func (s *Store) ListRuns(ctx context.Context, merchantID string, before time.Time, limit int) ([]reconcile.Report, error) {
	if before.IsZero() {
		before = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+runColumns+` FROM reconcile_runs
WHERE merchant_id = ? AND started_at < ? ORDER BY started_at DESC, id DESC LIMIT ?`), merchantID, s.t(before), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list runs: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := []reconcile.Report{}
	for rows.Next() {
		rep, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, rep)
	}
	return out, rows.Err()
}

// ListDifferences implements reconcile.RunStore.
func (s *Store) ListDifferences(ctx context.Context, runID string, afterSeq, limit int) ([]reconcile.Difference, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT body FROM reconcile_differences WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?`), runID, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list differences: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := []reconcile.Difference{}
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("sqlstore: list differences: %w", err)
		}
		var d reconcile.Difference
		if err := json.Unmarshal(body, &d); err != nil {
			return nil, fmt.Errorf("sqlstore: decode difference: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
