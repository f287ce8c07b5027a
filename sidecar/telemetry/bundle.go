package telemetry

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// Bundle is what every component of the sidecar reports through: one
// logger, one metrics registerer, one tracer provider and one clock. The
// app makes it once and hands it to each component, so that no component
// invents its own defaults and a test can swap any of them in one place.
//
// The zero Bundle is usable: WithDefaults fills what is missing.
type Bundle struct {
	// Logger receives the component's logs; slog.Default when nil.
	Logger *slog.Logger
	// Registerer receives the component's metrics; none are registered
	// when nil.
	Registerer prometheus.Registerer
	// TracerProvider makes the component's spans; the global provider
	// when nil.
	TracerProvider trace.TracerProvider
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// WithDefaults returns b with every missing part filled in.
func (b Bundle) WithDefaults() Bundle {
	if b.Logger == nil {
		b.Logger = slog.Default()
	}
	if b.TracerProvider == nil {
		b.TracerProvider = otel.GetTracerProvider()
	}
	if b.Now == nil {
		b.Now = time.Now
	}
	return b
}

// Tracer returns the tracer of the named instrumentation scope (the
// component's import path).
func (b Bundle) Tracer(scope string) trace.Tracer {
	tp := b.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(scope)
}

// Register registers the collectors with the bundle's registerer; it does
// nothing when the bundle has none. A collector that is already
// registered is an error: two components must not share a metric.
func (b Bundle) Register(cs ...prometheus.Collector) error {
	if b.Registerer == nil {
		return nil
	}
	var errs []error
	for _, c := range cs {
		if err := b.Registerer.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	return nil
}
