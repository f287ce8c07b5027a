package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// The states of a queued write. A write is canceled only while it is
// queued; once running, it runs to the end and its caller waits.
const (
	writeQueued int32 = iota
	writeRunning
	writeCanceled
)

// maxTries bounds how often a write that lost a deadlock or serialization
// conflict runs.
const maxTries = 5

// request is one caller's write, queued for the committer.
type request struct {
	fn    func(*txn) error
	state atomic.Int32
	tries int
	at    time.Time  // when it was queued, for the queue-time metric
	done  chan error // buffered; receives the outcome once
}

// writer is one of the committer's writers: a connection of the writer
// pool, taken at its first batch and kept, with the statements prepared on
// it, until a transaction fails in a way that may have broken it. A writer
// runs one batch at a time, on one of the committer's goroutines or on
// the goroutine of the caller whose write it runs alone (see submit).
type writer struct {
	wc *writerConn
}

// committer runs queued writes in shared transactions (see the package
// documentation). It owns its writer goroutines; close stops them.
type committer struct {
	s        *Store
	maxBatch int
	mu       sync.Mutex
	cond     *sync.Cond
	queue    []*request
	writers  int       // how many writers there are
	idle     []*writer // the writers not running a batch
	closed   bool
	wg       sync.WaitGroup
	// beforeCommit, when set, is called just before a batch's commit with
	// the number of writes it commits and how many of their callers have
	// been answered already (a fault-injection point for tests).
	beforeCommit atomic.Pointer[func(writes, answered int)]
}

func newCommitter(s *Store, writers, maxBatch int) *committer {
	c := &committer{s: s, maxBatch: maxBatch, writers: writers}
	c.cond = sync.NewCond(&c.mu)
	for range writers {
		c.idle = append(c.idle, &writer{})
		c.wg.Add(1)
		go c.loop()
	}
	return c
}

// submit runs or queues r; false means the committer is closed.
//
// When a writer is idle and no write is waiting, r can share its commit
// with no other, so the caller's goroutine runs it there and then: the
// batch is the same one a writer goroutine would take, without the two
// hand-offs (to the writer goroutine and back), each of which may wake a
// thread. Otherwise r is queued for the writer goroutines, which group
// what waits.
func (c *committer) submit(r *request) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	if len(c.queue) > 0 || len(c.idle) == 0 {
		c.queue = append(c.queue, r)
		c.cond.Signal()
		c.mu.Unlock()
		return true
	}
	w := c.idle[len(c.idle)-1]
	c.idle = c.idle[:len(c.idle)-1]
	c.mu.Unlock()
	defer func() {
		if v := recover(); v != nil {
			// A panic outside the write's own function (those are
			// carried to their callers) leaves the writer in an unknown
			// state: it ends the process, as on a writer goroutine,
			// rather than being recovered by the caller's server.
			stack := debug.Stack()
			go func() { panic(fmt.Sprintf("store writer: %v\n%s", v, stack)) }()
			select {}
		}
	}()
	c.runOn(w, []*request{r})
	c.release(w, true)
	return true
}

// take waits for queued writes and an idle writer, and removes up to
// maxBatch of the writes, oldest first, with the writer. It returns nil
// once the committer is closed, nothing is queued and every writer is idle
// (no batch runs, on a writer goroutine or on a caller's).
func (c *committer) take() (*writer, []*request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.queue) == 0 || len(c.idle) == 0 {
		if c.closed && len(c.queue) == 0 && len(c.idle) == c.writers {
			return nil, nil
		}
		c.cond.Wait()
	}
	w := c.idle[len(c.idle)-1]
	c.idle = c.idle[:len(c.idle)-1]
	n := min(len(c.queue), c.maxBatch)
	batch := make([]*request, n)
	copy(batch, c.queue)
	rest := copy(c.queue, c.queue[n:])
	clear(c.queue[rest:])
	c.queue = c.queue[:rest]
	if rest > 0 && len(c.idle) > 0 {
		c.cond.Signal() // another writer may take the rest
	}
	return w, batch
}

// release makes w idle again after a batch. After a batch run on its
// caller's goroutine (inline) it wakes a writer goroutine for what was
// queued meanwhile; a writer goroutine takes that itself, next.
func (c *committer) release(w *writer, inline bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idle = append(c.idle, w)
	switch {
	case c.closed:
		c.cond.Broadcast()
	case inline && len(c.queue) > 0:
		c.cond.Signal()
	}
}

// requeue puts writes to run again at the head of the queue.
func (c *committer) requeue(rs []*request) {
	if len(rs) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue = append(rs, c.queue...)
	c.cond.Signal()
}

// close lets the writers finish what is queued and running, waits for
// them and closes their connections.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	c.wg.Wait()
	// Every writer is idle now: the goroutines return only once nothing
	// is queued and every writer is idle, and no write starts once closed.
	for _, w := range c.idle {
		if w.wc != nil {
			_ = w.wc.close()
			w.wc = nil
		}
	}
}

// loop is one writer goroutine: it runs the queued writes in batches on
// whichever writer is idle.
func (c *committer) loop() {
	defer c.wg.Done()
	for {
		w, batch := c.take()
		if batch == nil {
			return
		}
		c.runOn(w, batch)
		c.release(w, false)
		// The callers just answered are runnable; letting them queue
		// their next writes before the next take merges them into one
		// batch instead of splitting busy callers into two halves that
		// alternate, each paying its own fsync. Alone, a writer loses
		// nothing by it.
		if len(batch) > 1 {
			runtime.Gosched()
		}
	}
}

// runOn runs batch on w, taking w's connection first when it has none,
// and dropping it when the batch's transaction failed in a way that may
// have broken it (closing it reports as much, which the callers have heard
// already).
func (c *committer) runOn(w *writer, batch []*request) {
	if w.wc == nil {
		wc, err := c.connect()
		if err != nil {
			c.answerAll(c.start(batch), fmt.Errorf("%w: writer connection: %w", errShared, err))
			return
		}
		w.wc = wc
	}
	if !c.run(w.wc, batch) {
		_ = w.wc.close()
		w.wc = nil
	}
}

// context returns the context of a writer's work: no caller's, bounded by
// the dialect's write timeout.
func (c *committer) context() (context.Context, context.CancelFunc) {
	if d := c.s.d.WriteTimeout; d > 0 {
		return context.WithTimeout(context.Background(), d)
	}
	return context.Background(), func() {}
}

// connect takes a connection for a writer, within the write timeout.
func (c *committer) connect() (*writerConn, error) {
	ctx, cancel := c.context()
	defer cancel()
	return c.s.newWriterConn(ctx)
}

// start marks the writes of batch running and returns them, leaving out
// those whose callers gave up while they were queued.
func (c *committer) start(batch []*request) []*request {
	live := batch[:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(writeQueued, writeRunning) {
			live = append(live, r)
		}
	}
	return live
}

// errShared is the error of a write whose transaction failed because of
// something outside the write; nothing of the batch was committed.
var errShared = errors.New("the shared transaction failed")

// run runs one batch and answers each caller after the commit. It first
// runs every write in one transaction with nothing between them; when one
// fails, it rolls that transaction back and runs the batch again with a
// savepoint around each write, so that the failure is rolled back alone.
// Failures are rare, so most batches cost no savepoints. run reports false
// when a transaction failed as a whole, so that the connection is
// replaced.
func (c *committer) run(wc *writerConn, batch []*request) bool {
	live := c.start(batch)
	if len(live) == 0 {
		return true
	}
	ctx, cancel := c.context()
	defer cancel()
	began := time.Now()
	for _, r := range live {
		c.s.m.wait.Observe(began.Sub(r.at).Seconds())
	}
	t := &txn{s: c.s, ctx: ctx, wc: wc, began: began}
	errs := make([]error, len(live))
	if _, err := t.exec(c.s.d.Begin); err != nil {
		return c.fail(t, live, errs, nil, fmt.Errorf("%w: begin: %w", errShared, err))
	}
	var err error
	for _, r := range live {
		if err = call(r.fn, t); err != nil {
			break
		}
	}
	if err == nil {
		return c.commit(t, live, errs, nil)
	}
	if _, rbErr := t.exec("ROLLBACK"); rbErr != nil {
		return c.fail(t, live, errs, nil, fmt.Errorf("%w: rollback: %w", errShared, rbErr))
	}
	if len(live) == 1 {
		r := live[0]
		if c.retry(r, err) {
			c.requeue([]*request{r})
		} else {
			r.done <- err
		}
		return true
	}
	return c.runIsolated(t, live)
}

// runIsolated runs the writes of live in one transaction, each inside a
// savepoint: a write that fails is rolled back to its savepoint and
// answered with its error, or queued again when the error is transient;
// the others commit.
func (c *committer) runIsolated(t *txn, live []*request) bool {
	errs := make([]error, len(live))
	var retry []*request
	if _, err := t.exec(c.s.d.Begin); err != nil {
		return c.fail(t, live, errs, retry, fmt.Errorf("%w: begin: %w", errShared, err))
	}
	for i, r := range live {
		if _, err := t.exec("SAVEPOINT w"); err != nil {
			return c.fail(t, live, errs, retry, fmt.Errorf("%w: savepoint: %w", errShared, err))
		}
		err := call(r.fn, t)
		if err == nil {
			if _, err := t.exec("RELEASE SAVEPOINT w"); err != nil {
				return c.fail(t, live, errs, retry, fmt.Errorf("%w: release savepoint: %w", errShared, err))
			}
			continue
		}
		errs[i] = err
		if _, rbErr := t.exec("ROLLBACK TO SAVEPOINT w"); rbErr != nil {
			return c.fail(t, live, errs, retry, fmt.Errorf("%w: rollback to savepoint: %w", errShared, rbErr))
		}
		if _, rlErr := t.exec("RELEASE SAVEPOINT w"); rlErr != nil {
			return c.fail(t, live, errs, retry, fmt.Errorf("%w: release savepoint: %w", errShared, rlErr))
		}
		if c.retry(r, err) {
			retry = append(retry, r)
			live[i] = nil
		}
	}
	return c.commit(t, live, errs, retry)
}

// commit commits the transaction, answers each write of live (nil entries
// excepted) with its own error or the commit's, and queues retry again.
func (c *committer) commit(t *txn, live []*request, errs []error, retry []*request) bool {
	if h := c.beforeCommit.Load(); h != nil {
		writes, answered := 0, 0
		for i, r := range live {
			if r != nil && errs[i] == nil {
				writes++
				answered += len(r.done)
			}
		}
		(*h)(writes, answered)
	}
	ok := true
	if _, err := t.exec("COMMIT"); err == nil {
		n := 0
		for i, r := range live {
			if r != nil && errs[i] == nil {
				n++
			}
		}
		c.s.m.committed(n, time.Since(t.began))
	} else {
		err = fmt.Errorf("commit: %w", err)
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		_, _ = t.exec("ROLLBACK")
		ok = false
	}
	for i, r := range live {
		if r != nil {
			r.done <- errs[i]
		}
	}
	c.requeue(retry)
	return ok
}

// fail ends the transaction without committing anything and answers each
// write of live (nil entries excepted) with its own error, or err.
func (c *committer) fail(t *txn, live []*request, errs []error, retry []*request, err error) bool {
	_, _ = t.exec("ROLLBACK")
	for i, r := range live {
		if r == nil {
			continue
		}
		if errs[i] == nil {
			errs[i] = err
		}
		r.done <- errs[i]
	}
	c.requeue(retry)
	return false
}

// retry reports whether r failed with err in a way that lets it run again,
// and if so marks it queued.
func (c *committer) retry(r *request, err error) bool {
	if r.tries+1 >= maxTries || !c.s.d.Retry(err) {
		return false
	}
	r.tries++
	r.state.Store(writeQueued)
	return true
}

func (c *committer) answerAll(live []*request, err error) {
	for _, r := range live {
		r.done <- err
	}
}

// panicError carries a panic out of a write, to be raised again in the
// caller's goroutine.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string {
	return fmt.Sprintf("panic in a store write: %v\n%s", p.value, p.stack)
}

// call runs fn, turning a panic into a *panicError.
func call(fn func(*txn) error, t *txn) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v, stack: debug.Stack()}
		}
	}()
	return fn(t)
}

// write runs fn in a transaction shared with other callers' writes and
// returns once that transaction has committed, or fn's own error. fn may
// run more than once (after a deadlock), so it must set its results
// afresh each time. See the package documentation for cancellation.
func (s *Store) write(ctx context.Context, fn func(*txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &request{fn: fn, at: time.Now(), done: make(chan error, 1)}
	if !s.c.submit(r) {
		return ErrClosed
	}
	select {
	case err := <-r.done:
		return raise(err)
	case <-ctx.Done():
	}
	if r.state.CompareAndSwap(writeQueued, writeCanceled) {
		return ctx.Err()
	}
	return raise(<-r.done)
}

// raise panics again with a write's panic, or returns err.
func raise(err error) error {
	var p *panicError
	if errors.As(err, &p) {
		panic(p)
	}
	return err
}
