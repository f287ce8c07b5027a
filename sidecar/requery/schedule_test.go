package requery_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/requery"
)

// A schedule set while the requerier runs times every query after the one
// already stored; a bad one is refused and changes nothing.
func TestSetSchedule(t *testing.T) {
	f := newFixture(t)
	r := f.requerier(t, requery.Config{Schedule: []time.Duration{time.Minute}})
	f.order(t, "pay_1", 100, 2*time.Hour, 2*time.Hour)

	next := func() time.Duration {
		t.Helper()
		p := f.payment(t, "pay_1")
		f.runAt(t, r, p.NextQueryAt)
		return f.payment(t, "pay_1").NextQueryAt.Sub(p.NextQueryAt)
	}
	var gaps []time.Duration
	gaps = append(gaps, next())
	if err := r.SetSchedule([]time.Duration{time.Second, -time.Second}); err == nil {
		t.Fatal("a schedule with a negative step was accepted")
	}
	gaps = append(gaps, next())
	if err := r.SetSchedule([]time.Duration{2 * time.Second, 3 * time.Second, 5 * time.Second, 7 * time.Second, 11 * time.Second}); err != nil {
		t.Fatal(err)
	}
	// The payment has had two queries: the gap after its third is the
	// new schedule's fourth step, then its fifth.
	gaps = append(gaps, next(), next())
	if err := r.SetSchedule(nil); err != nil {
		t.Fatal(err)
	}
	gaps = append(gaps, next())
	want := []time.Duration{time.Minute, time.Minute, 7 * time.Second, 11 * time.Second, requery.DefaultSchedule[5]}
	if fmt.Sprint(gaps) != fmt.Sprint(want) {
		t.Errorf("gaps between queries %v, want %v", gaps, want)
	}
}
