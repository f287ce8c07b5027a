// Package otlpexport exports a flow plugin's spans over OTLP/gRPC when the
// host asks for it. It is optional: a plugin that wants its own spans in
// the host's collector passes FromEnv to plugin.WithTracing, and only then
// does the plugin's module depend on the OpenTelemetry SDK and exporter.
//
//	plugin.Serve(flow, plugin.WithTracing(otlpexport.FromEnv))
package otlpexport

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
	"go.opentelemetry.io/otel/trace"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

var _ plugin.TracingSetup = FromEnv

// FromEnv sets up span export when the host asked for it by setting
// plugin.EnvOTLPEndpoint (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) in the
// plugin's environment, and installs the provider as the process's global
// one, so that the flow's own instrumentation uses it too. Spans follow
// the host's sampling decision. It returns a nil provider when nothing was
// asked for. The returned function flushes and stops export.
func FromEnv(ctx context.Context, service string) (trace.TracerProvider, func(), error) {
	if os.Getenv(plugin.EnvOTLPEndpoint) == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, func() {}, nil
	}
	exp, err := otlptracegrpc.New(ctx) // reads the standard OTEL_EXPORTER_OTLP_* variables
	if err != nil {
		return nil, func() {}, fmt.Errorf("otlpexport: OTLP trace exporter: %w", err)
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
