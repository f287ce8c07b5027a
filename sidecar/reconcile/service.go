package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/statements"
)

// ServiceConfig configures the daily schedule.
type ServiceConfig struct {
	// At is the Beijing time of day ("HH:MM") from which the previous
	// day is reconciled, once the upstream's files are ready; empty turns
	// the schedule off.
	At string
	// Interval is how often the schedule is looked at; default 1 m.
	Interval time.Duration
	// RetryAfter is the wait after a scheduled run that failed (a bill not
	// ready yet); default 15 m.
	RetryAfter time.Duration
}

// ParseAt parses "HH:MM" into an offset from midnight.
func ParseAt(at string) (time.Duration, error) {
	t, err := time.Parse("15:04", at)
	if err != nil {
		return 0, fmt.Errorf("%q is not a time of day HH:MM", at)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// Service runs the daily reconciliation and serves the statements and
// reconciliation API. Start runs the schedule in a goroutine the Service
// owns; Close stops it.
type Service struct {
	cfg     ServiceConfig
	at      time.Duration
	rec     *Reconciler
	archive *statements.Archive
	runs    RunStore
	now     func() time.Time
	log     *slog.Logger

	started time.Time

	mu      sync.Mutex
	done    string    // the last day the schedule is done with
	retryAt time.Time // no scheduled run before this
	cancel  context.CancelFunc
	stopped chan struct{}
}

// NewService returns a Service.
func NewService(cfg ServiceConfig, rec *Reconciler, archive *statements.Archive, runs RunStore) (*Service, error) {
	if rec == nil || archive == nil || runs == nil {
		return nil, errors.New("reconcile: reconciler, archive and run store are required")
	}
	s := &Service{cfg: cfg, rec: rec, archive: archive, runs: runs, now: rec.now, log: rec.log, started: rec.now()}
	if cfg.At != "" {
		at, err := ParseAt(cfg.At)
		if err != nil {
			return nil, fmt.Errorf("reconcile: schedule: %w", err)
		}
		s.at = at
	}
	if s.cfg.Interval <= 0 {
		s.cfg.Interval = time.Minute
	}
	if s.cfg.RetryAfter <= 0 {
		s.cfg.RetryAfter = 15 * time.Minute
	}
	return s, nil
}

// Reconciler returns the service's reconciler.
func (s *Service) Reconciler() *Reconciler { return s.rec }

// RefreshMetrics sets the reconciliation's gauges from the stored runs.
func (s *Service) RefreshMetrics(ctx context.Context) error {
	runs, err := s.runs.ListRuns(ctx, s.archive.MerchantID(), time.Time{}, 20)
	if err != nil {
		return fmt.Errorf("reconcile: read runs for metrics: %w", err)
	}
	s.rec.metrics.restore(runs, s.started, s.cfg.At != "")
	return nil
}

// Start runs the schedule until ctx ends or Close is called; without a
// schedule it only sets the gauges once.
func (s *Service) Start(ctx context.Context) error {
	if err := s.RefreshMetrics(ctx); err != nil {
		s.log.Warn("reconciliation metrics not restored", "error", err)
	}
	if s.cfg.At == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return errors.New("reconcile: already started")
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.stopped = make(chan struct{})
	go func() {
		defer close(s.stopped)
		t := time.NewTicker(s.cfg.Interval)
		defer t.Stop()
		for {
			if _, err := s.RunDue(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("scheduled reconciliation failed; will try again", "error", err, "retry_after", s.cfg.RetryAfter)
			}
			if err := s.RefreshMetrics(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("reconciliation metrics not refreshed", "error", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// Close stops the schedule and waits for a run in progress to end.
func (s *Service) Close() error {
	s.mu.Lock()
	cancel, stopped := s.cancel, s.stopped
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-stopped
	}
	return nil
}

// RunDue runs the scheduled reconciliation of the previous day (Beijing
// time) when its time has come and it has not run yet, and reports
// whether it ran. A day another replica claimed counts as done.
func (s *Service) RunDue(ctx context.Context) (bool, error) {
	if s.cfg.At == "" {
		return false, nil
	}
	now := s.now().In(nkp.Beijing)
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, nkp.Beijing)
	if now.Before(midnight.Add(s.at)) {
		return false, nil
	}
	date := midnight.AddDate(0, 0, -1).Format(nkp.DateLayout)
	s.mu.Lock()
	skip := s.done == date || now.Before(s.retryAt)
	s.mu.Unlock()
	if skip {
		return false, nil
	}
	_, err := s.rec.Run(ctx, date, RunOptions{Trigger: TriggerSchedule})
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case errors.Is(err, ErrClaimed):
		s.done = date
		return false, nil
	case err != nil:
		s.retryAt = now.Add(s.cfg.RetryAfter)
		return true, err
	}
	s.done = date
	return true, nil
}
