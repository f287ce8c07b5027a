package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paysidecar/paysidecar/internal/localproc"
	"github.com/paysidecar/paysidecar/sdk/client"
)

// op is one request of a load: create a payment, post a notification.
type op func(ctx context.Context, seq int64) error

// closedResult is what a closed loop did.
type closedResult struct {
	ops, errs int64
	elapsed   time.Duration
	firstErr  error
}

// add sums two loops' counts and times, keeping the first error.
func (c closedResult) add(o closedResult) closedResult {
	c.ops, c.errs, c.elapsed = c.ops+o.ops, c.errs+o.errs, c.elapsed+o.elapsed
	if c.firstErr == nil {
		c.firstErr = o.firstErr
	}
	return c
}

// perSecond is the throughput of the loop.
func (c closedResult) perSecond() float64 { return float64(c.ops) / c.elapsed.Seconds() }

// closedLoop runs concurrency workers that each call do again as soon as
// it returns, for d.
func closedLoop(ctx context.Context, concurrency int, d time.Duration, do op) closedResult {
	var seq, ops, errs atomic.Int64
	var first atomic.Value
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	began := time.Now()
	stopAt := began.Add(d)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(stopAt) {
				if err := do(ctx, seq.Add(1)); err != nil {
					errs.Add(1)
					first.CompareAndSwap(nil, err)
					continue
				}
				ops.Add(1)
			}
		})
	}
	wg.Wait()
	r := closedResult{ops: ops.Load(), errs: errs.Load(), elapsed: time.Since(began)}
	if err, ok := first.Load().(error); ok {
		r.firstErr = err
	}
	return r
}

// openLoop starts do at a fixed rate for d, each on its own goroutine, and
// returns each request's latency counted from when it was due (so that a
// slow answer does not hide the requests that would have queued behind
// it).
func openLoop(ctx context.Context, rate float64, d time.Duration, do op) ([]time.Duration, error) {
	n := max(int(rate*d.Seconds()), 1)
	period := time.Duration(float64(time.Second) / rate)
	lat := make([]time.Duration, n)
	errs := make([]error, n)
	began := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		due := began.Add(time.Duration(i) * period)
		if wait := time.Until(due); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				wg.Wait()
				return nil, ctx.Err()
			}
		}
		wg.Go(func() {
			errs[i] = do(ctx, int64(i))
			lat[i] = time.Since(due)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return lat, nil
}

// percentile returns the p-th percentile (0–100) of d, nearest rank.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	k := int(p/100*float64(len(s))+0.999999) - 1
	return s[min(max(k, 0), len(s)-1)]
}

// pool keeps the payments created through a sidecar, for notifications
// to be sent about: each is handed out once.
type pool struct {
	sc      *sidecarProc
	mu      sync.Mutex
	made    int
	payable []client.Payment
	seq     atomic.Int64
	// rssAt is the count of payments at which rss, the flow plugin's
	// resident memory in MiB, is read (0: never).
	rssAt int
	rss   float64
}

// create places one payment through the sidecar and keeps it.
func (p *pool) create(ctx context.Context, _ int64) error {
	pay, err := p.sc.api.CreatePayment(ctx, order(p.seq.Add(1)))
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	p.mu.Lock()
	p.made++
	p.payable = append(p.payable, pay)
	if p.made == p.rssAt {
		p.rss = localproc.RSSMiB(localproc.ChildNamed(p.sc.proc.PID(), flowName))
	}
	p.mu.Unlock()
	return nil
}

// topUp creates payments at concurrency 16 until at least n were made.
func (p *pool) topUp(ctx context.Context, n int) error {
	var wg sync.WaitGroup
	var first atomic.Value
	for range 16 {
		wg.Go(func() {
			for ctx.Err() == nil && first.Load() == nil {
				p.mu.Lock()
				done := p.made >= n
				p.mu.Unlock()
				if done {
					return
				}
				if err := p.create(ctx, 0); err != nil {
					first.CompareAndSwap(nil, err)
				}
			}
		})
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return ctx.Err()
}

// take hands out n payments not yet notified, creating more first when
// there are too few.
func (p *pool) take(ctx context.Context, n int) ([]client.Payment, error) {
	p.mu.Lock()
	short := n - len(p.payable)
	made := p.made
	p.mu.Unlock()
	if short > 0 {
		if err := p.topUp(ctx, made+short); err != nil {
			return nil, err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(p.payable[:n])
	p.payable = p.payable[n:]
	return out, nil
}
