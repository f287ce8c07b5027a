package plugin

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
)

// EnvOTLPEndpoint is the standard OpenTelemetry variable that, when the host
// sets it in a plugin's environment, makes Serve export the plugin's spans
// over OTLP/gRPC to that endpoint ("http://host:4317" for plain text).
const EnvOTLPEndpoint = "OTEL_EXPORTER_OTLP_ENDPOINT"

// tracingFromEnv sets up span export when the host asked for it through
// EnvOTLPEndpoint and installs the provider as the process's global one,
// so that the flow's own instrumentation uses it too. Spans follow the
// host's sampling decision. The returned function flushes and stops
// export; it is a no-op when nothing was set up.
func tracingFromEnv(ctx context.Context, service string) (*sdktrace.TracerProvider, func(), error) {
	if os.Getenv(EnvOTLPEndpoint) == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, func() {}, nil
	}
	exp, err := otlptracegrpc.New(ctx) // reads the standard OTEL_EXPORTER_OTLP_* variables
	if err != nil {
		return nil, func() {}, fmt.Errorf("plugin: OTLP trace exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())),
	)
	otel.SetTracerProvider(tp)
	return tp, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(ctx)
	}, nil
}
