package sqlstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/internal/testpg"
	"github.com/paysidecar/paysidecar/sidecar/store/postgres"
	"github.com/paysidecar/paysidecar/sidecar/store/sqlite"
	"github.com/paysidecar/paysidecar/sidecar/store/sqlstore"
)

// opened is a store under test on one engine.
type opened struct {
	store.Store
	ss *sqlstore.Store
	// reopen closes the store and opens its database anew.
	reopen func(t *testing.T) store.Store
}

// engines opens a store on each engine the tests run on.
var engines = []struct {
	name string
	open func(t *testing.T) opened
}{
	{"SQLite", func(t *testing.T) opened {
		path := filepath.Join(t.TempDir(), "paysidecar.db")
		s, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return opened{Store: s, ss: s.Store, reopen: func(t *testing.T) store.Store {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s2.Close() })
			return s2
		}}
	}},
	{"PostgreSQL", func(t *testing.T) opened {
		dsn := testpg.DSN(t)
		schema := testpg.Schema(t, dsn)
		openOne := func(t *testing.T) *postgres.Store {
			// One writer, so that writes queue behind a blocked commit.
			s, err := postgres.Open(context.Background(), dsn, postgres.WithSchema(schema),
				postgres.WithMaxConns(4), postgres.WithWriters(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}
		s := openOne(t)
		return opened{Store: s, ss: s.Store, reopen: func(t *testing.T) store.Store {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return openOne(t)
		}}
	}},
}

// forEachEngine runs test on each engine, in parallel.
func forEachEngine(t *testing.T, test func(t *testing.T, ctx context.Context, o opened)) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			test(t, ctx, e.open(t))
		})
	}
}

var base = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

func newPayment(id string) *store.Payment {
	return &store.Payment{ID: id, MerchantID: "m", OutTradeNo: "order-" + id, AmountFen: 100,
		ReqDate: "20250301", ReqSeqID: "seq-" + id, CreatedAt: base}
}

func createPayment(t *testing.T, ctx context.Context, s store.Store, id string) {
	t.Helper()
	if err := s.CreatePayment(ctx, newPayment(id)); err != nil {
		t.Fatalf("CreatePayment(%s): %v", id, err)
	}
}

func notification(id, paymentID string) store.Notification {
	return store.Notification{ID: id, Kind: "payment", ObjectID: paymentID, RespData: `{"trans_stat":"S"}`, ReceivedAt: base}
}

func success(eventID string) store.Transition {
	return store.Transition{To: store.StatusSucceeded, TransStat: "S", At: base,
		Event: &store.Event{ID: eventID, Type: "payment.succeeded", Payload: json.RawMessage(`{}`)}}
}

// receive waits for a value on ch, failing the test when ctx ends first.
func receive[T any](t *testing.T, ctx context.Context, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		t.Fatalf("waiting for %s: %v", what, ctx.Err())
		panic("unreachable")
	}
}

// gate blocks the committer of s at its next commit: reached receives the
// number of writes in the batch and of callers already answered; the
// commit goes on at open, or when the test ends. Later commits pass.
type gate struct {
	reached  chan [2]int
	release  chan struct{}
	first    sync.Once
	released sync.Once
}

func newGate(t *testing.T, s *sqlstore.Store) *gate {
	g := &gate{reached: make(chan [2]int, 1), release: make(chan struct{})}
	sqlstore.SetBeforeCommit(s, func(writes, answered int) {
		first := false
		g.first.Do(func() { first = true })
		if first {
			g.reached <- [2]int{writes, answered}
			<-g.release
		}
	})
	// Before the store closes, which waits for the blocked commit.
	t.Cleanup(g.open)
	return g
}

// open lets the blocked commit go on.
func (g *gate) open() { g.released.Do(func() { close(g.release) }) }

// waitQueued waits until n writes are queued behind the blocked commit.
func waitQueued(t *testing.T, ctx context.Context, s *sqlstore.Store, n int) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for sqlstore.Queued(s) < n {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%d writes queued, want %d: %v", sqlstore.Queued(s), n, ctx.Err())
		}
	}
}

// TestAnsweredOnlyAfterCommit blocks the commit that holds a notification
// write: its caller is not answered, the write is not visible, and once
// the commit goes on the caller returns and the write survives reopening.
func TestAnsweredOnlyAfterCommit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, ctx context.Context, o opened) {
		createPayment(t, ctx, o, "pay_1")
		g := newGate(t, o.ss)
		done := make(chan error, 1)
		go func() {
			_, err := o.ApplyNotification(ctx, notification("ntf_1", "pay_1"), success("evt_1"))
			done <- err
		}()
		got := receive(t, ctx, g.reached, "the commit")
		if got != [2]int{1, 0} {
			t.Fatalf("at the commit: %d writes, %d callers answered; want 1 write, nobody answered", got[0], got[1])
		}
		select {
		case err := <-done:
			t.Fatalf("the caller returned (%v) before the commit", err)
		default:
		}
		if p, err := o.GetPayment(ctx, "pay_1"); err != nil || p.Status != store.StatusPending {
			t.Fatalf("before the commit a reader sees %q (%v), want pending", p.Status, err)
		}
		g.open()
		if err := receive(t, ctx, done, "the caller"); err != nil {
			t.Fatalf("ApplyNotification: %v", err)
		}
		s := o.reopen(t)
		if p, err := s.GetPayment(ctx, "pay_1"); err != nil || p.Status != store.StatusSucceeded {
			t.Fatalf("after reopening: %q (%v), want succeeded", p.Status, err)
		}
		if _, err := s.GetEvent(ctx, "evt_1"); err != nil {
			t.Fatalf("the event after reopening: %v", err)
		}
		if isNew, err := s.RecordNotification(ctx, notification("ntf_1", "pay_1")); err != nil || isNew {
			t.Fatalf("the notification after reopening: new = %v (%v)", isNew, err)
		}
	})
}

// TestFailedWritesLeaveTheOthers puts writes that fail (a taken key, an
// unknown object after a first insert, a panic) in one batch with writes
// that succeed: each failure reaches its own caller and leaves nothing,
// the others commit.
func TestFailedWritesLeaveTheOthers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, ctx context.Context, o opened) {
		createPayment(t, ctx, o, "pay_p")
		createPayment(t, ctx, o, "pay_q")
		g := newGate(t, o.ss)
		blocker := make(chan error, 1)
		go func() { blocker <- sqlstore.Write(ctx, o.ss, func() error { return nil }) }()
		receive(t, ctx, g.reached, "the first commit")

		var batch int
		sqlstore.SetBeforeCommit(o.ss, func(writes, answered int) { batch = writes })
		taken := newPayment("pay_taken")
		taken.OutTradeNo = "order-pay_q"
		calls := []struct {
			name string
			call func() error
			want error
		}{
			{"create", func() error { return o.CreatePayment(ctx, newPayment("pay_a")) }, nil},
			{"create with a taken out_trade_no", func() error { return o.CreatePayment(ctx, taken) }, store.ErrConflict},
			{"notification of an unknown payment", func() error {
				_, err := o.ApplyNotification(ctx, notification("ntf_x", "pay_missing"), success("evt_x"))
				return err
			}, store.ErrNotFound},
			{"notification", func() error {
				res, err := o.ApplyNotification(ctx, notification("ntf_p", "pay_p"), success("evt_p"))
				if err == nil && !res.Applied {
					err = errors.New("not applied")
				}
				return err
			}, nil},
			{"panic", func() (err error) {
				defer func() {
					if v := recover(); v != nil {
						err = fmt.Errorf("%v", v)
					}
				}()
				return sqlstore.Write(ctx, o.ss, func() error {
					if _, err := o.GetPayment(ctx, "pay_p"); err != nil {
						return err
					}
					panic("a bug in a write")
				})
			}, errPanic},
			{"event", func() error {
				_, err := o.InsertEvent(ctx, &store.Event{ID: "evt_e", Type: "t", Payload: json.RawMessage(`{}`)})
				return err
			}, nil},
		}
		errs := make([]chan error, len(calls))
		for i, c := range calls {
			errs[i] = make(chan error, 1)
			go func() { errs[i] <- c.call() }()
		}
		waitQueued(t, ctx, o.ss, len(calls))
		g.open()
		if err := receive(t, ctx, blocker, "the first write"); err != nil {
			t.Fatal(err)
		}
		for i, c := range calls {
			err := receive(t, ctx, errs[i], c.name)
			switch {
			case c.want == nil && err != nil:
				t.Errorf("%s: %v", c.name, err)
			case c.want == errPanic:
				if err == nil || !strings.HasPrefix(err.Error(), "panic in a store write: a bug in a write") {
					t.Errorf("%s: the caller did not get the panic back: %v", c.name, err)
				}
			case c.want != nil && !errors.Is(err, c.want):
				t.Errorf("%s: %v, want %v", c.name, err, c.want)
			}
		}
		if batch != len(calls)-3 {
			t.Errorf("the second commit held %d writes, want the %d that succeeded", batch, len(calls)-3)
		}
		if _, err := o.GetPayment(ctx, "pay_a"); err != nil {
			t.Errorf("pay_a: %v", err)
		}
		if p, err := o.GetPayment(ctx, "pay_p"); err != nil || p.Status != store.StatusSucceeded {
			t.Errorf("pay_p: %q (%v)", p.Status, err)
		}
		for id, want := range map[string]bool{"ntf_x": true, "ntf_p": false} {
			if isNew, err := o.RecordNotification(ctx, notification(id, "pay_p")); err != nil || isNew != want {
				t.Errorf("RecordNotification(%s) = %v (%v), want new = %v", id, isNew, err, want)
			}
		}
		for _, id := range []string{"evt_p", "evt_e"} {
			if _, err := o.GetEvent(ctx, id); err != nil {
				t.Errorf("event %s: %v", id, err)
			}
		}
		if _, err := o.GetEvent(ctx, "evt_x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the event of the failed notification: %v", err)
		}
	})
}

// TestCanceledWhileQueuedNeverRuns cancels a caller whose write waits
// behind a blocked commit: the caller returns at once with the context's
// error and the write is never made.
func TestCanceledWhileQueuedNeverRuns(t *testing.T) {
	forEachEngine(t, func(t *testing.T, ctx context.Context, o opened) {
		g := newGate(t, o.ss)
		blocker := make(chan error, 1)
		go func() { blocker <- sqlstore.Write(ctx, o.ss, func() error { return nil }) }()
		receive(t, ctx, g.reached, "the first commit")
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- o.CreatePayment(cctx, newPayment("pay_never")) }()
		waitQueued(t, ctx, o.ss, 1)
		cancel()
		if err := receive(t, ctx, done, "the canceled caller"); !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled caller: %v, want context.Canceled", err)
		}
		g.open()
		if err := receive(t, ctx, blocker, "the first write"); err != nil {
			t.Fatal(err)
		}
		createPayment(t, ctx, o, "pay_after") // a later batch has run
		if _, err := o.GetPayment(ctx, "pay_never"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the canceled write was made: %v", err)
		}
	})
}

// TestCanceledWhileCommittingLearnsOutcome cancels a caller whose write
// has run and waits for its commit: the caller still waits and learns
// that the write committed.
func TestCanceledWhileCommittingLearnsOutcome(t *testing.T) {
	forEachEngine(t, func(t *testing.T, ctx context.Context, o opened) {
		g := newGate(t, o.ss)
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- o.CreatePayment(cctx, newPayment("pay_1")) }()
		receive(t, ctx, g.reached, "the commit")
		cancel()
		g.open()
		if err := receive(t, ctx, done, "the caller"); err != nil {
			t.Fatalf("the caller canceled during the commit got %v, want the commit's outcome (nil)", err)
		}
		if _, err := o.GetPayment(ctx, "pay_1"); err != nil {
			t.Fatalf("the committed payment: %v", err)
		}
	})
}

var (
	errTransient = errors.New("transient conflict")
	errPanic     = errors.New("a panic raised again in the caller")
)

// TestRetriesTransientConflicts runs writes that fail with an error the
// dialect calls transient (a deadlock on PostgreSQL): each runs again
// until it succeeds, a bounded number of times.
func TestRetriesTransientConflicts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, ctx context.Context, o opened) {
		sqlstore.SetRetry(o.ss, func(err error) bool { return errors.Is(err, errTransient) })
		runs := 0
		err := sqlstore.Write(ctx, o.ss, func() error {
			runs++
			if runs < 3 {
				return errTransient
			}
			return nil
		})
		if err != nil || runs != 3 {
			t.Fatalf("a write failing twice: %v after %d runs, want success after 3", err, runs)
		}
		runs = 0
		err = sqlstore.Write(ctx, o.ss, func() error { runs++; return errTransient })
		if !errors.Is(err, errTransient) || runs != sqlstore.MaxTries {
			t.Fatalf("a write failing always: %v after %d runs, want the error after %d", err, runs, sqlstore.MaxTries)
		}
	})
}

// TestConcurrentWritersShareCommits runs many writers at once: all
// succeed, and they take fewer commits than writes.
func TestConcurrentWritersShareCommits(t *testing.T) {
	forEachEngine(t, func(t *testing.T, ctx context.Context, o opened) {
		var (
			mu      sync.Mutex
			commits int
		)
		sqlstore.SetBeforeCommit(o.ss, func(writes, answered int) {
			mu.Lock()
			commits++
			mu.Unlock()
		})
		const writers, each = 32, 10
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					id := fmt.Sprintf("pay_%d_%d", w, i)
					if err := o.CreatePayment(ctx, newPayment(id)); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if commits >= writers*each {
			t.Fatalf("%d commits for %d writes", commits, writers*each)
		}
	})
}

// TestUnansweredServerFailsTheWrites holds a row lock on PostgreSQL from
// outside the store, so that a write on the row waits: after the write
// timeout the write fails instead of waiting forever, and once the lock is
// gone the store writes again on a new connection.
func TestUnansweredServerFailsTheWrites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn := testpg.DSN(t)
	schema := testpg.Schema(t, dsn)
	s, err := postgres.Open(ctx, dsn, postgres.WithSchema(schema), postgres.WithMaxConns(2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	createPayment(t, ctx, s, "pay_1")
	tx := testpg.Lock(t, ctx, dsn, schema, `SELECT 1 FROM payments WHERE id = 'pay_1' FOR UPDATE`)
	sqlstore.SetWriteTimeout(s.Store, 300*time.Millisecond)
	if _, _, err := s.TransitionPayment(ctx, "pay_1", success("evt_1")); err == nil {
		t.Fatal("a write on a locked row succeeded")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	sqlstore.SetWriteTimeout(s.Store, 30*time.Second) // a busy machine's commit may take long
	if p, _, err := s.TransitionPayment(ctx, "pay_1", success("evt_1")); err != nil || p.Status != store.StatusSucceeded {
		t.Fatalf("after the lock is gone: %q, %v", p.Status, err)
	}
}

// TestCloseWaitsForTheRunningWrite closes the store while a write runs
// (alone, so on its caller's goroutine) and waits at its commit: writes
// submitted after Close began are refused, Close waits for the running
// write, whose caller learns that it committed, and the write survives
// reopening.
func TestCloseWaitsForTheRunningWrite(t *testing.T) {
	forEachEngine(t, func(t *testing.T, ctx context.Context, o opened) {
		g := newGate(t, o.ss)
		done := make(chan error, 1)
		go func() { done <- o.CreatePayment(ctx, newPayment("pay_1")) }()
		receive(t, ctx, g.reached, "the commit")
		closed := make(chan error, 1)
		go func() { closed <- o.ss.Close() }()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for !sqlstore.Closing(o.ss) {
			select {
			case <-tick.C:
			case <-ctx.Done():
				t.Fatal("Close did not begin")
			}
		}
		if err := sqlstore.Write(ctx, o.ss, func() error { return nil }); !errors.Is(err, sqlstore.ErrClosed) {
			t.Fatalf("a write while Close waits: %v, want ErrClosed", err)
		}
		select {
		case err := <-closed:
			t.Fatalf("Close returned (%v) while a write waited at its commit", err)
		case err := <-done:
			t.Fatalf("the caller returned (%v) before the commit", err)
		default:
		}
		g.open()
		if err := receive(t, ctx, done, "the caller"); err != nil {
			t.Fatalf("CreatePayment: %v", err)
		}
		if err := receive(t, ctx, closed, "Close"); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s := o.reopen(t)
		if _, err := s.GetPayment(ctx, "pay_1"); err != nil {
			t.Fatalf("after reopening: %v", err)
		}
	})
}
