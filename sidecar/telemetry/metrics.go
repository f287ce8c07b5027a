package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// DurationBuckets are the histogram buckets of the sidecar's latencies, in
// seconds: fine enough below ten milliseconds to tell a sidecar that adds
// one millisecond from one that adds five, and reaching the upstream's and
// the application's timeouts.
var DurationBuckets = []float64{
	0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
}

// Exemplar returns the exemplar labels that link an observation to the
// trace of ctx (trace_id), or nil when ctx carries no sampled span.
func Exemplar(ctx context.Context) prometheus.Labels {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsSampled() {
		return nil
	}
	return prometheus.Labels{"trace_id": sc.TraceID().String()}
}

// ObserveWithExemplar observes v on o with the trace of ctx as exemplar
// when there is one.
func ObserveWithExemplar(ctx context.Context, o prometheus.Observer, v float64) {
	if ex := Exemplar(ctx); ex != nil {
		if eo, ok := o.(prometheus.ExemplarObserver); ok {
			eo.ObserveWithExemplar(v, ex)
			return
		}
	}
	o.Observe(v)
}

// knownMethods are the HTTP methods OpenTelemetry's conventions name.
var knownMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}

// HTTPMethod returns the request method as OpenTelemetry's HTTP
// conventions report it (http.request.method): the method when it is a
// known one, _OTHER otherwise, so that no label or attribute takes an
// arbitrary value from a request. known reports which it was.
func HTTPMethod(m string) (method string, known bool) {
	if knownMethods[m] {
		return m, true
	}
	return "_OTHER", false
}

// Upstream call results of paysidecar_upstream_calls_total.
const (
	UpstreamAccepted = "accepted"
	UpstreamRejected = "rejected"
	UpstreamError    = "error"
)

// UpstreamCalls measures every call to the upstream, whoever makes it (the
// app API, the reverse query): paysidecar_upstream_call_duration_seconds
// by endpoint and outcome, with the call's trace id as exemplar, and
// paysidecar_upstream_calls_total by path and result (accepted, rejected,
// error), which alerts use. Its Observe method fits nkp.Client.Observe.
type UpstreamCalls struct {
	duration *prometheus.HistogramVec
	calls    *prometheus.CounterVec
}

// NewUpstreamCalls registers the upstream call metrics with b's registerer.
// The counter's series for paths exist at zero from the start, so that a
// rate over them is defined before the first call.
func NewUpstreamCalls(b Bundle, paths []string) (*UpstreamCalls, error) {
	u := &UpstreamCalls{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "paysidecar_upstream_call_duration_seconds",
			Help:    "Duration of calls to the upstream, by endpoint (path) and outcome: accepted, rejected (a resp_code that is not accepted), or the failure (timeout, transport, status, bad_signature, decode, request).",
			Buckets: DurationBuckets,
		}, []string{"endpoint", "outcome"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paysidecar_upstream_calls_total",
			Help: "Calls to the upstream, by path and result (accepted, rejected, error).",
		}, []string{"path", "result"}),
	}
	u.Declare(paths)
	if err := b.Register(u.duration, u.calls); err != nil {
		return nil, err
	}
	return u, nil
}

// Declare makes the counter's series for paths exist at zero, as
// NewUpstreamCalls does for its own: for paths allowed later, such as a
// passthrough list changed while the sidecar runs.
func (u *UpstreamCalls) Declare(paths []string) {
	for _, p := range paths {
		for _, r := range []string{UpstreamAccepted, UpstreamRejected, UpstreamError} {
			u.calls.WithLabelValues(p, r)
		}
	}
}

// Observe records one call to path that ended with outcome after elapsed.
func (u *UpstreamCalls) Observe(ctx context.Context, path, outcome string, elapsed time.Duration) {
	ObserveWithExemplar(ctx, u.duration.WithLabelValues(path, outcome), elapsed.Seconds())
	result := UpstreamError
	switch outcome {
	case UpstreamAccepted, UpstreamRejected:
		result = outcome
	}
	u.calls.WithLabelValues(path, result).Inc()
}
