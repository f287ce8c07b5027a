package pluginhost

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	up       *prometheus.GaugeVec
	restarts *prometheus.CounterVec
	calls    *prometheus.HistogramVec
}

// newMetrics creates the Manager's metrics, registers them with reg (nil
// registers nothing) and creates the series of every plugin, so that a
// plugin that never restarted still shows zero restarts.
func newMetrics(reg prometheus.Registerer, plugins []string) (*metrics, error) {
	m := &metrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "paysidecar_plugin_up",
			Help: "Whether the flow plugin is running and configured (1) or not (0).",
		}, []string{"plugin"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paysidecar_plugin_restarts_total",
			Help: "Restarts of a flow plugin after its process died or stopped answering.",
		}, []string{"plugin"}),
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "paysidecar_plugin_call_duration_seconds",
			Help:    "Duration of calls to flow plugins by method and outcome (ok, an error code of the plugin contract, unavailable or canceled).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"plugin", "method", "outcome"}),
	}
	for _, p := range plugins {
		m.up.WithLabelValues(p).Set(0)
		m.restarts.WithLabelValues(p)
	}
	if reg == nil {
		return m, nil
	}
	var done []prometheus.Collector
	for _, c := range []prometheus.Collector{m.up, m.restarts, m.calls} {
		if err := reg.Register(c); err != nil {
			for _, d := range done {
				reg.Unregister(d)
			}
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("pluginhost: metrics already registered (one Manager per registry): %w", err)
			}
			return nil, fmt.Errorf("pluginhost: register metrics: %w", err)
		}
		done = append(done, c)
	}
	return m, nil
}
