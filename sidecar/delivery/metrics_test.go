package delivery_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/delivery"
)

// series reports whether the registry has the series, whatever its value.
func (f *fixture) series(t *testing.T, name string, labels map[string]string) bool {
	t.Helper()
	_, ok := f.find(t, name, labels)
	return ok
}

func (f *fixture) latencySum(t *testing.T) (float64, uint64) {
	t.Helper()
	m, ok := f.find(t, "paysidecar_delivery_latency_seconds", nil)
	if !ok {
		t.Fatal("no latency histogram")
	}
	return m.GetHistogram().GetSampleSum(), m.GetHistogram().GetSampleCount()
}

// TestMetricsExistFromTheStart checks that every series the alerts and the
// dashboard read is exported at zero before anything happens, so that a
// rate over it is 0 rather than absent.
func TestMetricsExistFromTheStart(t *testing.T) {
	f := newFixture(t)
	f.dispatcher(t, delivery.Config{URL: "http://127.0.0.1:1/hook"}, delivery.Options{})
	want := []struct {
		name   string
		labels map[string]string
	}{
		{"paysidecar_delivery_attempts_total", map[string]string{"result": delivery.ResultDelivered}},
		{"paysidecar_delivery_attempts_total", map[string]string{"result": delivery.ResultHTTPError}},
		{"paysidecar_delivery_attempts_total", map[string]string{"result": delivery.ResultTimeout}},
		{"paysidecar_delivery_attempts_total", map[string]string{"result": delivery.ResultError}},
		{"paysidecar_delivery_dead_total", nil},
		{"paysidecar_delivery_replayed_total", nil},
		{"paysidecar_outbox_events", map[string]string{"status": "pending"}},
		{"paysidecar_outbox_events", map[string]string{"status": "delivered"}},
		{"paysidecar_outbox_events", map[string]string{"status": "dead"}},
		{"paysidecar_outbox_oldest_pending_seconds", nil},
		{"paysidecar_delivery_latency_seconds", nil},
	}
	for _, w := range want {
		if !f.series(t, w.name, w.labels) {
			t.Errorf("%s%v is not exported at start", w.name, w.labels)
		}
	}
}

// TestOldestPendingDuringAnOutage follows an outage of the application:
// the age of the oldest undelivered event grows while it lasts and drops
// to zero once the event is delivered.
func TestOldestPendingDuringAnOutage(t *testing.T) {
	f := newFixture(t)
	status := http.StatusServiceUnavailable
	a := newApp(t, func(int, received) int { return status })
	ids := f.settle(t, "pay_1", 0)
	d := f.dispatcher(t, delivery.Config{URL: a.srv.URL}, delivery.Options{})
	ctx := context.Background()
	oldest := func() float64 {
		d.RefreshMetrics(ctx)
		return f.metric(t, "paysidecar_outbox_oldest_pending_seconds", nil)
	}
	if got := oldest(); got != 0 {
		t.Fatalf("before the first attempt: %v, want 0", got)
	}
	runOnce(t, d) // fails
	for _, after := range []time.Duration{30 * time.Second, 90 * time.Second} {
		f.clock.Set(t0.Add(after))
		if got := oldest(); got != after.Seconds() {
			t.Errorf("%s into the outage: oldest pending %v s", after, got)
		}
		runOnce(t, d)
	}
	if f.metric(t, "paysidecar_delivery_attempts_total", map[string]string{"result": delivery.ResultHTTPError}) < 2 {
		t.Error("failed attempts were not counted")
	}
	status = http.StatusOK
	f.clock.Set(t0.Add(10 * time.Minute))
	runOnce(t, d)
	if e := f.event(t, ids[0]); e.Status != "delivered" {
		t.Fatalf("after the outage: %s", e.Status)
	}
	if got := oldest(); got != 0 {
		t.Errorf("after delivery: oldest pending %v, want 0", got)
	}
	if sum, n := f.latencySum(t); n != 1 || sum != 600 {
		t.Errorf("latency: %d observations summing to %v s, want one of 600 s", n, sum)
	}
}

// TestReplayIsNotAsLateAsItsEvent replays an event delivered five minutes
// earlier: its delivery counts from the replay, not from the event's
// creation, and while it waits it is young.
func TestReplayIsNotAsLateAsItsEvent(t *testing.T) {
	f := newFixture(t)
	status := http.StatusOK
	a := newApp(t, func(int, received) int { return status })
	ids := f.settle(t, "pay_1", 0)
	d := f.dispatcher(t, delivery.Config{URL: a.srv.URL}, delivery.Options{})
	ctx := context.Background()
	runOnce(t, d)

	replayAt := t0.Add(5 * time.Minute)
	if err := f.st.ReplayEvent(ctx, ids[0], replayAt); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(replayAt.Add(2 * time.Second))
	d.RefreshMetrics(ctx)
	if got := f.metric(t, "paysidecar_outbox_oldest_pending_seconds", nil); got != 2 {
		t.Errorf("a replayed event waiting 2 s counts as %v s old", got)
	}
	runOnce(t, d)
	if sum, n := f.latencySum(t); n != 2 || sum != 2 {
		t.Errorf("latency: %d observations summing to %v s, want the first (0 s) and the replay (2 s)", n, sum)
	}

	// Replayed an hour later into a failing application, then delivered:
	// its age and its latency still count from the replay.
	replayAt = t0.Add(time.Hour)
	if err := f.st.ReplayEvent(ctx, ids[0], replayAt); err != nil {
		t.Fatal(err)
	}
	status = http.StatusInternalServerError
	f.clock.Set(replayAt)
	runOnce(t, d)
	f.clock.Set(replayAt.Add(10 * time.Second))
	d.RefreshMetrics(ctx)
	if got := f.metric(t, "paysidecar_outbox_oldest_pending_seconds", nil); got != 10 {
		t.Errorf("a replayed event failing for 10 s counts as %v s old", got)
	}
	status = http.StatusOK
	runOnce(t, d)
	if sum, n := f.latencySum(t); n != 3 || sum != 12 {
		t.Errorf("latency after a failed replay: %d observations summing to %v s, want a third of 10 s", n, sum)
	}
	if got := f.metric(t, "paysidecar_delivery_replayed_total", nil); got != 2 {
		t.Errorf("replayed deliveries = %v, want 2", got)
	}
}
