package delivery

import (
	"errors"
	"fmt"
	"time"
)

// DefaultSchedule is the default list of retry delays. An event is tried
// once, then once after each step, then declared dead: fourteen attempts.
//
// Retry n waits a random time between step n-1 and step n (between zero and
// the first step for the first retry): full jitter over the gap between
// consecutive steps, so that a crowd of events failing together spreads out
// while the spacing still grows. The time from the first attempt to the
// last is therefore at least the sum of all steps but the last and at most
// the sum of all steps: for this schedule between 31 h 52 m 35 s and
// 39 h 52 m 35 s, well past the upstream's own retries (three, seconds
// apart) and past a full day of application outage.
var DefaultSchedule = []time.Duration{
	5 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute, 15 * time.Minute,
	30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour,
	8 * time.Hour, 8 * time.Hour, 8 * time.Hour, 8 * time.Hour,
}

// Schedule is a list of retry delays; see DefaultSchedule for how they
// are used.
type Schedule []time.Duration

// Validate reports whether s can be used: at least one step, every step
// positive.
func (s Schedule) Validate() error {
	if len(s) == 0 {
		return errors.New("retry schedule is empty")
	}
	for i, d := range s {
		if d <= 0 {
			return fmt.Errorf("retry schedule step %d is %s, must be positive", i, d)
		}
	}
	return nil
}

// Delay returns the wait after the failed attempt number failed (1 for the
// first attempt), using r, a number in [0, 1), as the jitter; ok is false
// when the schedule is exhausted and the event is dead.
func (s Schedule) Delay(failed int, r float64) (d time.Duration, ok bool) {
	if failed < 1 || failed > len(s) {
		return 0, false
	}
	hi := s[failed-1]
	var lo time.Duration
	if failed >= 2 {
		lo = s[failed-2]
	}
	if lo > hi {
		lo = hi
	}
	if r < 0 {
		r = 0
	}
	if r > 1 {
		r = 1
	}
	return lo + time.Duration(r*float64(hi-lo)), true
}

// Bounds returns the shortest and longest time from the first attempt to
// the last that s allows.
func (s Schedule) Bounds() (lo, hi time.Duration) {
	for i := range s {
		a, _ := s.Delay(i+1, 0)
		b, _ := s.Delay(i+1, 1)
		lo += a
		hi += b
	}
	return lo, hi
}
