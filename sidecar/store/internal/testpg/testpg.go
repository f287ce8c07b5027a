// Package testpg finds the PostgreSQL server of the tests and gives each
// test a schema of its own.
package testpg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultDSN is the test server's DSN when PAYSIDECAR_TEST_POSTGRES_DSN is
// not set.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var (
	reachOnce sync.Once
	reachErr  error
)

// DSN returns the DSN of the test server. An unreachable server fails the
// test when CI is set and skips it otherwise.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("PAYSIDECAR_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = DefaultDSN
	}
	reachOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			reachErr = err
			return
		}
		reachErr = conn.Ping(ctx)
		_ = conn.Close(ctx)
	})
	if reachErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL at PAYSIDECAR_TEST_POSTGRES_DSN (default %s) is unreachable: %v", DefaultDSN, reachErr)
		}
		t.Skipf("PostgreSQL is unreachable, skipping (set PAYSIDECAR_TEST_POSTGRES_DSN; CI=1 makes this fail): %v", reachErr)
	}
	return dsn
}

// Schema returns a fresh schema name and drops the schema when the test
// ends.
func Schema(t testing.TB, dsn string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "paysidecar_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{name}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// Lock begins a transaction on a connection of its own in the schema and
// locks the rows that query (a SELECT … FOR UPDATE) reads, as another
// session would; the transaction ends with the test unless the caller
// rolls it back first.
func Lock(t testing.TB, ctx context.Context, dsn, schema, query string) pgx.Tx {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = schema
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	if _, err := tx.Exec(ctx, query); err != nil {
		t.Fatal(err)
	}
	return tx
}
