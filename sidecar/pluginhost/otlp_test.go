package pluginhost

import (
	"context"
	"encoding/hex"
	"net"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

// collectedSpan is a span as the collector received it.
type collectedSpan struct {
	service, name string
	id, parent    string // hex
}

// collector is an OTLP/gRPC trace receiver that keeps what it receives.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans map[string][]collectedSpan // by trace id (hex)
}

func (c *collector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				id := hex.EncodeToString(sp.GetTraceId())
				c.spans[id] = append(c.spans[id], collectedSpan{
					service: service, name: sp.GetName(),
					id: hex.EncodeToString(sp.GetSpanId()), parent: hex.EncodeToString(sp.GetParentSpanId()),
				})
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (c *collector) of(traceID string) []collectedSpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]collectedSpan(nil), c.spans[traceID]...)
}

// TestPluginSpansReachTheCollectorThroughTheHost runs a real plugin that
// exports its spans through the host (package hosttrace) beside a host
// that exports over OTLP to a collector, and checks that the plugin's spans
// arrive under the plugin's service name, in the host's trace, as children
// of the host's spans, and only in traces the host samples.
func TestPluginSpansReachTheCollectorThroughTheHost(t *testing.T) {
	col := &collector{spans: map[string][]collectedSpan{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, col)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	// The host's tracing as the sidecar sets it up: OTLP/gRPC behind a
	// batch span processor, which the plugins' spans join.
	exp, err := otlptracegrpc.New(t.Context(), otlptracegrpc.WithEndpoint(ln.Addr().String()), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	batch := sdktrace.NewBatchSpanProcessor(exp, sdktrace.WithBatchTimeout(50*time.Millisecond))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(batch))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	h := newHarness(t, []PluginConfig{mockConfig(t, "otlp")}, WithTracerProvider(tp), WithPluginSpans(batch))
	if err := h.m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	f, err := h.m.Flow("mock")
	if err != nil {
		t.Fatal(err)
	}
	ctx, root := tp.Tracer("test").Start(t.Context(), "POST /v1/payments")
	shape(t, f, ctx, nil)
	root.End()
	traceID := root.SpanContext().TraceID().String()
	var pluginSpan collectedSpan
	waitFor(t, 10*time.Second, "the plugin's server span at the collector", func() bool {
		for _, s := range col.of(traceID) {
			if s.service == "paysidecar-plugin-mock" && s.name == "paysidecar.flow.v2.FlowService/ShapeOrder" {
				pluginSpan = s
				return true
			}
		}
		return false
	})
	// Its parent is the host's client span of the same call.
	waitFor(t, 10*time.Second, "the host's span that is the plugin span's parent", func() bool {
		for _, s := range col.of(traceID) {
			if s.id == pluginSpan.parent && s.service != "paysidecar-plugin-mock" {
				return true
			}
		}
		return false
	})

	// An unsampled trace stays unsampled in the plugin: after it, a sampled
	// call's plugin span arrives and the unsampled one never does.
	ctx, quiet := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample())).Tracer("test").Start(t.Context(), "quiet")
	shape(t, f, ctx, nil)
	quiet.End()
	ctx, loud := tp.Tracer("test").Start(t.Context(), "loud")
	shape(t, f, ctx, nil)
	loud.End()
	waitFor(t, 10*time.Second, "the later sampled plugin span", func() bool {
		for _, s := range col.of(loud.SpanContext().TraceID().String()) {
			if s.service == "paysidecar-plugin-mock" {
				return true
			}
		}
		return false
	})
	if got := col.of(quiet.SpanContext().TraceID().String()); len(got) != 0 {
		t.Fatalf("an unsampled trace was exported: %v", got)
	}
}
