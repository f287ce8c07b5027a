// Package hosttrace exports a flow plugin's spans through its host: the
// plugin sends each batch of finished spans to the host over the host's
// services (the go-plugin broker connection it already has), and the host
// exports them with its own, to wherever its own go. The plugin thus
// needs no exporter, connection or configuration of its own, and its spans
// reach the host's collector in the host's traces.
//
// A plugin opts in with Setup:
//
//	plugin.Serve(flow, plugin.WithTracing(hosttrace.Setup))
//
// A host takes the spans with a Receiver: its plugin.Host is a
// plugin.SpanHost whose ExportSpans is the Receiver's. A host that offers
// no such Host (one that exports no traces, or one from before the
// contract had ExportSpans) tells its plugins so when it configures them,
// and they drop their spans.
//
// Only a plugin that uses this package, or package otlpexport, depends on
// the OpenTelemetry SDK.
package hosttrace

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv2"
	"github.com/paysidecar/paysidecar/sdk/plugin/internal/hostlink"
)

var _ plugin.TracingSetup = Setup

// batchTimeout is the longest a plugin holds a finished span before it
// sends it to the host.
const batchTimeout = time.Second

// Setup is a plugin.TracingSetup that exports the plugin's spans through
// its host, under the service name Serve gives (a resource of its own, so
// the spans tell which plugin made them). It installs the provider as the
// process's global one, so that the flow's own instrumentation uses it
// too. Spans follow the host's sampling decision: a span is recorded only
// in a trace the host samples, and only while the host takes the plugin's
// spans; otherwise the provider records nothing and only passes the
// host's trace context on. Called other than by plugin.Serve it sets
// up nothing and returns a nil provider. The returned function flushes and
// stops export.
func Setup(ctx context.Context, service string) (trace.TracerProvider, func(), error) {
	link := hostlink.FromContext(ctx)
	if link == nil {
		return nil, func() {}, nil
	}
	exp := &exporter{link: link}
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(batchTimeout)),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())),
	)
	tp := &provider{sdk: sdk, link: link}
	otel.SetTracerProvider(tp)
	return tp, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sdk.Shutdown(ctx)
	}, nil
}

// provider makes the plugin's spans with the SDK's provider while the host
// takes them; otherwise its spans only carry the host's trace context on,
// as those of a provider that records nothing do, so that a plugin whose
// host exports no spans (or has not configured it yet) spends nothing on
// them and still passes the host's sampling decision on unchanged.
type provider struct {
	embedded.TracerProvider
	sdk  *sdktrace.TracerProvider
	link *hostlink.Link
}

// Tracer implements trace.TracerProvider.
func (p *provider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return &tracer{sdk: p.sdk.Tracer(name, opts...), none: noop.NewTracerProvider().Tracer(name), link: p.link}
}

// tracer starts each span with the SDK's tracer or the recording-nothing
// one, as the host takes spans or not at that moment.
type tracer struct {
	embedded.Tracer
	sdk, none trace.Tracer
	link      *hostlink.Link
}

// Start implements trace.Tracer.
func (t *tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if t.link.Spans() == nil {
		return t.none.Start(ctx, name, opts...)
	}
	return t.sdk.Start(ctx, name, opts...)
}

// exporter sends finished spans to the host's span service, or drops them
// while the host takes none.
type exporter struct {
	link *hostlink.Link
	// refused is set when the host answered that it takes no spans
	// after all; from then on spans are dropped.
	refused atomic.Bool
}

var _ sdktrace.SpanExporter = (*exporter)(nil)

// ExportSpans implements sdktrace.SpanExporter.
func (e *exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	rpc := e.link.Spans()
	if rpc == nil || e.refused.Load() || len(spans) == 0 {
		return nil
	}
	_, err := rpc.ExportSpans(ctx, encode(spans))
	if status.Code(err) == codes.Unimplemented {
		e.refused.Store(true)
		return nil
	}
	if err != nil {
		return fmt.Errorf("hosttrace: export %d spans to the host: %w", len(spans), err)
	}
	return nil
}

// Shutdown implements sdktrace.SpanExporter; the connection belongs to
// the plugin's server, which closes it.
func (e *exporter) Shutdown(context.Context) error { return nil }

// encode returns the request that carries spans, all of one resource (a
// tracer provider's).
func encode(spans []sdktrace.ReadOnlySpan) *flowv2.ExportSpansRequest {
	req := &flowv2.ExportSpansRequest{Spans: make([]*flowv2.Span, 0, len(spans))}
	if res := spans[0].Resource(); res != nil {
		req.Resource = attrsToProto(res.Attributes())
	}
	for _, s := range spans {
		req.Spans = append(req.Spans, spanToProto(s))
	}
	return req
}
