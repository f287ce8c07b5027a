package delivery

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

// Attempt results, the values of the result label of
// paysidecar_delivery_attempts_total.
const (
	ResultDelivered = "delivered"
	ResultHTTPError = "http_error"
	ResultTimeout   = "timeout"
	ResultError     = "error"
)

// latencyBuckets resolve milliseconds for a healthy application and keep
// a bucket every few minutes from 5 to 15 minutes, where an alert's
// threshold sits, then widen to the two days the retry schedule spans.
var latencyBuckets = []float64{
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 180,
	300, 420, 600, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 16 * 3600, 24 * 3600, 48 * 3600,
}

type metrics struct {
	attempts *prometheus.CounterVec
	duration prometheus.Histogram
	latency  prometheus.Histogram
	outbox   *prometheus.GaugeVec
	oldest   prometheus.Gauge
	dead     prometheus.Counter
	replayed prometheus.Counter
}

func newMetrics() metrics {
	m := metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paysidecar_delivery_attempts_total",
			Help: "Webhook delivery attempts by result (delivered, http_error, timeout, error).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "paysidecar_delivery_duration_seconds",
			Help:    "Duration of one webhook delivery attempt.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "paysidecar_delivery_latency_seconds",
			Help:    "Time from an event becoming due (its creation, or its replay) to its successful delivery.",
			Buckets: latencyBuckets,
		}),
		outbox: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "paysidecar_outbox_events",
			Help: "Events in the outbox by delivery status (pending, delivered, dead).",
		}, []string{"status"}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paysidecar_outbox_oldest_pending_seconds",
			Help: "How long the longest-waiting undelivered event has waited since it became due (its creation, or its replay); 0 when none waits.",
		}),
		dead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paysidecar_delivery_dead_total",
			Help: "Events moved to dead letters after their retries were exhausted.",
		}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paysidecar_delivery_replayed_total",
			Help: "Replayed events delivered; their latency counts from the replay.",
		}),
	}
	// Every series an alert or a panel reads exists from the start, so a
	// rate over it is 0, not absent.
	for _, r := range []string{ResultDelivered, ResultHTTPError, ResultTimeout, ResultError} {
		m.attempts.WithLabelValues(r)
	}
	for _, s := range []store.EventStatus{store.EventPending, store.EventDelivered, store.EventDead} {
		m.outbox.WithLabelValues(string(s))
	}
	return m
}

func (m metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.attempts, m.duration, m.latency, m.outbox, m.oldest, m.dead, m.replayed} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// due returns when e became due for delivery. A new event is due from its
// creation. A replayed event has no attempts and is due from its replay:
// the store sets its next attempt to the replay time, after its creation.
// The dispatcher remembers a replay it sees, so that the event's later
// attempts still count from the replay; a replayed event that failed in
// another replica, or before a restart, counts from its creation.
func (d *Dispatcher) due(e store.Event) time.Time {
	if e.Attempts == 0 {
		if e.NextAttemptAt.Sub(e.CreatedAt) > time.Second {
			return e.NextAttemptAt
		}
		return e.CreatedAt
	}
	d.replaysMu.Lock()
	defer d.replaysMu.Unlock()
	if at, ok := d.replays[e.ID]; ok {
		return at
	}
	return e.CreatedAt
}

// noteReplay remembers when e became due if it is a replay that is about
// to be tried for the first time.
func (d *Dispatcher) noteReplay(e store.Event) {
	if e.Attempts != 0 {
		return
	}
	due := d.due(e)
	if due.Equal(e.CreatedAt) {
		return
	}
	d.replaysMu.Lock()
	defer d.replaysMu.Unlock()
	if _, ok := d.replays[e.ID]; !ok && len(d.replays) >= maxLinks {
		// Bounded like the span links: forget an arbitrary one, which
		// then counts from its creation.
		for id := range d.replays {
			delete(d.replays, id)
			break
		}
	}
	d.replays[e.ID] = due
}

func (d *Dispatcher) forgetReplay(id string) {
	d.replaysMu.Lock()
	defer d.replaysMu.Unlock()
	delete(d.replays, id)
}
