// Package poller runs a batch job in one owned goroutine: again at once
// after a full batch, otherwise on the next tick or wake-up, until it is
// closed. The webhook dispatcher and the reverse query both run this way.
package poller

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrStarted is returned by Start on a poller that is already running.
var ErrStarted = errors.New("poller already started")

// Config describes the job.
type Config struct {
	// Interval is how often Run is called when nothing wakes the poller.
	Interval time.Duration
	// Batch is the size of a full batch: when Run reports at least this
	// many items, it is called again at once.
	Batch int
	// Run does one batch and reports how many items it took.
	Run func(ctx context.Context) (int, error)
	// OnError is told about Run's errors; optional.
	OnError func(error)
	// OnTick runs at start and on every tick, e.g. to refresh a gauge;
	// optional.
	OnTick func(ctx context.Context)
}

// Poller owns the goroutine that runs a Config.
type Poller struct {
	cfg    Config
	wake   chan struct{}
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a stopped poller.
func New(cfg Config) *Poller {
	return &Poller{cfg: cfg, wake: make(chan struct{}, 1)}
}

// Start runs the job in a goroutine until ctx ends or Close is called.
func (p *Poller) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		return ErrStarted
	}
	ctx, cancel := context.WithCancel(ctx)
	p.cancel = cancel
	p.done = make(chan struct{})
	go p.loop(ctx, p.done)
	return nil
}

// Close stops the goroutine and waits for it; Run sees its context
// cancelled. Closing a poller that never started does nothing.
func (p *Poller) Close() {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// Wake makes a running poller call Run now rather than at its next tick.
// It never blocks.
func (p *Poller) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Poller) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	ticker := time.NewTicker(p.cfg.Interval)
	defer ticker.Stop()
	if p.cfg.OnTick != nil {
		p.cfg.OnTick(ctx)
	}
	for {
		n, err := p.cfg.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil && p.cfg.OnError != nil {
			p.cfg.OnError(err)
		}
		if err == nil && n >= p.cfg.Batch {
			continue // a full batch: more may be due right away
		}
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-ticker.C:
			if p.cfg.OnTick != nil {
				p.cfg.OnTick(ctx)
			}
		}
	}
}
