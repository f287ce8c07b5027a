package notify

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// refusalLog logs refusals, sampled: per reason, the first perInterval
// in each interval one by one, then one line with the number left out,
// written when the interval ends. The counters of every refusal are exact
// in the metrics; the log only has to say what is happening without
// letting a flood write a line per request.
type refusalLog struct {
	logger      *slog.Logger
	perInterval int
	interval    time.Duration
	now         func() time.Time

	mu      sync.Mutex
	reasons map[string]*refusalWindow
}

type refusalWindow struct {
	start      time.Time
	logged     int
	suppressed int
	level      slog.Level
	timer      *time.Timer
}

func newRefusalLog(log *slog.Logger, perInterval int, interval time.Duration, now func() time.Time) *refusalLog {
	return &refusalLog{logger: log, perInterval: perInterval, interval: interval, now: now, reasons: map[string]*refusalWindow{}}
}

// log writes one refusal of reason, or counts it when its reason has
// already been logged perInterval times in the current interval. The set
// of reasons is fixed by the code, so the table stays small.
func (s *refusalLog) log(ctx context.Context, level slog.Level, reason, msg string, attrs ...slog.Attr) {
	now := s.now()
	s.mu.Lock()
	w := s.reasons[reason]
	if w == nil {
		w = &refusalWindow{start: now}
		s.reasons[reason] = w
	}
	if now.Sub(w.start) >= s.interval {
		s.flushLocked(reason, w, now)
	}
	if w.logged < s.perInterval {
		w.logged++
		s.mu.Unlock()
		s.logger.LogAttrs(ctx, level, msg, append(attrs, slog.String("reason", reason))...)
		return
	}
	w.suppressed++
	if level > w.level {
		w.level = level
	}
	if w.timer == nil {
		wait := s.interval - now.Sub(w.start)
		w.timer = time.AfterFunc(wait, func() { s.flush(reason) })
	}
	s.mu.Unlock()
}

// flush ends reason's interval if it is over, writing the count left out.
func (s *refusalLog) flush(reason string) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.reasons[reason]; w != nil {
		w.timer = nil
		if now.Sub(w.start) >= s.interval {
			s.flushLocked(reason, w, now)
		} else if w.suppressed > 0 {
			// The clock moved less than the timer; look again later.
			w.timer = time.AfterFunc(s.interval-now.Sub(w.start), func() { s.flush(reason) })
		}
	}
}

func (s *refusalLog) flushLocked(reason string, w *refusalWindow, now time.Time) {
	if w.suppressed > 0 {
		s.logger.LogAttrs(context.Background(), w.level, "notifications refused and not logged one by one",
			slog.String("reason", reason), slog.Int("count", w.suppressed), slog.Duration("interval", s.interval))
	}
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	*w = refusalWindow{start: now}
}

// refusalLogLevel is the level of a refusal answered with status: error
// for our own failures (5xx), warn for the sender's fault and for load
// shed by a limit.
func refusalLogLevel(status int, reason string) slog.Level {
	if status >= 500 && reason != ReasonBusy {
		return slog.LevelError
	}
	return slog.LevelWarn
}

func sourceAttr(src string) slog.Attr { return slog.String("source", src) }
