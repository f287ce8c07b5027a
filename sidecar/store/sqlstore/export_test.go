package sqlstore

import (
	"context"
	"time"
)

// MaxTries is how often a write that keeps losing conflicts runs.
const MaxTries = maxTries

// SetBeforeCommit makes the committer of s call f just before each commit
// with the number of writes in the batch and how many of their callers
// have been answered already; f may block the commit. A nil f removes it.
func SetBeforeCommit(s *Store, f func(writes, answered int)) {
	if f == nil {
		s.c.beforeCommit.Store(nil)
		return
	}
	s.c.beforeCommit.Store(&f)
}

// Queued returns the number of writes waiting for a writer.
func Queued(s *Store) int {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return len(s.c.queue)
}

// Write runs fn as a write of its own through the committer of s.
func Write(ctx context.Context, s *Store, fn func() error) error {
	return s.write(ctx, func(*txn) error { return fn() })
}

// SetRetry replaces the test of errors after which a write runs again. It
// must be called before the first write.
func SetRetry(s *Store, f func(error) bool) { s.d.Retry = f }

// SetWriteTimeout replaces the dialect's bound on a batch's transaction.
// It must be called while no write runs.
func SetWriteTimeout(s *Store, d time.Duration) { s.d.WriteTimeout = d }

// Closing reports whether Close has begun on s.
func Closing(s *Store) bool {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.c.closed
}
