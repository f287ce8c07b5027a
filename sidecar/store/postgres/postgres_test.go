package postgres

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/internal/testpg"
	"github.com/paysidecar/paysidecar/sidecar/store/storetest"
)

// openTest opens a store in a schema of its own, dropped when the test
// ends.
func openTest(t testing.TB, opts ...Option) *Store {
	t.Helper()
	dsn := testpg.DSN(t)
	return openIn(t, dsn, testpg.Schema(t, dsn), opts...)
}

// openIn opens a store in the schema and closes it when the test ends.
func openIn(t testing.TB, dsn, schema string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, append([]Option{WithSchema(schema), WithMaxConns(8)}, opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTest(t) })
}

// TestOpensFirstSchema opens a schema written by the first store
// implementation (testdata/v1.sql, its pg_dump): the store migrates it,
// reads what that implementation read and keeps writing by the same rules.
func TestOpensFirstSchema(t *testing.T) {
	dump, err := os.ReadFile(filepath.Join("testdata", "v1.sql"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dsn := testpg.DSN(t)
	schema := testpg.Schema(t, dsn)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.PgConn().Exec(ctx, strings.ReplaceAll(string(dump), "{{schema}}", schema)).Close(); err != nil {
		t.Fatalf("load the dump: %v", err)
	}
	storetest.CheckV1(t, openIn(t, dsn, schema))
}

// TestKeepsEarlierReconcileTables opens a schema written by the version
// that kept the reconciliation's tables apart from the store, with their
// own migrations (testdata/reconcile_interim.sql, its pg_dump): the
// store's migration keeps the tables, their rows and claims.
func TestKeepsEarlierReconcileTables(t *testing.T) {
	dump, err := os.ReadFile(filepath.Join("testdata", "reconcile_interim.sql"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dsn := testpg.DSN(t)
	schema := testpg.Schema(t, dsn)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.PgConn().Exec(ctx, strings.ReplaceAll(string(dump), "{{schema}}", schema)).Close(); err != nil {
		t.Fatalf("load the dump: %v", err)
	}
	storetest.CheckInterimReconcile(t, openIn(t, dsn, schema))
}

// TestConformanceReplicas runs the suite against three stores sharing one
// schema, each call going to the next: the replicas together must behave
// as one store, and the concurrent subtests spread their claimers over
// separate connection pools.
func TestConformanceReplicas(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		dsn := testpg.DSN(t)
		schema := testpg.Schema(t, dsn)
		return storetest.RoundRobin(openIn(t, dsn, schema), openIn(t, dsn, schema), openIn(t, dsn, schema))
	})
}

// TestConcurrentMigrations starts several replicas at once on an empty
// schema: every Open succeeds and each migration is applied once.
func TestConcurrentMigrations(t *testing.T) {
	dsn := testpg.DSN(t)
	schema := testpg.Schema(t, dsn)
	const replicas = 4
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		stores []*Store
	)
	for range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), dsn, WithSchema(schema), WithMaxConns(2))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			stores = append(stores, s)
		}()
	}
	wg.Wait()
	for _, s := range stores {
		t.Cleanup(func() { _ = s.Close() })
	}
	if len(errs) > 0 {
		t.Fatalf("concurrent Open: %v", errs)
	}
	var applied int
	err := stores[0].db.QueryRowContext(context.Background(),
		`SELECT count(*) FROM goose_db_version WHERE version_id = 1 AND is_applied`).Scan(&applied)
	if err != nil {
		t.Fatalf("read goose_db_version: %v", err)
	}
	if applied != 1 {
		t.Fatalf("migration 1 recorded %d times, want 1", applied)
	}
	for _, s := range stores {
		if _, err := s.CountEvents(context.Background()); err != nil {
			t.Fatalf("CountEvents on a migrated replica: %v", err)
		}
	}
}

// TestSkipLocked checks that a claimer skips an event another transaction
// holds instead of waiting for it.
func TestSkipLocked(t *testing.T) {
	ctx := context.Background()
	dsn := testpg.DSN(t)
	schema := testpg.Schema(t, dsn)
	s := openIn(t, dsn, schema)
	now := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, id := range []string{"evt_held", "evt_free"} {
		e := &store.Event{ID: id, Type: "payment.succeeded", OrderKey: id, Payload: []byte(`{}`), CreatedAt: now}
		if _, err := s.InsertEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	tx := testpg.Lock(t, ctx, dsn, schema, `SELECT 1 FROM events WHERE id = 'evt_held' FOR UPDATE`)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	evs, err := s.ClaimEvents(cctx, store.Claim{Owner: "a", LeaseUntil: now.Add(time.Minute)}, now, 10)
	if err != nil {
		t.Fatalf("ClaimEvents while a row is locked: %v", err)
	}
	if len(evs) != 1 || evs[0].ID != "evt_free" {
		t.Fatalf("claimed %+v, want only evt_free", evs)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err = s.ClaimEvents(ctx, store.Claim{Owner: "b", LeaseUntil: now.Add(time.Minute)}, now, 10)
	if err != nil || len(evs) != 1 || evs[0].ID != "evt_held" {
		t.Fatalf("after the lock is gone: %+v, %v", evs, err)
	}
}

// TestDeadReplicaWorkIsTakenOver closes a replica that holds leases: the
// other replica gets its event and its query once the leases end.
func TestDeadReplicaWorkIsTakenOver(t *testing.T) {
	ctx := context.Background()
	dsn := testpg.DSN(t)
	schema := testpg.Schema(t, dsn)
	dying, survivor := openIn(t, dsn, schema), openIn(t, dsn, schema)
	now := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	e := &store.Event{ID: "evt_1", Type: "payment.succeeded", OrderKey: "pay_1", Payload: []byte(`{}`), CreatedAt: now}
	if _, err := dying.InsertEvent(ctx, e); err != nil {
		t.Fatal(err)
	}
	p := &store.Payment{ID: "pay_1", MerchantID: "m", OutTradeNo: "o", AmountFen: 1, ReqDate: "20250301",
		ReqSeqID: "s", NextQueryAt: now}
	if err := dying.CreatePayment(ctx, p); err != nil {
		t.Fatal(err)
	}
	lease := store.Claim{Owner: "dying", LeaseUntil: now.Add(30 * time.Second)}
	if evs, err := dying.ClaimEvents(ctx, lease, now, 10); err != nil || len(evs) != 1 {
		t.Fatalf("dying replica claimed %v, %v", evs, err)
	}
	if ps, _, err := dying.ClaimDueQueries(ctx, lease, now, 10); err != nil || len(ps) != 1 {
		t.Fatalf("dying replica claimed queries %v, %v", ps, err)
	}
	_ = dying.Close()

	claim := store.Claim{Owner: "survivor", LeaseUntil: now.Add(time.Hour)}
	at := now.Add(29 * time.Second)
	evs, err := survivor.ClaimEvents(ctx, claim, at, 10)
	ps, _, qerr := survivor.ClaimDueQueries(ctx, claim, at, 10)
	if err != nil || qerr != nil || len(evs) != 0 || len(ps) != 0 {
		t.Fatalf("before the lease ends: %v %v %v %v", evs, err, ps, qerr)
	}
	at = now.Add(30 * time.Second)
	evs, err = survivor.ClaimEvents(ctx, claim, at, 10)
	ps, _, qerr = survivor.ClaimDueQueries(ctx, claim, at, 10)
	if err != nil || qerr != nil || len(evs) != 1 || len(ps) != 1 {
		t.Fatalf("after the lease ends: %v %v %v %v", evs, err, ps, qerr)
	}
	if err := survivor.CompleteAttempt(ctx, store.Attempt{EventID: "evt_1", Owner: "survivor", Delivered: true}); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cases := []struct {
		name string
		dsn  string
		opts []Option
		bad  bool // ErrInvalid expected
	}{
		{"schema with quotes", testpg.DefaultDSN, []Option{WithSchema(`x"; DROP TABLE y; --`)}, true},
		{"upper-case schema", testpg.DefaultDSN, []Option{WithSchema("Payments")}, true},
		{"garbage DSN with a password", "postgres://u:s3cret-pw@[::1:5432/db", nil, true},
		{"unreachable server", "postgres://u:s3cret-pw@127.0.0.1:1/db?connect_timeout=2&sslmode=disable", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(ctx, tc.dsn, tc.opts...)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if tc.bad && !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("error %v, want ErrInvalid", err)
			}
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

// openBench opens a store with the default pool in a schema of its own.
func openBench(b *testing.B, opts ...Option) *Store {
	dsn := testpg.DSN(b)
	s, err := Open(context.Background(), dsn, append([]Option{WithSchema(testpg.Schema(b, dsn))}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkRawCommit is the baseline of the store's write benchmarks: the
// rate of single-row transactions committed through a pool of the store's
// default size by Concurrency goroutines, without the store.
func BenchmarkRawCommit(b *testing.B) {
	s := openBench(b)
	db := s.db
	if _, err := db.Exec(`CREATE TABLE raw (id bigint PRIMARY KEY, v text NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	storetest.RunParallel(b, "commits/s", func(i int64) error {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO raw (id, v) VALUES ($1, $2)`, i, "a row of about fifty bytes, like a small event"); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

// BenchmarkStore runs the store's benchmarks (package storetest) with
// the default pool.
func BenchmarkStore(b *testing.B) {
	storetest.Benchmarks(b, func(b *testing.B) store.Store { return openBench(b) })
}
