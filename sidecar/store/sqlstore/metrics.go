package sqlstore

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// batchBuckets are the buckets of writes per commit, up to the committer's
// default bound of 256.
var batchBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}

// metrics are the committer's: how many writes each commit holds, how long
// a batch's transaction takes from its BEGIN to the end of its COMMIT, and
// how long a write waits in the queue before its batch begins. Together
// they show how well concurrent callers share commits and where a write's
// time goes. Every series carries the engine as a constant label.
type metrics struct {
	writes   prometheus.Histogram
	duration prometheus.Histogram
	wait     prometheus.Histogram
}

func newMetrics(engine string) *metrics {
	labels := prometheus.Labels{"engine": engine}
	return &metrics{
		writes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "paysidecar_store_commit_writes",
			Help:        "Writes committed together in one transaction by the store's committer (the group commit's batch size).",
			Buckets:     batchBuckets,
			ConstLabels: labels,
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "paysidecar_store_commit_duration_seconds",
			Help:        "Time of one group-commit transaction, from its BEGIN to the end of its COMMIT (the fsync included).",
			Buckets:     telemetry.DurationBuckets,
			ConstLabels: labels,
		}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "paysidecar_store_write_queue_seconds",
			Help:        "Time a write waited for a writer, from its submission to the BEGIN of the transaction that runs it.",
			Buckets:     telemetry.DurationBuckets,
			ConstLabels: labels,
		}),
	}
}

// committed records a batch of n writes committed after d.
func (m *metrics) committed(n int, d time.Duration) {
	m.writes.Observe(float64(n))
	m.duration.Observe(d.Seconds())
}

// Describe implements prometheus.Collector: the store's metrics are
// registered by registering the store.
func (s *Store) Describe(ch chan<- *prometheus.Desc) {
	s.m.writes.Describe(ch)
	s.m.duration.Describe(ch)
	s.m.wait.Describe(ch)
}

// Collect implements prometheus.Collector.
func (s *Store) Collect(ch chan<- prometheus.Metric) {
	s.m.writes.Collect(ch)
	s.m.duration.Collect(ch)
	s.m.wait.Collect(ch)
}
