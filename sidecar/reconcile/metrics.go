package reconcile

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the reconciliation's Prometheus metrics.
type Metrics struct {
	runs        *prometheus.CounterVec
	differences *prometheus.GaugeVec
	lastSuccess prometheus.Gauge
	lastRun     prometheus.Gauge
	scheduled   prometheus.Gauge
}

// NewMetrics registers the metrics with reg (none when reg is nil).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paysidecar_reconcile_runs_total",
			Help: "Reconciliation runs by result: clean, differences or failed.",
		}, []string{"status"}),
		differences: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "paysidecar_reconcile_differences",
			Help: "Differences found by the merchant's latest completed reconciliation run (by any replica), by kind.",
		}, []string{"kind"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paysidecar_reconcile_last_success_timestamp_seconds",
			Help: "When the latest reconciliation run that completed (clean or with differences, by any replica) finished, in Unix seconds; the process's start while none has.",
		}),
		scheduled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paysidecar_reconcile_scheduled",
			Help: "1 when the daily reconciliation is scheduled (reconcile.schedule), else 0.",
		}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paysidecar_reconcile_last_run_timestamp_seconds",
			Help: "When the latest reconciliation run finished, whatever its result, in Unix seconds.",
		}),
	}
	for _, k := range Kinds {
		m.differences.WithLabelValues(string(k))
	}
	for _, s := range []string{StatusClean, StatusDifferences, StatusFailed} {
		m.runs.WithLabelValues(s)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.runs, m.differences, m.lastSuccess, m.lastRun, m.scheduled} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("reconcile: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *Metrics) observe(rep *Report) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(rep.Status).Inc()
	m.lastRun.Set(float64(rep.FinishedAt.Unix()))
	if rep.Status != StatusFailed {
		m.completed(rep)
	}
}

func (m *Metrics) completed(rep *Report) {
	m.lastSuccess.Set(float64(rep.FinishedAt.Unix()))
	for _, k := range Kinds {
		m.differences.WithLabelValues(string(k)).Set(float64(rep.Counts[k]))
	}
}

// restore sets the gauges from the stored runs, newest first, so that
// every replica reports the merchant's latest completed run, whoever ran
// it; since is reported as the last success while no run has completed.
func (m *Metrics) restore(runs []Report, since time.Time, scheduled bool) {
	if m == nil {
		return
	}
	if scheduled {
		m.scheduled.Set(1)
	} else {
		m.scheduled.Set(0)
	}
	for i := range runs {
		if runs[i].Status == StatusClean || runs[i].Status == StatusDifferences {
			m.completed(&runs[i])
			return
		}
	}
	m.lastSuccess.Set(float64(since.Unix()))
}
