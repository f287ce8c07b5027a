package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/storetest"
)

// crashChildEnv names the database file a re-executed test binary writes
// to until it is killed (see TestSIGKILLKeepsAcknowledgedWrites).
const crashChildEnv = "PAYSIDECAR_SQLITE_CRASH_CHILD_DB"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	os.Exit(m.Run())
}

// openTemp opens a store in a new file of the test's temporary directory
// and closes it when the test ends.
func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "state", "paysidecar.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

// TestOpensFirstSchema opens a database written by the first store
// implementation (testdata/v1.sql, its dump): the store migrates it, reads
// what that implementation read and keeps writing by the same rules.
func TestOpensFirstSchema(t *testing.T) {
	dump, err := os.ReadFile(filepath.Join("testdata", "v1.sql"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "paysidecar.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(string(dump)); err != nil {
		t.Fatalf("load the dump: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	storetest.CheckV1(t, s)
}

// TestKeepsEarlierReconcileTables opens a database written by the version
// that kept the reconciliation's tables apart from the store, with their
// own migrations (testdata/reconcile_interim.sql, its dump): the store's
// migration keeps the tables, their rows and claims.
func TestKeepsEarlierReconcileTables(t *testing.T) {
	dump, err := os.ReadFile(filepath.Join("testdata", "reconcile_interim.sql"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "paysidecar.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(string(dump)); err != nil {
		t.Fatalf("load the dump: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	storetest.CheckInterimReconcile(t, s)
}

// TestFileModes opens new stores under the usual umask and under none:
// the database file, its -wal and -shm files are 0600 and the directories
// made for them 0700. The umask belongs to the process, so this test does
// not run in parallel with others.
func TestFileModes(t *testing.T) {
	for _, umask := range []int{0o022, 0o000} {
		t.Run(fmt.Sprintf("umask %04o", umask), func(t *testing.T) {
			old := syscall.Umask(umask)
			defer syscall.Umask(old)
			dir := filepath.Join(t.TempDir(), "state", "db")
			path := filepath.Join(dir, "paysidecar.db")
			s, err := Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// A write and a read make SQLite create the -wal and -shm files.
			p := &store.Payment{ID: "pay_1", MerchantID: "m", OutTradeNo: "o", AmountFen: 1, ReqDate: "20250301", ReqSeqID: "s"}
			if err := s.CreatePayment(context.Background(), p); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetPayment(context.Background(), "pay_1"); err != nil {
				t.Fatal(err)
			}
			want := map[string]os.FileMode{
				path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600,
				dir: 0o700 | os.ModeDir, filepath.Dir(dir): 0o700 | os.ModeDir,
			}
			for name, mode := range want {
				fi, err := os.Stat(name)
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode() & (os.ModePerm | os.ModeDir); got != mode {
					t.Errorf("%s is %v, want %v", name, got, mode)
				}
			}
		})
	}
}

// TestOpenWarnsOfAReadableFile opens a file others may read: Open keeps
// its mode, which is the owner's to choose, and says so in the log.
func TestOpenWarnsOfAReadableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "paysidecar.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	s, err := Open(context.Background(), path, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v (%v), want it left at 0644", fi.Mode().Perm(), err)
	}
	if !strings.Contains(logs.String(), "readable by others") {
		t.Fatalf("no warning in the log:\n%s", logs.String())
	}
}

func TestPragmas(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	cases := []struct {
		db     string
		pragma string
		want   string
	}{
		{"writer", "journal_mode", "wal"},
		{"writer", "synchronous", "2"}, // FULL
		{"writer", "foreign_keys", "1"},
		{"writer", "busy_timeout", "10000"},
		{"reader", "journal_mode", "wal"},
		{"reader", "foreign_keys", "1"},
		{"reader", "busy_timeout", "10000"},
		{"reader", "query_only", "1"},
	}
	for _, tc := range cases {
		db := s.w
		if tc.db == "reader" {
			db = s.r
		}
		var got string
		if err := db.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatalf("%s PRAGMA %s: %v", tc.db, tc.pragma, err)
		}
		if got != tc.want {
			t.Errorf("%s PRAGMA %s = %s, want %s", tc.db, tc.pragma, got, tc.want)
		}
	}
	// One connection for the writer goroutine, one for migrations and Ping.
	if n := s.w.Stats().MaxOpenConnections; n != 2 {
		t.Errorf("the writer pool has %d connections, want 2", n)
	}
	if _, err := s.r.ExecContext(ctx, `DELETE FROM events`); err == nil {
		t.Error("the read pool accepted a write")
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a", "b", "paysidecar.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	p := &store.Payment{ID: "pay_1", MerchantID: "m", OutTradeNo: "o", AmountFen: 1, ReqDate: "20250301", ReqSeqID: "s"}
	if err := s.CreatePayment(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if _, err := s.GetPayment(ctx, "pay_1"); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

func TestOpenRefusesBadPaths(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte(strings.Repeat("not a database ", 200)), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path    string
		invalid bool
	}{
		{"", true},
		{":memory:", true},
		{"file:x.db?mode=memory", true},
		{filepath.Join(t.TempDir(), "a?b.db"), true},
		{filepath.Join(file, "under-a-file", "db"), false}, // the directory cannot be made
		{file, false},                                      // not a database
	}
	for _, tc := range cases {
		s, err := Open(context.Background(), tc.path)
		if err == nil {
			_ = s.Close()
			t.Fatalf("Open(%q) succeeded", tc.path)
		}
		if tc.invalid != errors.Is(err, store.ErrInvalid) {
			t.Fatalf("Open(%q) = %v, ErrInvalid expected: %v", tc.path, err, tc.invalid)
		}
	}
}

// TestConcurrentWritersNeverBusy runs many writers and readers at once on
// one file: no call may fail with SQLITE_BUSY or any other error.
func TestConcurrentWritersNeverBusy(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	const writers, perWriter = 8, 25
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for w := range writers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				id := fmt.Sprintf("pay_%d_%d", w, i)
				p := &store.Payment{ID: id, MerchantID: "m", OutTradeNo: id, AmountFen: 1, ReqDate: "20250301", ReqSeqID: id}
				if err := s.CreatePayment(ctx, p); err != nil {
					fail(err)
					return
				}
				ev := &store.Event{ID: "evt_" + id, Type: "payment.succeeded", Payload: json.RawMessage(`{}`)}
				if _, _, err := s.TransitionPayment(ctx, id, store.Transition{To: store.StatusSucceeded, Event: ev}); err != nil {
					fail(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range perWriter {
				if _, err := s.CountEvents(ctx); err != nil {
					fail(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d errors, first: %v", len(errs), errs[0])
	}
	c, err := s.CountEvents(ctx)
	if err != nil || c[store.EventPending] != writers*perWriter {
		t.Fatalf("counts %v, %v; want %d pending", c, err, writers*perWriter)
	}
}

// crashChild is the body of the re-executed test binary: it writes
// notifications and the transitions they cause, printing "ack N" after
// each pair returns, and never stops by itself.
func crashChild(path string) {
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	for i := 0; ; i++ {
		id := fmt.Sprintf("pay_%06d", i)
		p := &store.Payment{ID: id, MerchantID: "m", OutTradeNo: id, AmountFen: 100, ReqDate: "20250301", ReqSeqID: id}
		if err := s.CreatePayment(ctx, p); err != nil {
			fmt.Println("create:", err)
			os.Exit(2)
		}
		n := store.Notification{ID: "ntf_" + id, ReqSeqID: id, Kind: "payment", ObjectID: id, RespData: `{"trans_stat":"S"}`}
		if _, err := s.RecordNotification(ctx, n); err != nil {
			fmt.Println("notification:", err)
			os.Exit(2)
		}
		ev := &store.Event{ID: "evt_" + id, Type: "payment.succeeded", Payload: json.RawMessage(`{"id":"` + id + `"}`)}
		if _, _, err := s.TransitionPayment(ctx, id, store.Transition{To: store.StatusSucceeded, TransStat: "S", Event: ev}); err != nil {
			fmt.Println("transition:", err)
			os.Exit(2)
		}
		fmt.Printf("ack %d\n", i)
	}
}

// TestSIGKILLKeepsAcknowledgedWrites kills a writing process right after
// it acknowledged a write: every acknowledged write is in the file after
// reopening, and no payment is finished without its event.
func TestSIGKILLKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const want = 25
	acked := -1
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		n, ok := strings.CutPrefix(line, "ack ")
		if !ok {
			t.Fatalf("child: %s", line)
		}
		acked, _ = strconv.Atoi(n)
		if acked >= want {
			// Kill at once, while the child is in the middle of later writes.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	_ = cmd.Wait()
	if acked < want {
		t.Fatalf("child stopped after ack %d: %v", acked, sc.Err())
	}

	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	for i := 0; i <= acked; i++ {
		id := fmt.Sprintf("pay_%06d", i)
		p, err := s.GetPayment(ctx, id)
		if err != nil || p.Status != store.StatusSucceeded {
			t.Fatalf("acknowledged payment %s: %+v, %v", id, p, err)
		}
		if isNew, err := s.RecordNotification(ctx, store.Notification{ID: "ntf_" + id, RespData: "{}"}); err != nil || isNew {
			t.Fatalf("acknowledged notification %s is missing (new = %v, %v)", id, isNew, err)
		}
	}
	// Whatever the child was doing when it died is all or nothing.
	events, err := s.ListEvents(ctx, "", 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	withEvent := map[string]bool{}
	for _, e := range events {
		withEvent[e.ObjectID] = true
	}
	for i := 0; ; i++ {
		id := fmt.Sprintf("pay_%06d", i)
		p, err := s.GetPayment(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if (p.Status == store.StatusSucceeded) != withEvent[id] {
			t.Fatalf("payment %s is %s but has event: %v", id, p.Status, withEvent[id])
		}
	}
}

// BenchmarkRawCommit is the baseline of the store's write benchmarks: the
// rate of single-row transactions committed on the same kind of file and
// connection (WAL, synchronous=FULL, one writer connection, BEGIN
// IMMEDIATE) by Concurrency goroutines, without the store.
func BenchmarkRawCommit(b *testing.B) {
	path := filepath.Join(b.TempDir(), "raw.db")
	db, err := sql.Open("sqlite", path+"?_busy_timeout=10000&_journal_mode=WAL&_synchronous=FULL&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE raw (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	storetest.RunParallel(b, "commits/s", func(i int64) error {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO raw (id, v) VALUES (?, ?)`, i, "a row of about fifty bytes, like a small event"); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

// BenchmarkStore runs the store's benchmarks (package storetest).
func BenchmarkStore(b *testing.B) {
	storetest.Benchmarks(b, func(b *testing.B) store.Store { return openTemp(b) })
}
