// Package telemetry sets up the sidecar's logs, traces and the Prometheus
// registry, and serves /metrics, /healthz and /readyz.
package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ServiceName names the sidecar in traces.
const ServiceName = "paysidecar"

// NewLogger returns a slog logger writing to w at level ("debug", "info",
// "warn", "error") in format ("text" or "json").
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	return NewLeveledLogger(w, ParseLevel(level), format)
}

// NewLeveledLogger returns a slog logger writing to w in format ("text" or
// "json") at the level level gives for each record: with a *slog.LevelVar
// the level can change while the logger is in use.
func NewLeveledLogger(w io.Writer, level slog.Leveler, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// ParseLevel returns the level named "debug", "info", "warn" or "error"
// (in any case); info for any other name.
func ParseLevel(level string) slog.Level {
	switch strings.ToLower(level) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// TracingOptions configures NewTracerProvider.
type TracingOptions struct {
	// Exporter is "none", "stdout" or "otlp".
	Exporter     string
	OTLPEndpoint string
	SampleRatio  float64
	Version      string
	// Writer receives stdout-exported spans; os.Stdout when nil.
	Writer io.Writer
}

// NewTracerProvider builds the tracer provider for the process and
// installs it, with the W3C trace-context and baggage propagators, as the
// OpenTelemetry globals that instrumentation libraries read. It also
// returns the span processor that batches the provider's finished spans
// for the exporter, which takes spans recorded elsewhere (the flow
// plugins', see pluginhost.WithPluginSpans) into the same export; it is
// nil when spans are not exported. The returned function flushes and
// stops export.
func NewTracerProvider(ctx context.Context, o TracingOptions) (trace.TracerProvider, sdktrace.SpanProcessor, func(context.Context) error, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if o.Exporter == "" || o.Exporter == "none" {
		tp := noop.NewTracerProvider()
		otel.SetTracerProvider(tp)
		return tp, nil, func(context.Context) error { return nil }, nil
	}
	var exp sdktrace.SpanExporter
	var err error
	switch o.Exporter {
	case "stdout":
		opts := []stdouttrace.Option{}
		if o.Writer != nil {
			opts = append(opts, stdouttrace.WithWriter(o.Writer))
		}
		exp, err = stdouttrace.New(opts...)
	case "otlp":
		exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(o.OTLPEndpoint), otlptracegrpc.WithInsecure())
	default:
		return nil, nil, nil, fmt.Errorf("unknown trace exporter %q", o.Exporter)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("create %s trace exporter: %w", o.Exporter, err)
	}
	res := resource.NewSchemaless(semconv.ServiceName(ServiceName), semconv.ServiceVersion(o.Version))
	batch := sdktrace.NewBatchSpanProcessor(exp)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(batch),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRatio))),
	)
	otel.SetTracerProvider(tp)
	return tp, batch, tp.Shutdown, nil
}

// NewRegistry returns a Prometheus registry with the Go runtime and
// process collectors registered.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Check is one readiness check; it returns nil when the part is ready.
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// AdminOption configures AdminHandler.
type AdminOption func(*http.ServeMux)

// WithPprof serves Go's runtime profiles (net/http/pprof) under
// /debug/pprof/: CPU and heap profiles, goroutine dumps, execution traces.
// Profiles show the program's own code paths and may hold request data
// in goroutine stacks, so they are served only when asked for, on the
// admin listener, which is kept off the network the upstream reaches.
func WithPprof() AdminOption {
	return func(mux *http.ServeMux) {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
}

// AdminHandler serves /metrics from reg, /healthz (the process answers)
// and /readyz (every check passes within two seconds; the failing checks
// are named in the body, never with secrets), and what opts add.
func AdminHandler(reg *prometheus.Registry, checks []Check, opts ...AdminOption) http.Handler {
	mux := http.NewServeMux()
	for _, o := range opts {
		o(mux)
	}
	// OpenMetrics, when the scraper asks for it, carries the exemplars
	// (trace ids) of the latency histograms.
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		var failed []string
		for _, c := range checks {
			if err := c.Func(ctx); err != nil {
				failed = append(failed, c.Name+": "+err.Error())
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if len(failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, strings.Join(failed, "\n")+"\n")
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	return mux
}
