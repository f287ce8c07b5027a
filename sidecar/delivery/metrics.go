package delivery

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	attempts *prometheus.CounterVec
	duration prometheus.Histogram
	latency  prometheus.Histogram
	outbox   *prometheus.GaugeVec
	dead     prometheus.Counter
}

func newMetrics() metrics {
	return metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paysidecar_delivery_attempts_total",
			Help: "Webhook delivery attempts by result (delivered, http_error, timeout, error).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "paysidecar_delivery_duration_seconds",
			Help:    "Duration of one webhook delivery attempt.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "paysidecar_delivery_latency_seconds",
			Help: "Time from an event's creation to its successful delivery to the application.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600,
				4 * 3600, 12 * 3600, 24 * 3600, 48 * 3600},
		}),
		outbox: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "paysidecar_outbox_events",
			Help: "Events in the outbox by delivery status (pending, delivered, dead).",
		}, []string{"status"}),
		dead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paysidecar_delivery_dead_total",
			Help: "Events moved to dead letters after their retries were exhausted.",
		}),
	}
}

func (m metrics) register(r prometheus.Registerer) error {
	// The attempt results exist from the start, so that a failure ratio
	// is defined before the first delivery.
	for _, result := range []string{"delivered", "http_error", "timeout", "error"} {
		m.attempts.WithLabelValues(result)
	}
	for _, c := range []prometheus.Collector{m.attempts, m.duration, m.latency, m.outbox, m.dead} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
